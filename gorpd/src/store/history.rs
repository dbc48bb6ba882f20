//! A session's conversation history (`!read`, the web history), and pruning it.

use super::sql::{Param, json_list, params};
use super::{Store, StoreResult, StoredRow, WriteConnection, parse_time};
use crate::domain::{ChannelRef, ResponseKind};
use chrono::{DateTime, Utc};

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
    /// Files it carries.
    pub attachments: Vec<crate::domain::Attachment>,
}

impl Role {
    /// The history role of a response of this kind.
    pub fn of(kind: ResponseKind) -> Self {
        match kind {
            ResponseKind::Complete => Self::Assistant,
            ResponseKind::Error => Self::Error,
            ResponseKind::Notice => Self::Notice,
        }
    }
}

/// Rows nothing but the history needs: not (or no longer) tracked by the
/// intake, and not in the delivery log.
const ONLY_HISTORY_NEEDS: &str =
    "(state IS NULL OR (state IN ('done', 'dropped', 'interrupted') AND platform_message_id IS NULL))
     AND id NOT IN (SELECT message_id FROM responses)";

/// Takes the history rows that `selection` (an SQL condition with one
/// parameter, bound to `value`) picks out of the history: deletes those
/// nothing else needs and keeps the others outside any session (a row with a
/// session and no history position is always a message waiting for its
/// turn). Returns how many left the history.
pub(super) fn remove_from_history(connection: &WriteConnection, selection: &str, value: &str) -> StoreResult<u64> {
    let value: &[&dyn Param] = params![value];
    let deleted = connection.execute(
        &format!("DELETE FROM messages WHERE history_pos IS NOT NULL AND {selection} AND {ONLY_HISTORY_NEEDS}"),
        value,
    )?;
    let detached = connection.execute(
        &format!(
            "UPDATE messages SET history_pos = NULL, session_name = NULL WHERE history_pos IS NOT NULL AND {selection}"
        ),
        value,
    )?;
    Ok(deleted + detached)
}

impl Store {
    /// The last `count` history entries of a session, oldest first.
    pub async fn last_messages(&self, session: &str, count: u32) -> StoreResult<Vec<HistoryRow>> {
        let rows = self
            .reads
            .rows(
                "SELECT * FROM (SELECT * FROM messages WHERE session_name = ? AND history_pos IS NOT NULL
                                ORDER BY history_pos DESC LIMIT ?) AS newest ORDER BY history_pos",
                params![session, count],
                history_row,
            )
            .await?;
        self.with_attachments(rows).await
    }

    /// `rows` with the files each carries.
    async fn with_attachments(&self, rows: Vec<HistoryRow>) -> StoreResult<Vec<HistoryRow>> {
        let ids: Vec<i64> = rows.iter().map(|row| row.id).collect();
        let mut attachments = self.attachments_of(&ids).await?;
        Ok(rows
            .into_iter()
            .map(|row| HistoryRow { attachments: attachments.remove(&row.id).unwrap_or_default(), ..row })
            .collect())
    }

    /// Number of history entries of a session.
    pub async fn message_count(&self, session: &str) -> StoreResult<u64> {
        let count = self
            .reads
            .integer(
                "SELECT COUNT(*) AS n FROM messages WHERE session_name = ? AND history_pos IS NOT NULL",
                params![session],
                "n",
            )
            .await?;
        Ok(count as u64)
    }
}

/// A stored message as a history entry, without its files.
fn history_row(row: &dyn StoredRow) -> HistoryRow {
    HistoryRow {
        id: row.integer("id"),
        role: row.text("role"),
        author: row.text("author"),
        text: row.text("text"),
        channel: row
            .optional_text("platform_id")
            .zip(row.optional_text("channel_id"))
            .map(|(platform, channel_id)| ChannelRef::new(platform, channel_id)),
        created_at: parse_time(&row.text("created_at")),
        attachments: Vec::new(),
    }
}

