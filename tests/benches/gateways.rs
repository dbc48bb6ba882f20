//! The gateways under load: the release `gorp-telegram` and `gorp-slack`
//! binaries (separate processes, as deployed) against an in-process gorpd
//! and the fake platforms from `gorp-fakes`.
//!
//! Run: `cargo build --release -p gorp-telegram -p gorp-slack` and then
//! `cargo bench -p gorp-e2e --bench gateways` (optionally `-- <messages>`,
//! default 1000). Users DM the bot, each bound to their own echo session;
//! the bench sends every message at once and waits until every answer was
//! posted. It prints end-to-end messages per second (platform -> gateway ->
//! gorpd -> agent -> gorpd -> gateway -> platform, with streaming previews
//! edited in place) and each gateway's resident memory, idle and at its peak.
//! The gateways pace each channel at the platform's documented rate (about
//! one call per second per chat), so with 20 users the answers flow at about
//! 20 per second whatever the machine: the figure is bounded by pacing.

use gorp_fakes::{FakeSlack, FakeTelegram, GatewayProcess, profile_binary};
use gorpd::testing::clients::{bind, create};
use gorpd::testing::{TestServer, test_config};
use std::time::{Duration, Instant};
use tokio::process::Command;

const USERS: usize = 20;
const TELEGRAM_BOT: &str = "123456:bench-bot";
const SLACK_BOT: &str = "xoxb-bench";
const SLACK_APP: &str = "xapp-bench";

/// VmRSS and VmHWM (peak) of `pid`, in MiB.
fn memory_mib(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        let line = status.lines().find(|l| l.starts_with(name)).unwrap_or_default();
        let kib: f64 = line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).unwrap_or(0.0);
        kib / 1024.0
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// A platform under load: how to make user messages and count the answers.
trait Fake {
    fn name(&self) -> &'static str;
    fn channel(&self, user: usize) -> String;
    fn say(&self, user: usize, text: &str);
    fn finals(&self, user: usize) -> usize;
}

impl Fake for FakeTelegram {
    fn name(&self) -> &'static str {
        "telegram"
    }
    fn channel(&self, user: usize) -> String {
        (1000 + user).to_string()
    }
    fn say(&self, user: usize, text: &str) {
        self.dm(1000 + user as i64, &format!("user{user}"), text);
    }
    fn finals(&self, user: usize) -> usize {
        self.texts(1000 + user as i64).iter().filter(|t| t.ends_with(" end")).count()
    }
}

impl Fake for FakeSlack {
    fn name(&self) -> &'static str {
        "slack"
    }
    fn channel(&self, user: usize) -> String {
        FakeSlack::dm_channel(&format!("U{user:04}"))
    }
    fn say(&self, user: usize, text: &str) {
        self.dm(&format!("U{user:04}"), text);
    }
    fn finals(&self, user: usize) -> usize {
        self.texts(&self.channel(user)).iter().filter(|t| t.ends_with(" end")).count()
    }
}

/// Binds each user's DM to a session of its own, sends `messages`, waits for every answer.
async fn load(server: &TestServer, fake: &dyn Fake, gateway: &GatewayProcess, messages: usize) {
    let platform = fake.name();
    for user in 0..USERS {
        let session = format!("{platform}-{user}");
        server.control().create_session(create(&session)).await.expect("create");
        server.control().bind_session(bind(platform, &fake.channel(user), &session)).await.expect("bind");
    }
    let pid = gateway.pid().expect("gateway running");
    let (idle, _) = memory_mib(pid);
    let started = Instant::now();
    for i in 0..messages {
        fake.say(i % USERS, &format!("message {i} of the benchmark, end"));
    }
    loop {
        let answered: usize = (0..USERS).map(|u| fake.finals(u)).sum();
        if answered >= messages {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(600), "{answered} of {messages} answered after 10 minutes");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = started.elapsed();
    let (now, peak) = memory_mib(pid);
    println!(
        "{platform:<9} {messages} messages in {elapsed:>8.2?}  {:>6.0} msg/s end to end   RSS idle {idle:.1} MiB, after {now:.1} MiB, peak {peak:.1} MiB",
        messages as f64 / elapsed.as_secs_f64()
    );
}

fn main() {
    let messages: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(1000);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = test_config(dir.path());
        config.echo_chunk_delay_ms = 0;
        let server = TestServer::start_with(config.clone(), gorpd::agent_backends(&config)).await;
        let gorpd_url = format!("http://{}", server.grpc_addr);

        let telegram = FakeTelegram::start(TELEGRAM_BOT).await;
        let mut command = Command::new(profile_binary("gorp-telegram"));
        command
            .env("GORP_GORPD", &gorpd_url)
            .env("GORP_TOKEN", server.gateway_token("telegram").await)
            .env("GORP_TELEGRAM_TOKEN", TELEGRAM_BOT)
            .env("GORP_TELEGRAM_API_URL", telegram.url())
            .env("GORP_TELEGRAM_STATE_DIR", dir.path().join("telegram-state"))
            .env("RUST_LOG", "warn");
        let telegram_gateway = GatewayProcess::spawn(command);

        let slack = FakeSlack::start(SLACK_BOT, SLACK_APP).await;
        let mut command = Command::new(profile_binary("gorp-slack"));
        command
            .env("GORP_GORPD", &gorpd_url)
            .env("GORP_TOKEN", server.gateway_token("slack").await)
            .env("GORP_SLACK_BOT_TOKEN", SLACK_BOT)
            .env("GORP_SLACK_APP_TOKEN", SLACK_APP)
            .env("GORP_SLACK_API_URL", slack.url())
            .env("GORP_SLACK_STATE_DIR", dir.path().join("slack-state"))
            .env("RUST_LOG", "warn");
        let slack_gateway = GatewayProcess::spawn(command);

        // Let both connect and settle before the idle reading.
        tokio::time::sleep(Duration::from_secs(2)).await;
        println!("{messages} messages from {USERS} users per platform, each user bound to an echo session");
        load(&server, &telegram, &telegram_gateway, messages).await;
        load(&server, &slack, &slack_gateway, messages).await;
        telegram_gateway.stop().await;
        slack_gateway.stop().await;
        server.stop().await.expect("gorpd stops");
    });
}
