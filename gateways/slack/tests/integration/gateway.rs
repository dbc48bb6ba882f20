//! The gateway binary end to end: DISPATCH, sessions, threads, long and
//! streamed answers, 429s, buttons, the allow-list and refused tokens.

use super::*;
use gorp_fakes::slack::FailureKind;
use gorp_gateway::{NOT_ALLOWED_TEXT, split_message};
use gorpd::testing::clients::{bind, create};

/// gorpd with the echo agent pausing `delay_ms` between chunks.
async fn slow_echo(dir: &std::path::Path, delay_ms: u64) -> TestServer {
    let mut config = gorpd::testing::test_config(dir);
    config.echo_chunk_delay_ms = delay_ms;
    let backends = gorpd::agent_backends(&config);
    TestServer::start_with(config, backends).await
}

#[tokio::test]
async fn a_dm_lands_in_dispatch_and_help_is_answered() {
    let world = World::start().await;
    let gateway = world.gateway(&[]);
    let dm = FakeSlack::dm_channel(ALICE);
    world.slack.dm(ALICE, "!help");
    let help = world.answer(&dm, "!join").await;
    assert!(help.contains("!create"), "{help}");
    assert_eq!(world.slack.posted()[0].thread_ts, None, "a top-level message is answered top-level");
    // The envelope is acked once gorpd acknowledged the message.
    until(|| world.slack.unacked() == 0 && !world.slack.acked().is_empty()).await;
    assert_eq!(world.server.store.inbound_count().await.unwrap(), 1);
    gateway.stop().await;
    world.stop().await;
}

#[tokio::test]
async fn create_and_join_in_a_channel_then_the_agent_answers() {
    let world = World::start().await;
    let gateway = world.gateway(&[]);
    let channel = "C0RESEARCH";
    world.slack.channel_message(channel, ALICE, "!create research", None);
    world.answer(channel, "research").await;
    world.slack.channel_message(channel, ALICE, "!join research", None);
    world.answer(channel, "now bound to research").await;
    world.slack.channel_message(channel, ALICE, "hello agent", None);
    world.answer(channel, "echo: hello agent").await;
    // Slack escapes what users type and expects the bot to escape its text.
    world.slack.channel_message(channel, ALICE, "is 1 < 2 && 3 > 2?", None);
    world.answer(channel, "echo: is 1 &lt; 2 &amp;&amp; 3 &gt; 2?").await;
    gateway.stop().await;
    world.stop().await;
}

#[tokio::test]
async fn a_threaded_message_is_answered_in_its_thread_and_a_top_level_one_top_level() {
    let world = World::start().await;
    world.server.control().create_session(create("threads")).await.unwrap();
    world.server.control().bind_session(bind("slack", "C0THREADS", "threads")).await.unwrap();
    let gateway = world.gateway(&[]);
    let top = world.slack.channel_message("C0THREADS", ALICE, "top level", None);
    world.answer("C0THREADS", "echo: top level").await;
    world.slack.channel_message("C0THREADS", ALICE, "in the thread", Some(&top));
    world.answer("C0THREADS", "echo: in the thread").await;
    let posted = world.slack.posted();
    let find = |text: &str| posted.iter().find(|p| p.text == text).cloned().expect("answered");
    assert_eq!(find("echo: top level").thread_ts, None);
    assert_eq!(find("echo: in the thread").thread_ts.as_deref(), Some(top.as_str()));
    gateway.stop().await;
    world.stop().await;
}

#[tokio::test]
async fn a_mention_arrives_twice_but_is_answered_once() {
    let world = World::start().await;
    world.server.control().create_session(create("mentions")).await.unwrap();
    world.server.control().bind_session(bind("slack", "C0MENTION", "mentions")).await.unwrap();
    let gateway = world.gateway(&[]);
    world.slack.mention("C0MENTION", ALICE, "are you there", None);
    world.answer("C0MENTION", "echo: are you there").await;
    until(|| world.slack.unacked() == 0).await;
    assert_eq!(world.slack.texts("C0MENTION"), vec!["echo: are you there".to_owned()]);
    assert_eq!(world.server.store.inbound_count().await.unwrap(), 1, "the app_mention was a duplicate");
    gateway.stop().await;
    world.stop().await;
}

#[tokio::test]
async fn an_answer_over_4000_characters_arrives_whole_and_split() {
    let world = World::start().await;
    let dm = FakeSlack::dm_channel(ALICE);
    world.server.control().create_session(create("long")).await.unwrap();
    world.server.control().bind_session(bind("slack", &dm, "long")).await.unwrap();
    let gateway = world.gateway(&[]);
    let code: String = (0..40).map(|i| format!("let value_{i} = {i};\n")).collect();
    let mut text = format!("{}\n\n```rust\n{code}```\n{}", "intro words ".repeat(150), "closing words ".repeat(100));
    while text.chars().count() < 4000 {
        text.push('.');
    }
    world.slack.dm(ALICE, &text);
    let expected = split_message(&format!("echo: {text}"), 4000);
    assert!(expected.len() >= 2, "the answer is over the limit");
    until(|| world.slack.texts(&dm) == expected).await;
    assert!(world.slack.posted().iter().all(|m| m.text.chars().count() <= 4000));
    gateway.stop().await;
    world.stop().await;
}