/// Longest history search, in characters.
pub const SEARCH_MAX_CHARS: usize = 200;
/// Most entries one history search returns.
pub const SEARCH_MAX_RESULTS: u32 = 50;

/// A history search: 1 to [`SEARCH_MAX_CHARS`] characters, trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery(String);

impl SearchQuery {
    /// Checks and trims `text`; the error says what a search must be.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        match text.chars().count() {
            0 => Err("the search is empty".to_owned()),
            n if n > SEARCH_MAX_CHARS => Err(format!("a search is at most {SEARCH_MAX_CHARS} characters")),
            _ => Ok(Self(text.to_owned())),
        }
    }

    /// A `LIKE` pattern matching the search anywhere: lowercase, with `\`, `%` and `_` escaped.
    fn contains_pattern(&self) -> String {
        let mut pattern = String::with_capacity(self.0.len() + 2);
        pattern.push('%');
        for c in self.0.to_lowercase().chars() {
            if matches!(c, '\\' | '%' | '_') {
                pattern.push('\\');
            }
            pattern.push(c);
        }
        pattern.push('%');
        pattern
    }
}

impl Store {
    /// The newest (at most `limit`, capped at [`SEARCH_MAX_RESULTS`]) history entries of
    /// `session` whose text contains `query`, newest first. Case-insensitive for ASCII
    /// letters (SQLite's `lower`; Postgres lowercases all). Plain `LIKE` with an
    /// `ESCAPE`, the same SQL on both engines.
    pub async fn search_history(&self, session: &str, query: &SearchQuery, limit: u32) -> StoreResult<Vec<HistoryRow>> {
        let pattern = query.contains_pattern();
        let rows = self
            .reads
            .rows(
                "SELECT * FROM messages WHERE session_name = ? AND history_pos IS NOT NULL
                   AND lower(text) LIKE ? ESCAPE '\\' ORDER BY history_pos DESC LIMIT ?",
                params![session, pattern.as_str(), limit.min(SEARCH_MAX_RESULTS)],
                history_row,
            )
            .await?;
        self.with_attachments(rows).await
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
        // Entries up to this position go: the newest `keep_last` are above it.
        let cutoff: Option<i64> = match rule.keep_last {
            Some(keep) => {
                self.reads
                    .optional(
                        "SELECT history_pos FROM messages WHERE session_name = ? AND history_pos IS NOT NULL
                         ORDER BY history_pos DESC LIMIT 1 OFFSET ?",
                        params![session, keep],
                        |row| row.integer("history_pos"),
                    )
                    .await?
            }
            None => None,
        };
        let before = rule.before.map(super::time_text);
        if cutoff.is_none() && before.is_none() {
            return Ok(0);
        }
        super::in_batches(PRUNE_BATCH, || {
            let (session, before) = (session.to_owned(), before.clone());
            self.write(move |connection| {
                let ids = connection.query_rows(
                    "SELECT id FROM messages WHERE session_name = ?1 AND history_pos IS NOT NULL
                     AND ((?2 IS NOT NULL AND history_pos <= ?2) OR (?3 IS NOT NULL AND created_at < ?3))
                     ORDER BY history_pos LIMIT ?4",
                    params![session, cutoff, before, PRUNE_BATCH],
                    |row| row.integer("id"),
                )?;
                let selection = format!("id {}", connection.engine().in_integer_list());
                remove_from_history(connection, &selection, &json_list(&ids))
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{NewResponse, ResponseKind};
    use crate::store::Commit;

    async fn store_with_answers(dir: &std::path::Path, session: &str, texts: &[&str]) -> Store {
        let store = crate::store::open_for_test(dir).await;
        store.create_session(session, "/tmp", "echo").await.unwrap();
        for (i, text) in texts.iter().enumerate() {
            let answer = NewResponse {
                response_id: format!("{session}-{i}"),
                session: Some(session.into()),
                kind: ResponseKind::Complete,
                text: (*text).into(),
                targets: vec![ChannelRef::new("slack", "c")],
                reply_to: None,
                permission: None,
                attachments: Vec::new(),
                trace_context: None,
            };
            store.append_response(answer, Commit { in_history: true, ..Commit::default() }, |_| ()).await.unwrap();
        }
        store
    }

    fn texts(rows: Vec<HistoryRow>) -> Vec<String> {
        rows.into_iter().map(|h| h.text).collect()
    }

    /// A search finds the session's entries containing the words, newest first, ignoring
    /// ASCII case; `%`, `_` and `\` are literal; the result count is capped.
    #[tokio::test]
    async fn search_finds_text_newest_first_with_wildcards_taken_literally() {
        let dir = tempfile::tempdir().unwrap();
        let texts_in = ["Deploy the API", "nothing here", "api docs at 100%", "a_b and a\\b", "aXb"];
        let store = store_with_answers(dir.path(), "s", &texts_in).await;
        let search = |q: &str| SearchQuery::parse(q).unwrap();
        assert_eq!(
            texts(store.search_history("s", &search(" api "), 10).await.unwrap()),
            ["api docs at 100%", "Deploy the API"]
        );
        assert_eq!(texts(store.search_history("s", &search("100%"), 10).await.unwrap()), ["api docs at 100%"]);
        assert_eq!(texts(store.search_history("s", &search("a_b"), 10).await.unwrap()), ["a_b and a\\b"]);
        assert_eq!(texts(store.search_history("s", &search("a\\b"), 10).await.unwrap()), ["a_b and a\\b"]);
        assert_eq!(texts(store.search_history("s", &search("api"), 1).await.unwrap()), ["api docs at 100%"]);
        assert!(store.search_history("other", &search("api"), 10).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_search_returns_at_most_fifty_entries() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_answers(dir.path(), "s", &["same"; 55]).await;
        let found = store.search_history("s", &SearchQuery::parse("same").unwrap(), u32::MAX).await.unwrap();
        assert_eq!(found.len(), SEARCH_MAX_RESULTS as usize);
    }

    #[test]
    fn a_search_is_one_to_two_hundred_characters() {
        assert_eq!(SearchQuery::parse("  ").unwrap_err(), "the search is empty");
        assert!(SearchQuery::parse(&"é".repeat(SEARCH_MAX_CHARS)).is_ok());
        assert_eq!(
            SearchQuery::parse(&"é".repeat(SEARCH_MAX_CHARS + 1)).unwrap_err(),
            "a search is at most 200 characters"
        );
    }

    /// Pruning takes entries out of the history; an answer a gateway has not
    /// received yet keeps its text for delivery.
    #[tokio::test]
    async fn pruned_answers_stay_deliverable_until_delivered() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::open_for_test(dir.path()).await;
        store.create_session("s", "/tmp", "echo").await.unwrap();
        for text in ["first", "second"] {
            let answer = NewResponse {
                response_id: text.into(),
                session: Some("s".into()),
                kind: ResponseKind::Complete,
                text: text.into(),
                targets: vec![ChannelRef::new("slack", "c")],
                reply_to: None,
                permission: None,
                attachments: Vec::new(),
                trace_context: None,
            };
            store.append_response(answer, Commit { in_history: true, ..Commit::default() }, |_| ()).await.unwrap();
        }
        let removed = store.prune_history("s", PruneRule { keep_last: Some(1), before: None }).await.unwrap();
        assert_eq!(removed, 1);
        let history: Vec<String> = store.last_messages("s", 10).await.unwrap().into_iter().map(|h| h.text).collect();
        assert_eq!(history, ["second"]);
        let pending: Vec<String> =
            store.responses_after("slack", 0, 10).await.unwrap().into_iter().map(|r| r.text).collect();
        assert_eq!(pending, ["first", "second"], "the delivery log still has both texts");
        store.close().await;
    }
}
