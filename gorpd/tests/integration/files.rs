//! Attachments end to end on the Bus: a large file streams up in chunks and
//! comes back byte-identical, an upload cut off mid-way and sent again is
//! stored once, over-limit files get a clear error and store nothing, and
//! garbage collection removes only files no message names.

use crate::support::*;
use gorp_proto::v1 as pb;
use gorpd::files::{FILES_DIR, FileLimits};
use gorpd::testing::{TestServer, test_config};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;

/// `len` bytes that differ from chunk to chunk, so a reordered or lost chunk shows.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8 ^ (i / 65_536) as u8).collect()
}

/// Stored files and partial uploads under the data directory's `files/`.
fn stored_files(data_dir: &Path) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let (mut stored, mut partial) = (Vec::new(), Vec::new());
    for folder in std::fs::read_dir(data_dir.join(FILES_DIR)).into_iter().flatten().flatten() {
        let target = if folder.file_name() == "tmp" { &mut partial } else { &mut stored };
        target.extend(std::fs::read_dir(folder.path()).unwrap().flatten().map(|f| f.path()));
    }
    (stored, partial)
}

fn by_reference(name: &str, sha256: &str) -> pb::Attachment {
    pb::Attachment { name: name.into(), sha256: sha256.into(), ..Default::default() }
}

async fn echo_session(server: &TestServer, name: &str) -> Chat {
    let mut control = server.control();
    control.create_session(create(name)).await.unwrap();
    control.bind_session(bind("web", name, name)).await.unwrap();
    Chat::open(&mut server.admin_bus(), "web").await
}

