//! Moving a SQLite store to Postgres (`gorpd --store-url … --migrate-from
//! gorp.db`): every row of every table, ids and `seq`s kept, in one
//! Postgres transaction, so a failed copy leaves the target as it was.
//!
//! The source is first checked like a restore, copied (`VACUUM INTO`, so
//! what its WAL holds comes along) and the copy's schema brought up to date
//! in a working directory, so the file given is never changed. The target must hold no gorp data yet. Afterwards each id
//! sequence continues after the largest id the source ever gave (SQLite's
//! `sqlite_sequence`), so no `seq` a gateway has seen is handed out again.

use super::{Store, StoreError, StoreResult, backup, sql};
use sqlx::Connection;
use std::path::Path;
use std::str::FromStr;

/// Tables in an order that satisfies their foreign keys. `responses` comes
/// before `schedule_runs` and `hook_calls`, so Postgres's tracking trigger
/// (which fills those from a new response) finds nothing to change and the
/// copied rows keep the source's values.
const TABLES: [&str; 13] = [
    "sessions",
    "channel_bindings",
    "messages",
    "responses",
    "response_targets",
    "gateways",
    "tokens",
    "web_logins",
    "schedules",
    "schedule_runs",
    "hooks",
    "hook_calls",
    "attachments",
];

/// Tables whose id Postgres generates: (table, id column).
const IDENTITIES: [(&str, &str); 5] =
    [("messages", "id"), ("responses", "seq"), ("tokens", "id"), ("schedules", "id"), ("schedule_runs", "id")];

/// What a migration copied: rows per table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Migrated {
    /// (table, rows), in copy order.
    pub rows: Vec<(&'static str, u64)>,
}

impl Migrated {
    /// Rows copied in all.
    pub fn total(&self) -> u64 {
        self.rows.iter().map(|(_, rows)| rows).sum()
    }
}

/// A working copy of the source in the data directory, removed when dropped.
struct Scratch(std::path::PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Err(error) = std::fs::remove_dir_all(&self.0) {
            tracing::warn!(%error, path = %self.0.display(), "could not remove the migration's working copy");
        }
    }
}

/// Copies the SQLite database `file` (a `gorp.db` gorpd is not running on,
/// or a backup) into the empty Postgres store at `url`, working on a copy
/// in `data_dir`.
pub async fn sqlite_into_postgres(file: &Path, url: &str, data_dir: &Path) -> StoreResult<Migrated> {
    let scratch = Scratch(data_dir.join(format!("migrating-{}", uuid::Uuid::new_v4())));
    copy_sqlite(file, &scratch.0).await?;
    // Brings the copy's schema up to date (the file given stays as it was).
    Store::open(&scratch.0).await?.close().await;
    // Creates the database if needed and applies Postgres's migrations.
    Store::open_postgres(url, data_dir).await?.close().await;
    let source = rusqlite::Connection::open_with_flags(
        scratch.0.join(backup::DATABASE_FILE),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )?;
    let mut target = sqlx::PgConnection::connect_with(&sqlx::postgres::PgConnectOptions::from_str(url)?).await?;
    let mut transaction = target.begin().await?;
    refuse_unless_empty(&mut transaction).await?;
    let mut migrated = Migrated::default();
    for table in TABLES {
        let rows = copy_table(&source, &mut transaction, table).await?;
        migrated.rows.push((table, rows));
    }
    continue_identities(&source, &mut transaction).await?;
    transaction.commit().await?;
    target.close().await?;
    Ok(migrated)
}

