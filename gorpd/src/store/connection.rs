//! The writer's connection, as write closures see it: one synchronous API
//! over SQLite (rusqlite, statements cached) and Postgres (sqlx's
//! connection on a runtime of its own, which the writer thread drives: each
//! statement's round trip involves no other thread of gorpd's).
//!
//! Every method takes SQL written for both engines (see [`super::sql`]) and
//! returns [`StoreResult`], with each engine's errors mapped to the same
//! [`StoreError`] variants.

use super::cluster::{Announcement, ReplicaId};
use super::sql::{Engine, Param, Value, bind, postgres_placeholders};
use super::{StoreError, StoreResult, StoredRow};
use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use tokio::runtime::Runtime;

/// The connection every store write runs on (only the writer thread has it).
pub(crate) enum WriteConnection {
    /// `gorp.db`'s only write connection.
    Sqlite(rusqlite::Connection),
    /// The writer's Postgres connection.
    Postgres(PostgresWriter),
}

/// A Postgres connection used synchronously by the writer thread.
pub(crate) struct PostgresWriter {
    connection: RefCell<sqlx::PgConnection>,
    /// A current-thread runtime: `block_on` on the writer thread does the I/O right there.
    runtime: Runtime,
    /// Statements with their placeholders already rewritten.
    rewritten: RefCell<HashMap<String, String>>,
    /// This gorpd's replica id, once it has joined the replicas.
    replica: ReplicaId,
    /// What the transaction in progress announces to the other replicas at its commit.
    announcements: RefCell<BTreeSet<Announcement>>,
}

impl PostgresWriter {
    /// Connects on a runtime of the connection's own.
    pub(super) async fn connect(options: sqlx::postgres::PgConnectOptions, replica: ReplicaId) -> StoreResult<Self> {
        let connecting = tokio::task::spawn_blocking(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|error| StoreError::Database(sqlx::Error::Io(error)))?;
            let connection = runtime.block_on(sqlx::ConnectOptions::connect(&options))?;
            Ok(Self {
                connection: RefCell::new(connection),
                runtime,
                rewritten: RefCell::default(),
                replica,
                announcements: RefCell::default(),
            })
        });
        connecting.await.map_err(|_| StoreError::Closed)?
    }

    fn sql(&self, sql: &str) -> String {
        self.rewritten.borrow_mut().entry(sql.to_owned()).or_insert_with(|| postgres_placeholders(sql)).clone()
    }

    fn execute(&self, sql: &str, params: &[&dyn Param]) -> StoreResult<u64> {
        let sql = self.sql(sql);
        let query = bind(sqlx::query(sqlx::AssertSqlSafe(sql)), params);
        let mut connection = self.connection.borrow_mut();
        let done = self.runtime.block_on(query.execute(&mut *connection))?;
        Ok(done.rows_affected())
    }

    fn rows<T>(&self, sql: &str, params: &[&dyn Param], map: impl Fn(&dyn StoredRow) -> T) -> StoreResult<Vec<T>> {
        let sql = self.sql(sql);
        let query = bind(sqlx::query(sqlx::AssertSqlSafe(sql)), params);
        let mut connection = self.connection.borrow_mut();
        let rows = self.runtime.block_on(query.fetch_all(&mut *connection))?;
        Ok(rows.iter().map(|row| map(row)).collect())
    }

    /// Runs statements without parameters or results in one round trip.
    fn execute_script(&self, statements: &[&str]) -> StoreResult<()> {
        let script = statements.join("; ");
        let mut connection = self.connection.borrow_mut();
        self.runtime.block_on(sqlx::raw_sql(sqlx::AssertSqlSafe(script)).execute(&mut *connection))?;
        Ok(())
    }

    /// Commits, with the transaction's announcements as `NOTIFY`s (which
    /// Postgres delivers at the commit, never before), in one round trip.
    fn commit(&self) -> StoreResult<()> {
        let announcements = std::mem::take(&mut *self.announcements.borrow_mut());
        let mut statements: Vec<String> = match self.replica.get() {
            Some(replica) => announcements.iter().map(|announcement| announcement.notify_sql(replica)).collect(),
            None => Vec::new(),
        };
        statements.push("COMMIT".to_owned());
        let statements: Vec<&str> = statements.iter().map(String::as_str).collect();
        self.execute_script(&statements)
    }

    /// Closes the connection (tells the server goodbye).
    fn close(self) {
        let Self { connection, runtime, .. } = self;
        if let Err(error) = runtime.block_on(sqlx::Connection::close(connection.into_inner())) {
            tracing::warn!(%error, "closing the Postgres write connection failed");
        }
    }
}

impl WriteConnection {
    /// The engine it runs on.
    pub(crate) fn engine(&self) -> Engine {
        match self {
            Self::Sqlite(_) => Engine::Sqlite,
            Self::Postgres(_) => Engine::Postgres,
        }
    }

