//! Reads: a pool of connections beside the writer (SQLite's read-only WAL
//! readers, or Postgres connections), with one API for both engines.
//!
//! Like writes, reads take SQL written for both engines (see
//! [`super::sql`]) and map rows through [`StoredRow`].

use super::sql::{Engine, Param, bind, postgres_placeholders};
use super::{StoreError, StoreResult, StoredRow};
use sqlx::{PgPool, SqlitePool};

/// The read pool of either engine.
#[derive(Clone, Debug)]
pub(super) enum Readers {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Readers {
    pub(super) fn engine(&self) -> Engine {
        match self {
            Self::Sqlite(_) => Engine::Sqlite,
            Self::Postgres(_) => Engine::Postgres,
        }
    }

    /// Every row `sql` returns, through `map`.
    pub(super) async fn rows<T>(
        &self,
        sql: &str,
        params: &[&dyn Param],
        map: impl Fn(&dyn StoredRow) -> T,
    ) -> StoreResult<Vec<T>> {
        match self {
            Self::Sqlite(pool) => {
                let query = bind(sqlx::query(sqlx::AssertSqlSafe(sql.to_owned())), params);
                Ok(query.fetch_all(pool).await?.iter().map(|row| map(row)).collect())
            }
            Self::Postgres(pool) => {
                let query = bind(sqlx::query(sqlx::AssertSqlSafe(postgres_placeholders(sql))), params);
                Ok(query.fetch_all(pool).await?.iter().map(|row| map(row)).collect())
            }
        }
    }

    /// The first row `sql` returns, through `map`, if any.
    pub(super) async fn optional<T>(
        &self,
        sql: &str,
        params: &[&dyn Param],
        map: impl Fn(&dyn StoredRow) -> T,
    ) -> StoreResult<Option<T>> {
        Ok(self.rows(sql, params, map).await?.into_iter().next())
    }

    /// The first row `sql` returns, through `map` (`NotFound` when there is none).
    pub(super) async fn one<T>(
        &self,
        sql: &str,
        params: &[&dyn Param],
        map: impl Fn(&dyn StoredRow) -> T,
    ) -> StoreResult<T> {
        self.optional(sql, params, map).await?.ok_or(StoreError::NotFound)
    }

    /// The integer in the first column named `column` of the one row `sql` returns.
    pub(super) async fn integer(&self, sql: &str, params: &[&dyn Param], column: &str) -> StoreResult<i64> {
        self.one(sql, params, |row| row.integer(column)).await
    }

    /// Runs `sql` outside the writer (only for the replicas' own tables); returns how many rows it changed.
    pub(super) async fn execute(&self, sql: &str, params: &[&dyn Param]) -> StoreResult<u64> {
        match self {
            Self::Sqlite(_) => Err(StoreError::Unsupported("only Postgres is written outside the writer")),
            Self::Postgres(pool) => {
                let query = bind(sqlx::query(sqlx::AssertSqlSafe(postgres_placeholders(sql))), params);
                Ok(query.execute(pool).await?.rows_affected())
            }
        }
    }

    /// Runs `script` (statements without parameters) in one round trip (Postgres only).
    pub(super) async fn execute_script(&self, script: String) -> StoreResult<()> {
        match self {
            Self::Sqlite(_) => Err(StoreError::Unsupported("only Postgres is written outside the writer")),
            Self::Postgres(pool) => {
                sqlx::raw_sql(sqlx::AssertSqlSafe(script)).execute(pool).await?;
                Ok(())
            }
        }
    }

    /// A connection of its own for `LISTEN` (Postgres only).
    pub(super) async fn listener(&self) -> StoreResult<sqlx::postgres::PgListener> {
        match self {
            Self::Sqlite(_) => Err(StoreError::Unsupported("replicas need the store on Postgres")),
            Self::Postgres(pool) => Ok(sqlx::postgres::PgListener::connect_with(pool).await?),
        }
    }

    pub(super) async fn close(&self) {
        match self {
            Self::Sqlite(pool) => pool.close().await,
            Self::Postgres(pool) => pool.close().await,
        }
    }
}