#[tokio::test]
async fn a_streamed_answer_is_one_message_edited_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let world = World::with_server(slow_echo(dir.path(), 300).await).await;
    world.server.control().create_session(create("stream")).await.unwrap();
    world.server.control().bind_session(bind("slack", "C0STREAM", "stream")).await.unwrap();
    let gateway = world.gateway(&[]);
    world.slack.channel_message("C0STREAM", ALICE, "one two three four five six seven", None);
    let full = "echo: one two three four five six seven";
    world.answer("C0STREAM", full).await;
    let posted = world.slack.posted();
    assert_eq!(posted.len(), 1, "one message, edited: {posted:?}");
    assert!(posted[0].edits >= 1, "edited at least once: {posted:?}");
    assert_eq!(posted[0].history.last().map(String::as_str), Some(full));
    assert!(posted[0].history[0].len() < full.len(), "the first text was a partial preview: {posted:?}");
    assert!(world.slack.calls().iter().any(|c| c == "chat.update"));

    // A streamed answer to a threaded message streams inside the thread.
    world.slack.channel_message("C0STREAM", ALICE, "eight nine ten eleven twelve", Some(&posted[0].ts));
    world.answer("C0STREAM", "echo: eight nine ten eleven twelve").await;
    let threaded = world.slack.posted();
    assert_eq!(threaded.len(), 2, "{threaded:?}");
    assert_eq!(threaded[1].thread_ts.as_deref(), Some(posted[0].ts.as_str()));
    assert!(threaded[1].edits >= 1, "{threaded:?}");
    gateway.stop().await;
    world.stop().await;
}

#[tokio::test]
async fn a_429_from_post_message_delays_delivery_instead_of_dropping_it() {
    let world = World::start().await;
    world.slack.fail_next("chat.postMessage", 2, FailureKind::RateLimited { retry_after: 1 });
    let gateway = world.gateway(&[]);
    let dm = FakeSlack::dm_channel(ALICE);
    world.slack.dm(ALICE, "!help");
    world.answer(&dm, "!join").await;
    let posts = world.slack.calls().iter().filter(|c| *c == "chat.postMessage").count();
    assert!(posts >= 3, "two refused posts, then the one that worked: {posts}");
    assert_eq!(world.slack.texts(&dm).len(), 1, "delivered exactly once");
    gateway.stop().await;
    world.stop().await;
}

#[tokio::test]
async fn a_server_error_is_retried_and_a_refused_post_is_skipped() {
    let world = World::start().await;
    let gateway = world.gateway(&[]);
    let dm = FakeSlack::dm_channel(ALICE);
    world.slack.fail_next("chat.postMessage", 1, FailureKind::Status(503));
    world.slack.dm(ALICE, "!help");
    world.answer(&dm, "!join").await;
    world.slack.fail_next("chat.postMessage", 1, FailureKind::Error("channel_not_found".into()));
    world.slack.dm(ALICE, "!list");
    world.slack.dm(ALICE, "!help");
    // Answers go out in order, so the second help means the list answer was settled.
    eventually(|| {
        let helps = world.slack.texts(&dm).iter().filter(|t| t.contains("!join")).count();
        async move { (helps == 2).then_some(()) }
    })
    .await;
    assert_eq!(world.slack.texts(&dm).len(), 2, "the refused answer is skipped, not retried forever");
    gateway.stop().await;
    world.stop().await;
}

#[tokio::test]
async fn slack_trouble_at_startup_is_retried_until_it_connects() {
    let world = World::start().await;
    world.slack.fail_next("auth.test", 2, FailureKind::Status(500));
    world.slack.fail_next("apps.connections.open", 1, FailureKind::RateLimited { retry_after: 1 });
    world.slack.fail_next("apps.connections.open", 1, FailureKind::Error("internal_error".into()));
    let gateway = world.gateway(&[]);
    world.connected().await;
    world.slack.dm(ALICE, "!help");
    world.answer(&FakeSlack::dm_channel(ALICE), "!join").await;
    let calls = world.slack.calls();
    assert_eq!(calls.iter().filter(|c| *c == "auth.test").count(), 3, "{calls:?}");
    assert_eq!(calls.iter().filter(|c| *c == "apps.connections.open").count(), 3, "{calls:?}");
    gateway.stop().await;
    world.stop().await;
}

