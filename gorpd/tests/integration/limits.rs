//! Bad input: oversize, malformed and incomplete requests get a clear error
//! and change nothing.

use crate::support::*;
use gorp_proto::v1 as pb;
use gorpd::testing::{TestServer, test_config};
use std::time::Duration;
use tonic::Code;

#[tokio::test]
async fn the_text_limit_is_exact_and_an_oversize_message_is_rejected_with_nothing_stored() {
    let server = TestServer::start().await;
    let mut control = server.control();
    control.create_session(create("big")).await.unwrap();
    control.bind_session(bind("web", "t", "big")).await.unwrap();
    let mut bus = server.admin_bus();
    let mut subscriber = Subscriber::open(&mut bus, "web", "web", None).await.unwrap();
    let mut publisher = Publisher::open(&mut bus).await.unwrap();

    let too_big = publisher.publish(message("web", "t", "m1", &"a".repeat(64 * 1024 + 1))).await;
    assert_eq!(
        (too_big.status, too_big.error_code),
        (pb::PublishStatus::Rejected as i32, Code::InvalidArgument as i32)
    );
    assert_eq!(too_big.error, "message text is 65537 bytes; the limit is 65536");
    assert_eq!(server.store.inbound_count().await.unwrap(), 0);
    assert!(subscriber.response_within(Duration::from_millis(200)).await.is_none());

    let at_limit = publisher.publish(message("web", "t", "m2", &"a".repeat(64 * 1024 - 6))).await;
    assert_eq!(at_limit.status, pb::PublishStatus::Accepted as i32);
    assert_eq!(subscriber.response().await.text.len(), 64 * 1024);

    let tell = control.tell(tell("big", &"b".repeat(64 * 1024 + 1))).await.unwrap_err();
    assert_eq!(tell.code(), Code::InvalidArgument);
    let broadcast = control.broadcast(pb::BroadcastRequest { text: "c".repeat(70_000) }).await.unwrap_err();
    assert_eq!(broadcast.code(), Code::InvalidArgument);
    assert_eq!(server.store.inbound_count().await.unwrap(), 1, "only the message at the limit was stored");
}

#[tokio::test]
async fn a_configured_limit_applies_and_frames_beyond_the_grpc_limit_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    config.max_body_bytes = 100;
    let backends = gorpd::agent_backends(&config);
    let server = TestServer::start_with(config, backends).await;
    let mut bus = server.admin_bus();
    let mut publisher = Publisher::open(&mut bus).await.unwrap();
    assert_eq!(
        publisher.publish(message("web", "t", "a", &"x".repeat(100))).await.status,
        pb::PublishStatus::Accepted as i32
    );
    let rejected = publisher.publish(message("web", "t", "b", &"x".repeat(101))).await;
    assert_eq!(rejected.error, "message text is 101 bytes; the limit is 100");
    // Far beyond the configured limit, within the transport's: its own REJECTED ack, and the stream goes on.
    let big = publisher.publish(message("web", "t", "c", &"x".repeat(300 * 1024))).await;
    assert_eq!(big.status, pb::PublishStatus::Rejected as i32);
    assert_eq!(big.error, "message text is 307200 bytes; the limit is 100");
    assert_eq!(publisher.publish(message("web", "t", "d", "fine")).await.status, pb::PublishStatus::Accepted as i32);
    // Beyond the transport's frame limit the stream ends, but a message read
    // before it in the same window still gets its ack first.
    publisher.send(message("web", "t", "e", "before the huge one")).await;
    publisher.send(message("web", "t", "f", &"x".repeat(6 * 1024 * 1024))).await;
    let before = publisher.ack().await.expect("the earlier message is acknowledged");
    assert_eq!((before.message_id.as_str(), before.status), ("e", pb::PublishStatus::Accepted as i32));
    let status = publisher.ack().await.unwrap_err();
    assert!(matches!(status.code(), Code::ResourceExhausted | Code::OutOfRange | Code::InvalidArgument), "{status:?}");
    assert_eq!(server.store.inbound_count().await.unwrap(), 3);
}

