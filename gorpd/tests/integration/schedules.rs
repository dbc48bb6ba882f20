//! Scheduled prompts through DISPATCH, on a clock the test moves: firing,
//! run history, pause and resume, catch-up after downtime (once and skip),
//! no slot twice across restarts, failures counted and reported.

use crate::support::*;
use chrono::{DateTime, Duration, Utc};
use gorpd::clock::ManualClock;
use gorpd::config::{AgentProfile, Config};
use gorpd::testing::{HangOrEcho, TestServer};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

/// Monday 2026-03-02, 08:00 UTC.
fn monday_8am() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-02T08:00:00Z").unwrap().with_timezone(&Utc)
}

/// gorpd on `dir` whose schedules follow `clock`; `hang-or-echo` is the
/// default agent and `broken` an OpenAI-compatible agent nobody listens for.
async fn start(dir: &Path, clock: &ManualClock) -> TestServer {
    let mut config = gorpd::testing::test_config(dir);
    config.default_agent = "hang-or-echo".into();
    config.agents.insert(
        "broken".into(),
        AgentProfile::Openai {
            base_url: "http://127.0.0.1:9/v1".into(),
            model: "none".into(),
            api_key_env: None,
            system_prompt: None,
            context_tokens: None,
            timeout_secs: Some(2),
            max_tokens: None,
            temperature: None,
            prompt_template: None,
            prices: None,
            images: None,
        },
    );
    let backends = backends_for(&config);
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    TestServer::start_with_clock(config, backends, Arc::new(clock.clone()), any, any).await
}

fn backends_for(config: &Config) -> gorpd::agent::Backends {
    gorpd::agent_backends(config).with("hang-or-echo", HangOrEcho)
}

/// A web chat bound to a new session `name` (agent `agent`, default when empty).
async fn bound_chat(server: &TestServer, name: &str, agent: &str) -> Chat {
    let mut chat = Chat::open(&mut server.admin_bus(), "web").await;
    let create = if agent.is_empty() { format!("!create {name}") } else { format!("!create {name} --agent {agent}") };
    assert!(chat.ask("tab", &create).await.contains("Created session"));
    assert!(chat.ask("tab", &format!("!join {name}")).await.contains("now bound"));
    chat
}

/// The next response from a session, skipping DISPATCH replies replayed after a restart.
async fn session_response(chat: &mut Chat) -> gorp_proto::v1::Response {
    loop {
        let response = chat.response().await;
        if !response.dispatch {
            return response;
        }
    }
}

