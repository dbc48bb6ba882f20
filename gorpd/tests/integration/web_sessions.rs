//! The web chat's session list API over real HTTP and a real WebSocket:
//! list with state and last entry, create/switch/delete with the CSRF rules
//! of the admin panel (a wrong token changes nothing), the socket's
//! `sessions_changed` frames, history search and its limits, and the
//! sanitised Markdown in answers.

use crate::support::*;
use crate::web::{Browser, say, until};
use gorp_proto::v1 as pb;
use gorpd::testing::TestServer;
use reqwest::StatusCode;
use serde_json::Value;

async fn sessions(browser: &Browser, channel: &str) -> Value {
    let reply = browser.get(&format!("/api/sessions?channel={channel}")).await;
    assert_eq!(reply.status(), StatusCode::OK);
    reply.json().await.unwrap()
}

fn entry<'a>(list: &'a Value, name: &str) -> &'a Value {
    list["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("{name} in {list}"))
}

#[tokio::test]
async fn the_list_shows_state_history_size_and_last_entry_and_follows_switches() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_with_hang(dir.path()).await;
    let browser = Browser::login(&server).await;
    let csrf = browser.csrf.clone();
    let csrf = csrf.as_str();
    let reply = browser.post("/api/sessions", &[("csrf", csrf), ("channel", "tab"), ("name", "alpha")]).await;
    assert_eq!(reply.status(), StatusCode::OK, "{:?}", reply.text().await);
    server.control().create_session(create("beta")).await.unwrap();

    let list = sessions(&browser, "tab").await;
    assert_eq!(list["bound"], "alpha", "creating from the chat binds the channel to the new session");
    let agents = list["agents"].as_array().unwrap();
    assert!(agents.contains(&"echo".into()) && agents.contains(&"hang-or-echo".into()), "{agents:?}");
    assert_eq!(list["default_agent"], "hang-or-echo");
    assert_eq!(entry(&list, "alpha")["state"], "idle");
    assert_eq!(entry(&list, "alpha")["last"], Value::Null);

    let mut socket = browser.socket("tab", 0).await.unwrap();
    until(&mut socket, "caught_up").await;
    let (answer, _) = say(&mut socket, "m1", "**hello** <b>x</b> [a](javascript:alert(1))").await;
    assert_eq!(answer["html"], "<p>echo: <strong>hello</strong> &lt;b&gt;x&lt;/b&gt; a</p>", "{answer}");
    let list = sessions(&browser, "tab").await;
    let alpha = entry(&list, "alpha");
    assert_eq!((alpha["messages"].as_u64(), alpha["last"]["role"].as_str()), (Some(2), Some("assistant")));
    assert_eq!(
        alpha["last"]["text"], "echo: hello <b>x</b> [a](javascript:alert(1))",
        "one line, Markdown marks dropped"
    );

    // A turn that hangs shows as working.
    say_nothing(&mut socket, "m2", "hang on").await;
    wait_for_state(&browser, "alpha", "working").await;

    // A switch is announced on every socket (another tab's too).
    let mut other_tab = browser.socket("tab", answer["seq"].as_u64().unwrap()).await.unwrap();
    until(&mut other_tab, "caught_up").await;
    let reply = browser.post("/api/bind", &[("csrf", csrf), ("channel", "tab"), ("session", "beta")]).await;
    assert_eq!(reply.status(), StatusCode::OK);
    until(&mut other_tab, "sessions_changed").await;
    assert_eq!(sessions(&browser, "tab").await["bound"], "beta");
    let reply = browser.post("/api/unbind", &[("csrf", csrf), ("channel", "tab")]).await;
    assert_eq!(reply.status(), StatusCode::OK);
    assert_eq!(sessions(&browser, "tab").await["bound"], Value::Null);

    let reply = browser.post("/api/sessions/beta/delete", &[("csrf", csrf)]).await;
    assert_eq!(reply.status(), StatusCode::OK);
    let list = sessions(&browser, "tab").await;
    assert!(list["sessions"].as_array().unwrap().iter().all(|s| s["name"] != "beta"), "{list}");
    server.stop().await.unwrap();
}

