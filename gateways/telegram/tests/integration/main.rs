//! End-to-end tests: the real `gorp-telegram` binary against a real
//! in-process gorpd and the fake Bot API from `gorp-fakes`.
#![allow(missing_docs)]

mod gateway;
mod resilience;

use gorp_fakes::{FakeTelegram, GatewayProcess};
use gorpd::testing::TestServer;
use gorpd::testing::clients::{eventually, until, within};
use std::process::Stdio;
use tokio::process::Command;

/// The bot token the fake accepts.
pub const BOT_TOKEN: &str = "123456:test-bot-token";

/// A gateway token for the "telegram" platform.
pub async fn gateway_token(server: &TestServer) -> String {
    server.gateway_token("telegram").await
}

/// gorpd, the fake Bot API and a gateway token.
pub struct World {
    pub server: TestServer,
    pub telegram: FakeTelegram,
    pub token: String,
}

impl World {
    pub async fn start() -> Self {
        let server = TestServer::start().await;
        let token = gateway_token(&server).await;
        let telegram = FakeTelegram::start(BOT_TOKEN).await;
        Self { server, telegram, token }
    }

    /// The gateway binary configured by env vars, plus `extra` flags.
    pub fn command(&self, token: &str, extra: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_gorp-telegram"));
        command
            .env("GORP_GORPD", format!("http://{}", self.server.grpc_addr))
            .env("GORP_TOKEN", token)
            .env("GORP_TELEGRAM_TOKEN", BOT_TOKEN)
            .env("GORP_TELEGRAM_API_URL", self.telegram.url())
            .env("GORP_TELEGRAM_STATE_DIR", self.server.data_dir.join("telegram-state"))
            .env("RUST_LOG", "info")
            .args(extra)
            .kill_on_drop(true);
        command
    }

    /// Starts the gateway with the right token.
    pub fn gateway(&self, extra: &[&str]) -> GatewayProcess {
        GatewayProcess::spawn(self.command(&self.token, extra))
    }

    /// Waits until the bot's messages in `chat` include one containing `expect`; returns it.
    pub async fn answer(&self, chat: i64, expect: &str) -> String {
        let telegram = &self.telegram;
        eventually(|| {
            let found = telegram.texts(chat).into_iter().find(|t| t.contains(expect));
            async move { found }
        })
        .await
    }

    pub async fn stop(self) {
        self.server.stop().await.expect("gorpd stops");
    }
}
