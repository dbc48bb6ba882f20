//! Replicas: what the database holds so that several gorpd can serve one
//! Postgres store, and the notifications they send each other.
//!
//! - `replicas`: each running gorpd's registration, with an expiry it renews
//!   (milliseconds since the epoch by the database's clock, so the replicas'
//!   own clocks never matter). A replica whose registration expired is dead.
//! - `session_leases`: which replica owns each session. The lease holds while
//!   its replica is alive; then any replica may take it. A turn starts only
//!   under a lease its replica holds (see [`Store::start_turn`]).
//! - `messages.replica`: the replica that accepted a message, which routes it
//!   while it is pending; once that one is dead another claims it.
//!
//! Commits announce what other replicas must act on ([`Announcement`]) as
//! Postgres `NOTIFY`s in the committing transaction, so a notification
//! never arrives before the change is visible. Notifications are wake-ups,
//! never the data: a replica that missed some (its listening connection
//! dropped) loses nothing, because it reads the durable tables again.

use super::inbound::inbound_from_row;
use super::sql::{json_list, params};
use super::{Store, StoreError, StoreResult, now_text};
use crate::domain::Inbound;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// This gorpd's replica id, set once it joins the replicas; shared by the
/// store and its writer's connection (which stamps and fences with it).
pub(crate) type ReplicaId = Arc<OnceLock<String>>;

/// Channel of "new responses are in the log".
pub const RESPONSES_CHANNEL: &str = "gorp_responses";
/// Channel of "messages were queued for a session".
pub const INBOUND_CHANNEL: &str = "gorp_inbound";
/// Channel of changes to what every replica caches, and of requests to a session's owner.
pub const CONTROL_CHANNEL: &str = "gorp_control";
/// Channel of answers in progress (chunks), passed on best effort.
pub const CHUNKS_CHANNEL: &str = "gorp_chunks";
/// Largest notification payload Postgres takes is 8000 bytes; room is left for the replica id.
pub const MAX_CHUNK_PAYLOAD: usize = 7900;

/// Milliseconds since the epoch by the database's clock.
const NOW_MS: &str = "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)";

/// What a commit tells the other replicas.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Announcement {
    /// Responses were appended to the log.
    Responses,
    /// Messages were queued for this session.
    Queued(String),
    /// Something every replica caches changed (see [`Notice`]).
    Control(String),
    /// A chunk of an answer in progress, serialised.
    Chunk(String),
}

impl Announcement {
    /// Channel binding changed.
    pub(crate) fn bindings() -> Self {
        Self::Control("bindings".to_owned())
    }

    /// An answer to a permission request, for the replica whose turn asked.
    pub(crate) fn permission(answer: &str) -> Self {
        Self::Control(format!("permission {answer}"))
    }

    /// This replica stopped and gave up its sessions.
    pub(crate) fn left() -> Self {
        Self::Control("left".to_owned())
    }

    /// A web login session ended (by the SHA-256 of its cookie).
    pub(crate) fn logout(id_sha256: &str) -> Self {
        Self::Control(format!("logout {id_sha256}"))
    }

    /// This replica started and listens.
    pub(crate) fn joined() -> Self {
        Self::Control("joined".to_owned())
    }

    /// Tokens were created or revoked.
    pub(crate) fn tokens() -> Self {
        Self::Control("tokens".to_owned())
    }

    /// A session was deleted.
    pub(crate) fn deleted(session: &str) -> Self {
        Self::Control(format!("deleted {session}"))
    }

    /// Someone asked to cancel `session`'s turn (sent to the replica running it).
    pub(crate) fn cancel(session: &str, by: &str) -> Self {
        Self::Control(format!("cancel {session} {by}"))
    }

    fn channel(&self) -> &'static str {
        match self {
            Self::Responses => RESPONSES_CHANNEL,
            Self::Queued(_) => INBOUND_CHANNEL,
            Self::Control(_) => CONTROL_CHANNEL,
            Self::Chunk(_) => CHUNKS_CHANNEL,
        }
    }

    /// The payload: the announcing replica's id, then what happened.
    fn payload(&self, replica: &str) -> String {
        match self {
            Self::Responses => replica.to_owned(),
            Self::Queued(session) => format!("{replica} {session}"),
            Self::Control(what) | Self::Chunk(what) => format!("{replica} {what}"),
        }
    }

    /// The `NOTIFY` statement (the payload as a quoted literal).
    pub(super) fn notify_sql(&self, replica: &str) -> String {
        format!("NOTIFY {}, '{}'", self.channel(), self.payload(replica).replace('\'', "''"))
    }
}