#[tokio::test]
async fn a_schedule_fires_at_its_slot_and_its_run_is_recorded_once_the_turn_ends() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(monday_8am());
    let server = start(dir.path(), &clock).await;
    let mut chat = bound_chat(&server, "research", "").await;

    let added = chat.ask("tab", "!schedule add --tz Europe/Berlin \"every weekday at 9:30\" Summarise the inbox").await;
    assert!(added.contains("Scheduled #1 for research"), "{added}");
    assert!(added.contains("Next: 2026-03-02 09:30 CET"), "{added}");
    assert!(added.contains("1 bound channel(s)"), "{added}");

    clock.set(monday_8am() + Duration::minutes(29));
    assert!(chat.subscriber.response_within(std::time::Duration::from_millis(300)).await.is_none(), "not yet");
    clock.set(monday_8am() + Duration::minutes(30));
    let answer = chat.response().await;
    assert_eq!((answer.text.as_str(), answer.session.as_str()), ("echo: Summarise the inbox", "research"));

    let runs = chat.ask("tab", "!schedule runs 1").await;
    assert!(runs.contains("ok 2026-03-02 09:30 CET"), "{runs}");
    assert!(runs.contains("answer 25 chars"), "{runs}");
    let list = chat.ask("tab", "!schedule list").await;
    assert!(list.contains("#1 research — every weekday at 9:30"), "{list}");
    assert!(list.contains("next: 2026-03-03 09:30 CET; last: ok"), "{list}");
    let history = chat.ask("tab", "!read research").await;
    assert!(history.contains("schedule #1: Summarise the inbox"), "the run is in the session's history: {history}");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn pause_holds_a_schedule_and_resume_starts_from_now_without_the_missed_slots() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(monday_8am());
    let server = start(dir.path(), &clock).await;
    let mut chat = bound_chat(&server, "s", "").await;
    assert!(chat.ask("tab", "!schedule add \"every 15 minutes\" tick").await.contains("Next: 2026-03-02 08:15 UTC"));
    assert!(chat.ask("tab", "!schedule pause 1").await.contains("Paused #1"));
    clock.set(monday_8am() + Duration::minutes(50));
    assert!(chat.subscriber.response_within(std::time::Duration::from_millis(300)).await.is_none(), "paused");
    let resumed = chat.ask("tab", "!schedule resume #1").await;
    assert!(resumed.contains("next: 2026-03-02 09:00 UTC"), "{resumed}");
    clock.set(monday_8am() + Duration::minutes(60));
    assert_eq!(chat.response().await.text, "echo: tick");
    let runs = chat.ask("tab", "!schedule runs 1").await;
    assert!(runs.starts_with("Last 1 run(s) of #1"), "only the slot after resuming ran: {runs}");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn missed_slots_fire_once_after_downtime_or_are_skipped_and_no_slot_fires_twice() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(monday_8am());
    let server = start(dir.path(), &clock).await;
    let mut chat = bound_chat(&server, "s", "").await;
    assert!(chat.ask("tab", "!schedule add \"every 15 minutes\" catch up").await.contains("#1"));
    assert!(chat.ask("tab", "!schedule add --catch-up skip \"every 15 minutes\" skip me").await.contains("#2"));
    server.stop().await.unwrap();

    // Down for three hours: twelve slots of each schedule pass.
    clock.advance(Duration::hours(3));
    let server = start(dir.path(), &clock).await;
    let mut chat = Chat::open(&mut server.admin_bus(), "web").await;
    assert_eq!(session_response(&mut chat).await.text, "echo: catch up");
    assert!(chat.subscriber.response_within(std::time::Duration::from_millis(500)).await.is_none(), "no burst");
    let caught_up = chat.ask("tab", "!schedule runs 1").await;
    assert!(caught_up.starts_with("Last 1 run(s)") && caught_up.contains("ok 2026-03-02 11:00 UTC"), "{caught_up}");
    let skipped = chat.ask("tab", "!schedule runs 2").await;
    assert!(skipped.starts_with("Last 1 run(s)") && skipped.contains("skipped 2026-03-02 11:00 UTC"), "{skipped}");
    server.stop().await.unwrap();

    // A restart at the same time fires nothing again; the next slot fires each once.
    let server = start(dir.path(), &clock).await;
    let mut chat = Chat::open(&mut server.admin_bus(), "web").await;
    assert!(chat.subscriber.response_within(std::time::Duration::from_millis(500)).await.is_none(), "no repeat");
    clock.advance(Duration::minutes(15));
    let mut texts = vec![session_response(&mut chat).await.text, session_response(&mut chat).await.text];
    texts.sort();
    assert_eq!(texts, ["echo: catch up", "echo: skip me"]);
    for id in [1, 2] {
        let runs = chat.ask("tab", &format!("!schedule runs {id}")).await;
        assert!(runs.starts_with("Last 2 run(s)"), "{runs}");
    }
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_failing_agent_is_recorded_as_failed_with_a_notice_and_a_growing_failure_count() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(monday_8am());
    let server = start(dir.path(), &clock).await;
    let mut chat = bound_chat(&server, "flaky", "broken").await;
    let added = chat.ask("tab", "!schedule add \"every hour\" report").await;
    assert!(added.contains("#1"), "{added}");
    for hour in 1..=2 {
        clock.set(monday_8am() + Duration::hours(hour));
        let notice = chat.response().await;
        assert!(notice.text.starts_with("⚠ flaky failed on the prompt of schedule #1:"), "{notice:?}");
        let list = chat.ask("tab", "!schedule list").await;
        assert!(list.contains(&format!("{hour} failure(s) in a row")), "{list}");
    }
    let runs = chat.ask("tab", "!schedule runs 1").await;
    assert_eq!(runs.matches("\nfailed ").count(), 2, "{runs}");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_run_in_flight_when_gorpd_stops_is_recorded_as_interrupted() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(monday_8am());
    let server = start(dir.path(), &clock).await;
    let mut chat = bound_chat(&server, "s", "").await;
    assert!(chat.ask("tab", "!schedule add \"in 10 minutes\" hang until stopped").await.contains("Once at"));
    clock.advance(Duration::minutes(10));
    let control = server.control();
    wait_for_state(&control, "s", "busy").await;
    let running = chat.ask("tab", "!schedule runs 1").await;
    assert!(running.contains("running"), "{running}");
    server.stop().await.unwrap();

    let server = start(dir.path(), &clock).await;
    let mut chat = Chat::open(&mut server.admin_bus(), "web").await;
    assert!(session_response(&mut chat).await.text.contains("that turn was interrupted"));
    let runs = chat.ask("tab", "!schedule runs 1").await;
    assert!(runs.contains("interrupted 2026-03-02 08:10 UTC"), "{runs}");
    let list = chat.ask("tab", "!schedule list").await;
    assert!(list.contains("next: none (it has fired)"), "a one-time schedule fires once: {list}");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn schedule_commands_explain_misuse_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(monday_8am());
    let server = start(dir.path(), &clock).await;
    let mut chat = Chat::open(&mut server.admin_bus(), "web").await;
    assert!(chat.ask("tab", "!create s").await.contains("Created"));
    let cases: &[(&str, &str)] = &[
        ("!schedule", "Scheduled prompts:"),
        ("!schedule add \"every day at 9\" x", "Which session? This channel is not bound"),
        ("!schedule add nope \"every day at 9\" x", "Unknown session \"nope\""),
        ("!schedule add s \"every blue moon\" x", "I don't understand \"every blue moon\""),
        ("!schedule add s \"61 * * * *\" x", "not a valid cron expression"),
        ("!schedule add s --tz Mars/Base \"every day at 9\" x", "Unknown time zone \"Mars/Base\""),
        ("!schedule add s \"2020-01-01 09:00\" x", "has already passed"),
        ("!schedule add s every day", "Put \"when\" in quotes"),
        ("!schedule pause", "Usage: !schedule pause <id>"),
        ("!schedule pause 42", "Unknown schedule #42"),
        ("!schedule run 42", "Unknown schedule #42"),
        ("!schedule frob", "Usage: !schedule add|list"),
        ("!schedule list", "No schedules."),
        ("!schedule list nope", "Unknown session \"nope\""),
    ];
    for (command, expected) in cases {
        let reply = chat.ask("tab", command).await;
        assert!(reply.contains(expected), "{command}: {reply}");
    }
    assert!(server.store.schedules(None).await.unwrap().is_empty(), "nothing was stored");
    // Deleting the session deletes its schedules.
    assert!(chat.ask("tab", "!schedule add s \"every day at 9\" x").await.contains("#1"));
    assert!(chat.ask("tab", "!schedule run 1").await.contains("Fired #1 now"));
    assert!(chat.ask("tab", "!delete s").await.contains("Deleted session s"));
    assert!(server.store.schedules(None).await.unwrap().is_empty());
    server.stop().await.unwrap();
}

