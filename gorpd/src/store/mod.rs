//! Persistence: sessions, bindings, inbound messages, history, the response
//! log, gateway cursors, tokens, schedules and webhooks, in SQLite (WAL).
//!
//! The schema lives in `migrations/sqlite` and is applied at open (sqlx's
//! migrator). Every write goes through the one [`writer`] thread, which owns
//! the only write connection (rusqlite, synchronous, statements cached) and
//! group-commits whatever is waiting (one fsync per batch); reads use sqlx's
//! async pool of read-only connections, which WAL never blocks. Each write
//! method is atomic (its own savepoint in the batch) and returns only once
//! its batch is durable, so no write ever waits in SQLite's busy handler.

mod attachments;
mod backup;
mod command;
mod compaction;
mod gateways;
mod history;
mod hooks;
mod inbound;
mod responses;
mod row;
mod schedules;
mod sessions;
mod tokens;
mod web_logins;
mod writer;

#[cfg(test)]
mod upgrade_tests;

pub use writer::WriterStats;

pub use backup::{DATABASE_FILE, DatabaseSize, Restored, Snapshot, check_database_file, restore};
pub use compaction::{Compacted, CompactionPoints};
pub use gateways::GatewayRow;
pub use history::{HistoryRow, PruneRule, Role};
pub use hooks::{HOOK_PLATFORM, HookCall, HookRow};
pub use inbound::{InboundState, NewInbound};
pub use responses::Commit;
pub use schedules::{CatchUp, Firing, NewSchedule, RunRow, SCHEDULE_PLATFORM, ScheduleRow};
pub use sessions::SessionRow;
pub use tokens::{TokenKind, TokenRow};
pub use web_logins::WebLoginRow;

pub(crate) use row::StoredRow;

use chrono::{DateTime, SecondsFormat, Utc};
use sqlx::sqlite::{
    SqliteAutoVacuum, SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{ConnectOptions, Connection, SqliteConnection};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

/// Errors from the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row asked for does not exist.
    #[error("not found")]
    NotFound,
    /// A unique key already exists.
    #[error("already exists")]
    Conflict,
    /// The database failed (a read).
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    /// The database failed (a write on the writer's connection).
    #[error("database error: {0}")]
    Write(#[source] rusqlite::Error),
    /// Applying migrations failed.
    #[error("database migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// The batch this write was part of could not be committed; nothing of it is stored.
    #[error("commit failed: {0}")]
    Commit(String),
    /// The store is closed (gorpd is stopping).
    #[error("the store is closed")]
    Closed,
    /// The disk, or the configured database size limit, is full: nothing new can be stored.
    #[error("the disk (or max_database_bytes) is full: gorpd stores nothing new until space is freed")]
    Full,
    /// The database was written by a newer gorp.
    #[error(
        "gorp.db was written by a newer gorp (schema version {found}; this gorpd knows up to {known}): \
         run that version, or restore a backup made by this one"
    )]
    Newer {
        /// The database's schema version.
        found: i64,
        /// The newest this build knows.
        known: i64,
    },
    /// The file is not a SQLite database (or not gorp's).
    #[error("not a gorp database: {0}")]
    NotADatabase(String),
    /// The database failed its integrity check.
    #[error("the database is damaged: {0}; restore a backup into an empty data directory")]
    Damaged(String),
    /// A backup or restore step failed.
    #[error("backup: {0}")]
    Backup(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        match &error {
            sqlx::Error::RowNotFound => Self::NotFound,
            sqlx::Error::Database(db) if db.is_unique_violation() => Self::Conflict,
            _ if is_disk_full(&error) => Self::Full,
            // SQLITE_CORRUPT.
            sqlx::Error::Database(db) if db.code().as_deref() == Some("11") => Self::Damaged(db.message().to_owned()),
            // SQLITE_NOTADB.
            sqlx::Error::Database(db) if db.code().as_deref() == Some("26") => {
                Self::NotADatabase(db.message().to_owned())
            }
            _ => Self::Database(error),
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode;
        match &error {
            rusqlite::Error::QueryReturnedNoRows => Self::NotFound,
            rusqlite::Error::SqliteFailure(failure, message) => match failure.code {
                ErrorCode::ConstraintViolation if is_unique_violation(failure.extended_code) => Self::Conflict,
                ErrorCode::DiskFull => Self::Full,
                ErrorCode::DatabaseCorrupt => Self::Damaged(message.clone().unwrap_or_default()),
                ErrorCode::NotADatabase => Self::NotADatabase(message.clone().unwrap_or_default()),
                _ => Self::Write(error),
            },
            _ => Self::Write(error),
        }
    }
}

