//! What is Telegram's alone: message ids numbered per chat, button presses
//! as commands, the config file; and the proof that the conformance suite
//! fails a gateway that repeats its answers.

use super::driver::{BOT_TOKEN, Telegram};
use gorp_fakes::GatewayProcess;
use gorp_gateway::NOT_ALLOWED_TEXT;
use gorp_gateway::conformance::{self, Driver, User, World, wait_for};
use tokio::process::Command;

#[tokio::test]
async fn the_same_message_id_in_two_chats_is_two_messages() {
    let world = World::<Telegram>::start().await;
    let gateway = world.gateway(&[]);
    let telegram = &world.platform.fake;
    // Telegram numbers messages per chat: both of these are message 1.
    assert_eq!(telegram.dm(42, "alice", "!help"), telegram.dm(43, "bob", "!help"));
    for chat in [42, 43] {
        let answered = || telegram.texts(chat).iter().any(|t| t.contains("!join")).then_some(());
        wait_for(<Telegram>::PATIENCE, "the help answer", answered).await;
    }
    assert_eq!(world.inbound().await, 2);
    gateway.stop().await;
    world.stop().await;
}

#[tokio::test]
async fn a_button_press_becomes_a_command_from_that_chat() {
    let world = World::<Telegram>::start().await;
    let gateway = world.gateway(&[]);
    let dm = world.platform.dm(User::Alice).await;
    world.platform.say(&dm, User::Alice, "!help").await;
    let help = world.answer(&dm, "!join").await;
    let query = world.platform.fake.press(42, "alice", help.id.parse().unwrap(), "d:nope1");
    let pressed = || {
        let answered = world.platform.fake.answered_callbacks().contains(&query);
        (answered && world.texts(&dm).len() >= 2).then_some(())
    };
    wait_for(<Telegram>::PATIENCE, "the press is answered and its command replied to", pressed).await;
    assert_eq!(world.inbound().await, 2);
    gateway.stop().await;
    world.stop().await;
}

#[tokio::test]
async fn settings_come_from_a_config_file_under_env_vars() {
    let world = World::<Telegram>::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("telegram.toml");
    let settings = format!(
        "gorpd = \"http://{}\"\ntoken = \"not-the-token\"\ntelegram-token = \"{BOT_TOKEN}\"\n\
         telegram_api_url = \"{}\"\nallow = [\"42\"]\n",
        world.server.grpc_addr,
        world.platform.fake.url()
    );
    std::fs::write(&file, settings).unwrap();
    // The env var wins over the file's (wrong) gateway token.
    let mut command = Command::new(env!("CARGO_BIN_EXE_gorp-telegram"));
    command.env("GORP_TOKEN", &world.token).arg("--config").arg(&file);
    command.env("GORP_TELEGRAM_STATE_DIR", dir.path().join("telegram-state"));
    let gateway = GatewayProcess::spawn(command);
    let dm = world.platform.dm(User::Alice).await;
    world.platform.say(&dm, User::Alice, "!help").await;
    world.answer(&dm, "!join").await;
    world.platform.expect_refused(User::Carol).await;
    assert_eq!(world.platform.fake.texts(7), [NOT_ALLOWED_TEXT]);
    gateway.stop().await;

    std::fs::write(&file, "telegram_tokn = \"typo\"\n").unwrap();
    let mut typo = Command::new(env!("CARGO_BIN_EXE_gorp-telegram"));
    let output =
        tokio::time::timeout(<Telegram>::PATIENCE, typo.arg("--config").arg(&file).output()).await.unwrap().unwrap();
    assert_eq!(output.status.code(), Some(64));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("unknown setting `telegram_tokn`"), "{stderr}");
    world.stop().await;
}

/// The suite can fail: against a driver that sees every answer twice (as
/// users would see a gateway that repeats them), a restart scenario does.
#[tokio::test]
#[should_panic(expected = "answered once")]
async fn the_suite_fails_a_gateway_that_repeats_answers_across_a_restart() {
    conformance::a_restarted_gateway_reads_what_it_missed_and_repeats_nothing::<Telegram<true>>().await;
}

/// The suite can fail: a streamed answer shown twice is not "one message".
#[tokio::test]
#[should_panic(expected = "one message, no second copy")]
async fn the_suite_fails_a_gateway_that_posts_a_streamed_answer_twice() {
    conformance::a_streamed_answer_is_one_message_edited_until_it_reads_the_final_text::<Telegram<true>>().await;
}
