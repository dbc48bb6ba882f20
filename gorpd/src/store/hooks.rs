//! Webhooks: one per session with its secret, and the calls they accepted.
//! Accepting a call is one write: the message, queued for the session, and
//! the call's record commit together; the call's answer is linked to it by a
//! trigger (migration 0007) in the answer's own transaction.

use super::inbound::insert_pending;
use super::sql::params;
use super::{NewInbound, Store, StoreError, StoreResult, StoredRow, now_text, parse_time};
use crate::domain::{Inbound, ResponseKind};
use chrono::{DateTime, Utc};

/// The platform id of webhook messages (the channel id is the session).
pub const HOOK_PLATFORM: &str = "webhook";

/// A stored webhook (without its secret).
#[derive(Debug, Clone, PartialEq)]
pub struct HookRow {
    /// Its session.
    pub session: String,
    /// Template for JSON bodies.
    pub template: Option<String>,
    /// Calls accepted per minute.
    pub per_minute: u32,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When its secret was last replaced.
    pub rotated_at: Option<DateTime<Utc>>,
}

/// Where a webhook call stands.
#[derive(Debug, Clone, PartialEq)]
pub struct HookCall {
    /// The call's id (its message's id).
    pub id: i64,
    /// The message's handling state (queued, running, done, interrupted, dropped).
    pub state: String,
    /// The answer, once committed: its kind and text.
    pub answer: Option<(ResponseKind, String)>,
}

fn hook_from_row(row: &dyn StoredRow) -> HookRow {
    HookRow {
        session: row.text("session_name"),
        template: row.optional_text("template"),
        per_minute: row.integer("per_minute") as u32,
        created_at: parse_time(&row.text("created_at")),
        rotated_at: row.optional_text("rotated_at").as_deref().map(parse_time),
    }
}

impl Store {
    /// Stores a session's webhook; `Conflict` if it has one, `NotFound` if the session does not exist.
    pub async fn create_hook(
        &self,
        session: &str,
        secret: &str,
        template: Option<String>,
        per_minute: u32,
    ) -> StoreResult<HookRow> {
        let (session, secret) = (session.to_owned(), secret.to_owned());
        self.write(move |connection| {
            connection.query_one(
                "INSERT INTO hooks (session_name, secret, template, per_minute, created_at)
                 SELECT ?1, ?2, ?3, ?4, ?5 WHERE EXISTS (SELECT 1 FROM sessions WHERE name = ?1) RETURNING *",
                params![session, secret, template, per_minute, now_text()],
                hook_from_row,
            )
        })
        .await
    }

    /// A session's webhook with its secret; `NotFound` when it has none.
    pub async fn hook(&self, session: &str) -> StoreResult<(HookRow, String)> {
        self.reads
            .one("SELECT * FROM hooks WHERE session_name = ?", params![session], |row| {
                (hook_from_row(row), row.text("secret"))
            })
            .await
    }

    /// Every webhook, by session.
    pub async fn hooks(&self) -> StoreResult<Vec<HookRow>> {
        self.reads.rows("SELECT * FROM hooks ORDER BY session_name", &[], hook_from_row).await
    }

    /// Replaces a webhook's secret; `NotFound` when the session has none.
    pub async fn rotate_hook(&self, session: &str, secret: &str) -> StoreResult<HookRow> {
        let (session, secret) = (session.to_owned(), secret.to_owned());
        self.write(move |connection| {
            connection.query_one(
                "UPDATE hooks SET secret = ?, rotated_at = ? WHERE session_name = ? RETURNING *",
                params![secret, now_text(), session],
                hook_from_row,
            )
        })
        .await
    }

    /// Deletes a session's webhook; `NotFound` when it has none.
    pub async fn delete_hook(&self, session: &str) -> StoreResult<()> {
        let session = session.to_owned();
        self.write(move |connection| {
            let deleted = connection.execute("DELETE FROM hooks WHERE session_name = ?", params![session])?;
            if deleted == 0 {
                return Err(StoreError::NotFound);
            }
            Ok(())
        })
        .await
    }

    /// Accepts a webhook call: its message queued for `session` and the call
    /// recorded, in one write; `None` when `delivery` was accepted before (a replay).
    pub async fn accept_hook_call(
        &self,
        session: &str,
        delivery: &str,
        sender: &str,
        text: &str,
    ) -> StoreResult<Option<Inbound>> {
        let new = NewInbound {
            channel: crate::domain::ChannelRef::new(HOOK_PLATFORM, session),
            message_id: Some(delivery.to_owned()),
            sender: sender.to_owned(),
            text: text.to_owned(),
            attachments: Vec::new(),
            trace_context: gorp_telemetry::current_traceparent(),
        };
        let session = session.to_owned();
        self.write(move |connection| {
            let rows = [(new, Some(session.clone()))];
            let Some(inbound) = insert_pending(connection, &rows, &now_text())?.pop().flatten() else {
                return Ok(None);
            };
            connection.execute(
                "INSERT INTO hook_calls (inbound_id, session_name) VALUES (?, ?)",
                params![inbound.id, session],
            )?;
            Ok(Some(inbound))
        })
        .await
    }

    /// The id of the call that delivered `delivery` to `session`'s webhook.
    pub async fn hook_call_id(&self, session: &str, delivery: &str) -> StoreResult<i64> {
        self.reads
            .integer(
                "SELECT id FROM messages WHERE platform_id = ? AND channel_id = ? AND platform_message_id = ?",
                params![HOOK_PLATFORM, session, delivery],
                "id",
            )
            .await
    }

    /// A call to `session`'s webhook; `NotFound` when it has no call `id`.
    pub async fn hook_call(&self, session: &str, id: i64) -> StoreResult<HookCall> {
        self.reads
            .one(
                "SELECT i.state, r.kind, a.text FROM hook_calls c JOIN messages i ON i.id = c.inbound_id
                 LEFT JOIN responses r ON r.seq = c.response_seq LEFT JOIN messages a ON a.id = r.message_id
                 WHERE c.inbound_id = ? AND c.session_name = ?",
                params![id, session],
                |row| HookCall {
                    id,
                    state: row.text("state"),
                    answer: row.optional_text("kind").map(|kind| (ResponseKind::parse(&kind), row.text("text"))),
                },
            )
            .await
    }
}
