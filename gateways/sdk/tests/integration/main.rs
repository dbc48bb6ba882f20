//! Integration tests of the gateway runner against a real in-process gorpd,
//! with the in-memory platform from the `testkit` feature.

mod delivery;
mod resilience;

use gorp_gateway::testkit::MemoryPlatform;
use gorp_gateway::{BackoffConfig, GatewayConfig, GatewayError, Limits, Runner};
use gorpd::testing::TestServer;
use gorpd::testing::clients::{eventually, until};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A config for `server` with quick retries and edits.
pub fn config(server: &TestServer, token: &str) -> GatewayConfig {
    let mut config = GatewayConfig::new(token).gorpd(format!("http://{}", server.grpc_addr));
    config.backoff = BackoffConfig { initial: Duration::from_millis(50), max: Duration::from_millis(400) };
    config.edit_interval = Duration::from_millis(20);
    config
}

/// A platform with a `max_chars` limit.
pub fn platform(max_chars: usize, edits: bool) -> Arc<MemoryPlatform> {
    MemoryPlatform::new(Limits { max_chars, edits })
}

/// A running gateway.
pub struct Gateway {
    shutdown: CancellationToken,
    handle: JoinHandle<Result<(), GatewayError>>,
}

impl Gateway {
    /// Starts a runner for `platform`.
    pub fn start(config: GatewayConfig, platform: Arc<MemoryPlatform>) -> Self {
        let shutdown = CancellationToken::new();
        let handle = tokio::spawn(Runner::new(config, platform).run(shutdown.clone()));
        Self { shutdown, handle }
    }

    /// Stops it and returns what `run` returned.
    pub async fn stop(self) -> Result<(), GatewayError> {
        self.shutdown.cancel();
        gorpd::testing::clients::within(self.handle).await.expect("runner task")
    }
}

/// Waits until `channel` shows a message satisfying `found`; returns its text.
pub async fn wait_for_text(platform: &MemoryPlatform, channel: &str, found: impl Fn(&str) -> bool) -> String {
    eventually(|| {
        let text = platform.texts(channel).into_iter().find(|t| found(t));
        async move { text }
    })
    .await
}

/// A user's message in `channel`, answered: waits for a text containing `expect`.
pub async fn exchange(platform: &MemoryPlatform, channel: &str, text: &str, expect: &str) -> String {
    platform.user_says(channel, "u1", text);
    wait_for_text(platform, channel, |t| t.contains(expect)).await
}
