//! Restarts keep the bot's device: the same device id from the state
//! directory, so the user's client sees one bot device and needs no new
//! verification (the restart scenarios themselves are in the conformance
//! suite).

use super::*;
use gorp_gateway::conformance::{Driver, User};

#[tokio::test]
async fn a_restarted_gateway_keeps_its_device_and_needs_no_new_verification() {
    let world = World::<Matrix>::start().await;
    let first = world.gateway(&[]);
    let dm = world.platform.dm(User::Alice).await;
    let device = saved_device(world.platform.state.path());
    world.bind("steady", &dm).await;
    world.platform.say(&dm, User::Alice, "before").await;
    world.answered_once(&dm, &["before"]).await;
    first.stop().await;

    world.platform.say(&dm, User::Alice, "while away").await;
    let second = world.gateway(&[]);
    world.answered_once(&dm, &["before", "while away"]).await;
    assert_eq!(saved_device(world.platform.state.path()), device, "the same device after a restart");
    let bot = matrix_sdk::ruma::OwnedUserId::try_from(world.platform.bot.as_str()).unwrap();
    let alice = world.platform.account(User::Alice).await;
    let devices = alice.client.encryption().get_user_devices(&bot).await.unwrap();
    assert_eq!(devices.devices().count(), 1, "the user sees one bot device, nothing new to verify");
    second.stop().await;
    world.stop().await;
}
