//! The durable response log: every final response with its `seq` and targets.
//!
//! A `seq` is assigned by SQLite inside the writer's transaction, in the
//! order writes were submitted, and the `published` hook of each append runs
//! in the writer task in that same order, so live order equals `seq` order.

use super::{
    InboundState, NewHistory, Store, StoreResult, history::insert_history, inbound::state_text, now_text, parse_time,
};
use crate::domain::{ChannelRef, MessageRef, NewResponse, Response, ResponseKind};
use sqlx::{Row, SqliteConnection};

/// What else commits atomically with a response.
#[derive(Debug, Clone, Default)]
pub struct Commit {
    /// A history entry (the session's answer, error or notice).
    pub history: Option<NewHistory>,
    /// The inbound message this response finishes, and its new state.
    pub finish: Option<(i64, InboundState)>,
}

impl Store {
    /// Appends a response (and `commit`'s extra writes) atomically; once it
    /// is durable, `published` sees it in the writer task, in `seq` order.
    pub async fn append_response<T: Send + 'static>(
        &self,
        new: NewResponse,
        commit: Commit,
        published: impl FnOnce(Response) -> T + Send + 'static,
    ) -> StoreResult<T> {
        self.write_then(
            move |connection| {
                Box::pin(async move {
                    let created_at = now_text();
                    let seq = insert_response(connection, &new, &created_at).await?;
                    insert_targets(connection, seq, &new.targets).await?;
                    if let Some(history) = &commit.history {
                        insert_history(connection, history).await?;
                    }
                    if let Some((inbound_id, state)) = commit.finish {
                        sqlx::query("UPDATE inbound SET state = ? WHERE id = ?")
                            .bind(state_text(state))
                            .bind(inbound_id)
                            .execute(&mut *connection)
                            .await?;
                    }
                    let NewResponse { response_id, session, kind, text, targets, reply_to, permission } = new;
                    Ok(Response {
                        seq: seq as u64,
                        response_id,
                        session,
                        kind,
                        text,
                        targets,
                        reply_to,
                        permission,
                        created_at: parse_time(&created_at),
                    })
                })
            },
            published,
        )
        .await
    }

    /// Up to `limit` responses with a target on `platform` and `seq > after`,
    /// in `seq` order, each with only its targets on that platform.
    pub async fn responses_after(&self, platform: &str, after: u64, limit: u32) -> StoreResult<Vec<Response>> {
        let rows = sqlx::query(
            "SELECT r.*, t.platform_id, t.channel_id FROM responses r JOIN response_targets t ON t.seq = r.seq
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
        let rows = sqlx::query("SELECT * FROM responses WHERE kind = 'error' ORDER BY seq DESC LIMIT ?")
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(|row| response_from_row(row, Vec::new())).collect())
    }
}

async fn insert_response(connection: &mut SqliteConnection, new: &NewResponse, created_at: &str) -> StoreResult<i64> {
    Ok(sqlx::query_scalar(
        "INSERT INTO responses (response_id, session_name, dispatch, kind, text, in_reply_to, reply_platform,
                                reply_channel, permission, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING seq",
    )
    .bind(&new.response_id)
    .bind(&new.session)
    .bind(new.session.is_none())
    .bind(new.kind.as_str())
    .bind(&new.text)
    .bind(new.reply_to.as_ref().map(|r| &r.message_id))
    .bind(new.reply_to.as_ref().map(|r| &r.channel.platform))
    .bind(new.reply_to.as_ref().map(|r| &r.channel.channel_id))
    .bind(new.permission.as_ref().map(|p| serde_json::to_string(p).expect("permission notices serialise")))
    .bind(created_at)
    .fetch_one(&mut *connection)
    .await?)
}

/// One multi-row statement for a response's targets.
async fn insert_targets(connection: &mut SqliteConnection, seq: i64, targets: &[ChannelRef]) -> StoreResult<()> {
    for chunk in targets.chunks(256) {
        let mut sql = String::from("INSERT OR IGNORE INTO response_targets (seq, platform_id, channel_id) VALUES ");
        for index in 0..chunk.len() {
            sql.push_str(if index == 0 { "(?, ?, ?)" } else { ", (?, ?, ?)" });
        }
        // Only placeholders are spliced in; every value is bound.
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for target in chunk {
            query = query.bind(seq).bind(&target.platform).bind(&target.channel_id);
        }
        query.execute(&mut *connection).await?;
    }
    Ok(())
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
