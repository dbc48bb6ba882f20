//! End-to-end tests: the real `gorp-slack` binary against a real in-process
//! gorpd and the fake Slack (Web API + Socket Mode) from `gorp-fakes`. The
//! shared conformance suite runs through [`driver::Slack`]; the other
//! modules hold the tests that are about Slack alone.
#![allow(missing_docs)]

mod driver;
mod gateway;
mod pacing;
mod previews;
mod resilience;
mod spool;

use gorp_fakes::{FakeSlack, GatewayProcess};
use gorp_proto::v1 as pb;
use gorpd::testing::TestServer;
use gorpd::testing::clients::{eventually, until, within};
use std::process::Stdio;
use std::sync::Arc;
use tokio::process::Command;

/// Every gateway's conformance suite, through the Slack driver.
mod conformance {
    gorp_gateway::conformance_suite!(super::driver::Slack);
    gorp_gateway::conformance_faults!(super::driver::Slack);
}

/// The tokens the fake accepts.
pub const BOT_TOKEN: &str = "xoxb-test-bot-token";
pub const APP_TOKEN: &str = "xapp-test-app-token";
/// A user and their DM channel with the bot.
pub const ALICE: &str = "U0ALICE";

/// A gateway token for the "slack" platform.
pub async fn gateway_token(server: &TestServer) -> String {
    server.gateway_token("slack").await
}

/// The gateway binary for the gorpd at `gorpd`, configured by env vars.
pub fn gateway_command(
    gorpd: std::net::SocketAddr,
    token: &str,
    slack: &FakeSlack,
    state: &std::path::Path,
) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_gorp-slack"));
    command
        .env("GORP_GORPD", format!("http://{gorpd}"))
        .env("GORP_TOKEN", token)
        .env("GORP_SLACK_BOT_TOKEN", BOT_TOKEN)
        .env("GORP_SLACK_APP_TOKEN", APP_TOKEN)
        .env("GORP_SLACK_API_URL", slack.url())
        .env("GORP_SLACK_STATE_DIR", state)
        .env("RUST_LOG", "info")
        .kill_on_drop(true);
    command
}

/// gorpd, the fake Slack, a gateway token and the gateway's state directory.
pub struct World {
    pub server: TestServer,
    pub slack: FakeSlack,
    pub token: String,
    pub state: Arc<tempfile::TempDir>,
}

impl World {
    pub async fn start() -> Self {
        Self::with_server(TestServer::start().await).await
    }

    pub async fn with_server(server: TestServer) -> Self {
        let slack = FakeSlack::start(BOT_TOKEN, APP_TOKEN).await;
        Self::with(server, slack).await
    }

    pub async fn with(server: TestServer, slack: FakeSlack) -> Self {
        let token = gateway_token(&server).await;
        Self { server, slack, token, state: Arc::new(tempfile::tempdir().expect("state dir")) }
    }

    /// The gateway binary configured by env vars, plus `extra` flags.
    pub fn command(&self, token: &str, extra: &[&str]) -> Command {
        let mut command = gateway_command(self.server.grpc_addr, token, &self.slack, self.state.path());
        command.args(extra);
        command
    }

    /// Starts the gateway with the right token.
    pub fn gateway(&self, extra: &[&str]) -> GatewayProcess {
        GatewayProcess::spawn(self.command(&self.token, extra))
    }

    /// Waits until the bot's messages in `channel` include one containing `expect`; returns it.
    pub async fn answer(&self, channel: &str, expect: &str) -> String {
        let slack = &self.slack;
        eventually(|| {
            let found = slack.texts(channel).into_iter().find(|t| t.contains(expect));
            async move { found }
        })
        .await
    }

    /// Waits until the gateway holds a Socket Mode connection.
    pub async fn connected(&self) {
        let slack = &self.slack;
        until(|| slack.connections() >= 1).await;
    }

    /// Waits until gorpd has the gateway's ack for every final so far, so a
    /// restart after this point cannot replay one (delivery is at least once
    /// between a post and its ack).
    pub async fn caught_up(&self) {
        let control = self.server.control();
        eventually(|| {
            let mut control = control.clone();
            async move {
                let gateways = control.list_gateways(pb::ListGatewaysRequest {}).await.ok()?.into_inner().gateways;
                let slack = gateways.into_iter().find(|g| g.gateway_id == "slack")?;
                (slack.acked_seq > 0 && slack.pending == 0).then_some(())
            }
        })
        .await;
    }

    pub async fn stop(self) {
        self.server.stop().await.expect("gorpd stops");
    }
}
