//! Authentication and least privilege: tokens, gateway scopes, revocation,
//! the admin token file, and the unauthenticated health and reflection services.

use crate::support::*;
use gorp_proto::v1 as pb;
use gorpd::testing::TestServer;
use std::os::unix::fs::PermissionsExt;
use tonic::Code;

async fn gateway_token(server: &TestServer, platform: &str) -> (i64, String) {
    let request = pb::CreateTokenRequest {
        name: format!("{platform}-gw"),
        kind: pb::TokenKind::Gateway as i32,
        platform: platform.into(),
    };
    let created = server.control().create_token(request).await.unwrap().into_inner();
    (created.token.unwrap().id, created.secret)
}

#[tokio::test]
async fn requests_without_a_valid_token_are_unauthenticated() {
    let server = TestServer::start().await;
    let channel = server.channel();
    let mut anonymous = pb::control_client::ControlClient::new(channel);
    let status = anonymous.list_sessions(pb::ListSessionsRequest {}).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(status.message().contains("authorization"), "{status:?}");
    let mut wrong = server.bus("gorp_not_a_real_token");
    let status = Publisher::open(&mut wrong).await.err().unwrap();
    assert_eq!((status.code(), status.message()), (Code::Unauthenticated, "invalid or revoked token"));
}

#[tokio::test]
async fn a_gateway_token_is_refused_outside_its_platform() {
    let server = TestServer::start().await;
    let mut control = server.control();
    control.create_session(create("s")).await.unwrap();
    let (_, secret) = gateway_token(&server, "telegram").await;
    let mut bus = server.bus(&secret);

    let mut publisher = Publisher::open(&mut bus).await.unwrap();
    let refused = publisher.publish(message("slack", "C1", "x1", "sneaky")).await;
    assert_eq!(
        (refused.status, refused.error_code),
        (pb::PublishStatus::Rejected as i32, Code::PermissionDenied as i32)
    );
    assert!(refused.error.contains("only for platform \"telegram\""), "{}", refused.error);
    assert_eq!(server.store.inbound_count().await.unwrap(), 0, "nothing stored");
    let accepted = publisher.publish(message("telegram", "1", "t1", "!help")).await;
    assert_eq!(accepted.status, pb::PublishStatus::Accepted as i32);

    let mut other = Subscriber::open(&mut bus, "slack", "slack", None).await.unwrap();
    assert_eq!(other.next().await.unwrap_err().code(), Code::PermissionDenied);
    let mut own = Subscriber::open(&mut bus, "telegram", "tg", None).await.unwrap();
    assert!(own.response().await.text.contains("DISPATCH commands"));

    let status = pb::control_client::ControlClient::with_interceptor(server.channel(), gorpd::testing::bearer(&secret))
        .list_sessions(pb::ListSessionsRequest {})
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert!(status.message().contains("needs an admin token"));

    // BindChannel: only its own platform's channels.
    let (requests, rx) = tokio::sync::mpsc::channel(8);
    let mut events = bus.bind_channel(tokio_stream::wrappers::ReceiverStream::new(rx)).await.unwrap().into_inner();
    let bind_req = |id: &str, platform: &str| pb::BindRequest {
        request_id: id.into(),
        kind: Some(pb::bind_request::Kind::Bind(pb::Bind {
            channel: Some(channel(platform, "c")),
            session: "s".into(),
        })),
    };
    requests.send(bind_req("a", "slack")).await.unwrap();
    requests.send(bind_req("b", "telegram")).await.unwrap();
    let mut results = Vec::new();
    let mut changes = Vec::new();
    while results.len() < 2 || changes.is_empty() {
        match within(events.message()).await.unwrap().unwrap().kind.unwrap() {
            pb::bind_event::Kind::Result(result) => results.push(result),
            pb::bind_event::Kind::Change(change) => changes.push(change),
        }
    }
    assert_eq!((results[0].ok, results[0].error_code), (false, Code::PermissionDenied as i32));
    assert!(results[1].ok, "{:?}", results[1]);
    assert_eq!(changes[0].channel, Some(channel("telegram", "c")));
    assert_eq!(changes[0].session, "s");
    let status = control.get_session(pb::GetSessionRequest { name: "s".into() }).await.unwrap().into_inner();
    assert_eq!(status.channels, vec![channel("telegram", "c")], "the refused bind changed nothing");
}