/// A consistent copy of the SQLite database `file` (with what its WAL
/// holds) as `gorp.db` in the new directory `into`, once `file` passed the
/// checks a restore makes.
async fn copy_sqlite(file: &Path, into: &Path) -> StoreResult<()> {
    backup::check_database_file(file).await?;
    std::fs::create_dir_all(into).map_err(|error| StoreError::Backup(format!("{}: {error}", into.display())))?;
    let copy = into.join(backup::DATABASE_FILE);
    let copy = copy.to_str().ok_or_else(|| StoreError::Backup("the data directory's path is not UTF-8".to_owned()))?;
    let source = rusqlite::Connection::open_with_flags(file, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    source.execute("VACUUM INTO ?1", [copy])?;
    Ok(())
}

async fn refuse_unless_empty(target: &mut sqlx::PgConnection) -> StoreResult<()> {
    let used: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM sessions) OR EXISTS (SELECT 1 FROM messages)
             OR EXISTS (SELECT 1 FROM responses) OR EXISTS (SELECT 1 FROM tokens)",
    )
    .fetch_one(&mut *target)
    .await?;
    if used {
        return Err(StoreError::Backup(
            "the Postgres database already holds gorp data; migrate into an empty database".to_owned(),
        ));
    }
    Ok(())
}

/// Copies every row of `table`; returns how many.
async fn copy_table(source: &rusqlite::Connection, target: &mut sqlx::PgConnection, table: &str) -> StoreResult<u64> {
    let columns = postgres_columns(target, table).await?;
    let names: Vec<&str> = columns.iter().map(|(name, _)| name.as_str()).collect();
    let select = format!("SELECT {} FROM {table}", names.join(", "));
    let placeholders: Vec<String> = (1..=names.len()).map(|n| format!("${n}")).collect();
    let insert = format!("INSERT INTO {table} ({}) VALUES ({})", names.join(", "), placeholders.join(", "));
    let mut statement = source.prepare(&select)?;
    let mut rows = statement.query([])?;
    let mut copied = 0;
    while let Some(row) = rows.next()? {
        let values = row_values(row, &columns)?;
        let params: Vec<&dyn sql::Param> = values.iter().map(|value| value as &dyn sql::Param).collect();
        sql::bind(sqlx::query(sqlx::AssertSqlSafe(insert.clone())), &params).execute(&mut *target).await?;
        copied += 1;
    }
    Ok(copied)
}

/// The columns of `table` in Postgres, each with whether it holds integers.
async fn postgres_columns(target: &mut sqlx::PgConnection, table: &str) -> StoreResult<Vec<(String, bool)>> {
    let columns: Vec<(String, String)> = sqlx::query_as(
        "SELECT column_name::text, data_type::text FROM information_schema.columns
         WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
    )
    .bind(table)
    .fetch_all(&mut *target)
    .await?;
    Ok(columns.into_iter().map(|(name, kind)| (name, kind == "bigint")).collect())
}

/// One source value, typed as the target column wants it.
enum Copied {
    Integer(Option<i64>),
    Text(Option<String>),
}

impl sql::Param for Copied {
    fn value(&self) -> sql::Value<'_> {
        match self {
            Self::Integer(integer) => sql::Value::Integer(*integer),
            Self::Text(text) => sql::Value::Text(text.as_deref()),
        }
    }
}

fn row_values(row: &rusqlite::Row<'_>, columns: &[(String, bool)]) -> StoreResult<Vec<Copied>> {
    columns
        .iter()
        .enumerate()
        .map(|(index, (_, integer))| {
            Ok(if *integer { Copied::Integer(row.get(index)?) } else { Copied::Text(row.get(index)?) })
        })
        .collect()
}

/// Sets each identity sequence to continue after the largest id the source
/// gave out (or holds, when that is larger).
async fn continue_identities(source: &rusqlite::Connection, target: &mut sqlx::PgConnection) -> StoreResult<()> {
    for (table, column) in IDENTITIES {
        let given: i64 = source.query_row(
            &format!(
                "SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = '{table}'), 0),
                            COALESCE((SELECT MAX({column}) FROM {table}), 0))"
            ),
            [],
            |row| row.get(0),
        )?;
        if given > 0 {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT setval(pg_get_serial_sequence('{table}', '{column}'), $1)"
            )))
            .bind(given)
            .execute(&mut *target)
            .await?;
        }
    }
    Ok(())
}
