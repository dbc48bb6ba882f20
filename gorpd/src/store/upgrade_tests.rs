//! Upgrading a database written before the conversation became one table
//! (migration 0008) keeps every session's history, pending message and cursor.

use super::{InboundState, NewInbound, Store};
use crate::domain::ChannelRef;
use sqlx::ConnectOptions;
use sqlx::sqlite::SqliteConnectOptions;
use std::str::FromStr;

/// The schema version before the conversation table.
const BEFORE_ONE_TABLE: i64 = 7;

/// Rows as gorpd wrote them at schema 7: a finished turn with its history and
/// answer, a message still queued, a DISPATCH reply and a gateway's cursor.
const OLD_ROWS: &str = "
    INSERT INTO sessions (name, workspace_dir, backend, created_at) VALUES ('s', '/tmp', 'echo', '2026-01-01T00:00:00Z');
    INSERT INTO channel_bindings VALUES ('telegram', '42', 's', '2026-01-01T00:00:00Z');
    INSERT INTO inbound (id, platform_id, channel_id, platform_message_id, sender, text, session_name, state, received_at)
    VALUES (1, 'telegram', '42', 'm1', 'ann', 'hello', 's', 'done', '2026-01-01T00:00:01Z'),
           (2, 'telegram', '42', 'm2', 'ann', 'still waiting', 's', 'queued', '2026-01-01T00:00:02Z'),
           (3, 'telegram', '7', 'm3', 'bob', '!help', NULL, 'done', '2026-01-01T00:00:03Z');
    INSERT INTO messages (id, session_name, role, author, text, platform_id, channel_id, created_at)
    VALUES (1, 's', 'user', 'ann', 'hello', 'telegram', '42', '2026-01-01T00:00:01Z'),
           (2, 's', 'assistant', 's', 'echo: hello', NULL, NULL, '2026-01-01T00:00:04Z');
    INSERT INTO responses (seq, response_id, session_name, dispatch, kind, text, in_reply_to, created_at,
                           reply_platform, reply_channel, inbound_id)
    VALUES (1, 'r1', 's', 0, 'complete', 'echo: hello', 'm1', '2026-01-01T00:00:04Z', 'telegram', '42', 1),
           (2, 'r2', NULL, 1, 'complete', 'commands: ...', 'm3', '2026-01-01T00:00:05Z', 'telegram', '7', 3);
    INSERT INTO response_targets VALUES (1, 'telegram', '42'), (2, 'telegram', '7');
    INSERT INTO gateways VALUES ('tg-1', 'telegram', 1, '2026-01-01T00:00:06Z');
";

#[tokio::test]
async fn an_old_database_keeps_its_history_pending_messages_replies_and_cursors() {
    let dir = tempfile::tempdir().unwrap();
    let options = SqliteConnectOptions::from_str("sqlite:").unwrap().filename(dir.path().join(super::DATABASE_FILE));
    let mut old = options.create_if_missing(true).connect().await.unwrap();
    sqlx::migrate!("../migrations/sqlite").run_to(BEFORE_ONE_TABLE, &mut old).await.unwrap();
    sqlx::raw_sql(OLD_ROWS).execute(&mut old).await.unwrap();
    drop(old);

    let store = Store::open(dir.path()).await.unwrap();
    let history = store.last_messages("s", 10).await.unwrap();
    let entries: Vec<(&str, &str)> = history.iter().map(|h| (h.role.as_str(), h.text.as_str())).collect();
    assert_eq!(entries, [("user", "hello"), ("assistant", "echo: hello")]);
    assert_eq!(history[0].channel, Some(ChannelRef::new("telegram", "42")));

    let queued = store.inbound_in_state(InboundState::Queued).await.unwrap();
    assert_eq!(queued.len(), 1);
    assert_eq!((queued[0].0.id, queued[0].0.text.as_str(), queued[0].1.as_deref()), (2, "still waiting", Some("s")));

    let log = store.responses_after("telegram", 0, 10).await.unwrap();
    let texts: Vec<(u64, &str)> = log.iter().map(|r| (r.seq, r.text.as_str())).collect();
    assert_eq!(texts, [(1, "echo: hello"), (2, "commands: ...")]);
    assert_eq!(store.resume_cursor("tg-1", "telegram").await.unwrap(), 1);
    assert_eq!(store.last_seq().await.unwrap(), 2);

    // De-duplication keys survive; the next turn follows the old history.
    let resend = NewInbound {
        channel: ChannelRef::new("telegram", "42"),
        message_id: Some("m1".into()),
        sender: "ann".into(),
        text: "hello".into(),
        attachments: Vec::new(),
        trace_context: None,
    };
    assert!(store.accept_inbound(&resend).await.unwrap().is_none(), "still a duplicate");
    assert!(store.start_turn(2).await.unwrap());
    let history = store.last_messages("s", 10).await.unwrap();
    assert_eq!(history.last().unwrap().text, "still waiting");
    assert_eq!(history.len(), 3);
    store.close().await;
}