#[tokio::test]
async fn a_permission_request_gets_buttons_and_approve_resolves_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = gorpd::testing::test_config(dir.path());
    let backends = gorpd::agent_backends(&config).with("scripted", gorpd::testing::HangOrEcho);
    let world = World::with_server(TestServer::start_with(config, backends).await).await;
    let gateway = world.gateway(&[]);
    let dm = FakeSlack::dm_channel(ALICE);
    world.slack.dm(ALICE, "!create careful --agent scripted");
    world.answer(&dm, "careful").await;
    world.slack.dm(ALICE, "!join careful");
    world.answer(&dm, "now bound to careful").await;
    world.slack.dm(ALICE, "ask to write");
    let prompt = eventually(|| {
        let found = world.slack.posted().into_iter().find(|m| m.blocks.is_some());
        async move { found }
    })
    .await;
    assert!(prompt.text.contains("write notes.txt"), "{}", prompt.text);
    let blocks = prompt.blocks.as_ref().unwrap();
    assert_eq!(blocks[0]["type"], "section");
    assert!(blocks[0]["text"]["text"].as_str().unwrap().contains("write notes.txt"));
    let buttons = &blocks[1]["elements"];
    assert_eq!((buttons[0]["text"]["text"].as_str(), buttons[0]["style"].as_str()), (Some("Approve"), Some("primary")));
    assert_eq!((buttons[1]["text"]["text"].as_str(), buttons[1]["style"].as_str()), (Some("Deny"), Some("danger")));
    assert_eq!(buttons[0]["action_id"], "gorp_approve");
    assert_eq!(buttons[1]["action_id"], "gorp_deny");
    let id = buttons[0]["value"].as_str().unwrap().to_owned();
    assert_eq!(buttons[1]["value"].as_str(), Some(id.as_str()));
    world.slack.click(ALICE, &dm, &prompt.ts, "gorp_approve", &id);
    world.answer(&dm, "decision: yes").await;
    gateway.stop().await;
    world.stop().await;
}

#[tokio::test]
async fn a_user_not_on_the_allow_list_reaches_nothing() {
    let world = World::start().await;
    let gateway = world.gateway(&["--allow", "U0BOB, U0CAROL"]);
    let dm = FakeSlack::dm_channel(ALICE);
    world.slack.dm(ALICE, "!help");
    world.answer(&dm, NOT_ALLOWED_TEXT).await;
    assert_eq!(world.server.store.inbound_count().await.unwrap(), 0);
    world.slack.dm("U0BOB", "!help");
    world.answer(&FakeSlack::dm_channel("U0BOB"), "!join").await;
    assert_eq!(world.server.store.inbound_count().await.unwrap(), 1);
    assert_eq!(world.slack.texts(&dm), vec![NOT_ALLOWED_TEXT.to_owned()]);
    gateway.stop().await;
    world.stop().await;
}

/// Runs the gateway to its exit; returns (success, stderr).
async fn run_to_exit(mut command: Command) -> (bool, String) {
    let output = within(command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).output())
        .await
        .expect("run gorp-slack");
    (output.status.success(), String::from_utf8_lossy(&output.stderr).into_owned())
}

#[tokio::test]
async fn a_rejected_gateway_token_exits_non_zero_with_a_clear_message() {
    let world = World::start().await;
    let (success, stderr) = run_to_exit(world.command("not-a-real-token", &[])).await;
    assert!(!success, "{stderr}");
    assert!(stderr.contains("gorpd rejected the gateway token"), "{stderr}");
    assert!(!stderr.contains(BOT_TOKEN) && !stderr.contains(APP_TOKEN), "slack tokens are never logged: {stderr}");
    world.stop().await;
}

#[tokio::test]
async fn an_invalid_slack_bot_token_exits_non_zero_naming_the_flag() {
    let world = World::start().await;
    let mut command = world.command(&world.token, &[]);
    command.env("GORP_SLACK_BOT_TOKEN", "xoxb-revoked");
    let (success, stderr) = run_to_exit(command).await;
    assert!(!success, "{stderr}");
    assert!(stderr.contains("invalid_auth") && stderr.contains("--slack-bot-token"), "{stderr}");
    assert!(!stderr.contains("xoxb-revoked"), "{stderr}");
    world.stop().await;
}

#[tokio::test]
async fn an_invalid_slack_app_token_exits_non_zero_naming_the_flag() {
    let world = World::start().await;
    let mut command = world.command(&world.token, &[]);
    command.env("GORP_SLACK_APP_TOKEN", "xapp-revoked");
    let (success, stderr) = run_to_exit(command).await;
    assert!(!success, "{stderr}");
    assert!(stderr.contains("invalid_auth") && stderr.contains("--slack-app-token"), "{stderr}");
    world.stop().await;
}

#[test]
fn a_bad_flag_exits_64_with_one_line() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_gorp-slack")).arg("--no-such-flag").output().unwrap();
    assert_eq!(output.status.code(), Some(64));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("gorp-slack: "), "{stderr}");
}
