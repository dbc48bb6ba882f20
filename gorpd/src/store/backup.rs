//! Backups while gorpd runs, restores into an empty data directory, and the
//! checks that refuse a database gorpd cannot use (not a database, damaged,
//! or written by a newer gorp).
//!
//! A backup is `VACUUM INTO` on a read connection: a consistent snapshot of
//! the last commit, written compactly to a new file, while the writer goes
//! on committing (WAL readers never block it). On Postgres, backups are the
//! server's business (`pg_dump`, base backups): gorpd refuses with that advice.

use super::reads::Readers;
use super::{Store, StoreError, StoreResult};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{ConnectOptions, Connection};
use std::path::{Path, PathBuf};

/// The name of the database file in a data directory.
pub const DATABASE_FILE: &str = "gorp.db";

/// What a restore did.
#[derive(Debug, Clone, PartialEq)]
pub struct Restored {
    /// The database file written.
    pub database: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
    /// Sessions in it.
    pub sessions: u64,
}

/// A backup file in the data directory, removed when dropped.
#[derive(Debug)]
pub struct Snapshot {
    path: PathBuf,
    bytes: u64,
}

impl Snapshot {
    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Its size.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        if let Err(error) = std::fs::remove_file(&self.path) {
            tracing::warn!(%error, path = %self.path.display(), "could not remove a backup snapshot");
        }
    }
}

impl Store {
    /// A consistent copy of the database in a file of its own (to stream to a
    /// client), removed when the snapshot is dropped.
    pub async fn snapshot(&self) -> StoreResult<Snapshot> {
        let path = self.directory.join(format!("backup-{}.db.partial", uuid::Uuid::new_v4()));
        let bytes = self.backup_into(&path).await.inspect_err(|_| {
            let _ = std::fs::remove_file(&path);
        })?;
        Ok(Snapshot { path, bytes })
    }

    /// Writes a consistent copy of the database to `target` (which must not exist).
    pub async fn backup_into(&self, target: &Path) -> StoreResult<u64> {
        let target_text =
            target.to_str().ok_or_else(|| StoreError::Backup("the backup path is not UTF-8".to_owned()))?;
        let Readers::Sqlite(pool) = &self.reads else {
            return Err(StoreError::Unsupported(
                "the store is Postgres: back it up with pg_dump (or the server's base backups), not through gorpd",
            ));
        };
        sqlx::query("VACUUM INTO ?").bind(target_text).execute(pool).await?;
        let bytes =
            std::fs::metadata(target).map_err(|e| StoreError::Backup(format!("{}: {e}", target.display())))?.len();
        Ok(bytes)
    }
}

/// The highest schema version this gorp knows.
pub(super) fn known_schema_version() -> i64 {
    sqlx::migrate!("../migrations/sqlite").iter().map(|m| m.version).max().unwrap_or(0)
}

/// Refuses a database written by a newer gorp (its schema version is beyond
/// what this build knows), before any migration touches it.
pub(super) async fn check_schema_version(connection: &mut SqliteConnection) -> StoreResult<()> {
    let has_table: Option<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'")
            .fetch_optional(&mut *connection)
            .await?;
    if has_table.is_none() {
        return Ok(());
    }
    let found: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success = 1")
        .fetch_one(&mut *connection)
        .await?;
    let known = known_schema_version();
    match found {
        Some(found) if found > known => Err(StoreError::Newer { found, known }),
        _ => Ok(()),
    }
}

/// Opens `file` read-only and checks that it is an intact gorp database this
/// build can use; returns how many sessions it holds.
pub async fn check_database_file(file: &Path) -> StoreResult<u64> {
    let options = SqliteConnectOptions::new().filename(file).read_only(true);
    let mut connection = options.connect().await.map_err(|e| not_a_database(file, e))?;
    let integrity: String = sqlx::query_scalar("PRAGMA integrity_check(1)")
        .fetch_one(&mut connection)
        .await
        .map_err(|e| not_a_database(file, e))?;
    if integrity != "ok" {
        return Err(StoreError::Damaged(format!("{}: {integrity}", file.display())));
    }
    check_schema_version(&mut connection).await?;
    let sessions: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sessions")
        .fetch_one(&mut connection)
        .await
        .map_err(|_| StoreError::NotADatabase(format!("{} has no gorp sessions table", file.display())))?;
    connection.close().await?;
    Ok(sessions as u64)
}

fn not_a_database(file: &Path, error: sqlx::Error) -> StoreError {
    StoreError::NotADatabase(format!("{}: {error}", file.display()))
}