/// A notification from another replica, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// New responses are in the log.
    Responses,
    /// Messages were queued for `session`.
    Queued(String),
    /// Channel bindings changed.
    Bindings,
    /// Tokens were created or revoked.
    Tokens,
    /// `session` was deleted.
    Deleted(String),
    /// Someone asked to cancel `session`'s turn.
    Cancel {
        /// The session.
        session: String,
        /// Who asked.
        by: String,
    },
    /// A replica stopped and gave up its sessions.
    Left,
    /// A replica started (and listens).
    Joined,
    /// An answer to a permission request (the replica whose turn waits resolves it).
    Permission(String),
    /// A chunk of an answer in progress on another replica, serialised.
    Chunk(String),
    /// A web login session ended (by the SHA-256 of its cookie).
    Logout(String),
}

impl Notice {
    /// Parses a notification; `None` when it is this replica's own (or not gorp's).
    pub fn parse(channel: &str, payload: &str, me: &str) -> Option<Self> {
        let (from, what) = payload.split_once(' ').unwrap_or((payload, ""));
        if from == me {
            return None;
        }
        let (word, rest) = what.split_once(' ').unwrap_or((what, ""));
        match (channel, word) {
            (RESPONSES_CHANNEL, _) => Some(Self::Responses),
            (CHUNKS_CHANNEL, _) => Some(Self::Chunk(what.to_owned())),
            (INBOUND_CHANNEL, _) if !what.is_empty() => Some(Self::Queued(what.to_owned())),
            (CONTROL_CHANNEL, "bindings") => Some(Self::Bindings),
            (CONTROL_CHANNEL, "tokens") => Some(Self::Tokens),
            (CONTROL_CHANNEL, "deleted") => Some(Self::Deleted(rest.to_owned())),
            (CONTROL_CHANNEL, "cancel") => {
                let (session, by) = rest.split_once(' ').unwrap_or((rest, ""));
                Some(Self::Cancel { session: session.to_owned(), by: by.to_owned() })
            }
            (CONTROL_CHANNEL, "left") => Some(Self::Left),
            (CONTROL_CHANNEL, "joined") => Some(Self::Joined),
            (CONTROL_CHANNEL, "permission") => Some(Self::Permission(rest.to_owned())),
            (CONTROL_CHANNEL, "logout") => Some(Self::Logout(rest.to_owned())),
            _ => None,
        }
    }
}

/// A registered replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaRow {
    /// Its id (kept in its data directory's `replica.id`).
    pub id: String,
    /// Its configured name (`replica_name`, by default the host name).
    pub name: String,
    /// When it started.
    pub started_at: String,
    /// Whether its registration is current.
    pub alive: bool,
    /// How many sessions it owns.
    pub sessions: u64,
}

/// The SQL that holds when `session_leases` row `l` names a live replica.
fn lease_is_live(lease: &str) -> String {
    format!("EXISTS (SELECT 1 FROM replicas r WHERE r.id = {lease}.replica AND r.expires_at > {NOW_MS})")
}

/// The condition [`Store::start_turn`] adds on Postgres: the message's session
/// is leased to replica `?2`, which is alive.
pub(super) fn turn_fence() -> String {
    format!(
        " AND EXISTS (SELECT 1 FROM session_leases l WHERE l.session_name = messages.session_name
                      AND l.replica = ?2 AND {})",
        lease_is_live("l")
    )
}

impl Store {
    /// This gorpd's replica id, once it has joined (Postgres only).
    pub fn replica(&self) -> Option<&str> {
        self.replica.get().map(String::as_str)
    }

    fn postgres_only(&self) -> StoreResult<()> {
        match self.engine() {
            super::Engine::Postgres => Ok(()),
            super::Engine::Sqlite => Err(StoreError::Unsupported("replicas need the store on Postgres")),
        }
    }

