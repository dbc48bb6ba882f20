//! The fake's Web API side: `GET`/`POST /api/{method}`, tokens, parameters
//! (query, form or JSON), injected failures, and the four methods.

use super::{APP, BOT_ID, BOT_USER, FailureKind, FakeSlack, Posted, TEAM, callback, posted_json};
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use std::time::Duration;
use tokio::time::Instant;

pub(super) fn ok(fields: Value) -> Response {
    let mut body = json!({ "ok": true });
    if let (Some(body), Some(fields)) = (body.as_object_mut(), fields.as_object()) {
        body.extend(fields.clone());
    }
    axum::Json(body).into_response()
}

pub(super) fn error(code: &str) -> Response {
    axum::Json(json!({ "ok": false, "error": code })).into_response()
}

fn failure(kind: FailureKind) -> Response {
    match kind {
        FailureKind::RateLimited { retry_after } => {
            let body = axum::Json(json!({ "ok": false, "error": "ratelimited" }));
            (StatusCode::TOO_MANY_REQUESTS, [(header::RETRY_AFTER, retry_after.to_string())], body).into_response()
        }
        FailureKind::Error(code) => error(&code),
        FailureKind::Status(status) => StatusCode::from_u16(status).expect("status").into_response(),
    }
}

/// The call's parameters: query string, then the form or JSON body.
fn params(headers: &HeaderMap, query: Option<&str>, body: &[u8]) -> Result<Map<String, Value>, &'static str> {
    let form = |bytes: &[u8]| -> Map<String, Value> {
        url::form_urlencoded::parse(bytes).map(|(k, v)| (k.into_owned(), Value::String(v.into_owned()))).collect()
    };
    let mut params = form(query.unwrap_or_default().as_bytes());
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if body.is_empty() {
        return Ok(params);
    }
    if content_type.starts_with("application/json") {
        let Ok(Value::Object(json)) = serde_json::from_slice(body) else { return Err("invalid_json") };
        params.extend(json);
    } else if content_type.starts_with("application/x-www-form-urlencoded") {
        params.extend(form(body));
    } else {
        return Err("invalid_form_data");
    }
    Ok(params)
}

/// The token of a call: the bearer header, else a `token` parameter.
fn token(headers: &HeaderMap, params: &Map<String, Value>) -> Option<String> {
    let bearer =
        headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    bearer.map(str::to_owned).or_else(|| params.get("token").and_then(Value::as_str).map(str::to_owned))
}

pub(super) async fn call(
    State(fake): State<FakeSlack>,
    Path(method): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = match params(&headers, query.as_deref(), &body) {
        Ok(params) => params,
        Err(code) => {
            fake.inner().calls.push(method.clone());
            return error(code);
        }
    };
    let channel = matches!(method.as_str(), "chat.postMessage" | "chat.update").then(|| string(&params, "channel"));
    if let Some(kind) = fake.failure_now(&method, channel.flatten().as_deref()) {
        return failure(kind);
    }
    let Some(token) = token(&headers, &params) else { return error("not_authed") };
    let is_bot = token == fake.bot_token;
    let is_app = token == fake.app_token;
    if !is_bot && !is_app {
        return error("invalid_auth");
    }
    match (method.as_str(), is_bot) {
        ("apps.connections.open", false) => connections_open(&fake),
        ("apps.connections.open", true) => error("not_allowed_token_type"),
        (_, false) => error("not_allowed_token_type"),
        ("auth.test", true) => ok(json!({
            "url": "https://gorp-test.slack.com/", "team": "gorp test", "user": "gorp", "team_id": TEAM,
            "user_id": BOT_USER, "bot_id": BOT_ID, "is_enterprise_install": false,
        })),
        ("chat.postMessage", true) => post_message(&fake, &params),
        ("chat.update", true) => update(&fake, &params),
        ("files.getUploadURLExternal", true) => super::files::get_upload_url(&fake, &params),
        ("files.completeUploadExternal", true) => super::files::complete(&fake, &params),
        _ => error("unknown_method"),
    }
}

fn connections_open(fake: &FakeSlack) -> Response {
    let ticket = format!("ticket-{}", fake.inner().tickets.len() + 1);
    fake.inner().tickets.push(ticket.clone());
    ok(json!({ "url": format!("ws://{}/link/?ticket={ticket}&app_id={APP}", fake.addr) }))
}

pub(super) fn string(params: &Map<String, Value>, key: &str) -> Option<String> {
    params.get(key).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned)
}

