//! The gateway binary end to end in encrypted rooms: DISPATCH, binding,
//! formatted threaded answers, streaming edits and the allow-list.

use super::*;
use gorpd::testing::clients::{bind, create};
use matrix_sdk::ruma::events::relation::Thread;
use matrix_sdk::ruma::events::room::message::{Relation, RoomMessageEventContent};

#[tokio::test]
async fn an_encrypted_dm_reaches_dispatch_binds_and_gets_formatted_threaded_answers() {
    let world = World::start().await;
    let gateway = world.gateway(&[]);
    let alice = world.alice().await;
    let dm = alice.dm(&world.bot).await;

    let asked = alice.say(&dm, "!create research").await;
    let created = alice.answer(&dm, "research").await;
    assert!(created.encrypted, "the answer is end-to-end encrypted");
    assert_eq!(created.content["m.relates_to"]["m.in_reply_to"]["event_id"], asked.as_str(), "{created:?}");
    alice.say(&dm, "!join research").await;
    alice.answer(&dm, "now bound to research").await;

    let question = alice.say(&dm, "hello **agent**").await;
    let answer = alice.answer(&dm, "echo: hello").await;
    assert!(answer.encrypted);
    assert_eq!(answer.content["format"], "org.matrix.custom.html");
    assert!(answer.content["formatted_body"].as_str().unwrap().contains("<strong>agent</strong>"), "{answer:?}");
    assert_eq!(answer.content["m.relates_to"]["m.in_reply_to"]["event_id"], question.as_str());

    // A question asked in a thread is answered in that thread.
    let mut in_thread = RoomMessageEventContent::text_plain("threaded question");
    in_thread.relates_to = Some(Relation::Thread(Thread::without_fallback(question.clone())));
    let threaded = dm.send(in_thread).await.unwrap().response.event_id;
    let reply = alice.wait_for(&dm, |s| s.body() == "echo: threaded question").await;
    assert_eq!(reply.content["m.relates_to"]["rel_type"], "m.thread", "{reply:?}");
    assert_eq!(reply.content["m.relates_to"]["event_id"], question.as_str());
    assert_eq!(reply.content["m.relates_to"]["m.in_reply_to"]["event_id"], threaded.as_str());
    assert_eq!(world.server.store.inbound_count().await.unwrap(), 4, "each message reached gorpd once");
    gateway.stop().await;
    world.stop().await;
}

#[tokio::test]
async fn a_streamed_answer_is_one_message_edited_in_place_until_the_final_text() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = gorpd::testing::test_config(dir.path());
    config.echo_chunk_delay_ms = 300;
    let server = TestServer::start_with(config.clone(), gorpd::agent_backends(&config)).await;
    let world = World::start_with(server).await;
    let gateway = world.gateway(&["--edit-interval-ms", "100"]);
    let alice = world.alice().await;
    let dm = alice.dm(&world.bot).await;
    world.server.control().create_session(create("slow")).await.unwrap();
    world.server.control().bind_session(bind("matrix", dm.room_id().as_str(), "slow")).await.unwrap();

    alice.say(&dm, "one two three four five six").await;
    let answer = "echo: one two three four five six";
    let shown = alice.wait_for(&dm, |s| s.body() == answer).await;
    let seen = alice.seen(&dm);
    let edits = seen.iter().filter(|s| s.replaces().is_some()).count();
    assert!(edits >= 2, "shown while streaming, then edited to the final text: {seen:#?}");
    assert_eq!(alice.texts(&dm), vec![answer.to_owned()], "one message, no second copy");
    assert!(shown.encrypted && shown.content["formatted_body"].is_string(), "{shown:?}");
    gateway.stop().await;
    world.stop().await;
}

#[tokio::test]
async fn an_invite_from_a_user_not_on_the_allow_list_is_refused() {
    let world = World::start().await;
    let mallory_id = world.synapse.register("mallory", "mallory-password").await;
    let gateway = world.gateway(&[]);
    let mallory = User::login(&world.synapse.url, &mallory_id, "mallory-password").await;
    let bot = matrix_sdk::ruma::OwnedUserId::try_from(world.bot.as_str()).unwrap();
    let room = mallory.client.create_dm(&bot).await.unwrap();
    let deadline = tokio::time::Instant::now() + user::MATRIX_WAIT;
    loop {
        let _ = room.sync_members().await;
        let member = room.get_member(&bot).await.unwrap().expect("the bot was invited");
        if *member.membership() == matrix_sdk::ruma::events::room::member::MembershipState::Leave {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the invite was not refused");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    mallory.say(&room, "!help").await;
    // alice is allowed: her DM works, and only her message reached gorpd.
    let alice = world.alice().await;
    let dm = alice.dm(&world.bot).await;
    alice.say(&dm, "!help").await;
    alice.answer(&dm, "!join").await;
    assert_eq!(world.server.store.inbound_count().await.unwrap(), 1, "nothing from mallory reached gorpd");
    gateway.stop().await;
    world.stop().await;
}
