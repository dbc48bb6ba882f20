//! Restarts: the update offset moves only after gorpd acknowledged a message,
//! so restarting gorpd or the gateway neither loses nor repeats one.

use super::*;
use gorpd::testing::clients::{bind, create};

/// The echo answers in `chat`, each expected exactly once.
async fn answered_once(world: &World, chat: i64, texts: &[&str]) {
    for text in texts {
        world.answer(chat, &format!("echo: {text}")).await;
    }
    let all = world.telegram.texts(chat);
    for text in texts {
        let count = all.iter().filter(|t| **t == format!("echo: {text}")).count();
        assert_eq!(count, 1, "{text:?} answered once: {all:?}");
    }
}

#[tokio::test]
async fn messages_sent_while_gorpd_restarts_are_delivered_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_in(dir.path()).await;
    server.control().create_session(create("steady")).await.unwrap();
    server.control().bind_session(bind("telegram", "42", "steady")).await.unwrap();
    let token = gateway_token(&server).await;
    let telegram = FakeTelegram::start(BOT_TOKEN).await;
    let world = World { server, telegram, token };
    let gateway = world.gateway(&[]);
    world.telegram.dm(42, "alice", "one");
    world.answer(42, "echo: one").await;

    let World { server, telegram, token } = world;
    let (grpc_addr, http_addr) = (server.grpc_addr, server.http_addr);
    server.stop().await.unwrap();
    let confirmed = telegram.confirmed_offset();
    telegram.dm(42, "alice", "two");
    telegram.dm(42, "alice", "three");
    assert_eq!(telegram.confirmed_offset(), confirmed, "nothing is confirmed while gorpd cannot acknowledge it");

    let config = gorpd::testing::test_config(dir.path());
    let backends = gorpd::agent_backends(&config);
    let server = TestServer::start_at(config, backends, grpc_addr, http_addr).await;
    let world = World { server, telegram, token };
    answered_once(&world, 42, &["one", "two", "three"]).await;
    assert_eq!(world.server.store.inbound_count().await.unwrap(), 3, "each message stored exactly once");
    gateway.stop().await;
    world.stop().await;
}

#[tokio::test]
async fn a_gateway_started_before_gorpd_says_so_and_keeps_retrying_until_it_connects() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_in(dir.path()).await;
    let token = gateway_token(&server).await;
    let (grpc_addr, http_addr) = (server.grpc_addr, server.http_addr);
    server.stop().await.unwrap();
    let telegram = FakeTelegram::start(BOT_TOKEN).await;
    let mut command = Command::new(env!("CARGO_BIN_EXE_gorp-telegram"));
    command
        .env("GORP_GORPD", format!("http://{grpc_addr}"))
        .env("GORP_TOKEN", &token)
        .env("GORP_TELEGRAM_TOKEN", BOT_TOKEN)
        .env("GORP_TELEGRAM_API_URL", telegram.url())
        .env("GORP_TELEGRAM_STATE_DIR", dir.path().join("telegram-state"));
    let (gateway, log) = GatewayProcess::spawn_logged(command);
    until(|| log.contains("cannot reach gorpd; retrying")).await;
    telegram.dm(42, "alice", "!help");

    let config = gorpd::testing::test_config(dir.path());
    let server = TestServer::start_at(config.clone(), gorpd::agent_backends(&config), grpc_addr, http_addr).await;
    let world = World { server, telegram, token };
    world.answer(42, "!join").await;
    assert!(log.contains("connected to gorpd"));
    gateway.stop().await;
    world.stop().await;
}

#[tokio::test]
async fn a_restarted_gateway_reads_what_it_missed_and_repeats_nothing() {
    let world = World::start().await;
    world.server.control().create_session(create("steady")).await.unwrap();
    world.server.control().bind_session(bind("telegram", "42", "steady")).await.unwrap();
    let first = world.gateway(&[]);
    world.telegram.dm(42, "alice", "one");
    world.answer(42, "echo: one").await;
    first.stop().await;

    world.telegram.dm(42, "alice", "two");
    world.telegram.dm(42, "alice", "three");
    let second = world.gateway(&[]);
    answered_once(&world, 42, &["one", "two", "three"]).await;
    assert_eq!(world.server.store.inbound_count().await.unwrap(), 3);
    second.stop().await;
    world.stop().await;
}