/// Restores the backup `file` into `data_dir`, which must not hold a database
/// yet: checks the backup, copies it next to its final name, syncs it to
/// disk and renames it into place, so a crash leaves either nothing or the
/// whole database.
pub async fn restore(file: &Path, data_dir: &Path) -> StoreResult<Restored> {
    let io = |what: &str, error: std::io::Error| StoreError::Backup(format!("{what}: {error}"));
    let database = data_dir.join(DATABASE_FILE);
    if database.exists() {
        return Err(StoreError::Backup(format!(
            "{} exists; restore into an empty data directory (move the old one away first)",
            database.display()
        )));
    }
    let sessions = check_database_file(file).await?;
    std::fs::create_dir_all(data_dir).map_err(|e| io(&data_dir.display().to_string(), e))?;
    let partial = data_dir.join(format!("{DATABASE_FILE}.restoring"));
    std::fs::copy(file, &partial).map_err(|e| io(&partial.display().to_string(), e))?;
    let copied = std::fs::File::open(&partial).map_err(|e| io(&partial.display().to_string(), e))?;
    copied.sync_all().map_err(|e| io(&partial.display().to_string(), e))?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&partial, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| io(&partial.display().to_string(), e))?;
    }
    std::fs::rename(&partial, &database).map_err(|e| io(&database.display().to_string(), e))?;
    if let Ok(directory) = std::fs::File::open(data_dir) {
        let _ = directory.sync_all();
    }
    let bytes = std::fs::metadata(&database).map_err(|e| io(&database.display().to_string(), e))?.len();
    Ok(Restored { database, bytes, sessions })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ChannelRef;

    #[tokio::test]
    async fn a_backup_restores_into_an_empty_directory_and_nowhere_else() {
        let source = tempfile::tempdir().unwrap();
        let store = Store::open(source.path()).await.unwrap();
        store.create_session("kept", "/tmp/kept", "echo").await.unwrap();
        store.bind(&ChannelRef::new("web", "1"), "kept").await.unwrap();
        let backup = source.path().join("backup.db");
        assert!(store.backup_into(&backup).await.unwrap() > 0);
        store.close().await;

        let target = tempfile::tempdir().unwrap();
        let restored = restore(&backup, target.path()).await.unwrap();
        assert_eq!(restored.sessions, 1);
        let again = restore(&backup, target.path()).await.unwrap_err();
        assert!(again.to_string().contains("restore into an empty data directory"), "{again}");
        let store = Store::open(target.path()).await.unwrap();
        assert_eq!(store.session("kept").await.unwrap().workspace_dir, "/tmp/kept");
        assert_eq!(store.bindings().await.unwrap().len(), 1);
        store.close().await;

        let junk = source.path().join("junk.db");
        std::fs::write(&junk, b"this is not a database at all, just some bytes padding it to a page").unwrap();
        let refused = restore(&junk, tempfile::tempdir().unwrap().path()).await.unwrap_err();
        assert!(matches!(refused, StoreError::NotADatabase(_)), "{refused}");
    }

    #[tokio::test]
    async fn a_database_from_a_newer_gorp_is_refused_before_it_is_touched() {
        let dir = tempfile::tempdir().unwrap();
        Store::open(dir.path()).await.unwrap().close().await;
        let path = dir.path().join(DATABASE_FILE);
        let mut connection = SqliteConnectOptions::new().filename(&path).connect().await.unwrap();
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
             VALUES (9999, 'from the future', 1, x'00', 0)",
        )
        .execute(&mut connection)
        .await
        .unwrap();
        connection.close().await.unwrap();
        let refused = Store::open(dir.path()).await.unwrap_err();
        assert!(matches!(refused, StoreError::Newer { found: 9999, .. }), "{refused}");
        assert!(refused.to_string().contains("newer gorp"), "{refused}");
    }
}

/// How big the database is, for `/metrics` and the admin panel.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DatabaseSize {
    /// The database file's size (pages × page size), not counting the WAL.
    pub bytes: u64,
    /// Of that, free pages waiting for reuse.
    pub free_bytes: u64,
    /// Rows per table, for the tables that grow with traffic.
    pub rows: Vec<(&'static str, u64)>,
}

/// Tables that grow with traffic.
const GROWING_TABLES: [&str; 5] = ["messages", "responses", "response_targets", "schedule_runs", "hook_calls"];

impl Store {
    /// The database's size and the rows of its growing tables.
    pub async fn database_size(&self) -> StoreResult<DatabaseSize> {
        let pool = match &self.reads {
            Readers::Sqlite(pool) => pool,
            Readers::Postgres(_) => return self.postgres_database_size().await,
        };
        let mut connection = pool.acquire().await?;
        let page_size: i64 = sqlx::query_scalar("PRAGMA page_size").fetch_one(&mut *connection).await?;
        let pages: i64 = sqlx::query_scalar("PRAGMA page_count").fetch_one(&mut *connection).await?;
        let free: i64 = sqlx::query_scalar("PRAGMA freelist_count").fetch_one(&mut *connection).await?;
        drop(connection);
        let rows = self.growing_table_rows().await?;
        Ok(DatabaseSize { bytes: (pages * page_size) as u64, free_bytes: (free * page_size) as u64, rows })
    }

    /// The Postgres database's size as the server reports it (free space
    /// inside it is autovacuum's business and not counted).
    async fn postgres_database_size(&self) -> StoreResult<DatabaseSize> {
        let bytes = self.reads.integer("SELECT pg_database_size(current_database()) AS bytes", &[], "bytes").await?;
        let rows = self.growing_table_rows().await?;
        Ok(DatabaseSize { bytes: bytes as u64, free_bytes: 0, rows })
    }

    async fn growing_table_rows(&self) -> StoreResult<Vec<(&'static str, u64)>> {
        let mut rows = Vec::with_capacity(GROWING_TABLES.len());
        for table in GROWING_TABLES {
            // A fixed table name, not input.
            let count = self.reads.integer(&format!("SELECT COUNT(*) AS n FROM {table}"), &[], "n").await?;
            rows.push((table, count as u64));
        }
        Ok(rows)
    }

    /// Bytes free for gorpd on the file system of the data directory.
    pub fn disk_free_bytes(&self) -> std::io::Result<u64> {
        let stats = rustix::fs::statvfs(self.directory.as_path())?;
        Ok(stats.f_bavail.saturating_mul(stats.f_frsize))
    }
}
