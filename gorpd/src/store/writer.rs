//! The one writer: a thread that owns the store's only write connection
//! (SQLite's, or this gorpd's Postgres connection) and commits every durable
//! change in group commits.
//!
//! Callers hand it a write (a closure over the connection) and wait for its
//! outcome. The thread takes everything that is waiting, up to
//! [`MAX_BATCH`], runs each write inside its own savepoint of one
//! transaction, commits once (one fsync), and only then
//! answers each caller, in submission order. A write that fails is rolled
//! back to its savepoint and answered with its own error; its neighbours
//! commit. A failed commit answers every write of the batch with an error,
//! so nothing is ever reported done that is not on disk.
//!
//! On SQLite the connection is a plain synchronous one (rusqlite) on its own
//! thread: a batch's statements run back to back, from statements prepared
//! once and cached, without a hand-off between threads per statement.
//! (Through an async driver every statement was a round trip to the
//! driver's thread, and those context switches were most of gorpd's time
//! under load.) On Postgres each statement is a round trip to the server
//! anyway; the thread drives sqlx's connection through the runtime. Reads
//! keep their async pool.
//!
//! Because answers (and their `after_commit` hooks) run in submission order
//! on this one thread, anything assigned in a write (a response's `seq`)
//! becomes visible to the rest of gorpd in exactly that order.
//!
//! Gateway cursors are buffered in memory ([`CursorBuffer`]) and written with
//! the next batch or at most every [`CURSOR_FLUSH`]: a cursor lost in a crash
//! only replays deliveries that gateways handle idempotently.

use super::sql::params;
use super::{StoreError, StoreResult, WriteConnection, now_text};
use prometheus_client::metrics::histogram::Histogram;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot};

/// Most writes committed in one transaction.
pub(super) const MAX_BATCH: usize = 1024;
/// Writes waiting for the writer before callers wait for room (backpressure).
pub(super) const QUEUE: usize = 4096;
/// Longest a buffered gateway cursor waits before it is written.
pub(super) const CURSOR_FLUSH: Duration = Duration::from_millis(500);
/// Prepared statements kept per connection (the hot path uses a few dozen).
pub(super) const STATEMENT_CACHE: usize = 256;

/// Called once the write's transaction committed (`Ok`) or failed (`Err`).
type Settle = Box<dyn FnOnce(Result<(), CommitError>) + Send>;
/// A write: runs on the connection inside its savepoint, says how it went
/// (a failure rolls back its savepoint) and how to answer its caller.
type Apply = Box<dyn FnOnce(&WriteConnection) -> (Ran, Settle) + Send>;
/// Answers a write that never ran because its batch failed before reaching
/// it (a no-op once the write was answered).
type Abandon = Box<dyn FnOnce(CommitError) + Send>;

/// A write as the writer thread holds it.
pub(super) struct Pending {
    apply: Apply,
    abandon: Abandon,
}

/// How one write went inside its batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ran {
    Done,
    Failed,
}

/// Why a batch's transaction did not commit.
#[derive(Debug, Clone)]
pub(super) enum CommitError {
    DiskFull,
    Failed(String),
}

impl From<CommitError> for StoreError {
    fn from(error: CommitError) -> Self {
        match error {
            CommitError::DiskFull => StoreError::Full,
            CommitError::Failed(message) => StoreError::Commit(message),
        }
    }
}

/// What the writer thread receives.
pub(super) enum Command {
    /// A write to commit with the next batch.
    Write(Pending),
    /// Commit what came before, flush the cursors, close the connection, then answer.
    Close(oneshot::Sender<()>),
}

/// The cloneable sending side of the writer.
#[derive(Clone, Debug)]
pub(super) struct WriterHandle {
    commands: mpsc::Sender<Command>,
    cursors: Arc<CursorBuffer>,
    stats: Arc<WriterStats>,
}

