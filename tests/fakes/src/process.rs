//! A binary under test (a gateway, or gorpd itself), as an operator runs
//! it: a child process in its own process group, which the test can SIGKILL
//! as a crash and which dies with its whole group if the test drops it (also
//! on a panic); a clean stop on SIGTERM is expected to exit 0.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// How long a gateway may take to exit after SIGTERM.
const STOP_WITHIN: Duration = Duration::from_secs(30);

/// The workspace binary `name` of the same build profile as the running test
/// or bench (`target/<profile>/<name>`, next to its `deps/`). Panics with
/// the cargo command to run when it has not been built.
pub fn profile_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test's executable");
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).expect("a cargo target directory");
    let path = profile_dir.join(name);
    assert!(path.exists(), "{} is missing: build it first (cargo build [--release] -p {name})", path.display());
    path
}

/// A running binary in its own process group; the group is killed if dropped.
pub struct GatewayProcess {
    child: Child,
    /// The process group (the child's pid), until the child was reaped.
    group: Option<u32>,
}

impl GatewayProcess {
    /// Starts `command` with no stdin in a new process group; panics naming
    /// `command` if it cannot start.
    pub fn spawn(mut command: Command) -> Self {
        let program = command.as_std().get_program().to_string_lossy().into_owned();
        let child = command
            .stdin(Stdio::null())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
        let group = child.id();
        Self { child, group }
    }

    /// Starts `command` like [`GatewayProcess::spawn`] and collects its log
    /// (stderr) lines, for tests that check what an operator would read.
    pub fn spawn_logged(mut command: Command) -> (Self, Log) {
        command.stderr(Stdio::piped());
        let mut process = Self::spawn(command);
        let log = Log::default();
        let stderr = process.child.stderr.take().expect("stderr is piped");
        let lines = log.0.clone();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                lines.lock().unwrap_or_else(|p| p.into_inner()).push(line);
            }
        });
        (process, log)
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Its exit status once it has exited (it is reaped then, so the group
    /// is no longer killed on drop), `None` while it runs.
    pub fn try_wait(&mut self) -> Option<std::process::ExitStatus> {
        let status = self.child.try_wait().expect("check on the process");
        if status.is_some() {
            self.group = None;
        }
        status
    }

    /// Ends the process and everything it started with SIGKILL to its
    /// process group (a crash: nothing is flushed), and reaps it.
    pub async fn kill(mut self) {
        self.kill_group();
        self.child.wait().await.expect("reap the killed process");
        self.group = None;
    }

    /// SIGKILL to the process group, if it may still have members.
    fn kill_group(&self) {
        if let Some(group) = self.group {
            // `kill -KILL -- -PGID`: every process of the group, the child first among them.
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{group}")])
                .stderr(Stdio::null())
                .status();
        }
    }

    /// Sends SIGTERM and expects a clean exit (status 0) within 30 s.
    pub async fn stop(mut self) {
        let pid = self.child.id().expect("the gateway is running").to_string();
        let sent = std::process::Command::new("kill").args(["-TERM", &pid]).status().expect("kill");
        assert!(sent.success(), "could not signal the gateway");
        let exit = tokio::time::timeout(STOP_WITHIN, self.child.wait())
            .await
            .expect("the gateway stops within 30 s of SIGTERM")
            .expect("wait for the gateway");
        // Reaped: its pid, and so the group id, may belong to another process now.
        self.group = None;
        assert!(exit.success(), "the gateway exited with {exit}");
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        self.kill_group();
    }
}

/// The log lines a gateway wrote so far.
#[derive(Clone, Default)]
pub struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    /// Whether a line containing `needle` was written.
    pub fn contains(&self, needle: &str) -> bool {
        self.find(needle).is_some()
    }

    /// Every line written so far.
    pub fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The first line containing `needle`, if one was written.
    pub fn find(&self, needle: &str) -> Option<String> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).iter().find(|line| line.contains(needle)).cloned()
    }
}
