//! Copying the WAL back into the database file, off the writer's thread.
//!
//! SQLite's automatic checkpoint runs inside the commit that crosses its
//! threshold, so the writer (and every caller waiting on that commit) would
//! wait for the copy and the database file's fsync. Instead the writer's
//! connection has automatic checkpoints off, and this thread runs passive
//! checkpoints on a connection of its own: after commits, at most every
//! [`INTERVAL`]. A passive checkpoint never blocks the writer or the readers;
//! what it cannot copy yet (pages a reader still needs) it copies next time.
//! While nothing is written the thread sleeps and costs nothing.

use super::{StoreError, StoreResult};
use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, sync_channel};
use std::time::Duration;

/// Shortest time between two checkpoints.
const INTERVAL: Duration = Duration::from_millis(100);

/// Tells the checkpointer that the WAL grew (dropping it stops the thread).
#[derive(Debug, Clone)]
pub(super) struct CheckpointNudge(SyncSender<()>);

impl CheckpointNudge {
    /// Called after each commit; never blocks.
    pub(super) fn commit_happened(&self) {
        let _ = self.0.try_send(());
    }
}

/// Starts the checkpoint thread on its own connection to `path`.
pub(super) fn spawn(path: &Path) -> StoreResult<CheckpointNudge> {
    let connection = rusqlite::Connection::open(path)?;
    let (nudge, nudged) = sync_channel(1);
    std::thread::Builder::new()
        .name("gorp-checkpoint".into())
        .spawn(move || run(&connection, &nudged))
        .map_err(|error| StoreError::Database(sqlx::Error::Io(error)))?;
    Ok(CheckpointNudge(nudge))
}

fn run(connection: &rusqlite::Connection, nudged: &Receiver<()>) {
    while nudged.recv().is_ok() {
        if let Err(error) = checkpoint(connection) {
            tracing::warn!(%error, "WAL checkpoint failed; the next commit tries again");
        }
        std::thread::sleep(INTERVAL);
        // Commits during the pause need one checkpoint, not one each.
        if let Err(TryRecvError::Disconnected) = nudged.try_recv() {
            break;
        }
    }
}

/// One passive checkpoint; returns the WAL's frames and those copied.
fn checkpoint(connection: &rusqlite::Connection) -> rusqlite::Result<(i64, i64)> {
    connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| Ok((row.get(1)?, row.get(2)?)))
}

#[cfg(test)]
mod tests {
    use crate::domain::ChannelRef;
    use crate::store::{NewInbound, Store};

    fn wal_bytes(dir: &std::path::Path) -> u64 {
        std::fs::metadata(dir.join("gorp.db-wal")).map(|m| m.len()).unwrap_or(0)
    }

    /// The writer never checkpoints, yet the WAL's pages reach the database
    /// file: the checkpoint thread copies them.
    #[tokio::test]
    async fn the_wal_is_copied_into_the_database_off_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        let database_before = std::fs::metadata(dir.path().join("gorp.db")).unwrap().len();
        for i in 0..300 {
            let message = NewInbound {
                channel: ChannelRef::new("web", "c"),
                message_id: Some(format!("m{i}")),
                sender: "u".into(),
                text: "x".repeat(2000),
            };
            store.accept_inbound(&message).await.unwrap();
        }
        assert!(wal_bytes(dir.path()) > 0, "the writes went to the WAL");
        let copied = async {
            loop {
                if std::fs::metadata(dir.path().join("gorp.db")).unwrap().len() > database_before + 500_000 {
                    return;
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(10), copied)
            .await
            .expect("the checkpoint thread copied the WAL into gorp.db");
        store.close().await;
    }
}
