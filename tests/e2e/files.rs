//! Files across processes: the real `gorp-telegram` and `gorp-slack`
//! binaries against a real gorpd whose session runs the scripted ACP agent
//! (a process too). A Telegram photo reaches the agent as an image block; a
//! file the agent writes to `outbox/` reaches Telegram (sendDocument) and
//! Slack (the file upload flow) with its bytes, and the web chat serves it
//! as a download behind the login.

use gorp_fakes::telegram::UserFile;
use gorp_fakes::{FakeSlack, FakeTelegram, GatewayProcess, profile_binary};
use gorpd::config::{AcpProfile, AgentProfile};
use gorpd::testing::clients::{bind, create, until};
use gorpd::testing::{TestServer, test_config};
use tokio::process::Command;

const TELEGRAM_BOT: &str = "123456:e2e-files-bot";
const SLACK_BOT: &str = "xoxb-e2e-files";
const SLACK_APP: &str = "xapp-e2e-files";
const SLACK_USER: &str = "U0BOB";
const TELEGRAM_CHAT: i64 = 42;

/// A 1×1 PNG.
const PNG: [u8; 67] = [
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4, 0x89, 0x00, 0x00, 0x00, 0x0a, 0x49,
    0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0x00, 0x01, 0x00, 0x00, 0x05, 0x00, 0x01, 0x0d, 0x0a, 0x2d, 0xb4, 0x00, 0x00,
    0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

fn spawn(binary: &str, env: &[(&str, String)]) -> GatewayProcess {
    let mut command = Command::new(profile_binary(binary));
    command.envs(env.iter().map(|(k, v)| (k, v))).env("RUST_LOG", "info");
    GatewayProcess::spawn(command)
}

/// The web chat's login cookie, from a one-time login link.
async fn web_cookie(http: &reqwest::Client, login_url: &str) -> String {
    let response = http.get(login_url).send().await.unwrap();
    let cookie = response.headers().get("set-cookie").expect("a login cookie").to_str().unwrap();
    cookie.split(';').next().unwrap().to_owned()
}

#[tokio::test]
async fn a_photo_reaches_the_agent_and_its_outbox_file_reaches_telegram_slack_and_the_web() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    let agent = profile_binary("gorp-test-agent").display().to_string();
    let profile = AcpProfile { prompt_template: Some("{text}".into()), ..AcpProfile::new(&agent) };
    config.agents.insert("test".into(), AgentProfile::Acp(profile));
    config.default_agent = "test".into();
    let backends = gorpd::agent_backends(&config);
    let server = TestServer::start_with(config, backends).await;
    let mut control = server.control();
    control.create_session(create("research")).await.unwrap();
    let slack_dm = FakeSlack::dm_channel(SLACK_USER);
    control.bind_session(bind("telegram", &TELEGRAM_CHAT.to_string(), "research")).await.unwrap();
    control.bind_session(bind("slack", &slack_dm, "research")).await.unwrap();
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

    // A photo from Telegram: the agent gets it as an image block (Telegram photos are JPEG).
    telegram.dm_file(TELEGRAM_CHAT, "alice", UserFile::Photo(PNG.to_vec()), "blocks");
    let described = "image image/jpeg 67 ebf4f635a17d10d6eb46ba680b70142419aa3220f228001a036d311a22ee9d2a";
    until(|| telegram.texts(TELEGRAM_CHAT).iter().any(|t| t == described)).await;
    until(|| slack.texts(&slack_dm).iter().any(|t| t == described)).await;

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
    let download = http.get(&url).header("cookie", cookie).send().await.unwrap();
    assert_eq!(download.status(), 200);
    let disposition = download.headers()["content-disposition"].to_str().unwrap().to_owned();
    assert_eq!(disposition, "attachment; filename=\"report.csv\"");
    assert_eq!(download.bytes().await.unwrap().as_ref(), b"a,b");

    telegram_gateway.stop().await;
    slack_gateway.stop().await;
    server.stop().await.unwrap();
}
