//! Sessions and their channel bindings.

use super::{Store, StoreError, StoreResult, now_text, parse_time};
use crate::bus::ChannelRef;
use chrono::{DateTime, Utc};
use sqlx::Row;

/// A stored session.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionRow {
    /// Unique name.
    pub name: String,
    /// Absolute workspace path.
    pub workspace_dir: String,
    /// Agent backend name.
    pub backend: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

fn session_from_row(row: &sqlx::sqlite::SqliteRow) -> SessionRow {
    SessionRow {
        name: row.get("name"),
        workspace_dir: row.get("workspace_dir"),
        backend: row.get("backend"),
        created_at: parse_time(row.get::<&str, _>("created_at")),
    }
}

impl Store {
    /// Inserts a session; `Conflict` when the name exists.
    pub async fn create_session(&self, name: &str, workspace_dir: &str, backend: &str) -> StoreResult<SessionRow> {
        sqlx::query("INSERT INTO sessions (name, workspace_dir, backend, created_at) VALUES (?, ?, ?, ?)")
            .bind(name)
            .bind(workspace_dir)
            .bind(backend)
            .bind(now_text())
            .execute(&self.pool)
            .await?;
        self.session(name).await
    }

    /// One session; `NotFound` when unknown.
    pub async fn session(&self, name: &str) -> StoreResult<SessionRow> {
        let row = sqlx::query("SELECT * FROM sessions WHERE name = ?").bind(name).fetch_one(&self.pool).await?;
        Ok(session_from_row(&row))
    }

    /// Every session, by name.
    pub async fn sessions(&self) -> StoreResult<Vec<SessionRow>> {
        let rows = sqlx::query("SELECT * FROM sessions ORDER BY name").fetch_all(&self.pool).await?;
        Ok(rows.iter().map(session_from_row).collect())
    }

    /// Deletes a session with its bindings and history, and drops its unhandled
    /// messages, in one transaction. Returns the channels that were bound.
    pub async fn delete_session(&self, name: &str) -> StoreResult<Vec<ChannelRef>> {
        let mut tx = self.pool.begin().await?;
        let bound = sqlx::query("SELECT platform_id, channel_id FROM channel_bindings WHERE session_name = ? ORDER BY platform_id, channel_id")
            .bind(name)
            .fetch_all(&mut *tx)
            .await?;
        sqlx::query("UPDATE inbound SET state = 'dropped' WHERE session_name = ? AND state IN ('queued', 'running')")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM messages WHERE session_name = ?").bind(name).execute(&mut *tx).await?;
        let deleted = sqlx::query("DELETE FROM sessions WHERE name = ?").bind(name).execute(&mut *tx).await?;
        if deleted.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        tx.commit().await?;
        Ok(bound.iter().map(|r| ChannelRef::new(r.get::<String, _>(0), r.get::<String, _>(1))).collect())
    }

    /// Binds a channel to an existing session, replacing any earlier binding.
    pub async fn bind(&self, channel: &ChannelRef, session: &str) -> StoreResult<()> {
        let result = sqlx::query(
            "INSERT INTO channel_bindings (platform_id, channel_id, session_name, bound_at) VALUES (?, ?, ?, ?)
             ON CONFLICT (platform_id, channel_id) DO UPDATE SET session_name = excluded.session_name, bound_at = excluded.bound_at",
        )
        .bind(&channel.platform)
        .bind(&channel.channel_id)
        .bind(session)
        .bind(now_text())
        .execute(&self.pool)
        .await;
        match result {
            Err(sqlx::Error::Database(db)) if db.is_foreign_key_violation() => Err(StoreError::NotFound),
            other => other.map(drop).map_err(StoreError::from),
        }
    }

    /// Removes a channel's binding; `NotFound` when it had none.
    pub async fn unbind(&self, channel: &ChannelRef) -> StoreResult<()> {
        let result = sqlx::query("DELETE FROM channel_bindings WHERE platform_id = ? AND channel_id = ?")
            .bind(&channel.platform)
            .bind(&channel.channel_id)
            .execute(&self.pool)
            .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Every binding as (channel, session).
    pub async fn bindings(&self) -> StoreResult<Vec<(ChannelRef, String)>> {
        let rows = sqlx::query("SELECT platform_id, channel_id, session_name FROM channel_bindings")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(|r| (ChannelRef::new(r.get::<String, _>(0), r.get::<String, _>(1)), r.get(2))).collect())
    }
}
