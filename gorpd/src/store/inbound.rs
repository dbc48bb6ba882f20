//! Accepted inbound messages and their handling state (the intake queue).

use super::{NewHistory, Store, StoreResult, history::insert_history, now_text};
use crate::bus::{ChannelRef, Inbound};
use sqlx::{Row, Sqlite, Transaction};

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

fn inbound_from_row(row: &sqlx::sqlite::SqliteRow) -> Inbound {
    Inbound {
        id: row.get("id"),
        channel: ChannelRef::new(row.get::<String, _>("platform_id"), row.get::<String, _>("channel_id")),
        message_id: row.get("platform_message_id"),
        sender: row.get("sender"),
        text: row.get("text"),
    }
}

impl Store {
    /// Commits an inbound message; `None` when (platform, message id) was accepted before.
    pub async fn accept_inbound(&self, new: &NewInbound) -> StoreResult<Option<Inbound>> {
        let mut results = self.accept_inbound_batch(std::slice::from_ref(new)).await?;
        Ok(results.pop().flatten())
    }

    /// Commits many inbound messages in one transaction (one fsync); for each,
    /// `None` when it was accepted before (also earlier in the same batch).
    pub async fn accept_inbound_batch(&self, news: &[NewInbound]) -> StoreResult<Vec<Option<Inbound>>> {
        let mut tx = self.begin_write().await?;
        let mut results = Vec::with_capacity(news.len());
        for new in news {
            results.push(insert_pending(&mut tx, new).await?);
        }
        tx.commit().await?;
        Ok(results)
    }

    /// Routes an accepted message to a session: it becomes queued.
    pub async fn route_to_session(&self, inbound_id: i64, session: &str) -> StoreResult<()> {
        sqlx::query("UPDATE inbound SET state = 'queued', session_name = ? WHERE id = ?")
            .bind(session)
            .bind(inbound_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Queues a message for a session directly (tell, broadcast).
    pub async fn queue_for_session(&self, new: &NewInbound, session: &str) -> StoreResult<Inbound> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO inbound (platform_id, channel_id, platform_message_id, sender, text, session_name, state, received_at)
             VALUES (?, ?, ?, ?, ?, ?, 'queued', ?) RETURNING id",
        )
        .bind(&new.channel.platform)
        .bind(&new.channel.channel_id)
        .bind(&new.message_id)
        .bind(&new.sender)
        .bind(&new.text)
        .bind(session)
        .bind(now_text())
        .fetch_one(&self.pool)
        .await?;
        Ok(new.stored_as(id))
    }

    /// Moves a queued message to `running` and enters it in the session's
    /// history, so the history is in the order the agent saw it; false when it
    /// is no longer queued (its session was deleted).
    pub async fn start_turn(&self, inbound_id: i64, history: &NewHistory) -> StoreResult<bool> {
        let mut tx = self.begin_write().await?;
        let result = sqlx::query("UPDATE inbound SET state = 'running' WHERE id = ? AND state = 'queued'")
            .bind(inbound_id)
            .execute(&mut *tx)
            .await?;
        if result.rows_affected() != 1 {
            return Ok(false);
        }
        insert_history(&mut tx, history).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Sets a message's handling state.
    pub async fn set_inbound_state(&self, inbound_id: i64, state: InboundState) -> StoreResult<()> {
        sqlx::query("UPDATE inbound SET state = ? WHERE id = ?")
            .bind(state.as_str())
            .bind(inbound_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Messages in `state`, oldest first, with the session they were routed to.
    pub async fn inbound_in_state(&self, state: InboundState) -> StoreResult<Vec<(Inbound, Option<String>)>> {
        let rows = sqlx::query("SELECT * FROM inbound WHERE state = ? ORDER BY id")
            .bind(state.as_str())
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(|r| (inbound_from_row(r), r.get("session_name"))).collect())
    }

    /// How many inbound messages were ever accepted (for tests and metrics).
    pub async fn inbound_count(&self) -> StoreResult<u64> {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM inbound").fetch_one(&self.pool).await?;
        Ok(count as u64)
    }
}

/// Inserts one message as `pending`; `None` when its (platform, message id) exists.
async fn insert_pending(tx: &mut Transaction<'_, Sqlite>, new: &NewInbound) -> StoreResult<Option<Inbound>> {
    let id: Option<i64> = sqlx::query_scalar(
        "INSERT INTO inbound (platform_id, channel_id, platform_message_id, sender, text, state, received_at)
         VALUES (?, ?, ?, ?, ?, 'pending', ?)
         ON CONFLICT (platform_id, platform_message_id) DO NOTHING RETURNING id",
    )
    .bind(&new.channel.platform)
    .bind(&new.channel.channel_id)
    .bind(&new.message_id)
    .bind(&new.sender)
    .bind(&new.text)
    .bind(now_text())
    .fetch_optional(&mut **tx)
    .await?;
    Ok(id.map(|id| new.stored_as(id)))
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

pub(super) fn state_text(state: InboundState) -> &'static str {
    state.as_str()
}