/// SQLITE_CONSTRAINT_UNIQUE or SQLITE_CONSTRAINT_PRIMARYKEY.
fn is_unique_violation(extended_code: std::ffi::c_int) -> bool {
    const UNIQUE: std::ffi::c_int = 2067;
    const PRIMARY_KEY: std::ffi::c_int = 1555;
    matches!(extended_code, UNIQUE | PRIMARY_KEY)
}

/// SQLITE_CONSTRAINT_FOREIGNKEY.
pub(crate) fn is_foreign_key_violation(error: &rusqlite::Error) -> bool {
    const FOREIGN_KEY: std::ffi::c_int = 787;
    matches!(error, rusqlite::Error::SqliteFailure(failure, _) if failure.extended_code == FOREIGN_KEY)
}

/// SQLITE_FULL: the disk, or the database's `max_page_count`, is full.
pub(crate) fn is_disk_full(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.code().as_deref() == Some("13"))
}

/// SQLITE_FULL on the writer's connection.
pub(crate) fn is_write_disk_full(error: &rusqlite::Error) -> bool {
    error.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull)
}

/// The writer's connection, as write closures see it.
pub(crate) type WriteConnection = rusqlite::Connection;

/// Result alias for store operations.
pub type StoreResult<T> = Result<T, StoreError>;

/// Read connections (WAL readers run beside the writer without blocking it).
const READERS: u32 = 4;

/// A cheap, cloneable handle to the database.
#[derive(Clone, Debug)]
pub struct Store {
    pool: SqlitePool,
    writer: writer::WriterHandle,
    /// The data directory (backups are written next to the database).
    directory: std::sync::Arc<std::path::PathBuf>,
}

impl Store {
    /// The data directory the database is in.
    pub fn data_dir(&self) -> &Path {
        &self.directory
    }

    /// Opens (creating if needed) `gorp.db` in `data_dir` and applies migrations.
    ///
    /// `synchronous = FULL`: a commit (and so an acknowledgement) survives a
    /// power loss or OS crash, not only a gorpd crash.
    pub async fn open(data_dir: &Path) -> StoreResult<Self> {
        Self::open_limited(data_dir, None).await
    }

    /// Like [`Store::open`], with the database kept under `max_bytes` (writes
    /// beyond it fail with [`StoreError::Full`]; reads go on).
    pub async fn open_limited(data_dir: &Path, max_bytes: Option<u64>) -> StoreResult<Self> {
        let path = data_dir.join(DATABASE_FILE);
        create_private_file(&path).map_err(|error| StoreError::Database(sqlx::Error::Io(error)))?;
        let options = SqliteConnectOptions::from_str("sqlite:")?
            .filename(&path)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let mut setup =
            options.clone().create_if_missing(true).auto_vacuum(SqliteAutoVacuum::Incremental).connect().await?;
        backup::check_schema_version(&mut setup).await?;
        sqlx::migrate!("../migrations/sqlite").run(&mut setup).await?;
        enable_incremental_vacuum(&mut setup).await?;
        setup.close().await?;
        let write_connection = open_write_connection(&path, max_bytes)?;
        let pool = SqlitePoolOptions::new()
            .max_connections(READERS)
            .min_connections(1)
            .connect_with(options.read_only(true))
            .await?;
        let directory = std::sync::Arc::new(data_dir.to_path_buf());
        let writer = writer::WriterHandle::spawn(write_connection)
            .map_err(|error| StoreError::Database(sqlx::Error::Io(error)))?;
        Ok(Self { pool, writer, directory })
    }

