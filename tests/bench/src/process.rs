//! Child processes the bench starts (gorpd, nats-server), owned by a guard.
//!
//! Each child runs in its own process group with stdout and stderr in a log
//! file. Dropping the guard kills the whole group with SIGKILL and reaps the
//! child, so a failed or panicking run never leaves a server behind; a clean
//! stop goes through `terminate` (SIGTERM, then wait with an upper bound).

use anyhow::{Context, Result, bail};
use rustix::process::{Pid, Signal, kill_process, kill_process_group};
use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A running child process that is killed and reaped when dropped.
#[derive(Debug)]
pub(crate) struct ChildGuard {
    child: Option<Child>,
    name: String,
    log: PathBuf,
}

impl ChildGuard {
    /// Starts `command` in a new process group, writing its output to `log`.
    pub(crate) fn spawn(name: &str, mut command: Command, log: &Path) -> Result<Self> {
        let out = File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
        let err = out.try_clone()?;
        command.stdin(Stdio::null()).stdout(out).stderr(err).process_group(0);
        let child = command.spawn().with_context(|| format!("cannot start {name} ({:?})", command.get_program()))?;
        Ok(Self { child: Some(child), name: name.to_owned(), log: log.to_owned() })
    }

    /// The child's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Fails if the child has already exited, naming its status.
    pub(crate) fn check_alive(&mut self) -> Result<()> {
        let Some(child) = self.child.as_mut() else { bail!("{} was already stopped", self.name) };
        if let Some(status) = child.try_wait()? {
            bail!("{} exited early ({status})", self.name);
        }
        Ok(())
    }

    /// Sends SIGTERM and waits up to `limit` for the exit; kills it if it does not stop.
    pub(crate) async fn terminate(&mut self, limit: Duration) -> Result<(ExitStatus, Duration)> {
        let Some(child) = self.child.as_mut() else { bail!("{} was already stopped", self.name) };
        let started = Instant::now();
        kill_process(Pid::from_child(child), Signal::TERM).context("cannot send SIGTERM")?;
        // std's Child has no async wait; poll with a short interval and a hard bound.
        loop {
            if let Some(status) = child.try_wait()? {
                self.child = None;
                return Ok((status, started.elapsed()));
            }
            if started.elapsed() > limit {
                self.kill();
                bail!("{} did not stop within {limit:?} of SIGTERM (killed)", self.name);
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Resident set size in bytes (VmRSS from /proc), if the process still runs.
    pub(crate) fn rss_bytes(&self) -> Option<u64> {
        rss_bytes(self.pid())
    }

    /// `error` followed by the last lines of the child's log, for a failed start.
    pub(crate) fn with_log(&self, error: anyhow::Error) -> anyhow::Error {
        anyhow::anyhow!("{error:#}\n--- end of the log of {} ---\n{}", self.name, self.log_tail(15))
    }

    /// The last `lines` lines of the child's log.
    pub(crate) fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // The group id is the child's pid (process_group(0)); this also reaches its own children.
            let _ = kill_process_group(Pid::from_child(&child), Signal::KILL);
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// VmRSS of process `pid` in bytes.
pub(crate) fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// A localhost port that was free a moment ago (bound to port 0, then released).
pub(crate) fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("cannot bind 127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}