#[tokio::test]
async fn a_revoked_token_is_refused_and_tokens_are_listed_without_secrets() {
    let server = TestServer::start().await;
    let mut control = server.control();
    let (id, secret) = gateway_token(&server, "slack").await;
    assert!(secret.starts_with("gorp_") && secret.len() == 69);
    let mut bus = server.bus(&secret);
    Publisher::open(&mut bus).await.expect("valid before revocation");
    control.revoke_token(pb::RevokeTokenRequest { id }).await.unwrap();
    let status = Publisher::open(&mut bus).await.err().unwrap();
    assert_eq!(status.code(), Code::Unauthenticated);
    let again = control.revoke_token(pb::RevokeTokenRequest { id }).await.unwrap_err();
    assert_eq!(again.code(), Code::NotFound);

    let tokens = control.list_tokens(pb::ListTokensRequest {}).await.unwrap().into_inner().tokens;
    assert_eq!(tokens.len(), 2, "the admin token and the revoked gateway token");
    assert_eq!((tokens[0].kind, tokens[0].name.as_str()), (pb::TokenKind::Admin as i32, "admin"));
    assert_eq!((tokens[1].platform.as_str(), tokens[1].revoked_at.is_empty()), ("slack", false));
    let bad = pb::CreateTokenRequest { name: "x".into(), kind: pb::TokenKind::Gateway as i32, platform: String::new() };
    assert_eq!(control.create_token(bad).await.unwrap_err().code(), Code::InvalidArgument);
    let bad =
        pb::CreateTokenRequest { name: "Bad Name".into(), kind: pb::TokenKind::Admin as i32, platform: String::new() };
    assert_eq!(control.create_token(bad).await.unwrap_err().code(), Code::InvalidArgument);
}

#[tokio::test]
async fn the_admin_token_file_is_private() {
    let server = TestServer::start().await;
    let path = server.data_dir.join("admin.token");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(std::fs::read_to_string(&path).unwrap().trim() == server.admin_token);
}

#[tokio::test]
async fn health_and_reflection_need_no_token() {
    let server = TestServer::start().await;
    let mut health = tonic_health::pb::health_client::HealthClient::new(server.channel());
    let request = tonic_health::pb::HealthCheckRequest { service: "gorp.v1.Bus".into() };
    let status = health.check(request).await.unwrap().into_inner().status;
    assert_eq!(status, tonic_health::pb::health_check_response::ServingStatus::Serving as i32);

    use tonic_reflection::pb::v1::{ServerReflectionRequest, server_reflection_response::MessageResponse};
    use tonic_reflection::pb::v1::{
        server_reflection_client::ServerReflectionClient, server_reflection_request::MessageRequest,
    };
    let mut reflection = ServerReflectionClient::new(server.channel());
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = reflection.server_reflection_info(tokio_stream::iter([request])).await.unwrap().into_inner();
    let Some(MessageResponse::ListServicesResponse(list)) =
        responses.message().await.unwrap().unwrap().message_response
    else {
        panic!("expected a service list");
    };
    let names: Vec<_> = list.service.iter().map(|s| s.name.as_str()).collect();
    for expected in ["gorp.v1.Bus", "gorp.v1.Control", "grpc.health.v1.Health"] {
        assert!(names.contains(&expected), "{names:?}");
    }
}

#[tokio::test]
async fn with_tls_configured_only_tls_clients_get_through() {
    use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};
    let dir = tempfile::tempdir().unwrap();
    let mut config = gorpd::testing::test_config(dir.path());
    let (tls, ca) = gorpd::testing::tls_certificates(dir.path());
    config.tls = Some(tls);
    config.grpc_addr = "0.0.0.0:7730".parse().unwrap();
    config.validate().expect("a non-loopback address is fine with TLS");
    let backends = gorpd::agent_backends(&config);
    let server = TestServer::start_with(config, backends).await;

    let client_tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca)).domain_name("localhost");
    let channel = Endpoint::from_shared(format!("https://{}", server.grpc_addr))
        .unwrap()
        .tls_config(client_tls)
        .unwrap()
        .connect()
        .await
        .expect("TLS handshake");
    let mut control =
        pb::control_client::ControlClient::with_interceptor(channel, gorpd::testing::bearer(&server.admin_token));
    control.create_session(create("secure")).await.unwrap();

    let plaintext = server.control().list_sessions(pb::ListSessionsRequest {}).await;
    assert!(plaintext.is_err(), "a plaintext client is not served");
    server.stop().await.unwrap();
}

