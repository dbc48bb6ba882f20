//! The built-in web adapter in a real headless Chromium against a real gorpd:
//! log in, chat with DISPATCH and a session with visible streaming, reload,
//! messages from gRPC clients, approvals, the admin panel, and safe rendering.

use crate::browser::Browser;
use gorp_proto::v1 as pb;
use gorpd::testing::clients::*;
use gorpd::testing::{HangOrEcho, TestServer, test_config};
use serde_json::json;
use std::path::PathBuf;

/// gorpd whose default agent echoes slowly enough to watch it stream, with a
/// `scripted` agent that asks for permission on "ask".
async fn server(dir: &std::path::Path) -> TestServer {
    let mut config = test_config(dir);
    config.echo_chunk_delay_ms = 250;
    let backends = gorpd::agent_backends(&config).with("scripted", HangOrEcho);
    TestServer::start_with(config, backends).await
}

async fn say(browser: &Browser, text: &str) {
    browser.type_into("#text", &format!("{text}\n")).await;
}

/// Clicks the first button in the chat log whose label is `label`.
async fn click_button(browser: &Browser, label: &str) {
    let script = "const b = [...document.querySelectorAll('#log button')].find(b => b.textContent === arguments[0]);\
                  if (!b) return false; b.click(); return true;";
    assert_eq!(browser.eval(script, json!([label])).await, json!(true), "no {label} button");
}

/// Where README screenshots go when `GORP_SCREENSHOT_DIR` is set (relative to the workspace).
fn screenshot_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(std::env::var_os("GORP_SCREENSHOT_DIR")?);
    Some(if dir.is_absolute() { dir } else { PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join(dir) })
}

#[tokio::test]
async fn chat_from_login_to_a_streamed_answer_that_survives_a_reload() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path()).await;
    let browser = Browser::start().await;

    browser.goto(&server.login_url).await;
    browser.wait_for("#send").await;
    say(&browser, "!help").await;
    browser.wait_for_text("DISPATCH commands").await;
    say(&browser, "!create research").await;
    browser.wait_for_text("Created session research").await;
    say(&browser, "!join research").await;
    browser.wait_for_text("now bound to research").await;

    say(&browser, "hello from the browser").await;
    browser.wait_for_text("echo: hello").await;
    let partial = browser.body_text().await;
    assert!(!partial.contains("echo: hello from the browser"), "the answer streams in pieces:\n{partial}");
    browser.wait_for_text("echo: hello from the browser").await;

    // A message from a gRPC client to the same session shows up here.
    server.control().bind_session(bind("telegram", "t1", "research")).await.unwrap();
    let mut telegram = Chat::open(&mut server.admin_bus(), "telegram").await;
    telegram.say("t1", "sent from telegram").await;
    browser.wait_for_text("echo: sent from telegram").await;

    // Agent output is text, never markup.
    say(&browser, "<script>window.pwned = 1</script><b>bold?</b>").await;
    browser.wait_for_text("echo: <script>window.pwned = 1</script><b>bold?</b>").await;
    assert_eq!(
        browser
            .eval("return window.pwned === undefined && document.querySelectorAll('#log b').length === 0", json!([]))
            .await,
        json!(true)
    );

    // Answers render a safe Markdown subset; links only for http(s).
    say(&browser, "**strong** and `code` and [docs](https://example.org/x) and [bad](javascript:alert(1))").await;
    browser.wait_for_text("strong and code and docs").await;
    let rendered = browser
        .eval(
            "const last = [...document.querySelectorAll('#log .msg')].pop();\
             return [last.querySelector('strong')?.textContent, last.querySelector('code')?.textContent,\
                     [...last.querySelectorAll('a')].map(a => a.href)];",
            json!([]),
        )
        .await;
    assert_eq!(rendered, json!(["strong", "code", ["https://example.org/x"]]));

    // A reload keeps the channel, its binding and its history.
    browser.goto(&format!("http://{}/", server.http_addr)).await;
    browser.wait_for_text("echo: hello from the browser").await;
    say(&browser, "after the reload").await;
    browser.wait_for_text("echo: after the reload").await;
    server.stop().await.unwrap();
}

#[tokio::test]
async fn an_approval_clicked_in_the_browser_resolves_the_request() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path()).await;
    let browser = Browser::start().await;
    browser.goto(&server.login_url).await;
    browser.wait_for("#send").await;
    say(&browser, "!create careful --agent scripted").await;
    browser.wait_for_text("Created session careful").await;
    say(&browser, "!join careful").await;
    browser.wait_for_text("now bound to careful").await;
    say(&browser, "ask to write").await;
    browser.wait_for_text("asks for permission: write notes.txt").await;
    click_button(&browser, "Approve").await;
    browser.wait_for_text("decision: yes").await;
    server.stop().await.unwrap();
}