#[tokio::test]
async fn sender_names_and_ids_have_a_limit() {
    let server = TestServer::start().await;
    let mut publisher = Publisher::open(&mut server.admin_bus()).await.unwrap();
    let mut long_name = message("web", "t", "a", "hi");
    long_name.sender_name = "n".repeat(60_000);
    let rejected = publisher.publish(long_name).await;
    assert_eq!(rejected.status, pb::PublishStatus::Rejected as i32);
    assert_eq!(rejected.error, "sender name is 60000 bytes; the limit is 256");
    let mut control_chars = message("web", "t", "b", "hi");
    control_chars.sender_id = "a\nb".into();
    assert_eq!(publisher.publish(control_chars).await.error, "sender id contains control characters");
    let mut fine = message("web", "t", "c", "hi");
    fine.sender_name = "n".repeat(256);
    assert_eq!(publisher.publish(fine).await.status, pb::PublishStatus::Accepted as i32);
    assert_eq!(server.store.inbound_count().await.unwrap(), 1);
}

#[tokio::test]
async fn incomplete_or_invalid_fields_are_rejected_with_a_reason() {
    let server = TestServer::start().await;
    let mut publisher = Publisher::open(&mut server.admin_bus()).await.unwrap();
    let mut no_channel = message("web", "t", "m", "hi");
    no_channel.channel = None;
    let cases = [
        (no_channel, "channel is missing"),
        (message("web", "t", "", "hi"), "message id is missing"),
        (message("Web Chat", "t", "m", "hi"), "platform \"Web Chat\" is invalid"),
        (message("web", "", "m", "hi"), "channel id is missing"),
        (message("web", "a\u{7}b", "m", "hi"), "channel id contains control characters"),
        (message("web", "t", &"m".repeat(300), "hi"), "message id is 300 bytes; the limit is 256"),
        (message("web", "t", "m", "   "), "message text is empty"),
    ];
    for (request, reason) in cases {
        let ack = publisher.publish(request).await;
        assert_eq!((ack.status, ack.error_code), (pb::PublishStatus::Rejected as i32, Code::InvalidArgument as i32));
        assert!(ack.error.contains(reason), "{:?} should contain {reason:?}", ack.error);
    }
    assert_eq!(server.store.inbound_count().await.unwrap(), 0);
}

/// A message whose field 1 is a varint where PublishRequest has a sub-message: undecodable.
#[derive(Clone, PartialEq, prost::Message)]
struct NotAPublishRequest {
    #[prost(uint64, tag = "1")]
    channel: u64,
}

#[tokio::test]
async fn malformed_protobuf_is_refused_with_invalid_argument_and_nothing_stored() {
    let server = TestServer::start().await;
    let channel = tonic::service::interceptor::InterceptedService::new(
        server.channel(),
        gorpd::testing::bearer(&server.admin_token),
    );
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let path = tonic::codegen::http::uri::PathAndQuery::from_static("/gorp.v1.Bus/Publish");
    let codec: tonic_prost::ProstCodec<NotAPublishRequest, pb::PublishAck> = tonic_prost::ProstCodec::default();
    let request = tonic::Request::new(tokio_stream::iter([NotAPublishRequest { channel: 7 }]));
    let result = async { grpc.streaming(request, path, codec).await?.into_inner().message().await }.await;
    let status = result.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().starts_with("malformed request"), "{status:?}");
    assert_eq!(server.store.inbound_count().await.unwrap(), 0);
}

