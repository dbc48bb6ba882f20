//! In-process gorpd for tests (feature `testing`): binds 127.0.0.1:0 before
//! serving, so it is ready when `start` returns, and gives authenticated
//! gRPC clients.

pub mod clients;

use crate::agent::Backends;
use crate::config::{AcpProfile, AgentProfile, Config};
use crate::{Gorpd, Listeners, ServeError, agent_backends};
use gorp_proto::v1::bus_client::BusClient;
use gorp_proto::v1::control_client::ControlClient;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::transport::{Channel, Endpoint};

pub use gorp_client::{BearerToken, BusApi, ControlApi as Control};

/// The bearer interceptor for a test's `token`.
pub fn bearer(token: &str) -> BearerToken {
    BearerToken::new(token).expect("a test token can be sent")
}

/// A gorpd running inside the test process.
#[derive(Debug)]
pub struct TestServer {
    /// gRPC address.
    pub grpc_addr: SocketAddr,
    /// HTTP address.
    pub http_addr: SocketAddr,
    /// Data directory.
    pub data_dir: PathBuf,
    /// The admin token's secret.
    pub admin_token: String,
    /// The store, to check what was (not) written.
    pub store: crate::store::Store,
    /// The orchestrator (to run garbage collection now, for one).
    pub orchestrator: crate::orchestrator::Orchestrator,
    /// A one-time web login link (`http://<http_addr>/login?token=…`).
    pub login_url: String,
    logins: crate::web::Logins,
    shutdown: CancellationToken,
    handle: JoinHandle<Result<(), ServeError>>,
    _temp: Option<tempfile::TempDir>,
}