/// Running totals of the writer, for metrics and tests.
#[derive(Debug)]
pub struct WriterStats {
    commits: AtomicU64,
    writes: AtomicU64,
    /// Writes per committed transaction.
    batch_writes: Histogram,
    /// Time of each `COMMIT` (the fsync), in seconds.
    commit_seconds: Histogram,
}

impl Default for WriterStats {
    fn default() -> Self {
        Self {
            commits: AtomicU64::default(),
            writes: AtomicU64::default(),
            batch_writes: crate::metrics::size_histogram(),
            commit_seconds: crate::metrics::latency_histogram(),
        }
    }
}

impl WriterStats {
    /// Transactions committed (each one fsync).
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    /// Writes committed in them.
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }

    /// The histogram of writes per commit (shares its counts with the writer).
    pub fn batch_writes(&self) -> Histogram {
        self.batch_writes.clone()
    }

    /// The histogram of `COMMIT` (fsync) times in seconds (shares its counts with the writer).
    pub fn commit_seconds(&self) -> Histogram {
        self.commit_seconds.clone()
    }

    fn record_commit(&self, writes: usize, committing: Duration) {
        self.commits.fetch_add(1, Ordering::Relaxed);
        self.writes.fetch_add(writes as u64, Ordering::Relaxed);
        self.batch_writes.observe(writes as f64);
        self.commit_seconds.observe(committing.as_secs_f64());
    }
}

impl WriterHandle {
    /// Starts the writer thread on `connection`; it waits for work through
    /// the current tokio runtime.
    pub(super) fn spawn(connection: WriteConnection) -> std::io::Result<Self> {
        if let WriteConnection::Sqlite(connection) = &connection {
            connection.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        }
        let (commands, receiver) = mpsc::channel(QUEUE);
        let cursors = Arc::new(CursorBuffer::default());
        let stats = Arc::new(WriterStats::default());
        let runtime = Handle::current();
        let (thread_cursors, thread_stats) = (cursors.clone(), stats.clone());
        std::thread::Builder::new()
            .name("gorp-writer".into())
            .spawn(move || run(&runtime, connection, receiver, &thread_cursors, &thread_stats))?;
        Ok(Self { commands, cursors, stats })
    }

    /// The writer's running totals.
    pub(super) fn stats(&self) -> &WriterStats {
        &self.stats
    }

    /// The buffered gateway cursors.
    pub(super) fn cursors(&self) -> &CursorBuffer {
        &self.cursors
    }

    /// Commits `write` with the next batch and returns its result once the
    /// batch is durable, passed through `after_commit`, which runs on the
    /// writer thread in submission order before the caller is answered.
    pub(super) async fn write<R, T, W, A>(&self, write: W, after_commit: A) -> StoreResult<T>
    where
        R: Send + 'static,
        T: Send + 'static,
        W: FnOnce(&WriteConnection) -> StoreResult<R> + Send + 'static,
        A: FnOnce(R) -> T + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        // Whoever answers first (the settled write, or the abandoned one) takes the sender.
        let reply = Arc::new(Mutex::new(Some(reply)));
        let unanswered = reply.clone();
        let abandon: Abandon = Box::new(move |error| {
            if let Some(reply) = unanswered.lock().expect("reply lock").take() {
                let _ = reply.send(Err(error.into()));
            }
        });
        let apply: Apply = Box::new(move |connection| {
            let result = write(connection);
            let ran = if result.is_ok() { Ran::Done } else { Ran::Failed };
            let settle: Settle = Box::new(move |commit| {
                let outcome = match (result, commit) {
                    (Ok(value), Ok(())) => Ok(after_commit(value)),
                    (Ok(_), Err(error)) => Err(error.into()),
                    (Err(error), _) => Err(error),
                };
                // The caller may have gone away; the write is committed either way.
                if let Some(reply) = reply.lock().expect("reply lock").take() {
                    let _ = reply.send(outcome);
                }
            });
            (ran, settle)
        });
        let pending = Pending { apply, abandon };
        self.commands.send(Command::Write(pending)).await.map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Asks the writer to finish and waits until the connection is closed.
    pub(super) async fn close(&self) {
        let (done, closed) = oneshot::channel();
        if self.commands.send(Command::Close(done)).await.is_ok() {
            let _ = closed.await;
        }
    }
}

