//! The spool against Slack's retry schedule (compressed in time): messages
//! written while gorpd is away for longer than Slack retries are acknowledged
//! once on disk and answered once gorpd is back, even across a SIGKILL of
//! the gateway; a full spool stops acks to Slack and recovers.

use super::*;
use gorp_fakes::slack::RetrySchedule;
use gorpd::testing::clients::{bind, create};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

const CHANNEL: &str = "C0SPOOL";

/// Slack's schedule at a hundredth of its pace: a 300 ms ack timeout, then
/// retries at once, after 0.6 s and after 3 s (the window is about 4.8 s).
fn compressed() -> RetrySchedule {
    let retries = vec![Duration::ZERO, Duration::from_millis(600), Duration::from_secs(3)];
    RetrySchedule { ack_timeout: Duration::from_millis(300), retries }
}

/// gorpd in `dir` with session "spooled" bound to [`CHANNEL`], and a Slack
/// that retries on `schedule`.
async fn world(dir: &Path, schedule: RetrySchedule) -> World {
    let server = TestServer::start_in(dir).await;
    server.control().create_session(create("spooled")).await.unwrap();
    server.control().bind_session(bind("slack", CHANNEL, "spooled")).await.unwrap();
    World::with(server, FakeSlack::start_with_retries(BOT_TOKEN, APP_TOKEN, schedule).await).await
}

/// Everything but gorpd, while gorpd is stopped.
struct Away {
    slack: FakeSlack,
    token: String,
    state: Arc<tempfile::TempDir>,
    addrs: (SocketAddr, SocketAddr),
}

impl Away {
    async fn stop_gorpd(world: World) -> Self {
        let World { server, slack, token, state } = world;
        let addrs = (server.grpc_addr, server.http_addr);
        server.stop().await.unwrap();
        Self { slack, token, state, addrs }
    }

    /// Starts gorpd again on its data in `dir`, at the same addresses.
    async fn start_gorpd(self, dir: &Path) -> World {
        let config = gorpd::testing::test_config(dir);
        let backends = gorpd::agent_backends(&config);
        let server = TestServer::start_at(config, backends, self.addrs.0, self.addrs.1).await;
        World { server, slack: self.slack, token: self.token, state: self.state }
    }
}

/// Each echo answer in [`CHANNEL`] arrives, exactly once.
async fn answered_once(world: &World, texts: &[String]) {
    for text in texts {
        world.answer(CHANNEL, &format!("echo: {text}")).await;
    }
    let all = world.slack.texts(CHANNEL);
    for text in texts {
        let count = all.iter().filter(|t| **t == format!("echo: {text}")).count();
        assert_eq!(count, 1, "{text:?} answered once: {all:?}");
    }
}

/// A plain HTTP/1.0 GET: the status line and the body.
async fn get(addr: SocketAddr, path: &str) -> (String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("health endpoint");
    stream.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    (head.lines().next().unwrap_or_default().to_owned(), body.to_owned())
}

fn texts(prefix: &str, n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("{prefix} {i}")).collect()
}

#[tokio::test]
async fn messages_written_while_gorpd_is_away_longer_than_slack_retries_are_answered_once() {
    let dir = tempfile::tempdir().unwrap();
    let schedule = compressed();
    let world = world(dir.path(), schedule.clone()).await;
    let gateway = world.gateway(&[]);
    world.slack.channel_message(CHANNEL, ALICE, "before", None);
    world.answer(CHANNEL, "echo: before").await;

    let away = Away::stop_gorpd(world).await;
    let written = texts("while away", 5);
    for text in &written {
        away.slack.channel_message(CHANNEL, ALICE, text, None);
    }
    // Longer than Slack keeps retrying: anything not acknowledged by now is gone.
    tokio::time::sleep(schedule.window() + Duration::from_secs(1)).await;
    assert_eq!(away.slack.lost(), Vec::<String>::new(), "slack gave nothing up");
    assert_eq!(away.slack.unacked(), 0);

    let world = away.start_gorpd(dir.path()).await;
    answered_once(&world, &written).await;
    assert_eq!(world.server.store.inbound_count().await.unwrap(), 6, "each message stored once");
    gateway.stop().await;
    world.stop().await;
}

#[tokio::test]
async fn a_gateway_killed_while_its_spool_holds_messages_sends_them_after_both_restart() {
    let dir = tempfile::tempdir().unwrap();
    let world = world(dir.path(), compressed()).await;
    let first = world.gateway(&[]);
    world.connected().await;
    let away = Away::stop_gorpd(world).await;
    let written = texts("spooled", 4);
    for text in &written {
        away.slack.channel_message(CHANNEL, ALICE, text, None);
    }
    until(|| away.slack.acked().len() == written.len()).await;
    first.kill().await;
    assert!(away.state.path().join("spool.db").exists());

    let world = away.start_gorpd(dir.path()).await;
    let second = world.gateway(&[]);
    answered_once(&world, &written).await;
    assert_eq!(world.slack.lost(), Vec::<String>::new());
    assert_eq!(world.server.store.inbound_count().await.unwrap(), 4);
    second.stop().await;
    world.stop().await;
}

