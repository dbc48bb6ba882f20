//! Compacting the delivery log and giving the space back.
//!
//! A delivery (a response's target on one platform) is kept until every
//! gateway that holds it back has acknowledged past it: the caller decides
//! the point per platform (see `orchestrator::retention`). A response with no
//! target left goes from the log; its text goes with it unless it is in its
//! session's history, which `!read` and the web keep using. Everything is
//! removed in small batches through the writer, so compaction never holds it
//! for long, and on SQLite freed pages are returned to the file system with
//! `PRAGMA incremental_vacuum` in small steps (Postgres's autovacuum does
//! that on its own).

use super::sql::{json_list, params};
use super::{Store, StoreResult, WriteConnection};

/// Rows removed per write.
const BATCH: u32 = 1000;

/// Free pages returned to the file system per write.
const VACUUM_PAGES: u32 = 256;

/// How far the delivery log may be compacted.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CompactionPoints {
    /// Per platform: deliveries up to this seq are no longer needed.
    pub platforms: Vec<(String, u64)>,
    /// For every other platform (no gateway holds them back).
    pub others: u64,
}

/// What one compaction removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Compacted {
    /// Deliveries (response targets) removed.
    pub deliveries: u64,
    /// Responses removed from the log (no target left).
    pub responses: u64,
    /// Pages given back to the file system.
    pub pages_freed: u64,
}

impl Store {
    /// Removes the deliveries `points` allows, then the responses left
    /// without a target (except those a webhook caller may still poll), then
    /// gives free pages back.
    pub async fn compact_delivery_log(&self, points: &CompactionPoints) -> StoreResult<Compacted> {
        let mut compacted = Compacted::default();
        for (platform, seq) in &points.platforms {
            compacted.deliveries += self.remove_deliveries(Some(platform.clone()), *seq, Vec::new()).await?;
        }
        let known: Vec<String> = points.platforms.iter().map(|(platform, _)| platform.clone()).collect();
        compacted.deliveries += self.remove_deliveries(None, points.others, known).await?;
        let newest = points.platforms.iter().map(|(_, seq)| *seq).chain([points.others]).max().unwrap_or(0);
        compacted.responses = self.remove_undeliverable_responses(newest).await?;
        compacted.pages_freed = self.vacuum_free_pages().await?;
        Ok(compacted)
    }

