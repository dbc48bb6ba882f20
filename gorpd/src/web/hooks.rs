//! Webhooks over HTTP. `POST /hooks/{session}` publishes a call's body to
//! the session; the caller either waits for the answer to its own message
//! (`?wait=<seconds>`) or gets `202 Accepted` with an id to poll at
//! `GET /hooks/{session}/{id}`. Errors are JSON: `{"error": "…"}`.
//!
//! A call proves it knows the hook's secret in one of three ways:
//! `Authorization: Bearer <secret>`; a GitHub-style
//! `X-Hub-Signature-256: sha256=<HMAC-SHA256(secret, body)>` (the
//! `X-GitHub-Delivery` id makes a replay a duplicate); or a Stripe-style
//! `Gorp-Signature: t=<unix time>,v1=<HMAC-SHA256(secret, "<t>." + body)>`,
//! refused outside a five-minute window, and a duplicate inside it. A replay
//! is refused with 409 and changes nothing.

use super::WebState;
use crate::bus::{Activity, ChannelRef, MessageRef};
use crate::orchestrator::{OrchestratorError, render_template};
use crate::store::{HOOK_PLATFORM, HookCall, HookRow};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::broadcast::error::RecvError;

/// Largest request body, in bytes (the prompt made from it is limited by `max_body_bytes`).
pub const MAX_HOOK_BODY_BYTES: usize = 1024 * 1024;
/// How far a `Gorp-Signature` timestamp may be from gorpd's clock.
pub const SIGNATURE_WINDOW_SECS: i64 = 300;

pub(super) fn routes() -> Router<WebState> {
    Router::new()
        .route("/hooks/{session}", post(call))
        .route("/hooks/{session}/{id}", get(poll))
        .layer(DefaultBodyLimit::max(MAX_HOOK_BODY_BYTES))
}

/// A JSON error response.
#[derive(Debug)]
struct HookError {
    status: StatusCode,
    message: String,
    retry_after: Option<u64>,
}

impl HookError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self { status, message: message.into(), retry_after: None }
    }
}

impl IntoResponse for HookError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(json!({ "error": self.message }))).into_response();
        if let Some(secs) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

impl From<OrchestratorError> for HookError {
    fn from(error: OrchestratorError) -> Self {
        match error {
            OrchestratorError::UnknownSession(_) | OrchestratorError::NoHook(_) => {
                Self::new(StatusCode::NOT_FOUND, "no webhook here")
            }
            OrchestratorError::Invalid(message) => Self::new(StatusCode::BAD_REQUEST, message),
            OrchestratorError::ShuttingDown => Self::new(StatusCode::SERVICE_UNAVAILABLE, "gorpd is shutting down"),
            other => {
                tracing::error!(error = %other, "webhook call failed");
                Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error; the details are in gorpd's log")
            }
        }
    }
}

/// Calls each hook accepted in its current minute.
#[derive(Debug, Clone, Default)]
pub struct RateLimits {
    windows: Arc<Mutex<HashMap<String, (Instant, u32)>>>,
}

impl RateLimits {
    /// Counts a call to `session`'s hook; `Err(seconds to wait)` beyond `per_minute`.
    fn take(&self, session: &str, per_minute: u32) -> Result<(), u64> {
        let mut windows = self.windows.lock().expect("rate limit lock");
        let now = Instant::now();
        let window = windows.entry(session.to_owned()).or_insert((now, 0));
        if now.duration_since(window.0) >= Duration::from_secs(60) {
            *window = (now, 0);
        }
        if window.1 >= per_minute {
            return Err(60u64.saturating_sub(now.duration_since(window.0).as_secs()).max(1));
        }
        window.1 += 1;
        Ok(())
    }
}

#[derive(Debug, serde::Deserialize)]
struct CallOptions {
    /// Seconds to wait for the answer; none: 202 at once.
    wait: Option<u64>,
}

