//! The chat gateways as users deploy them: the real `gorp-telegram` and
//! `gorp-slack` binaries (separate processes) against a real gorpd and the
//! fake platforms from `gorp-fakes`, with the web chat in headless Chromium.
//! One session bound on all three answers on all three.

use crate::browser::Browser;
use gorp_fakes::{FakeSlack, FakeTelegram, GatewayProcess, profile_binary};
use gorpd::testing::TestServer;
use gorpd::testing::clients::{create, until};
use tokio::process::Command;

const TELEGRAM_BOT: &str = "123456:e2e-bot-token";
const SLACK_BOT: &str = "xoxb-e2e-bot";
const SLACK_APP: &str = "xapp-e2e-app";
const SLACK_USER: &str = "U0BOB";
const TELEGRAM_CHAT: i64 = 42;

/// Starts a gateway binary with `env`.
fn spawn(binary: &str, env: &[(&str, String)]) -> GatewayProcess {
    let mut command = Command::new(profile_binary(binary));
    command.envs(env.iter().map(|(k, v)| (k, v))).env("RUST_LOG", "info");
    GatewayProcess::spawn(command)
}

/// Waits until `texts()` holds `expect`.
async fn shows(texts: impl Fn() -> Vec<String>, expect: &str) {
    until(|| texts().iter().any(|t| t == expect)).await;
}

#[tokio::test]
async fn one_session_bound_on_telegram_slack_and_the_web_answers_on_all_three() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_in(dir.path()).await;
    server.control().create_session(create("research")).await.unwrap();
    let telegram = FakeTelegram::start(TELEGRAM_BOT).await;
    let slack = FakeSlack::start(SLACK_BOT, SLACK_APP).await;
    let gorpd = format!("http://{}", server.grpc_addr);
    let telegram_gateway = spawn(
        "gorp-telegram",
        &[
            ("GORP_GORPD", gorpd.clone()),
            ("GORP_TOKEN", server.gateway_token("telegram").await),
            ("GORP_TELEGRAM_TOKEN", TELEGRAM_BOT.into()),
            ("GORP_TELEGRAM_API_URL", telegram.url()),
            ("GORP_TELEGRAM_STATE_DIR", dir.path().join("telegram-state").display().to_string()),
        ],
    );
    let slack_gateway = spawn(
        "gorp-slack",
        &[
            ("GORP_GORPD", gorpd),
            ("GORP_TOKEN", server.gateway_token("slack").await),
            ("GORP_SLACK_BOT_TOKEN", SLACK_BOT.into()),
            ("GORP_SLACK_APP_TOKEN", SLACK_APP.into()),
            ("GORP_SLACK_API_URL", slack.url()),
            ("GORP_SLACK_STATE_DIR", dir.path().join("slack-state").display().to_string()),
        ],
    );
    let browser = Browser::start().await;
    browser.goto(&server.login_url).await;
    browser.wait_for("#send").await;

    // Each platform's user joins the session from their own chat.
    browser.type_into("#text", "!join research\n").await;
    browser.wait_for_text("now bound to research").await;
    telegram.dm(TELEGRAM_CHAT, "alice", "!join research");
    let telegram_texts = || telegram.texts(TELEGRAM_CHAT);
    until(|| telegram_texts().iter().any(|t| t.contains("now bound to research"))).await;
    let slack_dm = FakeSlack::dm_channel(SLACK_USER);
    slack.dm(SLACK_USER, "!join research");
    let slack_texts = || slack.texts(&slack_dm);
    until(|| slack_texts().iter().any(|t| t.contains("now bound to research"))).await;
    // DISPATCH answered each `!join` only where it was asked.
    assert_eq!(telegram_texts().len(), 1, "{:?}", telegram_texts());
    assert_eq!(slack_texts().len(), 1, "{:?}", slack_texts());

    // Whoever writes, the answer reaches every bound channel.
    telegram.dm(TELEGRAM_CHAT, "alice", "from telegram");
    slack.dm(SLACK_USER, "from slack");
    browser.type_into("#text", "from the web\n").await;
    for answer in ["echo: from telegram", "echo: from slack", "echo: from the web"] {
        shows(telegram_texts, answer).await;
        shows(slack_texts, answer).await;
        browser.wait_for_text(answer).await;
    }
    // Each answer once per platform.
    for texts in [telegram_texts(), slack_texts()] {
        assert_eq!(texts.len(), 4, "one join reply and three answers: {texts:?}");
    }

    telegram_gateway.stop().await;
    slack_gateway.stop().await;
    server.stop().await.unwrap();
}