    fn me(&self) -> StoreResult<String> {
        self.replica().map(str::to_owned).ok_or(StoreError::Unsupported("this gorpd has not joined the replicas"))
    }

    /// Registers this gorpd as replica `id` named `name`, alive for `lease`
    /// (an id registered before is this replica restarted: its registration
    /// is renewed); from now on its writes are stamped and its turns fenced with `id`.
    pub async fn join_replicas(&self, id: &str, name: &str, lease: Duration) -> StoreResult<()> {
        self.postgres_only()?;
        let sql = format!(
            "INSERT INTO replicas (id, name, started_at, expires_at) VALUES (?1, ?2, ?3, {NOW_MS} + ?4)
             ON CONFLICT (id) DO UPDATE SET name = ?2, started_at = ?3, expires_at = {NOW_MS} + ?4"
        );
        self.reads.execute(&sql, params![id, name, now_text(), lease.as_millis() as i64]).await?;
        self.replica
            .set(id.to_owned())
            .map_err(|_| StoreError::Unsupported("this gorpd has joined the replicas already"))
    }

    /// Extends this replica's registration by `lease`; false when it had
    /// expired already (others may have taken its sessions: it must stop).
    pub async fn renew_registration(&self, lease: Duration) -> StoreResult<bool> {
        let sql = format!("UPDATE replicas SET expires_at = {NOW_MS} + ? WHERE id = ? AND expires_at > {NOW_MS}");
        Ok(self.reads.execute(&sql, params![lease.as_millis() as i64, self.me()?]).await? == 1)
    }

    /// Gives up this replica's sessions and registration (gorpd is stopping)
    /// and tells the others, which take over what is left at once.
    pub async fn leave_replicas(&self) -> StoreResult<()> {
        let me = self.me()?;
        self.reads.execute("DELETE FROM session_leases WHERE replica = ?", params![me]).await?;
        self.reads.execute("DELETE FROM replicas WHERE id = ?", params![me]).await?;
        self.notify(&Announcement::left()).await
    }

    /// Sends `announcement` now, outside any write (a request to another replica).
    pub(crate) async fn notify(&self, announcement: &Announcement) -> StoreResult<()> {
        let me = self.me()?;
        let payload = announcement.payload(&me);
        self.reads.execute("SELECT pg_notify(?, ?)", params![announcement.channel(), payload]).await?;
        Ok(())
    }

    /// Sends best-effort `announcements` (chunks) in one round trip, in
    /// order, without waiting for the commit to reach the disk: losing them
    /// in a crash loses nothing that was promised.
    pub(crate) async fn notify_unsynced(&self, announcements: &[Announcement]) -> StoreResult<()> {
        let me = self.me()?;
        let mut script = String::from("BEGIN; SET LOCAL synchronous_commit = off; ");
        for announcement in announcements {
            script.push_str(&announcement.notify_sql(&me));
            script.push_str("; ");
        }
        script.push_str("COMMIT");
        self.reads.execute_script(script).await
    }

    /// Takes `session`'s lease unless a live replica other than this one
    /// holds it; true when this replica holds it now. (A read first: a lease
    /// held elsewhere, the common case, costs no write.)
    pub async fn acquire_lease(&self, session: &str) -> StoreResult<bool> {
        let me = self.me()?;
        let held_elsewhere = format!(
            "SELECT 1 AS held FROM session_leases l WHERE l.session_name = ? AND l.replica <> ? AND {}",
            lease_is_live("l")
        );
        if self.reads.optional(&held_elsewhere, params![session, me], |row| row.integer("held")).await?.is_some() {
            return Ok(false);
        }
        let sql = format!(
            "INSERT INTO session_leases (session_name, replica) VALUES (?, ?)
             ON CONFLICT (session_name) DO UPDATE SET replica = EXCLUDED.replica
             WHERE session_leases.replica = EXCLUDED.replica OR NOT {}
             RETURNING replica",
            lease_is_live("session_leases")
        );
        let taken = self.reads.rows(&sql, params![session, me], |row| row.text("replica")).await?;
        Ok(!taken.is_empty())
    }

