//! The workloads, one module each, and what they share: the resolved sizes
//! (`Plan`), message texts, and fleet setup through Control calls.
//!
//! Every workload starts its own gorpd on a fresh data directory (restart and
//! memory share one) and returns a `report::Section`; a wait never has more
//! than a fixed upper bound, and what did not arrive in time is a problem.

pub(crate) mod e2e;
pub(crate) mod fleet;
pub(crate) mod publish;
pub(crate) mod replay;
pub(crate) mod restart;
pub(crate) mod subscriber;

use std::path::PathBuf;
use std::time::Duration;

/// Longest wait for any single expected event (an ack, the next delivery of a replay).
pub(crate) const STALL: Duration = Duration::from_secs(30);

/// A workload, as named on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Workload {
    /// Publish, wait for the ack, repeat, on one stream.
    Serial,
    /// One stream with a window of unacknowledged messages.
    Pipelined,
    /// Several windowed streams at once.
    Streams,
    /// Publish to final delivery at a fixed offered rate over several platforms.
    E2e,
    /// A new subscriber catching up on a backlog of responses.
    Replay,
    /// Restart with many sessions and bindings.
    Restart,
    /// Resident memory per idle session.
    Memory,
}

impl Workload {
    /// Every workload, in the order they run.
    pub(crate) const ALL: [Workload; 7] = [
        Workload::Serial,
        Workload::Pipelined,
        Workload::Streams,
        Workload::E2e,
        Workload::Replay,
        Workload::Restart,
        Workload::Memory,
    ];

    /// The command-line name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Workload::Serial => "serial",
            Workload::Pipelined => "pipelined",
            Workload::Streams => "streams",
            Workload::E2e => "e2e",
            Workload::Replay => "replay",
            Workload::Restart => "restart",
            Workload::Memory => "memory",
        }
    }
}

/// The sizes of one run, after `--short` was applied.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Plan {
    /// The gorpd binary.
    pub(crate) gorpd: PathBuf,
    /// Lines added to gorpd's config file.
    pub(crate) gorpd_settings: Vec<String>,
    /// The Postgres server for gorpd's store, if not SQLite.
    pub(crate) postgres: Option<String>,
    /// Unique per run; part of every message id.
    pub(crate) run_id: String,
    /// Message text size in bytes.
    pub(crate) size: usize,
    /// Messages for `serial`.
    pub(crate) serial_messages: usize,
    /// Messages for `pipelined` and, in total, for `streams`.
    pub(crate) messages: usize,
    /// Run 1-3 for this long instead of a message count.
    pub(crate) seconds: Option<f64>,
    /// Unacknowledged messages per stream.
    pub(crate) window: usize,
    /// Concurrent streams of `streams`.
    pub(crate) streams: usize,
    /// Sessions the messages of 1-4 are spread over.
    pub(crate) sessions: usize,
    /// Offered rate of `e2e`, messages per second.
    pub(crate) rate: f64,
    /// Length of `e2e`'s load in seconds.
    pub(crate) duration: f64,
    /// Platforms of `e2e`.
    pub(crate) platforms: usize,
    /// Seconds `e2e` waits for the last answers after the load.
    pub(crate) grace_secs: f64,
    /// Responses in `replay`'s backlog.
    pub(crate) replay_count: usize,
    /// Sessions for `restart` and `memory`.
    pub(crate) restart_sessions: usize,
    /// Bindings for `restart`.
    pub(crate) restart_bindings: usize,
    /// Concurrent Control calls during setup.
    pub(crate) setup_concurrency: usize,
}

impl Plan {
    /// How long `e2e` waits for the last answers after the load.
    pub(crate) fn grace(&self) -> Duration {
        Duration::from_secs_f64(self.grace_secs)
    }
}

/// A message text of `size` bytes (at least the token) that starts with `token`.
pub(crate) fn text(token: &str, size: usize) -> String {
    let mut text = format!("{token} ");
    while text.len() < size {
        text.push('x');
    }
    text
}

/// The name of the `index`-th bench session: `bench-<index>`.
pub(crate) fn session_name(index: usize) -> String {
    format!("bench-{index}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_has_the_size_and_starts_with_the_token() {
        assert_eq!(text("m1", 8), "m1 xxxxx");
        assert_eq!(text("a-long-token", 4), "a-long-token ");
    }
}