    /// Commits `write` with the writer's next batch, in its own savepoint (a
    /// failure undoes only this write); returns once it is durable.
    pub(crate) async fn write<R, W>(&self, write: W) -> StoreResult<R>
    where
        R: Send + 'static,
        W: FnOnce(&WriteConnection) -> StoreResult<R> + Send + 'static,
    {
        self.write_then(write, |value| value).await
    }

    /// Runs `work` as DISPATCH command `inbound_id`: every write it makes also
    /// marks that command applied, in the same transaction (see [`command`]).
    pub async fn as_command<F: std::future::Future>(&self, inbound_id: i64, work: F) -> F::Output {
        command::scope(inbound_id, work).await
    }

    /// Like [`Store::write`], and passes the result through `after_commit`
    /// on the writer thread, in commit order, before answering (the bus
    /// publishes responses in `seq` order this way).
    pub(crate) async fn write_then<R, T, W, A>(&self, write: W, after_commit: A) -> StoreResult<T>
    where
        R: Send + 'static,
        T: Send + 'static,
        W: FnOnce(&WriteConnection) -> StoreResult<R> + Send + 'static,
        A: FnOnce(R) -> T + Send + 'static,
    {
        self.writer.write(command::marking_applied(write), after_commit).await
    }

    /// Changes the largest size the database may grow to (`None`: only the
    /// disk limits it); a limit below the current size holds it where it is.
    pub async fn set_size_limit(&self, max_bytes: Option<u64>) -> StoreResult<()> {
        self.write(move |connection| set_max_page_count(connection, max_bytes)).await
    }

    /// The writer's running totals (commits and the writes in them).
    pub fn writer_stats(&self) -> &writer::WriterStats {
        self.writer.stats()
    }

    /// Commits what is queued, writes buffered cursors and closes every connection.
    pub async fn close(&self) {
        self.writer.close().await;
        self.pool.close().await;
    }
}

/// SQLite's largest page count: no limit but the disk.
const UNLIMITED_PAGES: u64 = 0xffff_fffe;

/// SQL for "is in the list bound as one parameter" (bind [`json_list`] of the list).
const IN_BOUND_LIST: &str = "IN (SELECT value FROM json_each(?))";

/// The parameter for [`IN_BOUND_LIST`]: the values as a JSON array.
fn json_list<T: serde::Serialize>(values: &[T]) -> String {
    serde_json::to_string(values).expect("ids and names serialise")
}

/// The first column of every row `sql` returns, on the writer's connection.
fn query_column<T: rusqlite::types::FromSql>(
    connection: &WriteConnection,
    sql: &str,
    params: impl rusqlite::Params,
) -> StoreResult<Vec<T>> {
    let mut statement = connection.prepare_cached(sql)?;
    let values = statement.query_map(params, |row| row.get(0))?.collect::<rusqlite::Result<Vec<T>>>()?;
    Ok(values)
}

/// Every row `sql` returns on the writer's connection, through `map`.
fn query_rows<T>(
    connection: &WriteConnection,
    sql: &str,
    params: impl rusqlite::Params,
    map: impl Fn(&dyn StoredRow) -> T,
) -> StoreResult<Vec<T>> {
    let mut statement = connection.prepare_cached(sql)?;
    let values = statement.query_map(params, |row| Ok(map(row)))?.collect::<rusqlite::Result<Vec<T>>>()?;
    Ok(values)
}

/// The row `sql` returns on the writer's connection, through `map`
/// (`NotFound` when there is none).
fn query_one<T>(
    connection: &WriteConnection,
    sql: &str,
    params: impl rusqlite::Params,
    map: impl FnOnce(&dyn StoredRow) -> T,
) -> StoreResult<T> {
    Ok(connection.prepare_cached(sql)?.query_row(params, |row| Ok(map(row)))?)
}