/// Gateway cursors acknowledged but not yet written.
#[derive(Debug, Default)]
pub(super) struct CursorBuffer {
    dirty: Mutex<HashMap<String, u64>>,
}

impl CursorBuffer {
    /// Remembers `seq` for `gateway_id` (only ever forward).
    pub(super) fn record(&self, gateway_id: &str, seq: u64) {
        let mut dirty = self.dirty.lock().expect("cursor lock");
        let cursor = dirty.entry(gateway_id.to_owned()).or_default();
        *cursor = (*cursor).max(seq);
    }

    /// The buffered cursor of `gateway_id`, if one waits to be written.
    pub(super) fn pending(&self, gateway_id: &str) -> Option<u64> {
        self.dirty.lock().expect("cursor lock").get(gateway_id).copied()
    }

    fn is_empty(&self) -> bool {
        self.dirty.lock().expect("cursor lock").is_empty()
    }

    fn take(&self) -> HashMap<String, u64> {
        std::mem::take(&mut *self.dirty.lock().expect("cursor lock"))
    }

    /// Puts cursors back after a failed write (newer values win).
    fn restore(&self, cursors: HashMap<String, u64>) {
        for (gateway_id, seq) in cursors {
            self.record(&gateway_id, seq);
        }
    }
}

/// The writer thread: waits (through the runtime) for writes or the cursor
/// timer, commits what it got, until closed.
fn run(
    runtime: &Handle,
    connection: WriteConnection,
    mut commands: mpsc::Receiver<Command>,
    cursors: &CursorBuffer,
    stats: &WriterStats,
) {
    let mut received = Vec::with_capacity(MAX_BATCH);
    let mut closing = None;
    while closing.is_none() {
        let count = runtime.block_on(async {
            tokio::select! {
                count = commands.recv_many(&mut received, MAX_BATCH) => count,
                _ = tokio::time::sleep(CURSOR_FLUSH), if !cursors.is_empty() => 0,
            }
        });
        let mut writes = Vec::with_capacity(received.len());
        for command in received.drain(..) {
            match command {
                Command::Write(pending) => writes.push(pending),
                Command::Close(done) => closing = Some(done),
            }
        }
        // Nothing received (and no Close): the flush timer fired, or the channel is closed and drained.
        if count == 0 && commands.is_closed() && cursors.is_empty() {
            break;
        }
        commit(&connection, writes, cursors, stats);
    }
    // Refuse what is still queued: those callers get `Closed`, never a false success.
    commands.close();
    connection.close();
    if let Some(done) = closing {
        let _ = done.send(());
    }
}

/// Runs `sql` (a transaction statement) from the statement cache.
fn execute_cached(connection: &WriteConnection, sql: &str) -> StoreResult<()> {
    connection.execute(sql, &[]).map(drop)
}

