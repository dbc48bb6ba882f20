//! Replicas: two gorpd in one process on one Postgres database (these tests
//! run in the Postgres pass only). Sessions are owned by one replica at a
//! time, messages reach the owner whichever replica accepted them, each
//! replica's subscribers get every response once in `seq` order, and a
//! replica that stops hands its sessions over. (Killing a replica's process
//! is in tests/e2e/replicas.rs.)

use crate::support::*;
use gorp_proto::v1 as pb;
use gorpd::testing::{HangOrEcho, TestServer, runs_on_postgres, test_config};
use std::collections::HashMap;
use std::time::Duration;

/// What replicas share: the database and the files directory.
#[derive(Clone)]
struct Shared {
    url: String,
    files_dir: std::path::PathBuf,
}

/// Replica `name` on what the first one uses (when `None`, this is the first), with HangOrEcho as the agent.
async fn replica(name: &str, shared: Option<&Shared>) -> (TestServer, Shared) {
    replica_with(name, shared, |_| {}).await
}

/// Like [`replica`], with `change` applied to its config.
async fn replica_with(
    name: &str,
    shared: Option<&Shared>,
    change: impl FnOnce(&mut gorpd::config::Config),
) -> (TestServer, Shared) {
    let temp = tempfile::tempdir().unwrap();
    let mut config = test_config(temp.path());
    let shared = match shared {
        Some(shared) => shared.clone(),
        None => Shared {
            url: gorpd::store::test_store_url(temp.path()).expect("runs on Postgres"),
            files_dir: temp.path().join("shared-files"),
        },
    };
    config.store_url = Some(shared.url.clone());
    config.files_dir = shared.files_dir.clone();
    config.replica_name = name.to_owned();
    config.lease_secs = 2;
    config.default_agent = "hang-or-echo".into();
    change(&mut config);
    let backends = gorpd::agent_backends(&config).with("hang-or-echo", HangOrEcho);
    let mut server = TestServer::start_with(config, backends).await;
    server.keep_dir(temp);
    (server, shared)
}

/// Replicas "a" and "b" on one database; `None` (the test is skipped) when the run is not on Postgres.
async fn two_replicas() -> Option<(TestServer, TestServer)> {
    if !runs_on_postgres() {
        eprintln!("skipped: replicas need GORP_TEST_POSTGRES");
        return None;
    }
    let (a, shared) = replica("a", None).await;
    let (b, _) = replica("b", Some(&shared)).await;
    Some((a, b))
}

/// Which replica owns each session, by replica name.
async fn owners(server: &TestServer) -> HashMap<String, String> {
    let replicas = server.store.replicas().await.unwrap();
    let name_of: HashMap<String, String> = replicas.into_iter().map(|r| (r.id, r.name)).collect();
    server
        .store
        .session_owners()
        .await
        .unwrap()
        .into_iter()
        .map(|(session, replica)| (session, name_of.get(&replica).cloned().unwrap_or(replica)))
        .collect()
}

