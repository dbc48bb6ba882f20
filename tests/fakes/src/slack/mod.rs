//! A fake Slack: the Web API and Socket Mode, on 127.0.0.1:0.
//!
//! Web API: `GET` or `POST /api/{method}` with `Authorization: Bearer <token>`
//! (or a `token` parameter), parameters from the query string, a
//! form-urlencoded body or a JSON body (slack-morphism sends JSON for POSTs
//! and uses GET for `auth.test`). Answers are HTTP 200 `{"ok":true,...}` or
//! `{"ok":false,"error":"<code>"}`, a 429 with `Retry-After` and
//! `{"ok":false,"error":"ratelimited"}`, or a bare 5xx. Methods: auth.test
//! (bot token), apps.connections.open (app-level token only; returns a
//! `ws://` URL with a one-time ticket), chat.postMessage, chat.update, and
//! the file upload flow (`files`: files.getUploadURLExternal, the upload URL,
//! files.completeUploadExternal).
//!
//! Socket Mode: `/link/?ticket=…` sends `hello`, then envelopes
//! (`events_api` with `event_callback` payloads, `interactive` with
//! `block_actions`) in Slack's documented shapes, and records
//! `{"envelope_id":…}` acks. By default (a patient Slack) envelopes not acked
//! are redelivered to the next connection with `retry_attempt` + 1 and
//! `retry_reason` "timeout", for ever. [`FakeSlack::start_with_retries`]
//! models Slack's documented schedule instead ([`RetrySchedule`]: an
//! envelope not acked within the ack timeout, 3 s, is retried at once, after
//! about a minute and after about five, then given up and counted as
//! lost), in compressed time when a test sets shorter intervals. The
//! newest connection gets new envelopes. Like Slack, the bot's own posts and
//! edits come back as `message` events (with `bot_id`, `message_changed`).
//! User text is escaped (`&amp;`, `&lt;`, `&gt;`) as Slack does; posted
//! texts are kept as the bot sent them (escaped, if it did it right).
//! Tests inject user messages, mentions and button clicks, make calls fail,
//! silence or refresh the socket, and read what the bot posted. A 429 holds
//! its channel for the `Retry-After` it gave, as Slack does: every call to
//! that channel inside the window draws another 429 (counted per channel).
//! Every `chat.postMessage` / `chat.update` is timed per channel, so tests
//! can measure the bot's pace.

mod files;
mod socket;
mod web;

pub use files::SharedFile;

use axum::Router;
use axum::routing::{any, get};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// The bot's user id (what `auth.test` answers).
pub const BOT_USER: &str = "UBOT0001";
/// The bot's bot id (on its own messages).
pub const BOT_ID: &str = "BBOT0001";
/// The workspace.
pub const TEAM: &str = "T0GORP01";
/// The app.
pub const APP: &str = "A0GORP01";

/// How the next calls of a method fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailureKind {
    /// HTTP 429 with `Retry-After: <secs>` and `{"ok":false,"error":"ratelimited"}`.
    RateLimited { retry_after: u64 },
    /// HTTP 200 with `{"ok":false,"error":<code>}`.
    Error(String),
    /// A bare HTTP status (500, 503...).
    Status(u16),
}

/// A message the bot posted, as it looks now.
#[derive(Debug, Clone)]
pub struct Posted {
    pub channel: String,
    pub ts: String,
    pub text: String,
    pub thread_ts: Option<String>,
    pub blocks: Option<Value>,
    pub edits: usize,
    /// Every text the message had, the first one first.
    pub history: Vec<String>,
}

/// Slack's retries of an envelope that was not acknowledged in time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule {
    /// How long Slack waits for the ack of each attempt (3 s).
    pub ack_timeout: Duration,
    /// The wait before each retry, after the previous attempt timed out.
    pub retries: Vec<Duration>,
}

