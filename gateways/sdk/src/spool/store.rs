//! The spool's SQLite file: one table of inbound messages in arrival order.
//!
//! Only the spool task touches the connection. The file is opened with
//! `locking_mode = EXCLUSIVE`, so a second gateway process on the same state
//! directory fails at start instead of sending the same messages twice, and
//! `synchronous = FULL`, so a committed row survives a power loss.

use super::SpoolError;
use crate::platform::Inbound;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqliteLockingMode, SqliteSynchronous};
use sqlx::{Connection, Row};
use std::path::Path;
use std::time::Duration;

/// The spool's file name in the state directory.
pub(crate) const SPOOL_FILE: &str = "spool.db";

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS spool (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    bus_id TEXT UNIQUE,
    channel_id TEXT NOT NULL,
    message_id TEXT NOT NULL,
    sender_id TEXT NOT NULL,
    sender_name TEXT NOT NULL,
    text TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    received_ms INTEGER NOT NULL
)";

/// One spooled message as it was read back.
#[derive(Debug)]
pub(crate) struct Stored {
    pub(crate) seq: i64,
    pub(crate) bytes: u64,
    pub(crate) received_ms: i64,
    pub(crate) inbound: Inbound,
}

/// Opens (creating) the spool file in `dir` and holds its lock.
pub(crate) async fn open(dir: &Path) -> Result<SqliteConnection, SpoolError> {
    std::fs::create_dir_all(dir).map_err(|e| SpoolError::Open(format!("cannot create {}: {e}", dir.display())))?;
    let path = dir.join(SPOOL_FILE);
    let options = SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .locking_mode(SqliteLockingMode::Exclusive)
        .busy_timeout(Duration::from_millis(200));
    let fail = |e: sqlx::Error| SpoolError::Open(format!("{}: {e} (is another gateway using it?)", path.display()));
    let mut connection = SqliteConnection::connect_with(&options).await.map_err(fail)?;
    // The first write takes the exclusive lock and keeps it.
    sqlx::query(SCHEMA).execute(&mut connection).await.map_err(fail)?;
    add_files_column(&mut connection).await.map_err(fail)?;
    Ok(connection)
}

/// Spools made before files were carried get the column (`[]` for their messages).
async fn add_files_column(connection: &mut SqliteConnection) -> Result<(), sqlx::Error> {
    let has: bool = sqlx::query_scalar("SELECT COUNT(*) > 0 FROM pragma_table_info('spool') WHERE name = 'files'")
        .fetch_one(&mut *connection)
        .await?;
    if !has {
        sqlx::query("ALTER TABLE spool ADD COLUMN files TEXT NOT NULL DEFAULT '[]'").execute(connection).await?;
    }
    Ok(())
}

/// Every spooled message, oldest first.
pub(crate) async fn load(connection: &mut SqliteConnection) -> Result<Vec<Stored>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT seq, channel_id, message_id, sender_id, sender_name, text, files, bytes, received_ms
         FROM spool ORDER BY seq",
    )
    .fetch_all(connection)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(Stored {
                seq: row.try_get("seq")?,
                bytes: row.try_get::<i64, _>("bytes")?.max(0) as u64,
                received_ms: row.try_get("received_ms")?,
                inbound: Inbound {
                    channel_id: row.try_get("channel_id")?,
                    message_id: row.try_get("message_id")?,
                    sender_id: row.try_get("sender_id")?,
                    sender_name: row.try_get("sender_name")?,
                    text: row.try_get("text")?,
                    files: serde_json::from_str(row.try_get("files")?)
                        .map_err(|error| sqlx::Error::Decode(Box::new(error)))?,
                },
            })
        })
        .collect()
}

/// Inserts `inbound` under `bus_id` (empty: no key); `None` when a message
/// with that key is already spooled.
pub(crate) async fn insert(
    connection: &mut SqliteConnection,
    bus_id: &str,
    inbound: &Inbound,
    bytes: u64,
    received_ms: i64,
) -> Result<Option<i64>, sqlx::Error> {
    let row = sqlx::query(
        "INSERT INTO spool (bus_id, channel_id, message_id, sender_id, sender_name, text, files, bytes, received_ms)
         VALUES (NULLIF(?, ''), ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (bus_id) DO NOTHING RETURNING seq",
    )
    .bind(bus_id)
    .bind(&inbound.channel_id)
    .bind(&inbound.message_id)
    .bind(&inbound.sender_id)
    .bind(&inbound.sender_name)
    .bind(&inbound.text)
    .bind(serde_json::to_string(&inbound.files).expect("file references serialise"))
    .bind(bytes as i64)
    .bind(received_ms)
    .fetch_optional(connection)
    .await?;
    row.map(|row| row.try_get("seq")).transpose()
}

/// Removes the message `seq`.
pub(crate) async fn delete(connection: &mut SqliteConnection, seq: i64) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM spool WHERE seq = ?").bind(seq).execute(connection).await?;
    Ok(())
}