/// Runs `writes` and the buffered cursors in one transaction, counts the
/// commit, then answers each write.
fn commit(connection: &WriteConnection, writes: Vec<Pending>, cursors: &CursorBuffer, stats: &WriterStats) {
    let started = std::time::Instant::now();
    let count = writes.len();
    let cursor_values = cursors.take();
    let mut settles = Vec::with_capacity(count);
    // Kept until the end: a failure before a write runs must still answer it.
    let (runs, abandons): (Vec<_>, Vec<_>) = writes.into_iter().map(|pending| (pending.apply, pending.abandon)).unzip();
    let outcome = (|| {
        let begin = connection.engine().begin();
        // Each write in its own savepoint: a failing one (a full disk
        // included) is undone alone and its neighbours commit. A write alone
        // in its batch needs none (two statements fewer, which on Postgres
        // are two round trips): undoing it is undoing the transaction.
        // Between writes, the one's RELEASE and the next's SAVEPOINT go
        // together (on Postgres, in one round trip).
        let alone = runs.len() <= 1;
        if alone {
            connection.execute_all(begin)?;
        }
        for (index, apply) in runs.into_iter().enumerate() {
            match (alone, index) {
                (true, _) => {}
                (false, 0) => connection.execute_all(&[begin, &["SAVEPOINT write"]].concat())?,
                (false, _) => connection.execute_all(&["RELEASE write", "SAVEPOINT write"])?,
            }
            let (ran, settle) = apply(connection);
            settles.push(settle);
            match (ran, alone) {
                (Ran::Failed, false) => execute_cached(connection, "ROLLBACK TO write")?,
                (Ran::Failed, true) => {
                    connection.forget_announcements();
                    execute_cached(connection, "ROLLBACK")?;
                    connection.execute_all(begin)?;
                }
                (Ran::Done, _) => {}
            }
        }
        if !alone {
            execute_cached(connection, "RELEASE write")?;
        }
        write_cursors(connection, &cursor_values)?;
        let committing = std::time::Instant::now();
        connection.commit()?;
        Ok::<_, StoreError>(committing.elapsed())
    })();
    let mut commit_us = 0;
    let outcome = match outcome {
        Ok(committing) => {
            commit_us = committing.as_micros() as u64;
            // Counted before anyone is answered, so an answered caller sees its commit counted.
            stats.record_commit(count, committing);
            Ok(())
        }
        Err(error) => {
            tracing::error!(%error, writes = count, "group commit failed; every write in it is answered with the error");
            // There may be no transaction left to roll back; then this fails harmlessly.
            connection.forget_announcements();
            let _ = execute_cached(connection, "ROLLBACK");
            cursors.restore(cursor_values);
            Err(commit_error(error))
        }
    };
    tracing::trace!(writes = count, elapsed_us = started.elapsed().as_micros() as u64, commit_us, "group commit");
    for settle in settles {
        settle(outcome.clone());
    }
    if let Err(error) = outcome {
        // Writes the failure came before never ran: they are told, never left waiting.
        for abandon in abandons {
            abandon(error.clone());
        }
    }
}

fn write_cursors(connection: &WriteConnection, cursors: &HashMap<String, u64>) -> StoreResult<()> {
    let now = now_text();
    for (gateway_id, seq) in cursors {
        connection.execute(
            "UPDATE gateways SET acked_seq = CASE WHEN acked_seq > ?1 THEN acked_seq ELSE ?1 END, last_seen = ?2
             WHERE gateway_id = ?3",
            params![*seq, now, gateway_id],
        )?;
    }
    Ok(())
}

