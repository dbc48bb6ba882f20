//! Accepted inbound messages and their handling state (the intake queue).
//!
//! A user's message is one row of the conversation table (`messages`, role
//! `user`) from the moment it is accepted: its text, its de-duplication key
//! and its state. Its turn's start puts it into the session's history.

use super::sql::{json_list, params};
use super::{Announcement, Store, StoreResult, StoredRow, WriteConnection, now_text};
use crate::domain::{ChannelRef, Inbound};

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
    /// Files sent with it, already stored (see `crate::files`).
    pub attachments: Vec<crate::domain::Attachment>,
    /// W3C `traceparent` of the span that accepted it; stored with it.
    pub trace_context: Option<String>,
}

pub(super) fn inbound_from_row(row: &dyn StoredRow) -> Inbound {
    Inbound {
        id: row.integer("id"),
        channel: ChannelRef::new(row.text("platform_id"), row.text("channel_id")),
        message_id: row.optional_text("platform_message_id"),
        sender: row.text("author"),
        text: row.text("text"),
        // Filled in by the readers that hand messages to agents.
        attachments: Vec::new(),
        trace_context: row.optional_text("trace_context"),
    }
}

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
        self.write(move |connection| insert_pending(connection, &news, &now_text())).await
    }

    /// Routes accepted messages to sessions: each becomes queued for its session (one statement).
    pub async fn route_to_sessions(&self, routes: Vec<(i64, String)>) -> StoreResult<()> {
        if routes.is_empty() {
            return Ok(());
        }
        self.write(move |connection| {
            for (inbound_id, session) in &routes {
                connection.execute(
                    "UPDATE messages SET state = 'queued', session_name = ? WHERE id = ?",
                    params![session, inbound_id],
                )?;
                connection.announce(Announcement::Queued(session.clone()));
            }
            Ok(())
        })
        .await
    }

    /// Queues one copy of a message (tell, broadcast) for each of `sessions`
    /// in one write: after a crash, all of them or none.
    pub async fn queue_for_sessions(&self, new: &NewInbound, sessions: Vec<String>) -> StoreResult<Vec<Inbound>> {
        let new = new.clone();
        self.write(move |connection| {
            let rows: Vec<(NewInbound, Option<String>)> =
                sessions.into_iter().map(|session| (new.clone(), Some(session))).collect();
            // Without a platform message id nothing is a duplicate: every row comes back.
            Ok(insert_pending(connection, &rows, &now_text())?.into_iter().flatten().collect())
        })
        .await
    }

    /// Commands whose effect was committed but whose reply was not (gorpd stopped in between).
    pub async fn applied_commands(&self) -> StoreResult<Vec<Inbound>> {
        self.reads
            .rows("SELECT * FROM messages WHERE state = 'pending' AND applied = 1 ORDER BY id", &[], inbound_from_row)
            .await
    }

    /// Moves a queued message to `running` and enters it in the session's
    /// history, so the history is in the order the agent saw it; false when it
    /// is no longer queued (its session was deleted), or, among replicas,
    /// when this replica no longer holds its session's lease.
    pub async fn start_turn(&self, inbound_id: i64) -> StoreResult<bool> {
        self.write(move |connection| {
            let start = "UPDATE messages SET state = 'running', history_pos = (
                     SELECT COALESCE(MAX(h.history_pos), 0) + 1 FROM messages h
                     WHERE h.session_name = messages.session_name AND h.history_pos IS NOT NULL)
                 WHERE id = ?1 AND state = 'queued'";
            let started = match connection.replica() {
                None => connection.execute(start, params![inbound_id])?,
                Some(replica) => {
                    let fenced = format!("{start}{}", super::cluster::turn_fence());
                    connection.execute(&fenced, params![inbound_id, replica])?
                }
            };
            Ok(started == 1)
        })
        .await
    }

    /// A session's messages in `state`, oldest first, with their files.
    pub async fn inbound_of_session(&self, session: &str, state: InboundState) -> StoreResult<Vec<Inbound>> {
        let messages = self
            .reads
            .rows(
                "SELECT * FROM messages WHERE session_name = ? AND state = ? ORDER BY id",
                params![session, state.as_str()],
                inbound_from_row,
            )
            .await?;
        self.inbound_with_attachments(messages).await
    }

    /// `messages` with their files filled in.
    pub(super) async fn inbound_with_attachments(&self, mut messages: Vec<Inbound>) -> StoreResult<Vec<Inbound>> {
        let ids: Vec<i64> = messages.iter().map(|message| message.id).collect();
        let mut attachments = self.attachments_of(&ids).await?;
        for message in &mut messages {
            message.attachments = attachments.remove(&message.id).unwrap_or_default();
        }
        Ok(messages)
    }

    /// Sets a message's handling state.
    pub async fn set_inbound_state(&self, inbound_id: i64, state: InboundState) -> StoreResult<()> {
        self.write(move |connection| {
            connection.execute("UPDATE messages SET state = ? WHERE id = ?", params![state.as_str(), inbound_id])?;
            Ok(())
        })
        .await
    }

    /// Messages in `state`, oldest first, with the session they were routed
    /// to (pending commands already applied are left out: see [`Store::applied_commands`]).
    pub async fn inbound_in_state(&self, state: InboundState) -> StoreResult<Vec<(Inbound, Option<String>)>> {
        let mut messages = self
            .reads
            .rows(
                "SELECT * FROM messages WHERE state = ? AND applied = 0 ORDER BY id",
                params![state.as_str()],
                |row| (inbound_from_row(row), row.optional_text("session_name")),
            )
            .await?;
        let ids: Vec<i64> = messages.iter().map(|(message, _)| message.id).collect();
        let mut attachments = self.attachments_of(&ids).await?;
        for (message, _) in &mut messages {
            message.attachments = attachments.remove(&message.id).unwrap_or_default();
        }
        Ok(messages)
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
                let ids = connection.query_rows(
                    "SELECT id FROM messages WHERE state IN ('done', 'dropped', 'interrupted')
                     AND created_at < ? ORDER BY id LIMIT ?",
                    params![before, BATCH],
                    |row| row.integer("id"),
                )?;
                let ids_json = json_list(&ids);
                let in_batch = connection.engine().in_integer_list();
                for sql in [
                    format!("DELETE FROM hook_calls WHERE inbound_id {in_batch}"),
                    // Outside the history nothing is left to keep; in it, the entry stays.
                    format!("DELETE FROM messages WHERE history_pos IS NULL AND id {in_batch}"),
                    format!("UPDATE messages SET state = NULL, platform_message_id = NULL WHERE id {in_batch}"),
                ] {
                    connection.execute(&sql, params![ids_json])?;
                }
                Ok(ids.len() as u64)
            })
        })
        .await
    }

    /// How many accepted messages are stored (retention forgets old finished ones).
    pub async fn inbound_count(&self) -> StoreResult<u64> {
        let count = self.reads.integer("SELECT COUNT(*) AS n FROM messages WHERE state IS NOT NULL", &[], "n").await?;
        Ok(count as u64)
    }
}