impl RetrySchedule {
    /// Slack's documented schedule: a 3 s ack timeout, then retries at once,
    /// after about a minute and after about five minutes.
    pub fn slack() -> Self {
        let retries = vec![Duration::ZERO, Duration::from_secs(60), Duration::from_secs(300)];
        Self { ack_timeout: Duration::from_secs(3), retries }
    }

    /// The time from the first attempt until an envelope is given up.
    pub fn window(&self) -> Duration {
        self.ack_timeout * (self.retries.len() as u32 + 1) + self.retries.iter().sum::<Duration>()
    }
}

/// An envelope waiting for its ack.
struct Pending {
    id: String,
    kind: &'static str,
    payload: Value,
    /// Attempts sent on a socket.
    deliveries: u32,
    /// Attempts made (with a schedule: also those with no socket to send on).
    attempts: u32,
    /// When the last attempt was made.
    last_attempt: Option<Instant>,
    /// When the next retry is due, once the last attempt timed out.
    retry_at: Option<Instant>,
}

/// What a socket connection task is told to do.
enum Command {
    Send(String),
    Silent,
    Refresh,
}

#[derive(Default)]
struct Inner {
    clock: u64,
    posted: Vec<Posted>,
    /// (channel, ts) of messages written by users.
    user_messages: Vec<(String, String)>,
    failures: Vec<(String, VecDeque<FailureKind>)>,
    calls: Vec<String>,
    tickets: Vec<String>,
    connections: usize,
    current: Option<(usize, mpsc::UnboundedSender<Command>)>,
    pending: Vec<Pending>,
    acked: Vec<String>,
    next_envelope: u64,
    schedule: Option<RetrySchedule>,
    /// Envelopes given up after the last retry.
    lost: Vec<String>,
    /// Per channel: until when calls draw a 429, and how many did.
    limited_until: HashMap<String, Instant>,
    rate_limited: HashMap<String, usize>,
    /// Per channel: when each post or update came (since `started`).
    call_times: HashMap<String, Vec<Duration>>,
    started: Option<Instant>,
    /// From the last attempt at an envelope to its ack, per ack.
    ack_latencies: Vec<Duration>,
    /// Uploads by file id, and the files the bot shared.
    uploads: HashMap<String, files::Upload>,
    shared: Vec<files::SharedFile>,
    /// Users' files by id.
    user_files: HashMap<String, Vec<u8>>,
}

/// A running fake Slack workspace with one app.
#[derive(Clone)]
pub struct FakeSlack {
    pub addr: SocketAddr,
    pub bot_token: String,
    pub app_token: String,
    inner: Arc<Mutex<Inner>>,
}

impl FakeSlack {
    /// Binds 127.0.0.1:0 and serves until the test's runtime ends; a
    /// patient Slack that redelivers unacknowledged envelopes for ever.
    pub async fn start(bot_token: &str, app_token: &str) -> Self {
        Self::serve(bot_token, app_token, None).await
    }

    /// Like [`FakeSlack::start`], retrying unacknowledged envelopes on
    /// `schedule` only, then giving them up ([`FakeSlack::lost`]).
    pub async fn start_with_retries(bot_token: &str, app_token: &str, schedule: RetrySchedule) -> Self {
        let fake = Self::serve(bot_token, app_token, Some(schedule)).await;
        tokio::spawn(fake.clone().drive_retries());
        fake
    }