    /// Whether this replica holds `session`'s lease and is alive.
    pub async fn holds_lease(&self, session: &str) -> StoreResult<bool> {
        let sql = format!(
            "SELECT 1 AS held FROM session_leases l WHERE l.session_name = ? AND l.replica = ? AND {}",
            lease_is_live("l")
        );
        Ok(self.reads.optional(&sql, params![session, self.me()?], |row| row.integer("held")).await?.is_some())
    }

    /// Sessions with queued or running messages that no live replica owns.
    pub async fn sessions_without_owner(&self) -> StoreResult<Vec<String>> {
        let sql = format!(
            "SELECT DISTINCT m.session_name AS name FROM messages m
             WHERE m.state IN ('queued', 'running') AND m.session_name IS NOT NULL
             AND NOT EXISTS (SELECT 1 FROM session_leases l WHERE l.session_name = m.session_name AND {})
             ORDER BY name",
            lease_is_live("l")
        );
        self.reads.rows(&sql, &[], |row| row.text("name")).await
    }

    /// Makes this replica the router of pending messages whose replica is
    /// dead (or unknown: accepted before replicas); returns them, oldest
    /// first, each with whether it is a command already applied.
    pub async fn claim_pending(&self) -> StoreResult<Vec<(Inbound, bool)>> {
        let me = self.me()?;
        let orphaned = format!(
            "state = 'pending' AND (replica IS NULL OR (replica <> ?1 AND NOT EXISTS (
                 SELECT 1 FROM replicas r WHERE r.id = messages.replica AND r.expires_at > {NOW_MS})))"
        );
        // Read first: the claim is a write, and almost always there is nothing to claim.
        let any = format!("SELECT 1 AS found FROM messages WHERE {orphaned} LIMIT 1");
        if self.reads.optional(&any, params![me], |row| row.integer("found")).await?.is_none() {
            return Ok(Vec::new());
        }
        let claim = format!("UPDATE messages SET replica = ?1 WHERE {orphaned} RETURNING id");
        let ids =
            self.write(move |connection| connection.query_rows(&claim, params![me], |row| row.integer("id"))).await?;
        self.pending_by_id(ids).await
    }

    /// Pending messages this replica accepted (before it restarted), oldest first, as [`Store::claim_pending`].
    pub async fn own_pending(&self) -> StoreResult<Vec<(Inbound, bool)>> {
        let sql = "SELECT id FROM messages WHERE state = 'pending' AND replica = ? ORDER BY id";
        let ids = self.reads.rows(sql, params![self.me()?], |row| row.integer("id")).await?;
        self.pending_by_id(ids).await
    }

    async fn pending_by_id(&self, ids: Vec<i64>) -> StoreResult<Vec<(Inbound, bool)>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!("SELECT * FROM messages WHERE id {} ORDER BY id", self.engine().in_integer_list());
        let ids_json = json_list(&ids);
        let applied = |row: &dyn super::StoredRow| (inbound_from_row(row), row.integer("applied") != 0);
        let (messages, applied): (Vec<Inbound>, Vec<bool>) =
            self.reads.rows(&sql, params![ids_json], applied).await?.into_iter().unzip();
        let messages = self.inbound_with_attachments(messages).await?;
        Ok(messages.into_iter().zip(applied).collect())
    }

    /// The sessions whose lease this replica holds (from before it restarted), by name.
    pub async fn own_sessions(&self) -> StoreResult<Vec<String>> {
        let sql = "SELECT session_name FROM session_leases WHERE replica = ? ORDER BY session_name";
        self.reads.rows(sql, params![self.me()?], |row| row.text("session_name")).await
    }

    /// Queued messages of the sessions this replica owns, oldest first, with their sessions.
    pub async fn queued_for_replica(&self) -> StoreResult<Vec<(String, Inbound)>> {
        let rows = self
            .reads
            .rows(
                "SELECT m.* FROM messages m JOIN session_leases l ON l.session_name = m.session_name
                 WHERE m.state = 'queued' AND l.replica = ? ORDER BY m.id",
                params![self.me()?],
                |row| (row.text("session_name"), inbound_from_row(row)),
            )
            .await?;
        let (sessions, messages): (Vec<String>, Vec<Inbound>) = rows.into_iter().unzip();
        let messages = self.inbound_with_attachments(messages).await?;
        Ok(sessions.into_iter().zip(messages).collect())
    }

    /// Whether `session` has a turn running (on any replica) and how many of its messages are queued.
    pub async fn session_activity(&self, session: &str) -> StoreResult<(bool, u64)> {
        self.reads
            .one(
                "SELECT COALESCE(SUM(CASE WHEN state = 'running' THEN 1 ELSE 0 END), 0) AS running,
                        COALESCE(SUM(CASE WHEN state = 'queued' THEN 1 ELSE 0 END), 0) AS queued
                 FROM messages WHERE session_name = ? AND state IN ('queued', 'running')",
                params![session],
                |row| (row.integer("running") > 0, row.integer("queued") as u64),
            )
            .await
    }

    /// Every session lease as (session, replica id), by session.
    pub async fn session_owners(&self) -> StoreResult<Vec<(String, String)>> {
        self.reads
            .rows("SELECT session_name, replica FROM session_leases ORDER BY session_name", &[], |row| {
                (row.text("session_name"), row.text("replica"))
            })
            .await
    }

    /// The replicas registered now (the dead ones until they are forgotten), by name.
    pub async fn replicas(&self) -> StoreResult<Vec<ReplicaRow>> {
        self.postgres_only()?;
        let sql = format!(
            "SELECT r.id, r.name, r.started_at, CASE WHEN r.expires_at > {NOW_MS} THEN 1 ELSE 0 END AS alive,
                    (SELECT COUNT(*) FROM session_leases l WHERE l.replica = r.id) AS sessions
             FROM replicas r ORDER BY r.name, r.started_at"
        );
        self.reads
            .rows(&sql, &[], |row| ReplicaRow {
                id: row.text("id"),
                name: row.text("name"),
                started_at: row.text("started_at"),
                alive: row.integer("alive") == 1,
                sessions: row.integer("sessions") as u64,
            })
            .await
    }

    /// Forgets replicas dead for longer than `after` (their leases count as free already).
    pub async fn forget_dead_replicas(&self, after: Duration) -> StoreResult<()> {
        let sql = format!("DELETE FROM replicas WHERE expires_at < {NOW_MS} - ?");
        self.reads.execute(&sql, params![after.as_millis() as i64]).await?;
        Ok(())
    }

    /// A connection that hears the other replicas' notifications.
    pub async fn listen(&self) -> StoreResult<sqlx::postgres::PgListener> {
        let mut listener = self.reads.listener().await?;
        listener.listen_all([RESPONSES_CHANNEL, INBOUND_CHANNEL, CONTROL_CHANNEL, CHUNKS_CHANNEL]).await?;
        Ok(listener)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notifications_parse_back_and_a_replicas_own_are_ignored() {
        let queued = Announcement::Queued("research".into());
        assert_eq!(queued.notify_sql("a1"), "NOTIFY gorp_inbound, 'a1 research'");
        assert_eq!(
            Notice::parse(INBOUND_CHANNEL, &queued.payload("a1"), "b2"),
            Some(Notice::Queued("research".into()))
        );
        assert_eq!(Notice::parse(INBOUND_CHANNEL, &queued.payload("a1"), "a1"), None);
        assert_eq!(Notice::parse(RESPONSES_CHANNEL, "a1", "b2"), Some(Notice::Responses));
        assert_eq!(
            Notice::parse(CONTROL_CHANNEL, &Announcement::bindings().payload("a1"), "b2"),
            Some(Notice::Bindings)
        );
        assert_eq!(
            Notice::parse(CONTROL_CHANNEL, "a1 cancel research bob (web:1)", "b2"),
            Some(Notice::Cancel { session: "research".into(), by: "bob (web:1)".into() })
        );
        assert_eq!(
            Notice::parse(CONTROL_CHANNEL, &Announcement::deleted("x").payload("a1"), "b2"),
            Some(Notice::Deleted("x".into()))
        );
        assert_eq!(Notice::parse(CONTROL_CHANNEL, "a1 something-else", "b2"), None);
        assert_eq!(Announcement::Control("it's".into()).notify_sql("a"), "NOTIFY gorp_control, 'a it''s'");
    }
}
