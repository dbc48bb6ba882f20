//! Accepted inbound messages and their handling state (the intake queue).
//!
//! A user's message is one row of the conversation table (`messages`, role
//! `user`) from the moment it is accepted: its text, its de-duplication key
//! and its state. Its turn's start puts it into the session's history.

use super::{Store, StoreResult, now_text};
use crate::domain::{ChannelRef, Inbound};
use sqlx::{Row, SqliteConnection};
use std::collections::HashSet;

/// Where an inbound message is in its handling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InboundState {
    /// Accepted, not yet routed.
    Pending,
    /// Routed to a session, waiting for its turn.
    Queued,
    /// The agent is working on it.
    Running,
    /// Answered (or handled by DISPATCH).
    Done,
    /// gorpd stopped while the agent worked on it.
    Interrupted,
    /// Its session was deleted before it ran.
    Dropped,
}

impl InboundState {
    fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Done => "done",
            Self::Interrupted => "interrupted",
            Self::Dropped => "dropped",
        }
    }
}

/// An inbound message to accept.
#[derive(Debug, Clone)]
pub struct NewInbound {
    /// Where it came from.
    pub channel: ChannelRef,
    /// The platform's message id, the de-duplication key (`None` for tell/broadcast).
    pub message_id: Option<String>,
    /// Author.
    pub sender: String,
    /// Text.
    pub text: String,
}

pub(super) fn inbound_from_row(row: &sqlx::sqlite::SqliteRow) -> Inbound {
    Inbound {
        id: row.get("id"),
        channel: ChannelRef::new(row.get::<String, _>("platform_id"), row.get::<String, _>("channel_id")),
        message_id: row.get("platform_message_id"),
        sender: row.get("author"),
        text: row.get("text"),
    }
}

/// Rows per multi-row statement (8 parameters each, far below SQLite's limit).
const ROWS_PER_INSERT: usize = 256;

impl Store {
    /// Commits an inbound message; `None` when (platform, message id) was accepted before.
    pub async fn accept_inbound(&self, new: &NewInbound) -> StoreResult<Option<Inbound>> {
        let mut results = self.accept_inbound_batch(vec![(new.clone(), None)]).await?;
        Ok(results.pop().flatten())
    }

    /// Commits many inbound messages at once, each `pending`, or already
    /// `queued` for the session given with it; for each, `None` when it was
    /// accepted before (also earlier in the same batch).
    pub async fn accept_inbound_batch(
        &self,
        news: Vec<(NewInbound, Option<String>)>,
    ) -> StoreResult<Vec<Option<Inbound>>> {
        self.write_unisolated(move |connection| {
            Box::pin(async move {
                let received_at = now_text();
                let mut results = Vec::with_capacity(news.len());
                for rows in news.chunks(ROWS_PER_INSERT) {
                    results.extend(insert_pending(connection, rows, &received_at).await?);
                }
                Ok(results)
            })
        })
        .await
    }

    /// Routes accepted messages to sessions: each becomes queued for its session (one statement).
    pub async fn route_to_sessions(&self, routes: Vec<(i64, String)>) -> StoreResult<()> {
        if routes.is_empty() {
            return Ok(());
        }
        self.write_unisolated(move |connection| {
            Box::pin(async move {
                for chunk in routes.chunks(ROWS_PER_INSERT) {
                    let mut sql = String::from(
                        "UPDATE messages SET state = 'queued', session_name = routes.column2 FROM (VALUES ",
                    );
                    push_placeholders(&mut sql, chunk.len(), "(?, ?)");
                    sql.push_str(") AS routes WHERE messages.id = routes.column1");
                    // Only placeholders are spliced in; every value is bound.
                    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
                    for (inbound_id, session) in chunk {
                        query = query.bind(*inbound_id).bind(session.clone());
                    }
                    query.execute(&mut *connection).await?;
                }
                Ok(())
            })
        })
        .await
    }

