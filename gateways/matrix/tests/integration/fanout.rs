//! One session bound to a Matrix room, a Telegram chat (the real
//! `gorp-telegram` binary against the fake Bot API) and a third-party Bus
//! client answers in all three, each answer once per channel.

use super::*;
use gorp_fakes::{FakeTelegram, GatewayProcess, profile_binary};
use gorp_gateway::conformance::User;
use gorpd::testing::clients::{Chat, bind, create, until};
use tokio::process::Command;

const TELEGRAM_BOT: &str = "123456:matrix-fanout-bot";
const TELEGRAM_CHAT: i64 = 42;

#[tokio::test]
async fn one_session_on_matrix_telegram_and_a_bus_client_answers_on_all_three() {
    let world = World::<Matrix>::start().await;
    world.server.control().create_session(create("research")).await.unwrap();
    let matrix_gateway = world.gateway(&[]);
    let telegram = FakeTelegram::start(TELEGRAM_BOT).await;
    let mut command = Command::new(profile_binary("gorp-telegram"));
    command
        .env("GORP_GORPD", format!("http://{}", world.server.grpc_addr))
        .env("GORP_TOKEN", world.server.gateway_token("telegram").await)
        .env("GORP_TELEGRAM_TOKEN", TELEGRAM_BOT)
        .env("GORP_TELEGRAM_API_URL", telegram.url())
        .env("GORP_TELEGRAM_STATE_DIR", world.server.data_dir.join("telegram-state"));
    let telegram_gateway = GatewayProcess::spawn(command);
    let mut bus = Chat::open(&mut world.server.admin_bus(), "cli").await;
    world.server.control().bind_session(bind("cli", "c1", "research")).await.unwrap();

    let alice = world.platform.account(User::Alice).await;
    let dm = alice.dm(&world.platform.bot).await;
    alice.say(&dm, "!join research").await;
    alice.answer(&dm, "now bound to research").await;
    telegram.dm(TELEGRAM_CHAT, "alice", "!join research");
    until(|| telegram.texts(TELEGRAM_CHAT).iter().any(|t| t.contains("now bound to research"))).await;

    alice.say(&dm, "from matrix").await;
    telegram.dm(TELEGRAM_CHAT, "alice", "from telegram");
    bus.send("c1", "from the bus").await;
    let answers = ["echo: from matrix", "echo: from telegram", "echo: from the bus"];
    let mut on_bus = Vec::new();
    while on_bus.len() < answers.len() {
        on_bus.push(bus.response().await.text);
    }
    for answer in answers {
        alice.answer(&dm, answer).await;
        until(|| telegram.texts(TELEGRAM_CHAT).iter().any(|t| t == answer)).await;
        assert!(on_bus.iter().any(|t| t == answer), "{answer:?} on the bus: {on_bus:?}");
    }
    assert_eq!(alice.texts(&dm).len(), 4, "one join reply and three answers: {:?}", alice.texts(&dm));
    assert_eq!(telegram.texts(TELEGRAM_CHAT).len(), 4, "{:?}", telegram.texts(TELEGRAM_CHAT));
    telegram_gateway.stop().await;
    matrix_gateway.stop().await;
    world.stop().await;
}
