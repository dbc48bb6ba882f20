//! Webhooks against the real HTTP listener: each credential form, refused
//! secrets, replayed and tampered bodies, waiting callers getting their own
//! answers, 202 and polling, templates, size and rate limits; and the
//! Control API's hook and export/import operations.

use crate::support::*;
use gorp_proto::v1 as pb;
use gorpd::testing::TestServer;
use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use serde_json::Value;
use sha2::Sha256;

/// A running gorpd with session `name` and its webhook (template, per-minute); returns the secret.
async fn with_hook(server: &TestServer, name: &str, template: &str, per_minute: u32) -> String {
    let mut control = server.control();
    control.create_session(create(name)).await.unwrap();
    let request = pb::CreateHookRequest { session: name.into(), template: template.into(), per_minute };
    control.create_hook(request).await.unwrap().into_inner().secret
}

fn url(server: &TestServer, path: &str) -> String {
    format!("http://{}{path}", server.http_addr)
}

fn sign(secret: &str, message: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(message);
    hex::encode(mac.finalize().into_bytes())
}

async fn json(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    (status, response.json().await.expect("JSON body"))
}

#[tokio::test]
async fn a_bearer_call_waits_for_its_answer_and_wrong_or_missing_secrets_change_nothing() {
    let server = TestServer::start().await;
    let secret = with_hook(&server, "ci", "", 0).await;
    let http = reqwest::Client::new();
    let call = |auth: Option<String>| {
        let mut request = http.post(url(&server, "/hooks/ci?wait=10")).body("build 42 failed");
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        request.send()
    };
    let (status, body) = json(call(Some(format!("Bearer {secret}"))).await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!((body["status"].as_str(), body["answer"].as_str()), (Some("done"), Some("echo: build 42 failed")));

    let inbound_before = server.store.inbound_count().await.unwrap();
    for auth in [None, Some("Bearer gorp_wrong".to_owned()), Some(format!("Basic {secret}"))] {
        let (status, body) = json(call(auth.clone()).await.unwrap()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{auth:?}: {body}");
        assert!(body["error"].as_str().unwrap().len() > 5);
    }
    let unknown = http.post(url(&server, "/hooks/nobody")).bearer_auth(&secret).body("x").send().await.unwrap();
    assert_eq!(json(unknown).await.0, StatusCode::NOT_FOUND);
    assert_eq!(server.store.inbound_count().await.unwrap(), inbound_before, "nothing was accepted");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn github_signatures_are_verified_replays_refused_and_templates_render_json() {
    let server = TestServer::start().await;
    let template = "PR #{{ pull_request.number }} {{ action }}: {{ pull_request.title }}";
    let secret = with_hook(&server, "reviews", template, 0).await;
    let http = reqwest::Client::new();
    let body = br#"{"action":"opened","pull_request":{"number":7,"title":"Fix the flaky test"}}"#;
    let deliver = |payload: &'static [u8], signature: String, delivery: &str| {
        http.post(url(&server, "/hooks/reviews?wait=10"))
            .header("content-type", "application/json")
            .header("x-github-event", "pull_request")
            .header("x-github-delivery", delivery)
            .header("x-hub-signature-256", format!("sha256={signature}"))
            .body(payload)
            .send()
    };
    let (status, answer) = json(deliver(body, sign(&secret, body), "d-1").await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["answer"], "echo: PR #7 opened: Fix the flaky test");

    let (status, replay) = json(deliver(body, sign(&secret, body), "d-1").await.unwrap()).await;
    assert_eq!(status, StatusCode::CONFLICT, "{replay}");
    assert_eq!(replay["id"], answer["id"], "the replay names the call it repeats");

    let tampered: &[u8] = br#"{"action":"closed","pull_request":{"number":7,"title":"Fix the flaky test"}}"#;
    let (status, _) = json(deliver(tampered, sign(&secret, body), "d-2").await.unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a body that does not match its signature");
    let (status, error) = json(deliver(b"not json", sign(&secret, b"not json"), "d-3").await.unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(error["error"].as_str().unwrap().contains("not valid JSON"), "{error}");

    // The session's history holds exactly one call.
    let history = server.store.last_messages("reviews", 10).await.unwrap();
    assert_eq!(history.iter().filter(|h| h.role == "user").count(), 1, "{history:?}");
    assert_eq!(history[0].author, "webhook (GitHub pull_request)");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn timestamped_signatures_outside_the_window_are_refused() {
    let server = TestServer::start().await;
    let secret = with_hook(&server, "ops", "", 0).await;
    let http = reqwest::Client::new();
    let call = |t: i64| {
        let signature = sign(&secret, format!("{t}.disk full").as_bytes());
        http.post(url(&server, "/hooks/ops"))
            .header("gorp-signature", format!("t={t},v1={signature}"))
            .body("disk full")
            .send()
    };
    let now = chrono::Utc::now().timestamp();
    let (status, accepted) = json(call(now).await.unwrap()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let (status, _) = json(call(now).await.unwrap()).await;
    assert_eq!(status, StatusCode::CONFLICT, "the same signed request again is a replay");
    let (status, stale) = json(call(now - 600).await.unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(stale["error"].as_str().unwrap().contains("5 minutes"), "{stale}");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn concurrent_waiting_callers_each_get_their_own_answer() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_with_hang(dir.path()).await;
    let secret = with_hook(&server, "busy", "", 0).await;
    let http = reqwest::Client::new();
    let calls = (0..8).map(|i| {
        let request = http.post(url(&server, "/hooks/busy?wait=20")).bearer_auth(&secret).body(format!("question {i}"));
        async move { (i, json(request.send().await.unwrap()).await) }
    });
    for (i, (status, body)) in futures::future::join_all(calls).await {
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["answer"], format!("echo: question {i}"), "caller {i} got someone else's answer");
    }
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_call_without_wait_is_accepted_at_once_and_polled_until_answered() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_with_hang(dir.path()).await;
    let secret = with_hook(&server, "slow", "", 0).await;
    let http = reqwest::Client::new();
    let hang = http.post(url(&server, "/hooks/slow")).bearer_auth(&secret).body("hang forever").send().await.unwrap();
    let location = hang.headers()["location"].to_str().unwrap().to_owned();
    let (status, queued) = json(hang).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{queued}");
    assert_eq!(location, format!("/hooks/slow/{}", queued["id"]));
    let waited = http.post(url(&server, "/hooks/slow?wait=1")).bearer_auth(&secret).body("behind it").send().await;
    let (status, pending) = json(waited.unwrap()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "the wait ran out: poll instead: {pending}");
    assert_eq!(pending["status"], "queued");

    let poll = |path: String| http.get(url(&server, &path)).bearer_auth(&secret).send();
    let (status, running) = json(poll(location.clone()).await.unwrap()).await;
    assert_eq!((status, running["status"].as_str()), (StatusCode::ACCEPTED, Some("running")));
    let mut chat = Chat::open(&mut server.admin_bus(), "web").await;
    assert!(chat.ask("tab", "!cancel slow").await.contains("Cancelling slow's turn"));
    let answered = eventually(|| {
        let request = poll(pending["poll"].as_str().unwrap().to_owned());
        async move {
            let (status, body) = json(request.await.unwrap()).await;
            (status == StatusCode::OK).then_some(body)
        }
    })
    .await;
    assert_eq!(answered["answer"], "echo: behind it");
    let unauthenticated = http.get(url(&server, &location)).send().await.unwrap();
    assert_eq!(unauthenticated.status(), StatusCode::UNAUTHORIZED);
    let unknown = poll("/hooks/slow/999999".to_owned()).await.unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn size_type_and_rate_limits_are_enforced_with_clear_errors() {
    let server = TestServer::start().await;
    let secret = with_hook(&server, "limited", "", 3).await;
    let http = reqwest::Client::new();
    let call = |body: Vec<u8>, content_type: &str| {
        http.post(url(&server, "/hooks/limited"))
            .bearer_auth(&secret)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let (status, error) = json(call(vec![b'x'; 70 * 1024], "text/plain").await.unwrap()).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{error}");
    let (status, error) = json(call(b"\x89PNG".to_vec(), "image/png").await.unwrap()).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{error}");
    assert_eq!(call(vec![0xff, 0xfe], "text/plain").await.unwrap().status(), StatusCode::BAD_REQUEST);
    let limited = call(b"hello".to_vec(), "text/plain").await.unwrap();
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS, "three calls a minute, counted when authenticated");
    assert!(limited.headers().contains_key("retry-after"));
    assert_eq!(server.store.inbound_count().await.unwrap(), 0, "no call was accepted");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn hooks_are_managed_through_control_and_survive_an_export_import_round_trip() {
    let server = TestServer::start().await;
    let mut control = server.control();
    let first = with_hook(&server, "src", "{{ text }}", 30).await;
    let rotated =
        control.rotate_hook_secret(pb::RotateHookSecretRequest { session: "src".into() }).await.unwrap().into_inner();
    assert_ne!(rotated.secret, first);
    let http = reqwest::Client::new();
    let old = http.post(url(&server, "/hooks/src")).bearer_auth(&first).body("x").send().await.unwrap();
    assert_eq!(old.status(), StatusCode::UNAUTHORIZED, "the old secret stops working");
    let again = pb::CreateHookRequest { session: "src".into(), template: String::new(), per_minute: 0 };
    let exists = control.create_hook(again).await.unwrap_err();
    assert_eq!(exists.code(), tonic::Code::InvalidArgument, "{exists:?}");
    control.create_session(create("other")).await.unwrap();
    let bad_template = pb::CreateHookRequest { session: "other".into(), template: "{{ x".into(), per_minute: 0 };
    let refused = control.create_hook(bad_template).await.unwrap_err();
    assert!(refused.code() == tonic::Code::InvalidArgument && refused.message().contains("does not parse"));

    let add = |when: &str, catch_up: &str| pb::AddScheduleRequest {
        session: "src".into(),
        when: when.into(),
        prompt: format!("prompt for {when}"),
        timezone: "Europe/Berlin".into(),
        catch_up: catch_up.into(),
    };
    control.add_schedule(add("every weekday at 8:30", "")).await.unwrap();
    let skip = control.add_schedule(add("0 */2 * * *", "skip")).await.unwrap().into_inner();
    control.set_schedule_paused(pb::SetSchedulePausedRequest { id: skip.id, paused: true }).await.unwrap();
    control.add_schedule(add("2099-01-01 09:00", "")).await.unwrap();
    let yaml = control
        .export_session_config(pb::ExportSessionConfigRequest { session: "src".into() })
        .await
        .unwrap()
        .into_inner()
        .yaml;
    assert!(yaml.contains("when: every weekday at 8:30") && yaml.contains("per_minute: 30"), "{yaml}");
    assert!(!yaml.contains(&rotated.secret), "no secret in the export");

    control.create_session(create("dst")).await.unwrap();
    let imported = control
        .import_session_config(pb::ImportSessionConfigRequest { session: "dst".into(), yaml: yaml.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(imported.schedules.len(), 3);
    assert!(imported.hook.unwrap().secret.starts_with("gorp_"), "an imported hook gets a new secret");
    let exported_again = control
        .export_session_config(pb::ExportSessionConfigRequest { session: "dst".into() })
        .await
        .unwrap()
        .into_inner()
        .yaml;
    assert_eq!(exported_again, yaml, "round trip");

    let broken = "schedules:\n  - when: every blue moon\n    timezone: UTC\n    prompt: x\n";
    control.create_session(create("empty")).await.unwrap();
    let refused = control
        .import_session_config(pb::ImportSessionConfigRequest { session: "empty".into(), yaml: broken.into() })
        .await
        .unwrap_err();
    assert!(refused.message().contains("schedule 1"), "{refused:?}");
    let listed = control.list_schedules(pb::ListSchedulesRequest { session: "empty".into() }).await.unwrap();
    assert!(listed.into_inner().schedules.is_empty(), "a bad document changes nothing");
    server.stop().await.unwrap();
}
