//! The built-in web adapter over real HTTP and a real WebSocket: login,
//! CSRF, the failed-login limit, the chat socket, /metrics and the admin panel.

use crate::support::*;
use futures::{SinkExt, StreamExt};
use gorp_proto::v1 as pb;
use gorpd::testing::TestServer;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest};

pub(crate) type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

fn http() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// A logged-in browser: its session cookie and CSRF token.
pub(crate) struct Browser {
    base: String,
    cookie: String,
    pub(crate) csrf: String,
}

impl Browser {
    pub(crate) async fn login(server: &TestServer) -> Self {
        Self::login_with(server, &server.login_url).await
    }

    async fn login_with(server: &TestServer, url: &str) -> Self {
        let reply = http().get(url).send().await.unwrap();
        assert_eq!(reply.status(), StatusCode::SEE_OTHER);
        assert_eq!(reply.headers()["location"], "/");
        let set_cookie = reply.headers()["set-cookie"].to_str().unwrap().to_owned();
        assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"), "{set_cookie}");
        let cookie = set_cookie.split(';').next().unwrap().to_owned();
        let base = format!("http://{}", server.http_addr);
        let mut browser = Self { base, cookie, csrf: String::new() };
        let page = browser.get("/").await;
        assert_eq!(page.status(), StatusCode::OK);
        let page = page.text().await.unwrap();
        let start = page.find("data-csrf=\"").expect("the page carries the CSRF token") + 11;
        browser.csrf = page[start..start + 64].to_owned();
        browser
    }

    /// The same login session, used on `server` (another replica).
    pub(crate) fn at(&self, server: &TestServer) -> Self {
        Self { base: format!("http://{}", server.http_addr), cookie: self.cookie.clone(), csrf: self.csrf.clone() }
    }

    pub(crate) async fn get(&self, path: &str) -> reqwest::Response {
        http().get(format!("{}{path}", self.base)).header("cookie", &self.cookie).send().await.unwrap()
    }

    pub(crate) async fn page(&self, path: &str) -> String {
        let reply = self.get(path).await;
        assert_eq!(reply.status(), StatusCode::OK, "{path}");
        reply.text().await.unwrap()
    }

    pub(crate) async fn post(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        http().post(format!("{}{path}", self.base)).header("cookie", &self.cookie).form(form).send().await.unwrap()
    }

    pub(crate) async fn socket(&self, channel: &str, after: u64) -> Result<Socket, tungstenite::Error> {
        self.socket_with(channel, after, &self.csrf.clone()).await
    }

    async fn socket_with(&self, channel: &str, after: u64, csrf: &str) -> Result<Socket, tungstenite::Error> {
        let url = format!("ws://{}/ws?channel={channel}&csrf={csrf}&after={after}", &self.base[7..]);
        let mut request = url.into_client_request().unwrap();
        request.headers_mut().insert("cookie", self.cookie.parse().unwrap());
        tokio_tungstenite::connect_async(request).await.map(|(socket, _)| socket)
    }
}

pub(crate) async fn next_frame(socket: &mut Socket) -> Value {
    loop {
        match within(socket.next()).await.expect("socket open").expect("frame") {
            tungstenite::Message::Text(text) => return serde_json::from_str(&text).unwrap(),
            tungstenite::Message::Close(_) => panic!("socket closed"),
            _ => continue,
        }
    }
}

/// Reads frames until one of `kind`, returning the frames of other kinds seen before it.
pub(crate) async fn until(socket: &mut Socket, kind: &str) -> (Value, Vec<Value>) {
    let mut before = Vec::new();
    loop {
        let frame = next_frame(socket).await;
        if frame["type"] == kind {
            return (frame, before);
        }
        before.push(frame);
    }
}

pub(crate) async fn send(socket: &mut Socket, id: &str, text: &str) -> Value {
    let frame = json!({ "type": "send", "id": id, "text": text });
    socket.send(tungstenite::Message::Text(frame.to_string().into())).await.unwrap();
    let (ack, _) = until(socket, "ack").await;
    assert_eq!(ack["id"], id);
    ack
}

/// Sends `text` and returns the final response, with the chunks seen before it.
pub(crate) async fn say(socket: &mut Socket, id: &str, text: &str) -> (Value, String) {
    assert_eq!(send(socket, id, text).await["status"], "accepted");
    let (response, before) = until(socket, "response").await;
    let chunks: String = before.iter().filter(|f| f["type"] == "chunk").map(|f| f["text"].as_str().unwrap()).collect();
    (response, chunks)
}

