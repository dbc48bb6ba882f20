//! The durable response log: every final response with its `seq` and targets.
//!
//! The log keeps the delivery facts (seq, targets, what it answers) and a
//! reference to the response's text, which is a row of the conversation
//! table (`messages`): in the session's history, or kept only for delivery.
//!
//! A `seq` is assigned by SQLite inside the writer's transaction, in the
//! order writes were submitted, and the `published` hook of each append runs
//! in the writer task in that same order, so live order equals `seq` order.

use super::inbound::state_text;
use super::sql::params;
use super::{InboundState, Role, Store, StoreError, StoreResult, StoredRow, WriteConnection, now_text, parse_time};
use crate::domain::{ChannelRef, MessageRef, NewResponse, Response, ResponseKind};
use chrono::{DateTime, Utc};

/// What else commits atomically with a response.
#[derive(Debug, Clone, Default)]
pub struct Commit {
    /// The response also enters its session's history (the session's answer, error or notice).
    pub in_history: bool,
    /// The inbound message this response finishes, and its new state.
    pub finish: Option<(i64, InboundState)>,
    /// Commit only if the message in `finish` is still `running`: a turn's
    /// answer must not follow the notice its session's deletion already sent.
    pub only_if_running: bool,
}

impl Store {
    /// Appends a response (and `commit`'s extra writes) atomically; once it
    /// is durable, `published` sees it in the writer task, in `seq` order.
    /// `None` (nothing written) when `commit.only_if_running` and the message
    /// was no longer running.
    pub async fn append_response<T: Send + 'static>(
        &self,
        new: NewResponse,
        commit: Commit,
        published: impl FnOnce(Response) -> T + Send + 'static,
    ) -> StoreResult<Option<T>> {
        self.write_then(
            move |connection| {
                let created_at = now_text();
                let Some(seq) = append(connection, &new, &commit, &created_at)? else {
                    return Ok(None);
                };
                let NewResponse {
                    response_id,
                    session,
                    kind,
                    text,
                    targets,
                    reply_to,
                    permission,
                    attachments,
                    trace_context,
                } = new;
                Ok(Some(Response {
                    seq,
                    response_id,
                    session,
                    kind,
                    text,
                    targets,
                    reply_to,
                    permission,
                    attachments,
                    created_at: parse_time(&created_at),
                    trace_context,
                }))
            },
            |response| response.map(published),
        )
        .await
    }

    /// Up to `limit` responses with a target on `platform` and `seq > after`,
    /// in `seq` order, each with only its targets on that platform.
    pub async fn responses_after(&self, platform: &str, after: u64, limit: u32) -> StoreResult<Vec<Response>> {
        self.responses_with_targets(
            "SELECT r.*, m.text, t.platform_id, t.channel_id FROM responses r
             JOIN messages m ON m.id = r.message_id JOIN response_targets t ON t.seq = r.seq
             WHERE t.platform_id = ?1 AND r.seq IN (
                 SELECT DISTINCT seq FROM response_targets WHERE platform_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3)
             ORDER BY r.seq, t.channel_id",
            params![platform, after, limit],
        )
        .await
    }

    /// Up to `limit` responses with `seq > after`, in `seq` order, with all their targets.
    pub async fn all_responses_after(&self, after: u64, limit: u32) -> StoreResult<Vec<Response>> {
        self.responses_with_targets(
            "SELECT r.*, m.text, t.platform_id, t.channel_id FROM responses r
             JOIN messages m ON m.id = r.message_id JOIN response_targets t ON t.seq = r.seq
             WHERE r.seq IN (SELECT seq FROM responses WHERE seq > ?1 ORDER BY seq LIMIT ?2)
             ORDER BY r.seq, t.platform_id, t.channel_id",
            params![after, limit],
        )
        .await
    }

    /// The newest committed `seq` in the log (0 when it is empty).
    pub async fn newest_committed_seq(&self) -> StoreResult<u64> {
        Ok(self.reads.integer("SELECT COALESCE(MAX(seq), 0) AS seq FROM responses", &[], "seq").await? as u64)
    }

    /// The responses of `sql` (one row per target, in `seq` order), each
    /// with its targets gathered and its files.
    async fn responses_with_targets(&self, sql: &str, params: &[&dyn super::sql::Param]) -> StoreResult<Vec<Response>> {
        let rows = self
            .reads
            .rows(sql, params, |row| {
                let target = ChannelRef::new(row.text("platform_id"), row.text("channel_id"));
                (response_from_row(row, vec![target]), row.integer("message_id"))
            })
            .await?;
        let mut responses: Vec<(Response, i64)> = Vec::new();
        for (response, text_id) in rows {
            match responses.last_mut() {
                Some((last, _)) if last.seq == response.seq => last.targets.extend(response.targets),
                _ => responses.push((response, text_id)),
            }
        }
        let text_ids: Vec<i64> = responses.iter().map(|(_, text_id)| *text_id).collect();
        let mut attachments = self.attachments_of(&text_ids).await?;
        Ok(responses
            .into_iter()
            .map(|(response, text_id)| Response {
                attachments: attachments.remove(&text_id).unwrap_or_default(),
                ..response
            })
            .collect())
    }

    /// How many responses with a target on `platform` have `seq > after`.
    pub async fn responses_pending(&self, platform: &str, after: u64) -> StoreResult<u64> {
        let count = self
            .reads
            .integer(
                "SELECT COUNT(DISTINCT seq) AS n FROM response_targets WHERE platform_id = ? AND seq > ?",
                params![platform, after],
                "n",
            )
            .await?;
        Ok(count as u64)
    }

    /// When the oldest response with a target on `platform` and `seq > after` was committed.
    pub async fn oldest_pending_at(&self, platform: &str, after: u64) -> StoreResult<Option<DateTime<Utc>>> {
        let created = self
            .reads
            .optional(
                "SELECT created_at FROM responses
                 WHERE seq = (SELECT MIN(seq) FROM response_targets WHERE platform_id = ? AND seq > ?)",
                params![platform, after],
                |row| parse_time(&row.text("created_at")),
            )
            .await?;
        Ok(created)
    }

    /// The last `limit` error responses (any platform), newest first, without targets.
    pub async fn recent_errors(&self, limit: u32) -> StoreResult<Vec<Response>> {
        self.reads
            .rows(
                "SELECT r.*, m.text FROM responses r JOIN messages m ON m.id = r.message_id
                 WHERE r.kind = 'error' ORDER BY r.seq DESC LIMIT ?",
                params![limit],
                |row| response_from_row(row, Vec::new()),
            )
            .await
    }
}

