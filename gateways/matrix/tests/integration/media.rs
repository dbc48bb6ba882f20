//! Matrix media both ways, in an encrypted DM, with the scripted ACP test
//! agent: a user's image reaches the agent and gorpd's store byte-identical
//! (the gateway fetched and decrypted it); the agent's image and `outbox/`
//! file arrive as encrypted `m.image` / `m.file` media the user downloads
//! and decrypts byte-identical; a file over gorpd's limit gets a notice; with `--matrix-max-file-bytes` below a
//! file's size it becomes a link line instead.

use crate::driver::Matrix;
use crate::user::{Account, Seen};
use gorp_fakes::{GatewayProcess, profile_binary};
use gorp_gateway::conformance::{Driver, User};
use gorpd::testing::clients::{bind, create};
use gorpd::testing::{TINY_PNG, TestServer, test_config, use_acp_agent};
use matrix_sdk::Room;
use matrix_sdk::attachment::AttachmentConfig;
use matrix_sdk::ruma::events::room::message::{MessageType, RoomMessageEventContent, TextMessageEventContent};
use sha2::{Digest, Sha256};

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// gorpd's `max_attachment_bytes` in this test: the PNG fits, [`TOO_BIG`] does not.
const MAX_ATTACHMENT_BYTES: u64 = 1024;
const TOO_BIG: usize = 2048;

/// gorpd with the scripted ACP test agent as the default agent.
async fn gorpd_with_test_agent(data: &std::path::Path) -> TestServer {
    let mut config = test_config(data);
    config.file_limits.max_file_bytes = MAX_ATTACHMENT_BYTES;
    use_acp_agent(&mut config, &profile_binary("gorp-test-agent").display().to_string());
    let backends = gorpd::agent_backends(&config);
    TestServer::start_with(config, backends).await
}

/// Waits for a media event named `name` from the bot; returns it and its decrypted bytes.
async fn received_media(alice: &Account, dm: &Room, name: &str) -> (Seen, Vec<u8>) {
    let seen = alice.wait_for(dm, |s| s.body() == name && s.content["msgtype"] != "m.text").await;
    let content: RoomMessageEventContent = serde_json::from_value(seen.content.clone()).expect("a room message");
    let bytes = match &content.msgtype {
        MessageType::Image(image) => alice.client.media().get_file(image, false).await,
        MessageType::File(file) => alice.client.media().get_file(file, false).await,
        other => panic!("{name} came as {}", other.msgtype()),
    };
    (seen, bytes.expect("download and decrypt").expect("a media source"))
}

#[tokio::test]
async fn media_in_an_encrypted_dm_reach_the_agent_and_its_files_come_back_as_encrypted_media() {
    let data = tempfile::tempdir().unwrap();
    let server = gorpd_with_test_agent(data.path()).await;
    let platform = Matrix::start().await;
    let token = server.gateway_token("matrix").await;
    let gateway = GatewayProcess::spawn(platform.command(server.grpc_addr, &token));
    let alice = platform.account(User::Alice).await;
    let dm = alice.dm(&platform.bot).await;
    let mut control = server.control();
    control.create_session(create("media")).await.unwrap();
    control.bind_session(bind("matrix", dm.room_id().as_str(), "media")).await.unwrap();

    // In: an image with a caption, encrypted by alice's client.
    let caption = TextMessageEventContent::plain("blocks");
    let config = AttachmentConfig::new().caption(Some(caption));
    dm.send_attachment("shot.png", &mime::IMAGE_PNG, TINY_PNG.to_vec(), config).await.expect("send the image");
    let described = format!("image image/png {} {}", TINY_PNG.len(), sha256_hex(&TINY_PNG));
    alice.answer(&dm, &described).await;
    let history = server.client().await.history("media", 0).await.unwrap();
    let asked = history.iter().find(|e| e.role == "user" && e.text == "blocks").expect("the caption is the text");
    let shot = asked.attachments.iter().find(|a| a.name == "shot.png").expect("the image is an attachment");
    assert_eq!(shot.media_type, "image/png");
    assert_eq!(server.client().await.download(&shot.sha256).await.unwrap(), TINY_PNG, "stored byte-identical");

    // A file over gorpd's limit: its author is told, the caption still goes on, nothing is stored.
    let config = AttachmentConfig::new().caption(Some(TextMessageEventContent::plain("blocks")));
    dm.send_attachment("big.bin", &mime::APPLICATION_OCTET_STREAM, vec![7; TOO_BIG], config).await.expect("send");
    let refused = alice.answer(&dm, "⚠ big.bin was not sent: ").await;
    assert!(refused.body().contains("limit"), "{refused:?}");
    alice.answer(&dm, "no blocks").await;
    let history = server.client().await.history("media", 0).await.unwrap();
    assert!(!history.iter().flat_map(|e| &e.attachments).any(|a| a.name == "big.bin"), "{history:?}");

    // Out: the agent's image block as m.image, its outbox file as m.file, both encrypted.
    alice.say(&dm, "picture").await;
    let (image, bytes) = received_media(&alice, &dm, "chart.png").await;
    assert_eq!(image.content["msgtype"], "m.image", "{image:?}");
    assert!(image.encrypted && image.content["file"]["url"].is_string(), "encrypted media: {image:?}");
    let history = server.client().await.history("media", 0).await.unwrap();
    let chart = history.iter().flat_map(|e| &e.attachments).find(|a| a.name == "chart.png").unwrap();
    assert_eq!(sha256_hex(&bytes), chart.sha256, "the image arrives byte-identical");
    alice.say(&dm, "outbox report.csv a,b").await;
    let (file, bytes) = received_media(&alice, &dm, "report.csv").await;
    assert_eq!(file.content["msgtype"], "m.file", "{file:?}");
    assert!(file.encrypted && file.content["file"]["url"].is_string(), "encrypted media: {file:?}");
    assert_eq!(bytes, b"a,b");
    gateway.stop().await;

    // Above --matrix-max-file-bytes a file is a link line, not media.
    let mut command = platform.command(server.grpc_addr, &token);
    command.args(["--matrix-max-file-bytes", "4", "--web-url", "https://gorp.example/"]);
    let gateway = GatewayProcess::spawn(command);
    alice.say(&dm, "outbox big.txt too large").await;
    let link = alice.answer(&dm, "big.txt (9 bytes) is too large for matrix: https://gorp.example/files/").await;
    assert_eq!(link.content["msgtype"], "m.text", "{link:?}");
    assert!(!alice.texts(&dm).iter().any(|t| t == "big.txt"), "not sent as media: {:?}", alice.texts(&dm));
    gateway.stop().await;
    server.stop().await.unwrap();
}
