//! A gateway binary under test, as an operator runs it: a child process
//! (killed if the test drops it) that must stop cleanly on SIGTERM.

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

/// A running gateway binary; killed if dropped.
pub struct GatewayProcess {
    child: Child,
}

impl GatewayProcess {
    /// Starts `command` with no stdin; panics naming `command` if it cannot start.
    pub fn spawn(mut command: Command) -> Self {
        let program = command.as_std().get_program().to_string_lossy().into_owned();
        let child = command
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
        Self { child }
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

    /// Ends the process with SIGKILL (a crash: nothing is flushed) and reaps it.
    pub async fn kill(mut self) {
        self.child.kill().await.expect("SIGKILL the gateway");
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
        assert!(exit.success(), "the gateway exited with {exit}");
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

    /// The first line containing `needle`, if one was written.
    pub fn find(&self, needle: &str) -> Option<String> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).iter().find(|line| line.contains(needle)).cloned()
    }
}
