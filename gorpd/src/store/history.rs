//! A session's conversation history (`!read`, the web history), and pruning it.

use super::{SqliteQuery, Store, StoreResult, parse_time};
use crate::domain::ChannelRef;
use chrono::{DateTime, Utc};
use sqlx::Row;

/// Who a history entry is from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A person (or tell/broadcast).
    User,
    /// The agent's complete answer.
    Assistant,
    /// A failed turn.
    Error,
    /// A notice from gorpd.
    Notice,
}

impl Role {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Assistant => "assistant",
            Self::Error => "error",
            Self::Notice => "notice",
        }
    }
}

/// A history entry to write.
#[derive(Debug, Clone)]
pub struct NewHistory {
    /// Session it belongs to.
    pub session: String,
    /// Who it is from.
    pub role: Role,
    /// Author name.
    pub author: String,
    /// Text.
    pub text: String,
    /// Channel an inbound message came from.
    pub channel: Option<ChannelRef>,
}

impl NewHistory {
    /// An inbound message from a person.
    pub fn user(session: &str, author: &str, text: &str, channel: Option<&ChannelRef>) -> Self {
        Self {
            session: session.to_owned(),
            role: Role::User,
            author: author.to_owned(),
            text: text.to_owned(),
            channel: channel.cloned(),
        }
    }

    /// A final response of the session itself.
    pub fn from_session(session: &str, role: Role, text: &str) -> Self {
        Self { session: session.to_owned(), role, author: session.to_owned(), text: text.to_owned(), channel: None }
    }
}

/// A stored history entry.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryRow {
    /// Store id, increasing with time.
    pub id: i64,
    /// "user", "assistant", "error" or "notice".
    pub role: String,
    /// Author.
    pub author: String,
    /// Text.
    pub text: String,
    /// Channel of an inbound message.
    pub channel: Option<ChannelRef>,
    /// When it was stored.
    pub created_at: DateTime<Utc>,
}

/// The columns of a history entry, bound in this order by [`bind_history`].
pub(super) const HISTORY_COLUMNS: &str =
    "messages (session_name, role, author, text, platform_id, channel_id, created_at)";

/// Binds a history entry's seven values, in [`HISTORY_COLUMNS`] order.
pub(super) fn bind_history<'q>(query: SqliteQuery<'q>, entry: &NewHistory, created_at: &str) -> SqliteQuery<'q> {
    query
        .bind(entry.session.clone())
        .bind(entry.role.as_str())
        .bind(entry.author.clone())
        .bind(entry.text.clone())
        .bind(entry.channel.as_ref().map(|c| c.platform.clone()))
        .bind(entry.channel.as_ref().map(|c| c.channel_id.clone()))
        .bind(created_at.to_owned())
}

impl Store {
    /// The last `count` history entries of a session, oldest first.
    pub async fn last_messages(&self, session: &str, count: u32) -> StoreResult<Vec<HistoryRow>> {
        let rows = sqlx::query(
            "SELECT * FROM (SELECT * FROM messages WHERE session_name = ? ORDER BY id DESC LIMIT ?) ORDER BY id",
        )
        .bind(session)
        .bind(count)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| {
                let platform: Option<String> = r.get("platform_id");
                let channel_id: Option<String> = r.get("channel_id");
                HistoryRow {
                    id: r.get("id"),
                    role: r.get("role"),
                    author: r.get("author"),
                    text: r.get("text"),
                    channel: platform.zip(channel_id).map(|(p, c)| ChannelRef::new(p, c)),
                    created_at: parse_time(r.get::<&str, _>("created_at")),
                }
            })
            .collect())
    }

    /// Number of history entries of a session.
    pub async fn message_count(&self, session: &str) -> StoreResult<u64> {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM messages WHERE session_name = ?")
            .bind(session)
            .fetch_one(&self.pool)
            .await?;
        Ok(count as u64)
    }
}

/// What pruning a session's history keeps.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PruneRule {
    /// Keep at most the newest this many entries.
    pub keep_last: Option<u32>,
    /// Remove entries older than this.
    pub before: Option<DateTime<Utc>>,
}

/// Entries removed per write, so pruning a long history never holds the writer for long.
const PRUNE_BATCH: u32 = 1000;

impl Store {
    /// Removes the history entries of `session` that `rule` does not keep, in
    /// batches; returns how many were removed.
    pub async fn prune_history(&self, session: &str, rule: PruneRule) -> StoreResult<u64> {
        // Entries up to this id go: the newest `keep_last` are above it.
        let cutoff: Option<i64> = match rule.keep_last {
            Some(keep) => {
                sqlx::query_scalar("SELECT id FROM messages WHERE session_name = ? ORDER BY id DESC LIMIT 1 OFFSET ?")
                    .bind(session)
                    .bind(keep)
                    .fetch_optional(&self.pool)
                    .await?
            }
            None => None,
        };
        let before = rule.before.map(super::time_text);
        if cutoff.is_none() && before.is_none() {
            return Ok(0);
        }
        let mut removed = 0;
        loop {
            let (session, before) = (session.to_owned(), before.clone());
            let batch = self
                .write(move |connection| {
                    Box::pin(async move {
                        let deleted = sqlx::query(
                            "DELETE FROM messages WHERE id IN (
                                 SELECT id FROM messages WHERE session_name = ?
                                 AND ((? IS NOT NULL AND id <= ?) OR (? IS NOT NULL AND created_at < ?))
                                 ORDER BY id LIMIT ?)",
                        )
                        .bind(&session)
                        .bind(cutoff)
                        .bind(cutoff)
                        .bind(&before)
                        .bind(&before)
                        .bind(PRUNE_BATCH)
                        .execute(&mut *connection)
                        .await?;
                        Ok(deleted.rows_affected())
                    })
                })
                .await?;
            removed += batch;
            if batch < u64::from(PRUNE_BATCH) {
                return Ok(removed);
            }
        }
    }
}
