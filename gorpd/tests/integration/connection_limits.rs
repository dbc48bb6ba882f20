//! Slowloris: clients that open connections and send half a request (or
//! nothing) are disconnected after `header_read_timeout_secs`, and no more
//! than `http_max_connections` / `grpc_max_connections` are served at once,
//! while a normal request still gets its answer. Raw TCP clients against a
//! real gorpd, plus a real gRPC client.

use gorp_proto::v1 as pb;
use gorpd::testing::TestServer;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

/// Long enough for any slow machine; the limits under test are 1 s.
const PATIENCE: Duration = Duration::from_secs(30);
/// How long a request that the cap holds back is watched for an answer it must not get.
const HELD_BACK: Duration = Duration::from_millis(600);

async fn start_limited() -> TestServer {
    TestServer::start_configured(|config| {
        config.http_max_connections = 8;
        config.grpc_max_connections = 4;
        config.header_read_timeout_secs = 1;
    })
    .await
}

/// Opens `count` connections that each send `opening` and then nothing more.
async fn stalled(addr: SocketAddr, count: usize, opening: &[u8]) -> Vec<TcpStream> {
    let mut connections = Vec::new();
    for _ in 0..count {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        tcp.write_all(opening).await.unwrap();
        connections.push(tcp);
    }
    connections
}

/// Reads until gorpd closes the connection; fails if it is still open after [`PATIENCE`].
async fn closed_by_gorpd(tcp: &mut TcpStream) {
    let mut buf = [0u8; 1024];
    let closing = async {
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    timeout(PATIENCE, closing).await.expect("gorpd closes a connection that stalls before its headers");
}

/// Sends a whole `GET /healthz` on `tcp` and returns the response.
async fn healthz_on(tcp: &mut TcpStream) -> String {
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut response = Vec::new();
    tcp.read_to_end(&mut response).await.unwrap();
    String::from_utf8_lossy(&response).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_http_requests_are_closed_after_the_header_timeout_and_connections_are_capped() {
    let server = start_limited().await;
    let mut slow = stalled(server.http_addr, 20, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ").await;

    // Every slot is held by a stalled client, so a whole request waits to be accepted.
    let mut waiting = TcpStream::connect(server.http_addr).await.unwrap();
    let answer = tokio::spawn(async move { healthz_on(&mut waiting).await });
    tokio::time::sleep(HELD_BACK).await;
    assert!(!answer.is_finished(), "a ninth connection was served while eight were open");

    for tcp in &mut slow {
        closed_by_gorpd(tcp).await;
    }
    let response = timeout(PATIENCE, answer).await.expect("answered once slots freed").unwrap();
    assert!(response.starts_with("HTTP/1.1 200 OK") && response.ends_with("ok\n"), "{response}");
    let mut fresh = TcpStream::connect(server.http_addr).await.unwrap();
    assert!(healthz_on(&mut fresh).await.starts_with("HTTP/1.1 200 OK"));
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_keep_alive_connection_is_closed_after_the_header_timeout() {
    let server = start_limited().await;
    let mut tcp = TcpStream::connect(server.http_addr).await.unwrap();
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").await.unwrap();
    let mut first = [0u8; 512];
    let read = tcp.read(&mut first).await.unwrap();
    assert!(String::from_utf8_lossy(&first[..read]).starts_with("HTTP/1.1 200 OK"));
    // It sends nothing more: the next request's headers never come.
    closed_by_gorpd(&mut tcp).await;
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_grpc_connections_are_closed_and_capped_while_a_real_client_gets_through() {
    let server = start_limited().await;
    // Half the HTTP/2 preface, then nothing.
    let mut slow = stalled(server.grpc_addr, 10, b"PRI * HTTP/2.0\r\n").await;

    let mut control = server.control();
    let call = tokio::spawn(async move { control.list_sessions(pb::ListSessionsRequest {}).await });
    tokio::time::sleep(HELD_BACK).await;
    assert!(!call.is_finished(), "a fifth gRPC connection was served while four were open");

    for tcp in &mut slow {
        closed_by_gorpd(tcp).await;
    }
    let sessions = timeout(PATIENCE, call).await.expect("answered once slots freed").unwrap().unwrap();
    assert!(sessions.into_inner().sessions.is_empty());
    server.control().list_sessions(pb::ListSessionsRequest {}).await.unwrap();
    server.stop().await.unwrap();
}
