//! Delivery promises: duplicates, per-session order, parallel sessions,
//! resume with cursors, lag fallback, and per-platform routing.

use crate::support::*;
use gorp_proto::v1 as pb;
use gorpd::testing::{TestServer, test_config};
use std::time::Duration;

#[tokio::test]
async fn a_duplicate_publish_is_acknowledged_and_reaches_the_agent_once() {
    let server = TestServer::start().await;
    let mut control = server.control();
    control.create_session(create("dup")).await.unwrap();
    control.bind_session(bind("telegram", "42", "dup")).await.unwrap();
    let mut bus = server.admin_bus();
    let mut subscriber = Subscriber::open(&mut bus, "telegram", "tg", None).await.unwrap();
    let mut publisher = Publisher::open(&mut bus).await.unwrap();

    let first = publisher.publish(message("telegram", "42", "m-1", "only once")).await;
    assert_eq!(first.status, pb::PublishStatus::Accepted as i32);
    // A gateway retrying after a lost ack, on the same stream and on a new one.
    let again = publisher.publish(message("telegram", "42", "m-1", "only once")).await;
    assert_eq!((again.status, again.message_id.as_str()), (pb::PublishStatus::Duplicate as i32, "m-1"));
    let mut other_stream = Publisher::open(&mut bus).await.unwrap();
    let third = other_stream.publish(message("telegram", "42", "m-1", "only once")).await;
    assert_eq!(third.status, pb::PublishStatus::Duplicate as i32);

    let answer = subscriber.response().await;
    assert_eq!(answer.text, "echo: only once");
    assert!(subscriber.response_within(Duration::from_millis(300)).await.is_none(), "answered once");
    let history =
        control.read_history(pb::ReadHistoryRequest { session: "dup".into(), count: 0 }).await.unwrap().into_inner();
    let roles: Vec<_> = history.entries.iter().map(|e| e.role.as_str()).collect();
    assert_eq!(roles, ["user", "assistant"]);
    assert_eq!(server.store.inbound_count().await.unwrap(), 1);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn concurrent_publishes_to_one_session_are_answered_in_order() {
    let server = TestServer::start().await;
    let mut control = server.control();
    control.create_session(create("fifo")).await.unwrap();
    control.bind_session(bind("slack", "C1", "fifo")).await.unwrap();
    let mut bus = server.admin_bus();
    let mut subscriber = Subscriber::open(&mut bus, "slack", "slack", None).await.unwrap();

    // Three gateways' streams publish at once, each pipelining without waiting for acks.
    let mut tasks = Vec::new();
    for stream in 0..3 {
        let mut bus = server.admin_bus();
        tasks.push(tokio::spawn(async move {
            let mut publisher = Publisher::open(&mut bus).await.unwrap();
            for i in 0..20 {
                publisher.send(message("slack", "C1", &format!("s{stream}-{i}"), &format!("s{stream} n{i}"))).await;
            }
            for _ in 0..20 {
                assert_eq!(publisher.ack().await.unwrap().status, pb::PublishStatus::Accepted as i32);
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let mut answered = Vec::new();
    let mut last_seq = 0;
    for _ in 0..60 {
        let response = subscriber.response().await;
        assert!(response.seq > last_seq, "seq increases");
        last_seq = response.seq;
        answered.push(response.text);
    }
    for stream in 0..3 {
        let prefix = format!("echo: s{stream} ");
        let mine: Vec<_> = answered.iter().filter(|t| t.starts_with(&prefix)).cloned().collect();
        let expected: Vec<_> = (0..20).map(|i| format!("{prefix}n{i}")).collect();
        assert_eq!(mine, expected, "each stream's messages are answered in the order sent");
    }
    // The questions in the session history (its last 100 entries) come in the answers' order.
    let history =
        control.read_history(pb::ReadHistoryRequest { session: "fifo".into(), count: 100 }).await.unwrap().into_inner();
    let users: Vec<_> =
        history.entries.iter().filter(|e| e.role == "user").map(|e| format!("echo: {}", e.text)).collect();
    assert!(users.len() >= 40 && answered.ends_with(&users), "{users:?}");
    // A busy session starts each next turn in the commit of the answer before
    // it: the history still alternates, each answer right after its question.
    let entries = &history.entries[history.entries.iter().position(|e| e.role == "user").unwrap()..];
    for pair in entries.chunks(2) {
        let [question, answer] = pair else { panic!("a question without its answer: {pair:?}") };
        assert_eq!((question.role.as_str(), answer.role.as_str()), ("user", "assistant"));
        assert_eq!(answer.text, format!("echo: {}", question.text));
    }
    server.stop().await.unwrap();
}

#[tokio::test]
async fn sessions_run_in_parallel() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_with_hang(dir.path()).await;
    let mut control = server.control();
    for name in ["slow", "fast"] {
        control.create_session(create(name)).await.unwrap();
        control.bind_session(bind("web", name, name)).await.unwrap();
    }
    let mut chat = Chat::open(&mut server.admin_bus(), "web").await;
    chat.send("slow", "hang forever").await;
    wait_for_state(&control, "slow", "busy").await;
    assert_eq!(chat.ask("fast", "still here?").await, "echo: still here?");
    let status = control.get_session(pb::GetSessionRequest { name: "slow".into() }).await.unwrap().into_inner();
    assert_eq!(status.state, "busy");
    chat.send("slow", "queued behind").await;
    wait_for_session(&control, "slow", |s| s.queued == 1).await;
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_reconnecting_subscriber_receives_every_missed_final_exactly_once() {
    let server = TestServer::start().await;
    let mut control = server.control();
    control.create_session(create("r")).await.unwrap();
    control.bind_session(bind("matrix", "!room", "r")).await.unwrap();
    let mut bus = server.admin_bus();

    let mut first = Subscriber::open(&mut bus, "matrix", "mx-1", None).await.unwrap();
    for i in 0..3 {
        control.tell(tell("r", &format!("before {i}"))).await.unwrap();
    }
    let mut acked = 0;
    for i in 0..3 {
        let response = first.response().await;
        assert_eq!(response.text, format!("echo: before {i}"));
        if i < 2 {
            first.ack(response.seq).await;
            acked = response.seq;
        }
    }
    // Make sure the acks landed, then disconnect mid-stream with "before 2" unacknowledged.
    wait_for_gateway(&control, "mx-1", |g| g.acked_seq == acked).await;
    drop(first);
    for i in 0..5 {
        control.tell(tell("r", &format!("while away {i}"))).await.unwrap();
    }
    wait_until_answered(&control, "r", 16).await;
    let gateways = control.list_gateways(pb::ListGatewaysRequest {}).await.unwrap().into_inner().gateways;
    let gateway = gateways.iter().find(|g| g.gateway_id == "mx-1").unwrap();
    assert_eq!((gateway.pending, gateway.platform.as_str()), (6, "matrix"));

    let mut again = Subscriber::open(&mut bus, "matrix", "mx-1", None).await.unwrap();
    let expected: Vec<String> =
        std::iter::once("echo: before 2".to_owned()).chain((0..5).map(|i| format!("echo: while away {i}"))).collect();
    let mut received = Vec::new();
    for _ in 0..expected.len() {
        let response = again.response().await;
        again.ack(response.seq).await;
        received.push(response.text);
    }
    assert_eq!(received, expected);
    assert!(again.response_within(Duration::from_millis(300)).await.is_none(), "no duplicates after the replay");
    control.tell(tell("r", "live again")).await.unwrap();
    assert_eq!(again.response().await.text, "echo: live again", "the stream goes live after the replay");

    // An explicit cursor replays from there, whatever the stored cursor says.
    let mut from_cursor = Subscriber::open(&mut bus, "matrix", "audit", Some(acked)).await.unwrap();
    assert_eq!(from_cursor.response().await.text, "echo: before 2");
    server.stop().await.unwrap();
}

/// Waits until a session is idle with `entries` history entries.
async fn wait_until_answered(control: &gorpd::testing::Control, session: &str, entries: u64) {
    wait_for_session(control, session, |s| s.message_count >= entries && s.state == "idle").await
}

#[tokio::test]
async fn a_lagging_subscriber_falls_back_to_replay_and_misses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    config.live_buffer = 2;
    let backends = gorpd::agent_backends(&config);
    let server = TestServer::start_with(config, backends).await;
    let mut control = server.control();
    control.create_session(create("busy")).await.unwrap();
    control.bind_session(bind("web", "tab", "busy")).await.unwrap();
    let mut subscriber = Subscriber::open(&mut server.admin_bus(), "web", "web", None).await.unwrap();

    // Far more than the HTTP/2 window and the stream buffer hold, while the client reads nothing.
    let big = "x".repeat(4000);
    let total = 150;
    for i in 0..total {
        control.tell(tell("busy", &format!("{i} {big}"))).await.unwrap();
    }
    wait_until_answered(&control, "busy", 2 * total).await;
    let mut last_seq = 0;
    for i in 0..total {
        let response = subscriber.response().await;
        assert!(response.seq > last_seq, "in order, no duplicates");
        last_seq = response.seq;
        assert_eq!(response.text, format!("echo: {i} {big}"));
    }
    assert!(subscriber.response_within(Duration::from_millis(300)).await.is_none());
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_gateway_receives_only_its_platform_and_chunks_share_the_response_id() {
    let server = TestServer::start().await;
    let mut control = server.control();
    control.create_session(create("multi")).await.unwrap();
    control.bind_session(bind("slack", "C9", "multi")).await.unwrap();
    control.bind_session(bind("telegram", "77", "multi")).await.unwrap();
    let mut bus = server.admin_bus();
    // Chunks are live only: wait until the stream is live before the answer starts.
    let mut slack = Subscriber::open_live(&mut bus, "slack", "slack").await;
    let mut matrix = Subscriber::open(&mut bus, "matrix", "matrix", None).await.unwrap();
    control.tell(tell("multi", "fan out")).await.unwrap();

    let mut chunk_ids = Vec::new();
    let response = loop {
        match slack.next().await.unwrap().kind.unwrap() {
            pb::delivery::Kind::Chunk(chunk) => {
                assert_eq!(chunk.targets, vec![channel("slack", "C9")]);
                chunk_ids.push(chunk.response_id);
            }
            pb::delivery::Kind::Response(response) => break response,
            pb::delivery::Kind::CaughtUp(_) => {}
        }
    };
    assert_eq!(response.targets, vec![channel("slack", "C9")], "only this platform's channels are named");
    assert!(!chunk_ids.is_empty() && chunk_ids.iter().all(|id| *id == response.response_id));
    assert!(matrix.response_within(Duration::from_millis(300)).await.is_none(), "matrix has no bound channel");
    server.stop().await.unwrap();
}
