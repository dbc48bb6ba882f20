//! Files across processes: the real `gorp-telegram` and `gorp-slack`
//! binaries against a real gorpd whose session runs the scripted ACP agent
//! (a process too). A Telegram photo reaches the agent as an image block, a
//! file shared in Slack as a link to its copy in the workspace; a
//! file the agent writes to `outbox/` reaches Telegram (sendDocument) and
//! Slack (the file upload flow) with its bytes, and the web chat serves it
//! as a download behind the login. In the web chat (headless Chromium), a
//! dropped image and a pasted file reach the agent, images show inline and
//! other files as downloads, and an over-limit file gets a clear error.

use crate::browser::Browser;
use crate::chat_gateways::{ChatGateways, SLACK_USER, TELEGRAM_CHAT};
use gorp_fakes::telegram::UserFile;
use gorp_fakes::{FakeSlack, profile_binary};
use gorpd::testing::clients::{bind, create, until};
use gorpd::testing::{TINY_PNG, TestServer, test_config, use_acp_agent};

/// The web chat's login cookie, from a one-time login link.
async fn web_cookie(http: &reqwest::Client, login_url: &str) -> String {
    let response = http.get(login_url).send().await.unwrap();
    let cookie = response.headers().get("set-cookie").expect("a login cookie").to_str().unwrap();
    cookie.split(';').next().unwrap().to_owned()
}

/// gorpd on `config` with the scripted ACP agent (`gorp-test-agent`) as every session's agent.
async fn with_scripted_agent(mut config: gorpd::config::Config) -> TestServer {
    use_acp_agent(&mut config, &profile_binary("gorp-test-agent").display().to_string());
    let backends = gorpd::agent_backends(&config);
    TestServer::start_with(config, backends).await
}