#[tokio::test]
async fn the_schedule_and_webhook_platforms_are_reserved_for_gorpd() {
    let server = TestServer::start().await;
    let mut publisher = Publisher::open(&mut server.admin_bus()).await.unwrap();
    for platform in ["schedule", "webhook"] {
        let ack = publisher.publish(message(platform, "1", "m1", "!create sneaky")).await;
        assert_eq!(ack.status, gorp_proto::v1::PublishStatus::Rejected as i32, "{ack:?}");
        assert!(ack.error.contains("reserved"), "{ack:?}");
        let bind = server.control().bind_session(bind(platform, "1", "x")).await.unwrap_err();
        assert_eq!(bind.code(), tonic::Code::InvalidArgument);
    }
    server.stop().await.unwrap();
}

#[tokio::test]
async fn history_retention_removes_entries_older_than_the_configured_days() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(Utc::now());
    let server = start(dir.path(), &clock).await;
    let mut chat = bound_chat(&server, "s", "").await;
    chat.say("tab", "remember this").await;
    server.stop().await.unwrap();

    // Two days later, with a one-day retention: the old entries go at start.
    clock.advance(Duration::days(2));
    let mut config = gorpd::testing::test_config(dir.path());
    config.history_keep_days = Some(1);
    let backends = backends_for(&config);
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    let server = TestServer::start_with_clock(config, backends, Arc::new(clock.clone()), any, any).await;
    eventually(|| {
        let store = server.store.clone();
        async move { store.last_messages("s", 10).await.unwrap().is_empty().then_some(()) }
    })
    .await;
    assert!(server.store.session("s").await.is_ok(), "the session itself stays");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn finished_messages_are_forgotten_after_the_dedup_window_and_only_then() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(Utc::now());
    let server = start(dir.path(), &clock).await;
    let mut chat = bound_chat(&server, "s", "").await;
    let mut publisher = Publisher::open(&mut server.admin_bus()).await.unwrap();
    let ack = publisher.publish(message("web", "tab", "m-1", "once")).await;
    assert_eq!(ack.status, gorp_proto::v1::PublishStatus::Accepted as i32);
    assert_eq!(session_response(&mut chat).await.text, "echo: once");
    server.stop().await.unwrap();

    // Six days later (inside the 7-day window) a resend is still a duplicate.
    clock.advance(Duration::days(6));
    let server = start(dir.path(), &clock).await;
    let mut publisher = Publisher::open(&mut server.admin_bus()).await.unwrap();
    let ack = publisher.publish(message("web", "tab", "m-1", "once")).await;
    assert_eq!(ack.status, gorp_proto::v1::PublishStatus::Duplicate as i32);
    server.stop().await.unwrap();

    // Eight days after it was accepted it is forgotten at start; the history keeps it.
    clock.advance(Duration::days(2));
    let server = start(dir.path(), &clock).await;
    eventually(|| {
        let store = server.store.clone();
        async move { (store.inbound_count().await.unwrap() == 0).then_some(()) }
    })
    .await;
    assert_eq!(server.store.last_messages("s", 10).await.unwrap().len(), 2, "the history keeps the conversation");
    server.stop().await.unwrap();
}
