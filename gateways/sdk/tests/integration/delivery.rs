//! Inbound to DISPATCH and agents, and answers back: splitting, streaming,
//! rate limits and the allow-list.

use super::*;
use gorp_gateway::{Ack, AllowList, NOT_ALLOWED_TEXT, PlatformError, split_message};
use gorpd::testing::clients::within;

#[tokio::test]
async fn a_dm_lands_in_dispatch_and_the_reply_is_delivered() {
    let server = TestServer::start().await;
    let token = server.gateway_token("memory").await;
    let memory = platform(4096, true);
    let gateway = Gateway::start(config(&server, &token), memory.clone());
    let help = exchange(&memory, "dm-1", "!help", "!create").await;
    assert!(help.contains("!join"), "{help}");
    assert_eq!(memory.acks(), vec![("m1".to_owned(), Ack::Accepted)]);
    gateway.stop().await.unwrap();
    server.stop().await.unwrap();
}

#[tokio::test]
async fn create_and_join_then_the_echo_agent_answers() {
    let server = TestServer::start().await;
    let token = server.gateway_token("memory").await;
    let memory = platform(4096, true);
    let gateway = Gateway::start(config(&server, &token), memory.clone());
    exchange(&memory, "c1", "!create research", "research").await;
    exchange(&memory, "c1", "!join research", "now bound to research").await;
    exchange(&memory, "c1", "hello agent", "echo: hello agent").await;
    gateway.stop().await.unwrap();
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_long_answer_arrives_whole_and_split_at_the_limit() {
    let server = TestServer::start().await;
    server.control().create_session(gorpd::testing::clients::create("long")).await.unwrap();
    server.control().bind_session(gorpd::testing::clients::bind("memory", "c1", "long")).await.unwrap();
    let token = server.gateway_token("memory").await;
    let memory = platform(120, false);
    let gateway = Gateway::start(config(&server, &token), memory.clone());
    let code: String = (0..12).map(|i| format!("let value_{i} = {i};\n")).collect();
    let text = format!("{}\n\n```rust\n{code}```\n{}", "intro words ".repeat(20), "closing words ".repeat(15));
    memory.user_says("c1", "u1", &text);
    let expected = split_message(&format!("echo: {text}"), 120);
    assert!(expected.len() > 3, "{expected:?}");
    until(|| memory.texts("c1").len() >= expected.len()).await;
    assert_eq!(memory.texts("c1"), expected);
    assert!(memory.texts("c1").iter().all(|t| t.chars().count() <= 120));
    gateway.stop().await.unwrap();
    server.stop().await.unwrap();
}

#[tokio::test]
async fn streaming_edits_end_in_the_final_text() {
    let server = TestServer::start().await;
    server.control().create_session(gorpd::testing::clients::create("stream")).await.unwrap();
    server.control().bind_session(gorpd::testing::clients::bind("memory", "c1", "stream")).await.unwrap();
    let token = server.gateway_token("memory").await;
    let memory = platform(4096, true);
    let mut config = config(&server, &token);
    config.edit_interval = Duration::from_millis(1);
    let gateway = Gateway::start(config, memory.clone());
    let text = "a streamed answer with quite a few words in it to make several chunks";
    exchange(&memory, "c1", text, &format!("echo: {text}")).await;
    let messages = memory.messages();
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert!(messages[0].outbound.id.ends_with("/preview"), "{messages:?}");
    assert!(messages[0].edits >= 1);
    assert_eq!(messages[0].text, format!("echo: {text}"));
    gateway.stop().await.unwrap();
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_rate_limited_delivery_is_delayed_not_dropped() {
    let server = TestServer::start().await;
    let token = server.gateway_token("memory").await;
    let memory = platform(4096, true);
    let gateway = Gateway::start(config(&server, &token), memory.clone());
    memory.fail_next(PlatformError::RateLimited(Duration::from_millis(300)), 2);
    let started = std::time::Instant::now();
    exchange(&memory, "c1", "!help", "!create").await;
    assert!(started.elapsed() >= Duration::from_millis(600), "{:?}", started.elapsed());
    assert_eq!(memory.failed_calls(), 2);
    assert_eq!(memory.messages().len(), 1);
    gateway.stop().await.unwrap();
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_user_not_on_the_allow_list_reaches_nothing() {
    let server = TestServer::start().await;
    let token = server.gateway_token("memory").await;
    let memory = platform(4096, true);
    let mut config = config(&server, &token);
    config.allow = AllowList::only(["friend"]);
    let gateway = Gateway::start(config, memory.clone());
    memory.user_says("c1", "stranger", "!help");
    wait_for_text(&memory, "c1", |t| t == NOT_ALLOWED_TEXT).await;
    assert_eq!(memory.acks(), vec![("m1".to_owned(), Ack::NotAllowed)]);
    assert_eq!(server.store.inbound_count().await.unwrap(), 0);
    memory.user_says("c2", "friend", "!help");
    within(wait_for_text(&memory, "c2", |t| t.contains("!create"))).await;
    assert_eq!(server.store.inbound_count().await.unwrap(), 1);
    gateway.stop().await.unwrap();
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_message_gorpd_refuses_is_settled_and_the_user_is_told() {
    let server = TestServer::start().await;
    let token = server.gateway_token("memory").await;
    let memory = platform(4096, true);
    let gateway = Gateway::start(config(&server, &token), memory.clone());
    memory.user_says("c1", "u1", "   ");
    let notice = wait_for_text(&memory, "c1", |t| t.starts_with("gorpd refused this message: ")).await;
    assert!(matches!(&memory.acks()[..], [(_, Ack::Rejected(_))]), "{:?} / {notice}", memory.acks());
    exchange(&memory, "c1", "!help", "!create").await;
    gateway.stop().await.unwrap();
    server.stop().await.unwrap();
}
