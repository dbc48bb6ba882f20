//! The durable spool: an inbound message is on disk before the platform is
//! told it arrived, and leaves the disk only after gorpd acknowledged it.
//!
//! Opt-in per gateway ([`crate::GatewayConfig::spool`]); gorp-slack uses it
//! because Slack retries an unacknowledged event only for a few minutes.
//! One task owns the SQLite file (`spool.db` in the state directory) and
//! commits every waiting append and removal in one transaction (one fsync);
//! only then are the appenders answered and the new messages handed, in
//! commit order, to the publish half. At start every spooled message is
//! handed over first, so a restarted gateway resends them before anything
//! new. The spool is bounded by entries, bytes and the age of its oldest
//! message: past any bound an append is refused ([`SpoolError::Full`]) and
//! the platform is not acknowledged (it keeps the message and retries);
//! nothing is ever dropped.

mod store;

use crate::platform::Inbound;
use crate::runner::scoped_message_id;
use sqlx::Connection;
use sqlx::sqlite::SqliteConnection;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

/// Appends and removals waiting for the spool task.
const REQUESTS: usize = 1024;
/// Most requests committed in one transaction.
const BATCH: usize = 256;

/// Where the spool lives and how much it may hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpoolConfig {
    /// The gateway's state directory; the spool is `spool.db` in it.
    pub dir: PathBuf,
    /// Most messages held (default 10,000).
    pub max_entries: usize,
    /// Most bytes of message text and names held (default 64 MiB).
    pub max_bytes: u64,
    /// Once the oldest message is this old, nothing more is taken (default 24 h).
    pub max_age: Duration,
}

impl SpoolConfig {
    /// A spool in `dir` with the default bounds.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into(), max_entries: 10_000, max_bytes: 64 << 20, max_age: Duration::from_secs(24 * 3600) }
    }
}

/// What the spool holds now (for health, logs and metrics).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpoolStats {
    /// Messages not yet acknowledged by gorpd.
    pub entries: usize,
    /// Their size (text and names), in bytes.
    pub bytes: u64,
    /// When the oldest of them arrived (Unix milliseconds).
    pub oldest_ms: Option<i64>,
    /// Whether a bound is reached (the last append was refused, or the next would be).
    pub full: bool,
}

impl SpoolStats {
    /// How long the oldest message has waited.
    pub fn oldest_age(&self) -> Option<Duration> {
        self.oldest_ms.map(|ms| Duration::from_millis(now_ms().saturating_sub(ms).max(0) as u64))
    }
}

/// A spool failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpoolError {
    /// The spool file cannot be opened (or another process holds it).
    #[error("cannot open the spool: {0}")]
    Open(String),
    /// A bound is reached; the message was not taken.
    #[error("the spool is full ({0})")]
    Full(String),
    /// The disk refused the write; the message was not taken.
    #[error("cannot write the spool: {0}")]
    Write(String),
    /// The spool task has ended (the gateway is stopping).
    #[error("the spool is closed")]
    Closed,
}

/// A message on disk, as handed to the publish half.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Spooled {
    /// Its key in the spool, to remove it once gorpd acknowledged it.
    pub(crate) seq: i64,
    pub(crate) inbound: Inbound,
}

/// How an append ended: on disk, or refused.
type Committed = Result<(), SpoolError>;

enum Request {
    Append { inbound: Inbound, done: oneshot::Sender<Committed> },
    Remove(i64),
}

/// A cheap handle on the spool task.
#[derive(Debug, Clone)]
pub(crate) struct Spool {
    requests: mpsc::Sender<Request>,
    stats: watch::Receiver<SpoolStats>,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Append { inbound, .. } => write!(f, "Append({})", inbound.message_id),
            Self::Remove(seq) => write!(f, "Remove({seq})"),
        }
    }
}

