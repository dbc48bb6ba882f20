//! The HTTP listener's accept loop, with the limits that keep slow or idle
//! clients from holding it (Slowloris).
//!
//! At most `max_connections` connections are served at once: while all are
//! taken, gorpd accepts nothing more and new connections wait in the
//! kernel's accept queue until one ends. A client has `header_read_timeout`
//! to send a request's headers, for the first request and for every
//! keep-alive one after it; one that does not is disconnected. A WebSocket
//! leaves the accept loop's count once upgraded (it needs a login). When
//! `shutdown` fires nothing more is accepted, open connections finish the
//! request in flight, and `serve` returns once they all closed.

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

/// The limits of one HTTP listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Most connections served at once.
    pub max_connections: usize,
    /// Longest a client may take to send a request's headers.
    pub header_read_timeout: Duration,
}

/// Serves `app` on `listener` within `limits` until `shutdown` fires and every connection closed.
pub(crate) async fn serve(
    mut listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    shutdown: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let connections = TaskTracker::new();
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout);
    loop {
        // A slot first, so a full listener leaves new connections in the accept queue.
        let slot = tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            slot = slots.clone().acquire_owned() => slot.expect("the slots are never closed"),
        };
        let (tcp, peer) = tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            // axum's accept waits out transient errors (such as too many open files).
            accepted = axum::serve::Listener::accept(&mut listener) => accepted,
        };
        connections.spawn(serve_connection(http.clone(), tcp, peer, app.clone(), slot, shutdown.clone()));
    }
    drop(listener);
    connections.close();
    connections.wait().await;
}

/// Serves one connection, holding its slot until it closes.
async fn serve_connection(
    http: http1::Builder,
    tcp: TcpStream,
    peer: SocketAddr,
    app: Router,
    _slot: OwnedSemaphorePermit,
    shutdown: CancellationToken,
) {
    // TCP_NODELAY: chat frames are small and must not wait for Nagle's algorithm.
    if let Err(error) = tcp.set_nodelay(true) {
        tracing::debug!(%error, "could not set TCP_NODELAY");
    }
    let app = app.map_request(move |mut request: Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        request
    });
    let connection = http.serve_connection(TokioIo::new(tcp), TowerToHyperService::new(app)).with_upgrades();
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        _ = shutdown.cancelled() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(error) = result {
        // Includes clients that took longer than the header read timeout.
        tracing::debug!(%peer, %error, "HTTP connection ended with an error");
    }
}
