//! Generated input against a real gorpd (proptest strategies, sampled and
//! pipelined over one Publish stream): DISPATCH commands with arbitrary
//! words and arguments, and publish requests with arbitrary fields. Nothing
//! panics, every request gets one ack, a stream never breaks on bad input,
//! every accepted message gets exactly one answer, and what was rejected
//! stored nothing. `GORP_FUZZ_CASES` sets the count (default 2000; the long
//! mode of the hardening issue is 1000000). Inputs are generated as they are
//! sent, so a long run holds no list of them; the DISPATCH run keeps at most
//! [`MAX_FUZZ_SESSIONS`] sessions, so a long run's `!broadcast`s stay cheap.

use crate::support::*;
use gorp_proto::v1 as pb;
use gorpd::testing::TestServer;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use std::collections::HashMap;
use std::time::Duration;

fn cases() -> usize {
    std::env::var("GORP_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(2000)
}

/// Values of `strategy`, endless and reproducible (proptest's deterministic runner).
fn generated<S: Strategy>(strategy: S) -> impl Iterator<Item = S::Value> {
    let mut runner = TestRunner::deterministic();
    std::iter::repeat_with(move || strategy.new_tree(&mut runner).expect("a value").current())
}

/// Most sessions the DISPATCH run keeps: every `!broadcast` starts a turn in each.
const MAX_FUZZ_SESSIONS: usize = 32;
/// Commands sent between two checks of the session count.
const SESSION_CHECK_EVERY: usize = 500;

/// Deletes sessions beyond [`MAX_FUZZ_SESSIONS`] (never `keep`), as an operator would with gorpctl.
async fn cap_sessions(server: &TestServer, keep: &str) {
    let mut control = server.control();
    let sessions = control.list_sessions(pb::ListSessionsRequest {}).await.unwrap().into_inner().sessions;
    let extra = sessions.iter().filter(|s| s.name != keep).skip(MAX_FUZZ_SESSIONS - 1);
    for session in extra {
        // A command in flight may have deleted it first.
        let _ = control.delete_session(pb::DeleteSessionRequest { name: session.name.clone() }).await;
    }
}

/// `!word args…`: real command words (any case) and junk words, with names,
/// numbers, flags, unicode and very long arguments.
fn command() -> impl Strategy<Value = String> {
    let word = prop_oneof![
        4 => proptest::sample::select(gorpd::orchestrator::COMMANDS.to_vec()).prop_map(str::to_owned),
        1 => "[A-Za-z]{0,10}",
        1 => "\\PC{0,12}",
    ];
    let argument = prop_oneof![
        "[a-z0-9_-]{1,70}",
        "[0-9]{1,22}",
        "-?[0-9]{1,4}",
        Just("--agent".to_owned()),
        Just("always".to_owned()),
        "\\PC{1,40}",
        "[a-z./]{1,30}",
        "x{200,300}",
    ];
    (word, proptest::collection::vec(argument, 0..5), any::<bool>()).prop_map(|(word, arguments, shout)| {
        let word = if shout { word.to_uppercase() } else { word };
        format!("!{word} {}", arguments.join(" "))
    })
}

async fn answers_to(subscriber: &mut Subscriber, expected: usize) -> HashMap<String, usize> {
    let mut answered: HashMap<String, usize> = HashMap::new();
    while answered.values().sum::<usize>() < expected {
        let Some(response) = subscriber.response_within(WAIT).await else { break };
        if !response.in_reply_to.is_empty() {
            *answered.entry(response.in_reply_to).or_default() += 1;
        }
    }
    // Anything more would be a second answer to some message.
    while let Some(response) = subscriber.response_within(Duration::from_millis(300)).await {
        if !response.in_reply_to.is_empty() {
            *answered.entry(response.in_reply_to).or_default() += 1;
        }
    }
    answered
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_dispatch_commands_each_get_exactly_one_answer() {
    let server = TestServer::start().await;
    server.control().create_session(create("target")).await.unwrap();
    let mut bus = server.admin_bus();
    let mut subscriber = Subscriber::open_live(&mut bus, "fuzz", "fuzz").await;
    let mut publisher = Publisher::open(&mut bus).await.unwrap();
    let commands: Vec<String> = generated(command()).take(cases()).collect();
    let mut accepted = Vec::new();
    for (sent, text) in commands.iter().enumerate() {
        if sent % SESSION_CHECK_EVERY == 0 {
            cap_sessions(&server, "target").await;
        }
        let id = format!("c{sent}");
        publisher.send(message("fuzz", &format!("ch{}", sent % 7), &id, text)).await;
        if sent >= 200 {
            // Keep a bounded window, as a gateway does.
            let ack = publisher.ack().await.expect("bad commands never break the stream");
            if ack.status == pb::PublishStatus::Accepted as i32 {
                accepted.push(ack.message_id);
            }
        }
    }
    for _ in 0..commands.len().min(200) {
        let ack = publisher.ack().await.expect("bad commands never break the stream");
        if ack.status == pb::PublishStatus::Accepted as i32 {
            accepted.push(ack.message_id);
        }
    }
    let answered = answers_to(&mut subscriber, accepted.len()).await;
    for id in &accepted {
        let text = &commands[id[1..].parse::<usize>().unwrap()];
        assert_eq!(answered.get(id), Some(&1), "{id} ({text:?}) was answered {:?} times", answered.get(id));
    }
    // Still serving.
    let mut chat = Chat::open(&mut server.admin_bus(), "web").await;
    assert!(chat.ask("after", "!help").await.contains("DISPATCH commands"));
    server.stop().await.unwrap();
}

/// Publish requests with arbitrary fields: each gets one ack, ACCEPTED only
/// when every field is valid, REJECTED (with nothing stored) otherwise.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_publish_requests_are_accepted_or_rejected_never_broken() {
    let server = TestServer::start().await;
    let mut publisher = Publisher::open(&mut server.admin_bus()).await.unwrap();
    let field = || {
        prop_oneof![
            4 => "[a-z0-9_-]{1,12}",
            1 => Just(String::new()),
            1 => "\\PC{0,20}",
            1 => ".{0,8}",
            1 => "[a-z]{300}",
        ]
    };
    let requests = (field(), field(), field(), field(), field(), "\\PC{0,60}|[ \\t\\n]{0,3}").prop_map(
        |(platform, channel_id, message_id, sender_id, sender_name, text)| pb::PublishRequest {
            channel: Some(pb::Channel { platform, channel_id }),
            message_id,
            sender_id,
            sender_name,
            text,
            attachments: Vec::new(),
            traceparent: String::new(),
        },
    );
    let count = cases() / 2;
    let started = std::time::Instant::now();
    let mut accepted = 0;
    for (sent, request) in generated(requests).take(count).enumerate() {
        if sent > 0 && sent % 100_000 == 0 {
            eprintln!("{sent} of {count} publish requests after {:?}", started.elapsed());
        }
        let ack = publisher.publish(request.clone()).await;
        match pb::PublishStatus::try_from(ack.status).unwrap() {
            pb::PublishStatus::Accepted => accepted += 1,
            pb::PublishStatus::Duplicate => {}
            pb::PublishStatus::Rejected => {
                assert!(!ack.error.is_empty(), "a rejection says why: {request:?}");
                assert_ne!(ack.error_code, 0, "{request:?}");
            }
            other => panic!("{other:?} for {request:?}"),
        }
    }
    assert_eq!(server.store.inbound_count().await.unwrap(), accepted, "only accepted messages were stored");
    server.stop().await.unwrap();
}
