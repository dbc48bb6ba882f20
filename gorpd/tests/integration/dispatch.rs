//! DISPATCH through the Bus: every command, its errors, and reply routing.

use crate::support::*;
use gorp_proto::v1 as pb;
use gorpd::testing::TestServer;

#[tokio::test]
async fn zero_config_flow_help_create_join_chat_leave() {
    let server = TestServer::start().await;
    let mut chat = Chat::open(&mut server.admin_bus(), "web").await;

    let help = chat.say("tab1", "!help").await;
    assert!(help.dispatch && help.text.contains("!create <name>"), "{help:?}");
    assert_eq!(help.kind, pb::ResponseKind::Complete as i32);

    assert!(chat.ask("tab1", "!create research").await.contains("Created session research"));
    assert!(chat.ask("tab1", "!join research").await.contains("now bound to research"));

    let id = chat.send("tab1", "hello agent").await;
    let mut chunks = String::new();
    let answer = loop {
        match chat.subscriber.next().await.unwrap().kind.unwrap() {
            pb::delivery::Kind::Chunk(chunk) => chunks.push_str(&chunk.text),
            pb::delivery::Kind::Response(response) => break response,
            pb::delivery::Kind::CaughtUp(_) => {}
        }
    };
    assert_eq!(answer.text, "echo: hello agent");
    assert_eq!(chunks, answer.text, "the chunks add up to the final answer");
    assert_eq!(
        (answer.session.as_str(), answer.in_reply_to.as_str(), answer.dispatch),
        ("research", id.as_str(), false)
    );
    assert_eq!(answer.targets, vec![channel("web", "tab1")]);

    assert!(chat.ask("tab1", "!leave").await.contains("Left research"));
    assert!(chat.ask("tab1", "just text").await.contains("not bound to a session"));
    server.stop().await.unwrap();
}

