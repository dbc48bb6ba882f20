//! The real `gorpd` binary for the cross-process tests: a separate process in
//! its own process group (SIGKILLed with its group as a crash, and when the
//! test drops it or panics), on a config the test writes, with its log
//! collected. Its serving line gives the gRPC URL and the admin token; a test
//! that fails prints the log's tail.

use gorp_fakes::{GatewayProcess, Log, profile_binary};
use gorpd::testing::{BusApi, Control};
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::process::Command;

/// How long gorpd may take to serve (migrations on a busy Postgres included).
const START_WITHIN: Duration = Duration::from_secs(60);
/// How many log lines a failed test prints per gorpd.
const LOG_TAIL: usize = 60;

/// A running gorpd binary.
pub(crate) struct Gorpd {
    /// The process, until the test stopped or killed it.
    process: Option<GatewayProcess>,
    /// The gRPC URL, `http://127.0.0.1:PORT`.
    pub(crate) url: String,
    /// The secret of this gorpd's admin token.
    pub(crate) admin_token: String,
    /// What it logged so far.
    pub(crate) log: Log,
    /// The name its log tail is printed under.
    name: String,
}

/// The gorpd command for data directory `dir/<name>`, with `config` (TOML)
/// written to `dir/<name>.toml`, serving on free loopback ports, logging at info.
pub(crate) fn command(dir: &Path, name: &str, config: &str) -> Command {
    let config_file = dir.join(format!("{name}.toml"));
    std::fs::write(&config_file, config).expect("write gorpd's config");
    let mut command = Command::new(profile_binary("gorpd"));
    command.arg("--config").arg(config_file).arg("--data-dir").arg(dir.join(name));
    command.args(["--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"]).env("GORP_LOG", "info");
    command
}

impl Gorpd {
    /// Runs `command` (see [`command`]) and waits until it serves; panics
    /// with its log if it exits or does not serve within a minute.
    pub(crate) async fn spawn(name: &str, command: Command) -> Self {
        let (mut process, log) = GatewayProcess::spawn_logged(command);
        let started = Instant::now();
        while !log.contains("gorpd is serving") {
            if let Some(exit) = process.try_wait() {
                // What it wrote last may still be on its way through the pipe.
                tokio::time::sleep(Duration::from_millis(100)).await;
                panic!("{name} exited with {exit}:\n{}", tail(&log));
            }
            assert!(started.elapsed() < START_WITHIN, "{name} did not serve:\n{}", tail(&log));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let url = format!("http://{}", field(&log, "gorpd is serving", "grpc"));
        let token_file = field(&log, "gorpd is serving", "admin_token");
        let admin_token = std::fs::read_to_string(token_file).expect("the admin token file").trim().to_owned();
        Self { process: Some(process), url, admin_token, log, name: name.to_owned() }
    }

    /// A gorp-client `Client` with the admin token.
    pub(crate) async fn client(&self) -> gorp_client::Client {
        gorp_client::Client::builder(&self.url).token(self.admin_token.clone()).connect().await.unwrap()
    }

    /// A Control client with the admin token.
    pub(crate) async fn control(&self) -> Control {
        self.client().await.control_api()
    }

    /// A Bus client with the admin token.
    pub(crate) async fn bus(&self) -> BusApi {
        self.client().await.bus_api()
    }

    /// A new gateway token for `platform` (named `<platform>-gw`), as `gorpctl token create` makes it.
    pub(crate) async fn gateway_token(&self, platform: &str) -> String {
        self.client().await.create_gateway_token(&format!("{platform}-gw"), platform).await.unwrap()
    }

    /// SIGKILL to its process group: a crash, nothing flushed.
    pub(crate) async fn kill(mut self) {
        self.process.take().expect("gorpd runs").kill().await;
    }

    /// SIGTERM; expects a clean exit within 30 s.
    pub(crate) async fn stop(mut self) {
        self.process.take().expect("gorpd runs").stop().await;
    }
}

impl Drop for Gorpd {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("---- the log of {} (last {LOG_TAIL} lines) ----\n{}", self.name, tail(&self.log));
        }
    }
}

/// The last lines of `log`, one a line.
fn tail(log: &Log) -> String {
    let lines = log.lines();
    lines[lines.len().saturating_sub(LOG_TAIL)..].join("\n")
}

/// The value of `key=` on the first log line containing `needle`.
pub(crate) fn field(log: &Log, needle: &str, key: &str) -> String {
    let line = log.find(needle).unwrap_or_else(|| panic!("no line with {needle:?}"));
    let start = line.find(&format!(" {key}=")).unwrap_or_else(|| panic!("no {key}= in {line}")) + key.len() + 2;
    line[start..].split(' ').next().unwrap().to_owned()
}
