//! An agent's stderr: every line logged under the session's name, and the
//! last few kept in a ring buffer so the error a user sees when the process
//! dies can quote what the agent said ("API key is not set").
//!
//! One tail per gorp session lives as long as its chain of processes (a
//! restarted process keeps appending to it). Memory is bounded: at most
//! [`TAIL_LINES`] lines of at most [`LINE_CHARS`] characters each.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::task::JoinHandle;

/// Lines kept per session.
pub(super) const TAIL_LINES: usize = 20;
/// Longest kept line, in characters; longer lines are cut with `…`.
pub(super) const LINE_CHARS: usize = 400;
/// Lines quoted in a user's error message.
const QUOTED_LINES: usize = 5;

/// The last lines an agent wrote to stderr.
#[derive(Debug, Clone, Default)]
pub(super) struct StderrTail {
    lines: Arc<Mutex<VecDeque<String>>>,
}

impl StderrTail {
    /// Keeps `line` (cut to [`LINE_CHARS`]), dropping the oldest beyond [`TAIL_LINES`].
    pub(super) fn push(&self, line: &str) {
        let mut kept: String = line.chars().take(LINE_CHARS).collect();
        if kept.len() < line.len() {
            kept.push('…');
        }
        let mut lines = self.lines.lock().expect("stderr lock");
        if lines.len() == TAIL_LINES {
            lines.pop_front();
        }
        lines.push_back(kept);
    }

    /// Forgets every line (a new process starts with a clean slate).
    pub(super) fn clear(&self) {
        self.lines.lock().expect("stderr lock").clear();
    }

    /// The last non-empty lines, oldest first, for an error message.
    pub(super) fn quoted(&self) -> Option<String> {
        let lines = self.lines.lock().expect("stderr lock");
        let recent: Vec<&str> =
            lines.iter().map(|l| l.trim()).filter(|l| !l.is_empty()).rev().take(QUOTED_LINES).collect();
        if recent.is_empty() {
            return None;
        }
        let quoted: Vec<String> = recent.iter().rev().map(|line| format!("> {line}")).collect();
        Some(quoted.join("\n"))
    }

    /// `reason`, followed by the agent's last stderr lines when it wrote any.
    pub(super) fn explain(&self, reason: &str) -> String {
        match self.quoted() {
            Some(quoted) => format!("{reason}; its last words on stderr:\n{quoted}"),
            None => reason.to_owned(),
        }
    }

    /// Reads `stderr` to its end, logging and keeping every line.
    pub(super) fn follow(&self, session: &str, stderr: impl AsyncRead + Unpin + Send + 'static) -> JoinHandle<()> {
        let tail = self.clone();
        let session = session.to_owned();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            loop {
                match lines.next_line().await {
                    Ok(Some(line)) => {
                        tracing::info!(session = %session, line = %line, "agent stderr");
                        tail.push(&line);
                    }
                    Ok(None) => break,
                    Err(error) => {
                        // Not UTF-8 or a broken pipe: keep what was read and stop following.
                        tracing::debug!(session = %session, %error, "agent stderr unreadable");
                        break;
                    }
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_keeps_the_last_lines_and_cuts_long_ones() {
        let tail = StderrTail::default();
        assert_eq!(tail.explain("it died"), "it died");
        for i in 0..30 {
            tail.push(&format!("line {i}"));
        }
        tail.push("");
        tail.push(&"x".repeat(LINE_CHARS + 10));
        assert_eq!(tail.lines.lock().unwrap().len(), TAIL_LINES);
        let quoted = tail.quoted().unwrap();
        let lines: Vec<&str> = quoted.lines().collect();
        assert_eq!(lines.len(), QUOTED_LINES);
        assert_eq!(lines[0], "> line 26");
        assert!(lines[4].ends_with('…') && lines[4].chars().count() == LINE_CHARS + 3, "{}", lines[4]);
        tail.clear();
        assert_eq!(tail.quoted(), None);
    }

    #[tokio::test]
    async fn following_a_pipe_keeps_every_line() {
        let tail = StderrTail::default();
        let reader = tail.follow("s", &b"API key is not set\nbye\n"[..]);
        reader.await.unwrap();
        assert_eq!(tail.explain("exited"), "exited; its last words on stderr:\n> API key is not set\n> bye");
    }
}