#[tokio::test]
async fn a_photo_reaches_the_agent_and_its_outbox_file_reaches_telegram_slack_and_the_web() {
    let dir = tempfile::tempdir().unwrap();
    let server = with_scripted_agent(test_config(dir.path())).await;
    let mut control = server.control();
    control.create_session(create("research")).await.unwrap();
    let slack_dm = FakeSlack::dm_channel(SLACK_USER);
    control.bind_session(bind("telegram", &TELEGRAM_CHAT.to_string(), "research")).await.unwrap();
    control.bind_session(bind("slack", &slack_dm, "research")).await.unwrap();
    let gateways = ChatGateways::start(&server, dir.path()).await;
    let (telegram, slack) = (&gateways.telegram, &gateways.slack);

    // A photo from Telegram: the agent gets it as an image block (Telegram photos are JPEG).
    telegram.dm_file(TELEGRAM_CHAT, "alice", UserFile::Photo(TINY_PNG.to_vec()), "blocks");
    let described = "image image/jpeg 67 ebf4f635a17d10d6eb46ba680b70142419aa3220f228001a036d311a22ee9d2a";
    until(|| telegram.texts(TELEGRAM_CHAT).iter().any(|t| t == described)).await;
    until(|| slack.texts(&slack_dm).iter().any(|t| t == described)).await;

    // A file shared in Slack: fetched with the bot token, it reaches the agent too.
    slack.dm_file(SLACK_USER, "notes.txt", "text/plain", b"line one".to_vec(), "blocks");
    let linked =
        "resource_link notes.txt text/plain 8 d9e83a19744a1a2a0408d877dbda4265b1a356913361f4403b5647df33e59d04";
    until(|| slack.texts(&slack_dm).iter().any(|t| t == linked)).await;
    until(|| telegram.texts(TELEGRAM_CHAT).iter().any(|t| t == linked)).await;

    // The agent writes a file: it goes with the answer to every bound channel.
    telegram.dm(TELEGRAM_CHAT, "alice", "outbox report.csv a,b");
    let sent_file = || telegram.sent().into_iter().find_map(|m| m.file.filter(|f| f.name == "report.csv"));
    until(|| sent_file().is_some()).await;
    let sent = sent_file().unwrap();
    assert_eq!((sent.method.as_str(), sent.data.as_slice()), ("senddocument", b"a,b".as_slice()));
    until(|| slack.shared_files().iter().any(|f| f.name == "report.csv")).await;
    let shared = slack.shared_files().into_iter().find(|f| f.name == "report.csv").unwrap();
    assert_eq!((shared.channel.as_str(), shared.data.as_slice()), (slack_dm.as_str(), b"a,b".as_slice()));
    assert!(telegram.texts(TELEGRAM_CHAT).iter().any(|t| t == "wrote outbox/report.csv"));

    // The web chat serves it as a download, to a logged-in browser only.
    let entries = server.client().await.history("research", 0).await.unwrap();
    let report = entries.iter().flat_map(|e| &e.attachments).find(|a| a.name == "report.csv").unwrap().clone();
    let url = format!("http://{}/files/{}/report.csv", server.http_addr, report.sha256);
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    assert_eq!(http.get(&url).send().await.unwrap().status(), 401, "not without the login");
    let cookie = web_cookie(&http, &server.login_url).await;
    let download = http.get(&url).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(download.status(), 200);
    let disposition = download.headers()["content-disposition"].to_str().unwrap().to_owned();
    assert_eq!(disposition, "attachment; filename=\"report.csv\"");
    assert_eq!(download.bytes().await.unwrap().as_ref(), b"a,b");

    // The web chat's uploads are not held to the pages' 64 KiB body bound, only to max_attachment_bytes.
    let page = format!("http://{}/", server.http_addr);
    let page = http.get(page).header("cookie", &cookie).send().await.unwrap().text().await.unwrap();
    let csrf = page.split("data-csrf=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    let upload = format!("http://{}/api/files?name=big.bin&csrf={csrf}", server.http_addr);
    let big = vec![7u8; 300 * 1024];
    let reply = http.post(&upload).header("cookie", &cookie).header("content-type", "application/octet-stream");
    let reply = reply.body(big).send().await.unwrap();
    assert_eq!(reply.status(), 200);
    let stored: serde_json::Value = reply.json().await.unwrap();
    assert_eq!((stored["name"].as_str(), stored["size"].as_u64()), (Some("big.bin"), Some(300 * 1024)));

    gateways.stop().await;
    server.stop().await.unwrap();
}

/// Drops (`drop`) or pastes (`paste`) one file into the chat page, as a user's browser does.
async fn give_file(browser: &Browser, how: &str, name: &str, media_type: &str, base64: &str) {
    let script = "const [how, name, type, data] = arguments;\
                  const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));\
                  const transfer = new DataTransfer();\
                  transfer.items.add(new File([bytes], name, { type: type }));\
                  const event = how === 'drop'\
                    ? new DragEvent('drop', { dataTransfer: transfer, bubbles: true, cancelable: true })\
                    : new ClipboardEvent('paste', { clipboardData: transfer, bubbles: true, cancelable: true });\
                  document.getElementById('log').dispatchEvent(event); return true;";
    browser.eval(script, serde_json::json!([how, name, media_type, base64])).await;
}

#[tokio::test]
async fn files_dropped_or_pasted_into_the_web_chat_reach_the_agent_and_its_files_show() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    config.file_limits = gorpd::files::FileLimits { max_file_bytes: 1024, max_message_bytes: 4096 };
    let server = with_scripted_agent(config).await;
    server.control().create_session(create("viewer")).await.unwrap();
    let browser = Browser::start().await;
    browser.goto(&server.login_url).await;
    browser.wait_for("#send").await;
    browser.type_into("#text", "!join viewer\n").await;
    browser.wait_for_text("now bound to viewer").await;

    give_file(
        &browser,
        "drop",
        "shot.png",
        "image/png",
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAACklEQVR4nGMAAQAABQABDQottAAAAABJRU5ErkJggg==",
    )
    .await;
    give_file(&browser, "paste", "notes.txt", "text/plain", "bGluZSBvbmU=").await;
    browser.wait_for_text("notes.txt (8 bytes)").await;
    browser.wait_for_text("shot.png (67 bytes)").await;
    browser.type_into("#text", "blocks\n").await;
    browser.wait_for_text("image image/png 67 ebf4f635a17d10d6eb46ba680b70142419aa3220f228001a036d311a22ee9d2a").await;
    browser
        .wait_for_text(
            "resource_link notes.txt text/plain 8 d9e83a19744a1a2a0408d877dbda4265b1a356913361f4403b5647df33e59d04",
        )
        .await;

    // Too large for max_attachment_bytes: a clear error, and nothing waits to be sent.
    give_file(&browser, "drop", "big.bin", "application/octet-stream", &"QUFB".repeat(700)).await;
    browser.wait_for_text("not attached: big.bin: the file is over the limit of 1 KiB per attachment").await;

    // The agent's image shows inline (fetched behind the login), its other files as downloads.
    browser.type_into("#text", "picture\n").await;
    browser.wait_for_text("here is a picture").await;
    let loaded = "const image = document.querySelector('#log img[alt=\"chart.png\"]');\
                  return image ? image.complete && image.naturalWidth : -1;";
    until_async(|| async { browser.eval(loaded, serde_json::json!([])).await == serde_json::json!(1) }).await;
    browser.type_into("#text", "outbox report.csv a,b\n").await;
    browser.wait_for_text("report.csv (3 bytes)").await;
    let fetched = "const link = [...document.querySelectorAll('#log a[download]')].find((a) => a.download === 'report.csv');\
                   const reply = await fetch(link.href); return await reply.text();";
    assert_eq!(browser.eval(&format!("return (async () => {{ {fetched} }})()"), serde_json::json!([])).await, "a,b");
    server.stop().await.unwrap();
}

/// Polls an async condition until it holds (the page loads images on its own time).
async fn until_async<F: std::future::Future<Output = bool>>(condition: impl Fn() -> F) {
    for _ in 0..200 {
        if condition().await {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("condition not met within 10 s");
}
