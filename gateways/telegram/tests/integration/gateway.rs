//! The gateway binary end to end: DISPATCH, sessions, long answers, 429s,
//! buttons, the allow-list and a rejected token.

use super::*;
use gorp_gateway::{NOT_ALLOWED_TEXT, split_message};

#[tokio::test]
async fn a_dm_lands_in_dispatch_and_help_is_answered() {
    let world = World::start().await;
    let gateway = world.gateway(&[]);
    let asked = world.telegram.dm(42, "alice", "!help");
    let help = world.answer(42, "!join").await;
    assert!(help.contains("!create"), "{help}");
    let sent = world.telegram.sent();
    assert_eq!(sent[0].reply_to, Some(asked), "the answer replies to the question");
    // The update was acknowledged by gorpd, so the next poll confirms it.
    until(|| world.telegram.confirmed_offset() > 1).await;
    assert_eq!(world.server.store.inbound_count().await.unwrap(), 1);
    gateway.stop().await;
    world.stop().await;
}

#[tokio::test]
async fn the_same_message_id_in_two_chats_is_two_messages() {
    let world = World::start().await;
    let gateway = world.gateway(&[]);
    // Telegram numbers messages per chat: both of these are message 1.
    assert_eq!(world.telegram.dm(42, "alice", "!help"), world.telegram.dm(43, "bob", "!help"));
    world.answer(42, "!join").await;
    world.answer(43, "!join").await;
    assert_eq!(world.server.store.inbound_count().await.unwrap(), 2);
    gateway.stop().await;
    world.stop().await;
}

#[tokio::test]
async fn an_answer_replies_to_the_question_only_in_the_chat_that_asked() {
    let world = World::start().await;
    world.server.control().create_session(gorpd::testing::clients::create("shared")).await.unwrap();
    let gateway = world.gateway(&[]);
    for (chat, user) in [(42, "alice"), (43, "bob")] {
        world.telegram.dm(chat, user, "!join shared");
        world.answer(chat, "now bound to shared").await;
    }
    // Message 2 of chat 42; chat 43 has a message 2 too (the bot's reply).
    let asked = world.telegram.dm(42, "alice", "question");
    world.answer(42, "echo: question").await;
    world.answer(43, "echo: question").await;
    let answers: Vec<_> = world.telegram.sent().into_iter().filter(|m| m.text == "echo: question").collect();
    let reply_in = |chat| answers.iter().find(|m| m.chat_id == chat).unwrap().reply_to;
    assert_eq!(reply_in(42), Some(asked));
    assert_eq!(reply_in(43), None, "message {asked} of chat 43 is another message");
    gateway.stop().await;
    world.stop().await;
}

#[tokio::test]
async fn create_and_join_in_a_group_then_the_agent_answers() {
    let world = World::start().await;
    let gateway = world.gateway(&[]);
    let group = -100_123;
    world.telegram.group_message(group, 42, "alice", "!create research");
    world.answer(group, "research").await;
    world.telegram.group_message(group, 42, "alice", "!join research");
    world.answer(group, "now bound to research").await;
    world.telegram.group_message(group, 42, "alice", "hello agent");
    world.answer(group, "echo: hello agent").await;
    gateway.stop().await;
    world.stop().await;
}

#[tokio::test]
async fn an_answer_over_4096_characters_arrives_whole_and_split() {
    let world = World::start().await;
    world.server.control().create_session(gorpd::testing::clients::create("long")).await.unwrap();
    world.server.control().bind_session(gorpd::testing::clients::bind("telegram", "42", "long")).await.unwrap();
    let gateway = world.gateway(&[]);
    let code: String = (0..40).map(|i| format!("let value_{i} = {i};\n")).collect();
    let mut text = format!("{}\n\n```rust\n{code}```\n{}", "intro words ".repeat(150), "closing words ".repeat(100));
    // As long as a user can send (4096); the echo's prefix takes the answer over.
    while text.chars().count() < 4096 {
        text.push('.');
    }
    world.telegram.dm(42, "alice", &text);
    let expected = split_message(&format!("echo: {text}"), 4096);
    assert!(expected.len() >= 2, "the answer is over the limit");
    until(|| world.telegram.texts(42) == expected).await;
    assert!(world.telegram.sent().iter().all(|m| m.text.chars().count() <= 4096));
    gateway.stop().await;
    world.stop().await;
}