/// Writes a response: its message's new state first (so the tracking
/// triggers of scheduled runs and webhook calls see it), its text (in the
/// conversation table, at the end of its session's history when
/// `commit.in_history`), its log entry and its targets; returns the new
/// `seq`. A guarded append (`only_if_running`) whose message is no longer
/// running writes nothing and returns `None`.
fn append(
    connection: &WriteConnection,
    new: &NewResponse,
    commit: &Commit,
    created_at: &str,
) -> StoreResult<Option<u64>> {
    if let Some((inbound_id, state)) = commit.finish {
        let sql = if commit.only_if_running {
            "UPDATE messages SET state = ? WHERE id = ? AND state = 'running'"
        } else {
            "UPDATE messages SET state = ? WHERE id = ?"
        };
        let moved = connection.execute(sql, params![state_text(state), inbound_id])?;
        if commit.only_if_running && moved == 0 {
            return Ok(None);
        }
    }
    let history_session = if commit.in_history { new.session.as_deref() } else { None };
    let text_id = connection
        .insert_returning_id(
            "INSERT INTO messages (session_name, history_pos, role, author, text, created_at)
             VALUES (?1, CASE WHEN ?1 IS NOT NULL
                         THEN (SELECT COALESCE(MAX(history_pos), 0) + 1 FROM messages
                               WHERE session_name = ?1 AND history_pos IS NOT NULL) END,
                     ?2, ?3, ?4, ?5)",
            params![
                history_session,
                Role::of(new.kind).as_str(),
                new.session.as_deref().unwrap_or("gorp"),
                new.text,
                created_at
            ],
            "id",
        )?
        .ok_or(StoreError::NotFound)?;
    if !new.attachments.is_empty() {
        super::attachments::insert(connection, text_id, &new.attachments)?;
    }
    let reply_to = new.reply_to.as_ref();
    let permission = new.permission.as_ref().map(|p| serde_json::to_string(p).expect("permission notices serialise"));
    let seq = connection
        .insert_returning_id(
            "INSERT INTO responses (response_id, session_name, dispatch, kind, message_id, in_reply_to, reply_platform,
                                    reply_channel, permission, created_at, inbound_id, trace_context)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            params![
                new.response_id,
                new.session,
                new.session.is_none(),
                new.kind.as_str(),
                text_id,
                reply_to.map(|r| &r.message_id),
                reply_to.map(|r| &r.channel.platform),
                reply_to.map(|r| &r.channel.channel_id),
                permission,
                created_at,
                commit.finish.map(|(inbound_id, _)| inbound_id),
                new.trace_context,
            ],
            "seq",
        )?
        .ok_or(StoreError::NotFound)?;
    for channel in &new.targets {
        connection.execute(
            "INSERT INTO response_targets (seq, platform_id, channel_id) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
            params![seq, channel.platform, channel.channel_id],
        )?;
    }
    connection.announce(super::Announcement::Responses);
    Ok(Some(seq as u64))
}