/// `blocks` as JSON, whether sent as a JSON array or (form bodies) a JSON string.
fn blocks(params: &Map<String, Value>) -> Option<Value> {
    match params.get("blocks")? {
        Value::String(text) => serde_json::from_str(text).ok(),
        Value::Null => None,
        other => Some(other.clone()),
    }
}

fn post_message(fake: &FakeSlack, params: &Map<String, Value>) -> Response {
    let Some(channel) = string(params, "channel") else { return error("channel_not_found") };
    if !channel.starts_with(['C', 'D', 'G']) {
        return error("channel_not_found");
    }
    let (text, blocks) = (string(params, "text"), blocks(params));
    if text.is_none() && blocks.is_none() {
        return error("no_text");
    }
    let text = text.unwrap_or_default();
    if text.chars().count() > 40_000 {
        return error("msg_too_long");
    }
    let thread_ts = string(params, "thread_ts");
    if let Some(thread) = &thread_ts
        && !fake.has_message(&channel, thread)
    {
        return error("thread_not_found");
    }
    let ts = fake.tick();
    let posted = Posted {
        channel: channel.clone(),
        ts: ts.clone(),
        text: text.clone(),
        thread_ts,
        blocks,
        edits: 0,
        history: vec![text],
    };
    let message = posted_json(&posted);
    fake.inner().posted.push(posted.clone());
    // Slack echoes the bot's own message to the app as an event.
    let mut echo = message.clone();
    echo["channel"] = json!(channel);
    echo["event_ts"] = json!(ts);
    fake.push("events_api", callback(echo));
    ok(json!({ "channel": channel, "ts": ts, "message": message }))
}

fn update(fake: &FakeSlack, params: &Map<String, Value>) -> Response {
    let (Some(channel), Some(ts)) = (string(params, "channel"), string(params, "ts")) else {
        return error("message_not_found");
    };
    let text = string(params, "text");
    if text.is_none() && params.get("blocks").is_none() {
        return error("no_text");
    }
    let text = text.unwrap_or_default();
    if text.chars().count() > 40_000 {
        return error("msg_too_long");
    }
    let mut inner = fake.inner();
    if inner.user_messages.iter().any(|(c, t)| *c == channel && *t == ts) {
        return error("cant_update_message");
    }
    let Some(posted) = inner.posted.iter_mut().find(|p| p.channel == channel && p.ts == ts) else {
        return error("message_not_found");
    };
    posted.text = text.clone();
    posted.blocks = blocks(params);
    posted.edits += 1;
    posted.history.push(text.clone());
    let message = posted_json(posted);
    drop(inner);
    let changed = json!({
        "type": "message", "subtype": "message_changed", "channel": channel, "hidden": true,
        "message": message, "ts": fake.tick(), "event_ts": ts,
    });
    fake.push("events_api", callback(changed));
    ok(json!({ "channel": channel, "ts": ts, "text": text, "message": message }))
}

impl FakeSlack {
    /// Records the call and picks how it fails, if it does: inside its
    /// channel's Retry-After window it is another 429; else an injected failure.
    fn failure_now(&self, method: &str, channel: Option<&str>) -> Option<FailureKind> {
        let mut inner = self.inner();
        inner.calls.push(method.to_owned());
        let now = Instant::now();
        if let Some(channel) = channel {
            let since = now - inner.started.unwrap_or(now);
            inner.call_times.entry(channel.to_owned()).or_default().push(since);
            if let Some(until) = inner.limited_until.get(channel).copied().filter(|until| *until > now) {
                *inner.rate_limited.entry(channel.to_owned()).or_default() += 1;
                return Some(FailureKind::RateLimited { retry_after: (until - now).as_secs_f64().ceil() as u64 });
            }
        }
        let failure =
            inner.failures.iter_mut().find(|(m, f)| *m == method && !f.is_empty()).and_then(|(_, f)| f.pop_front());
        if let (Some(FailureKind::RateLimited { retry_after }), Some(channel)) = (&failure, channel) {
            inner.limited_until.insert(channel.to_owned(), now + Duration::from_secs(*retry_after));
            *inner.rate_limited.entry(channel.to_owned()).or_default() += 1;
        }
        failure
    }

    fn has_message(&self, channel: &str, ts: &str) -> bool {
        let inner = self.inner();
        inner.user_messages.iter().any(|(c, t)| c == channel && t == ts)
            || inner.posted.iter().any(|p| p.channel == channel && p.ts == ts)
    }
}
