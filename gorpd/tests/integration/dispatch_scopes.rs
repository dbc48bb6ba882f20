//! DISPATCH permissions per platform (`dispatch_scope`, `[dispatch_scopes]`):
//! real gateway tokens for Slack and Telegram publishing DISPATCH commands
//! and binding channels, against a gorpd whose platforms have different scopes.

use crate::support::*;
use gorp_proto::v1 as pb;
use gorpd::orchestrator::{DispatchScope, DispatchScopes};
use gorpd::testing::TestServer;
use std::collections::BTreeMap;
use tonic::Code;

async fn start_with_scopes(default: DispatchScope, platforms: &[(&str, DispatchScope)]) -> TestServer {
    let platforms: BTreeMap<String, DispatchScope> = platforms.iter().map(|(p, s)| ((*p).to_owned(), *s)).collect();
    TestServer::start_configured(|config| config.dispatch_scopes = DispatchScopes { default, platforms }).await
}

/// A chat platform publishing with its own gateway token, as its gateway does.
async fn gateway_chat(server: &TestServer, platform: &str) -> Chat {
    let token = server.gateway_token(platform).await;
    Chat::open(&mut server.bus(&token), platform).await
}

async fn refused(chat: &mut Chat, channel: &str, command: &str, expected: &str) {
    let reply = chat.say(channel, command).await;
    assert_eq!(reply.kind, pb::ResponseKind::Error as i32, "{command:?} answered {:?}", reply.text);
    assert!(reply.text.contains(expected), "{command:?} answered {:?}, expected {expected:?}", reply.text);
}

async fn history_len(server: &TestServer, session: &str) -> usize {
    let request = pb::ReadHistoryRequest { session: session.into(), count: 100 };
    server.control().read_history(request).await.unwrap().into_inner().entries.len()
}

#[tokio::test]
async fn own_platform_keeps_a_telegram_channel_away_from_a_slack_only_session() {
    let own = DispatchScope::OwnPlatform;
    let server = start_with_scopes(DispatchScope::Full, &[("telegram", own), ("slack", own)]).await;
    let mut slack = gateway_chat(&server, "slack").await;
    let mut telegram = gateway_chat(&server, "telegram").await;
    let mut web = Chat::open(&mut server.admin_bus(), "web").await;

    assert!(slack.ask("ops", "!create slackonly").await.contains("Created session slackonly"));
    assert!(slack.ask("C1", "!join slackonly").await.contains("now bound to slackonly"));
    assert_eq!(slack.ask("C1", "secret plans").await, "echo: secret plans");
    let before = history_len(&server, "slackonly").await;

    let out_of_scope =
        "ession \"slackonly\" is out of reach of telegram channels: their dispatch scope is own-platform";
    for command in [
        "!read slackonly",
        "!delete slackonly",
        "!tell slackonly leak it",
        "!join slackonly",
        "!status slackonly",
        "!cancel slackonly",
        "!prune slackonly keep 1",
        "!mode slackonly",
        "!model slackonly gpt",
        "!login slackonly",
        "!schedule add slackonly \"in 5 minutes\" leak it",
        "!schedule list slackonly",
    ] {
        refused(&mut telegram, "T1", command, out_of_scope).await;
    }
    let session = server.control().get_session(pb::GetSessionRequest { name: "slackonly".into() }).await.unwrap();
    assert_eq!(session.into_inner().channels, vec![channel("slack", "C1")], "the refused !delete unbound nothing");
    assert_eq!(history_len(&server, "slackonly").await, before, "the refused !tell queued nothing");
    assert_eq!(server.store.schedules(None).await.unwrap().len(), 0, "the refused !schedule add made nothing");

    // Telegram's own sessions work as before; it lists and broadcasts to those only.
    assert_eq!(telegram.ask("T1", "!broadcast anyone?").await, "There are no sessions to broadcast to.");
    assert!(telegram.ask("T1", "!create tg").await.contains("Created session tg"));
    assert!(telegram.ask("T1", "!tell tg hello").await.contains("Sent to tg"));
    let list = telegram.ask("T1", "!list").await;
    assert!(list.starts_with("Sessions (1):\n• tg —"), "{list}");
    eventually(|| async { (history_len(&server, "tg").await == 2).then_some(()) }).await;
    assert!(telegram.ask("T1", "!read tg").await.contains("Last 2 message(s) of tg"));
    assert_eq!(telegram.ask("T1", "!broadcast all hands").await, "Sent to 1 session(s): tg.");
    assert!(slack.ask("ops", "!read tg").await.contains("Session \"tg\" is out of reach of slack channels"));
    let help = telegram.ask("T1", "!help").await;
    assert!(help.contains("In telegram channels DISPATCH reaches only sessions bound to a telegram channel"), "{help}");

    // A gateway token cannot bind around the scope either.
    let token = server.gateway_token("telegram").await;
    let (requests, rx) = tokio::sync::mpsc::channel(4);
    let mut events =
        server.bus(&token).bind_channel(tokio_stream::wrappers::ReceiverStream::new(rx)).await.unwrap().into_inner();
    let request = pb::Bind { channel: Some(channel("telegram", "T2")), session: "slackonly".into() };
    requests
        .send(pb::BindRequest { request_id: "r1".into(), kind: Some(pb::bind_request::Kind::Bind(request)) })
        .await
        .unwrap();
    let result = loop {
        match within(events.message()).await.unwrap().unwrap().kind.unwrap() {
            pb::bind_event::Kind::Result(result) => break result,
            pb::bind_event::Kind::Change(_) => {}
        }
    };
    assert_eq!((result.ok, result.error_code), (false, Code::PermissionDenied as i32), "{result:?}");
    assert!(result.error.contains(out_of_scope), "{result:?}");

    // The web (scope full) and the operator reach everything; once an operator binds a
    // Telegram channel to the session, it is Telegram's too.
    assert!(web.ask("w", "!read slackonly").await.contains("echo: secret plans"));
    server.control().bind_session(bind("telegram", "T3", "slackonly")).await.unwrap();
    assert!(telegram.ask("T1", "!read slackonly").await.contains("echo: secret plans"));
    server.stop().await.unwrap();
}

