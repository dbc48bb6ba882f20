//! Persistence: sessions, bindings, inbound messages, history, the response
//! log, gateway cursors and tokens, in SQLite (WAL) through sqlx.
//!
//! The schema lives in `migrations/sqlite` and is applied at open. Every
//! method is one statement or one transaction, so a crash leaves either the
//! old or the new state. Callers that need ordering across commits (the
//! response log) serialise themselves; the store only guarantees atomicity.

mod gateways;
mod history;
mod inbound;
mod responses;
mod sessions;
mod tokens;
mod web_logins;

pub use gateways::GatewayRow;
pub use history::{HistoryRow, NewHistory, Role};
pub use inbound::{InboundState, NewInbound};
pub use responses::Commit;
pub use sessions::SessionRow;
pub use tokens::{TokenKind, TokenRow};
pub use web_logins::WebLoginRow;

use chrono::{DateTime, SecondsFormat, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
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
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    /// Applying migrations failed.
    #[error("database migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        match &error {
            sqlx::Error::RowNotFound => Self::NotFound,
            sqlx::Error::Database(db) if db.is_unique_violation() => Self::Conflict,
            _ => Self::Database(error),
        }
    }
}

/// Result alias for store operations.
pub type StoreResult<T> = Result<T, StoreError>;

/// A cheap, cloneable handle to the database.
#[derive(Clone, Debug)]
pub struct Store {
    pool: SqlitePool,
}

impl Store {
    /// Opens (creating if needed) `gorp.db` in `data_dir` and applies migrations.
    ///
    /// `synchronous = FULL`: a commit (and so an acknowledgement) survives a
    /// power loss or OS crash, not only a gorpd crash.
    pub async fn open(data_dir: &Path) -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str("sqlite:")?
            .filename(data_dir.join("gorp.db"))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new().max_connections(8).connect_with(options).await?;
        sqlx::migrate!("../migrations/sqlite").run(&pool).await?;
        Ok(Self { pool })
    }

    /// Starts a write transaction that takes SQLite's write lock at once
    /// (`BEGIN IMMEDIATE`): a deferred transaction that reads first fails with
    /// SQLITE_BUSY when another writer commits before its first write, and the
    /// busy timeout does not help then; an immediate one waits its turn.
    pub(crate) async fn begin_write(&self) -> StoreResult<sqlx::Transaction<'static, sqlx::Sqlite>> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// Closes every connection, waiting for them to finish.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Timestamps are stored as RFC 3339 text with microseconds, which sorts correctly.
pub(crate) fn now_text() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true)
}

pub(crate) fn parse_time(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).map(|t| t.with_timezone(&Utc)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::{ChannelRef, NewResponse, ResponseKind};

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
                        };
                        store.append_response(&response, &Commit::default()).await
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