#[tokio::test]
async fn subscribe_requires_a_hello_and_acks_only_for_delivered_responses() {
    let server = TestServer::start().await;
    let mut bus = server.admin_bus();
    let (requests, rx) = tokio::sync::mpsc::channel(4);
    requests
        .send(pb::SubscribeRequest { kind: Some(pb::subscribe_request::Kind::Ack(pb::SubscribeAck { seq: 1 })) })
        .await
        .unwrap();
    let mut stream =
        bus.subscribe_responses(tokio_stream::wrappers::ReceiverStream::new(rx)).await.unwrap().into_inner();
    let status = within(stream.message()).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("must be a hello"));

    let mut subscriber = Subscriber::open_live(&mut bus, "web", "web").await;
    subscriber.ack(5).await;
    let status = subscriber.next().await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("not delivered"), "{status:?}");

    let mut bad = Subscriber::open(&mut bus, "web", "Bad Id", None).await.unwrap();
    assert_eq!(bad.next().await.unwrap_err().code(), Code::InvalidArgument);
}

/// With room for two waiting messages, a burst to a slow session is
/// acknowledged only as turns start: publishers slow down, memory does not grow.
#[tokio::test]
async fn a_burst_beyond_the_queue_limit_is_acknowledged_as_turns_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = gorpd::testing::test_config(dir.path());
    config.max_queued_messages = 2;
    config.echo_chunk_delay_ms = 100;
    let server = TestServer::start_with(config.clone(), gorpd::agent_backends(&config)).await;
    server.control().create_session(create("slow")).await.unwrap();
    server.control().bind_session(bind("web", "tab", "slow")).await.unwrap();
    let mut publisher = Publisher::open(&mut server.admin_bus()).await.unwrap();
    for i in 0..8 {
        publisher.send(message("web", "tab", &format!("m{i}"), &format!("n {i}"))).await;
    }
    // One turn running and two waiting hold every permit; the fourth message's ack waits for a turn to start.
    for _ in 0..3 {
        assert_eq!(publisher.ack().await.unwrap().status, pb::PublishStatus::Accepted as i32);
    }
    let early = tokio::time::timeout(std::time::Duration::from_millis(150), publisher.ack()).await;
    assert!(early.is_err(), "the fourth ack waited for room: {early:?}");
    for _ in 3..8 {
        assert_eq!(publisher.ack().await.unwrap().status, pb::PublishStatus::Accepted as i32);
    }
    let mut web = Subscriber::open(&mut server.admin_bus(), "web", "web", None).await.unwrap();
    for i in 0..8 {
        assert_eq!(web.response().await.text, format!("echo: n {i}"), "every message answered, in order");
    }
    server.stop().await.unwrap();
}

#[tokio::test]
async fn any_token_reads_the_limits_and_only_an_admin_the_database_figures() {
    let server = TestServer::start_configured(|config| {
        config.http_max_connections = 300;
        config.dispatch_scopes.platforms.insert("slack".into(), gorpd::orchestrator::DispatchScope::OwnPlatform);
    })
    .await;
    let secret = server.gateway_token("slack").await;
    let mut gateway =
        pb::control_client::ControlClient::with_interceptor(server.channel(), gorpd::testing::bearer(&secret));
    let info = gateway.get_server_info(pb::GetServerInfoRequest {}).await.unwrap().into_inner();
    assert_eq!((info.max_body_bytes, info.max_sender_bytes, info.max_id_bytes), (65536, 256, 256));
    // The largest text any configuration allows, inline attachments (1 MiB) and the envelope.
    assert_eq!(info.max_frame_bytes, 4 * 1024 * 1024 + 1024 * 1024 + 64 * 1024);
    assert_eq!((info.max_attachment_bytes, info.max_message_attachment_bytes), (25 << 20, 100 << 20));
    assert_eq!((info.grpc_max_connections, info.http_max_connections, info.header_read_timeout_secs), (512, 300, 10));
    assert_eq!(info.dispatch_scope, "own-platform");
    assert_eq!((info.database_bytes, info.table_rows.len()), (0, 0), "database figures are for operators");
    let denied = gateway.list_sessions(pb::ListSessionsRequest {}).await.unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied, "the rest of Control stays admin-only");

    let admin = server.control().get_server_info(pb::GetServerInfoRequest {}).await.unwrap().into_inner();
    assert!(admin.database_bytes > 0 && !admin.table_rows.is_empty());
    assert_eq!(admin.dispatch_scope, "");
    server.stop().await.unwrap();
}
