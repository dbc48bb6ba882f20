//! The real chat gateway binaries for the cross-process tests: the fake
//! Telegram and Slack, and `gorp-telegram` and `gorp-slack` started against
//! a gorpd (in-process, or one or several `gorpd` processes) with their state
//! in the test's directory.

use gorp_fakes::{FakeSlack, FakeTelegram, GatewayProcess, profile_binary};
use gorpd::testing::TestServer;
use std::path::Path;
use tokio::process::Command;

pub(crate) const TELEGRAM_BOT: &str = "123456:e2e-bot-token";
pub(crate) const SLACK_BOT: &str = "xoxb-e2e-bot";
pub(crate) const SLACK_APP: &str = "xapp-e2e-app";
pub(crate) const SLACK_USER: &str = "U0BOB";
pub(crate) const TELEGRAM_CHAT: i64 = 42;

/// Where a gateway connects: gorpd's gRPC URL (several replicas' URLs
/// separated by commas) and the gateway token it presents there.
pub(crate) struct Upstream {
    pub(crate) url: String,
    pub(crate) token: String,
}

impl Upstream {
    /// The in-process `server`, with a new gateway token for `platform`.
    pub(crate) async fn of(server: &TestServer, platform: &str) -> Self {
        Self { url: format!("http://{}", server.grpc_addr), token: server.gateway_token(platform).await }
    }
}

/// Both fake platforms and a running gateway for each.
pub(crate) struct ChatGateways {
    pub(crate) telegram: FakeTelegram,
    pub(crate) slack: FakeSlack,
    telegram_gateway: GatewayProcess,
    slack_gateway: GatewayProcess,
}

impl ChatGateways {
    /// Starts the fakes and both gateways against `server`, keeping their state under `state`.
    pub(crate) async fn start(server: &TestServer, state: &Path) -> Self {
        let (telegram, slack) = (Upstream::of(server, "telegram").await, Upstream::of(server, "slack").await);
        Self::start_on(&telegram, &slack, state).await
    }

    /// Starts the fakes, the Telegram gateway against `telegram` and the
    /// Slack gateway against `slack`, keeping their state under `state`.
    pub(crate) async fn start_on(telegram: &Upstream, slack: &Upstream, state: &Path) -> Self {
        let (fake_telegram, fake_slack) =
            (FakeTelegram::start(TELEGRAM_BOT).await, FakeSlack::start(SLACK_BOT, SLACK_APP).await);
        let telegram_gateway = GatewayProcess::spawn(telegram_gateway(&fake_telegram, telegram, state));
        let slack_gateway = GatewayProcess::spawn(slack_gateway(&fake_slack, slack, state));
        Self { telegram: fake_telegram, slack: fake_slack, telegram_gateway, slack_gateway }
    }

    /// Stops both gateways (SIGTERM, then their process groups).
    pub(crate) async fn stop(self) {
        self.telegram_gateway.stop().await;
        self.slack_gateway.stop().await;
    }
}

/// The `gorp-telegram` command for `telegram` against `upstream`, its state under `state`.
pub(crate) fn telegram_gateway(telegram: &FakeTelegram, upstream: &Upstream, state: &Path) -> Command {
    gateway(
        "gorp-telegram",
        upstream,
        &[
            ("GORP_TELEGRAM_TOKEN", TELEGRAM_BOT.into()),
            ("GORP_TELEGRAM_API_URL", telegram.url()),
            ("GORP_TELEGRAM_STATE_DIR", state.join("telegram-state").display().to_string()),
        ],
    )
}

/// The `gorp-slack` command for `slack` against `upstream`, its state under `state`.
pub(crate) fn slack_gateway(slack: &FakeSlack, upstream: &Upstream, state: &Path) -> Command {
    gateway(
        "gorp-slack",
        upstream,
        &[
            ("GORP_SLACK_BOT_TOKEN", SLACK_BOT.into()),
            ("GORP_SLACK_APP_TOKEN", SLACK_APP.into()),
            ("GORP_SLACK_API_URL", slack.url()),
            ("GORP_SLACK_STATE_DIR", state.join("slack-state").display().to_string()),
        ],
    )
}

/// A gateway binary's command against `upstream`, with its platform's `env`.
fn gateway(binary: &str, upstream: &Upstream, env: &[(&str, String)]) -> Command {
    let mut command = Command::new(profile_binary(binary));
    command.env("GORP_GORPD", &upstream.url).env("GORP_TOKEN", &upstream.token).env("RUST_LOG", "info");
    command.envs(env.iter().map(|(k, v)| (k, v)));
    command
}