#[tokio::test]
async fn two_replicas_answer_each_message_once_whichever_received_it() {
    let Some((a, b)) = two_replicas().await else { return };
    // One session created through each replica, both bound on both platforms.
    a.control().create_session(create("one")).await.unwrap();
    b.control().create_session(create("two")).await.unwrap();
    for (session, server) in [("one", &b), ("two", &a)] {
        server.control().bind_session(bind("tg", &format!("{session}-tg"), session)).await.unwrap();
        server.control().bind_session(bind("sl", &format!("{session}-sl"), session)).await.unwrap();
    }
    let mut telegram = Chat::open(&mut a.admin_bus(), "tg").await;
    let mut slack = Chat::open(&mut b.admin_bus(), "sl").await;

    // Interleaved from both platforms, to both sessions.
    let mut asked = Vec::new();
    for i in 0..8 {
        for session in ["one", "two"] {
            telegram.send(&format!("{session}-tg"), &format!("{session} tg {i}")).await;
            slack.send(&format!("{session}-sl"), &format!("{session} sl {i}")).await;
            asked.extend([format!("{session} tg {i}"), format!("{session} sl {i}")]);
        }
    }
    // Each platform gets every answer once, each session's in the order asked per platform.
    for chat in [&mut telegram, &mut slack] {
        let mut answers = Vec::new();
        let mut last_seq = 0;
        for _ in 0..asked.len() {
            let response = within(chat.response()).await;
            assert!(response.seq > last_seq, "in seq order");
            last_seq = response.seq;
            answers.push(response.text);
        }
        let mut sorted = answers.clone();
        sorted.sort();
        let mut expected: Vec<String> = asked.iter().map(|text| format!("echo: {text}")).collect();
        expected.sort();
        assert_eq!(sorted, expected, "every message answered once on this platform");
        for session in ["one", "two"] {
            for platform in ["tg", "sl"] {
                let prefix = format!("echo: {session} {platform} ");
                let order: Vec<&String> = answers.iter().filter(|a| a.starts_with(&prefix)).collect();
                let wanted: Vec<String> = (0..8).map(|i| format!("{prefix}{i}")).collect();
                assert_eq!(order, wanted.iter().collect::<Vec<_>>(), "per-session order");
            }
        }
        assert!(chat.subscriber.response_within(Duration::from_millis(300)).await.is_none(), "nothing more");
    }
    // Operators see both replicas from either.
    let info = b.control().get_server_info(pb::GetServerInfoRequest {}).await.unwrap().into_inner();
    assert_eq!((info.replica.as_str(), info.lease_secs), ("b", 2));
    let listed: Vec<(String, bool)> = info.replicas.iter().map(|r| (r.name.clone(), r.alive)).collect();
    assert_eq!(listed, [("a".to_owned(), true), ("b".to_owned(), true)]);
    assert_eq!(info.replicas.iter().map(|r| r.sessions).sum::<u64>(), 2, "each session owned once");
    // One owner per session, the same seen from either replica.
    let seen_from_a = owners(&a).await;
    assert_eq!(seen_from_a.len(), 2, "{seen_from_a:?}");
    assert_eq!(seen_from_a, owners(&b).await);

    // DISPATCH on either replica: a channel joined through b is answered through a.
    assert!(slack.ask("joiner", "!join one").await.contains("now bound to one"));
    let text = telegram.ask("one-tg", "after the join").await;
    assert_eq!(text, "echo: after the join");
    let on_slack = within(slack.response()).await;
    assert_eq!(on_slack.text, "echo: after the join", "the new binding is known to the owner");
    let history = b.control().read_history(pb::ReadHistoryRequest { session: "one".into(), count: 100 }).await;
    assert_eq!(
        history.unwrap().into_inner().entries.len(),
        2 * 16 + 2,
        "16 questions and the one after the join, answered"
    );
    b.stop().await.unwrap();
    a.stop().await.unwrap();
}

#[tokio::test]
async fn a_stopping_replica_hands_its_sessions_over_and_its_running_turn_is_reported_interrupted() {
    let Some((a, b)) = two_replicas().await else { return };
    a.control().create_session(create("work")).await.unwrap();
    a.control().bind_session(bind("tg", "w", "work")).await.unwrap();
    let mut chat_a = Chat::open(&mut a.admin_bus(), "tg").await;
    // A turn that never ends on a, and two messages queued behind it.
    chat_a.send("w", "hang on").await;
    wait_for_session(&a.control(), "work", |s| s.state == "busy").await;
    chat_a.send("w", "first after").await;
    chat_a.send("w", "second after").await;
    assert_eq!(owners(&b).await.get("work").map(String::as_str), Some("a"));

    a.stop().await.unwrap();
    // b takes over at once (a left): the turn is interrupted, never run again; the queue runs in order.
    // The gateway reconnects to b and resumes after what it acknowledged on a.
    let mut chat_b = Chat::open(&mut b.admin_bus(), "tg").await;
    let interrupted = within(chat_b.response()).await;
    assert!(interrupted.text.contains("was interrupted"), "{}", interrupted.text);
    assert!(interrupted.text.contains("hang on"), "{}", interrupted.text);
    assert_eq!(within(chat_b.response()).await.text, "echo: first after");
    assert_eq!(within(chat_b.response()).await.text, "echo: second after");
    assert_eq!(owners(&b).await.get("work").map(String::as_str), Some("b"));
    let history = b.control().read_history(pb::ReadHistoryRequest { session: "work".into(), count: 100 }).await;
    let roles: Vec<String> = history.unwrap().into_inner().entries.into_iter().map(|e| e.role).collect();
    assert_eq!(roles, ["user", "notice", "user", "assistant", "user", "assistant"]);
    b.stop().await.unwrap();
}

