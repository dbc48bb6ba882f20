//! Files through gorpd's ACP backend: a chat's image reaches the scripted
//! agent as an `image` block (or, for an agent without images, as a
//! `resource_link` to a copy in its workspace), and what the agent makes (an
//! image block in its answer, a file it writes to `outbox/`) goes with its
//! final answer, stored and downloadable byte for byte.

use super::*;
use gorpd::testing::TINY_PNG;
use sha2::{Digest, Sha256};

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

fn inline(name: &str, media_type: &str, data: &[u8]) -> pb::Attachment {
    pb::Attachment { name: name.into(), media_type: media_type.into(), data: data.to_vec(), ..Default::default() }
}

#[tokio::test]
async fn an_image_from_a_chat_reaches_the_agent_as_an_image_block() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), |_| {}).await;
    let mut chat = session_with_channel(&server, "viewer").await;
    let files = vec![inline("shot.png", "image/png", &TINY_PNG), inline("notes.txt", "text/plain", b"line one")];
    let answer = chat.say_with("viewer", "blocks", files).await;
    let lines: Vec<&str> = answer.text.lines().collect();
    assert_eq!(lines[0], format!("image image/png 67 {}", sha256_hex(&TINY_PNG)));
    // Not an image: a link to a copy in the workspace, which the agent reads byte for byte.
    assert_eq!(lines[1], format!("resource_link notes.txt text/plain 8 {}", sha256_hex(b"line one")));
    let request = pb::ReadHistoryRequest { session: "viewer".into(), count: 0 };
    let entries = server.control().read_history(request).await.unwrap().into_inner().entries;
    let names: Vec<_> = entries[0].attachments.iter().map(|a| (a.name.as_str(), a.size)).collect();
    assert_eq!(names, [("shot.png", 67), ("notes.txt", 8)], "the history lists the message's files");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn an_agent_without_images_gets_a_link_to_a_copy_instead() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), |config| {
        let profile = AcpProfile {
            env: BTreeMap::from([("GORP_TEST_AGENT_NO_IMAGES".into(), "1".into())]),
            ..unframed_acp(AGENT)
        };
        config.agents.insert("test".into(), AgentProfile::Acp(profile));
    })
    .await;
    let mut chat = session_with_channel(&server, "blind").await;
    let answer = chat.say_with("blind", "blocks", vec![inline("shot.png", "image/png", &TINY_PNG)]).await;
    assert_eq!(answer.text, format!("resource_link shot.png image/png 67 {}", sha256_hex(&TINY_PNG)));
    server.stop().await.unwrap();
}

#[tokio::test]
async fn files_the_agent_makes_go_with_its_final_answer() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), |_| {}).await;
    let mut chat = session_with_channel(&server, "artist").await;
    let client = server.client().await;

    let answer = chat.say("artist", "picture").await;
    assert_eq!(answer.text, "here is a picture");
    let picture = &answer.attachments[..];
    assert_eq!(picture.len(), 1, "{picture:?}");
    assert_eq!((picture[0].name.as_str(), picture[0].media_type.as_str()), ("chart.png", "image/png"));
    assert!(picture[0].data.is_empty(), "deliveries name files; they do not carry them");
    assert_eq!(client.download(&picture[0].sha256).await.unwrap(), TINY_PNG);

    let answer = chat.say("artist", "outbox report.csv a,b").await;
    assert_eq!(answer.text, "wrote outbox/report.csv");
    let report = &answer.attachments[0];
    assert_eq!((report.name.as_str(), report.media_type.as_str(), report.size), ("report.csv", "text/csv", 3));
    assert_eq!(client.download(&report.sha256).await.unwrap(), b"a,b");
    // Only what changed during a turn goes out: the next turn sends nothing again.
    assert!(chat.say("artist", "plain").await.attachments.is_empty());
    server.stop().await.unwrap();
}