/// Runs `batch` (a write removing at most `limit` rows, returning how many)
/// until one removes fewer: long removals never hold the writer for long.
async fn in_batches<F, Fut>(limit: u32, mut batch: F) -> StoreResult<u64>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = StoreResult<u64>>,
{
    let mut removed = 0;
    loop {
        let count = batch().await?;
        removed += count;
        if count < u64::from(limit) {
            return Ok(removed);
        }
    }
}

/// Switches a database made before gorp reclaimed space to incremental
/// auto-vacuum (new databases are created with it). That takes one full
/// `VACUUM`, once, before gorpd serves: the file is rewritten, so it needs
/// free disk space about its size and time in proportion to it.
async fn enable_incremental_vacuum(connection: &mut SqliteConnection) -> StoreResult<()> {
    const INCREMENTAL: i64 = 2;
    let mode: i64 = sqlx::query_scalar("PRAGMA auto_vacuum").fetch_one(&mut *connection).await?;
    if mode != INCREMENTAL {
        tracing::info!("switching gorp.db to incremental vacuum (once; rewrites the file)");
        sqlx::query("PRAGMA auto_vacuum = INCREMENTAL").execute(&mut *connection).await?;
        sqlx::query("VACUUM").execute(&mut *connection).await?;
    }
    Ok(())
}

/// Opens the writer's connection: WAL (set on the file already),
/// `synchronous = FULL`, foreign keys, and the size limit. Savepoint
/// journals stay in memory (`temp_store`): each write's savepoint copies the
/// pages it touches first, and in a temporary file that copying was a
/// quarter of the writer's time.
fn open_write_connection(path: &Path, max_bytes: Option<u64>) -> StoreResult<WriteConnection> {
    let connection = rusqlite::Connection::open(path)?;
    connection.busy_timeout(Duration::from_secs(10))?;
    connection.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY;")?;
    set_max_page_count(&connection, max_bytes)?;
    Ok(connection)
}

/// Sets the write connection's `max_page_count` from a size in bytes.
fn set_max_page_count(connection: &WriteConnection, max_bytes: Option<u64>) -> StoreResult<()> {
    let page_size: i64 = connection.query_row("PRAGMA page_size", [], |row| row.get(0))?;
    let pages = max_bytes.map_or(UNLIMITED_PAGES, |bytes| (bytes / page_size.max(1) as u64).clamp(1, UNLIMITED_PAGES));
    // A number, not user text: nothing to escape. The pragma answers with the new limit.
    connection.query_row(&format!("PRAGMA max_page_count = {pages}"), [], |_| Ok(()))?;
    Ok(())
}

/// Creates an empty `path` readable only by gorpd's user, whatever the
/// umask, unless it exists. SQLite gives its `-wal` and `-shm` files the
/// database file's permissions, so they are private too.
fn create_private_file(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        other => other.map(drop),
    }
}

/// Timestamps are stored as RFC 3339 UTC text with microseconds, which sorts correctly.
pub(crate) fn time_text(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// The current time as stored.
pub(crate) fn now_text() -> String {
    time_text(Utc::now())
}

pub(crate) fn parse_time(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).map(|t| t.with_timezone(&Utc)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ChannelRef, NewResponse, ResponseKind};

    /// Writers racing a delete must wait for the write lock, never fail with SQLITE_BUSY.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_writes_and_deletes_never_fail_busy() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        for round in 0..15 {
            let name = format!("s{round}");
            store.create_session(&name, "/tmp", "echo").await.unwrap();
            store.bind(&ChannelRef::new("web", &name), &name).await.unwrap();
            let writers: Vec<_> = (0..16)
                .map(|i| {
                    let store = store.clone();
                    tokio::spawn(async move {
                        let response = NewResponse {
                            response_id: format!("r{i}"),
                            session: None,
                            kind: ResponseKind::Complete,
                            text: "x".into(),
                            targets: vec![ChannelRef::new("web", "t")],
                            reply_to: None,
                            permission: None,
                            attachments: Vec::new(),
                        };
                        store.append_response(response, Commit::default(), |response| response).await
                    })
                })
                .collect();
            store.delete_session(&name).await.expect("delete while others write");
            for writer in writers {
                writer.await.unwrap().expect("append while a delete runs");
            }
        }
    }
}