    /// Queues one copy of a message (tell, broadcast) for each of `sessions`
    /// in one write: after a crash, all of them or none.
    pub async fn queue_for_sessions(&self, new: &NewInbound, sessions: Vec<String>) -> StoreResult<Vec<Inbound>> {
        let new = new.clone();
        self.write_unisolated(move |connection| {
            Box::pin(async move {
                let received_at = now_text();
                let rows: Vec<(NewInbound, Option<String>)> =
                    sessions.into_iter().map(|session| (new.clone(), Some(session))).collect();
                let mut queued = Vec::with_capacity(rows.len());
                for chunk in rows.chunks(ROWS_PER_INSERT) {
                    // Without a platform message id nothing is a duplicate: every row comes back.
                    queued.extend(insert_pending(connection, chunk, &received_at).await?.into_iter().flatten());
                }
                Ok(queued)
            })
        })
        .await
    }

    /// Commands whose effect was committed but whose reply was not (gorpd stopped in between).
    pub async fn applied_commands(&self) -> StoreResult<Vec<Inbound>> {
        let rows = sqlx::query("SELECT * FROM messages WHERE state = 'pending' AND applied = 1 ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(inbound_from_row).collect())
    }

    /// Moves a queued message to `running` and enters it in the session's
    /// history, so the history is in the order the agent saw it; false when it
    /// is no longer queued (its session was deleted).
    pub async fn start_turn(&self, inbound_id: i64) -> StoreResult<bool> {
        self.write_unisolated(move |connection| {
            Box::pin(async move {
                let started = sqlx::query(
                    "UPDATE messages SET state = 'running', history_pos = (
                         SELECT IFNULL(MAX(h.history_pos), 0) + 1 FROM messages h
                         WHERE h.session_name = messages.session_name AND h.history_pos IS NOT NULL)
                     WHERE id = ? AND state = 'queued'",
                )
                .bind(inbound_id)
                .execute(&mut *connection)
                .await?;
                Ok(started.rows_affected() == 1)
            })
        })
        .await
    }

    /// Sets a message's handling state.
    pub async fn set_inbound_state(&self, inbound_id: i64, state: InboundState) -> StoreResult<()> {
        self.write(move |connection| {
            Box::pin(async move {
                sqlx::query("UPDATE messages SET state = ? WHERE id = ?")
                    .bind(state.as_str())
                    .bind(inbound_id)
                    .execute(&mut *connection)
                    .await?;
                Ok(())
            })
        })
        .await
    }

    /// Messages in `state`, oldest first, with the session they were routed
    /// to (pending commands already applied are left out: see [`Store::applied_commands`]).
    pub async fn inbound_in_state(&self, state: InboundState) -> StoreResult<Vec<(Inbound, Option<String>)>> {
        let rows = sqlx::query("SELECT * FROM messages WHERE state = ? AND applied = 0 ORDER BY id")
            .bind(state.as_str())
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(|r| (inbound_from_row(r), r.get("session_name"))).collect())
    }

    /// Forgets finished messages (done, dropped, interrupted) received before
    /// `before`, with their webhook-call records, in batches; returns how many.
    /// Their platform message ids stop counting as duplicates; a message in its
    /// session's history stays there as history.
    pub async fn forget_finished_inbound(&self, before: chrono::DateTime<chrono::Utc>) -> StoreResult<u64> {
        const BATCH: u32 = 1000;
        let before = super::time_text(before);
        super::in_batches(BATCH, || {
            let before = before.clone();
            self.write(move |connection| {
                Box::pin(async move {
                    let ids: Vec<i64> = sqlx::query_scalar(
                        "SELECT id FROM messages WHERE state IN ('done', 'dropped', 'interrupted')
                         AND created_at < ? ORDER BY id LIMIT ?",
                    )
                    .bind(&before)
                    .bind(BATCH)
                    .fetch_all(&mut *connection)
                    .await?;
                    let ids_json = super::json_list(&ids);
                    let in_batch = super::IN_BOUND_LIST;
                    for sql in [
                        format!("DELETE FROM hook_calls WHERE inbound_id {in_batch}"),
                        // Outside the history nothing is left to keep; in it, the entry stays.
                        format!("DELETE FROM messages WHERE history_pos IS NULL AND id {in_batch}"),
                        format!("UPDATE messages SET state = NULL, platform_message_id = NULL WHERE id {in_batch}"),
                    ] {
                        sqlx::query(sqlx::AssertSqlSafe(sql)).bind(&ids_json).execute(&mut *connection).await?;
                    }
                    Ok(ids.len() as u64)
                })
            })
        })
        .await
    }

    /// How many accepted messages are stored (retention forgets old finished ones).
    pub async fn inbound_count(&self) -> StoreResult<u64> {
        let count: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM messages WHERE state IS NOT NULL").fetch_one(&self.pool).await?;
        Ok(count as u64)
    }
}