async fn wait_for_state(browser: &Browser, session: &str, state: &str) {
    for _ in 0..200 {
        if entry(&sessions(browser, "tab").await, session)["state"] == state {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("{session} never showed as {state}");
}

/// Sends `text` and waits only for its ack.
async fn say_nothing(socket: &mut crate::web::Socket, id: &str, text: &str) {
    assert_eq!(crate::web::send(socket, id, text).await["status"], "accepted");
}

#[tokio::test]
async fn a_waiting_permission_request_and_a_failed_turn_show_in_the_list() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_with_hang(dir.path()).await;
    server.control().create_session(create("careful")).await.unwrap();
    server.control().bind_session(bind("web", "tab", "careful")).await.unwrap();
    let browser = Browser::login(&server).await;
    let mut socket = browser.socket("tab", 0).await.unwrap();
    until(&mut socket, "caught_up").await;
    let (asked, _) = say(&mut socket, "q1", "ask first").await;
    assert_eq!(asked["permission"]["state"], "pending");
    assert_eq!(entry(&sessions(&browser, "tab").await, "careful")["state"], "waiting");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_wrong_csrf_token_or_bad_input_changes_nothing() {
    let server = TestServer::start().await;
    server.control().create_session(create("kept")).await.unwrap();
    let browser = Browser::login(&server).await;
    let wrong = "0".repeat(64);
    let wrong = wrong.as_str();
    let forms: [(&str, Vec<(&str, &str)>); 4] = [
        ("/api/sessions", vec![("csrf", wrong), ("channel", "tab"), ("name", "new")]),
        ("/api/sessions/kept/delete", vec![("csrf", wrong)]),
        ("/api/bind", vec![("csrf", wrong), ("channel", "tab"), ("session", "kept")]),
        ("/api/unbind", vec![("csrf", ""), ("channel", "tab")]),
    ];
    for (path, form) in &forms {
        assert_eq!(browser.post(path, form).await.status(), StatusCode::FORBIDDEN, "{path}");
    }
    let csrf = browser.csrf.clone();
    let csrf = csrf.as_str();
    // (path, form fields, expected status, a phrase of the error)
    type Refusal<'a> = (&'a str, Vec<(&'a str, &'a str)>, StatusCode, &'a str);
    let bad: [Refusal<'_>; 5] = [
        (
            "/api/sessions",
            vec![("csrf", csrf), ("channel", "tab"), ("name", "no spaces")],
            StatusCode::BAD_REQUEST,
            "session name",
        ),
        (
            "/api/sessions",
            vec![("csrf", csrf), ("channel", "tab"), ("name", "kept")],
            StatusCode::BAD_REQUEST,
            "exists",
        ),
        (
            "/api/sessions",
            vec![("csrf", csrf), ("channel", "tab"), ("name", "x"), ("agent", "nope")],
            StatusCode::BAD_REQUEST,
            "unknown agent profile",
        ),
        ("/api/bind", vec![("csrf", csrf), ("channel", "tab"), ("session", "ghost")], StatusCode::NOT_FOUND, "ghost"),
        ("/api/sessions/ghost/delete", vec![("csrf", csrf)], StatusCode::NOT_FOUND, "ghost"),
    ];
    for (path, form, status, says) in &bad {
        let reply = browser.post(path, form).await;
        assert_eq!(reply.status(), *status, "{path} {form:?}");
        let text = reply.text().await.unwrap();
        assert!(text.contains(says), "{path}: {text}");
    }
    let list = server.control().list_sessions(pb::ListSessionsRequest {}).await.unwrap().into_inner();
    let names: Vec<&str> = list.sessions.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["kept"]);
    assert_eq!(sessions(&browser, "tab").await["bound"], Value::Null);
    assert_eq!(browser.get("/api/sessions?channel=").await.status(), StatusCode::BAD_REQUEST);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn search_finds_history_newest_first_and_refuses_bad_queries() {
    let server = TestServer::start().await;
    server.control().create_session(create("notes")).await.unwrap();
    for text in ["Deploy on Monday", "lunch", "deploy 100% done"] {
        server.control().tell(tell("notes", text)).await.unwrap();
    }
    let browser = Browser::login(&server).await;
    wait_for_session(&server.control(), "notes", |s| s.message_count >= 6).await;

    let found: Value = browser.get("/api/search?session=notes&q=DEPLOY").await.json().await.unwrap();
    let texts: Vec<&str> = found["results"].as_array().unwrap().iter().map(|r| r["text"].as_str().unwrap()).collect();
    assert_eq!(texts, ["echo: deploy 100% done", "deploy 100% done", "echo: Deploy on Monday", "Deploy on Monday"]);
    let found: Value = browser.get("/api/search?session=notes&q=0%25%20d").await.json().await.unwrap();
    assert_eq!(found["results"].as_array().unwrap().len(), 2, "% is a literal: {found}");

    let long = "x".repeat(201);
    for (path, status, says) in [
        ("/api/search?session=notes&q=%20%20".to_owned(), StatusCode::BAD_REQUEST, "the search is empty"),
        (format!("/api/search?session=notes&q={long}"), StatusCode::BAD_REQUEST, "at most 200 characters"),
        ("/api/search?session=ghost&q=x".to_owned(), StatusCode::NOT_FOUND, "ghost"),
        ("/api/search?session=notes".to_owned(), StatusCode::BAD_REQUEST, "q"),
    ] {
        let reply = browser.get(&path).await;
        assert_eq!(reply.status(), status, "{path}");
        let text = reply.text().await.unwrap();
        assert!(text.contains(says), "{path}: {text}");
    }
    server.stop().await.unwrap();
}