/// A gateway id belongs to the platform it was first seen with: another
/// platform's token cannot take it over (and silence that gateway) with a
/// hello naming it, nor with a cursor past the end of the log.
#[tokio::test]
async fn a_gateway_id_cannot_be_taken_over_by_another_platform_or_a_bogus_cursor() {
    let server = TestServer::start().await;
    let (_, slack_secret) = gateway_token(&server, "slack").await;
    let (_, telegram_secret) = gateway_token(&server, "telegram").await;
    let mut slack = Subscriber::open(&mut server.bus(&slack_secret), "slack", "slack", None).await.unwrap();
    assert!(matches!(slack.next().await.unwrap().kind, Some(pb::delivery::Kind::CaughtUp(_))));
    drop(slack);
    wait_for_gateway(&server.control(), "slack", |g| !g.connected).await;

    let mut hijack = Subscriber::open(&mut server.bus(&telegram_secret), "telegram", "slack", Some(1_000_000_000_000))
        .await
        .unwrap();
    let status = hijack.next().await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert!(status.message().contains("belongs to platform slack"), "{}", status.message());

    let mut past_the_end =
        Subscriber::open(&mut server.bus(&slack_secret), "slack", "slack", Some(1_000_000_000_000)).await.unwrap();
    let status = past_the_end.next().await.unwrap_err();
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    assert!(status.message().contains("past the end of the response log"), "{}", status.message());

    let gateways = server.control().list_gateways(pb::ListGatewaysRequest {}).await.unwrap().into_inner().gateways;
    let row = gateways.iter().find(|g| g.gateway_id == "slack").unwrap();
    assert_eq!((row.platform.as_str(), row.acked_seq), ("slack", 0), "the slack gateway's row is untouched");
}

/// Two processes with one gateway id would both post every answer: the second
/// stream is refused while the first is open, and gets in once it is gone.
#[tokio::test]
async fn a_gateway_id_has_one_delivery_stream_at_a_time() {
    let server = TestServer::start().await;
    let mut bus = server.admin_bus();
    let first = Subscriber::open_live(&mut bus, "web", "web-1").await;
    let mut second = Subscriber::open(&mut bus, "web", "web-1", None).await.unwrap();
    let status = second.next().await.unwrap_err();
    assert_eq!(status.code(), Code::AlreadyExists, "{status:?}");
    drop(first);
    wait_for_gateway(&server.control(), "web-1", |g| !g.connected).await;
    let mut third = Subscriber::open(&mut bus, "web", "web-1", None).await.unwrap();
    assert!(matches!(third.next().await.unwrap().kind, Some(pb::delivery::Kind::CaughtUp(_))));
}

/// Revoking a token ends the streams it opened at once: a Publish stream
/// stops being accepted and a subscription stops receiving.
#[tokio::test]
async fn revoking_a_token_ends_the_streams_it_opened() {
    let server = TestServer::start().await;
    let (id, secret) = gateway_token(&server, "telegram").await;
    let mut bus = server.bus(&secret);
    let mut publisher = Publisher::open(&mut bus).await.unwrap();
    assert_eq!(
        publisher.publish(message("telegram", "1", "a", "!help")).await.status,
        pb::PublishStatus::Accepted as i32
    );
    let mut subscriber = Subscriber::open(&mut bus, "telegram", "tg", None).await.unwrap();
    subscriber.response().await;

    server.control().revoke_token(pb::RevokeTokenRequest { id }).await.unwrap();
    let ended = loop {
        match subscriber.next().await {
            Ok(_) => continue,
            Err(status) => break status,
        }
    };
    assert_eq!(ended.code(), Code::Unauthenticated, "{ended:?}");
    assert!(ended.message().contains("revoked"), "{}", ended.message());
    // The open Publish stream ended too: its next read is the status.
    let status = publisher.ack().await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert_eq!(server.store.inbound_count().await.unwrap(), 1, "nothing accepted after the revocation");
}