/// Inserts `rows` (pending, or queued for the given session) with one
/// multi-row statement; for each, `None` when its (platform, message id)
/// exists already or earlier in `rows`.
pub(super) async fn insert_pending(
    connection: &mut SqliteConnection,
    rows: &[(NewInbound, Option<String>)],
    received_at: &str,
) -> StoreResult<Vec<Option<Inbound>>> {
    let mut sql = String::from(
        "INSERT INTO messages (role, platform_id, channel_id, platform_message_id, author, text, session_name, state, created_at) VALUES ",
    );
    push_placeholders(&mut sql, rows.len(), "('user', ?, ?, ?, ?, ?, ?, ?, ?)");
    sql.push_str(
        " ON CONFLICT (platform_id, platform_message_id) WHERE platform_message_id IS NOT NULL DO NOTHING
         RETURNING id, platform_id, platform_message_id",
    );
    // Only placeholders are spliced in; every value is bound.
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for (new, session) in rows {
        let state = if session.is_some() { InboundState::Queued } else { InboundState::Pending };
        query = query
            .bind(&new.channel.platform)
            .bind(&new.channel.channel_id)
            .bind(&new.message_id)
            .bind(&new.sender)
            .bind(&new.text)
            .bind(session)
            .bind(state.as_str())
            .bind(received_at);
    }
    let mut inserted: Vec<(i64, String, Option<String>)> =
        query.fetch_all(&mut *connection).await?.iter().map(|row| (row.get(0), row.get(1), row.get(2))).collect();
    // RETURNING order is unspecified; ids grow in the order rows were inserted.
    inserted.sort_unstable_by_key(|(id, _, _)| *id);
    let inserted_keys: HashSet<(&str, &str)> =
        inserted.iter().filter_map(|(_, platform, id)| Some((platform.as_str(), id.as_deref()?))).collect();
    let mut ids = inserted.iter().map(|(id, _, _)| *id);
    let mut seen = HashSet::new();
    Ok(rows
        .iter()
        .map(|(new, _)| {
            let is_new = match &new.message_id {
                None => true,
                Some(message_id) => {
                    let key = (new.channel.platform.as_str(), message_id.as_str());
                    inserted_keys.contains(&key) && seen.insert(key)
                }
            };
            is_new.then(|| new.stored_as(ids.next().expect("one returned id per inserted row")))
        })
        .collect())
}

impl NewInbound {
    /// The accepted message with its store id.
    fn stored_as(&self, id: i64) -> Inbound {
        Inbound {
            id,
            channel: self.channel.clone(),
            message_id: self.message_id.clone(),
            sender: self.sender.clone(),
            text: self.text.clone(),
        }
    }
}

/// Appends `count` copies of `row`, comma-separated.
pub(super) fn push_placeholders(sql: &mut String, count: usize, row: &str) {
    for index in 0..count {
        if index > 0 {
            sql.push_str(", ");
        }
        sql.push_str(row);
    }
}

pub(super) fn state_text(state: InboundState) -> &'static str {
    state.as_str()
}
