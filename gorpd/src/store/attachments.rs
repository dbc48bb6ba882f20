//! Which message carries which stored file (`attachments`, migration 0010).
//!
//! Rows are written in the same write as the message that carries them (a
//! user's message in the intake's insert, a response's text row in its
//! append), so a committed message always has its files, whose bytes
//! `crate::files` made durable before the write was queued. A row goes with
//! its message (ON DELETE CASCADE); the file's bytes go at the next garbage
//! collection once no row names them.

use super::{IN_BOUND_LIST, Store, StoreResult, WriteConnection, json_list};
use crate::domain::Attachment;
use sqlx::Row;
use std::collections::{HashMap, HashSet};

/// Records `attachments` as carried by message `message_id`, in order.
pub(super) fn insert(connection: &WriteConnection, message_id: i64, attachments: &[Attachment]) -> StoreResult<()> {
    let mut insert = connection.prepare_cached(
        "INSERT INTO attachments (message_id, position, name, media_type, size, sha256) VALUES (?, ?, ?, ?, ?, ?)",
    )?;
    for (position, attachment) in attachments.iter().enumerate() {
        insert.execute(rusqlite::params![
            message_id,
            position as i64,
            attachment.name,
            attachment.media_type,
            attachment.size as i64,
            attachment.sha256,
        ])?;
    }
    Ok(())
}

impl Store {
    /// The attachments of each of these messages (only those that have any), in order.
    pub async fn attachments_of(&self, message_ids: &[i64]) -> StoreResult<HashMap<i64, Vec<Attachment>>> {
        let mut by_message: HashMap<i64, Vec<Attachment>> = HashMap::new();
        if message_ids.is_empty() {
            return Ok(by_message);
        }
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT * FROM attachments WHERE message_id {IN_BOUND_LIST} ORDER BY message_id, position"
        ));
        let rows = sqlx::query(sql).bind(json_list(message_ids)).fetch_all(&self.pool).await?;
        for row in &rows {
            by_message.entry(row.get("message_id")).or_default().push(attachment_from_row(row));
        }
        Ok(by_message)
    }

    /// Every file some message names (what garbage collection keeps).
    pub async fn referenced_files(&self) -> StoreResult<HashSet<String>> {
        let names: Vec<String> =
            sqlx::query_scalar("SELECT DISTINCT sha256 FROM attachments").fetch_all(&self.pool).await?;
        Ok(names.into_iter().collect())
    }

    /// Whether a gateway of `platform` may fetch file `sha256`: a message
    /// from that platform, or a response meant for one of its channels, carries it.
    pub async fn platform_sees_file(&self, platform: &str, sha256: &str) -> StoreResult<bool> {
        let seen: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM attachments a JOIN messages m ON m.id = a.message_id
                            WHERE a.sha256 = ?1 AND m.platform_id = ?2)
                 OR EXISTS (SELECT 1 FROM attachments a JOIN responses r ON r.message_id = a.message_id
                            JOIN response_targets t ON t.seq = r.seq
                            WHERE a.sha256 = ?1 AND t.platform_id = ?2)",
        )
        .bind(sha256)
        .bind(platform)
        .fetch_one(&self.pool)
        .await?;
        Ok(seen)
    }

    /// Whether any message carries file `sha256` under `name` (the web chat's download links).
    pub async fn file_named(&self, sha256: &str, name: &str) -> StoreResult<Option<Attachment>> {
        let row = sqlx::query("SELECT * FROM attachments WHERE sha256 = ? AND name = ? LIMIT 1")
            .bind(sha256)
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(attachment_from_row))
    }
}

fn attachment_from_row(row: &sqlx::sqlite::SqliteRow) -> Attachment {
    Attachment {
        name: row.get("name"),
        media_type: row.get("media_type"),
        size: row.get::<i64, _>("size") as u64,
        sha256: row.get("sha256"),
    }
}