    /// Deliveries up to `through` on `platform`, or (None) on every platform but `except`.
    async fn remove_deliveries(&self, platform: Option<String>, through: u64, except: Vec<String>) -> StoreResult<u64> {
        let except = json_list(&except);
        super::in_batches(BATCH, || {
            let (platform, except) = (platform.clone(), except.clone());
            self.write(move |connection| {
                let not_excepted = connection.engine().in_text_list();
                connection.execute(
                    &format!(
                        "DELETE FROM response_targets WHERE (seq, platform_id, channel_id) IN (
                             SELECT seq, platform_id, channel_id FROM response_targets WHERE seq <= ?1
                             AND (platform_id = ?2 OR (?2 IS NULL AND platform_id NOT {not_excepted}))
                             LIMIT ?4)"
                    ),
                    params![through, platform, except, BATCH],
                )
            })
        })
        .await
    }

    /// Responses up to `through` with no delivery left, with their text when
    /// it is not in a history.
    async fn remove_undeliverable_responses(&self, through: u64) -> StoreResult<u64> {
        super::in_batches(BATCH, || {
            self.write(move |connection| {
                let seqs = connection.query_rows(
                    "SELECT seq FROM responses r WHERE seq <= ?
                     AND NOT EXISTS (SELECT 1 FROM response_targets t WHERE t.seq = r.seq)
                     AND NOT EXISTS (SELECT 1 FROM hook_calls h WHERE h.response_seq = r.seq)
                     ORDER BY seq LIMIT ?",
                    params![through, BATCH],
                    |row| row.integer("seq"),
                )?;
                let seqs_json = json_list(&seqs);
                let in_batch = connection.engine().in_integer_list();
                for sql in [
                    format!(
                        "DELETE FROM messages WHERE history_pos IS NULL AND state IS NULL
                         AND id IN (SELECT message_id FROM responses WHERE seq {in_batch})"
                    ),
                    format!("DELETE FROM responses WHERE seq {in_batch}"),
                ] {
                    connection.execute(&sql, params![seqs_json])?;
                }
                Ok(seqs.len() as u64)
            })
        })
        .await
    }

    /// Gives the database's free pages back to the file system, a few at a
    /// time; returns how many.
    pub async fn vacuum_free_pages(&self) -> StoreResult<u64> {
        let mut freed = 0;
        loop {
            let step = self
                .write(move |connection| {
                    let WriteConnection::Sqlite(connection) = connection else {
                        return Ok(0);
                    };
                    let free_pages = || connection.query_row("PRAGMA freelist_count", [], |row| row.get::<_, i64>(0));
                    let before = free_pages()?;
                    if before == 0 {
                        return Ok(0);
                    }
                    connection.execute_batch(&format!("PRAGMA incremental_vacuum({VACUUM_PAGES})"))?;
                    Ok((before - free_pages()?).max(0) as u64)
                })
                .await?;
            if step == 0 {
                // Nothing free, or not in incremental mode: any pages left are reused.
                return Ok(freed);
            }
            freed += step;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ChannelRef, NewResponse, ResponseKind};
    use crate::store::Commit;

    fn answer(session: Option<&str>, text: &str, platforms: &[&str]) -> NewResponse {
        NewResponse {
            response_id: uuid::Uuid::new_v4().to_string(),
            session: session.map(str::to_owned),
            kind: ResponseKind::Complete,
            text: text.to_owned(),
            targets: platforms.iter().map(|p| ChannelRef::new(*p, "c")).collect(),
            reply_to: None,
            permission: None,
            attachments: Vec::new(),
            trace_context: None,
        }
    }

    async fn append(store: &Store, new: NewResponse, in_history: bool) -> u64 {
        let commit = Commit { in_history, ..Commit::default() };
        store.append_response(new, commit, |r| r.seq).await.unwrap().unwrap()
    }

    fn points(platforms: &[(&str, u64)], others: u64) -> CompactionPoints {
        CompactionPoints { platforms: platforms.iter().map(|(p, s)| ((*p).to_owned(), *s)).collect(), others }
    }

    #[tokio::test]
    async fn a_delivery_goes_only_once_its_platform_is_past_it_and_the_history_stays() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::open_for_test(dir.path()).await;
        store.create_session("s", "/tmp", "echo").await.unwrap();
        let first = append(&store, answer(Some("s"), "one", &["telegram", "slack"]), true).await;
        let second = append(&store, answer(None, "dispatch reply", &["telegram", "slack"]), false).await;
        let third = append(&store, answer(Some("s"), "three", &["telegram", "slack", "web"]), true).await;

        // Telegram acknowledged everything, Slack nothing: only Telegram's deliveries go.
        let done = store.compact_delivery_log(&points(&[("telegram", third), ("slack", 0)], 0)).await.unwrap();
        assert_eq!((done.deliveries, done.responses), (3, 0));
        assert!(store.responses_after("telegram", 0, 10).await.unwrap().is_empty());
        let slack: Vec<String> =
            store.responses_after("slack", 0, 10).await.unwrap().into_iter().map(|r| r.text).collect();
        assert_eq!(slack, ["one", "dispatch reply", "three"], "slack still gets every text");

        // Slack past the second: the first two responses have no delivery left and go.
        let done = store.compact_delivery_log(&points(&[("telegram", third), ("slack", second)], 0)).await.unwrap();
        assert_eq!((done.deliveries, done.responses), (2, 2));
        assert_eq!(store.responses_after("slack", 0, 10).await.unwrap()[0].seq, third);
        assert_eq!(store.responses_after("web", 0, 10).await.unwrap()[0].text, "three");
        let history: Vec<String> = store.last_messages("s", 10).await.unwrap().into_iter().map(|h| h.text).collect();
        assert_eq!(history, ["one", "three"], "the history keeps the answers");
        let rows = store.database_size().await.unwrap().rows;
        assert!(rows.contains(&("messages", 2)), "the DISPATCH reply's text went with it: {rows:?}");
        assert_eq!(store.last_seq().await.unwrap(), third, "the sequence goes on");
        assert_eq!(append(&store, answer(Some("s"), "four", &["slack"]), true).await, third + 1);
        assert!(first < second);
        store.close().await;
    }

    #[tokio::test]
    async fn compaction_gives_the_space_back_to_the_file_system() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        let text = "x".repeat(16 * 1024);
        let mut last = 0;
        for _ in 0..200 {
            last = append(&store, answer(None, &text, &["telegram"]), false).await;
        }
        let before = store.database_size().await.unwrap().bytes;
        let done = store.compact_delivery_log(&points(&[("telegram", last)], 0)).await.unwrap();
        assert_eq!(done.responses, 200);
        assert!(done.pages_freed > 500, "{done:?}");
        let after = store.database_size().await.unwrap();
        assert_eq!(after.free_bytes, 0);
        assert!(after.bytes < before / 4, "{before} -> {}", after.bytes);
        store.close().await;
    }
}