#[tokio::test]
async fn tokens_made_on_one_replica_work_on_the_other_and_revoking_ends_their_streams() {
    let Some((a, b)) = two_replicas().await else { return };
    let request =
        pb::CreateTokenRequest { name: "tg-gw".into(), kind: pb::TokenKind::Gateway as i32, platform: "tg".into() };
    let created = a.control().create_token(request).await.unwrap().into_inner();
    let id = created.token.unwrap().id;
    // b learns of the token from a's commit.
    let mut subscriber = eventually(|| {
        let mut bus = b.bus(&created.secret);
        async move { Subscriber::open(&mut bus, "tg", "tg", None).await.ok() }
    })
    .await;
    a.control().revoke_token(pb::RevokeTokenRequest { id }).await.unwrap();
    // The stream it opened on b ends, and b refuses it from now on.
    within(async { while subscriber.next().await.is_ok() {} }).await;
    assert!(Subscriber::open(&mut b.bus(&created.secret), "tg", "tg", None).await.is_err(), "refused on b too");
    b.stop().await.unwrap();
    a.stop().await.unwrap();
}

#[tokio::test]
async fn a_permission_request_is_answered_through_another_replica_and_a_cancel_reaches_the_owner() {
    let Some((a, b)) = two_replicas().await else { return };
    a.control().create_session(create("writer")).await.unwrap();
    a.control().bind_session(bind("tg", "w", "writer")).await.unwrap();
    a.control().bind_session(bind("sl", "w", "writer")).await.unwrap();
    let mut telegram = Chat::open(&mut a.admin_bus(), "tg").await;
    let mut slack = Chat::open(&mut b.admin_bus(), "sl").await;

    // The turn runs on a (it got the message); the request reaches slack through b.
    telegram.send("w", "ask before writing").await;
    let request = within(slack.response()).await;
    let id = request.permission.expect("a permission request").id;
    within(telegram.response()).await;
    let reply = slack.say("w", &format!("!approve {id}")).await;
    assert!(reply.dispatch && reply.text.contains("went to the replica running writer's turn"), "{}", reply.text);
    // a resolves it: the outcome reaches both channels (slack's too), then the answer.
    for chat in [&mut telegram, &mut slack] {
        let outcome = within(chat.response()).await;
        assert!(outcome.text.contains("approved by"), "{}", outcome.text);
        assert!(outcome.text.contains("(sl:w)"), "{}", outcome.text);
        assert_eq!(within(chat.response()).await.text, "decision: yes");
    }
    let unknown = slack.say("w", "!approve zzzz").await;
    assert!(unknown.text.contains("o pending permission request zzzz"), "{}", unknown.text);

    // A turn on a cancelled from b.
    telegram.send("w", "hang on").await;
    wait_for_session(&b.control(), "writer", |s| s.state == "busy").await;
    let reply = slack.say("w", "!cancel").await;
    assert!(reply.text.contains("Cancelling writer's turn"), "{}", reply.text);
    let cancelled = within(telegram.response()).await;
    assert!(cancelled.text.contains("was cancelled by"), "{}", cancelled.text);
    b.stop().await.unwrap();
    a.stop().await.unwrap();
}

#[tokio::test]
async fn an_answer_streams_to_a_gateway_connected_to_another_replica() {
    let Some((a, b)) = two_replicas().await else { return };
    a.control().create_session(create("stream")).await.unwrap();
    a.control().bind_session(bind("tg", "s", "stream")).await.unwrap();
    let mut on_b = Subscriber::open_live(&mut b.admin_bus(), "tg", "tg-on-b").await;
    // Published through a, so a owns the session and runs the turn. The
    // first answer makes sure a heard that b started (b announces it), so the
    // second streams to b from its first chunk.
    let mut publisher = Publisher::open(&mut a.admin_bus()).await.unwrap();
    publisher.publish(message("tg", "s", "m0", "warm up")).await;
    assert_eq!(on_b.response().await.text, "echo: warm up");
    publisher.publish(message("tg", "s", "m1", "one two three four five")).await;
    let mut streamed = String::new();
    let answer = loop {
        match on_b.next().await.unwrap().kind {
            Some(pb::delivery::Kind::Chunk(chunk)) => streamed.push_str(&chunk.text),
            Some(pb::delivery::Kind::Response(response)) => break response,
            _ => {}
        }
    };
    assert_eq!(answer.text, "echo: one two three four five");
    // Chunks are best effort and travel apart from the answer: the last ones may come after it.
    assert!(!streamed.is_empty() && answer.text.starts_with(&streamed), "a's chunks reached b's gateway: {streamed:?}");
    assert_eq!(owners(&b).await.get("stream").map(String::as_str), Some("a"));
    b.stop().await.unwrap();
    a.stop().await.unwrap();
}

