//! Which message carries which stored file (`attachments`, migration 0010).
//!
//! Rows are written in the same write as the message that carries them (a
//! user's message in the intake's insert, a response's text row in its
//! append), so a committed message always has its files, whose bytes
//! `crate::files` made durable before the write was queued. A row goes with
//! its message (ON DELETE CASCADE); the file's bytes go at the next garbage
//! collection once no row names them.

use super::sql::{json_list, params};
use super::{Store, StoreResult, StoredRow, WriteConnection};
use crate::domain::Attachment;
use std::collections::{HashMap, HashSet};

/// Records `attachments` as carried by message `message_id`, in order.
pub(super) fn insert(connection: &WriteConnection, message_id: i64, attachments: &[Attachment]) -> StoreResult<()> {
    for (position, attachment) in attachments.iter().enumerate() {
        connection.execute(
            "INSERT INTO attachments (message_id, position, name, media_type, size, sha256) VALUES (?, ?, ?, ?, ?, ?)",
            params![message_id, position, attachment.name, attachment.media_type, attachment.size, attachment.sha256],
        )?;
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
        let sql = format!(
            "SELECT * FROM attachments WHERE message_id {} ORDER BY message_id, position",
            self.engine().in_integer_list()
        );
        let ids = json_list(message_ids);
        let rows =
            self.reads.rows(&sql, params![ids], |row| (row.integer("message_id"), attachment_from_row(row))).await?;
        for (message_id, attachment) in rows {
            by_message.entry(message_id).or_default().push(attachment);
        }
        Ok(by_message)
    }

    /// Every file some message names (what garbage collection keeps).
    pub async fn referenced_files(&self) -> StoreResult<HashSet<String>> {
        let names = self.reads.rows("SELECT DISTINCT sha256 FROM attachments", &[], |row| row.text("sha256")).await?;
        Ok(names.into_iter().collect())
    }

    /// Whether a gateway of `platform` may fetch file `sha256`: a message
    /// from that platform, or a response meant for one of its channels, carries it.
    pub async fn platform_sees_file(&self, platform: &str, sha256: &str) -> StoreResult<bool> {
        let seen = self
            .reads
            .integer(
                "SELECT CASE WHEN EXISTS (SELECT 1 FROM attachments a JOIN messages m ON m.id = a.message_id
                                          WHERE a.sha256 = ?1 AND m.platform_id = ?2)
                              OR EXISTS (SELECT 1 FROM attachments a JOIN responses r ON r.message_id = a.message_id
                                         JOIN response_targets t ON t.seq = r.seq
                                         WHERE a.sha256 = ?1 AND t.platform_id = ?2)
                        THEN 1 ELSE 0 END AS seen",
                params![sha256, platform],
                "seen",
            )
            .await?;
        Ok(seen == 1)
    }

    /// Whether any message carries file `sha256` under `name` (the web chat's download links).
    pub async fn file_named(&self, sha256: &str, name: &str) -> StoreResult<Option<Attachment>> {
        self.reads
            .optional(
                "SELECT * FROM attachments WHERE sha256 = ? AND name = ? LIMIT 1",
                params![sha256, name],
                attachment_from_row,
            )
            .await
    }
}

fn attachment_from_row(row: &dyn StoredRow) -> Attachment {
    Attachment {
        name: row.text("name"),
        media_type: row.text("media_type"),
        size: row.integer("size") as u64,
        sha256: row.text("sha256"),
    }
}