impl Spool {
    /// Opens the spool and starts its task, which first hands every message
    /// already on disk to `forward`, oldest first.
    pub(crate) async fn open(
        config: SpoolConfig,
        forward: mpsc::UnboundedSender<Spooled>,
    ) -> Result<(Self, JoinHandle<()>), SpoolError> {
        let mut connection = store::open(&config.dir).await?;
        let stored = store::load(&mut connection).await.map_err(|e| SpoolError::Open(e.to_string()))?;
        let mut index = BTreeMap::new();
        for row in stored {
            index.insert(row.seq, Meta { bytes: row.bytes, received_ms: row.received_ms });
            let _ = forward.send(Spooled { seq: row.seq, inbound: row.inbound });
        }
        let (requests, rx) = mpsc::channel(REQUESTS);
        let task = Task { connection, config, index, forward, stats: watch::Sender::new(SpoolStats::default()) };
        task.publish_stats(false);
        if let Some(age) = task.stats.borrow().oldest_age() {
            let entries = task.index.len();
            tracing::info!(
                entries,
                oldest_s = age.as_secs(),
                "spool holds messages from the last run; sending them first"
            );
        }
        let stats = task.stats.subscribe();
        Ok((Self { requests, stats }, tokio::spawn(task.run(rx))))
    }

    /// Commits `inbound` to disk; `Ok` once it is durable (or was already spooled).
    #[cfg(test)]
    pub(crate) async fn append(&self, inbound: Inbound) -> Result<(), SpoolError> {
        let committed = self.request_append(inbound).await?;
        committed.await.map_err(|_| SpoolError::Closed)?
    }

    /// Queues `inbound` for the next commit (appends commit in the order
    /// they are queued); the answer comes once it is durable or refused.
    pub(crate) async fn request_append(&self, inbound: Inbound) -> Result<oneshot::Receiver<Committed>, SpoolError> {
        let (done, committed) = oneshot::channel();
        self.requests.send(Request::Append { inbound, done }).await.map_err(|_| SpoolError::Closed)?;
        Ok(committed)
    }

    /// Removes message `seq` (gorpd acknowledged it). Not awaited: a removal
    /// lost to a crash only makes gorpd answer DUPLICATE after the restart.
    pub(crate) fn remove(&self, seq: i64) {
        if self.requests.try_send(Request::Remove(seq)).is_err() {
            let requests = self.requests.clone();
            tokio::spawn(async move { requests.send(Request::Remove(seq)).await });
        }
    }

    /// Follows what the spool holds.
    pub(crate) fn stats(&self) -> watch::Receiver<SpoolStats> {
        self.stats.clone()
    }
}

#[derive(Debug, Clone, Copy)]
struct Meta {
    bytes: u64,
    received_ms: i64,
}

/// The spool task: owns the file and the index of what is on it.
struct Task {
    connection: SqliteConnection,
    config: SpoolConfig,
    index: BTreeMap<i64, Meta>,
    forward: mpsc::UnboundedSender<Spooled>,
    stats: watch::Sender<SpoolStats>,
}

/// What one batch did, applied to the index once committed.
#[derive(Default)]
struct Changes {
    added: Vec<(Spooled, Meta)>,
    removed: Vec<i64>,
    /// Appenders and their answers, in request order.
    answers: Vec<(oneshot::Sender<Committed>, Committed)>,
    refused: bool,
}

impl Task {
    async fn run(mut self, mut requests: mpsc::Receiver<Request>) {
        let mut batch = Vec::with_capacity(BATCH);
        while requests.recv_many(&mut batch, BATCH).await > 0 {
            self.apply(std::mem::take(&mut batch)).await;
        }
        if let Err(error) = self.connection.close().await {
            tracing::warn!(%error, "closing the spool failed");
        }
    }

    /// Commits one batch, then answers and forwards.
    async fn apply(&mut self, batch: Vec<Request>) {
        let mut changes = Changes::default();
        let committed = self.write(batch, &mut changes).await;
        if let Err(error) = committed {
            tracing::error!(%error, "cannot write the spool; the platform is not acknowledged");
            for (done, _) in changes.answers {
                let _ = done.send(Err(SpoolError::Write(error.to_string())));
            }
            return;
        }
        for seq in &changes.removed {
            self.index.remove(seq);
        }
        for (spooled, meta) in changes.added {
            self.index.insert(spooled.seq, meta);
            tracing::debug!(seq = spooled.seq, message_id = %spooled.inbound.message_id, "message spooled");
            let _ = self.forward.send(spooled);
        }
        for (done, answer) in changes.answers {
            let _ = done.send(answer);
        }
        self.publish_stats(changes.refused);
    }