#[tokio::test]
async fn a_429_from_send_message_delays_delivery_instead_of_dropping_it() {
    let world = World::start().await;
    world.telegram.fail_next("sendMessage", 2, FakeTelegram::too_many_requests(1));
    let gateway = world.gateway(&[]);
    world.telegram.dm(42, "alice", "!help");
    world.answer(42, "!join").await;
    let sends = world.telegram.calls().iter().filter(|c| *c == "sendmessage").count();
    assert!(sends >= 3, "two refused sends, then the one that worked: {sends}");
    assert_eq!(world.telegram.texts(42).len(), 1, "delivered exactly once");
    gateway.stop().await;
    world.stop().await;
}

#[tokio::test]
async fn a_button_press_becomes_a_command_from_that_chat() {
    let world = World::start().await;
    let gateway = world.gateway(&[]);
    world.telegram.dm(42, "alice", "!help");
    world.answer(42, "!join").await;
    let message = world.telegram.sent()[0].message_id;
    let query = world.telegram.press(42, "alice", message, "d:nope1");
    eventually(|| {
        let answered = world.telegram.answered_callbacks().contains(&query);
        let replied = world.telegram.texts(42).len() >= 2;
        async move { (answered && replied).then_some(()) }
    })
    .await;
    assert_eq!(world.server.store.inbound_count().await.unwrap(), 2);
    gateway.stop().await;
    world.stop().await;
}

#[tokio::test]
async fn a_user_not_on_the_allow_list_reaches_nothing() {
    let world = World::start().await;
    let gateway = world.gateway(&["--allow", "7,@Bob"]);
    world.telegram.dm(42, "alice", "!help");
    world.answer(42, NOT_ALLOWED_TEXT).await;
    assert_eq!(world.server.store.inbound_count().await.unwrap(), 0);
    world.telegram.dm(8, "bob", "!help");
    world.answer(8, "!join").await;
    world.telegram.dm(7, "carol", "!help");
    world.answer(7, "!join").await;
    assert_eq!(world.server.store.inbound_count().await.unwrap(), 2);
    assert_eq!(world.telegram.texts(42), vec![NOT_ALLOWED_TEXT.to_owned()]);
    gateway.stop().await;
    world.stop().await;
}

#[tokio::test]
async fn a_rejected_gateway_token_exits_non_zero_with_a_clear_message() {
    let world = World::start().await;
    let mut command = world.command("not-a-real-token", &[]);
    let output = within(command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).output())
        .await
        .expect("run gorp-telegram");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("gorpd rejected the gateway token"), "{stderr}");
    assert!(!stderr.contains(BOT_TOKEN), "the bot token is never logged: {stderr}");
    world.stop().await;
}

#[tokio::test]
async fn a_permission_request_gets_buttons_and_approve_resolves_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = gorpd::testing::test_config(dir.path());
    let backends = gorpd::agent_backends(&config).with("scripted", gorpd::testing::HangOrEcho);
    let server = TestServer::start_with(config, backends).await;
    let token = gateway_token(&server).await;
    let telegram = FakeTelegram::start(BOT_TOKEN).await;
    let world = World { server, telegram, token };
    let gateway = world.gateway(&[]);
    world.telegram.dm(42, "alice", "!create careful --agent scripted");
    world.answer(42, "careful").await;
    world.telegram.dm(42, "alice", "!join careful");
    world.answer(42, "now bound to careful").await;
    world.telegram.dm(42, "alice", "ask to write");
    let prompt = eventually(|| {
        let found = world.telegram.sent().into_iter().find(|m| m.reply_markup.is_some());
        async move { found }
    })
    .await;
    assert!(prompt.text.contains("write notes.txt"), "{}", prompt.text);
    let buttons = &prompt.reply_markup.as_ref().unwrap()["inline_keyboard"][0];
    assert_eq!(buttons[0]["text"], "Approve");
    assert_eq!(buttons[1]["text"], "Deny");
    let approve = buttons[0]["callback_data"].as_str().unwrap();
    assert!(approve.starts_with("a:") && approve.len() <= 64, "{approve}");
    assert!(buttons[1]["callback_data"].as_str().unwrap().starts_with("d:"));
    let query = world.telegram.press(42, "alice", prompt.message_id, approve);
    world.answer(42, "decision: yes").await;
    assert!(world.telegram.answered_callbacks().contains(&query));
    gateway.stop().await;
    world.stop().await;
}

