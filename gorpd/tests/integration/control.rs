//! The Control API: each DISPATCH operation as a typed RPC, gateways and watch.

use crate::support::*;
use gorp_proto::v1 as pb;
use gorpd::testing::TestServer;
use tonic::Code;

#[tokio::test]
async fn every_fleet_operation_works_through_control_with_clear_errors() {
    let server = TestServer::start().await;
    let mut control = server.control();
    let created = control
        .create_session(pb::CreateSessionRequest {
            name: "ops".into(),
            workspace: "team/ops".into(),
            agent: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(created.workspace_dir.ends_with("workspaces/team/ops"), "{}", created.workspace_dir);
    assert_eq!((created.backend.as_str(), created.state.as_str()), ("echo", "idle"));
    control.create_session(create("dev")).await.unwrap();

    let errors = [
        (control.create_session(create("ops")).await.unwrap_err(), Code::AlreadyExists),
        (control.create_session(create("No Caps")).await.unwrap_err(), Code::InvalidArgument),
        (
            control
                .create_session(pb::CreateSessionRequest {
                    name: "x".into(),
                    workspace: "../../x".into(),
                    agent: String::new(),
                })
                .await
                .unwrap_err(),
            Code::InvalidArgument,
        ),
        (control.get_session(pb::GetSessionRequest { name: "nope".into() }).await.unwrap_err(), Code::NotFound),
        (control.delete_session(pb::DeleteSessionRequest { name: "nope".into() }).await.unwrap_err(), Code::NotFound),
        (control.bind_session(bind("web", "t", "nope")).await.unwrap_err(), Code::NotFound),
        (
            control.bind_session(pb::BindSessionRequest { channel: None, session: "ops".into() }).await.unwrap_err(),
            Code::InvalidArgument,
        ),
        (
            control
                .unbind_channel(pb::UnbindChannelRequest { channel: Some(channel("web", "never")) })
                .await
                .unwrap_err(),
            Code::NotFound,
        ),
        (control.tell(tell("nope", "hi")).await.unwrap_err(), Code::NotFound),
        (control.tell(tell("ops", "")).await.unwrap_err(), Code::InvalidArgument),
        (
            control.read_history(pb::ReadHistoryRequest { session: "nope".into(), count: 1 }).await.unwrap_err(),
            Code::NotFound,
        ),
    ];
    for (status, code) in errors {
        assert_eq!(status.code(), code, "{status:?}");
        assert!(!status.message().is_empty());
    }

    control.bind_session(bind("slack", "C1", "ops")).await.unwrap();
    let moved = control.bind_session(bind("slack", "C1", "dev")).await.unwrap().into_inner();
    assert_eq!(moved.previous_session, "ops");
    let unbound = control
        .unbind_channel(pb::UnbindChannelRequest { channel: Some(channel("slack", "C1")) })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(unbound.session, "dev");
    control.bind_session(bind("slack", "C1", "ops")).await.unwrap();

    let mut slack = Subscriber::open(&mut server.admin_bus(), "slack", "slack", None).await.unwrap();
    control.tell(tell("ops", "from the operator")).await.unwrap();
    assert_eq!(slack.response().await.text, "echo: from the operator");
    let told = control.broadcast(pb::BroadcastRequest { text: "all hands".into() }).await.unwrap().into_inner();
    assert_eq!(told.sessions, ["dev", "ops"]);
    assert_eq!(slack.response().await.text, "echo: all hands");

    let history =
        control.read_history(pb::ReadHistoryRequest { session: "ops".into(), count: 3 }).await.unwrap().into_inner();
    let lines: Vec<_> = history.entries.iter().map(|e| format!("{}/{}: {}", e.role, e.author, e.text)).collect();
    assert_eq!(
        lines,
        ["assistant/ops: echo: from the operator", "user/operator: all hands", "assistant/ops: echo: all hands"]
    );

    let list = control.list_sessions(pb::ListSessionsRequest {}).await.unwrap().into_inner().sessions;
    let names: Vec<_> = list.iter().map(|s| (s.name.as_str(), s.channels.len())).collect();
    assert_eq!(names, [("dev", 0), ("ops", 1)]);

    let deleted = control.delete_session(pb::DeleteSessionRequest { name: "ops".into() }).await.unwrap().into_inner();
    assert_eq!(deleted.unbound, vec![channel("slack", "C1")]);
    let notice = slack.response().await;
    assert!(notice.text.contains("Session ops was deleted"), "{}", notice.text);
    assert_eq!(
        control.get_session(pb::GetSessionRequest { name: "ops".into() }).await.unwrap_err().code(),
        Code::NotFound
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn list_gateways_shows_connection_cursor_and_lag() {
    let server = TestServer::start().await;
    let mut control = server.control();
    control.create_session(create("g")).await.unwrap();
    control.bind_session(bind("telegram", "1", "g")).await.unwrap();
    let mut telegram = Subscriber::open(&mut server.admin_bus(), "telegram", "tg-main", None).await.unwrap();
    control.tell(tell("g", "one")).await.unwrap();
    let response = telegram.response().await;
    let gateways = control.list_gateways(pb::ListGatewaysRequest {}).await.unwrap().into_inner().gateways;
    assert_eq!(gateways.len(), 1);
    let gateway = &gateways[0];
    assert_eq!(
        (gateway.gateway_id.as_str(), gateway.platform.as_str(), gateway.connected),
        ("tg-main", "telegram", true)
    );
    assert_eq!((gateway.acked_seq, gateway.pending), (0, 1));
    telegram.ack(response.seq).await;
    wait_for_gateway(&control, "tg-main", |g| g.pending == 0 && g.acked_seq == response.seq).await;
    drop(telegram);
    wait_for_gateway(&control, "tg-main", |g| !g.connected).await;
    server.stop().await.unwrap();
}

#[tokio::test]
async fn watch_shows_messages_responses_bindings_and_sessions() {
    let server = TestServer::start().await;
    let mut control = server.control();
    let mut watch = control.watch(pb::WatchRequest {}).await.unwrap().into_inner();
    control.create_session(create("w")).await.unwrap();
    control.bind_session(bind("web", "tab", "w")).await.unwrap();
    let mut publisher = Publisher::open(&mut server.admin_bus()).await.unwrap();
    publisher.publish(message("web", "tab", "m-watch", "watch me")).await;

    let mut seen = Vec::new();
    while seen.len() < 4 {
        let event = within(watch.message()).await.unwrap().unwrap();
        assert!(!event.at.is_empty());
        seen.push(match event.kind.unwrap() {
            pb::watch_event::Kind::Session(s) => format!("session {} {}", s.name, s.created),
            pb::watch_event::Kind::Binding(b) => format!("binding {} {}", b.channel.unwrap().channel_id, b.session),
            pb::watch_event::Kind::Message(m) => format!("message {} {}", m.message_id, m.text),
            pb::watch_event::Kind::Response(r) => format!("response {}", r.text),
        });
    }
    assert_eq!(seen, ["session w true", "binding tab w", "message m-watch watch me", "response echo: watch me"]);
    let code = server.bus("nope").publish(tokio_stream::empty()).await.unwrap_err().code();
    assert_eq!(code, Code::Unauthenticated);
    server.stop().await.unwrap();
}
