//! The gorpd under test: a child process on a fresh temporary data directory.
//!
//! `Gorpd::start` writes a config with one echo agent profile (`bench`, no
//! pause between chunks) as the default, picks free loopback ports, spawns
//! the binary and returns once `grpc.health.v1` answers SERVING. `restart`
//! stops it with SIGTERM and starts it again on the same data directory.
//! The temporary directory (data, config, log) lives as long as the value;
//! dropping it kills the process (see `process::ChildGuard`).

use crate::client::{self, Control};
use crate::process::{ChildGuard, free_port};
use crate::report::Section;
use crate::workloads::Plan;
use anyhow::{Context, Result};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Longest wait for gorpd to answer SERVING after a spawn.
const START_LIMIT: Duration = Duration::from_secs(120);
/// Longest wait for gorpd to exit after SIGTERM.
const STOP_LIMIT: Duration = Duration::from_secs(30);

/// The config: echo answers as fast as it can; sessions use it by default.
const CONFIG: &str = r#"default_agent = "bench"
echo_chunk_delay_ms = 0

[agents.bench]
kind = "echo"
chunk_delay_ms = 0
"#;

/// A running gorpd owned by the bench.
#[derive(Debug)]
pub(crate) struct Gorpd {
    binary: PathBuf,
    dir: tempfile::TempDir,
    process: Option<ChildGuard>,
    starts: u32,
    /// gRPC address of the running process.
    pub(crate) grpc_addr: SocketAddr,
    /// The admin token's secret.
    pub(crate) admin_token: String,
    /// Time from the last spawn to the first SERVING answer.
    pub(crate) ready_after: Duration,
}

impl Gorpd {
    /// Starts the plan's gorpd on a fresh data directory (and, with a
    /// Postgres server, a fresh database), with the plan's settings (TOML
    /// lines) added to its config, and waits until it serves.
    pub(crate) async fn start(plan: &Plan) -> Result<Self> {
        let binary = &plan.gorpd;
        let dir = tempfile::Builder::new().prefix("gorp-bench-").tempdir().context("cannot create a temp dir")?;
        let mut settings = plan.gorpd_settings.clone();
        if let Some(server) = &plan.postgres {
            let database =
                dir.path().file_name().unwrap_or_default().to_string_lossy().replace('-', "_").to_lowercase();
            settings.push(format!("store_url = \"{}/{database}\"", server.trim_end_matches('/')));
        }
        // Top-level keys must come before the first table.
        let config = format!("{}\n{CONFIG}", settings.join("\n"));
        std::fs::write(dir.path().join("gorpd.toml"), config)?;
        let mut gorpd = Self {
            binary: binary.to_owned(),
            dir,
            process: None,
            starts: 0,
            grpc_addr: "127.0.0.1:0".parse()?,
            admin_token: String::new(),
            ready_after: Duration::ZERO,
        };
        gorpd.spawn().await?;
        Ok(gorpd)
    }

    /// Stops with SIGTERM (returns how long the exit took), then starts again on the same data.
    pub(crate) async fn restart(&mut self) -> Result<Duration> {
        let stopped = self.stop().await?;
        self.spawn().await?;
        Ok(stopped)
    }

    /// Stops with SIGTERM and waits for the exit.
    pub(crate) async fn stop(&mut self) -> Result<Duration> {
        let mut process = self.process.take().context("gorpd is not running")?;
        let (status, took) = process.terminate(STOP_LIMIT).await?;
        anyhow::ensure!(status.success(), "gorpd exited with {status} after SIGTERM");
        Ok(took)
    }

    /// An admin Control client.
    pub(crate) async fn control(&self) -> Result<Control> {
        client::control(self.grpc_addr, &self.admin_token).await
    }

    /// The process's resident set size in bytes.
    pub(crate) fn rss_bytes(&self) -> Option<u64> {
        self.process.as_ref().and_then(ChildGuard::rss_bytes)
    }

    /// The end of gorpd's log (stderr), for error reports.
    pub(crate) fn log_tail(&self, lines: usize) -> String {
        self.process.as_ref().map(|p| p.log_tail(lines)).unwrap_or_default()
    }

    /// Lines logged at WARN or ERROR over every start so far, and the first of them.
    pub(crate) fn log_warnings(&self) -> (usize, Option<String>) {
        let mut count = 0;
        let mut first = None;
        for start in 1..=self.starts {
            let log = std::fs::read_to_string(self.dir.path().join(format!("gorpd-{start}.log"))).unwrap_or_default();
            // tracing's format: `<timestamp> <LEVEL> <target>: <message>`.
            for line in log.lines().filter(|line| matches!(line.split_whitespace().nth(1), Some("WARN" | "ERROR"))) {
                count += 1;
                first.get_or_insert_with(|| line.to_owned());
            }
        }
        (count, first)
    }

    /// Adds the count of WARN/ERROR log lines (and the first one) to `section`.
    pub(crate) fn report_log(&self, section: &mut Section) {
        let (count, first) = self.log_warnings();
        section.metric("gorpd WARN/ERROR log lines", "count", count as f64);
        if let Some(first) = first {
            section.note(format!("gorpd logged: {first}"));
        }
    }

    async fn spawn(&mut self) -> Result<()> {
        self.starts += 1;
        let grpc_addr: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
        let http_addr: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
        let data_dir = self.dir.path().join("data");
        let mut command = Command::new(&self.binary);
        // Settings from the caller's environment must not change what is measured.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("GORP_") && key != "GORP_LOG" {
                command.env_remove(key);
            }
        }
        command
            .arg("--config")
            .arg(self.dir.path().join("gorpd.toml"))
            .arg("--data-dir")
            .arg(&data_dir)
            .arg("--grpc-addr")
            .arg(grpc_addr.to_string())
            .arg("--http-addr")
            .arg(http_addr.to_string());
        let log = self.dir.path().join(format!("gorpd-{}.log", self.starts));
        let spawned = Instant::now();
        let mut process = ChildGuard::spawn("gorpd", command, &log)?;
        let deadline = spawned + START_LIMIT;
        if let Err(error) = client::wait_serving(grpc_addr, deadline, || process.check_alive()).await {
            return Err(process.with_log(error.context("gorpd did not start")));
        }
        self.ready_after = spawned.elapsed();
        self.admin_token = read_admin_token(&data_dir)?;
        self.grpc_addr = grpc_addr;
        self.process = Some(process);
        Ok(())
    }
}

fn read_admin_token(data_dir: &Path) -> Result<String> {
    let path = data_dir.join("admin.token");
    let token = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(token.trim().to_owned())
}

/// The default gorpd binary: `gorpd` next to this executable.
pub(crate) fn default_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    exe.parent().map(|dir| dir.join("gorpd")).unwrap_or_else(|| PathBuf::from("gorpd"))
}
