//! Publish-to-ack throughput and latency of a real in-process gorpd over
//! loopback gRPC, with the SQLite store on the local disk (fsync on commit).
//!
//! Run: `cargo bench -p gorpd --bench publish_ack` (optionally `-- <messages>`).
//! Prints messages per second for one stream publishing one message at a
//! time, one stream pipelining, and four concurrent pipelining streams.

use gorp_proto::v1 as pb;
use gorpd::testing::{BusApi, TestServer};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

fn request(stream: usize, i: usize) -> pb::PublishRequest {
    pb::PublishRequest {
        channel: Some(pb::Channel { platform: "bench".into(), channel_id: format!("c{stream}") }),
        message_id: format!("{stream}-{i}-{}", uuid::Uuid::new_v4()),
        sender_id: "u".into(),
        sender_name: "bench".into(),
        text: "a message of typical chat length, about eighty bytes long, for the benchmark".into(),
    }
}

/// Publishes `count` messages on one stream with at most `window` unacknowledged; returns per-ack latencies.
async fn publish(mut bus: BusApi, stream: usize, count: usize, window: usize) -> Vec<Duration> {
    let (tx, rx) = mpsc::channel(window.max(1));
    let mut acks = bus.publish(ReceiverStream::new(rx)).await.expect("publish").into_inner();
    let mut sent_at = std::collections::VecDeque::new();
    let mut latencies = Vec::with_capacity(count);
    let mut next = 0;
    while latencies.len() < count {
        while next < count && sent_at.len() < window {
            tx.send(request(stream, next)).await.expect("send");
            sent_at.push_back(Instant::now());
            next += 1;
        }
        let ack = acks.message().await.expect("ack").expect("stream open");
        assert_eq!(ack.status, pb::PublishStatus::Accepted as i32, "{ack:?}");
        latencies.push(sent_at.pop_front().expect("in flight").elapsed());
    }
    latencies
}

async fn run(server: &TestServer, label: &str, streams: usize, count: usize, window: usize) {
    let started = Instant::now();
    let tasks: Vec<_> = (0..streams).map(|s| tokio::spawn(publish(server.admin_bus(), s, count, window))).collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.expect("publisher"));
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    println!(
        "{label:<34} {:>8.0} msg/s   p50 {:>7.2?}   p99 {:>7.2?}   ({} messages in {:.2?})",
        latencies.len() as f64 / elapsed.as_secs_f64(),
        pct(0.50),
        pct(0.99),
        latencies.len(),
        elapsed
    );
}

fn main() {
    let count: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(2000);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let server = TestServer::start().await;
        println!("publish-to-ack, {count} messages per stream, gorpd in-process, SQLite WAL synchronous=FULL");
        run(&server, "1 stream, one at a time", 1, count, 1).await;
        run(&server, "1 stream, pipelined (window 256)", 1, count, 256).await;
        run(&server, "4 streams, pipelined (window 256)", 4, count, 256).await;
        server.stop().await.expect("clean stop");
    });
}
