//! The database at its edges: a backup taken under publish load restores to
//! a gorpd that serves the same data; a full database refuses new messages
//! with RESOURCE_EXHAUSTED, keeps serving reads, and recovers when space
//! returns; files gorpd cannot use are refused at start.

use crate::support::*;
use gorp_proto::v1 as pb;
use gorpd::testing::TestServer;
use sha2::Digest;
use std::path::Path;

/// Streams a backup through the Control API into `file`; returns its size.
async fn backup(server: &TestServer, file: &Path) -> u64 {
    let mut chunks = server.control().backup(pb::BackupRequest {}).await.unwrap().into_inner();
    let (mut data, mut total, mut sha256) = (Vec::new(), 0, String::new());
    while let Some(chunk) = chunks.message().await.unwrap() {
        assert!(chunk.data.len() <= 1024 * 1024);
        data.extend_from_slice(&chunk.data);
        total = chunk.total_bytes;
        if !chunk.sha256.is_empty() {
            sha256 = chunk.sha256;
        }
    }
    assert_eq!(data.len() as u64, total);
    assert_eq!(hex::encode(sha2::Sha256::digest(&data)), sha256);
    std::fs::write(file, &data).unwrap();
    total
}

#[tokio::test]
async fn a_backup_taken_under_publish_load_restores_to_a_gorpd_serving_the_same_data() {
    let server = TestServer::start().await;
    if gorpd::testing::runs_on_postgres() {
        let refused = match server.control().backup(pb::BackupRequest {}).await {
            Ok(chunks) => chunks.into_inner().message().await.unwrap_err(),
            Err(status) => status,
        };
        assert_eq!(refused.code(), tonic::Code::FailedPrecondition, "{refused:?}");
        assert!(refused.message().contains("pg_dump"), "the refusal says what to do: {refused:?}");
        return;
    }
    let mut control = server.control();
    for name in ["alpha", "beta"] {
        control.create_session(create(name)).await.unwrap();
        control.bind_session(bind("web", name, name)).await.unwrap();
    }
    let mut chat = Chat::open(&mut server.admin_bus(), "web").await;
    for i in 0..20 {
        chat.say("alpha", &format!("before the backup {i}")).await;
    }
    // Publishing goes on while the backup is taken.
    let load = {
        let mut bus = server.admin_bus();
        tokio::spawn(async move {
            let mut publisher = Publisher::open(&mut bus).await.unwrap();
            for i in 0..300 {
                publisher.publish(message("web", "beta", &format!("load-{i}"), "during the backup")).await;
            }
        })
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gorp-backup.db");
    assert!(backup(&server, &file).await > 0);
    load.await.unwrap();
    let leftovers: Vec<_> = std::fs::read_dir(&server.data_dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| name.starts_with("backup-"))
        .collect();
    assert!(leftovers.is_empty(), "the snapshot file is removed after streaming: {leftovers:?}");
    server.stop().await.unwrap();

    let restored_dir = tempfile::tempdir().unwrap();
    let restored = gorpd::store::restore(&file, restored_dir.path()).await.unwrap();
    assert_eq!(restored.sessions, 2);
    let server = TestServer::start_in(restored_dir.path()).await;
    let mut control = server.control();
    let sessions = control.list_sessions(pb::ListSessionsRequest {}).await.unwrap().into_inner().sessions;
    assert_eq!(sessions.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["alpha", "beta"]);
    assert_eq!(sessions[0].channels, vec![channel("web", "alpha")]);
    let history = control.read_history(pb::ReadHistoryRequest { session: "alpha".into(), count: 100 }).await.unwrap();
    assert_eq!(history.into_inner().entries.len(), 40, "twenty questions and their answers");
    let gateways = control.list_gateways(pb::ListGatewaysRequest {}).await.unwrap().into_inner().gateways;
    assert!(gateways.iter().any(|g| g.gateway_id == "web" && g.acked_seq > 0), "{gateways:?}");
    // It serves: a new message is answered.
    let mut chat = Chat::open(&mut server.admin_bus(), "web").await;
    assert_eq!(chat.say("alpha", "after the restore").await.text, "echo: after the restore");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_full_database_refuses_new_messages_keeps_serving_reads_and_recovers() {
    if gorpd::testing::runs_on_postgres() {
        // max_database_bytes limits SQLite's file; with a store_url it is refused (the config's tests).
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut config = gorpd::testing::test_config(dir.path());
    config.max_database_bytes = Some(2 * 1024 * 1024);
    let backends = gorpd::agent_backends(&config);
    let server = TestServer::start_with(config, backends).await;
    let mut control = server.control();
    control.create_session(create("filler")).await.unwrap();
    control.bind_session(bind("web", "filler", "filler")).await.unwrap();

    let big = "x".repeat(60 * 1024);
    let mut publisher = Publisher::open(&mut server.admin_bus()).await.unwrap();
    let mut accepted = 0;
    let refusal = loop {
        publisher.send(message("web", "filler", &format!("big-{accepted}"), &big)).await;
        match publisher.ack().await {
            Ok(ack) if ack.status == pb::PublishStatus::Accepted as i32 => accepted += 1,
            Ok(ack) => panic!("unexpected ack {ack:?}"),
            Err(status) => break status,
        }
        assert!(accepted < 100, "2 MiB cannot hold 100 messages of 60 KiB twice over");
    };
    assert_eq!(refusal.code(), tonic::Code::ResourceExhausted, "{refusal:?}");
    assert!(refusal.message().contains("full"), "{refusal:?}");

    // Reads and deliveries go on.
    let sessions = control.list_sessions(pb::ListSessionsRequest {}).await.unwrap().into_inner().sessions;
    assert_eq!(sessions.len(), 1);
    let mut subscriber = Subscriber::open(&mut server.admin_bus(), "web", "reader", Some(0)).await.unwrap();
    assert!(subscriber.response().await.text.starts_with("echo: xxx"));

    // Space returns (as when files elsewhere on the disk are removed): publishing works again without a restart.
    server.store.set_size_limit(None).await.unwrap();
    let mut publisher = Publisher::open(&mut server.admin_bus()).await.unwrap();
    let ack = publisher.publish(message("web", "filler", "after-space-returned", "hello again")).await;
    assert_eq!(ack.status, pb::PublishStatus::Accepted as i32, "{ack:?}");
    let mut chat = Chat::open(&mut server.admin_bus(), "web").await;
    assert_eq!(chat.say("filler", "and answered").await.text, "echo: and answered");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_file_that_is_not_a_gorp_database_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("gorp.db"), vec![b'z'; 8192]).unwrap();
    let config = gorpd::testing::test_config(dir.path());
    let backends = gorpd::agent_backends(&config);
    let refused = gorpd::Gorpd::open(config, backends, tokio_util::sync::CancellationToken::new()).await.unwrap_err();
    assert!(refused.to_string().contains("not a gorp database"), "{refused}");
}