#[tokio::test]
async fn the_admin_panel_lists_sessions_and_gateways_and_unbinds() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path()).await;
    let mut control = server.control();
    control.create_session(create("ops")).await.unwrap();
    control.bind_session(bind("slack", "C42", "ops")).await.unwrap();
    let _gateway = Subscriber::open(&mut server.admin_bus(), "slack", "slack-gw", None).await.unwrap();
    wait_for_gateway(&control, "slack-gw", |g| g.connected).await;

    let browser = Browser::start().await;
    browser.goto(&server.login_url).await;
    browser.wait_for("#send").await;
    let mut publisher = Publisher::open(&mut server.admin_bus()).await.unwrap();
    publisher.publish(message("slack", "C42", "m1", "chart me")).await;
    browser.goto(&format!("http://{}/admin", server.http_addr)).await;
    browser.wait_for_text("ops").await;
    browser.wait_for_text("slack-gw").await;
    // The charts of the last hour are drawn in the page: a line of 60 minutes each, the
    // published message in the last minute, and a lag line for the gateway (its answer is unacked).
    browser.wait_for_text("1 in the hour").await;
    let charts = browser
        .eval(
            "return [...document.querySelectorAll('#charts figure')].map(f => {\
               const line = f.querySelector('svg polyline'); const box = f.querySelector('svg').getBoundingClientRect();\
               return [f.id, line.getAttribute('points').split(' ').length, box.width > 0 && box.height > 0]; })",
            json!([]),
        )
        .await;
    let charts = charts.as_array().unwrap();
    let ids: Vec<&str> = charts.iter().map(|c| c[0].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        ["chart-published", "chart-turns", "chart-ack-latency", "chart-turn-latency", "chart-lag-slack-gw"]
    );
    assert!(charts.iter().all(|c| c[1] == 60 && c[2] == true), "60 points, drawn: {charts:?}");
    if let Some(dir) = screenshot_dir() {
        browser.screenshot(&dir.join("dashboard.png")).await;
    }
    browser.goto(&format!("http://{}/admin/sessions/ops", server.http_addr)).await;
    browser.wait_for_text("slack:C42").await;
    browser.click("form[action$='/unbind'] button").await;
    wait_for_session(&control, "ops", |s| s.channels.is_empty()).await;
    let session = control.get_session(pb::GetSessionRequest { name: "ops".into() }).await.unwrap().into_inner();
    assert!(session.channels.is_empty());
    server.stop().await.unwrap();
}

#[tokio::test]
async fn without_logging_in_nothing_is_shown() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path()).await;
    let browser = Browser::start().await;
    browser.goto(&format!("http://{}/admin", server.http_addr)).await;
    assert!(browser.url().await.contains("/login"), "{}", browser.url().await);
    assert!(!browser.body_text().await.contains("Sessions"));
    browser.goto(&format!("http://{}/", server.http_addr)).await;
    assert!(browser.url().await.contains("/login"));
    // A used login link does not work twice.
    browser.goto(&server.login_url).await;
    browser.goto(&server.login_url).await;
    let fresh = Browser::start().await;
    fresh.goto(&server.login_url).await;
    assert!(!fresh.url().await.ends_with(&format!("{}/", server.http_addr)), "the one-time link was reused");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn the_page_reconnects_after_a_restart_and_shows_what_it_missed() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path()).await;
    let (grpc_addr, http_addr) = (server.grpc_addr, server.http_addr);
    let browser = Browser::start().await;
    browser.goto(&server.login_url).await;
    browser.wait_for("#send").await;
    say(&browser, "!create steady").await;
    say(&browser, "!join steady").await;
    browser.wait_for_text("now bound to steady").await;
    server.control().bind_session(bind("telegram", "t9", "steady")).await.unwrap();
    server.stop().await.unwrap();

    // gorpd comes back on the same ports and data; the page finds it by itself.
    let mut config = test_config(dir.path());
    config.echo_chunk_delay_ms = 1;
    let backends = gorpd::agent_backends(&config);
    let server = TestServer::start_at(config, backends, grpc_addr, http_addr).await;
    let mut telegram = Chat::open(&mut server.admin_bus(), "telegram").await;
    telegram.say("t9", "said while the page was away").await;
    browser.wait_for_text("echo: said while the page was away").await;
    say(&browser, "and after").await;
    browser.wait_for_text("echo: and after").await;
    server.stop().await.unwrap();
}