    /// Runs the batch in one transaction, recording what it changed.
    async fn write(&mut self, batch: Vec<Request>, changes: &mut Changes) -> Result<(), sqlx::Error> {
        let mut transaction = self.connection.begin().await?;
        let (mut entries, mut bytes) = (self.index.len(), self.index.values().map(|m| m.bytes).sum::<u64>());
        let now = now_ms();
        for request in batch {
            match request {
                Request::Remove(seq) => {
                    store::delete(&mut transaction, seq).await?;
                    if let Some(meta) = self.index.get(&seq) {
                        (entries, bytes) = (entries - 1, bytes - meta.bytes);
                        changes.removed.push(seq);
                    }
                }
                Request::Append { inbound, done } => {
                    let size = size_of(&inbound);
                    if let Some(bound) = bound_reached(&self.config, &self.index, entries, bytes + size, now) {
                        changes.refused = true;
                        changes.answers.push((done, Err(SpoolError::Full(bound))));
                        continue;
                    }
                    let bus_id = scoped_message_id(&inbound.channel_id, &inbound.message_id);
                    if let Some(seq) = store::insert(&mut transaction, &bus_id, &inbound, size, now).await? {
                        (entries, bytes) = (entries + 1, bytes + size);
                        changes.added.push((Spooled { seq, inbound }, Meta { bytes: size, received_ms: now }));
                    }
                    changes.answers.push((done, Ok(())));
                }
            }
        }
        transaction.commit().await
    }

    /// Updates the stats and logs when the spool fills up, frees up or drains.
    fn publish_stats(&self, refused: bool) {
        let (entries, bytes) = (self.index.len(), self.index.values().map(|m| m.bytes).sum());
        let full = refused || bound_reached(&self.config, &self.index, entries, bytes, now_ms()).is_some();
        let oldest_ms = self.index.values().next().map(|m| m.received_ms);
        let stats = SpoolStats { entries, bytes, oldest_ms, full };
        let old = self.stats.send_replace(stats);
        match (old.full, full) {
            (false, true) => tracing::warn!(
                entries,
                bytes,
                "spool full: new messages are not acknowledged to the platform until gorpd takes some"
            ),
            (true, false) => tracing::info!(entries, bytes, "spool has room again"),
            _ => {}
        }
        if old.entries > 0 && entries == 0 {
            tracing::info!("spool drained: gorpd has every message");
        }
    }
}

/// Which bound a spool with `index`, grown to `entries` messages and `bytes`
/// bytes, would pass at `now`, if any.
fn bound_reached(
    config: &SpoolConfig,
    index: &BTreeMap<i64, Meta>,
    entries: usize,
    bytes: u64,
    now: i64,
) -> Option<String> {
    if entries >= config.max_entries {
        return Some(format!("{entries} messages, at most {}", config.max_entries));
    }
    if bytes > config.max_bytes {
        return Some(format!("{bytes} bytes, at most {}", config.max_bytes));
    }
    let oldest = index.values().next().map(|m| m.received_ms)?;
    let age = Duration::from_millis(now.saturating_sub(oldest).max(0) as u64);
    (age >= config.max_age)
        .then(|| format!("oldest message waiting {}s, at most {}s", age.as_secs(), config.max_age.as_secs()))
}

/// What a message counts against the byte bound.
fn size_of(inbound: &Inbound) -> u64 {
    let Inbound { channel_id, message_id, sender_id, sender_name, text, files } = inbound;
    let references: u64 = files.iter().map(|f| (f.name.len() + f.media_type.len() + f.sha256.len()) as u64).sum();
    [channel_id, message_id, sender_id, sender_name, text].iter().map(|s| s.len() as u64).sum::<u64>() + references
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests;
