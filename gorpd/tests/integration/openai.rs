//! The OpenAI-compatible backend against a fake endpoint: streaming, usage,
//! the conversation (also across a restart), trimming, errors and timeouts.

use crate::fake_openai::{FakeOpenAi, Reply, USAGE};
use crate::support::*;
use gorp_proto::v1 as pb;
use gorpd::config::{AgentProfile, Config};
use gorpd::testing::{TestServer, test_config};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// An `openai` profile for `base_url` with a 5 s timeout and no key.
fn profile(base_url: &str) -> AgentProfile {
    AgentProfile::Openai {
        base_url: base_url.to_owned(),
        model: "test-model".to_owned(),
        api_key_env: None,
        system_prompt: None,
        context_tokens: None,
        timeout_secs: Some(5),
        max_tokens: None,
        temperature: None,
        prompt_template: Some("{text}".to_owned()),
        prices: None,
        images: None,
    }
}

/// A config whose default agent is `profile`, under the name `llm`.
fn config_with(dir: &std::path::Path, profile: AgentProfile) -> Config {
    let mut config = test_config(dir);
    config.agents.insert("llm".to_owned(), profile);
    config.default_agent = "llm".to_owned();
    config
}

async fn start(config: &Config) -> TestServer {
    TestServer::start_with(config.clone(), gorpd::agent_backends(config)).await
}

/// Creates session `name` (default agent unless `agent` is given) bound to web channel `name`.
async fn session(server: &TestServer, name: &str, agent: &str) {
    let mut control = server.control();
    control.create_session(pb::CreateSessionRequest { agent: agent.into(), ..create(name) }).await.unwrap();
    control.bind_session(bind("web", name, name)).await.unwrap();
}

fn pairs(messages: &[(&str, &str)]) -> Vec<(String, String)> {
    messages.iter().map(|(role, content)| (role.to_string(), content.to_string())).collect()
}

fn assert_error(response: &pb::Response, expected: &str) {
    assert_eq!(response.kind, pb::ResponseKind::Error as i32, "{response:?}");
    assert!(response.text.contains(expected), "expected {expected:?} in {:?}", response.text);
}

