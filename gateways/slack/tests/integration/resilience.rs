//! Connections and restarts: a silent or refreshed socket is replaced, and
//! envelopes are acked only after gorpd acknowledged their message, so
//! restarting gorpd or the gateway neither loses nor repeats one.

use super::*;
use gorpd::testing::clients::{bind, create};

/// The echo answers in `channel`, each expected exactly once.
async fn answered_once(world: &World, channel: &str, texts: &[&str]) {
    for text in texts {
        world.answer(channel, &format!("echo: {text}")).await;
    }
    let all = world.slack.texts(channel);
    for text in texts {
        let count = all.iter().filter(|t| **t == format!("echo: {text}")).count();
        assert_eq!(count, 1, "{text:?} answered once: {all:?}");
    }
}

async fn connections(world: &World, n: usize) {
    let slack = &world.slack;
    until(|| slack.connections() >= n).await;
}

async fn bound_world(session: &str, channel: &str) -> World {
    let world = World::start().await;
    world.server.control().create_session(create(session)).await.unwrap();
    world.server.control().bind_session(bind("slack", channel, session)).await.unwrap();
    world
}

#[tokio::test]
async fn a_silent_socket_is_detected_and_replaced() {
    let world = bound_world("steady", "C0STEADY").await;
    let gateway = world.gateway(&["--slack-ping-interval-secs=1"]);
    world.slack.channel_message("C0STEADY", ALICE, "one", None);
    world.answer("C0STEADY", "echo: one").await;
    world.slack.go_silent();
    connections(&world, 2).await;
    world.slack.channel_message("C0STEADY", ALICE, "two", None);
    answered_once(&world, "C0STEADY", &["one", "two"]).await;
    gateway.stop().await;
    world.stop().await;
}

#[tokio::test]
async fn a_refresh_request_reconnects_and_loses_nothing() {
    let world = bound_world("steady", "C0STEADY").await;
    let gateway = world.gateway(&[]);
    world.slack.channel_message("C0STEADY", ALICE, "one", None);
    world.answer("C0STEADY", "echo: one").await;
    world.slack.request_refresh();
    world.slack.channel_message("C0STEADY", ALICE, "two", None);
    connections(&world, 2).await;
    world.slack.channel_message("C0STEADY", ALICE, "three", None);
    answered_once(&world, "C0STEADY", &["one", "two", "three"]).await;
    assert_eq!(world.server.store.inbound_count().await.unwrap(), 3);
    gateway.stop().await;
    world.stop().await;
}

/// While gorpd is down the gateway acknowledges an envelope once the
/// message is in its spool; the next run sends it to gorpd.
#[tokio::test]
async fn an_envelope_is_acknowledged_once_spooled_and_answered_by_the_next_run() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_in(dir.path()).await;
    server.control().create_session(create("steady")).await.unwrap();
    server.control().bind_session(bind("slack", "C0STEADY", "steady")).await.unwrap();
    let world = World::with_server(server).await;
    let first = world.gateway(&[]);
    world.slack.channel_message("C0STEADY", ALICE, "one", None);
    world.answer("C0STEADY", "echo: one").await;
    world.caught_up().await;
    until(|| world.slack.unacked() == 0).await;

    let World { server, slack, token, state } = world;
    let (grpc_addr, http_addr) = (server.grpc_addr, server.http_addr);
    server.stop().await.unwrap();
    let acked_before = slack.acked().len();
    slack.channel_message("C0STEADY", ALICE, "two", None);
    until(|| slack.acked().len() > acked_before && slack.unacked() == 0).await;
    first.stop().await;

    let config = gorpd::testing::test_config(dir.path());
    let backends = gorpd::agent_backends(&config);
    let server = TestServer::start_at(config, backends, grpc_addr, http_addr).await;
    let world = World { server, slack, token, state };
    let second = world.gateway(&[]);
    answered_once(&world, "C0STEADY", &["one", "two"]).await;
    assert_eq!(world.server.store.inbound_count().await.unwrap(), 2);
    second.stop().await;
    world.stop().await;
}