#[test]
fn a_bad_flag_exits_64_with_one_line() {
    let output =
        std::process::Command::new(env!("CARGO_BIN_EXE_gorp-telegram")).arg("--no-such-flag").output().unwrap();
    assert_eq!(output.status.code(), Some(64));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("gorp-telegram: "), "{stderr}");

    let empty_token = std::process::Command::new(env!("CARGO_BIN_EXE_gorp-telegram"))
        .env("GORP_TOKEN", "")
        .env("GORP_TELEGRAM_TOKEN", BOT_TOKEN)
        .output()
        .unwrap();
    assert_eq!(empty_token.status.code(), Some(64));
    let stderr = String::from_utf8(empty_token.stderr).unwrap();
    assert!(stderr.contains("gorp-telegram: the gateway token is empty"), "{stderr}");
}

#[tokio::test]
async fn a_streamed_answer_is_one_message_edited_until_it_reads_the_final_text() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = gorpd::testing::test_config(dir.path());
    config.echo_chunk_delay_ms = 300;
    let server = TestServer::start_with(config.clone(), gorpd::agent_backends(&config)).await;
    server.control().create_session(gorpd::testing::clients::create("slow")).await.unwrap();
    server.control().bind_session(gorpd::testing::clients::bind("telegram", "42", "slow")).await.unwrap();
    let world = World { token: gateway_token(&server).await, server, telegram: FakeTelegram::start(BOT_TOKEN).await };
    let gateway = world.gateway(&["--edit-interval-ms", "100"]);
    world.telegram.dm(42, "alice", "one two three four five");
    let answer = "echo: one two three four five";
    let message = eventually(|| {
        let done = world.telegram.sent().into_iter().find(|m| m.text == answer);
        async move { done }
    })
    .await;
    assert!(message.edits >= 2, "shown while streaming, then edited to the final text: {message:?}");
    assert_eq!(world.telegram.texts(42), vec![answer.to_owned()], "one message, no second copy");
    gateway.stop().await;
    world.stop().await;
}

#[tokio::test]
async fn settings_come_from_a_config_file_under_env_vars() {
    let world = World::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("telegram.toml");
    let settings = format!(
        "gorpd = \"http://{}\"\ntoken = \"not-the-token\"\ntelegram-token = \"{BOT_TOKEN}\"\n\
         telegram_api_url = \"{}\"\nallow = [\"42\"]\n",
        world.server.grpc_addr,
        world.telegram.url()
    );
    std::fs::write(&file, settings).unwrap();
    // The env var wins over the file's (wrong) gateway token.
    let mut command = Command::new(env!("CARGO_BIN_EXE_gorp-telegram"));
    command.env("GORP_TOKEN", &world.token).arg("--config").arg(&file);
    command.env("GORP_TELEGRAM_STATE_DIR", world.server.data_dir.join("telegram-state"));
    let gateway = GatewayProcess::spawn(command);
    world.telegram.dm(42, "alice", "!help");
    world.answer(42, "!join").await;
    world.telegram.dm(7, "mallory", "!help");
    world.answer(7, NOT_ALLOWED_TEXT).await;
    gateway.stop().await;

    std::fs::write(&file, "telegram_tokn = \"typo\"\n").unwrap();
    let output =
        within(Command::new(env!("CARGO_BIN_EXE_gorp-telegram")).arg("--config").arg(&file).output()).await.unwrap();
    assert_eq!(output.status.code(), Some(64));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("unknown setting `telegram_tokn`"), "{stderr}");
    world.stop().await;
}

/// Issue 11, finding 7: a gateway killed mid-answer leaves no half-streamed
/// preview behind; after the restart the answer is finished in that message.
#[tokio::test]
async fn a_gateway_killed_mid_answer_finishes_it_in_its_preview_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = gorpd::testing::test_config(dir.path());
    config.echo_chunk_delay_ms = 250;
    let server = TestServer::start_with(config.clone(), gorpd::agent_backends(&config)).await;
    server.control().create_session(gorpd::testing::clients::create("slow")).await.unwrap();
    server.control().bind_session(gorpd::testing::clients::bind("telegram", "42", "slow")).await.unwrap();
    let world = World { token: gateway_token(&server).await, server, telegram: FakeTelegram::start(BOT_TOKEN).await };
    let first = world.gateway(&["--edit-interval-ms", "100"]);
    let question = "alpha beta gamma delta epsilon zeta eta theta iota kappa";
    world.telegram.dm(42, "alice", question);
    // Killed mid-answer once the preview is established (edited once: it
    // was recorded before the flush that edits it).
    until(|| world.telegram.sent().first().is_some_and(|m| m.edits >= 1)).await;
    first.kill().await;
    let second = world.gateway(&["--edit-interval-ms", "100"]);
    let answer = format!("echo: {question}");
    world.answer(42, &answer).await;
    assert_eq!(world.telegram.texts(42), vec![answer], "one message per answer, the preview edited to the final");
    second.stop().await;
    world.stop().await;
}