/// Inserts `rows` (pending, or queued for the given session); for each,
/// `None` when its (platform, message id) exists already or earlier in `rows`.
pub(super) fn insert_pending(
    connection: &WriteConnection,
    rows: &[(NewInbound, Option<String>)],
    received_at: &str,
) -> StoreResult<Vec<Option<Inbound>>> {
    let mut results = Vec::with_capacity(rows.len());
    for (new, session) in rows {
        let state = if session.is_some() { InboundState::Queued } else { InboundState::Pending };
        let id = connection.insert_returning_id(
            "INSERT INTO messages (role, platform_id, channel_id, platform_message_id, author, text, session_name, state,
                                   created_at, trace_context, replica)
             VALUES ('user', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (platform_id, platform_message_id) WHERE platform_message_id IS NOT NULL DO NOTHING",
            params![
                new.channel.platform,
                new.channel.channel_id,
                new.message_id,
                new.sender,
                new.text,
                session,
                state.as_str(),
                received_at,
                new.trace_context,
                connection.replica().map(str::to_owned),
            ],
            "id",
        )?;
        if let (Some(session), Some(_)) = (session, id) {
            connection.announce(Announcement::Queued(session.clone()));
        }
        let stored = id.map(|id| new.stored_as(id));
        if let Some(stored) = stored.as_ref().filter(|stored| !stored.attachments.is_empty()) {
            super::attachments::insert(connection, stored.id, &stored.attachments)?;
        }
        results.push(stored);
    }
    Ok(results)
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
            attachments: self.attachments.clone(),
            trace_context: self.trace_context.clone(),
        }
    }
}

pub(super) fn state_text(state: InboundState) -> &'static str {
    state.as_str()
}