#[tokio::test]
async fn a_full_spool_stops_acks_to_slack_and_recovers_when_gorpd_returns() {
    let dir = tempfile::tempdir().unwrap();
    // Retries late enough to outlast gorpd's absence and the gateway's reconnect backoff.
    let retries = [0, 2, 4, 8, 16].map(Duration::from_secs).to_vec();
    let schedule = RetrySchedule { ack_timeout: Duration::from_millis(300), retries };
    let world = world(dir.path(), schedule).await;
    let flags = ["--spool-max-messages=2", "--health-addr=127.0.0.1:0"];
    let (gateway, log) = GatewayProcess::spawn_logged(world.command(&world.token, &flags));
    world.connected().await;
    let health = eventually(|| {
        let line = log.find("health at http://");
        async move { line?.split("http://").nth(1)?.split('/').next()?.parse::<SocketAddr>().ok() }
    })
    .await;
    eventually(|| async move {
        let (status, body) = get(health, "/healthz").await;
        (status.contains("200") && body.contains(r#""status":"ok""#)).then_some(())
    })
    .await;
    let (code, out) = probe(health).await;
    assert_eq!(code, Some(0), "the --health probe passes while connected: {out}");
    assert!(out.contains(r#""status":"ok""#), "{out}");
    let away = Away::stop_gorpd(world).await;
    let written = texts("full", 4);
    for text in &written {
        away.slack.channel_message(CHANNEL, ALICE, text, None);
    }
    until(|| away.slack.acked().len() == 2 && away.slack.delivered_unacked().len() == 2).await;
    until(|| log.contains("spool full")).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(away.slack.acked().len(), 2, "nothing beyond the bound is acknowledged");
    let (status, body) = get(health, "/healthz").await;
    assert!(status.contains("503") && body.contains(r#""status":"spool full""#), "{status} {body}");
    assert!(body.contains(r#""messages":2"#) && body.contains(r#""gorpd":"disconnected""#), "{body}");
    let (_, metrics) = get(health, "/metrics").await;
    assert!(metrics.contains(r#"gorp_gateway_spool_messages{platform="slack"} 2"#), "{metrics}");
    assert!(metrics.contains(r#"gorp_gateway_spool_full{platform="slack"} 1"#), "{metrics}");
    let (code, out) = probe(health).await;
    assert_eq!(code, Some(1), "the --health probe fails while the spool is full: {out}");

    let world = away.start_gorpd(dir.path()).await;
    answered_once(&world, &written).await;
    until(|| world.slack.unacked() == 0).await;
    assert_eq!(world.slack.lost(), Vec::<String>::new());
    assert!(log.contains("spool drained"));
    let (status, body) = get(health, "/healthz").await;
    assert!(status.contains("200") && body.contains(r#""messages":0"#), "{status} {body}");
    let (_, metrics) = get(health, "/metrics").await;
    assert!(metrics.contains("gorp_gateway_connects_total{platform=\"slack\"} 2\n"), "a reconnect: {metrics}");
    let sends = metrics
        .lines()
        .find_map(|line| {
            line.strip_prefix("gorp_gateway_platform_call_seconds_count{platform=\"slack\",call=\"deliver\"} ")
        })
        .and_then(|count| count.parse::<u64>().ok());
    assert!(sends.is_some_and(|sends| sends >= 4), "each answer sent to Slack is timed: {metrics}");
    gateway.stop().await;
    world.stop().await;
}

/// Runs `gorp-slack --health` against `health` with no other setting and
/// an empty environment, as a container's health check does; its exit code
/// and what it printed.
async fn probe(health: SocketAddr) -> (Option<i32>, String) {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_gorp-slack"))
        .env_clear()
        .args(["--health", &format!("--health-addr={health}")])
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    let printed = String::from_utf8_lossy(&output.stdout) + String::from_utf8_lossy(&output.stderr);
    (output.status.code(), printed.into_owned())
}

/// The `p`th percentile of `sorted`.
fn percentile(sorted: &[Duration], p: usize) -> Duration {
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

/// Measures, printing and asserting no speed: how soon Slack sees an
/// envelope acknowledged while gorpd is away (the spool's commit, as Slack
/// sees it), and how fast the spool drains into gorpd once it is back. Run:
/// `cargo test -p gorp-slack --test integration -- --ignored measure --nocapture`.
#[tokio::test]
#[ignore = "a measurement, not a test"]
async fn measure_spool_ack_latency_and_drain() {
    const MESSAGES: usize = 1000;
    let dir = tempfile::tempdir().unwrap();
    let world = world(dir.path(), RetrySchedule::slack()).await;
    let gateway = world.gateway(&[]);
    world.connected().await;
    let away = Away::stop_gorpd(world).await;
    for i in 0..MESSAGES {
        away.slack.channel_message(CHANNEL, ALICE, &format!("measured {i}"), None);
        // About 200 messages a second, so each latency is one message's, not a queue's.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    until(|| away.slack.acked().len() == MESSAGES).await;
    let mut latencies = away.slack.ack_latencies();
    latencies.sort();
    println!(
        "envelope ack while gorpd is away ({} acks): p50 {:?}, p90 {:?}, p99 {:?}, max {:?}",
        latencies.len(),
        percentile(&latencies, 50),
        percentile(&latencies, 90),
        percentile(&latencies, 99),
        latencies.last().unwrap()
    );
    let world = away.start_gorpd(dir.path()).await;
    let store = world.server.store.clone();
    let stored = |at_least: usize| {
        let store = store.clone();
        eventually(move || {
            let store = store.clone();
            async move { (store.inbound_count().await.ok()? as usize >= at_least).then_some(std::time::Instant::now()) }
        })
    };
    // From gorpd's first stored message, so the gateway's reconnect backoff does not count.
    let first = stored(1).await;
    let drained = stored(MESSAGES).await - first;
    println!(
        "spool drained into gorpd: {MESSAGES} messages in {drained:?}, {:.0} msg/s",
        MESSAGES as f64 / drained.as_secs_f64()
    );
    gateway.stop().await;
    world.stop().await;
}