/// A 1×1 PNG, for tests that send an image.
pub const TINY_PNG: [u8; 67] = [
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4, 0x89, 0x00, 0x00, 0x00, 0x0a, 0x49,
    0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0x00, 0x01, 0x00, 0x00, 0x05, 0x00, 0x01, 0x0d, 0x0a, 0x2d, 0xb4, 0x00, 0x00,
    0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

/// An ACP profile for `command` that passes messages unframed (`{text}`),
/// so answers are easy to compare.
pub fn unframed_acp(command: &str) -> AcpProfile {
    AcpProfile { prompt_template: Some("{text}".into()), ..AcpProfile::new(command) }
}

/// Makes the ACP agent at `command` (profile "test", unframed) every new
/// session's agent.
pub fn use_acp_agent(config: &mut Config, command: &str) {
    config.agents.insert("test".into(), AgentProfile::Acp(unframed_acp(command)));
    config.default_agent = "test".into();
}

/// Whether this test run puts gorpd's store on Postgres (`GORP_TEST_POSTGRES`,
/// see `tests/postgres.sh`): tests of what only SQLite has (its backup file,
/// its size limit) check Postgres's refusal instead, or are skipped.
pub fn runs_on_postgres() -> bool {
    std::env::var_os("GORP_TEST_POSTGRES").is_some_and(|server| !server.is_empty())
}

/// A config for tests: data in `dir`, echo without pauses.
pub fn test_config(dir: &Path) -> Config {
    let mut config = Config::with_data_dir(dir);
    config.echo_chunk_delay_ms = 1;
    config
}

impl TestServer {
    /// Starts on a fresh temporary data directory.
    pub async fn start() -> Self {
        let temp = tempfile::tempdir().expect("temp dir");
        let mut server = Self::start_in(temp.path()).await;
        server._temp = Some(temp);
        server
    }

    /// Starts on a fresh temporary data directory with `change` applied to the test config.
    pub async fn start_configured(change: impl FnOnce(&mut Config)) -> Self {
        let temp = tempfile::tempdir().expect("temp dir");
        let mut config = test_config(temp.path());
        change(&mut config);
        let backends = agent_backends(&config);
        let mut server = Self::start_with(config, backends).await;
        server._temp = Some(temp);
        server
    }

    /// Starts on `dir` (which may hold an earlier run's data).
    pub async fn start_in(dir: &Path) -> Self {
        let config = test_config(dir);
        let backends = agent_backends(&config);
        Self::start_with(config, backends).await
    }

    /// Starts with a given config and backends.
    pub async fn start_with(config: Config, backends: Backends) -> Self {
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        Self::start_at(config, backends, any, any).await
    }

    /// Starts on given addresses (to restart on the ports an earlier run used).
    pub async fn start_at(config: Config, backends: Backends, grpc_addr: SocketAddr, http_addr: SocketAddr) -> Self {
        Self::start_with_clock(config, backends, std::sync::Arc::new(crate::clock::SystemClock), grpc_addr, http_addr)
            .await
    }

    /// Starts with schedules firing by `clock` (a [`crate::clock::ManualClock`] the test moves).
    pub async fn start_with_clock(
        mut config: Config,
        backends: Backends,
        clock: crate::clock::SharedClock,
        grpc_addr: SocketAddr,
        http_addr: SocketAddr,
    ) -> Self {
        // The engine the test run asks for (`GORP_TEST_POSTGRES`), unless the test chose.
        if config.store_url.is_none() {
            config.store_url = crate::store::test_store_url(&config.data_dir);
        }
        let grpc = TcpListener::bind(grpc_addr).await.expect("bind gRPC");
        let http = TcpListener::bind(http_addr).await.expect("bind HTTP");
        let (grpc_addr, http_addr) = (grpc.local_addr().unwrap(), http.local_addr().unwrap());
        let shutdown = CancellationToken::new();
        let data_dir = config.data_dir.clone();
        let gorpd = Gorpd::open_with_clock(config, backends, clock, shutdown.clone()).await.expect("gorpd opens");
        let admin_token = std::fs::read_to_string(gorpd.admin_token_path()).expect("admin token").trim().to_owned();
        let store = gorpd.store().clone();
        let orchestrator = gorpd.orchestrator().clone();
        let logins = gorpd.logins().clone();
        let login_url = format!("http://{http_addr}/login?token={}", logins.new_link_secret());
        let handle = tokio::spawn(gorpd.run(Listeners { grpc, http }));
        Self {
            grpc_addr,
            http_addr,
            data_dir,
            admin_token,
            store,
            orchestrator,
            login_url,
            logins,
            shutdown,
            handle,
            _temp: None,
        }
    }

    /// Keeps `temp` (the data directory) until the server is dropped.
    pub fn keep_dir(&mut self, temp: tempfile::TempDir) {
        self._temp = Some(temp);
    }

    /// A fresh one-time web login link (for a second browser).
    pub fn new_login_url(&self) -> String {
        format!("http://{}/login?token={}", self.http_addr, self.logins.new_link_secret())
    }

    /// A lazily connecting channel to the gRPC listener.
    pub fn channel(&self) -> Channel {
        Endpoint::from_shared(format!("http://{}", self.grpc_addr)).expect("endpoint").tcp_nodelay(true).connect_lazy()
    }

    /// A Control client with the admin token.
    pub fn control(&self) -> Control {
        ControlClient::with_interceptor(self.channel(), bearer(&self.admin_token))
    }

    /// A Bus client with `token`.
    pub fn bus(&self, token: &str) -> BusApi {
        BusClient::with_interceptor(self.channel(), bearer(token))
    }

    /// A gorp-client `Client` with the admin token (uploads, downloads, tell with files).
    pub async fn client(&self) -> gorp_client::Client {
        let url = format!("http://{}", self.grpc_addr);
        gorp_client::Client::builder(url).token(self.admin_token.clone()).connect().await.expect("client connects")
    }

    /// A Bus client with the admin token.
    pub fn admin_bus(&self) -> BusApi {
        self.bus(&self.admin_token)
    }

    /// A new gateway token for `platform` (named `<platform>-gw`), made
    /// through the Control API as `gorpctl token create` does.
    pub async fn gateway_token(&self, platform: &str) -> String {
        let request = gorp_proto::v1::CreateTokenRequest {
            name: format!("{platform}-gw"),
            kind: gorp_proto::v1::TokenKind::Gateway as i32,
            platform: platform.into(),
        };
        self.control().create_token(request).await.expect("create token").into_inner().secret
    }

    /// Stops gorpd and waits for it; returns what `run` returned.
    pub async fn stop(self) -> Result<(), ServeError> {
        self.shutdown.cancel();
        self.handle.await.expect("gorpd task")
    }
}

fn openssl(dir: &std::path::Path, args: &[&str]) {
    let status = std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl is installed (tests/run.sh installs it)");
    assert!(status.success(), "openssl {args:?}");
}

/// A test CA and a certificate it signed for localhost / 127.0.0.1, made
/// with the openssl CLI; returns (server files, CA PEM).
pub fn tls_certificates(dir: &std::path::Path) -> (crate::config::TlsFiles, Vec<u8>) {
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    openssl(
        dir,
        &[&["req", "-x509", "-days", "1", "-subj", "/CN=gorp test CA", "-keyout", "ca.key", "-out", "ca.pem"][..], &ec]
            .concat(),
    );
    openssl(dir, &[&["req", "-subj", "/CN=localhost", "-keyout", "key.pem", "-out", "server.csr"][..], &ec].concat());
    std::fs::write(dir.join("ext.cnf"), "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n")
        .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            "ext.cnf",
            "-out",
            "cert.pem",
        ],
    );
    let files = crate::config::TlsFiles { cert: dir.join("cert.pem"), key: dir.join("key.pem") };
    (files, std::fs::read(dir.join("ca.pem")).unwrap())
}