async fn call(
    State(state): State<WebState>,
    Path(session): Path<String>,
    Query(options): Query<CallOptions>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, HookError> {
    let orchestrator = &state.orchestrator;
    let (hook, secret) = orchestrator.hook_with_secret(&session).await?;
    let delivery = authenticate(&headers, &body, &secret, chrono::Utc::now().timestamp())?;
    state.hook_limits.take(&session, hook.per_minute).map_err(|secs| HookError {
        retry_after: Some(secs),
        ..HookError::new(StatusCode::TOO_MANY_REQUESTS, format!("more than {} calls a minute", hook.per_minute))
    })?;
    let text = prompt_text(&hook, &headers, &body)?;
    if text.len() > orchestrator.max_text_bytes() {
        let message = format!("the prompt is {} bytes; the limit is {}", text.len(), orchestrator.max_text_bytes());
        return Err(HookError::new(StatusCode::PAYLOAD_TOO_LARGE, message));
    }
    let wait = match options.wait {
        None | Some(0) => None,
        Some(secs) => Some(Duration::from_secs(secs).min(orchestrator.hook_wait_max())),
    };
    // Subscribed (when the caller waits) before the message is accepted, so its answer cannot be missed.
    let waiting = wait.map(|wait| (wait, orchestrator.bus().watch()));
    let sender = headers.get("x-github-event").and_then(|v| v.to_str().ok()).map_or_else(
        || "webhook".to_owned(),
        |event| format!("webhook (GitHub {})", event.chars().take(64).collect::<String>()),
    );
    let Some(inbound) = orchestrator.accept_hook_call(&session, &delivery, &sender, &text).await? else {
        let id = orchestrator.hook_call_id(&session, &delivery).await?;
        let message = format!("this delivery was accepted before (call {id}); a replay changes nothing");
        return Ok((StatusCode::CONFLICT, axum::Json(json!({ "error": message, "id": id }))).into_response());
    };
    let mine = MessageRef { channel: ChannelRef::new(HOOK_PLATFORM, &session), message_id: delivery };
    if let Some((wait, mut activity)) = waiting {
        let answered = tokio::time::timeout(wait, async {
            loop {
                match activity.recv().await {
                    Ok(Activity::Response(response))
                        if response.reply_to.as_ref() == Some(&mine) && response.permission.is_none() =>
                    {
                        return true;
                    }
                    Ok(_) => {}
                    // Missed events: the store says whether the answer is in.
                    Err(RecvError::Lagged(_)) => return false,
                    Err(RecvError::Closed) => return false,
                }
            }
        })
        .await
        .unwrap_or(false);
        tracing::debug!(session, message_id = inbound.id, answered, "webhook caller waited");
    }
    let status = orchestrator.hook_call(&session, inbound.id).await?;
    Ok(call_response(&session, inbound.id, status))
}

async fn poll(
    State(state): State<WebState>,
    Path((session, id)): Path<(String, i64)>,
    headers: HeaderMap,
) -> Result<Response, HookError> {
    let (_, secret) = state.orchestrator.hook_with_secret(&session).await?;
    if !bearer_matches(&headers, &secret) {
        return Err(HookError::new(
            StatusCode::UNAUTHORIZED,
            "polling needs Authorization: Bearer <the hook's secret>",
        ));
    }
    let status = state.orchestrator.hook_call(&session, id).await?;
    if status.is_none() {
        return Err(HookError::new(StatusCode::NOT_FOUND, format!("no call {id} to this webhook")));
    }
    Ok(call_response(&session, id, status))
}

/// 200 with the answer once it is in, else 202 with where to poll.
fn call_response(session: &str, id: i64, call: Option<HookCall>) -> Response {
    let poll = format!("/hooks/{session}/{id}");
    match call {
        Some(HookCall { state, answer: Some((kind, text)), .. }) => {
            let body = json!({ "id": id, "status": state, "kind": kind.as_str(), "answer": text });
            (StatusCode::OK, axum::Json(body)).into_response()
        }
        call => {
            let state = call.map_or_else(|| "queued".to_owned(), |c| c.state);
            let body = json!({ "id": id, "status": state, "poll": poll });
            let mut response = (StatusCode::ACCEPTED, axum::Json(body)).into_response();
            if let Ok(location) = HeaderValue::from_str(&poll) {
                response.headers_mut().insert(header::LOCATION, location);
            }
            response
        }
    }
}

/// The prompt a call's body makes: a JSON body through the hook's template
/// (when it has one), or the body as text.
fn prompt_text(hook: &HookRow, headers: &HeaderMap, body: &[u8]) -> Result<String, HookError> {
    let bad = |message: String| HookError::new(StatusCode::BAD_REQUEST, message);
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("text/plain");
    let is_json = content_type.starts_with("application/json") || content_type.contains("+json");
    if !is_json && !content_type.starts_with("text/") {
        let message = format!("content type {content_type} is not supported; send text/plain or application/json");
        return Err(HookError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, message));
    }
    let text = std::str::from_utf8(body).map_err(|_| bad("the body is not UTF-8 text".to_owned()))?;
    if text.trim().is_empty() {
        return Err(bad("the body is empty".to_owned()));
    }
    match (&hook.template, is_json) {
        (Some(template), true) => {
            let value: serde_json::Value =
                serde_json::from_str(text).map_err(|error| bad(format!("the body is not valid JSON: {error}")))?;
            render_template(template, &value).map_err(bad)
        }
        _ => Ok(text.to_owned()),
    }
}

