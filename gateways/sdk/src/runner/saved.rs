//! Streaming previews that outlive the process: which platform message shows
//! the unfinished answer of a response in a channel.
//!
//! The outbox records a preview as soon as the platform took it and forgets
//! it once the final text replaced it. After a restart of the gateway, the
//! final that gorpd replays (same response id) finds its preview here and
//! edits it instead of posting a second message. After a restart of gorpd
//! the turn's final is the interruption notice, with a new response id but
//! the same question (`reply_to`), which finds the preview by that. Kept in
//! `previews.db` in the state directory (one writer, `synchronous = FULL`);
//! the whole table is also held in memory, so a final with no preview costs
//! no disk access. A record older than a week is dropped at start.

use gorp_proto::v1 as pb;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqliteLockingMode, SqliteSynchronous};
use sqlx::{Connection, Row};
use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The store's file name in the state directory.
const FILE: &str = "previews.db";
/// Previews whose final never came are forgotten after this long.
const KEEP: Duration = Duration::from_secs(7 * 24 * 3600);

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS previews (
    response_id TEXT NOT NULL,
    channel_id TEXT NOT NULL,
    message_id TEXT NOT NULL,
    question TEXT,
    created_ms INTEGER NOT NULL,
    PRIMARY KEY (response_id, channel_id)
)";

/// One preview on the platform.
#[derive(Debug, Clone)]
struct Saved {
    response_id: String,
    message_id: String,
    question: Option<String>,
}

/// The durable previews of one gateway.
pub(crate) struct SavedPreviews {
    connection: SqliteConnection,
    /// By channel: the previews shown there.
    by_channel: HashMap<String, Vec<Saved>>,
}

/// The question a response answers, as a key: `platform/channel/message id`.
pub(crate) fn question_key(reply_to: Option<&pb::MessageRef>) -> Option<String> {
    let reply_to = reply_to?;
    let channel = reply_to.channel.as_ref()?;
    (!reply_to.message_id.is_empty())
        .then(|| format!("{}/{}/{}", channel.platform, channel.channel_id, reply_to.message_id))
}

impl SavedPreviews {
    /// Opens (creating) `previews.db` in `dir` and loads it.
    pub(crate) async fn open(dir: &Path) -> Result<Self, sqlx::Error> {
        std::fs::create_dir_all(dir)?;
        let options = SqliteConnectOptions::new()
            .filename(dir.join(FILE))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .locking_mode(SqliteLockingMode::Exclusive)
            .busy_timeout(Duration::from_millis(200));
        let mut connection = SqliteConnection::connect_with(&options).await?;
        sqlx::query(SCHEMA).execute(&mut connection).await?;
        sqlx::query("DELETE FROM previews WHERE created_ms < ?")
            .bind(now_ms() - KEEP.as_millis() as i64)
            .execute(&mut connection)
            .await?;
        let rows =
            sqlx::query("SELECT response_id, channel_id, message_id, question FROM previews ORDER BY created_ms")
                .fetch_all(&mut connection)
                .await?;
        let mut by_channel: HashMap<String, Vec<Saved>> = HashMap::new();
        for row in rows {
            let saved = Saved { response_id: row.try_get(0)?, message_id: row.try_get(2)?, question: row.try_get(3)? };
            by_channel.entry(row.try_get(1)?).or_default().push(saved);
        }
        Ok(Self { connection, by_channel })
    }

    /// Records that `message_id` shows the preview of `response_id` in `channel`.
    pub(crate) async fn record(
        &mut self,
        response_id: &str,
        channel: &str,
        message_id: &str,
        question: Option<String>,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT OR REPLACE INTO previews (response_id, channel_id, message_id, question, created_ms)
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(response_id)
        .bind(channel)
        .bind(message_id)
        .bind(&question)
        .bind(now_ms())
        .execute(&mut self.connection)
        .await?;
        let saved = Saved { response_id: response_id.to_owned(), message_id: message_id.to_owned(), question };
        self.by_channel.entry(channel.to_owned()).or_default().push(saved);
        Ok(())
    }

    /// The preview in `channel` of `response_id`, or of another response to
    /// the same `question` (an interrupted turn's).
    pub(crate) fn find(&self, response_id: &str, question: Option<&str>, channel: &str) -> Option<String> {
        let saved = self.by_channel.get(channel)?;
        let same =
            |s: &&Saved| s.response_id == response_id || (question.is_some() && s.question.as_deref() == question);
        saved.iter().find(same).map(|s| s.message_id.clone())
    }

    /// Forgets the previews `find` would give (the final replaced them).
    pub(crate) async fn forget(
        &mut self,
        response_id: &str,
        question: Option<&str>,
        channel: &str,
    ) -> Result<(), sqlx::Error> {
        if self.find(response_id, question, channel).is_none() {
            return Ok(());
        }
        sqlx::query("DELETE FROM previews WHERE channel_id = ? AND (response_id = ? OR question = ?)")
            .bind(channel)
            .bind(response_id)
            .bind(question)
            .execute(&mut self.connection)
            .await?;
        if let Some(saved) = self.by_channel.get_mut(channel) {
            saved.retain(|s| s.response_id != response_id && (question.is_none() || s.question.as_deref() != question));
            if saved.is_empty() {
                self.by_channel.remove(channel);
            }
        }
        Ok(())
    }
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_preview_is_found_after_a_reopen_by_its_response_or_its_question_until_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let mut saved = SavedPreviews::open(dir.path()).await.unwrap();
        saved.record("r1", "C1", "111.1", Some("slack/C1/9".into())).await.unwrap();
        saved.record("r2", "C1", "111.2", None).await.unwrap();
        drop(saved);
        let mut saved = SavedPreviews::open(dir.path()).await.unwrap();
        assert_eq!(saved.find("r1", None, "C1").as_deref(), Some("111.1"));
        assert_eq!(saved.find("notice", Some("slack/C1/9"), "C1").as_deref(), Some("111.1"), "the same question");
        assert_eq!(saved.find("r1", None, "C2"), None, "another channel");
        saved.forget("notice", Some("slack/C1/9"), "C1").await.unwrap();
        assert_eq!(saved.find("r1", None, "C1"), None);
        drop(saved);
        let saved = SavedPreviews::open(dir.path()).await.unwrap();
        assert_eq!(saved.find("r1", None, "C1"), None, "forgotten on disk too");
        assert_eq!(saved.find("r2", None, "C1").as_deref(), Some("111.2"));
    }
}
