//! The durable response log: every final response with its `seq` and targets.
//!
//! The log keeps the delivery facts (seq, targets, what it answers) and a
//! reference to the response's text, which is a row of the conversation
//! table (`messages`): in the session's history, or kept only for delivery.
//!
//! A `seq` is assigned by SQLite inside the writer's transaction, in the
//! order writes were submitted, and the `published` hook of each append runs
//! in the writer task in that same order, so live order equals `seq` order.

use super::inbound::{push_placeholders, state_text};
use super::{InboundState, Role, SqliteQuery, Store, StoreError, StoreResult, now_text, parse_time};
use crate::domain::{ChannelRef, MessageRef, NewResponse, Response, ResponseKind};
use sqlx::Row;

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
        self.write_unisolated_then(
            move |connection| {
                Box::pin(async move {
                    let created_at = now_text();
                    // fetch_all: the statements after the first run only while the results are read.
                    let rows = append_query(&new, &commit, &created_at).fetch_all(&mut *connection).await?;
                    let Some(row) = rows.first() else {
                        // Only a guarded append writes nothing; any other is a bug worth failing loudly.
                        return if commit.only_if_running { Ok(None) } else { Err(StoreError::NotFound) };
                    };
                    let seq: i64 = row.get(0);
                    let NewResponse { response_id, session, kind, text, targets, reply_to, permission } = new;
                    Ok(Some(Response {
                        seq: seq as u64,
                        response_id,
                        session,
                        kind,
                        text,
                        targets,
                        reply_to,
                        permission,
                        created_at: parse_time(&created_at),
                    }))
                })
            },
            |response| response.map(published),
        )
        .await
    }

    /// Up to `limit` responses with a target on `platform` and `seq > after`,
    /// in `seq` order, each with only its targets on that platform.
    pub async fn responses_after(&self, platform: &str, after: u64, limit: u32) -> StoreResult<Vec<Response>> {
        let rows = sqlx::query(
            "SELECT r.*, m.text, t.platform_id, t.channel_id FROM responses r
             JOIN messages m ON m.id = r.message_id JOIN response_targets t ON t.seq = r.seq
             WHERE t.platform_id = ?1 AND r.seq IN (
                 SELECT DISTINCT seq FROM response_targets WHERE platform_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3)
             ORDER BY r.seq, t.channel_id",
        )
        .bind(platform)
        .bind(after as i64)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let mut responses: Vec<Response> = Vec::new();
        for row in &rows {
            let seq = row.get::<i64, _>("seq") as u64;
            let target = ChannelRef::new(row.get::<String, _>("platform_id"), row.get::<String, _>("channel_id"));
            match responses.last_mut() {
                Some(last) if last.seq == seq => last.targets.push(target),
                _ => responses.push(response_from_row(row, vec![target])),
            }
        }
        Ok(responses)
    }

    /// How many responses with a target on `platform` have `seq > after`.
    pub async fn responses_pending(&self, platform: &str, after: u64) -> StoreResult<u64> {
        let count: i64 =
            sqlx::query_scalar("SELECT COUNT(DISTINCT seq) FROM response_targets WHERE platform_id = ? AND seq > ?")
                .bind(platform)
                .bind(after as i64)
                .fetch_one(&self.pool)
                .await?;
        Ok(count as u64)
    }

    /// The last `limit` error responses (any platform), newest first, without targets.
    pub async fn recent_errors(&self, limit: u32) -> StoreResult<Vec<Response>> {
        let rows = sqlx::query(
            "SELECT r.*, m.text FROM responses r JOIN messages m ON m.id = r.message_id
             WHERE r.kind = 'error' ORDER BY r.seq DESC LIMIT ?",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(|row| response_from_row(row, Vec::new())).collect())
    }
}

