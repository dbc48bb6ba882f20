//! One scenario's world: a real in-process gorpd (restartable on the same
//! ports and data), a gateway token for the driver's platform, the driver,
//! and the gateway binary started from the driver's command.

use super::{Driver, Posted, wait_for};
use gorp_fakes::{GatewayProcess, Log};
use gorp_proto::v1 as pb;
use gorpd::config::Config;
use gorpd::testing::TestServer;
use gorpd::testing::clients::{bind, create};

/// gorpd, the platform and the gateway token; see the module doc.
pub struct World<D: Driver> {
    /// The running gorpd.
    pub server: TestServer,
    /// The platform side.
    pub platform: D,
    /// A gateway token for `D::PLATFORM`.
    pub token: String,
    config: Config,
    scripted: bool,
    _data: tempfile::TempDir,
}

impl<D: Driver> World<D> {
    /// gorpd with the echo agent answering at once.
    pub async fn start() -> Self {
        Self::open(1, false).await
    }

    /// gorpd with the echo agent pausing `delay_ms` between streamed chunks.
    pub async fn slow(delay_ms: u64) -> Self {
        Self::open(delay_ms, false).await
    }

    /// gorpd with the `scripted` agent ([`gorpd::testing::HangOrEcho`]),
    /// which asks for permission when a prompt starts with "ask".
    pub async fn with_scripted_agent() -> Self {
        Self::open(1, true).await
    }

    async fn open(echo_chunk_delay_ms: u64, scripted: bool) -> Self {
        let data = tempfile::tempdir().expect("gorpd data dir");
        let mut config = gorpd::testing::test_config(data.path());
        config.echo_chunk_delay_ms = echo_chunk_delay_ms;
        let server = TestServer::start_with(config.clone(), backends(&config, scripted)).await;
        let token = server.gateway_token(D::PLATFORM).await;
        let platform = D::start().await;
        Self { server, platform, token, config, scripted, _data: data }
    }

    /// The gateway binary for this world's gorpd, with `token`.
    pub fn command(&self, token: &str) -> tokio::process::Command {
        self.platform.command(self.server.grpc_addr, token)
    }

    /// Starts the gateway with the world's token and `extra` flags.
    pub fn gateway(&self, extra: &[&str]) -> GatewayProcess {
        let mut command = self.command(&self.token);
        command.args(extra);
        GatewayProcess::spawn(command)
    }

    /// Starts the gateway like [`World::gateway`], collecting its log.
    pub fn logged_gateway(&self, extra: &[&str]) -> (GatewayProcess, Log) {
        let mut command = self.command(&self.token);
        command.args(extra);
        GatewayProcess::spawn_logged(command)
    }

    /// Creates `session` (echo agent) and binds `channel` to it.
    pub async fn bind(&self, session: &str, channel: &D::Channel) {
        let mut control = self.server.control();
        control.create_session(create(session)).await.expect("create the session");
        self.bind_more(session, channel).await;
    }

    /// Binds `channel` to the existing `session`.
    pub async fn bind_more(&self, session: &str, channel: &D::Channel) {
        let id = self.platform.channel_id(channel);
        let request = bind(D::PLATFORM, &id, session);
        self.server.control().bind_session(request).await.expect("bind the channel");
    }

    /// Waits until a bot message in `channel` contains `needle`; returns it.
    pub async fn answer(&self, channel: &D::Channel, needle: &str) -> Posted {
        let what = format!("a message containing {needle:?} in {channel:?}");
        wait_for(D::PATIENCE, &what, || self.platform.posted(channel).into_iter().find(|p| p.text.contains(needle)))
            .await
    }

    /// Waits until the bot's messages in `channel` read exactly `texts`.
    pub async fn texts_become(&self, channel: &D::Channel, texts: &[String]) {
        let what = format!("{} messages in {channel:?}", texts.len());
        wait_for(D::PATIENCE, &what, || (self.texts(channel) == texts).then_some(())).await;
    }

    /// The current texts of the bot's messages in `channel`.
    pub fn texts(&self, channel: &D::Channel) -> Vec<String> {
        self.platform.posted(channel).into_iter().map(|p| p.text).collect()
    }

    /// Waits for the echo of each of `texts` in `channel`, then checks each
    /// was answered by exactly one message.
    pub async fn answered_once(&self, channel: &D::Channel, texts: &[&str]) {
        for text in texts {
            let echo = format!("echo: {text}");
            let what = format!("{echo:?} in {channel:?}");
            wait_for(D::PATIENCE, &what, || self.texts(channel).contains(&echo).then_some(())).await;
        }
        let all = self.texts(channel);
        for text in texts {
            let count = all.iter().filter(|t| **t == format!("echo: {text}")).count();
            assert_eq!(count, 1, "{text:?} answered once: {all:?}");
        }
    }

    /// Inbound messages gorpd stored.
    pub async fn inbound(&self) -> u64 {
        self.server.store.inbound_count().await.expect("count inbound messages")
    }

    /// Waits until gorpd has the gateway's ack for every final so far, so a
    /// restart after this point cannot replay one (delivery is at least once
    /// between a post and its ack).
    pub async fn caught_up(&self) {
        let deadline = tokio::time::Instant::now() + D::PATIENCE;
        loop {
            let request = pb::ListGatewaysRequest {};
            let gateways = self.server.control().list_gateways(request).await.expect("list gateways").into_inner();
            let ours = gateways.gateways.into_iter().find(|g| g.gateway_id == D::PLATFORM);
            if ours.is_some_and(|g| g.acked_seq > 0 && g.pending == 0) {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "the gateway did not ack its finals");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// Stops gorpd, lets `while_away` act on the platform, then starts gorpd
    /// again on the same ports and data; returns the world and what
    /// `while_away` returned.
    pub async fn restart_gorpd<T>(self, while_away: impl AsyncFnOnce(&D) -> T) -> (Self, T) {
        let Self { server, platform, token, config, scripted, _data } = self;
        let (grpc_addr, http_addr) = (server.grpc_addr, server.http_addr);
        server.stop().await.expect("gorpd stops");
        let acted = while_away(&platform).await;
        let server = TestServer::start_at(config.clone(), backends(&config, scripted), grpc_addr, http_addr).await;
        (Self { server, platform, token, config, scripted, _data }, acted)
    }

    /// Stops gorpd.
    pub async fn stop(self) {
        self.server.stop().await.expect("gorpd stops");
    }
}

fn backends(config: &Config, scripted: bool) -> gorpd::agent::Backends {
    let backends = gorpd::agent_backends(config);
    if scripted { backends.with("scripted", gorpd::testing::HangOrEcho) } else { backends }
}