#[tokio::test]
async fn a_file_sent_through_one_replica_reaches_the_turn_on_the_other_through_the_shared_files_dir() {
    let Some((a, b)) = two_replicas().await else { return };
    a.control().create_session(create("files")).await.unwrap();
    a.control().bind_session(bind("tg", "f", "files")).await.unwrap();
    a.control().bind_session(bind("sl", "f", "files")).await.unwrap();
    let mut telegram = Chat::open(&mut a.admin_bus(), "tg").await;
    assert_eq!(telegram.ask("f", "hello").await, "echo: hello", "a owns the session");
    let mut slack = Chat::open(&mut b.admin_bus(), "sl").await;
    within(slack.response()).await;

    let bytes = b"notes from slack".to_vec();
    let uploaded = b.client().await.upload(std::io::Cursor::new(bytes.clone()), bytes.len() as u64).await.unwrap();
    let file = pb::Attachment { name: "notes.txt".into(), sha256: uploaded.sha256.clone(), ..Default::default() };
    let answer = slack.say_with("f", "look", vec![file]).await;
    assert!(answer.text.starts_with("echo: look\n[attached file notes.txt"), "{}", answer.text);
    assert_eq!(owners(&b).await.get("files").map(String::as_str), Some("a"), "the turn ran on a");
    assert_eq!(a.client().await.download(&uploaded.sha256).await.unwrap(), bytes, "a serves what b stored");
    b.stop().await.unwrap();
    a.stop().await.unwrap();
}

#[tokio::test]
async fn a_web_login_works_on_every_replica_and_a_logout_ends_it_on_all() {
    let Some((a, b)) = two_replicas().await else { return };
    let on_a = crate::web::Browser::login(&a).await;
    let on_b = on_a.at(&b);
    assert!(on_b.page("/").await.contains(&on_a.csrf), "b knows the session a started");
    let out = on_a.post("/logout", &[("csrf", on_a.csrf.as_str())]).await;
    assert_eq!(out.status(), reqwest::StatusCode::SEE_OTHER);
    eventually(|| {
        let on_b = &on_b;
        async move { (on_b.get("/").await.status() == reqwest::StatusCode::SEE_OTHER).then_some(()) }
    })
    .await;
    b.stop().await.unwrap();
    a.stop().await.unwrap();
}

#[tokio::test]
async fn a_session_deleted_through_one_replica_and_made_again_is_answered_through_either() {
    let Some((a, b)) = two_replicas().await else { return };
    let mut telegram = Chat::open(&mut a.admin_bus(), "tg").await;
    let mut slack = Chat::open(&mut b.admin_bus(), "sl").await;
    for round in 0..3 {
        // Made through b, owned by a (its first message came through a), deleted through b.
        b.control().create_session(create("again")).await.unwrap();
        b.control().bind_session(bind("tg", "x", "again")).await.unwrap();
        b.control().bind_session(bind("sl", "x", "again")).await.unwrap();
        assert_eq!(telegram.ask("x", &format!("first {round}")).await, format!("echo: first {round}"));
        assert_eq!(within(slack.response()).await.text, format!("echo: first {round}"));
        assert_eq!(slack.ask("x", &format!("second {round}")).await, format!("echo: second {round}"));
        assert_eq!(within(telegram.response()).await.text, format!("echo: second {round}"));
        b.control().delete_session(pb::DeleteSessionRequest { name: "again".into() }).await.unwrap();
        for chat in [&mut telegram, &mut slack] {
            assert!(within(chat.response()).await.text.contains("was deleted"));
        }
        assert!(owners(&a).await.is_empty(), "the lease went with the session");
    }
    b.stop().await.unwrap();
    a.stop().await.unwrap();
}

#[tokio::test]
async fn a_full_queue_never_holds_up_the_renewal_of_the_registration() {
    if !runs_on_postgres() {
        eprintln!("skipped: replicas need GORP_TEST_POSTGRES");
        return;
    }
    let (a, _) = replica_with("a", None, |config| config.max_queued_messages = 2).await;
    a.control().create_session(create("busy")).await.unwrap();
    a.control().bind_session(bind("tg", "b", "busy")).await.unwrap();
    let mut telegram = Chat::open(&mut a.admin_bus(), "tg").await;
    // A turn that never ends, and two messages behind it holding both queue slots.
    telegram.send("b", "hang on").await;
    wait_for_session(&a.control(), "busy", |s| s.state == "busy").await;
    telegram.send("b", "one").await;
    telegram.send("b", "two").await;
    // Scans (every third of the 2 s lease) find both queued messages again
    // meanwhile; the registration is renewed all the same.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let replicas = a.store.replicas().await.unwrap();
    assert!(replicas.len() == 1 && replicas[0].alive, "{replicas:?}");
    a.stop().await.unwrap();
}