/// Checks a call's credentials; returns its delivery id (the de-duplication key).
fn authenticate(headers: &HeaderMap, body: &[u8], secret: &str, now: i64) -> Result<String, HookError> {
    let refused = |message: &str| HookError::new(StatusCode::UNAUTHORIZED, message);
    let header_text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(signature) = header_text("gorp-signature") {
        let (timestamp, signature) = parse_gorp_signature(signature)
            .ok_or_else(|| refused("Gorp-Signature must be t=<unix seconds>,v1=<hex HMAC-SHA256>"))?;
        if (now - timestamp).abs() > SIGNATURE_WINDOW_SECS {
            return Err(refused("the signature's timestamp is more than 5 minutes off (a replay, or a wrong clock)"));
        }
        let mut signed = format!("{timestamp}.").into_bytes();
        signed.extend_from_slice(body);
        verify_hmac(secret, &signed, &signature).map_err(|_| refused("the signature does not match the body"))?;
        return Ok(format!("sig:{}", hex::encode(&signature)));
    }
    if let Some(signature) = header_text("x-hub-signature-256") {
        let signature = signature
            .strip_prefix("sha256=")
            .and_then(|hex_text| hex::decode(hex_text).ok())
            .ok_or_else(|| refused("X-Hub-Signature-256 must be sha256=<hex HMAC-SHA256>"))?;
        verify_hmac(secret, body, &signature).map_err(|_| refused("the signature does not match the body"))?;
        return Ok(match header_text("x-github-delivery") {
            Some(delivery) => format!("github:{delivery}"),
            None => format!("sig:{}", hex::encode(&signature)),
        });
    }
    if header_text("authorization").is_some() {
        if !bearer_matches(headers, secret) {
            return Err(refused("wrong secret"));
        }
        return Ok(match header_text("idempotency-key") {
            Some(key) => format!("key:{key}"),
            None => format!("call:{}", uuid::Uuid::new_v4()),
        });
    }
    Err(refused("no credentials: send Authorization: Bearer <secret>, X-Hub-Signature-256 or Gorp-Signature"))
}

fn parse_gorp_signature(header: &str) -> Option<(i64, Vec<u8>)> {
    let mut timestamp = None;
    let mut signature = None;
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => timestamp = value.parse().ok(),
            Some(("v1", value)) => signature = hex::decode(value).ok(),
            _ => {}
        }
    }
    Some((timestamp?, signature?))
}

fn verify_hmac(secret: &str, message: &[u8], signature: &[u8]) -> Result<(), hmac::digest::MacError> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(message);
    mac.verify_slice(signature)
}

/// Whether the `Authorization: Bearer` header carries `secret` (compared in constant time).
fn bearer_matches(headers: &HeaderMap, secret: &str) -> bool {
    let Some(given) = super::bearer_token(headers) else { return false };
    let (given, expected) = (Sha256::digest(given.as_bytes()), Sha256::digest(secret.as_bytes()));
    given.iter().zip(expected.iter()).fold(0u8, |difference, (a, b)| difference | (a ^ b)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, String)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.insert(*name, value.parse().unwrap());
        }
        headers
    }

    fn hmac_hex(secret: &str, message: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(message);
        hex::encode(mac.finalize().into_bytes())
    }

    #[test]
    fn each_credential_form_is_checked_and_gives_a_delivery_id() {
        let (secret, body, now) = ("s3cret", b"{\"a\":1}".as_slice(), 1_700_000_000);
        let bearer = headers(&[("authorization", "Bearer s3cret".into()), ("idempotency-key", "k1".into())]);
        assert_eq!(authenticate(&bearer, body, secret, now).unwrap(), "key:k1");
        let wrong = headers(&[("authorization", "Bearer nope".into())]);
        assert_eq!(authenticate(&wrong, body, secret, now).unwrap_err().status, StatusCode::UNAUTHORIZED);

        let github = headers(&[
            ("x-hub-signature-256", format!("sha256={}", hmac_hex(secret, body))),
            ("x-github-delivery", "d-1".into()),
        ]);
        assert_eq!(authenticate(&github, body, secret, now).unwrap(), "github:d-1");
        assert!(authenticate(&github, b"{\"a\":2}", secret, now).is_err(), "a tampered body is refused");

        let signed = |t: i64| {
            let mut message = format!("{t}.").into_bytes();
            message.extend_from_slice(body);
            headers(&[("gorp-signature", format!("t={t},v1={}", hmac_hex(secret, &message)))])
        };
        assert!(authenticate(&signed(now - 10), body, secret, now).unwrap().starts_with("sig:"));
        let stale = authenticate(&signed(now - 301), body, secret, now).unwrap_err();
        assert!(stale.message.contains("more than 5 minutes"), "{stale:?}");
        assert!(authenticate(&HeaderMap::new(), body, secret, now).unwrap_err().message.contains("no credentials"));
    }
}