/// Why a batch did not commit, from the failure of one of its transaction's
/// own statements.
fn commit_error(error: StoreError) -> CommitError {
    match error {
        StoreError::Full => CommitError::DiskFull,
        other => CommitError::Failed(other.to_string()),
    }
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Write(_) => f.write_str("Write"),
            Self::Close(_) => f.write_str("Close"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::QUEUE;
    use crate::domain::{ChannelRef, NewResponse, ResponseKind};
    use crate::store::{Commit, NewInbound, Store, StoreError, TokenKind};
    use std::time::Duration;
    use tokio::sync::oneshot;

    async fn open() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::open_for_test(dir.path()).await;
        (dir, store)
    }

    /// Holds the writer inside a batch until the returned sender fires (a
    /// disk that stalls); returns once the writer is held.
    async fn stall(store: &Store) -> (oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
        let (release, gate) = oneshot::channel::<()>();
        let (entered, held) = oneshot::channel::<()>();
        let store = store.clone();
        let stalled = tokio::spawn(async move {
            store
                .write(move |_| {
                    let _ = entered.send(());
                    let _ = gate.blocking_recv();
                    Ok(())
                })
                .await
                .unwrap();
        });
        held.await.expect("the stalling write runs");
        (release, stalled)
    }

    fn message(id: usize) -> NewInbound {
        NewInbound {
            channel: ChannelRef::new("web", format!("c{}", id % 7)),
            message_id: Some(format!("m{id}")),
            sender: "u".into(),
            text: format!("text {id}"),
            attachments: Vec::new(),
            trace_context: None,
        }
    }

    fn response(text: &str) -> NewResponse {
        NewResponse {
            response_id: text.into(),
            session: None,
            kind: ResponseKind::Complete,
            text: text.into(),
            targets: vec![ChannelRef::new("web", "c1"), ChannelRef::new("telegram", "c2")],
            reply_to: None,
            permission: None,
            attachments: Vec::new(),
            trace_context: None,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn writers_from_every_path_share_group_commits() {
        let (_dir, store) = open().await;
        let commits_before = store.writer_stats().commits();
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..64 {
            let store = store.clone();
            tasks.spawn(async move {
                store.accept_inbound_batch(vec![(message(i), None)]).await.unwrap();
                store.append_response(response(&format!("r{i}")), Commit::default(), |r| r).await.unwrap();
                let name = format!("s{i}");
                store.create_session(&name, "/tmp", "echo").await.unwrap();
                store.bind(&ChannelRef::new("web", format!("b{i}")), &name).await.unwrap();
                store.insert_token(&format!("t{i}"), &TokenKind::Admin, &format!("hash{i}")).await.unwrap();
                store.touch_gateway(&format!("g{i}"), "web", 0).await.unwrap();
                store.ack_gateway(&format!("g{i}"), 1);
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.unwrap();
        }
        assert_eq!(store.inbound_count().await.unwrap(), 64);
        assert_eq!(store.sessions().await.unwrap().len(), 64);
        assert_eq!(store.bindings().await.unwrap().len(), 64);
        assert_eq!(store.responses_after("telegram", 0, 1000).await.unwrap().len(), 64);
        let seqs: Vec<u64> = store.responses_after("web", 0, 1000).await.unwrap().iter().map(|r| r.seq).collect();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "seqs in order: {seqs:?}");
        let commits = store.writer_stats().commits() - commits_before;
        assert!(commits < 64 * 6, "{commits} commits for {} writes: nothing was grouped", 64 * 6);
        store.close().await;
    }

    #[tokio::test]
    async fn a_failing_write_is_answered_alone_and_its_neighbours_commit() {
        let (_dir, store) = open().await;
        store.create_session("taken", "/tmp", "echo").await.unwrap();
        let (release, stalled) = stall(&store).await;
        // Queued behind the stalled batch, so all of these commit in the next one.
        let before = tokio::spawn({
            let store = store.clone();
            async move { store.accept_inbound(&message(1)).await }
        });
        let conflict = tokio::spawn({
            let store = store.clone();
            async move { store.create_session("taken", "/tmp", "echo").await }
        });
        let unknown = tokio::spawn({
            let store = store.clone();
            async move { store.bind(&ChannelRef::new("web", "x"), "nobody").await }
        });
        let after = tokio::spawn({
            let store = store.clone();
            async move { store.create_session("fresh", "/tmp", "echo").await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let commits_before = store.writer_stats().commits();
        release.send(()).unwrap();
        stalled.await.unwrap();
        assert!(before.await.unwrap().unwrap().is_some());
        assert!(matches!(conflict.await.unwrap(), Err(StoreError::Conflict)));
        assert!(matches!(unknown.await.unwrap(), Err(StoreError::NotFound)));
        assert_eq!(after.await.unwrap().unwrap().name, "fresh");
        let commits = store.writer_stats().commits() - commits_before;
        assert_eq!(commits, 2, "the stalled batch, then one commit for the four writes");
        assert_eq!(store.inbound_count().await.unwrap(), 1);
        assert!(store.bindings().await.unwrap().is_empty(), "the failed bind left nothing behind");
        store.close().await;
    }

    #[tokio::test]
    async fn writes_a_failed_batch_never_reached_get_its_error_and_a_full_database_says_so() {
        let (_dir, store) = open().await;
        let (release, stalled) = stall(&store).await;
        // The stalled write has its batch to itself; the next two share the next one.
        // The first ends the batch's transaction under the writer's feet, so
        // the transaction's own next statement fails: the whole batch fails.
        let breaking = tokio::spawn({
            let store = store.clone();
            async move {
                store
                    .write(|connection| {
                        connection.execute("ROLLBACK", &[])?;
                        Ok(())
                    })
                    .await
            }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        let behind = tokio::spawn({
            let store = store.clone();
            async move { store.create_session("behind", "/tmp", "echo").await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        release.send(()).unwrap();
        stalled.await.unwrap();
        let broken = breaking.await.unwrap().unwrap_err();
        assert!(matches!(broken, StoreError::Commit(_)), "its own batch failed: {broken:?}");
        let behind = behind.await.unwrap().unwrap_err();
        assert!(matches!(behind, StoreError::Commit(_)), "told why, never left waiting: {behind:?}");
        assert!(store.session("behind").await.is_err(), "and nothing of the batch is stored");

        if store.engine() != crate::store::Engine::Sqlite {
            // The size limit is SQLite's (Postgres refuses it: tested with the config).
            store.close().await;
            return;
        }
        // A database held at its size: writes that need room fail as Full, reads go on.
        store.set_size_limit(Some(1)).await.unwrap();
        let big = NewInbound { text: "x".repeat(200_000), ..message(2) };
        assert!(matches!(store.accept_inbound(&big).await, Err(StoreError::Full)));
        assert_eq!(store.inbound_count().await.unwrap(), 0, "reads work and show nothing was stored");
        store.set_size_limit(None).await.unwrap();
        assert!(store.accept_inbound(&big).await.unwrap().is_some(), "room again: the same write succeeds");
        store.close().await;
    }

    #[tokio::test]
    async fn a_stalled_disk_makes_writers_wait_instead_of_queueing_without_bound() {
        let (_dir, store) = open().await;
        let (release, stalled) = stall(&store).await;
        let mut writers = tokio::task::JoinSet::new();
        for i in 0..QUEUE + 64 {
            let store = store.clone();
            writers.spawn(async move { store.accept_inbound(&message(i)).await.map(|_| ()) });
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(writers.len(), QUEUE + 64, "nothing is answered while the disk stalls");
        assert_eq!(store.writer.commands.capacity(), 0, "the queue is full and the rest wait to enter it");
        release.send(()).unwrap();
        stalled.await.unwrap();
        while let Some(done) = writers.join_next().await {
            done.unwrap().unwrap();
        }
        assert_eq!(store.inbound_count().await.unwrap(), (QUEUE + 64) as u64);
        store.close().await;
    }

    #[tokio::test]
    async fn cursors_are_buffered_then_written_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::open_for_test(dir.path()).await;
        store.touch_gateway("g", "web", 0).await.unwrap();
        store.ack_gateway("g", 5);
        store.ack_gateway("g", 3);
        assert_eq!(store.resume_cursor("g", "web").await.unwrap(), 5, "reads see the buffered cursor");
        store.close().await;
        let reopened = crate::store::open_for_test(dir.path()).await;
        assert_eq!(reopened.resume_cursor("g", "web").await.unwrap(), 5, "closing wrote the cursor");
        reopened.close().await;
    }

    #[tokio::test]
    async fn writes_after_close_are_refused() {
        let (_dir, store) = open().await;
        store.close().await;
        assert!(matches!(store.accept_inbound(&message(1)).await, Err(StoreError::Closed)));
    }
}
