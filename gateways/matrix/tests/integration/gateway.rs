//! What is Matrix's alone, in encrypted rooms: formatted answers and
//! threads, undecryptable messages, Matrix settings and logins.

use super::*;
use crate::driver::{BOT_PASSWORD, Channel, Matrix};
use crate::user::{Account, MATRIX_WAIT};
use gorp_fakes::GatewayProcess;
use gorp_gateway::conformance::User;
use matrix_sdk::config::SyncSettings;
use matrix_sdk::encryption::LocalTrust;
use matrix_sdk::ruma::events::relation::Thread;
use matrix_sdk::ruma::events::room::message::{Relation, RoomMessageEventContent};

#[tokio::test]
async fn an_encrypted_dm_reaches_dispatch_binds_and_gets_formatted_threaded_answers() {
    let world = World::<Matrix>::start().await;
    let gateway = world.gateway(&[]);
    let alice = world.platform.account(User::Alice).await;
    let dm = alice.dm(&world.platform.bot).await;

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
async fn a_message_the_bot_cannot_decrypt_gets_a_notice_and_is_kept_not_dropped() {
    let world = World::<Matrix>::start().await;
    let gateway = world.gateway(&[]);
    let alice = world.platform.account(User::Alice).await;
    let dm = alice.dm(&world.platform.bot).await;
    let sent = send_undecryptable(&world.platform.synapse.url, &alice, &dm).await;
    let notice = alice.answer(&dm, "could not decrypt this message").await;
    assert_eq!(notice.content["msgtype"], "m.notice");
    assert_eq!(notice.content["m.relates_to"]["m.in_reply_to"]["event_id"], sent.as_str());
    let pending = world.platform.state.path().join("pending.json");
    let kept = std::fs::read_to_string(&pending).unwrap();
    assert!(kept.contains(&sent), "kept for when its keys arrive: {kept}");
    let health = world.platform.state.path().join("health.json");
    let expected = serde_json::json!({"undecryptable_since_start": 1, "waiting_for_keys": 1});
    let read =
        || std::fs::read_to_string(&health).ok().and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok());
    let deadline = tokio::time::Instant::now() + MATRIX_WAIT;
    while read().as_ref() != Some(&expected) {
        assert!(tokio::time::Instant::now() < deadline, "health.json: {:?}", read());
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // gorpd shows the same counts in its gateway list (and admin page and metrics).
    let expected = gorp_proto::v1::GatewayHealth { undecryptable_since_start: 1, waiting_for_keys: 1 };
    while gorpd_health(&world).await != Some(expected) {
        assert!(tokio::time::Instant::now() < deadline, "gorpd's gateway list: {:?}", gorpd_health(&world).await);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(world.server.store.inbound_count().await.unwrap(), 0, "nothing undecrypted reached gorpd");

    // Restarted, the gateway still keeps it and does not repeat the notice.
    gateway.stop().await;
    let gateway = world.gateway(&[]);
    alice.say(&dm, "!help").await;
    alice.answer(&dm, "!join").await;
    assert!(std::fs::read_to_string(&pending).unwrap().contains(&sent));
    let notices = alice.texts(&dm).iter().filter(|t| t.contains("could not decrypt")).count();
    assert_eq!(notices, 1, "one notice: {:?}", alice.texts(&dm));
    gateway.stop().await;
    world.stop().await;
}

/// With a short key wait (`--matrix-key-wait-secs`), a message whose keys
/// never come is reported as given up, not kept forever and not dropped in
/// silence.
#[tokio::test]
async fn a_message_whose_keys_never_come_is_reported_after_the_key_wait() {
    let world = World::<Matrix>::start().await;
    let gateway = world.gateway(&["--matrix-key-wait-secs", "2"]);
    let alice = world.platform.account(User::Alice).await;
    let dm = alice.dm(&world.platform.bot).await;
    let sent = send_undecryptable(&world.platform.synapse.url, &alice, &dm).await;
    alice.answer(&dm, "could not decrypt this message").await;
    // The wait is over at the first sync two seconds later: a message wakes it.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    alice.say(&dm, "!help").await;
    let gave_up = alice.answer(&dm, "never received the keys").await;
    assert_eq!(gave_up.content["msgtype"], "m.notice");
    assert_eq!(gave_up.content["m.relates_to"]["m.in_reply_to"]["event_id"], sent.as_str());
    // The notice goes out first, then the list of waited-for messages is saved without it.
    let pending = world.platform.state.path().join("pending.json");
    gorpd::testing::clients::until(|| !std::fs::read_to_string(&pending).unwrap().contains(&sent)).await;
    alice.answer(&dm, "!join").await;
    assert_eq!(world.inbound().await, 1, "only the readable message reached gorpd");
    gateway.stop().await;
    world.stop().await;
}

/// Keys that arrive later, through the key backup: the bot's other session
/// holds the key of a message the gateway's device was not sent, and backs
/// it up; the gateway, started with the recovery key, first sends the
/// notice, then finds the key in the backup and answers the message.
#[tokio::test]
async fn a_message_whose_keys_reach_the_backup_later_gets_the_notice_then_its_answer() {
    let world = World::<Matrix>::start().await;
    let first = world.gateway(&[]);
    let alice = world.platform.account(User::Alice).await;
    let dm = alice.dm(&world.platform.bot).await;
    first.stop().await;
    // The bot's other session: backs up every room key it gets, under a recovery key.
    let other = bot_session(&world).await;
    let recovery_key = other.encryption().recovery().enable().await.expect("enable recovery");
    let gateway = world.gateway(&["--matrix-recovery-key", &recovery_key]);
    world.bind("late", &Channel { user: User::Alice, room: dm.clone() }).await;
    // alice's client sends her next key to the other session only.
    let bot = matrix_sdk::ruma::OwnedUserId::try_from(world.platform.bot.as_str()).unwrap();
    let gateway_device = saved_device(world.platform.state.path());
    let other_device = other.device_id().unwrap().to_owned();
    let deadline = tokio::time::Instant::now() + MATRIX_WAIT;
    let known = || async {
        let devices = alice.client.encryption().get_user_devices(&bot).await.unwrap();
        devices.devices().any(|d| d.device_id() == other_device)
    };
    while !known().await {
        assert!(tokio::time::Instant::now() < deadline, "alice never saw the bot's other session");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let device = |id: &str| {
        let (alice, bot) = (&alice, &bot);
        let id = matrix_sdk::ruma::OwnedDeviceId::from(id);
        async move { alice.client.encryption().get_device(bot, &id).await.unwrap().expect("a known device") }
    };
    device(&gateway_device).await.set_local_trust(LocalTrust::BlackListed).await.unwrap();
    alice.say(&dm, "late question").await;
    alice.answer(&dm, "could not decrypt this message").await;

    // The other session receives the key and backs it up; alice lets the
    // gateway's device in again and writes once more (a fresh key), which wakes its sync.
    other.sync_once(SyncSettings::default()).await.unwrap();
    other.encryption().backups().wait_for_steady_state().await.expect("keys backed up");
    device(&gateway_device).await.set_local_trust(LocalTrust::Unset).await.unwrap();
    dm.discard_room_key().await.unwrap();
    alice.say(&dm, "nudge").await;
    world.answered_once(&Channel { user: User::Alice, room: dm.clone() }, &["late question", "nudge"]).await;
    let notices = alice.texts(&dm).iter().filter(|t| t.contains("could not decrypt")).count();
    assert_eq!(notices, 1, "one notice: {:?}", alice.texts(&dm));
    assert_eq!(world.inbound().await, 2, "each message reached gorpd once");
    let pending = std::fs::read_to_string(world.platform.state.path().join("pending.json")).unwrap();
    assert_eq!(pending.trim(), "[]", "nothing waits for keys any more");
    gateway.stop().await;
    world.stop().await;
}

/// A second session of the bot account (another device), not syncing in
/// the background.
async fn bot_session(world: &World<Matrix>) -> matrix_sdk::Client {
    let client = matrix_sdk::Client::builder().homeserver_url(&world.platform.synapse.url).build().await.unwrap();
    client.matrix_auth().login_username(&world.platform.bot, BOT_PASSWORD).send().await.expect("bot login");
    // The first sync uploads the session's device keys, so alice can send it keys.
    client.sync_once(SyncSettings::default()).await.unwrap();
    client
}

#[test]
fn missing_or_malformed_matrix_settings_exit_64_with_one_line() {
    let run = |envs: &[(&str, &str)]| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_gorp-matrix"));
        command.env_clear().envs(envs.iter().copied());
        command.output().unwrap()
    };
    let base = [("GORP_TOKEN", "t"), ("GORP_MATRIX_HOMESERVER", "http://127.0.0.1:1"), ("GORP_MATRIX_USER", "@gorp:x")];
    let no_login = run(&[base.as_slice(), &[("GORP_MATRIX_STORE_PASSPHRASE", "p")]].concat());
    assert_eq!(no_login.status.code(), Some(64));
    let stderr = String::from_utf8(no_login.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("password or access token"), "{stderr}");
    let bad_user = run(&[
        ("GORP_TOKEN", "t"),
        ("GORP_MATRIX_HOMESERVER", "http://127.0.0.1:1"),
        ("GORP_MATRIX_USER", "gorp"),
        ("GORP_MATRIX_PASSWORD", "pw"),
        ("GORP_MATRIX_STORE_PASSPHRASE", "p"),
    ]);
    assert_eq!(bad_user.status.code(), Some(64));
    assert!(String::from_utf8(bad_user.stderr).unwrap().contains("not a Matrix user id"));
    let login = [("GORP_MATRIX_PASSWORD", "pw"), ("GORP_MATRIX_STORE_PASSPHRASE", "p")];
    let no_wait = run(&[base.as_slice(), &login, &[("GORP_MATRIX_KEY_WAIT_SECS", "0")]].concat());
    assert_eq!(no_wait.status.code(), Some(64));
    let stderr = String::from_utf8(no_wait.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("matrix-key-wait-secs"), "{stderr}");
}

/// The health the Matrix gateway last reported to gorpd.
async fn gorpd_health(world: &World<Matrix>) -> Option<gorp_proto::v1::GatewayHealth> {
    let request = gorp_proto::v1::ListGatewaysRequest {};
    let gateways = world.server.control().list_gateways(request).await.unwrap().into_inner().gateways;
    gateways.into_iter().find(|g| g.gateway_id == "matrix").and_then(|g| g.health)
}

/// Sends a message encrypted with a megolm session the bot never received;
/// returns its event id.
async fn send_undecryptable(homeserver: &str, user: &Account, room: &matrix_sdk::Room) -> String {
    let content = serde_json::json!({
        "algorithm": "m.megolm.v1.aes-sha2",
        "ciphertext": "AwgAEnACgAkLmt6qF84IK++J7UDH2Za1YVchHyprqTqsg2yyOwAtHaZTwyNg37afzg8f3r9IsN9rH4RNFg",
        "device_id": user.client.device_id().unwrap().as_str(),
        "sender_key": "Z0nTLxYSrafT8ji8zq8ExI9aHFfxm06lr4Q5FLhvUUY",
        "session_id": "hrEBHN1LphP0ZLX1XmFz+Tm0UFsAJq9sxnb6wVP6zXQ",
    });
    send_raw_event(homeserver, user, room.room_id().as_str(), "m.room.encrypted", content).await
}

/// Sends an event as it is (no client-side encryption) with the user's token.
async fn send_raw_event(
    homeserver: &str,
    user: &Account,
    room: &str,
    kind: &str,
    content: serde_json::Value,
) -> String {
    let token = user.client.access_token().unwrap();
    let url = format!("{homeserver}/_matrix/client/v3/rooms/{room}/send/{kind}/raw-{}", std::process::id());
    let response = matrix_sdk::reqwest::Client::new()
        .put(url)
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(content.to_string())
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    body["event_id"].as_str().expect("an event id").to_owned()
}

#[tokio::test]
async fn an_access_token_login_uses_that_tokens_device() {
    let world = World::<Matrix>::start().await;
    let login = serde_json::json!({
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": "gorp"},
        "password": BOT_PASSWORD,
        "device_id": "GORPTOKEN",
    });
    let response = matrix_sdk::reqwest::Client::new()
        .post(format!("{}/_matrix/client/v3/login", world.platform.synapse.url))
        .header("content-type", "application/json")
        .body(login.to_string())
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    let token = body["access_token"].as_str().expect("an access token").to_owned();
    let mut command = world.command(&world.token);
    command.env_remove("GORP_MATRIX_PASSWORD").env("GORP_MATRIX_ACCESS_TOKEN", &token);
    let gateway = GatewayProcess::spawn(command);
    let alice = world.platform.account(User::Alice).await;
    let dm = alice.dm(&world.platform.bot).await;
    alice.say(&dm, "!help").await;
    alice.answer(&dm, "!join").await;
    assert_eq!(saved_device(world.platform.state.path()), "GORPTOKEN", "the token's own device");
    gateway.stop().await;
    world.stop().await;
}