/// A self-signed certificate for localhost / 127.0.0.1 that expired on
/// 2025-02-01 (valid from 2025-01-01), made with the openssl CLI's `ca`
/// (`req -x509` takes no past dates); returns (server files, its PEM).
pub fn expired_tls_certificate(dir: &std::path::Path) -> (crate::config::TlsFiles, Vec<u8>) {
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    let san = "subjectAltName=DNS:localhost,IP:127.0.0.1";
    openssl(
        dir,
        &[&["req", "-subj", "/CN=localhost", "-addext", san, "-keyout", "old.key", "-out", "old.csr"][..], &ec]
            .concat(),
    );
    let ca = "[ca]\ndefault_ca = self\n[self]\ndatabase = index.txt\nnew_certs_dir = .\nserial = serial\n\
              default_md = sha256\npolicy = any\ncopy_extensions = copy\n[any]\ncommonName = supplied\n";
    std::fs::write(dir.join("ca.cnf"), ca).unwrap();
    std::fs::write(dir.join("index.txt"), "").unwrap();
    std::fs::write(dir.join("serial"), "01\n").unwrap();
    let dates = ["-startdate", "20250101000000Z", "-enddate", "20250201000000Z"];
    let sign =
        ["ca", "-batch", "-config", "ca.cnf", "-selfsign", "-keyfile", "old.key", "-in", "old.csr", "-out", "old.pem"];
    openssl(dir, &[&sign[..], &dates].concat());
    let files = crate::config::TlsFiles { cert: dir.join("old.pem"), key: dir.join("old.key") };
    (files, std::fs::read(dir.join("old.pem")).unwrap())
}

/// A backend for tests: never answers a prompt starting with "hang"; for one
/// starting with "ask", asks for permission and answers with the decision;
/// echoes anything else.
pub struct HangOrEcho;

impl crate::agent::AgentBackend for HangOrEcho {
    fn prompt(
        &self,
        request: crate::agent::PromptRequest,
    ) -> futures::stream::BoxStream<'static, crate::agent::AgentEvent> {
        use crate::agent::{AgentEvent, PermissionAsk, PermissionDecision, PermissionOption};
        use futures::StreamExt;
        if request.text.starts_with("hang") {
            return futures::stream::pending().boxed();
        }
        if request.text.starts_with("ask") {
            let (reply, decision) = tokio::sync::oneshot::channel();
            let option = |id: &str, kind: &str| PermissionOption { id: id.into(), label: id.into(), kind: kind.into() };
            let options =
                vec![option("yes", "allow_once"), option("yes-always", "allow_always"), option("no", "reject_once")];
            let ask = AgentEvent::Permission(PermissionAsk { title: "write notes.txt".into(), options, reply });
            let answer = async move {
                let text = match decision.await {
                    Ok(PermissionDecision::Selected(id)) => format!("decision: {id}"),
                    _ => "decision: cancelled".to_owned(),
                };
                futures::stream::iter([AgentEvent::Chunk(text), AgentEvent::Done])
            };
            return futures::stream::once(async { ask }).chain(futures::stream::once(answer).flatten()).boxed();
        }
        crate::agent::EchoBackend::new(std::time::Duration::ZERO).prompt(request)
    }
}
