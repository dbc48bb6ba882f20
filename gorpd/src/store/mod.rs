//! Persistence: sessions, bindings, inbound messages, history, the response
//! log, gateway cursors, tokens, schedules and webhooks, in SQLite (WAL, the
//! default) or Postgres (`store_url`).
//!
//! The schema lives in `migrations/sqlite` and `migrations/postgres` and is
//! applied at open (sqlx's migrator). Every write goes through the one
//! [`writer`] thread, which owns the only write connection ([`connection`]:
//! rusqlite with statements cached, or a Postgres connection) and
//! group-commits whatever is waiting (one fsync per batch); reads use an
//! async pool ([`reads`]: SQLite's read-only connections, which WAL never
//! blocks, or Postgres connections). Each write method is atomic (its own
//! savepoint in the batch) and returns only once its batch is durable, so no
//! write ever waits in SQLite's busy handler. The SQL is written once for
//! both engines ([`sql`]).

mod attachments;
mod backup;
mod cluster;
mod command;
mod compaction;
mod connection;
mod gateways;
mod history;
mod hooks;
mod inbound;
mod migrate;
mod reads;
mod responses;
mod row;
mod schedules;
mod sessions;
pub(crate) mod sql;
mod tokens;
mod web_logins;
mod writer;

#[cfg(test)]
mod upgrade_tests;

pub use writer::WriterStats;

pub use backup::{DATABASE_FILE, DatabaseSize, Restored, Snapshot, check_database_file, restore};
pub(crate) use cluster::Announcement;
pub use cluster::{
    CHUNKS_CHANNEL, CONTROL_CHANNEL, INBOUND_CHANNEL, MAX_CHUNK_PAYLOAD, Notice, RESPONSES_CHANNEL, ReplicaRow,
};
pub use compaction::{Compacted, CompactionPoints};
pub use gateways::GatewayRow;
pub use history::{HistoryRow, PruneRule, Role, SEARCH_MAX_CHARS, SEARCH_MAX_RESULTS, SearchQuery};
pub use hooks::{HOOK_PLATFORM, HookCall, HookRow};
pub use inbound::{InboundState, NewInbound};
pub use migrate::{Migrated, sqlite_into_postgres};
pub use responses::Commit;
pub use schedules::{CatchUp, Firing, NewSchedule, RunRow, SCHEDULE_PLATFORM, ScheduleRow};
pub use sessions::SessionRow;
pub use tokens::{TokenKind, TokenRow};
pub use web_logins::WebLoginRow;

pub(crate) use connection::WriteConnection;
pub(crate) use row::StoredRow;
pub use sql::Engine;

use reads::Readers;

use chrono::{DateTime, SecondsFormat, Utc};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteAutoVacuum, SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
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
    /// A write named a row that does not exist (a foreign key).
    #[error("refers to a row that does not exist")]
    MissingReference,
    /// The store's engine does not do this.
    #[error("{0}")]
    Unsupported(&'static str),
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
            sqlx::Error::Database(db) if db.is_foreign_key_violation() => Self::MissingReference,
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
                ErrorCode::ConstraintViolation if failure.extended_code == FOREIGN_KEY => Self::MissingReference,
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
const FOREIGN_KEY: std::ffi::c_int = 787;

/// SQLITE_FULL (the disk, or the database's `max_page_count`, is full), or
/// Postgres's `disk_full`.
pub(crate) fn is_disk_full(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if matches!(db.code().as_deref(), Some("13" | "53100")))
}

/// Result alias for store operations.
pub type StoreResult<T> = Result<T, StoreError>;

/// Read connections (WAL readers run beside the writer without blocking it).
const READERS: u32 = 4;

/// A cheap, cloneable handle to the database.
#[derive(Clone, Debug)]
pub struct Store {
    reads: Readers,
    writer: writer::WriterHandle,
    /// The data directory (backups are written next to the database).
    directory: std::sync::Arc<std::path::PathBuf>,
    /// This gorpd's id among the replicas, once it joined (Postgres only).
    replica: cluster::ReplicaId,
}

impl Store {
    /// The data directory the database is in.
    pub fn data_dir(&self) -> &Path {
        &self.directory
    }

    /// The engine the store runs on.
    pub fn engine(&self) -> Engine {
        self.reads.engine()
    }

    /// Opens the store `store_url` names (a `postgres://` URL), or by default
    /// SQLite's `gorp.db` in `data_dir` (kept under `max_bytes`), and applies
    /// migrations. Files, workspaces and backups stay in `data_dir` either way.
    pub async fn open_configured(
        data_dir: &Path,
        store_url: Option<&str>,
        max_bytes: Option<u64>,
    ) -> StoreResult<Self> {
        match store_url {
            Some(_) if max_bytes.is_some() => Err(StoreError::Unsupported(SIZE_LIMIT_IS_SQLITES)),
            Some(url) => Self::open_postgres(url, data_dir).await,
            None => Self::open_limited(data_dir, max_bytes).await,
        }
    }