#[tokio::test]
async fn the_one_time_link_logs_in_once() {
    let server = TestServer::start().await;
    let browser = Browser::login(&server).await;
    assert!(browser.page("/").await.contains("/static/chat.js"));
    let again = http().get(&server.login_url).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::UNAUTHORIZED);
    assert!(again.headers().get("set-cookie").is_none());
    let script = browser.get("/static/chat.js").await.text().await.unwrap();
    // The only HTML the page parses is an answer's rendered Markdown, inert in a <template>, cleaned to an allowlist.
    assert!(script.contains("textContent") && script.matches("innerHTML").count() == 1, "one innerHTML");
    assert!(script.contains("template.innerHTML = html;\n    clean(template.content);"), "parsed inert, then cleaned");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn pages_api_socket_and_metrics_need_a_session() {
    let server = TestServer::start().await;
    let base = format!("http://{}", server.http_addr);
    for page in ["/", "/admin", "/admin/tokens", "/admin/health", "/admin/sessions/x"] {
        let reply = http().get(format!("{base}{page}")).send().await.unwrap();
        assert_eq!(reply.status(), StatusCode::SEE_OTHER, "{page}");
        assert_eq!(reply.headers()["location"], "/login");
    }
    for api in ["/api/history?channel=a", "/metrics", "/ws?channel=a&csrf=x"] {
        assert_eq!(
            http().get(format!("{base}{api}")).send().await.unwrap().status(),
            StatusCode::UNAUTHORIZED,
            "{api}"
        );
    }
    let forged = Browser { base: base.clone(), cookie: "gorp_session=00".into(), csrf: "x".into() };
    match forged.socket("a", 0).await {
        Err(tungstenite::Error::Http(reply)) => assert_eq!(reply.status(), 401),
        other => panic!("expected 401, got {other:?}"),
    }
    assert_eq!(forged.post("/admin/tokens", &[("csrf", "x"), ("name", "n")]).await.status(), StatusCode::UNAUTHORIZED);
    let healthz = http().get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(healthz.text().await.unwrap(), "ok\n");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_wrong_csrf_token_is_refused_and_changes_nothing() {
    let server = TestServer::start().await;
    let mut control = server.control();
    control.create_session(create("research")).await.unwrap();
    control.bind_session(bind("telegram", "42", "research")).await.unwrap();
    let browser = Browser::login(&server).await;
    let form = [("csrf", "0".repeat(64)), ("platform", "telegram".into()), ("channel", "42".into())];
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(browser.post("/admin/sessions/research/unbind", &form).await.status(), StatusCode::FORBIDDEN);
    assert_eq!(browser.post("/admin/sessions/research/delete", &[("csrf", "")]).await.status(), StatusCode::FORBIDDEN);
    assert_eq!(browser.post("/admin/tokens", &[("csrf", "nope"), ("name", "x")]).await.status(), StatusCode::FORBIDDEN);
    let status = control.get_session(pb::GetSessionRequest { name: "research".into() }).await.unwrap();
    assert_eq!(status.into_inner().channels, vec![channel("telegram", "42")]);
    assert_eq!(server.store.tokens().await.unwrap().len(), 1, "only the admin token");
    match browser.socket_with("a", 0, "wrong").await {
        Err(tungstenite::Error::Http(reply)) => assert_eq!(reply.status(), 403),
        other => panic!("expected 403, got {other:?}"),
    }
    server.stop().await.unwrap();
}

#[tokio::test]
async fn failed_logins_are_limited_to_five_a_minute() {
    let server = TestServer::start().await;
    let base = format!("http://{}", server.http_addr);
    for _ in 0..5 {
        let reply = http().get(format!("{base}/login?token=guess")).send().await.unwrap();
        assert_eq!(reply.status(), StatusCode::UNAUTHORIZED);
    }
    let limited = http().get(format!("{base}/login?token=guess")).send().await.unwrap();
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = limited.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    let real = http().get(&server.login_url).send().await.unwrap();
    assert_eq!(real.status(), StatusCode::TOO_MANY_REQUESTS, "even the right link waits");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn chat_over_the_socket_help_create_join_stream_and_replay() {
    let server = TestServer::start().await;
    let browser = Browser::login(&server).await;
    let mut socket = browser.socket("tab1", 0).await.unwrap();
    assert_eq!(next_frame(&mut socket).await["type"], "caught_up");

    let (help, _) = say(&mut socket, "m1", "!help").await;
    assert!(help["dispatch"] == true && help["text"].as_str().unwrap().contains("!create <name>"), "{help}");
    assert!(say(&mut socket, "m2", "!create research").await.0["text"].as_str().unwrap().contains("Created"));
    assert!(say(&mut socket, "m3", "!join research").await.0["text"].as_str().unwrap().contains("now bound"));
    let (answer, chunks) = say(&mut socket, "m4", "hello agent").await;
    assert_eq!(answer["text"], "echo: hello agent");
    assert_eq!(chunks, "echo: hello agent", "the chunks arrive before the final response");
    assert_eq!((answer["session"].as_str(), answer["kind"].as_str()), (Some("research"), Some("complete")));
    assert_eq!(send(&mut socket, "m4", "hello agent").await["status"], "duplicate", "a resend is dropped");

    let (script, _) = say(&mut socket, "m5", "<script>alert(1)</script>").await;
    assert_eq!(script["text"], "echo: <script>alert(1)</script>", "agent output arrives as plain text");

    let history = browser.get("/api/history?channel=tab1").await.json::<Value>().await.unwrap();
    assert_eq!(history["session"], "research");
    assert!(history["messages"].as_array().unwrap().iter().any(|m| m["text"] == "echo: hello agent"));

    // Disconnected, the session answers a tell; the reconnect gets exactly that.
    let last_seq = script["seq"].as_u64().unwrap();
    socket.close(None).await.unwrap();
    server.control().tell(tell("research", "while away")).await.unwrap();
    let mut socket = browser.socket("tab1", last_seq).await.unwrap();
    // The answer may be replayed (before caught_up) or arrive live (after): either way exactly once.
    let mut responses = Vec::new();
    while responses.last().is_none_or(|r: &Value| r["text"] != "echo: while away") {
        let frame = next_frame(&mut socket).await;
        if frame["type"] == "response" {
            responses.push(frame);
        }
    }
    assert_eq!(responses.len(), 1, "nothing but what was missed: {responses:?}");
    assert!(responses[0]["seq"].as_u64().unwrap() > last_seq);

    // A gRPC gateway's user joins the same session; its answer reaches the browser.
    let mut chat = Chat::open(&mut server.admin_bus(), "telegram").await;
    assert!(chat.ask("7", "!join research").await.contains("now bound"));
    assert_eq!(chat.say("7", "from telegram").await.text, "echo: from telegram");
    let (response, _) = until(&mut socket, "response").await;
    assert_eq!(response["text"], "echo: from telegram");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn metrics_show_the_counters() {
    let server = TestServer::start().await;
    let mut chat = Chat::open(&mut server.admin_bus(), "telegram").await;
    chat.ask("1", "!help").await;
    let browser = Browser::login(&server).await;
    let text = browser.page("/metrics").await;
    for line in [
        "gorp_messages_in_total 1",
        "gorp_responses_out_total 1",
        "gorp_errors_total 0",
        "gorp_turns_in_flight 0",
        "gorp_agent_processes_running 0",
        "gorp_deliveries_pending{gateway=\"telegram\",platform=\"telegram\"} 0",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
    }
    let scrape = http()
        .get(format!("http://{}/metrics", server.http_addr))
        .bearer_auth(&server.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(scrape.status(), StatusCode::OK, "an admin token may scrape");
    server.stop().await.unwrap();
}

/// A gateway's health report (undecryptable messages) reaches ListGateways,
/// the admin dashboard and the metrics; a later report replaces it, and it
/// stays shown after the gateway disconnects.
#[tokio::test]
async fn a_gateways_undecryptable_count_shows_in_the_gateway_list_admin_page_and_metrics() {
    let server = TestServer::start().await;
    let mut gateway = Subscriber::open_live(&mut server.admin_bus(), "matrix", "mx-main").await;
    let mut control = server.control();
    let health = |control: &mut gorpd::testing::Control| {
        let mut control = control.clone();
        async move {
            let gateways = control.list_gateways(pb::ListGatewaysRequest {}).await.unwrap().into_inner().gateways;
            gateways.into_iter().find(|g| g.gateway_id == "mx-main").and_then(|g| g.health)
        }
    };
    assert_eq!(health(&mut control).await, None, "nothing reported yet");
    gateway.report_health(3, 2).await;
    gateway.report_health(4, 1).await;
    let expected = pb::GatewayHealth { undecryptable_since_start: 4, waiting_for_keys: 1 };
    let reported = eventually(|| {
        let reported = health(&mut control);
        async move { reported.await.filter(|h| *h == expected) }
    })
    .await;
    assert_eq!(reported, expected, "the latest report wins");
    drop(gateway);
    let browser = Browser::login(&server).await;
    let dashboard = browser.page("/admin").await;
    assert!(dashboard.contains("<th>Undecryptable (waiting for keys)</th>"), "{dashboard}");
    assert!(dashboard.contains("<td>4 (1)</td>"), "{dashboard}");
    let metrics = browser.page("/metrics").await;
    for line in [
        "gorp_gateway_undecryptable_messages{gateway=\"mx-main\",platform=\"matrix\"} 4",
        "gorp_gateway_waiting_for_keys{gateway=\"mx-main\",platform=\"matrix\"} 1",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in\n{metrics}");
    }
    server.stop().await.unwrap();
}

#[tokio::test]
async fn the_admin_panel_lists_sessions_and_gateways_and_unbinds() {
    let server = TestServer::start().await;
    let mut control = server.control();
    control.create_session(create("research")).await.unwrap();
    control.bind_session(bind("telegram", "42", "research")).await.unwrap();
    let _gateway = Subscriber::open_live(&mut server.admin_bus(), "telegram", "tg-main").await;
    let browser = Browser::login(&server).await;

    let dashboard = browser.page("/admin").await;
    assert!(dashboard.contains("<a href=\"/admin/sessions/research\">research</a>"), "{dashboard}");
    assert!(dashboard.contains("telegram:42"));
    assert!(dashboard.contains("<td>tg-main</td><td>telegram</td><td>yes</td>"), "{dashboard}");

    let detail = browser.page("/admin/sessions/research").await;
    // minijinja's HTML escaping also escapes "/" (as &#x2f;), which the browser reads back as "/".
    assert!(detail.contains("action=\"&#x2f;admin&#x2f;sessions&#x2f;research&#x2f;unbind\""), "{detail}");
    let form = [("csrf", browser.csrf.as_str()), ("platform", "telegram"), ("channel", "42")];
    let reply = browser.post("/admin/sessions/research/unbind", &form).await;
    assert_eq!(reply.status(), StatusCode::SEE_OTHER);
    assert_eq!(reply.headers()["location"], "/admin/sessions/research");
    let after = browser.page("/admin/sessions/research").await;
    assert!(after.contains("Unbound telegram:42 from research."), "{after}");
    let status = control.get_session(pb::GetSessionRequest { name: "research".into() }).await.unwrap();
    assert!(status.into_inner().channels.is_empty());

    let reply =
        browser.post("/admin/tokens", &[("csrf", &browser.csrf), ("name", "tg"), ("platform", "telegram")]).await;
    assert_eq!(reply.status(), StatusCode::SEE_OTHER);
    let tokens = browser.page("/admin/tokens").await;
    assert!(tokens.contains("shown only now: gorp_"), "{tokens}");
    assert!(!browser.page("/admin/tokens").await.contains("shown only now"), "the secret is shown once");
    assert!(browser.page("/admin/health").await.contains("status: ok"));
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_configured_password_logs_in_and_a_wrong_one_is_refused() {
    use argon2::PasswordHasher;
    let salt = argon2::password_hash::SaltString::encode_b64(b"a test salt 1234").unwrap();
    let hash = argon2::Argon2::default().hash_password(b"correct horse", &salt).unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let mut config = gorpd::testing::test_config(dir.path());
    config.web_password_hash = Some(hash);
    let backends = gorpd::agent_backends(&config);
    let server = TestServer::start_with(config, backends).await;
    let url = format!("http://{}/login", server.http_addr);
    assert!(http().get(&url).send().await.unwrap().text().await.unwrap().contains("type=\"password\""));
    let wrong = http().post(&url).form(&[("password", "wrong")]).send().await.unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let right = http().post(&url).form(&[("password", "correct horse")]).send().await.unwrap();
    assert_eq!(right.status(), StatusCode::SEE_OTHER);
    let cookie = right.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    let page = http().get(format!("http://{}/", server.http_addr)).header("cookie", cookie).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_permission_request_reaches_the_socket_and_an_approval_from_it_resolves_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_with_hang(dir.path()).await;
    server.control().create_session(create("writer")).await.unwrap();
    server.control().bind_session(bind("web", "tab", "writer")).await.unwrap();
    let browser = Browser::login(&server).await;
    let mut socket = browser.socket("tab", 0).await.unwrap();
    until(&mut socket, "caught_up").await;

    let (asked, _) = say(&mut socket, "q1", "ask before writing").await;
    let permission = &asked["permission"];
    assert_eq!(
        (permission["state"].as_str(), permission["title"].as_str()),
        (Some("pending"), Some("write notes.txt"))
    );
    let id = permission["id"].as_str().unwrap().to_owned();
    assert_eq!(send(&mut socket, "q2", &format!("!approve {id}")).await["status"], "accepted");
    // The DISPATCH reply and the answer may come in either order (the channel that answered gets no notice).
    let mut responses = Vec::new();
    while responses.len() < 2 {
        responses.push(until(&mut socket, "response").await.0);
    }
    let dispatch = responses.iter().find(|r| r["dispatch"] == true).expect("a DISPATCH reply");
    assert!(dispatch["text"].as_str().unwrap().contains("approved"), "{dispatch}");
    assert!(responses.iter().any(|r| r["text"] == "decision: yes"), "{responses:?}");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn gorpd_stops_cleanly_with_a_socket_open() {
    let server = TestServer::start().await;
    let browser = Browser::login(&server).await;
    let mut socket = browser.socket("tab", 0).await.unwrap();
    until(&mut socket, "caught_up").await;
    let started = std::time::Instant::now();
    server.stop().await.unwrap();
    assert!(started.elapsed() < gorpd::SHUTDOWN_DEADLINE, "stopped within the deadline");
    match within(socket.next()).await {
        None | Some(Ok(tungstenite::Message::Close(_))) | Some(Err(_)) => {}
        other => panic!("expected the socket to close, got {other:?}"),
    }
}

/// Clickjacking, DNS rebinding and cross-site sockets are refused, and every
/// response carries the security headers.
#[tokio::test]
async fn security_headers_host_and_origin_checks() {
    let server = TestServer::start().await;
    let browser = Browser::login(&server).await;
    for path in ["/", "/admin/tokens", "/login", "/healthz"] {
        let reply = browser.get(path).await;
        let headers = reply.headers();
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"), "{path}: {csp}");
        assert_eq!(headers["x-frame-options"], "DENY", "{path}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(headers["referrer-policy"], "same-origin", "{path}");
        assert_eq!(headers["cache-control"], "no-store", "{path}");
    }

    // A rebinding attacker's name pointed at 127.0.0.1: refused before any handler.
    let rebound = http()
        .get(format!("{}/admin/tokens", browser.base))
        .header("host", format!("evil.example:{}", server.http_addr.port()))
        .header("cookie", &browser.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(rebound.status(), StatusCode::MISDIRECTED_REQUEST);
    let localhost = http()
        .get(format!("{}/healthz", browser.base))
        .header("host", format!("localhost:{}", server.http_addr.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(localhost.status(), StatusCode::OK);

    // The chat socket opened by a page on another origin, with the user's cookie.
    let url = format!("ws://{}/ws?channel=x&csrf={}&after=0", &browser.base[7..], browser.csrf);
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert("cookie", browser.cookie.parse().unwrap());
    request.headers_mut().insert("origin", "http://127.0.0.1:1".parse().unwrap());
    match tokio_tungstenite::connect_async(request).await {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), StatusCode::FORBIDDEN),
        other => panic!("a cross-site socket was not refused: {:?}", other.map(|_| ())),
    }
    let mut same_origin = format!("ws://{}/ws?channel=x&csrf={}&after=0", &browser.base[7..], browser.csrf)
        .into_client_request()
        .unwrap();
    same_origin.headers_mut().insert("cookie", browser.cookie.parse().unwrap());
    same_origin.headers_mut().insert("origin", browser.base.parse().unwrap());
    assert!(tokio_tungstenite::connect_async(same_origin).await.is_ok(), "the page's own socket works");
    server.stop().await.unwrap();
}

/// The tower-http layers: request ids, gzip, and the body limit of pages and APIs.
#[tokio::test]
async fn responses_carry_request_ids_are_compressed_and_bodies_are_bounded() {
    let server = TestServer::start().await;
    let browser = Browser::login(&server).await;
    let fresh = browser.get("/healthz").await;
    let id = fresh.headers()["x-request-id"].to_str().unwrap();
    assert_eq!(id.len(), 36, "a UUID is made up when the client sends none: {id}");
    let echoed =
        http().get(format!("{}/healthz", browser.base)).header("x-request-id", "trace-me-42").send().await.unwrap();
    assert_eq!(echoed.headers()["x-request-id"], "trace-me-42", "the client's id is kept");

    let page = http()
        .get(format!("{}/admin/tokens", browser.base))
        .header("cookie", &browser.cookie)
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(page.headers()["content-encoding"], "gzip");
    assert_eq!(&page.bytes().await.unwrap()[..2], &[0x1f, 0x8b], "a gzip stream");

    let limit = gorpd::web::middleware::max_request_body_bytes(gorpd::config::DEFAULT_MAX_BODY_BYTES);
    let huge = "x".repeat(limit + 1);
    let refused = browser.post("/admin/tokens", &[("csrf", browser.csrf.as_str()), ("name", &huge)]).await;
    assert_eq!(refused.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(!browser.page("/admin/tokens").await.contains("xxxx"), "nothing was created");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn the_admin_panel_manages_schedules_and_webhooks() {
    let server = TestServer::start().await;
    server.control().create_session(create("ops")).await.unwrap();
    let browser = Browser::login(&server).await;
    let csrf = browser.csrf.clone();
    let form = |fields: &[(&'static str, &'static str)]| {
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        all
    };
    let added = browser
        .post(
            "/admin/schedules",
            &form(&[
                ("session", "ops"),
                ("when", "every weekday at 8:30"),
                ("timezone", "Europe/Berlin"),
                ("catch_up", "skip"),
                ("prompt", "Status <b>report</b>"),
            ]),
        )
        .await;
    assert_eq!(added.status(), StatusCode::SEE_OTHER);
    let page = browser.page("/admin/automation").await;
    assert!(page.contains("Scheduled #1 for ops"), "flash: {page}");
    assert!(page.contains("every weekday at 8:30") && page.contains("Europe&#x2f;Berlin"), "{page}");
    assert!(page.contains("Status &lt;b&gt;report&lt;&#x2f;b&gt;"), "the prompt is escaped");

    let bad = browser
        .post(
            "/admin/schedules",
            &form(&[("session", "ops"), ("when", "every blue moon"), ("catch_up", "once"), ("prompt", "x")]),
        )
        .await;
    assert_eq!(bad.status(), StatusCode::SEE_OTHER);
    assert!(browser.page("/admin/automation").await.contains("Error: I don&#x27;t understand"));

    browser.post("/admin/schedules/1/pause", &form(&[])).await;
    let page = browser.page("/admin/automation").await;
    assert!(page.contains("Paused #1.") && page.contains("<td>paused</td>"), "{page}");
    browser.post("/admin/schedules/1/run", &form(&[])).await;
    assert!(browser.page("/admin/automation").await.contains("Fired #1 now"));
    let forged = browser.post("/admin/schedules/1/delete", &[("csrf", "0".repeat(64).as_str())]).await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN, "a wrong CSRF token changes nothing");

    browser.post("/admin/hooks", &form(&[("session", "ops"), ("per_minute", "10"), ("template", "")])).await;
    let page = browser.page("/admin/automation").await;
    let start = page.find("shown only now: ").expect("the secret is shown once") + 16;
    let secret = &page[start..start + 69];
    assert!(secret.starts_with("gorp_"), "{secret}");
    assert!(!browser.page("/admin/automation").await.contains(secret), "and never again");
    let call = http()
        .post(format!("http://{}/hooks/ops?wait=10", server.http_addr))
        .bearer_auth(secret)
        .body("from the panel's hook")
        .send()
        .await
        .unwrap();
    assert_eq!(call.status(), StatusCode::OK);

    let metrics = browser.page("/metrics").await;
    assert!(metrics.contains("gorp_schedule_failures{schedule=\"1\",session=\"ops\"} 0"), "{metrics}");
    assert!(metrics.contains("gorp_table_rows{table=\"schedule_runs\"} 1"), "{metrics}");
    assert!(metrics.contains("\ngorp_database_bytes "), "{metrics}");
    assert!(browser.page("/admin/health").await.contains("rows: messages"));
    browser.post("/admin/hooks/ops/delete", &form(&[])).await;
    browser.post("/admin/schedules/1/delete", &form(&[])).await;
    let page = browser.page("/admin/automation").await;
    assert!(page.contains("Deleted #1.") && !page.contains("<td>#1</td>"), "{page}");
    server.stop().await.unwrap();
}
