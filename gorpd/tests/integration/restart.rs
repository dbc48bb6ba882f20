//! Restarts and shutdown: state survives, in-flight turns are reported as
//! interrupted, queued messages are still answered, streams end cleanly.

use crate::support::*;
use gorp_proto::v1 as pb;
use gorpd::testing::TestServer;
use std::time::Duration;

#[tokio::test]
async fn a_restart_keeps_sessions_bindings_history_and_undelivered_responses() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_in(dir.path()).await;
    let admin_token = server.admin_token.clone();
    let mut control = server.control();
    control.create_session(create("keep")).await.unwrap();
    control.bind_session(bind("web", "tab", "keep")).await.unwrap();
    control.bind_session(bind("telegram", "chat-1", "keep")).await.unwrap();
    let mut telegram = Subscriber::open(&mut server.admin_bus(), "telegram", "tg", None).await.unwrap();
    let mut web = Chat::open(&mut server.admin_bus(), "web").await;
    let first = web.say("tab", "one").await;
    let seen = telegram.response().await;
    assert_eq!(seen.response_id, first.response_id);
    telegram.ack(seen.seq).await;
    wait_for_gateway(&control, "tg", |g| g.acked_seq == seen.seq).await;
    drop(telegram);
    // Answers produced while the telegram gateway is away.
    web.say("tab", "two").await;
    web.say("tab", "three").await;
    drop(web);
    server.stop().await.unwrap();

    let server = TestServer::start_in(dir.path()).await;
    assert_eq!(server.admin_token, admin_token, "the admin token survives");
    let mut control = server.control();
    let session = control.get_session(pb::GetSessionRequest { name: "keep".into() }).await.unwrap().into_inner();
    assert_eq!(session.channels, vec![channel("telegram", "chat-1"), channel("web", "tab")]);
    let history =
        control.read_history(pb::ReadHistoryRequest { session: "keep".into(), count: 0 }).await.unwrap().into_inner();
    let texts: Vec<_> = history.entries.iter().map(|e| e.text.as_str()).collect();
    assert_eq!(texts, ["one", "echo: one", "two", "echo: two", "three", "echo: three"]);

    let mut telegram = Subscriber::open(&mut server.admin_bus(), "telegram", "tg", None).await.unwrap();
    assert_eq!(telegram.response().await.text, "echo: two");
    assert_eq!(telegram.response().await.text, "echo: three");
    assert!(telegram.response_within(Duration::from_millis(300)).await.is_none());
    // The restored binding routes new messages to the session.
    let mut web = Chat::open(&mut server.admin_bus(), "web").await;
    assert_eq!(web.ask("tab", "four").await, "echo: four");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_turn_in_flight_at_shutdown_is_reported_interrupted_and_the_queue_survives() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_with_hang(dir.path()).await;
    let mut control = server.control();
    control.create_session(create("worker")).await.unwrap();
    control.bind_session(bind("web", "tab", "worker")).await.unwrap();
    let mut web = Chat::open(&mut server.admin_bus(), "web").await;
    let hung = web.send("tab", "hang on this task").await;
    wait_for_state(&control, "worker", "busy").await;
    web.send("tab", "next in line").await;
    drop(web);
    within(server.stop()).await.unwrap();

    let server = start_with_hang(dir.path()).await;
    let mut web = Subscriber::open(&mut server.admin_bus(), "web", "web", None).await.unwrap();
    let notice = web.response().await;
    assert_eq!(notice.kind, pb::ResponseKind::Notice as i32);
    assert_eq!(notice.in_reply_to, hung);
    let reply_to = notice.reply_to.clone().expect("the stored response names the message it answers");
    assert_eq!((reply_to.channel, reply_to.message_id), (Some(channel("web", "tab")), hung.clone()));
    assert!(notice.text.contains("interrupted") && notice.text.contains("hang on this task"), "{}", notice.text);
    assert_eq!(notice.targets, vec![channel("web", "tab")]);
    web.ack(notice.seq).await;
    assert_eq!(web.response().await.text, "echo: next in line", "the queued message is answered after the restart");
    let history = server
        .control()
        .read_history(pb::ReadHistoryRequest { session: "worker".into(), count: 0 })
        .await
        .unwrap()
        .into_inner();
    let roles: Vec<_> = history.entries.iter().map(|e| e.role.as_str()).collect();
    // A message enters the history when its turn starts, so the queued one follows the notice.
    assert_eq!(roles, ["user", "notice", "user", "assistant"]);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn shutdown_ends_open_streams_with_unavailable() {
    let server = TestServer::start().await;
    let mut bus = server.admin_bus();
    // Live before publishing, so no caught_up can follow the response.
    let mut subscriber = Subscriber::open_live(&mut bus, "web", "web").await;
    let mut publisher = Publisher::open(&mut bus).await.unwrap();
    let mut watch = server.control().watch(pb::WatchRequest {}).await.unwrap().into_inner();
    publisher.publish(message("web", "t", "m1", "!help")).await;
    subscriber.response().await;

    within(server.stop()).await.unwrap();
    let ended = subscriber.next().await.unwrap_err();
    assert_eq!(ended.code(), tonic::Code::Unavailable, "{ended:?}");
    assert!(ended.message().contains("shutting down"));
    let ended = loop {
        match within(watch.message()).await {
            Ok(Some(_)) => continue,
            other => break other,
        }
    };
    assert_eq!(ended.unwrap_err().code(), tonic::Code::Unavailable);
    assert_eq!(publisher.ack().await.unwrap_err().code(), tonic::Code::Unavailable);
}

#[tokio::test]
async fn a_second_gorpd_on_the_same_data_directory_is_refused() {
    let server = TestServer::start().await;
    let config = gorpd::testing::test_config(&server.data_dir);
    let backends = gorpd::agent_backends(&config);
    let shutdown = tokio_util::sync::CancellationToken::new();
    let error = gorpd::Gorpd::open(config, backends, shutdown).await.unwrap_err();
    assert!(matches!(error, gorpd::ServeError::DataDirInUse(_)), "{error}");
    assert!(error.to_string().contains("gorpd.lock"), "{error}");
    server.stop().await.unwrap();
}
