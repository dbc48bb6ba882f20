//! The one writer: a task that owns SQLite's only write connection and
//! commits every durable change in group commits.
//!
//! Callers hand it a write (an async closure over the connection) and wait
//! for its outcome. The task takes everything that is waiting, up to
//! [`MAX_BATCH`], runs each write inside its own savepoint of one
//! `BEGIN IMMEDIATE` transaction, commits once (one fsync), and only then
//! answers each caller, in submission order. A write that fails is rolled
//! back to its savepoint and answered with its own error; its neighbours
//! commit. A failed commit answers every write of the batch with an error,
//! so nothing is ever reported done that is not on disk.
//!
//! Because answers (and their `after_commit` hooks) run in submission order
//! inside this one task, anything assigned in a write (a response's `seq`)
//! becomes visible to the rest of gorpd in exactly that order.
//!
//! Gateway cursors are buffered in memory ([`CursorBuffer`]) and written with
//! the next batch or at most every [`CURSOR_FLUSH`]: a cursor lost in a crash
//! only replays deliveries that gateways handle idempotently.

use super::{StoreError, StoreResult, now_text};
use futures::future::BoxFuture;
use sqlx::{Connection, SqliteConnection};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Most writes committed in one transaction.
pub(super) const MAX_BATCH: usize = 1024;
/// Writes waiting for the writer before callers wait for room (backpressure).
pub(super) const QUEUE: usize = 4096;
/// Longest a buffered gateway cursor waits before it is written.
pub(super) const CURSOR_FLUSH: Duration = Duration::from_millis(500);

/// Called once the write's transaction committed (`Ok`) or failed (`Err`).
type Settle = Box<dyn FnOnce(Result<(), String>) + Send>;
/// A write: runs on the connection inside its savepoint, says whether it
/// succeeded (false: roll back its savepoint) and how to answer its caller.
type Apply = Box<dyn for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, (bool, Settle)> + Send>;

/// What the writer task receives.
pub(super) enum Command {
    /// A write to commit with the next batch.
    Write(Apply),
    /// Commit what came before, flush the cursors, close the connection, then answer.
    Close(oneshot::Sender<()>),
}

/// The cloneable sending side of the writer.
#[derive(Clone, Debug)]
pub(super) struct WriterHandle {
    commands: mpsc::Sender<Command>,
    cursors: Arc<CursorBuffer>,
}

impl WriterHandle {
    /// Starts the writer task on `connection`.
    pub(super) fn spawn(connection: SqliteConnection) -> Self {
        let (commands, receiver) = mpsc::channel(QUEUE);
        let cursors = Arc::new(CursorBuffer::default());
        tokio::spawn(run(connection, receiver, cursors.clone()));
        Self { commands, cursors }
    }

    /// The buffered gateway cursors.
    pub(super) fn cursors(&self) -> &CursorBuffer {
        &self.cursors
    }

    /// Commits `write` with the next batch and returns its result once the
    /// batch is durable, passed through `after_commit`, which runs in the
    /// writer task in submission order before the caller is answered.
    pub(super) async fn write<R, T, W, A>(&self, write: W, after_commit: A) -> StoreResult<T>
    where
        R: Send + 'static,
        T: Send + 'static,
        W: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, StoreResult<R>> + Send + 'static,
        A: FnOnce(R) -> T + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let apply: Apply = Box::new(move |connection| {
            Box::pin(async move {
                let result = write(connection).await;
                let succeeded = result.is_ok();
                let settle: Settle = Box::new(move |commit| {
                    let outcome = match (result, commit) {
                        (Ok(value), Ok(())) => Ok(after_commit(value)),
                        (Ok(_), Err(error)) => Err(StoreError::Commit(error)),
                        (Err(error), _) => Err(error),
                    };
                    // The caller may have gone away; the write is committed either way.
                    let _ = reply.send(outcome);
                });
                (succeeded, settle)
            })
        });
        self.commands.send(Command::Write(apply)).await.map_err(|_| StoreError::Closed)?;
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

async fn run(mut connection: SqliteConnection, mut commands: mpsc::Receiver<Command>, cursors: Arc<CursorBuffer>) {
    let mut received = Vec::with_capacity(MAX_BATCH);
    let mut closing = None;
    while closing.is_none() {
        let flush_cursors = tokio::time::sleep(CURSOR_FLUSH);
        let count = tokio::select! {
            count = commands.recv_many(&mut received, MAX_BATCH) => count,
            _ = flush_cursors, if !cursors.is_empty() => 0,
        };
        let mut writes = Vec::with_capacity(received.len());
        for command in received.drain(..) {
            match command {
                Command::Write(apply) => writes.push(apply),
                Command::Close(done) => closing = Some(done),
            }
        }
        if count == 0 && closing.is_none() && commands.is_closed() && writes.is_empty() && cursors.is_empty() {
            break;
        }
        commit(&mut connection, writes, &cursors).await;
    }
    // Refuse what is still queued: those callers get `Closed`, never a false success.
    commands.close();
    if let Err(error) = connection.close().await {
        tracing::warn!(%error, "closing the write connection failed");
    }
    if let Some(done) = closing {
        let _ = done.send(());
    }
}

/// Runs `writes` and the buffered cursors in one transaction, then answers each write.
async fn commit(connection: &mut SqliteConnection, writes: Vec<Apply>, cursors: &CursorBuffer) {
    let started = std::time::Instant::now();
    let count = writes.len();
    let cursor_values = cursors.take();
    let mut settles = Vec::with_capacity(count);
    let outcome = async {
        sqlx::query("BEGIN IMMEDIATE").execute(&mut *connection).await?;
        for apply in writes {
            sqlx::query("SAVEPOINT write").execute(&mut *connection).await?;
            let (succeeded, settle) = apply(connection).await;
            settles.push(settle);
            if !succeeded {
                sqlx::query("ROLLBACK TO write").execute(&mut *connection).await?;
            }
            sqlx::query("RELEASE write").execute(&mut *connection).await?;
        }
        write_cursors(connection, &cursor_values).await?;
        sqlx::query("COMMIT").execute(&mut *connection).await?;
        Ok::<(), sqlx::Error>(())
    }
    .await;
    let outcome = match outcome {
        Ok(()) => Ok(()),
        Err(error) => {
            tracing::error!(%error, writes = count, "group commit failed; every write in it is answered with the error");
            // Fails harmlessly when the transaction never began.
            let _ = sqlx::query("ROLLBACK").execute(&mut *connection).await;
            cursors.restore(cursor_values);
            Err(error.to_string())
        }
    };
    tracing::trace!(writes = count, elapsed_us = started.elapsed().as_micros() as u64, "group commit");
    for settle in settles {
        settle(outcome.clone());
    }
}

async fn write_cursors(connection: &mut SqliteConnection, cursors: &HashMap<String, u64>) -> sqlx::Result<()> {
    let now = now_text();
    for (gateway_id, seq) in cursors {
        sqlx::query("UPDATE gateways SET acked_seq = MAX(acked_seq, ?), last_seen = ? WHERE gateway_id = ?")
            .bind(*seq as i64)
            .bind(&now)
            .bind(gateway_id)
            .execute(&mut *connection)
            .await?;
    }
    Ok(())
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Write(_) => f.write_str("Write"),
            Self::Close(_) => f.write_str("Close"),
        }
    }
}
