//! The real chat gateway binaries for the cross-process tests: the fake
//! Telegram and Slack, and `gorp-telegram` and `gorp-slack` started against
//! a gorpd with their state in the test's directory.

use gorp_fakes::{FakeSlack, FakeTelegram, GatewayProcess, profile_binary};
use gorpd::testing::TestServer;
use std::path::Path;
use tokio::process::Command;

pub(crate) const TELEGRAM_BOT: &str = "123456:e2e-bot-token";
pub(crate) const SLACK_BOT: &str = "xoxb-e2e-bot";
pub(crate) const SLACK_APP: &str = "xapp-e2e-app";
pub(crate) const SLACK_USER: &str = "U0BOB";
pub(crate) const TELEGRAM_CHAT: i64 = 42;

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
        let telegram = FakeTelegram::start(TELEGRAM_BOT).await;
        let slack = FakeSlack::start(SLACK_BOT, SLACK_APP).await;
        let gorpd = format!("http://{}", server.grpc_addr);
        let telegram_gateway = spawn(
            "gorp-telegram",
            &[
                ("GORP_GORPD", gorpd.clone()),
                ("GORP_TOKEN", server.gateway_token("telegram").await),
                ("GORP_TELEGRAM_TOKEN", TELEGRAM_BOT.into()),
                ("GORP_TELEGRAM_API_URL", telegram.url()),
                ("GORP_TELEGRAM_STATE_DIR", state.join("telegram-state").display().to_string()),
            ],
        );
        let slack_gateway = spawn(
            "gorp-slack",
            &[
                ("GORP_GORPD", gorpd),
                ("GORP_TOKEN", server.gateway_token("slack").await),
                ("GORP_SLACK_BOT_TOKEN", SLACK_BOT.into()),
                ("GORP_SLACK_APP_TOKEN", SLACK_APP.into()),
                ("GORP_SLACK_API_URL", slack.url()),
                ("GORP_SLACK_STATE_DIR", state.join("slack-state").display().to_string()),
            ],
        );
        Self { telegram, slack, telegram_gateway, slack_gateway }
    }

    /// Stops both gateways (SIGTERM, then their process groups).
    pub(crate) async fn stop(self) {
        self.telegram_gateway.stop().await;
        self.slack_gateway.stop().await;
    }
}

/// Starts a gateway binary with `env`.
fn spawn(binary: &str, env: &[(&str, String)]) -> GatewayProcess {
    let mut command = Command::new(profile_binary(binary));
    command.envs(env.iter().map(|(k, v)| (k, v))).env("RUST_LOG", "info");
    GatewayProcess::spawn(command)
}
