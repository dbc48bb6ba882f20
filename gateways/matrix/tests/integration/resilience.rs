//! Restarts: the gateway keeps its device, and the sync position moves only
//! after gorpd acknowledged a message, so restarting the gateway or gorpd
//! neither loses nor repeats a message or an answer.

use super::*;
use gorpd::testing::clients::{bind, create};

/// The echo answers in `room`, each expected exactly once (as shown, edits applied).
async fn answered_once(alice: &User, room: &matrix_sdk::Room, texts: &[&str]) {
    for text in texts {
        let expected = format!("echo: {text}");
        alice.wait_for(room, |_| alice.texts(room).contains(&expected)).await;
    }
    let all = alice.texts(room);
    for text in texts {
        let count = all.iter().filter(|t| **t == format!("echo: {text}")).count();
        assert_eq!(count, 1, "{text:?} answered once: {all:?}");
    }
}

#[tokio::test]
async fn a_gateway_restarted_mid_stream_keeps_its_device_and_answers_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = gorpd::testing::test_config(dir.path());
    config.echo_chunk_delay_ms = 400;
    let server = TestServer::start_with(config.clone(), gorpd::agent_backends(&config)).await;
    let world = World::start_with(server).await;
    let first = world.gateway(&["--edit-interval-ms", "100"]);
    let alice = world.alice().await;
    let dm = alice.dm(&world.bot).await;
    let device = saved_device(world.state.path());
    world.server.control().create_session(create("steady")).await.unwrap();
    world.server.control().bind_session(bind("matrix", dm.room_id().as_str(), "steady")).await.unwrap();

    alice.say(&dm, "a b c d e f g h i j k l").await;
    // The preview is showing part of the answer: stop the gateway mid-stream.
    alice.wait_for(&dm, |s| s.body().starts_with("echo")).await;
    first.stop().await;
    alice.say(&dm, "while away").await;
    let second = world.gateway(&["--edit-interval-ms", "100"]);
    answered_once(&alice, &dm, &["a b c d e f g h i j k l", "while away"]).await;
    assert_eq!(saved_device(world.state.path()), device, "the same device after a restart");
    let bot = matrix_sdk::ruma::OwnedUserId::try_from(world.bot.as_str()).unwrap();
    let devices = alice.client.encryption().get_user_devices(&bot).await.unwrap();
    assert_eq!(devices.devices().count(), 1, "the user sees one bot device, nothing new to verify");
    assert_eq!(alice.texts(&dm).len(), 2, "exactly one message per answer: {:?}", alice.texts(&dm));
    assert_eq!(world.server.store.inbound_count().await.unwrap(), 2);
    second.stop().await;
    world.stop().await;
}

#[tokio::test]
async fn messages_sent_while_gorpd_restarts_are_answered_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_in(dir.path()).await;
    let world = World::start_with(server).await;
    let gateway = world.gateway(&[]);
    let alice = world.alice().await;
    let dm = alice.dm(&world.bot).await;
    world.server.control().create_session(create("steady")).await.unwrap();
    world.server.control().bind_session(bind("matrix", dm.room_id().as_str(), "steady")).await.unwrap();
    alice.say(&dm, "one").await;
    answered_once(&alice, &dm, &["one"]).await;

    let World { synapse, server, token, bot, alice: alice_id, state, _permit } = world;
    let (grpc_addr, http_addr) = (server.grpc_addr, server.http_addr);
    server.stop().await.unwrap();
    alice.say(&dm, "two").await;
    alice.say(&dm, "three").await;

    let config = gorpd::testing::test_config(dir.path());
    let backends = gorpd::agent_backends(&config);
    let server = TestServer::start_at(config, backends, grpc_addr, http_addr).await;
    let world = World { synapse, server, token, bot, alice: alice_id, state, _permit };
    answered_once(&alice, &dm, &["one", "two", "three"]).await;
    assert_eq!(world.server.store.inbound_count().await.unwrap(), 3, "each message stored exactly once");
    gateway.stop().await;
    world.stop().await;
}
