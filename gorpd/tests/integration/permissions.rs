//! Permission requests: every bound channel sees them, the first answer wins,
//! the others are told, silence denies.

use crate::support::*;
use gorp_proto::v1 as pb;
use std::time::Duration;

fn permission(response: &pb::Response) -> &pb::Permission {
    response.permission.as_ref().expect("a permission notice")
}

#[tokio::test]
async fn an_approval_from_one_channel_resolves_it_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_with_hang(dir.path()).await;
    let mut control = server.control();
    control.create_session(create("writer")).await.unwrap();
    control.bind_session(bind("web", "tab", "writer")).await.unwrap();
    control.bind_session(bind("telegram", "42", "writer")).await.unwrap();
    let mut web = Chat::open(&mut server.admin_bus(), "web").await;
    let mut telegram = Chat::open(&mut server.admin_bus(), "telegram").await;

    let asked = web.send("tab", "ask before writing").await;
    let on_web = web.response().await;
    let on_telegram = telegram.response().await;
    assert_eq!(on_web.kind, pb::ResponseKind::Notice as i32);
    assert_eq!(on_web.in_reply_to, asked);
    let reply_to = on_telegram.reply_to.clone().expect("reply_to");
    assert_eq!(reply_to.channel.unwrap().platform, "web", "the message answered is in the web channel only");
    let request = permission(&on_web).clone();
    assert_eq!(request.state, pb::PermissionState::Pending as i32);
    assert_eq!(request.title, "write notes.txt");
    assert_eq!(request.options.len(), 3);
    assert_eq!(permission(&on_telegram).id, request.id, "every bound channel sees the same request");
    assert!(on_web.text.contains(&format!("!approve {}", request.id)), "{}", on_web.text);

    let reply = telegram.say("42", &format!("!approve {}", request.id)).await;
    assert!(reply.dispatch && reply.text.contains("approved by alice (telegram:42)"), "{}", reply.text);
    let resolved = web.response().await;
    assert_eq!(permission(&resolved).state, pb::PermissionState::Approved as i32);
    assert_eq!(permission(&resolved).resolved_by, "alice (telegram:42)");
    assert_eq!(web.response().await.text, "decision: yes", "the agent got the allow-once option");
    assert_eq!(telegram.response().await.text, "decision: yes");

    let late = web.say("tab", &format!("!deny {}", request.id)).await;
    assert_eq!(late.kind, pb::ResponseKind::Error as i32);
    assert!(late.text.contains("already resolved: approved by alice (telegram:42)"), "{}", late.text);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn approve_always_picks_the_always_option_and_strangers_cannot_answer() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_with_hang(dir.path()).await;
    let mut control = server.control();
    control.create_session(create("w")).await.unwrap();
    control.bind_session(bind("web", "tab", "w")).await.unwrap();
    let mut web = Chat::open(&mut server.admin_bus(), "web").await;
    web.send("tab", "ask please").await;
    let id = permission(&web.response().await).id.clone();

    let stranger = web.say("elsewhere", &format!("!approve {id}")).await;
    assert!(stranger.text.contains("answer it from a channel bound to w"), "{}", stranger.text);
    let unknown = web.say("tab", "!approve zzzz").await;
    assert!(unknown.text.contains("No pending permission request zzzz"), "{}", unknown.text);
    assert!(web.say("tab", "!approve").await.text.starts_with("Usage: !approve <id> [always] or !deny <id>"));

    web.say("tab", &format!("!approve {id} always")).await;
    assert_eq!(web.response().await.text, "decision: yes-always");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn an_unanswered_request_is_denied_after_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_with_hang_and(dir.path(), |config| config.permission_timeout_secs = 1).await;
    let mut control = server.control();
    control.create_session(create("w")).await.unwrap();
    control.bind_session(bind("web", "tab", "w")).await.unwrap();
    let mut web = Chat::open(&mut server.admin_bus(), "web").await;
    web.send("tab", "ask and wait").await;
    let asked = web.response().await;
    assert_eq!(permission(&asked).state, pb::PermissionState::Pending as i32);
    let timed_out = tokio::time::timeout(Duration::from_secs(10), web.response()).await.unwrap();
    assert_eq!(permission(&timed_out).state, pb::PermissionState::TimedOut as i32);
    assert!(timed_out.text.contains("denied: nobody answered in time"), "{}", timed_out.text);
    assert_eq!(web.response().await.text, "decision: no", "the agent got the reject option");
    server.stop().await.unwrap();
}
