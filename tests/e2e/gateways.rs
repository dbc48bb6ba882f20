//! The chat gateways as users deploy them: the real `gorp-telegram` and
//! `gorp-slack` binaries (separate processes) against a real gorpd and the
//! fake platforms from `gorp-fakes`, with the web chat in headless Chromium.
//! One session bound on all three answers on all three.

use crate::browser::Browser;
use crate::chat_gateways::{ChatGateways, SLACK_USER, TELEGRAM_CHAT};
use gorp_fakes::FakeSlack;
use gorpd::testing::TestServer;
use gorpd::testing::clients::{create, until};

/// Waits until `texts()` holds `expect`.
async fn shows(texts: impl Fn() -> Vec<String>, expect: &str) {
    until(|| texts().iter().any(|t| t == expect)).await;
}

#[tokio::test]
async fn one_session_bound_on_telegram_slack_and_the_web_answers_on_all_three() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_in(dir.path()).await;
    server.control().create_session(create("research")).await.unwrap();
    let gateways = ChatGateways::start(&server, dir.path()).await;
    let (telegram, slack) = (&gateways.telegram, &gateways.slack);
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

    gateways.stop().await;
    server.stop().await.unwrap();
}
