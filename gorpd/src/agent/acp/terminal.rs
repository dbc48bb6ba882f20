//! Terminals an ACP agent runs through gorp (`terminal/create`, `output`,
//! `wait_for_exit`, `kill`, `release`): commands from the profile's
//! allow-list only, in the session's workspace, each ended after the
//! profile's time limit.
//!
//! Each terminal is one child process in its own process group, with stdout
//! and stderr merged into one buffer that keeps the last `output_byte_limit`
//! bytes (at most [`MAX_OUTPUT_BYTES`]). What it prints is also streamed to
//! the running turn as progress, up to [`MAX_STREAMED_BYTES`] per terminal,
//! so the channel sees a build run while the agent waits for it. Releasing a
//! terminal, or the connection ending, kills what is still running.

use super::fs;
use agent_client_protocol::v1::schema::TerminalExitStatus;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Largest output a terminal keeps, whatever the agent asks for.
pub(super) const MAX_OUTPUT_BYTES: usize = 1024 * 1024;
/// Most output of one terminal streamed to the channel as progress.
pub(super) const MAX_STREAMED_BYTES: usize = 8 * 1024;
/// Most terminals one agent process may hold at once.
pub(super) const MAX_TERMINALS: usize = 16;

/// What a profile lets its agent run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TerminalPolicy {
    /// Program names (or full paths) the agent may start; `*` allows any. Empty: no terminals.
    pub allow: Vec<String>,
    /// A command still running after this long is killed.
    pub timeout: Duration,
}

impl TerminalPolicy {
    /// Whether terminals are offered at all.
    pub(super) fn enabled(&self) -> bool {
        !self.allow.is_empty()
    }

    /// Whether `command` is on the allow-list (by full text or by program name).
    fn allows(&self, command: &str) -> bool {
        let program = Path::new(command).file_name().and_then(|name| name.to_str()).unwrap_or(command);
        self.allow.iter().any(|allowed| allowed == "*" || allowed == command || allowed == program)
    }
}

/// Where a terminal's output is shown live (the running turn's progress).
pub(super) type Progress = Arc<dyn Fn(String) + Send + Sync>;

/// The terminals of one agent process.
pub(super) struct Terminals {
    policy: TerminalPolicy,
    workspace: PathBuf,
    next_id: AtomicU64,
    by_id: Mutex<HashMap<String, Arc<Terminal>>>,
}

struct Terminal {
    output: Mutex<Output>,
    exit: watch::Receiver<Option<TerminalExitStatus>>,
    kill: CancellationToken,
}

#[derive(Default)]
struct Output {
    text: String,
    truncated: bool,
    limit: usize,
    streamed: usize,
}

impl Terminals {
    /// No terminals yet, for an agent in `workspace`.
    pub(super) fn new(policy: TerminalPolicy, workspace: &Path) -> Self {
        Self { policy, workspace: workspace.to_path_buf(), next_id: AtomicU64::new(1), by_id: Mutex::default() }
    }

    /// Whether the agent is told it may use terminals.
    pub(super) fn enabled(&self) -> bool {
        self.policy.enabled()
    }