#[tokio::test]
async fn an_answer_streams_live_and_its_usage_is_recorded() {
    let fake = FakeOpenAi::start().await;
    let release = Arc::new(Notify::new());
    let chunks = ["Hel", "lo, ", "wor", "ld"].map(String::from).to_vec();
    fake.push(Reply::StreamHeld { chunks, release: release.clone() });
    let dir = tempfile::tempdir().unwrap();
    let server = start(&config_with(dir.path(), profile(&fake.base_url))).await;
    session(&server, "talk", "").await;
    let mut chat = Chat::open(&mut server.admin_bus(), "web").await;
    let id = chat.send("talk", "say hello").await;

    // The first piece arrives while the endpoint still holds back the rest.
    let first = loop {
        if let Some(pb::delivery::Kind::Chunk(chunk)) = chat.subscriber.next().await.unwrap().kind {
            break chunk;
        }
    };
    assert_eq!(first.text, "Hel");
    release.notify_one();
    let mut streamed = first.text;
    let response = loop {
        match chat.subscriber.next().await.unwrap().kind.unwrap() {
            pb::delivery::Kind::Chunk(chunk) => {
                assert_eq!(chunk.response_id, first.response_id);
                streamed.push_str(&chunk.text);
            }
            pb::delivery::Kind::Response(response) => break response,
            pb::delivery::Kind::CaughtUp(_) => {}
        }
    };
    assert_eq!((response.kind, response.in_reply_to.as_str()), (pb::ResponseKind::Complete as i32, id.as_str()));
    assert_eq!((response.text.as_str(), streamed.as_str()), ("Hello, world", "Hello, world"));

    let status =
        server.control().get_session(pb::GetSessionRequest { name: "talk".into() }).await.unwrap().into_inner();
    assert_eq!((status.input_tokens, status.output_tokens), USAGE);
    assert!(!status.agent_running, "a remote endpoint runs no process");
    let request = fake.last_request();
    assert_eq!(request.body["model"], "test-model");
    assert_eq!(request.body["stream"], true);
    assert_eq!(request.body["stream_options"]["include_usage"], true);
    assert_eq!(request.messages(), pairs(&[("user", "say hello")]));
    assert_eq!(request.authorization, None, "no api_key_env, no Authorization header");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn the_conversation_is_sent_with_every_prompt_and_survives_a_restart() {
    let fake = FakeOpenAi::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut llm = profile(&fake.base_url);
    if let AgentProfile::Openai { system_prompt, .. } = &mut llm {
        *system_prompt = Some("You are terse.".to_owned());
    }
    let config = config_with(dir.path(), llm);
    let server = start(&config).await;
    session(&server, "memory", "").await;
    let mut chat = Chat::open(&mut server.admin_bus(), "web").await;
    assert_eq!(chat.ask("memory", "what is gorp?").await, "answer to: what is gorp?");
    assert_eq!(chat.ask("memory", "and why?").await, "answer to: and why?");
    let earlier = [
        ("system", "You are terse."),
        ("user", "what is gorp?"),
        ("assistant", "answer to: what is gorp?"),
        ("user", "and why?"),
    ];
    assert_eq!(fake.last_request().messages(), pairs(&earlier));
    drop(chat);
    server.stop().await.unwrap();

    let server = start(&config).await;
    let mut chat = Chat::open(&mut server.admin_bus(), "web").await;
    assert_eq!(chat.ask("memory", "still there?").await, "answer to: still there?");
    let expected: Vec<_> =
        earlier.into_iter().chain([("assistant", "answer to: and why?"), ("user", "still there?")]).collect();
    assert_eq!(fake.last_request().messages(), pairs(&expected));
    assert_eq!(fake.requests().len(), 3);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_small_context_budget_drops_the_oldest_turns_and_keeps_the_newest() {
    let fake = FakeOpenAi::start().await;
    let dir = tempfile::tempdir().unwrap();
    // A question is 40 bytes (14 estimated tokens), its answer 51 (17): one exchange
    // and a new question make 45, two exchanges and a new question 76.
    let mut llm = profile(&fake.base_url);
    if let AgentProfile::Openai { context_tokens, .. } = &mut llm {
        *context_tokens = Some(50);
    }
    let server = start(&config_with(dir.path(), llm)).await;
    session(&server, "short", "").await;
    let mut chat = Chat::open(&mut server.admin_bus(), "web").await;
    let question = |i: u32| format!("question {i}: {}", "x".repeat(28));
    for i in 1..=4 {
        assert_eq!(chat.ask("short", &question(i)).await, format!("answer to: {}", question(i)));
    }
    let sent = fake.last_request().messages();
    let expected = [
        ("user".to_owned(), question(3)),
        ("assistant".to_owned(), format!("answer to: {}", question(3))),
        ("user".to_owned(), question(4)),
    ];
    assert_eq!(sent, expected, "only the newest exchange fits beside the new question");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn rate_limits_and_server_errors_become_error_responses_and_a_cut_answer_keeps_its_text() {
    let fake = FakeOpenAi::start().await;
    fake.push(Reply::RateLimited);
    fake.push(Reply::ServerError);
    fake.push(Reply::Cut(vec!["half an ".into(), "answer".into()]));
    let dir = tempfile::tempdir().unwrap();
    let server = start(&config_with(dir.path(), profile(&fake.base_url))).await;
    session(&server, "busy", "").await;
    let mut chat = Chat::open(&mut server.admin_bus(), "web").await;

    let limited = chat.say("busy", "one").await;
    assert_error(&limited, &format!("rate limited by {}; retry after 7 s", fake.base_url));
    assert_error(&limited, "Rate limit reached for requests");
    let failed = chat.say("busy", "two").await;
    assert_error(&failed, "HTTP 500 Internal Server Error: The server had an error while processing your request");
    let cut = chat.say("busy", "three").await;
    assert_eq!(cut.kind, pb::ResponseKind::Complete as i32, "{cut:?}");
    let notice = format!("⚠ The answer stops here: {} ended the stream before the answer was complete.", fake.base_url);
    assert_eq!(cut.text, format!("half an answer\n\n{notice}"));
    assert_eq!(chat.ask("busy", "four").await, "answer to: four", "the session still works");
    // The failed questions are not in the conversation; the cut answer is, with its notice.
    let expected = [("user", "three"), ("assistant", cut.text.as_str()), ("user", "four")];
    assert_eq!(fake.last_request().messages(), pairs(&expected));
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_silent_endpoint_times_out_and_the_session_stays_usable() {
    let fake = FakeOpenAi::start().await;
    fake.push(Reply::Hang);
    // The first piece, then silence.
    fake.push(Reply::StreamHeld { chunks: vec!["par".into(), "tial".into()], release: Arc::new(Notify::new()) });
    let dir = tempfile::tempdir().unwrap();
    let mut llm = profile(&fake.base_url);
    if let AgentProfile::Openai { timeout_secs, .. } = &mut llm {
        *timeout_secs = Some(1);
    }
    let server = start(&config_with(dir.path(), llm)).await;
    session(&server, "slow", "").await;
    let mut chat = Chat::open(&mut server.admin_bus(), "web").await;

    let started = Instant::now();
    let response = chat.say("slow", "hello").await;
    assert_error(&response, &format!("no answer from {} within 1 s", fake.base_url));
    let waited = started.elapsed();
    assert!(waited >= Duration::from_secs(1) && waited < Duration::from_secs(5), "{waited:?}");
    // A stall after the first piece keeps that piece, with a notice saying why it stops.
    let stalled = chat.say("slow", "again").await;
    assert_eq!(stalled.kind, pb::ResponseKind::Complete as i32, "{stalled:?}");
    let notice = format!("⚠ The answer stops here: no answer from {} within 1 s.", fake.base_url);
    assert_eq!(stalled.text, format!("par\n\n{notice}"));
    assert_eq!(chat.ask("slow", "third time").await, "answer to: third time");
    // The question that got no answer never leaks into a later prompt.
    let expected = [("user", "again"), ("assistant", stalled.text.as_str()), ("user", "third time")];
    assert_eq!(fake.last_request().messages(), pairs(&expected));
    server.stop().await.unwrap();
}

#[tokio::test]
async fn max_tokens_temperature_and_the_sender_template_reach_the_endpoint() {
    let fake = FakeOpenAi::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut llm = profile(&fake.base_url);
    if let AgentProfile::Openai { max_tokens, temperature, prompt_template, .. } = &mut llm {
        (*max_tokens, *temperature, *prompt_template) = (Some(64), Some(0.25), None);
    }
    let server = start(&config_with(dir.path(), llm)).await;
    session(&server, "tuned", "").await;
    let mut chat = Chat::open(&mut server.admin_bus(), "web").await;
    assert_eq!(chat.ask("tuned", "hi").await, "answer to: alice (web): hi");
    assert_eq!(chat.ask("tuned", "more").await, "answer to: alice (web): more");
    let request = fake.last_request();
    assert_eq!((request.body["max_tokens"].as_u64(), request.body["temperature"].as_f64()), (Some(64), Some(0.25)));
    let expected =
        [("user", "alice (web): hi"), ("assistant", "answer to: alice (web): hi"), ("user", "alice (web): more")];
    assert_eq!(request.messages(), pairs(&expected), "history messages are framed like new ones");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn an_unreachable_endpoint_is_a_clear_error() {
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base_url = format!("http://{}/v1", closed.local_addr().unwrap());
    drop(closed);
    let dir = tempfile::tempdir().unwrap();
    let server = start(&config_with(dir.path(), profile(&base_url))).await;
    session(&server, "offline", "").await;
    let mut chat = Chat::open(&mut server.admin_bus(), "web").await;
    let response = chat.say("offline", "anyone?").await;
    assert_error(&response, &format!("cannot reach {base_url}: "));
    assert!(response.text.to_lowercase().contains("refused"), "{}", response.text);
    server.stop().await.unwrap();
}

/// A variable of the test process with a value usable as a bearer token (tests may not set variables).
fn some_env_var() -> (String, String) {
    ["CARGO_PKG_NAME", "HOME", "PATH"]
        .into_iter()
        .find_map(|name| {
            let value = std::env::var(name).ok()?;
            let usable = !value.is_empty() && value.bytes().all(|b| b.is_ascii_graphic());
            usable.then(|| (name.to_owned(), value))
        })
        .expect("the test process has CARGO_PKG_NAME, HOME or PATH")
}

#[tokio::test]
async fn the_api_key_is_sent_as_a_bearer_token_and_a_missing_one_is_named() {
    let fake = FakeOpenAi::start().await;
    let (variable, key) = some_env_var();
    let dir = tempfile::tempdir().unwrap();
    let mut llm = profile(&fake.base_url);
    if let AgentProfile::Openai { api_key_env, .. } = &mut llm {
        *api_key_env = Some(variable);
    }
    let mut config = config_with(dir.path(), llm);
    let mut keyless = profile(&fake.base_url);
    if let AgentProfile::Openai { api_key_env, .. } = &mut keyless {
        *api_key_env = Some("GORP_TEST_NO_SUCH_API_KEY".to_owned());
    }
    config.agents.insert("keyless".to_owned(), keyless);
    let server = start(&config).await;
    session(&server, "hosted", "").await;
    session(&server, "nokey", "keyless").await;
    let mut chat = Chat::open(&mut server.admin_bus(), "web").await;

    assert_eq!(chat.ask("hosted", "hi").await, "answer to: hi");
    assert_eq!(fake.last_request().authorization, Some(format!("Bearer {key}")));
    let response = chat.say("nokey", "hi").await;
    assert_error(&response, "environment variable GORP_TEST_NO_SUCH_API_KEY");
    assert_eq!(fake.requests().len(), 1, "nothing is sent without the key");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn usage_and_the_price_table_show_in_status_get_session_the_admin_panel_and_metrics() {
    let fake = FakeOpenAi::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut llm = profile(&fake.base_url);
    if let AgentProfile::Openai { prices, .. } = &mut llm {
        let table =
            gorpd::config::PriceTable { input_per_million: 3.0, output_per_million: 15.0, currency: "EUR".into() };
        *prices = Some(table);
    }
    let server = start(&config_with(dir.path(), llm)).await;
    session(&server, "priced", "").await;
    let mut chat = Chat::open(&mut server.admin_bus(), "web").await;
    chat.ask("priced", "one").await;
    chat.ask("priced", "two").await;
    // Two turns of 11 in and 3 out: 22 × 3 / 1e6 + 6 × 15 / 1e6 = 0.000156 EUR.
    let status = chat.ask("tab", "!status priced").await;
    assert!(status.contains("tokens: 22 in, 6 out (last turn: 11 in, 3 out)\ncost: 0.0002 EUR"), "{status}");
    let session =
        server.control().get_session(pb::GetSessionRequest { name: "priced".into() }).await.unwrap().into_inner();
    assert_eq!((session.last_turn_input_tokens, session.last_turn_output_tokens), USAGE);
    assert_eq!(session.cost_currency, "EUR");
    assert!((session.cost - 0.000156).abs() < 1e-9, "{}", session.cost);

    let browser = crate::web::Browser::login(&server).await;
    let page = browser.page("/admin/sessions/priced").await;
    assert!(page.contains("tokens 22 in, 6 out · last turn 11 in, 3 out · cost 0.0002 EUR"), "{page}");
    let metrics = browser.page("/metrics").await;
    for line in [
        "gorp_session_tokens_total{session=\"priced\",direction=\"input\"} 22",
        "gorp_session_tokens_total{session=\"priced\",direction=\"output\"} 6",
        "gorp_session_cost{session=\"priced\",currency=\"EUR\"} 0.000156",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in\n{metrics}");
    }
    server.stop().await.unwrap();
}