/// One multi-statement query (one round trip to the connection thread) for
/// a response's text (in the conversation table, in its session's history
/// when `commit.in_history`), its log entry, its targets and its message's
/// new state; its only result row is the new `seq`. The message's state moves
/// first, so the tracking triggers (scheduled runs, webhook calls) see it; a
/// guarded append (`only_if_running`) moves it only from `running`, and each
/// statement after it runs only if the one before changed one row
/// (`changes() = 1`), so it writes all of it or nothing.
fn append_query<'q>(new: &NewResponse, commit: &Commit, created_at: &str) -> SqliteQuery<'q> {
    let guarded = commit.finish.is_some() && commit.only_if_running;
    let mut sql = String::new();
    if commit.finish.is_some() {
        sql.push_str(if guarded {
            "UPDATE messages SET state = ? WHERE id = ? AND state = 'running';"
        } else {
            "UPDATE messages SET state = ? WHERE id = ?;"
        });
    }
    // The text, at the end of its session's history (or outside any history).
    sql.push_str(
        "INSERT INTO messages (session_name, history_pos, role, author, text, created_at)
         SELECT ?, CASE WHEN ? IS NOT NULL
                   THEN (SELECT IFNULL(MAX(history_pos), 0) + 1 FROM messages
                         WHERE session_name = ? AND history_pos IS NOT NULL) END,
                ?, ?, ?, ?",
    );
    sql.push_str(if guarded { " WHERE changes() = 1;" } else { ";" });
    sql.push_str(
        "INSERT INTO responses (response_id, session_name, dispatch, kind, message_id, in_reply_to, reply_platform,
                                reply_channel, permission, created_at, inbound_id)
         SELECT ?, ?, ?, ?, last_insert_rowid(), ?, ?, ?, ?, ?, ? WHERE changes() = 1 RETURNING seq;",
    );
    if !new.targets.is_empty() {
        // The single writer makes the newest seq the one just inserted.
        sql.push_str(
            "INSERT OR IGNORE INTO response_targets (seq, platform_id, channel_id)
             SELECT latest.seq, targets.column1, targets.column2
             FROM (SELECT MAX(seq) AS seq FROM responses) AS latest, (VALUES ",
        );
        push_placeholders(&mut sql, new.targets.len(), "(?, ?)");
        sql.push_str(") AS targets WHERE changes() = 1;");
    }
    // Only placeholders are spliced in; every value is bound, in statement order.
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    if let Some((inbound_id, state)) = commit.finish {
        query = query.bind(state_text(state)).bind(inbound_id);
    }
    let history_session = if commit.in_history { new.session.clone() } else { None };
    // Numbered parameters would count from the first statement: bind each use.
    query = query
        .bind(history_session.clone())
        .bind(history_session.clone())
        .bind(history_session)
        .bind(Role::of(new.kind).as_str())
        .bind(new.session.clone().unwrap_or_else(|| "gorp".to_owned()))
        .bind(new.text.clone())
        .bind(created_at.to_owned())
        .bind(new.response_id.clone())
        .bind(new.session.clone())
        .bind(new.session.is_none())
        .bind(new.kind.as_str())
        .bind(new.reply_to.as_ref().map(|r| r.message_id.clone()))
        .bind(new.reply_to.as_ref().map(|r| r.channel.platform.clone()))
        .bind(new.reply_to.as_ref().map(|r| r.channel.channel_id.clone()))
        .bind(new.permission.as_ref().map(|p| serde_json::to_string(p).expect("permission notices serialise")))
        .bind(created_at.to_owned())
        .bind(commit.finish.map(|(inbound_id, _)| inbound_id));
    for target in &new.targets {
        query = query.bind(target.platform.clone()).bind(target.channel_id.clone());
    }
    query
}

/// A `responses` row with the given targets.
fn response_from_row(row: &sqlx::sqlite::SqliteRow, targets: Vec<ChannelRef>) -> Response {
    Response {
        seq: row.get::<i64, _>("seq") as u64,
        response_id: row.get("response_id"),
        session: row.get("session_name"),
        kind: ResponseKind::parse(row.get::<&str, _>("kind")),
        text: row.get("text"),
        targets,
        reply_to: reply_from_row(row),
        permission: row.get::<Option<&str>, _>("permission").and_then(|json| serde_json::from_str(json).ok()),
        created_at: parse_time(row.get::<&str, _>("created_at")),
    }
}

/// The message a `responses` row answers, when the row says (rows from
/// before migration 0005 have no channel and get none).
fn reply_from_row(row: &sqlx::sqlite::SqliteRow) -> Option<MessageRef> {
    let message_id: String = row.get::<Option<String>, _>("in_reply_to")?;
    let platform: String = row.get::<Option<String>, _>("reply_platform")?;
    let channel_id: String = row.get::<Option<String>, _>("reply_channel")?;
    Some(MessageRef { channel: ChannelRef::new(platform, channel_id), message_id })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Inbound;
    use crate::store::NewInbound;

    /// The one-round-trip append writes all four parts, and the turn start its history entry.
    #[tokio::test]
    async fn an_append_commits_the_response_its_targets_history_and_finished_message() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        store.create_session("s", "/tmp", "echo").await.unwrap();
        let channel = ChannelRef::new("web", "1");
        let new = NewInbound {
            channel: channel.clone(),
            message_id: Some("m".into()),
            sender: "u".into(),
            text: "hi".into(),
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
        };
        let commit = Commit { in_history: true, finish: Some((inbound.id, InboundState::Done)), only_if_running: true };
        let appended = store.append_response(response.clone(), commit.clone(), |r| r).await.unwrap().unwrap();
        // Again, now that the message is done: the guard writes nothing.
        assert!(store.append_response(response, commit, |r| r).await.unwrap().is_none());
        let replayed = store.responses_after("telegram", 0, 10).await.unwrap();
        assert_eq!(replayed.len(), 1);
        assert_eq!(replayed[0].seq, appended.seq);
        assert_eq!(replayed[0].reply_to.as_ref().unwrap().message_id, "m");
        assert_eq!(store.responses_after("web", 0, 10).await.unwrap().len(), 1);
        let history = store.last_messages("s", 10).await.unwrap();
        assert_eq!(history.iter().map(|h| h.role.as_str()).collect::<Vec<_>>(), ["user", "assistant"]);
        assert!(store.inbound_in_state(InboundState::Done).await.unwrap().iter().any(|(m, _)| m.id == inbound.id));
        store.close().await;
    }
}