#[tokio::test]
async fn scope_off_refuses_fleet_commands_but_a_bound_channel_controls_its_own_session() {
    let server = start_with_scopes(DispatchScope::Full, &[("slack", DispatchScope::Off)]).await;
    let mut slack = gateway_chat(&server, "slack").await;

    refused(&mut slack, "C9", "hello?", "DISPATCH is off for slack channels").await;
    for command in ["!create mine", "!list", "!broadcast hi", "!delete mine"] {
        refused(&mut slack, "C9", command, "is not available in slack channels: DISPATCH is off for slack").await;
    }
    assert!(server.control().list_sessions(pb::ListSessionsRequest {}).await.unwrap().into_inner().sessions.is_empty());

    let mut control = server.control();
    control.create_session(create("ops")).await.unwrap();
    control.create_session(create("other")).await.unwrap();
    control.bind_session(bind("slack", "C1", "ops")).await.unwrap();
    assert_eq!(slack.ask("C1", "work please").await, "echo: work please");
    assert!(slack.ask("C1", "!status ops").await.starts_with("Session ops"));
    assert!(slack.ask("C1", "!read ops").await.contains("echo: work please"));
    refused(&mut slack, "C1", "!read other", "Session \"other\" is out of reach of slack channels: DISPATCH is off")
        .await;
    refused(&mut slack, "C1", "!join other", "DISPATCH is off for slack").await;
    assert!(slack.ask("C1", "!leave").await.contains("Left ops"));
    refused(&mut slack, "C1", "!join ops", "DISPATCH is off for slack").await;
    server.stop().await.unwrap();
}

#[tokio::test]
async fn the_default_scope_full_keeps_one_operator_working_across_platforms() {
    let server = start_with_scopes(DispatchScope::Full, &[]).await;
    let mut web = Chat::open(&mut server.admin_bus(), "web").await;
    let mut telegram = gateway_chat(&server, "telegram").await;
    web.ask("tab", "!create research").await;
    web.ask("tab", "!join research").await;
    assert!(telegram.ask("T1", "!join research").await.contains("now bound to research"));
    assert!(telegram.ask("T1", "!read research").await.contains("research"));
    server.stop().await.unwrap();
}
