//! What is Slack's alone: escaping, threads (streamed ones too), mentions
//! delivered twice, server errors and refusals, trouble at startup and
//! refused Slack tokens; and a gorpd URL list whose first URL is dead.

use super::*;
use gorp_fakes::slack::FailureKind;
use gorpd::testing::clients::{bind, create};

/// gorpd with the echo agent pausing `delay_ms` between chunks.
async fn slow_echo(dir: &std::path::Path, delay_ms: u64) -> TestServer {
    let mut config = gorpd::testing::test_config(dir);
    config.echo_chunk_delay_ms = delay_ms;
    let backends = gorpd::agent_backends(&config);
    TestServer::start_with(config, backends).await
}

#[tokio::test]
async fn what_users_type_is_escaped_back_in_the_answer() {
    let world = World::start().await;
    world.server.control().create_session(create("escapes")).await.unwrap();
    world.server.control().bind_session(bind("slack", "C0ESCAPES", "escapes")).await.unwrap();
    let gateway = world.gateway(&[]);
    // Slack escapes what users type and expects the bot to escape its text.
    world.slack.channel_message("C0ESCAPES", ALICE, "is 1 < 2 && 3 > 2?", None);
    world.answer("C0ESCAPES", "echo: is 1 &lt; 2 &amp;&amp; 3 &gt; 2?").await;
    gateway.stop().await;
    world.stop().await;
}

/// `--gorpd` with several URLs (replicas): the gateway moves on from one
/// that does not answer to the next, and works through it.
#[tokio::test]
async fn a_gorpd_url_list_whose_first_url_is_dead_is_served_by_the_next() {
    let world = World::start().await;
    world.server.control().create_session(create("replicas")).await.unwrap();
    world.server.control().bind_session(bind("slack", "C0REPLICAS", "replicas")).await.unwrap();
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let mut command = world.command(&world.token, &[]);
    command.env("GORP_GORPD", format!("http://{dead},http://{}", world.server.grpc_addr));
    let gateway = GatewayProcess::spawn(command);
    world.connected().await;
    world.slack.channel_message("C0REPLICAS", ALICE, "through the second URL", None);
    world.answer("C0REPLICAS", "echo: through the second URL").await;
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
async fn a_streamed_answer_to_a_threaded_message_streams_inside_the_thread() {
    let dir = tempfile::tempdir().unwrap();
    let world = World::with_server(slow_echo(dir.path(), 300).await).await;
    world.server.control().create_session(create("stream")).await.unwrap();
    world.server.control().bind_session(bind("slack", "C0STREAM", "stream")).await.unwrap();
    let gateway = world.gateway(&[]);
    let top = world.slack.channel_message("C0STREAM", ALICE, "one two three", None);
    world.answer("C0STREAM", "echo: one two three").await;
    world.slack.channel_message("C0STREAM", ALICE, "eight nine ten eleven twelve", Some(&top));
    world.answer("C0STREAM", "echo: eight nine ten eleven twelve").await;
    let posted = world.slack.posted();
    assert_eq!(posted.len(), 2, "{posted:?}");
    assert_eq!(posted[1].thread_ts.as_deref(), Some(top.as_str()));
    assert!(posted[1].edits >= 1, "streamed, edited in place: {posted:?}");
    assert!(posted[1].history[0].len() < posted[1].text.len(), "the first text was a partial preview: {posted:?}");
    assert!(world.slack.calls().iter().any(|c| c == "chat.update"));
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

/// Runs the gateway to its exit; returns (success, stderr).
async fn run_to_exit(mut command: Command) -> (bool, String) {
    let output = within(command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).output())
        .await
        .expect("run gorp-slack");
    (output.status.success(), String::from_utf8_lossy(&output.stderr).into_owned())
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