    async fn serve(bot_token: &str, app_token: &str, schedule: Option<RetrySchedule>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let inner = Inner { schedule, started: Some(Instant::now()), ..Inner::default() };
        let fake = Self {
            addr: listener.local_addr().expect("addr"),
            bot_token: bot_token.to_owned(),
            app_token: app_token.to_owned(),
            inner: Arc::new(Mutex::new(inner)),
        };
        let app = Router::new()
            .route("/api/{method}", any(web::call))
            .route("/link/", get(socket::link))
            .route("/upload/{file_id}", axum::routing::post(files::receive))
            .route("/files-pri/{file_id}/download/{name}", get(files::private))
            .with_state(fake.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        fake
    }

    /// The Web API base URL to pass as `--slack-api-url`.
    pub fn url(&self) -> String {
        format!("http://{}/api/", self.addr)
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The DM channel between `user` and the bot.
    pub fn dm_channel(user: &str) -> String {
        format!("D{}", user.trim_start_matches('U'))
    }

    /// `user` writes `text` to the bot in their DM; returns the message's ts.
    pub fn dm(&self, user: &str, text: &str) -> String {
        self.user_message(&Self::dm_channel(user), "im", user, text, None)
    }

    /// `user` writes `text` in channel `channel` (`C…`), in thread `thread_ts` if given; returns the ts.
    pub fn channel_message(&self, channel: &str, user: &str, text: &str, thread_ts: Option<&str>) -> String {
        self.user_message(channel, "channel", user, text, thread_ts)
    }

    /// `user` mentions the bot in `channel`: `<@BOT> text`, delivered as both a
    /// `message` and an `app_mention` event for one ts, as Slack does.
    pub fn mention(&self, channel: &str, user: &str, text: &str, thread_ts: Option<&str>) -> String {
        let text = format!("<@{BOT_USER}> {}", escape(text));
        let ts = self.user_message_raw(channel, "channel", user, &text, thread_ts);
        let mut event = message_event(channel, "channel", user, &text, &ts, thread_ts);
        event["type"] = json!("app_mention");
        event.as_object_mut().expect("object").remove("channel_type");
        self.push("events_api", callback(event));
        ts
    }

    /// A user's message; Slack escapes `&`, `<`, `>` in what users type.
    fn user_message(&self, channel: &str, channel_type: &str, user: &str, text: &str, thread: Option<&str>) -> String {
        self.user_message_raw(channel, channel_type, user, &escape(text), thread)
    }

    fn user_message_raw(&self, channel: &str, kind: &str, user: &str, text: &str, thread: Option<&str>) -> String {
        let ts = self.tick();
        self.inner().user_messages.push((channel.to_owned(), ts.clone()));
        self.push("events_api", callback(message_event(channel, kind, user, text, &ts, thread)));
        ts
    }

    /// `user` clicks the button `action_id` (value `value`) on the bot's message `message_ts`.
    pub fn click(&self, user: &str, channel: &str, message_ts: &str, action_id: &str, value: &str) -> String {
        let action_ts = self.tick();
        let message = self.posted().into_iter().find(|p| p.ts == message_ts).map(|p| posted_json(&p));
        let payload = json!({
            "type": "block_actions",
            "user": { "id": user, "username": user.to_lowercase(), "name": user.to_lowercase(), "team_id": TEAM },
            "api_app_id": APP, "token": "verification-token",
            "container": { "type": "message", "message_ts": message_ts, "channel_id": channel, "is_ephemeral": false },
            "trigger_id": format!("trigger-{action_ts}"),
            "team": { "id": TEAM, "domain": "gorp-test" },
            "channel": { "id": channel, "name": "a-channel" },
            "message": message,
            "response_url": format!("http://{}/actions/{action_ts}", self.addr),
            "actions": [{
                "action_id": action_id, "block_id": "gorp_actions", "value": value, "type": "button",
                "text": { "type": "plain_text", "text": action_id, "emoji": true }, "action_ts": action_ts,
            }],
        });
        self.push("interactive", payload);
        action_ts
    }

    /// The next `times` calls of `method` (e.g. "chat.postMessage") fail with `kind`.
    pub fn fail_next(&self, method: &str, times: usize, kind: FailureKind) {
        let failures = std::iter::repeat_n(kind, times).collect();
        self.inner().failures.push((method.to_owned(), failures));
    }

    /// The current socket stays open, but the server neither reads nor writes on it (no pongs).
    pub fn go_silent(&self) {
        if let Some((_, socket)) = self.inner().current.take() {
            let _ = socket.send(Command::Silent);
        }
    }

    /// Sends a `disconnect` envelope (reason refresh_requested) on the current socket, then closes it.
    pub fn request_refresh(&self) {
        if let Some((_, socket)) = self.inner().current.take() {
            let _ = socket.send(Command::Refresh);
        }
    }

    /// Everything the bot posted, in order, as it looks now.
    pub fn posted(&self) -> Vec<Posted> {
        self.inner().posted.clone()
    }

    /// Current texts of the bot's messages in `channel`, in order.
    pub fn texts(&self, channel: &str) -> Vec<String> {
        self.posted().into_iter().filter(|p| p.channel == channel).map(|p| p.text).collect()
    }

    /// Web API methods called, in order.
    pub fn calls(&self) -> Vec<String> {
        self.inner().calls.clone()
    }

    /// How many Socket Mode connections were opened.
    pub fn connections(&self) -> usize {
        self.inner().connections
    }

    /// Envelope ids the app acknowledged, in order.
    pub fn acked(&self) -> Vec<String> {
        self.inner().acked.clone()
    }

    /// Envelopes delivered or waiting but not acknowledged.
    pub fn unacked(&self) -> usize {
        self.inner().pending.len()
    }

    /// Envelopes Slack gave up after its last retry (with a schedule).
    pub fn lost(&self) -> Vec<String> {
        self.inner().lost.clone()
    }

    /// For each acknowledged envelope, the time from its last delivery to its ack.
    pub fn ack_latencies(&self) -> Vec<Duration> {
        self.inner().ack_latencies.clone()
    }

    /// How many calls to `channel` drew a 429.
    pub fn rate_limited(&self, channel: &str) -> usize {
        self.inner().rate_limited.get(channel).copied().unwrap_or(0)
    }

    /// When each `chat.postMessage` / `chat.update` to `channel` came, in order.
    pub fn call_times(&self, channel: &str) -> Vec<Duration> {
        self.inner().call_times.get(channel).cloned().unwrap_or_default()
    }

    /// Ids of envelopes sent on a socket at least once but not acknowledged.
    pub fn delivered_unacked(&self) -> Vec<String> {
        self.inner().pending.iter().filter(|p| p.deliveries > 0).map(|p| p.id.clone()).collect()
    }

    /// The next ts of the workspace clock: "1700000000.000100", then increasing.
    fn tick(&self) -> String {
        let mut inner = self.inner();
        inner.clock += 1;
        format!("{}.{:06}", 1_700_000_000 + inner.clock / 1_000_000, 100 + inner.clock % 1_000_000)
    }
}

/// Slack's escaping of message text.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn callback(event: Value) -> Value {
    let event_time = event["ts"].as_str().and_then(|ts| ts.split('.').next()?.parse::<u64>().ok()).unwrap_or(0);
    json!({
        "token": "verification-token", "team_id": TEAM, "api_app_id": APP, "event": event,
        "type": "event_callback", "event_id": format!("Ev{}", event["ts"].as_str().unwrap_or("0").replace('.', "")),
        "event_time": event_time, "is_ext_shared_channel": false,
        "authorizations": [{ "team_id": TEAM, "user_id": BOT_USER, "is_bot": true, "is_enterprise_install": false }],
    })
}

fn message_event(channel: &str, channel_type: &str, user: &str, text: &str, ts: &str, thread: Option<&str>) -> Value {
    let mut event = json!({
        "type": "message", "channel": channel, "user": user, "text": text, "ts": ts,
        "channel_type": channel_type, "client_msg_id": format!("cm-{ts}"), "event_ts": ts, "team": TEAM,
    });
    if let Some(thread) = thread {
        event["thread_ts"] = json!(thread);
    }
    event
}

fn posted_json(posted: &Posted) -> Value {
    let mut message = json!({
        "type": "message", "text": posted.text, "user": BOT_USER, "bot_id": BOT_ID, "app_id": APP,
        "ts": posted.ts, "team": TEAM,
    });
    if let Some(thread) = &posted.thread_ts {
        message["thread_ts"] = json!(thread);
    }
    if let Some(blocks) = &posted.blocks {
        message["blocks"] = blocks.clone();
    }
    message
}