#[tokio::test]
async fn a_large_file_streams_through_the_bus_in_chunks_and_arrives_byte_identical() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let mut chat = echo_session(&server, "big").await;
    let bytes = pattern(5 * 1024 * 1024 + 123);
    let uploaded = client.upload(std::io::Cursor::new(bytes.clone()), bytes.len() as u64).await.unwrap();
    assert_eq!((uploaded.size, uploaded.existed), (bytes.len() as u64, false));

    let answer = chat.say_with("big", "look", vec![by_reference("big.bin", &uploaded.sha256)]).await;
    assert_eq!(answer.text, "echo: look\n[attached file big.bin (application/octet-stream, 5243003 bytes)]");
    assert_eq!(client.download(&uploaded.sha256).await.unwrap(), bytes, "byte-identical after chunks both ways");
    let entries = client.history("big", 0).await.unwrap();
    let listed = &entries[0].attachments[0];
    assert_eq!(
        (listed.name.as_str(), listed.size, listed.sha256.as_str()),
        ("big.bin", 5_243_003, uploaded.sha256.as_str())
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn an_upload_cut_off_mid_way_and_sent_again_is_stored_once() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let bytes = pattern(3 * 1024 * 1024);
    // A gateway dies after two of three chunks.
    let (chunks, rx) = tokio::sync::mpsc::channel(4);
    let mut bus = server.admin_bus();
    let upload = tokio::spawn(async move { bus.upload_attachment(ReceiverStream::new(rx)).await });
    for part in bytes.chunks(1024 * 1024).take(2) {
        chunks.send(pb::UploadChunk { data: part.to_vec(), total_size: 0 }).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    upload.abort();
    drop(chunks);
    // gorpd drops the partial file once it sees the stream end.
    for _ in 0..100 {
        if stored_files(&server.data_dir) == (Vec::new(), Vec::new()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(stored_files(&server.data_dir), (Vec::new(), Vec::new()), "nothing of the cut-off upload is kept");

    // Restarted, it sends the whole file again, and once more (it cannot know the first made it).
    let first = client.upload(std::io::Cursor::new(bytes.clone()), bytes.len() as u64).await.unwrap();
    let again = client.upload(std::io::Cursor::new(bytes.clone()), bytes.len() as u64).await.unwrap();
    assert_eq!(first.sha256, again.sha256);
    assert_eq!((first.existed, again.existed), (false, true));
    let (stored, partial) = stored_files(&server.data_dir);
    assert_eq!((stored.len(), partial.len()), (1, 0), "one file, stored once");
    assert_eq!(std::fs::read(&stored[0]).unwrap(), bytes);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn over_limit_files_get_a_clear_error_and_nothing_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    config.file_limits = FileLimits { max_file_bytes: 1024 * 1024, max_message_bytes: 1536 * 1024 };
    let backends = gorpd::agent_backends(&config);
    let server = TestServer::start_with(config, backends).await;
    let client = server.client().await;
    let mut control = server.control();
    control.create_session(create("small")).await.unwrap();
    control.bind_session(bind("web", "t", "small")).await.unwrap();

    let too_big = pattern(1024 * 1024 + 1);
    let error = client.upload(std::io::Cursor::new(too_big.clone()), too_big.len() as u64).await.unwrap_err();
    assert_eq!(error.code(), Some(Code::ResourceExhausted));
    assert_eq!(error.to_string(), "gorpd: the file is over the limit of 1 MiB per attachment (max_attachment_bytes)");
    // A client that does not say the size first is stopped at the limit all the same.
    let error = client.upload(std::io::Cursor::new(too_big), 0).await.unwrap_err();
    assert_eq!(error.code(), Some(Code::ResourceExhausted));
    assert_eq!(stored_files(&server.data_dir).0.len(), 0, "a refused upload stores nothing");

    let one = client.upload(std::io::Cursor::new(pattern(1024 * 1024)), 1024 * 1024).await.unwrap();
    let two = client.upload(std::io::Cursor::new(vec![7; 1024 * 1024]), 1024 * 1024).await.unwrap();
    let mut publisher = Publisher::open(&mut server.admin_bus()).await.unwrap();
    let unknown = "0".repeat(64);
    let cases: Vec<(Vec<pb::Attachment>, Code, String)> = vec![
        (
            vec![pb::Attachment { name: "x.bin".into(), data: vec![1; 300 * 1024], ..Default::default() }],
            Code::ResourceExhausted,
            "attachment \"x.bin\" is 300 KiB inline; inline data is at most 256 KiB: upload it with UploadAttachment"
                .to_owned(),
        ),
        (
            vec![by_reference("a", &one.sha256), by_reference("b", &two.sha256)],
            Code::ResourceExhausted,
            "the message's attachments (2 MiB) are over the limit of 1.5 MiB per message (max_message_attachment_bytes)"
                .to_owned(),
        ),
        (
            (0..11).map(|i| pb::Attachment { name: format!("{i}"), data: vec![1], ..Default::default() }).collect(),
            Code::InvalidArgument,
            "a message may carry at most 10 attachments, not 11".to_owned(),
        ),
        (
            vec![by_reference("gone", &unknown)],
            Code::InvalidArgument,
            format!("attachment \"gone\" names {unknown}, which was not uploaded (use UploadAttachment first)"),
        ),
        (
            vec![pb::Attachment { name: "../etc/passwd".into(), data: vec![1], ..Default::default() }],
            Code::InvalidArgument,
            "attachment name \"../etc/passwd\" may not contain control characters, '/' or '\\'".to_owned(),
        ),
    ];
    for (i, (attachments, code, reason)) in cases.into_iter().enumerate() {
        let request = pb::PublishRequest { attachments, ..message("web", "t", &format!("m{i}"), "see") };
        let ack = publisher.publish(request).await;
        assert_eq!((ack.status, ack.error_code), (pb::PublishStatus::Rejected as i32, code as i32), "{ack:?}");
        assert_eq!(ack.error, reason);
    }
    assert_eq!(server.store.inbound_count().await.unwrap(), 0, "no refused message was stored");
    assert_eq!(stored_files(&server.data_dir).0.len(), 2, "only the two uploads, none of the refused inline data");
    let tell = pb::TellRequest { attachments: vec![by_reference("gone", &unknown)], ..tell("small", "x") };
    assert_eq!(control.tell(tell).await.unwrap_err().code(), Code::InvalidArgument);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn garbage_collection_removes_files_no_message_refers_to_and_nothing_else() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let mut chat = echo_session(&server, "gc").await;
    let kept = pb::Attachment { name: "kept.txt".into(), data: b"referenced".to_vec(), ..Default::default() };
    chat.say_with("gc", "keep this", vec![kept]).await;
    let orphan = client.upload(std::io::Cursor::new(b"nobody names me".to_vec()), 15).await.unwrap();
    std::fs::write(server.data_dir.join("notes.txt"), "not gorp's").unwrap();

    // An upload whose message may still be on its way is kept for the grace period.
    let collected = server.orchestrator.collect_unreferenced_files(gorpd::orchestrator::FILE_GRACE).await.unwrap();
    assert_eq!(collected.files, 0);
    let collected = server.orchestrator.collect_unreferenced_files(Duration::ZERO).await.unwrap();
    assert_eq!((collected.files, collected.bytes), (1, 15));
    let entries = client.history("gc", 0).await.unwrap();
    let kept = &entries[0].attachments[0];
    assert_eq!(client.download(&kept.sha256).await.unwrap(), b"referenced");
    assert_eq!(client.download(&orphan.sha256).await.unwrap_err().code(), Some(Code::NotFound));
    assert!(server.data_dir.join("notes.txt").exists(), "nothing outside the files folder is touched");
    assert_eq!(stored_files(&server.data_dir).0.len(), 1);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_gateway_token_downloads_only_files_its_platform_saw() {
    let server = TestServer::start().await;
    let mut chat = echo_session(&server, "private").await;
    let file = pb::Attachment { name: "web.txt".into(), data: b"from the web".to_vec(), ..Default::default() };
    chat.say_with("private", "mine", vec![file]).await;
    let sha256 = server.store.referenced_files().await.unwrap().into_iter().next().unwrap();
    let telegram = server.gateway_token("telegram").await;
    let mut bus = server.bus(&telegram);
    let denied = bus.download_attachment(pb::DownloadRequest { sha256: sha256.clone() }).await;
    let status = match denied {
        Ok(stream) => stream.into_inner().message().await.unwrap_err(),
        Err(status) => status,
    };
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    let web = server.gateway_token("web").await;
    let mut chunks = server.bus(&web).download_attachment(pb::DownloadRequest { sha256 }).await.unwrap().into_inner();
    assert_eq!(chunks.message().await.unwrap().unwrap().data, b"from the web");
    server.stop().await.unwrap();
}
