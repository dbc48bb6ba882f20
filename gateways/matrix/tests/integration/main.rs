//! End-to-end tests: the real `gorp-matrix` binary against a real Synapse
//! and a real in-process gorpd, with a real matrix-sdk client as the user
//! in end-to-end encrypted rooms.
#![allow(missing_docs)]
#![recursion_limit = "256"]

mod fanout;
mod gateway;
mod measure;
mod resilience;
mod synapse;
mod user;

use gorp_fakes::GatewayProcess;
use gorpd::testing::TestServer;
use std::path::Path;
use synapse::Synapse;
use tokio::process::Command;
use tokio::sync::{Semaphore, SemaphorePermit};
use user::User;

/// Each test runs its own Synapse; two at a time keep a 2-core machine responsive.
static SYNAPSES: Semaphore = Semaphore::const_new(2);

pub const BOT_PASSWORD: &str = "bot-password";
pub const USER_PASSWORD: &str = "user-password";
pub const STORE_PASSPHRASE: &str = "store-passphrase";

/// Synapse with the bot and alice registered, gorpd and a gateway token.
pub struct World {
    pub synapse: Synapse,
    pub server: TestServer,
    pub token: String,
    pub bot: String,
    pub alice: String,
    /// The gateway's state directory (kept across gateway restarts).
    pub state: tempfile::TempDir,
    _permit: SemaphorePermit<'static>,
}

impl World {
    pub async fn start() -> Self {
        Self::start_with(TestServer::start().await).await
    }

    pub async fn start_with(server: TestServer) -> Self {
        let permit = SYNAPSES.acquire().await.unwrap();
        let synapse = Synapse::start().await;
        let bot = synapse.register("gorp", BOT_PASSWORD).await;
        let alice = synapse.register("alice", USER_PASSWORD).await;
        let token = server.gateway_token("matrix").await;
        Self { synapse, server, token, bot, alice, state: tempfile::tempdir().unwrap(), _permit: permit }
    }

    /// The gateway binary configured by env vars (alice allowed), plus `extra` flags.
    pub fn command(&self, extra: &[&str]) -> Command {
        // GORP_MATRIX_BIN runs the tests (or the measurement) against another build, e.g. release.
        let binary = std::env::var("GORP_MATRIX_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_gorp-matrix").to_owned());
        let mut command = Command::new(binary);
        command
            .env("GORP_GORPD", format!("http://{}", self.server.grpc_addr))
            .env("GORP_TOKEN", &self.token)
            .env("GORP_ALLOW", &self.alice)
            .env("GORP_MATRIX_HOMESERVER", &self.synapse.url)
            .env("GORP_MATRIX_USER", &self.bot)
            .env("GORP_MATRIX_PASSWORD", BOT_PASSWORD)
            .env("GORP_MATRIX_STATE_DIR", self.state.path())
            .env("GORP_MATRIX_STORE_PASSPHRASE", STORE_PASSPHRASE)
            .env(
                "RUST_LOG",
                std::env::var("GORP_TEST_LOG").unwrap_or_else(|_| "info,matrix_sdk=off,matrix_sdk_crypto=off".into()),
            )
            .args(extra)
            .kill_on_drop(true);
        command
    }

    pub fn gateway(&self, extra: &[&str]) -> GatewayProcess {
        GatewayProcess::spawn(self.command(extra))
    }

    /// Alice, logged in with her own device.
    pub async fn alice(&self) -> User {
        User::login(&self.synapse.url, &self.alice, USER_PASSWORD).await
    }

    pub async fn stop(self) {
        self.server.stop().await.expect("gorpd stops");
    }
}

/// The device id saved in a gateway state directory.
pub fn saved_device(state: &Path) -> String {
    let session: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(state.join("session.json")).expect("session.json")).unwrap();
    session["device_id"].as_str().expect("a device id").to_owned()
}
