//! Delivery-log compaction through gorpd: a gateway away across compaction
//! still gets everything it had not acknowledged; a gateway silent for longer
//! than `gateway_stale_days` stops holding compaction back and is reported;
//! the history keeps every answer throughout.

use crate::support::*;
use chrono::{Duration, Utc};
use gorp_proto::v1 as pb;
use gorpd::clock::ManualClock;
use gorpd::testing::TestServer;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

async fn start(dir: &Path, clock: &ManualClock) -> TestServer {
    let config = gorpd::testing::test_config(dir);
    let backends = gorpd::agent_backends(&config);
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    TestServer::start_with_clock(config, backends, Arc::new(clock.clone()), any, any).await
}

/// gorpd's report once the compaction at start has run.
async fn compacted(server: &TestServer) -> pb::ServerInfo {
    eventually(|| {
        let mut control = server.control();
        async move {
            let info = control.get_server_info(pb::GetServerInfoRequest {}).await.unwrap().into_inner();
            (!info.compacted_at.is_empty()).then_some(info)
        }
    })
    .await
}

#[tokio::test]
async fn a_gateway_away_across_compaction_gets_everything_and_a_silent_one_stops_holding_it_back() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(Utc::now());
    let server = start(dir.path(), &clock).await;
    let mut control = server.control();
    control.create_session(create("s")).await.unwrap();
    control.bind_session(bind("telegram", "1", "s")).await.unwrap();
    let mut bus = server.admin_bus();
    let mut quick = Subscriber::open_live(&mut bus, "telegram", "tg-quick").await;
    let mut slow = Subscriber::open_live(&mut bus, "telegram", "tg-slow").await;
    let mut publisher = Publisher::open(&mut bus).await.unwrap();
    let mut seqs = Vec::new();
    for i in 0..5 {
        publisher.publish(message("telegram", "1", &format!("m{i}"), &format!("q{i}"))).await;
        let answer = quick.response().await;
        quick.ack(answer.seq).await;
        seqs.push(answer.seq);
        assert_eq!(slow.response().await.seq, answer.seq);
    }
    // The slow gateway acknowledges only the first answer, then goes away.
    slow.ack(seqs[0]).await;
    wait_for_gateway(&control, "tg-slow", |g| g.acked_seq == seqs[0]).await;
    wait_for_gateway(&control, "tg-quick", |g| g.acked_seq == seqs[4]).await;
    drop((quick, slow, publisher));
    server.stop().await.unwrap();

    // A day later compaction runs at start: only what both acknowledged goes.
    clock.advance(Duration::days(1));
    let server = start(dir.path(), &clock).await;
    let info = compacted(&server).await;
    assert_eq!(info.compacted_through.get("telegram"), Some(&seqs[0]), "{info:?}");
    assert!(info.stale_gateways.is_empty());
    assert_eq!(server.store.responses_after("telegram", 0, 100).await.unwrap().len(), 4, "one delivery compacted");
    let mut bus = server.admin_bus();
    let mut slow = Subscriber::open(&mut bus, "telegram", "tg-slow", None).await.unwrap();
    for seq in &seqs[1..] {
        let answer = slow.response().await;
        assert_eq!(answer.seq, *seq, "the gateway that was away gets every answer it had not acknowledged");
    }
    drop(slow);
    server.stop().await.unwrap();

    // Ten days later both gateways have been silent past gateway_stale_days (7):
    // they no longer hold compaction back, and they are reported.
    clock.advance(Duration::days(10));
    let server = start(dir.path(), &clock).await;
    let info = compacted(&server).await;
    let mut stale = info.stale_gateways.clone();
    stale.sort();
    assert_eq!(stale, ["tg-quick", "tg-slow"]);
    assert_eq!(info.compacted_through_others, *seqs.last().unwrap());
    assert!(server.store.responses_after("telegram", 0, 100).await.unwrap().is_empty(), "the log is compacted");
    let history = control_history(&server).await;
    assert_eq!(history.len(), 10, "the history keeps every question and answer");
    let metrics = reqwest::Client::new()
        .get(format!("http://{}/metrics", server.http_addr))
        .bearer_auth(&server.admin_token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("gorp_gateway_stale_last_seen_seconds{gateway=\"tg-slow\",platform=\"telegram\"}"));
    assert!(metrics.contains("gorp_delivery_compacted_seq{platform=\"*\"}"), "{metrics}");
    // The sequence goes on after the log was emptied.
    let mut bus = server.admin_bus();
    let mut gateway = Subscriber::open(&mut bus, "telegram", "tg-quick", None).await.unwrap();
    let mut publisher = Publisher::open(&mut bus).await.unwrap();
    publisher.publish(message("telegram", "1", "m-after", "after")).await;
    assert!(gateway.response().await.seq > *seqs.last().unwrap());
    server.stop().await.unwrap();
}

async fn control_history(server: &TestServer) -> Vec<pb::HistoryEntry> {
    let request = pb::ReadHistoryRequest { session: "s".into(), count: 100 };
    server.control().read_history(request).await.unwrap().into_inner().entries
}