    /// Runs `sql`; returns how many rows it changed.
    pub(crate) fn execute(&self, sql: &str, params: &[&dyn Param]) -> StoreResult<u64> {
        match self {
            Self::Sqlite(connection) => {
                let mut statement = connection.prepare_cached(sql)?;
                Ok(statement.execute(rusqlite::params_from_iter(values(params)))? as u64)
            }
            Self::Postgres(connection) => connection.execute(sql, params),
        }
    }

    /// Runs `statements` (without parameters or results: transaction
    /// control) in order; on Postgres in one round trip.
    pub(crate) fn execute_all(&self, statements: &[&str]) -> StoreResult<()> {
        match self {
            Self::Sqlite(_) => statements.iter().try_for_each(|sql| self.execute(sql, &[]).map(drop)),
            Self::Postgres(connection) => connection.execute_script(statements),
        }
    }

    /// Commits the transaction in progress (on Postgres with its announcements).
    pub(crate) fn commit(&self) -> StoreResult<()> {
        match self {
            Self::Sqlite(_) => self.execute("COMMIT", &[]).map(drop),
            Self::Postgres(connection) => connection.commit(),
        }
    }

    /// Tells the other replicas of a change when this transaction commits
    /// (nothing on SQLite, which has no other replicas).
    pub(crate) fn announce(&self, announcement: Announcement) {
        if let Self::Postgres(connection) = self {
            connection.announcements.borrow_mut().insert(announcement);
        }
    }

    /// Drops the announcements of a transaction that is rolled back.
    pub(crate) fn forget_announcements(&self) {
        if let Self::Postgres(connection) = self {
            connection.announcements.borrow_mut().clear();
        }
    }

    /// This gorpd's replica id, once it has joined the replicas (Postgres only).
    pub(crate) fn replica(&self) -> Option<&str> {
        match self {
            Self::Sqlite(_) => None,
            Self::Postgres(connection) => connection.replica.get().map(String::as_str),
        }
    }

    /// Every row `sql` returns, through `map`.
    pub(crate) fn query_rows<T>(
        &self,
        sql: &str,
        params: &[&dyn Param],
        map: impl Fn(&dyn StoredRow) -> T,
    ) -> StoreResult<Vec<T>> {
        match self {
            Self::Sqlite(connection) => {
                let mut statement = connection.prepare_cached(sql)?;
                let rows = statement.query_map(rusqlite::params_from_iter(values(params)), |row| Ok(map(row)))?;
                Ok(rows.collect::<rusqlite::Result<Vec<T>>>()?)
            }
            Self::Postgres(connection) => connection.rows(sql, params, map),
        }
    }

    /// The first row `sql` returns, through `map` (`NotFound` when there is none).
    pub(crate) fn query_one<T>(
        &self,
        sql: &str,
        params: &[&dyn Param],
        map: impl Fn(&dyn StoredRow) -> T,
    ) -> StoreResult<T> {
        self.query_rows(sql, params, map)?.into_iter().next().ok_or(StoreError::NotFound)
    }

    /// Runs the `INSERT` `sql` and returns the new row's `id_column`
    /// (`None` when an `ON CONFLICT DO NOTHING` skipped it).
    pub(crate) fn insert_returning_id(
        &self,
        sql: &str,
        params: &[&dyn Param],
        id_column: &str,
    ) -> StoreResult<Option<i64>> {
        match self {
            // No RETURNING: SQLite would collect each row in a temporary
            // table; the change count and the last rowid say the same.
            Self::Sqlite(connection) => {
                let inserted = self.execute(sql, params)?;
                Ok((inserted == 1).then(|| connection.last_insert_rowid()))
            }
            Self::Postgres(connection) => {
                let returning = format!("{sql} RETURNING {id_column}");
                Ok(connection.rows(&returning, params, |row| row.integer(id_column))?.into_iter().next())
            }
        }
    }

    /// Closes the connection.
    pub(super) fn close(self) {
        match self {
            Self::Sqlite(connection) => {
                // The last connection to close is a reader, which cannot
                // checkpoint: without this, gorp.db alone would miss what its
                // WAL holds (for a copy of the file after gorpd stopped).
                if let Err(error) = connection.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())) {
                    tracing::warn!(%error, "the last checkpoint before closing failed; the WAL keeps the data");
                }
                if let Err((_, error)) = connection.close() {
                    tracing::warn!(%error, "closing the write connection failed");
                }
            }
            Self::Postgres(connection) => connection.close(),
        }
    }
}

fn values<'a>(params: &'a [&'a dyn Param]) -> impl Iterator<Item = Value<'a>> {
    params.iter().map(|param| param.value())
}