#[tokio::test]
async fn every_command_answers_and_explains_misuse() {
    let server = TestServer::start().await;
    let mut chat = Chat::open(&mut server.admin_bus(), "web").await;
    let cases: &[(&str, &str)] = &[
        ("!list", "No sessions yet"),
        ("!create", "Usage: !create <name> [workspace]"),
        ("!create Bad!", "Session name \"Bad!\" is invalid"),
        ("!create ../x", "is invalid"),
        ("!create ok ../../etc", "must be a relative path inside the workspace root"),
        ("!create ok /etc", "must be a relative path"),
        ("!create alpha", "Created session alpha"),
        ("!create alpha", "Session \"alpha\" already exists"),
        ("!create beta shared/beta", "shared/beta"),
        ("!list", "Sessions (2):\n• alpha — echo, idle, 0 channels\n• beta — echo, idle, 0 channels"),
        ("!status", "Usage: !status <name>"),
        ("!status nope", "Unknown session \"nope\""),
        ("!status alpha", "Session alpha\nstate: idle\nagent: echo"),
        ("!join", "Usage: !join <name>"),
        ("!join nope", "Unknown session \"nope\""),
        ("!leave", "not bound to a session; there is nothing to leave"),
        ("!tell", "Usage: !tell <session> <message>"),
        ("!tell alpha", "Usage: !tell <session> <message>"),
        ("!tell nope hi", "Unknown session \"nope\""),
        ("!tell alpha first message", "Sent to alpha. It has no bound channels"),
        ("!read", "Usage: !read <session> [count]"),
        ("!read nope", "Unknown session \"nope\""),
        ("!read alpha zero", "Count must be a number from 1 to 100"),
        ("!read alpha 0", "Count must be a number from 1 to 100"),
        ("!broadcast", "Usage: !broadcast <message>"),
        ("!delete", "Usage: !delete <name>"),
        ("!delete nope", "Unknown session \"nope\""),
        ("!create gamma --agent nope", "Unknown agent profile \"nope\" (known: echo)"),
        ("!create gamma --agent", "Usage: !create <name> [workspace] [--agent <profile>]"),
        ("!create gamma --agent echo", "Created session gamma (agent echo"),
        ("!status gamma", "agent: echo (built in)\nworkspace:"),
        ("!frobnicate", "Unknown command !frobnicate. !help lists the commands."),
        ("plain words", "not bound to a session, so DISPATCH is listening"),
    ];
    for (command, expected) in cases {
        let reply = chat.say("c1", command).await;
        assert!(reply.text.contains(expected), "{command:?} answered {:?}, expected {expected:?}", reply.text);
        let ok = !expected.starts_with("Usage")
            && !expected.contains("invalid")
            && !expected.contains("Unknown")
            && !expected.contains("already")
            && !expected.contains("must")
            && !expected.contains("nothing to leave")
            && !expected.contains("not bound");
        let kind = if ok { pb::ResponseKind::Complete } else { pb::ResponseKind::Error };
        assert_eq!(reply.kind, kind as i32, "{command:?}");
    }
    let root = server.data_dir.join("workspaces");
    assert!(root.join("alpha").is_dir() && root.join("shared/beta").is_dir());
    assert!(!root.join("ok").exists(), "a refused create made nothing");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn tell_read_broadcast_and_delete() {
    let server = TestServer::start().await;
    let mut chat = Chat::open(&mut server.admin_bus(), "web").await;
    chat.ask("ops", "!create a").await;
    chat.ask("ops", "!create b").await;
    chat.ask("room-a", "!join a").await;

    assert!(chat.ask("ops", "!tell a do the thing").await.contains("Its answer goes to its 1 bound channel(s)"));
    let answer = chat.response().await;
    assert_eq!((answer.text.as_str(), answer.targets.clone()), ("echo: do the thing", vec![channel("web", "room-a")]));

    for i in 1..=12 {
        chat.say("room-a", &format!("message {i}")).await;
    }
    let read = chat.ask("ops", "!read a").await;
    assert!(read.starts_with("Last 10 message(s) of a:"), "{read}");
    assert!(read.ends_with("a (assistant): echo: message 12"), "{read}");
    assert!(chat.ask("ops", "!read a 3").await.contains("Last 3 message(s)"));
    assert!(chat.ask("ops", "!read a 1000").await.contains("(at most 100)"));

    let told = chat.ask("ops", "!broadcast status report please").await;
    assert_eq!(told, "Sent to 2 session(s): a, b.");
    assert_eq!(chat.response().await.text, "echo: status report please");
    let status = chat.ask("ops", "!status b").await;
    assert!(status.contains("channels: none"), "{status}");

    let deleted = chat.ask("ops", "!delete a").await;
    assert!(deleted.contains("Deleted session a; unbound web:room-a") && deleted.contains("was kept"), "{deleted}");
    let notice = chat.response().await;
    assert_eq!(notice.kind, pb::ResponseKind::Notice as i32);
    assert_eq!(notice.targets, vec![channel("web", "room-a")]);
    assert!(server.data_dir.join("workspaces/a").is_dir(), "files are kept");
    assert!(chat.ask("room-a", "hello?").await.contains("not bound"), "the channel is back with DISPATCH");
    assert!(chat.ask("ops", "!read a").await.contains("Unknown session"));
    server.stop().await.unwrap();
}

#[tokio::test]
async fn commands_in_a_bound_channel_reach_dispatch_and_other_text_reaches_the_session() {
    let server = TestServer::start().await;
    let mut chat = Chat::open(&mut server.admin_bus(), "web").await;
    chat.ask("c", "!create s1").await;
    chat.ask("c", "!create s2").await;
    chat.ask("c", "!join s1").await;
    assert!(chat.say("c", "!status s1").await.dispatch);
    assert_eq!(chat.ask("c", "!deploy prod").await, "echo: !deploy prod", "unknown !words go to the agent");
    assert!(chat.ask("c", "!join s2").await.contains("now talks to s2 (it was bound to s1)"));
    assert_eq!(chat.say("c", "hi").await.session, "s2");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_dispatch_reply_reaches_only_the_asking_channel() {
    let server = TestServer::start().await;
    let mut web = Chat::open(&mut server.admin_bus(), "web").await;
    let mut telegram = Chat::open(&mut server.admin_bus(), "telegram").await;
    web.ask("w1", "!create shared").await;
    web.ask("w1", "!join shared").await;
    telegram.ask("t1", "!join shared").await;

    let reply = web.say("w1", "!list").await;
    assert_eq!(reply.targets, vec![channel("web", "w1")]);
    assert!(
        telegram.subscriber.response_within(std::time::Duration::from_millis(500)).await.is_none(),
        "telegram saw nothing"
    );

    // A session answer reaches every bound channel, on every platform.
    let answer = web.say("w1", "to everyone").await;
    assert_eq!(answer.targets, vec![channel("web", "w1")], "each platform sees only its own channels");
    let on_telegram = telegram.subscriber.response().await;
    assert_eq!(
        (on_telegram.text.as_str(), on_telegram.response_id.as_str()),
        ("echo: to everyone", answer.response_id.as_str())
    );
    assert_eq!(on_telegram.targets, vec![channel("telegram", "t1")]);
    server.stop().await.unwrap();
}

/// Sent in one burst, so they are accepted in one intake batch: a command
/// changes the bindings for exactly the messages after it.
#[tokio::test]
async fn pipelined_commands_take_effect_for_exactly_the_messages_after_them() {
    let server = TestServer::start().await;
    let mut bus = server.admin_bus();
    let mut subscriber = Subscriber::open_live(&mut bus, "web", "web").await;
    server.control().create_session(create("burst")).await.unwrap();
    let mut publisher = Publisher::open(&mut bus).await.unwrap();
    let texts = ["before", "!join burst", "during 1", "during 2", "!leave", "after"];
    for (i, text) in texts.iter().enumerate() {
        publisher.send(message("web", "tab", &format!("m{i}"), text)).await;
    }
    for _ in texts {
        assert_eq!(publisher.ack().await.unwrap().status, pb::PublishStatus::Accepted as i32);
    }
    let mut answers = std::collections::HashMap::new();
    while answers.len() < texts.len() {
        let response = subscriber.response().await;
        answers.insert(response.in_reply_to.clone(), response);
    }
    let from_dispatch = |id: &str| answers[id].dispatch;
    assert!(from_dispatch("m0") && answers["m0"].text.contains("not bound"), "{:?}", answers["m0"]);
    assert!(from_dispatch("m1"));
    assert_eq!((answers["m2"].text.as_str(), from_dispatch("m2")), ("echo: during 1", false));
    assert_eq!((answers["m3"].text.as_str(), from_dispatch("m3")), ("echo: during 2", false));
    assert!(from_dispatch("m4"));
    assert!(from_dispatch("m5") && answers["m5"].text.contains("not bound"), "{:?}", answers["m5"]);
    server.stop().await.unwrap();
}

/// Many sessions at once through the intake's own routing: every message is
/// answered once, in order per session.
#[tokio::test]
async fn a_burst_over_many_bound_sessions_is_answered_once_in_order() {
    let server = TestServer::start().await;
    let mut bus = server.admin_bus();
    let mut subscriber = Subscriber::open_live(&mut bus, "web", "web").await;
    for s in 0..10 {
        server.control().create_session(create(&format!("s{s}"))).await.unwrap();
        server.control().bind_session(bind("web", &format!("c{s}"), &format!("s{s}"))).await.unwrap();
    }
    let mut publisher = Publisher::open(&mut bus).await.unwrap();
    for i in 0..300 {
        publisher.send(message("web", &format!("c{}", i % 10), &format!("m{i}"), &format!("n {i}"))).await;
    }
    for _ in 0..300 {
        assert_eq!(publisher.ack().await.unwrap().status, pb::PublishStatus::Accepted as i32);
    }
    let mut last_per_channel = std::collections::HashMap::new();
    for _ in 0..300 {
        let response = subscriber.response().await;
        let n: usize = response.text.trim_start_matches("echo: n ").parse().unwrap();
        let channel = response.targets[0].channel_id.clone();
        if let Some(previous) = last_per_channel.insert(channel, n) {
            assert!(previous < n, "per-session order: {previous} before {n}");
        }
    }
    assert!(subscriber.response_within(std::time::Duration::from_millis(300)).await.is_none(), "nothing twice");
    server.stop().await.unwrap();
}

/// A session deleted while messages wait for it: each of them is told so in
/// its channel (they went unanswered in silence before).
#[tokio::test]
async fn messages_waiting_for_a_deleted_session_are_told_so() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = gorpd::testing::test_config(dir.path());
    config.echo_chunk_delay_ms = 300;
    let server = TestServer::start_with(config.clone(), gorpd::agent_backends(&config)).await;
    server.control().create_session(create("doomed")).await.unwrap();
    server.control().bind_session(bind("web", "tab", "doomed")).await.unwrap();
    let mut web = Subscriber::open_live(&mut server.admin_bus(), "web", "web").await;
    let mut publisher = Publisher::open(&mut server.admin_bus()).await.unwrap();
    for i in 0..3 {
        publisher.publish(message("web", "tab", &format!("m{i}"), &format!("n {i}"))).await;
    }
    wait_for_state(&server.control(), "doomed", "busy").await;
    server.control().delete_session(pb::DeleteSessionRequest { name: "doomed".into() }).await.unwrap();
    let mut told = std::collections::BTreeSet::new();
    while told.len() < 3 {
        let response = web.response().await;
        if response.text.contains("was deleted before it answered") {
            told.insert(response.in_reply_to.clone());
        }
    }
    assert_eq!(told.into_iter().collect::<Vec<_>>(), ["m0", "m1", "m2"]);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn prune_removes_old_history_entries_and_explains_misuse() {
    let server = TestServer::start().await;
    let mut chat = Chat::open(&mut server.admin_bus(), "web").await;
    assert!(chat.ask("tab", "!create s").await.contains("Created"));
    assert!(chat.ask("tab", "!join s").await.contains("bound"));
    for i in 0..10 {
        chat.say("tab", &format!("message {i}")).await;
    }
    let cases: &[(&str, &str)] = &[
        ("!prune s older-than 1d", "Removed 0 history entries of s."),
        ("!prune keep 4", "Removed 16 history entries of s."),
        ("!prune s keep 4", "Removed 0 history entries of s."),
        ("!prune s keep four", "\"four\" is not a count"),
        ("!prune s older-than 3w", "\"3w\" is not an age"),
        ("!prune s", "Usage: !prune [session] keep <N>"),
        ("!prune nope keep 1", "Unknown session \"nope\""),
    ];
    for (command, expected) in cases {
        let reply = chat.ask("tab", command).await;
        assert!(reply.contains(expected), "{command}: {reply}");
    }
    let history = server.store.last_messages("s", 100).await.unwrap();
    let texts: Vec<&str> = history.iter().map(|h| h.text.as_str()).collect();
    assert_eq!(texts, ["message 8", "echo: message 8", "message 9", "echo: message 9"]);
    let mut control = server.control();
    let all = pb::PruneHistoryRequest { session: "s".into(), keep_last: Some(0), older_than_secs: 0 };
    assert_eq!(control.prune_history(all).await.unwrap().into_inner().removed, 4);
    let nothing = pb::PruneHistoryRequest { session: "s".into(), keep_last: None, older_than_secs: 0 };
    assert_eq!(control.prune_history(nothing).await.unwrap_err().code(), tonic::Code::InvalidArgument);
    server.stop().await.unwrap();
}