/// A `responses` row with the given targets.
fn response_from_row(row: &dyn StoredRow, targets: Vec<ChannelRef>) -> Response {
    Response {
        seq: row.integer("seq") as u64,
        response_id: row.text("response_id"),
        session: row.optional_text("session_name"),
        kind: ResponseKind::parse(&row.text("kind")),
        text: row.text("text"),
        targets,
        reply_to: reply_from_row(row),
        permission: row.optional_text("permission").and_then(|json| serde_json::from_str(&json).ok()),
        attachments: Vec::new(),
        created_at: parse_time(&row.text("created_at")),
        trace_context: row.optional_text("trace_context"),
    }
}

/// The message a `responses` row answers, when the row says (rows from
/// before migration 0005 have no channel and get none).
fn reply_from_row(row: &dyn StoredRow) -> Option<MessageRef> {
    let message_id = row.optional_text("in_reply_to")?;
    let platform = row.optional_text("reply_platform")?;
    let channel_id = row.optional_text("reply_channel")?;
    Some(MessageRef { channel: ChannelRef::new(platform, channel_id), message_id })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Inbound;
    use crate::store::NewInbound;

    const RECEIVED: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    const ANSWERED: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-b7ad6b7169203331-01";

    /// The append writes all four parts, and the turn start its history entry.
    #[tokio::test]
    async fn an_append_commits_the_response_its_targets_history_and_finished_message() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::open_for_test(dir.path()).await;
        store.create_session("s", "/tmp", "echo").await.unwrap();
        let channel = ChannelRef::new("web", "1");
        let new = NewInbound {
            channel: channel.clone(),
            message_id: Some("m".into()),
            sender: "u".into(),
            text: "hi".into(),
            attachments: Vec::new(),
            trace_context: Some(RECEIVED.into()),
        };
        let inbound: Inbound = store.accept_inbound(&new).await.unwrap().unwrap();
        store.route_to_sessions(vec![(inbound.id, "s".into())]).await.unwrap();
        assert!(store.start_turn(inbound.id).await.unwrap());
        assert!(!store.start_turn(inbound.id).await.unwrap(), "only once");
        let response = NewResponse {
            response_id: "r".into(),
            session: Some("s".into()),
            kind: ResponseKind::Complete,
            text: "echo: hi".into(),
            targets: vec![channel.clone(), ChannelRef::new("telegram", "9")],
            reply_to: Some(MessageRef { channel: channel.clone(), message_id: "m".into() }),
            permission: None,
            attachments: Vec::new(),
            trace_context: Some(ANSWERED.into()),
        };
        let commit = Commit { in_history: true, finish: Some((inbound.id, InboundState::Done)), only_if_running: true };
        let appended = store.append_response(response.clone(), commit.clone(), |r| r).await.unwrap().unwrap();
        // Again, now that the message is done: the guard writes nothing.
        assert!(store.append_response(response, commit, |r| r).await.unwrap().is_none());
        let replayed = store.responses_after("telegram", 0, 10).await.unwrap();
        assert_eq!(replayed.len(), 1);
        assert_eq!(replayed[0].seq, appended.seq);
        assert_eq!(replayed[0].reply_to.as_ref().unwrap().message_id, "m");
        assert_eq!(replayed[0].trace_context.as_deref(), Some(ANSWERED), "the trace survives the log");
        assert_eq!(store.responses_after("web", 0, 10).await.unwrap().len(), 1);
        let history = store.last_messages("s", 10).await.unwrap();
        assert_eq!(history.iter().map(|h| h.role.as_str()).collect::<Vec<_>>(), ["user", "assistant"]);
        let done = store.inbound_in_state(InboundState::Done).await.unwrap();
        let stored = done.iter().find(|(m, _)| m.id == inbound.id).map(|(m, _)| m).unwrap();
        assert_eq!(stored.trace_context.as_deref(), Some(RECEIVED), "the trace survives the intake");
        store.close().await;
    }
}