    /// Connects to the Postgres database at `url` and applies its
    /// migrations (several gorpd starting at once take turns: sqlx's
    /// migrator holds an advisory lock).
    pub async fn open_postgres(url: &str, data_dir: &Path) -> StoreResult<Self> {
        use sqlx::migrate::MigrateDatabase;
        let options = PgConnectOptions::from_str(url)?.statement_cache_capacity(writer::STATEMENT_CACHE);
        if !sqlx::Postgres::database_exists(url).await? {
            tracing::info!(database = options.get_database().unwrap_or_default(), "creating the Postgres database");
            sqlx::Postgres::create_database(url).await?;
        }
        let mut setup = options.connect().await?;
        sqlx::migrate!("../migrations/postgres")
            .run(&mut setup)
            .await
            .map_err(|error| newer_schema(error, postgres_schema_version()))?;
        setup.close().await?;
        let replica = cluster::ReplicaId::default();
        let writer = connection::PostgresWriter::connect(options.clone(), replica.clone()).await?;
        let pool = PgPoolOptions::new().max_connections(READERS).min_connections(1).connect_with(options).await?;
        Self::with_connections(Readers::Postgres(pool), WriteConnection::Postgres(writer), data_dir, replica)
    }

    fn with_connections(
        reads: Readers,
        write_connection: WriteConnection,
        data_dir: &Path,
        replica: cluster::ReplicaId,
    ) -> StoreResult<Self> {
        let directory = std::sync::Arc::new(data_dir.to_path_buf());
        let writer = writer::WriterHandle::spawn(write_connection)
            .map_err(|error| StoreError::Database(sqlx::Error::Io(error)))?;
        Ok(Self { reads, writer, directory, replica })
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
        let write_connection = WriteConnection::Sqlite(open_write_connection(&path, max_bytes)?);
        let pool = SqlitePoolOptions::new()
            .max_connections(READERS)
            .min_connections(1)
            .connect_with(options.read_only(true))
            .await?;
        Self::with_connections(Readers::Sqlite(pool), write_connection, data_dir, Default::default())
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
        self.write(move |connection| match connection {
            WriteConnection::Sqlite(connection) => set_max_page_count(connection, max_bytes),
            WriteConnection::Postgres(_) if max_bytes.is_none() => Ok(()),
            WriteConnection::Postgres(_) => Err(StoreError::Unsupported(SIZE_LIMIT_IS_SQLITES)),
        })
        .await
    }

    /// The writer's running totals (commits and the writes in them).
    pub fn writer_stats(&self) -> &writer::WriterStats {
        self.writer.stats()
    }

    /// Commits what is queued, writes buffered cursors and closes every connection.
    pub async fn close(&self) {
        self.writer.close().await;
        self.reads.close().await;
    }
}

/// Tests: the store URL the test run asks for, for `data_dir`. With
/// `GORP_TEST_POSTGRES` set to a server's URL (`postgres://user@host:port`),
/// a database of its own per data directory on that server (the same one
/// again when a test reopens the directory); otherwise `None`: SQLite.
#[cfg(any(test, feature = "testing"))]
pub fn test_store_url(data_dir: &Path) -> Option<String> {
    use sha2::Digest;
    use std::os::unix::ffi::OsStrExt;
    let server = std::env::var("GORP_TEST_POSTGRES").ok().filter(|server| !server.is_empty())?;
    let digest = sha2::Sha256::digest(data_dir.as_os_str().as_bytes());
    Some(format!("{}/gorp_test_{}", server.trim_end_matches('/'), hex::encode(&digest[..8])))
}

/// Tests: opens the store for `data_dir` on the engine the test run asks for (see [`test_store_url`]).
#[cfg(test)]
pub(crate) async fn open_for_test(data_dir: &Path) -> Store {
    Store::open_configured(data_dir, test_store_url(data_dir).as_deref(), None).await.expect("the test store opens")
}

/// SQLite's largest page count: no limit but the disk.
const UNLIMITED_PAGES: u64 = 0xffff_fffe;

/// Why `max_database_bytes` is refused on Postgres.
const SIZE_LIMIT_IS_SQLITES: &str =
    "max_database_bytes limits SQLite's gorp.db; on Postgres, limit the database with the server's own means";

/// The newest schema version of the Postgres migrations this build has.
fn postgres_schema_version() -> i64 {
    sqlx::migrate!("../migrations/postgres").iter().map(|m| m.version).max().unwrap_or(0)
}

/// A migration failure, as [`StoreError::Newer`] when the database has a
/// migration this build does not know.
fn newer_schema(error: sqlx::migrate::MigrateError, known: i64) -> StoreError {
    match error {
        sqlx::migrate::MigrateError::VersionMissing(found) if found > known => StoreError::Newer { found, known },
        other => StoreError::Migration(other),
    }
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
fn open_write_connection(path: &Path, max_bytes: Option<u64>) -> StoreResult<rusqlite::Connection> {
    let connection = rusqlite::Connection::open(path)?;
    connection.busy_timeout(Duration::from_secs(10))?;
    connection.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY;")?;
    set_max_page_count(&connection, max_bytes)?;
    Ok(connection)
}

/// Sets the write connection's `max_page_count` from a size in bytes.
fn set_max_page_count(connection: &rusqlite::Connection, max_bytes: Option<u64>) -> StoreResult<()> {
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
        let store = crate::store::open_for_test(dir.path()).await;
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
                            trace_context: None,
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