    /// Starts `command` if the policy allows it; the id names the new terminal.
    pub(super) fn create(
        &self,
        command: &str,
        args: &[String],
        env: &[(String, String)],
        cwd: Option<&Path>,
        output_byte_limit: Option<u64>,
        progress: Progress,
    ) -> Result<String, String> {
        if !self.policy.allows(command) {
            return Err(format!(
                "command \"{command}\" is not allowed by this gorp profile (terminal_commands: {})",
                if self.policy.allow.is_empty() { "none".to_owned() } else { self.policy.allow.join(", ") }
            ));
        }
        if self.by_id.lock().expect("terminals lock").len() >= MAX_TERMINALS {
            return Err(format!("at most {MAX_TERMINALS} terminals at once; release one first"));
        }
        let cwd = fs::confine(&self.workspace, cwd.unwrap_or(&self.workspace))?;
        let mut child = tokio::process::Command::new(command)
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .current_dir(&cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start \"{command}\": {e}"))?;
        let limit = output_byte_limit.map_or(MAX_OUTPUT_BYTES, |l| (l as usize).min(MAX_OUTPUT_BYTES));
        let (exit_tx, exit) = watch::channel(None);
        let terminal = Arc::new(Terminal {
            output: Mutex::new(Output { limit, ..Output::default() }),
            exit,
            kill: CancellationToken::new(),
        });
        let id = format!("term-{}", self.next_id.fetch_add(1, Ordering::Relaxed));
        tracing::info!(terminal = %id, command, ?args, cwd = %cwd.display(), "agent terminal started");
        progress(format!("🖥 $ {command} {}", args.join(" ")).trim_end().to_owned());
        let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
        let readers =
            [stdout.map(|s| Box::new(s) as Box<dyn AsyncRead + Unpin + Send>), stderr.map(|s| Box::new(s) as _)];
        let readers: Vec<_> = readers
            .into_iter()
            .flatten()
            .map(|r| tokio::spawn(collect(r, terminal.clone(), progress.clone())))
            .collect();
        let timeout = self.policy.timeout;
        let watched = terminal.clone();
        tokio::spawn(async move {
            let status = tokio::select! {
                status = child.wait() => status.ok(),
                _ = watched.kill.cancelled() => kill(&mut child).await,
                _ = tokio::time::sleep(timeout) => {
                    progress(format!("🖥 killed after {} s (terminal_timeout_secs)", timeout.as_secs()));
                    kill(&mut child).await
                }
            };
            for reader in readers {
                let _ = reader.await;
            }
            let _ = exit_tx.send(Some(exit_status(status)));
        });
        self.by_id.lock().expect("terminals lock").insert(id.clone(), terminal);
        Ok(id)
    }

    /// The output so far, whether it was cut, and the exit status once it exited.
    pub(super) fn output(&self, id: &str) -> Result<(String, bool, Option<TerminalExitStatus>), String> {
        let terminal = self.get(id)?;
        let output = terminal.output.lock().expect("output lock");
        Ok((output.text.clone(), output.truncated, terminal.exit.borrow().clone()))
    }

    /// Waits until the command exits (the caller must not hold the connection's loop).
    pub(super) fn wait(&self, id: &str) -> Result<impl Future<Output = TerminalExitStatus> + use<>, String> {
        let mut exit = self.get(id)?.exit.clone();
        Ok(async move {
            match exit.wait_for(Option::is_some).await {
                Ok(status) => status.clone().unwrap_or_default(),
                Err(_) => TerminalExitStatus::new(),
            }
        })
    }

    /// Kills the command; the terminal stays for `output`.
    pub(super) fn kill(&self, id: &str) -> Result<(), String> {
        self.get(id)?.kill.cancel();
        Ok(())
    }

    /// Kills the command if it still runs and forgets the terminal.
    pub(super) fn release(&self, id: &str) -> Result<(), String> {
        let terminal = self.by_id.lock().expect("terminals lock").remove(id).ok_or_else(|| unknown(id))?;
        terminal.kill.cancel();
        Ok(())
    }

    fn get(&self, id: &str) -> Result<Arc<Terminal>, String> {
        self.by_id.lock().expect("terminals lock").get(id).cloned().ok_or_else(|| unknown(id))
    }
}

impl Drop for Terminals {
    fn drop(&mut self) {
        for terminal in self.by_id.lock().expect("terminals lock").values() {
            terminal.kill.cancel();
        }
    }
}

fn unknown(id: &str) -> String {
    format!("unknown terminal \"{id}\"")
}

/// Reads one pipe into the terminal's buffer and the turn's progress.
async fn collect(mut pipe: Box<dyn AsyncRead + Unpin + Send>, terminal: Arc<Terminal>, progress: Progress) {
    let mut buffer = vec![0; 8192];
    while let Ok(read) = pipe.read(&mut buffer).await {
        if read == 0 {
            break;
        }
        let text = String::from_utf8_lossy(&buffer[..read]).into_owned();
        let shown = terminal.output.lock().expect("output lock").append(&text);
        if let Some(shown) = shown {
            progress(shown);
        }
    }
}

