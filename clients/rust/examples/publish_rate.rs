//! Measures the Publisher against a running gorpd: pipelined throughput
//! (window 256) and the latency of one message at a time.
//!
//! ```sh
//! cargo run --release -p gorp-client --example publish_rate -- http://127.0.0.1:7730 5000
//! ```
//!
//! The token comes from `GORP_TOKEN` or the local admin token. Messages go to
//! channel `bench:rate`, bound to an echo session `rate` (created if missing).

use gorp_client::{Channel, Client, Error, Message};
use std::time::{Duration, Instant};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let url = args.next().unwrap_or_else(|| "http://127.0.0.1:7730".to_owned());
    let count: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(5000);
    let client = Client::builder(url).connect().await?;
    match client.create_session("rate").await {
        Err(error) if error.code() != Some(tonic::Code::AlreadyExists) => return Err(error),
        _ => {}
    }
    let room = Channel::new("bench", "rate");
    client.bind(room.clone(), "rate").await?;
    let run = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
    let publisher = client.publisher();

    let started = Instant::now();
    let mut pending = Vec::with_capacity(count);
    for i in 0..count {
        pending.push(publisher.send(&Message::new(room.clone(), format!("{run}-p{i}"), "hello")).await?);
    }
    for ack in pending {
        ack.await?;
    }
    let took = started.elapsed();
    println!("pipelined: {count} messages in {took:?}: {:.0} msg/s", count as f64 / took.as_secs_f64());

    let mut latencies: Vec<Duration> = Vec::with_capacity(200);
    for i in 0..200 {
        let sent = Instant::now();
        publisher.publish(&Message::new(room.clone(), format!("{run}-s{i}"), "hello")).await?;
        latencies.push(sent.elapsed());
    }
    latencies.sort();
    println!("one at a time: p50 {:?}, p99 {:?}", latencies[100], latencies[198]);
    publisher.close().await
}
