//! Sessions and their channel bindings.

use super::sql::params;
use super::{Announcement, Store, StoreError, StoreResult, StoredRow, now_text, parse_time};
use crate::domain::{ChannelRef, Inbound};
use chrono::{DateTime, Utc};

/// A stored session.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionRow {
    /// Unique name.
    pub name: String,
    /// Absolute workspace path.
    pub workspace_dir: String,
    /// Agent profile name.
    pub backend: String,
    /// The agent's own id for the conversation, to resume it.
    pub agent_session_id: Option<String>,
    /// Prompt tokens used so far, as reported by the agent.
    pub input_tokens: u64,
    /// Completion tokens used so far, as reported by the agent.
    pub output_tokens: u64,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// The platform of the channel whose `!create` made it (`None`: an operator, or before this was kept).
    pub created_on: Option<String>,
}

fn session_from_row(row: &dyn StoredRow) -> SessionRow {
    SessionRow {
        name: row.text("name"),
        workspace_dir: row.text("workspace_dir"),
        backend: row.text("backend"),
        agent_session_id: row.optional_text("agent_session_id"),
        input_tokens: row.integer("input_tokens") as u64,
        output_tokens: row.integer("output_tokens") as u64,
        created_at: parse_time(&row.text("created_at")),
        created_on: row.optional_text("created_on"),
    }
}

impl Store {
    /// Inserts a session made by an operator; `Conflict` when the name exists.
    pub async fn create_session(&self, name: &str, workspace_dir: &str, backend: &str) -> StoreResult<SessionRow> {
        self.create_session_on(name, workspace_dir, backend, None).await
    }

    /// Inserts a session made from a channel of `created_on` (if any); `Conflict` when the name exists.
    pub async fn create_session_on(
        &self,
        name: &str,
        workspace_dir: &str,
        backend: &str,
        created_on: Option<&str>,
    ) -> StoreResult<SessionRow> {
        let (name, workspace_dir, backend) = (name.to_owned(), workspace_dir.to_owned(), backend.to_owned());
        let created_on = created_on.map(str::to_owned);
        self.write(move |connection| {
            connection.query_one(
                "INSERT INTO sessions (name, workspace_dir, backend, created_at, created_on) VALUES (?, ?, ?, ?, ?) RETURNING *",
                params![name, workspace_dir, backend, now_text(), created_on],
                session_from_row,
            )
        })
        .await
    }

    /// One session; `NotFound` when unknown.
    pub async fn session(&self, name: &str) -> StoreResult<SessionRow> {
        self.reads.one("SELECT * FROM sessions WHERE name = ?", params![name], session_from_row).await
    }

    /// Every session, by name.
    pub async fn sessions(&self) -> StoreResult<Vec<SessionRow>> {
        self.reads.rows("SELECT * FROM sessions ORDER BY name", &[], session_from_row).await
    }

    /// Deletes a session with its bindings and history, and drops its unhandled
    /// messages, atomically. Returns the channels that were bound and the messages dropped.
    pub async fn delete_session(&self, name: &str) -> StoreResult<(Vec<ChannelRef>, Vec<Inbound>)> {
        let name = name.to_owned();
        self.write(move |connection| {
            let bound = connection.query_rows(
                "SELECT platform_id, channel_id FROM channel_bindings WHERE session_name = ? ORDER BY platform_id, channel_id",
                params![name],
                |row| ChannelRef::new(row.text("platform_id"), row.text("channel_id")),
            )?;
            let mut dropped: Vec<Inbound> = connection.query_rows(
                "UPDATE messages SET state = 'dropped', session_name = NULL
                 WHERE session_name = ? AND state IN ('queued', 'running') RETURNING *",
                params![name],
                super::inbound::inbound_from_row,
            )?;
            // The history goes; what the intake (de-duplication keys) or the
            // delivery log (undelivered answers) still needs stays, outside any session.
            super::history::remove_from_history(connection, "session_name = ?", &name)?;
            let deleted = connection.execute("DELETE FROM sessions WHERE name = ?", params![name])?;
            if deleted == 0 {
                return Err(StoreError::NotFound);
            }
            // A session made later under this name starts without an owner.
            connection.execute("DELETE FROM session_leases WHERE session_name = ?", params![name])?;
            dropped.sort_by_key(|inbound| inbound.id);
            connection.announce(Announcement::deleted(&name));
            connection.announce(Announcement::bindings());
            Ok((bound, dropped))
        })
        .await
    }

    /// Adds one turn's token usage to a session's totals.
    pub async fn add_usage(&self, name: &str, input_tokens: u64, output_tokens: u64) -> StoreResult<()> {
        let name = name.to_owned();
        self.write(move |connection| {
            connection.execute(
                "UPDATE sessions SET input_tokens = input_tokens + ?, output_tokens = output_tokens + ? WHERE name = ?",
                params![input_tokens, output_tokens, name],
            )?;
            Ok(())
        })
        .await
    }

    /// Remembers the agent's own id for a session's conversation.
    pub async fn set_agent_session_id(&self, name: &str, agent_session_id: &str) -> StoreResult<()> {
        let (name, agent_session_id) = (name.to_owned(), agent_session_id.to_owned());
        self.write(move |connection| {
            connection
                .execute("UPDATE sessions SET agent_session_id = ? WHERE name = ?", params![agent_session_id, name])?;
            Ok(())
        })
        .await
    }

    /// Binds a channel to an existing session, replacing any earlier binding.
    pub async fn bind(&self, channel: &ChannelRef, session: &str) -> StoreResult<()> {
        let (channel, session) = (channel.clone(), session.to_owned());
        self.write(move |connection| {
            let result = connection.execute(
                "INSERT INTO channel_bindings (platform_id, channel_id, session_name, bound_at) VALUES (?, ?, ?, ?)
                 ON CONFLICT (platform_id, channel_id) DO UPDATE SET session_name = excluded.session_name, bound_at = excluded.bound_at",
                params![channel.platform, channel.channel_id, session, now_text()],
            );
            connection.announce(Announcement::bindings());
            match result {
                Err(StoreError::MissingReference) => Err(StoreError::NotFound),
                other => other.map(drop),
            }
        })
        .await
    }

    /// Removes a channel's binding; `NotFound` when it had none.
    pub async fn unbind(&self, channel: &ChannelRef) -> StoreResult<()> {
        let channel = channel.clone();
        self.write(move |connection| {
            let removed = connection.execute(
                "DELETE FROM channel_bindings WHERE platform_id = ? AND channel_id = ?",
                params![channel.platform, channel.channel_id],
            )?;
            if removed == 0 {
                return Err(StoreError::NotFound);
            }
            connection.announce(Announcement::bindings());
            Ok(())
        })
        .await
    }

    /// Every binding as (channel, session).
    ///
    /// Read as one text value: sqlx hands rows over from its connection
    /// thread one at a time, and at a hundred thousand bindings those hops
    /// were most of gorpd's start time. Ids and names contain no control
    /// characters (see `names`), so the unit and record separators are safe.
    pub async fn bindings(&self) -> StoreResult<Vec<(ChannelRef, String)>> {
        let packed = self.engine().packed_bindings();
        let packed = self.reads.one(packed, &[], |row| row.optional_text("packed")).await?.unwrap_or_default();
        Ok(packed
            .split('\u{1e}')
            .filter(|record| !record.is_empty())
            .filter_map(|record| {
                let mut fields = record.split('\u{1f}');
                let (platform, channel_id, session) = (fields.next()?, fields.next()?, fields.next()?);
                Some((ChannelRef::new(platform, channel_id), session.to_owned()))
            })
            .collect())
    }
}