impl Output {
    /// Appends `text`, keeping the last `limit` bytes; returns what may still be streamed.
    fn append(&mut self, text: &str) -> Option<String> {
        self.text.push_str(text);
        if self.text.len() > self.limit {
            let mut cut = self.text.len() - self.limit;
            while !self.text.is_char_boundary(cut) {
                cut += 1;
            }
            self.text.drain(..cut);
            self.truncated = true;
        }
        let room = MAX_STREAMED_BYTES.saturating_sub(self.streamed);
        if room == 0 {
            return None;
        }
        let mut end = text.len().min(room);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        self.streamed += end;
        let mut shown = text[..end].trim_end().to_owned();
        if self.streamed >= MAX_STREAMED_BYTES {
            shown.push_str("\n🖥 … (more output; the agent sees the rest)");
        }
        (!shown.is_empty()).then_some(shown)
    }
}

/// Kills the command's whole process group, then reaps it.
async fn kill(child: &mut tokio::process::Child) -> Option<std::process::ExitStatus> {
    if let Some(pid) = child.id() {
        // The group id is the child's pid (process_group(0)); `kill` reaches its children too.
        let _ = tokio::process::Command::new("kill").args(["-KILL", "--", &format!("-{pid}")]).status().await;
    }
    let _ = child.start_kill();
    child.wait().await.ok()
}

fn exit_status(status: Option<std::process::ExitStatus>) -> TerminalExitStatus {
    use std::os::unix::process::ExitStatusExt;
    let Some(status) = status else { return TerminalExitStatus::new().signal("SIGKILL".to_owned()) };
    match (status.code(), status.signal()) {
        (Some(code), _) => TerminalExitStatus::new().exit_code(code as u32),
        (None, Some(9)) => TerminalExitStatus::new().signal("SIGKILL".to_owned()),
        (None, Some(15)) => TerminalExitStatus::new().signal("SIGTERM".to_owned()),
        (None, signal) => TerminalExitStatus::new().signal(format!("SIG{}", signal.unwrap_or(0))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terminals(allow: &[&str], workspace: &Path) -> Terminals {
        let policy =
            TerminalPolicy { allow: allow.iter().map(|s| s.to_string()).collect(), timeout: Duration::from_secs(5) };
        Terminals::new(policy, workspace)
    }

    fn quiet() -> Progress {
        Arc::new(|_| {})
    }

    #[tokio::test]
    async fn an_allowed_command_runs_in_the_workspace_and_reports_its_exit() {
        let dir = tempfile::tempdir().unwrap();
        let terminals = terminals(&["sh"], dir.path());
        let id = terminals.create("sh", &["-c".into(), "pwd; exit 7".into()], &[], None, None, quiet()).unwrap();
        let status = terminals.wait(&id).unwrap().await;
        assert_eq!(status.exit_code, Some(7));
        let (output, truncated, exit) = terminals.output(&id).unwrap();
        assert_eq!(output.trim(), dir.path().canonicalize().unwrap().display().to_string());
        assert!(!truncated && exit.is_some());
        terminals.release(&id).unwrap();
        assert!(terminals.output(&id).is_err());
    }

    #[tokio::test]
    async fn commands_off_the_list_and_cwds_outside_the_workspace_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let terminals = terminals(&["echo"], dir.path());
        let error = terminals.create("rm", &["-rf".into(), "x".into()], &[], None, None, quiet()).unwrap_err();
        assert!(error.contains("\"rm\" is not allowed") && error.contains("terminal_commands: echo"), "{error}");
        let error = terminals.create("echo", &[], &[], Some(Path::new("/")), None, quiet()).unwrap_err();
        assert!(error.contains("outside the session's workspace"), "{error}");
        assert!(terminals.create("/bin/echo", &[], &[], None, None, quiet()).is_ok(), "by program name");
    }

    #[tokio::test]
    async fn the_time_limit_kills_and_the_output_limit_keeps_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let policy = TerminalPolicy { allow: vec!["*".into()], timeout: Duration::from_millis(300) };
        let terminals = Terminals::new(policy, dir.path());
        let id = terminals.create("sleep", &["30".into()], &[], None, None, quiet()).unwrap();
        assert_eq!(terminals.wait(&id).unwrap().await.signal.as_deref(), Some("SIGKILL"));
        let script = "for i in $(seq 1 100); do echo line$i; done";
        let id = terminals.create("sh", &["-c".into(), script.into()], &[], None, Some(20), quiet()).unwrap();
        terminals.wait(&id).unwrap().await;
        let (output, truncated, _) = terminals.output(&id).unwrap();
        assert!(truncated && output.len() <= 20 && output.ends_with("line100\n"), "{output:?}");
    }
}
