//! A fake Telegram Bot API server.
//!
//! It serves `POST /bot{token}/{method}` on 127.0.0.1:0 the way the Bot API
//! documents it (method names are case-insensitive; teloxide sends
//! `GetUpdates`): getMe, getUpdates (offset confirms earlier updates, timeout
//! long-polls), sendMessage, editMessageText ("message is not modified" when
//! the text is unchanged), answerCallbackQuery. Answers are `{"ok":true,
//! "result":...}` or `{"ok":false,"error_code":..,"description":..}`, with
//! `parameters.retry_after` on a 429. Message ids count per chat, as
//! Telegram's do, so the same id exists in many chats. Files: users' photos,
//! documents and voice notes come with `file_id`s that `getFile` turns into a
//! `file_path` served at `GET /file/bot{token}/{file_path}` (at most 20 MB, as
//! for real bots); the bot's sendPhoto (10 MB), sendDocument, sendAudio and
//! sendVoice (50 MB) come as `multipart/form-data` and are kept with their
//! bytes. Tests inject user messages, files and button
//! presses, make the next calls of a method fail, and read what the bot sent.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::Notify;

/// The bot's own user id.
const BOT_ID: i64 = 999;

/// A message the bot sent, as it looks now.
#[derive(Debug, Clone)]
pub struct Sent {
    pub chat_id: i64,
    pub message_id: i64,
    pub text: String,
    pub reply_to: Option<i64>,
    pub reply_markup: Option<Value>,
    pub edits: usize,
    /// The file of a sendPhoto / sendDocument / sendAudio / sendVoice (`text` is its caption).
    pub file: Option<SentFile>,
}

/// A file the bot sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentFile {
    /// The method, lowercased (`sendphoto`, `senddocument`, …).
    pub method: String,
    /// The file name the bot gave.
    pub name: String,
    /// The bytes.
    pub data: Vec<u8>,
}

/// A file a user sends.
#[derive(Debug, Clone)]
pub enum UserFile {
    /// A photo (Telegram sends it as JPEG sizes; here one size of these bytes).
    Photo(Vec<u8>),
    /// A document with its file name and media type.
    Document { name: String, mime_type: String, data: Vec<u8> },
    /// A voice note (OGG/Opus).
    Voice(Vec<u8>),
}

/// Largest file `getFile` hands to a bot.
const GET_FILE_MAX: usize = 20 * 1024 * 1024;
/// Largest photo, and largest other file, a bot may send.
const SEND_PHOTO_MAX: usize = 10 * 1024 * 1024;
const SEND_FILE_MAX: usize = 50 * 1024 * 1024;

#[derive(Default)]
struct Inner {
    updates: Vec<Value>,
    next_update: i64,
    confirmed: i64,
    sent: Vec<Sent>,
    /// The last message id per chat: Telegram numbers messages per chat.
    last_message: HashMap<i64, i64>,
    failures: Vec<(String, VecDeque<Value>)>,
    calls: Vec<String>,
    /// Users' files by file_id: (file_path, bytes).
    files: HashMap<String, (String, Vec<u8>)>,
    answered_callbacks: Vec<String>,
}

/// A running fake Bot API for bot `token`.
#[derive(Clone)]
pub struct FakeTelegram {
    pub addr: SocketAddr,
    pub token: String,
    inner: Arc<Mutex<Inner>>,
    updated: Arc<Notify>,
}

impl FakeTelegram {
    /// Binds 127.0.0.1:0 and serves until the test's runtime ends.
    pub async fn start(token: &str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let inner = Inner { next_update: 1, ..Inner::default() };
        let fake = Self {
            addr: listener.local_addr().expect("addr"),
            token: token.to_owned(),
            inner: Arc::new(Mutex::new(inner)),
            updated: Arc::new(Notify::new()),
        };
        let app = Router::new()
            .route("/{bot}/{method}", post(call))
            .route("/file/{bot}/{path}", get(file))
            .with_state(fake.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        fake
    }

    /// The base URL to pass as `--telegram-api-url`.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn push_update(&self, kind: &str, body: Value) -> i64 {
        let mut inner = self.inner();
        let id = inner.next_update;
        inner.next_update += 1;
        inner.updates.push(json!({ "update_id": id, kind: body }));
        drop(inner);
        self.updated.notify_waiters();
        id
    }

    /// User `user_id` writes `text` in a private chat with the bot; returns the message id.
    pub fn dm(&self, user_id: i64, username: &str, text: &str) -> i64 {
        self.say(private_chat(user_id, username), user_id, username, text)
    }

    /// User `user_id` writes `text` in group `chat_id`; returns the message id.
    pub fn group_message(&self, chat_id: i64, user_id: i64, username: &str, text: &str) -> i64 {
        self.say(json!({ "id": chat_id, "type": "group", "title": "a group" }), user_id, username, text)
    }

    fn say(&self, chat: Value, user_id: i64, username: &str, text: &str) -> i64 {
        let message_id = self.next_message_id(chat["id"].as_i64().expect("chat id"));
        let message = json!({
            "message_id": message_id, "date": 1_700_000_000, "chat": chat,
            "from": user(user_id, username, false), "text": text,
        });
        self.push_update("message", message);
        message_id
    }

    /// User `user_id` sends `file` with `caption` in a private chat with the bot; returns the message id.
    pub fn dm_file(&self, user_id: i64, username: &str, file: UserFile, caption: &str) -> i64 {
        let chat = private_chat(user_id, username);
        let message_id = self.next_message_id(user_id);
        let mut message = json!({
            "message_id": message_id, "date": 1_700_000_000, "chat": chat, "from": user(user_id, username, false),
        });
        if !caption.is_empty() {
            message["caption"] = json!(caption);
        }
        let (field, mut meta, data) = match file {
            UserFile::Photo(data) => ("photo", json!([{ "width": 1, "height": 1 }]), data),
            UserFile::Document { name, mime_type, data } => {
                ("document", json!({ "file_name": name, "mime_type": mime_type }), data)
            }
            UserFile::Voice(data) => ("voice", json!({ "duration": 1, "mime_type": "audio/ogg" }), data),
        };
        let file_id = format!("file{}", self.inner().files.len() + 1);
        let ids = json!({ "file_id": file_id, "file_unique_id": format!("u{file_id}"), "file_size": data.len() });
        match meta.as_array_mut() {
            Some(sizes) => merge(&mut sizes[0], &ids),
            None => merge(&mut meta, &ids),
        }
        message[field] = meta;
        self.inner().files.insert(file_id.clone(), (format!("{file_id}.bin"), data));
        self.push_update("message", message);
        message_id
    }

    /// User `user_id` presses a button carrying `data` under the bot's message
    /// `message_id` in their private chat with the bot.
    pub fn press(&self, user_id: i64, username: &str, message_id: i64, data: &str) -> String {
        let pressed = |m: &Sent| m.chat_id == user_id && m.message_id == message_id;
        let sent = self.sent().into_iter().find(pressed).expect("pressed message");
        let id = format!("cq{}", self.inner().next_update);
        let query = json!({
            "id": id, "from": user(user_id, username, false), "chat_instance": "ci", "data": data,
            "message": sent_json(&sent),
        });
        self.push_update("callback_query", query);
        id
    }

    /// The next `times` calls of `method` fail with this Bot API error body.
    pub fn fail_next(&self, method: &str, times: usize, error: Value) {
        let failures = std::iter::repeat_n(error, times).collect();
        self.inner().failures.push((method.to_lowercase(), failures));
    }

    /// A 429 body asking to wait `retry_after` seconds.
    pub fn too_many_requests(retry_after: u64) -> Value {
        json!({
            "ok": false, "error_code": 429,
            "description": format!("Too Many Requests: retry after {retry_after}"),
            "parameters": { "retry_after": retry_after },
        })
    }

    /// Everything the bot sent, in order, with current texts.
    pub fn sent(&self) -> Vec<Sent> {
        self.inner().sent.clone()
    }

    /// Current texts of the bot's messages in `chat_id`.
    pub fn texts(&self, chat_id: i64) -> Vec<String> {
        self.sent().into_iter().filter(|m| m.chat_id == chat_id).map(|m| m.text).collect()
    }

    /// Method names called, lowercased, in order.
    pub fn calls(&self) -> Vec<String> {
        self.inner().calls.clone()
    }

    /// Callback query ids the bot answered.
    pub fn answered_callbacks(&self) -> Vec<String> {
        self.inner().answered_callbacks.clone()
    }

    /// The highest offset the bot confirmed with getUpdates.
    pub fn confirmed_offset(&self) -> i64 {
        self.inner().confirmed
    }

    fn next_message_id(&self, chat_id: i64) -> i64 {
        let mut inner = self.inner();
        let last = inner.last_message.entry(chat_id).or_insert(0);
        *last += 1;
        *last
    }
}

fn merge(target: &mut Value, fields: &Value) {
    for (key, value) in fields.as_object().expect("an object") {
        target[key] = value.clone();
    }
}

fn user(id: i64, username: &str, is_bot: bool) -> Value {
    json!({ "id": id, "is_bot": is_bot, "first_name": username, "username": username })
}

fn private_chat(user_id: i64, username: &str) -> Value {
    json!({ "id": user_id, "type": "private", "first_name": username, "username": username })
}

fn sent_json(sent: &Sent) -> Value {
    let chat = if sent.chat_id > 0 {
        private_chat(sent.chat_id, "user")
    } else {
        json!({ "id": sent.chat_id, "type": "group", "title": "a group" })
    };
    let mut message = json!({
        "message_id": sent.message_id, "date": 1_700_000_000, "chat": chat,
        "from": user(BOT_ID, "gorp_bot", true), "text": sent.text,
    });
    if let Some(markup) = &sent.reply_markup {
        message["reply_markup"] = markup.clone();
    }
    message
}

fn ok(result: Value) -> Response {
    axum::Json(json!({ "ok": true, "result": result })).into_response()
}

fn error(code: u16, description: &str) -> Response {
    let body = json!({ "ok": false, "error_code": code, "description": description });
    (StatusCode::from_u16(code).expect("status"), axum::Json(body)).into_response()
}

/// The bytes of a user's file, as `GET /file/bot{token}/{file_path}`.
async fn file(State(fake): State<FakeTelegram>, Path((bot, path)): Path<(String, String)>) -> Response {
    if bot.strip_prefix("bot") != Some(fake.token.as_str()) {
        return error(401, "Unauthorized");
    }
    let found = fake.inner().files.values().find(|(file_path, _)| *file_path == path).map(|(_, data)| data.clone());
    match found {
        Some(data) => data.into_response(),
        None => error(404, "Not Found"),
    }
}

/// A request's parameters: a JSON body, or the text fields of a form (with
/// its file part); the Bot API's description when it cannot be read.
fn params(headers: &HeaderMap, body: &[u8]) -> Result<(Value, Option<crate::multipart::Part>), &'static str> {
    let content_type = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let Some(boundary) = crate::multipart::boundary(content_type) else {
        if body.is_empty() {
            return Ok((json!({}), None));
        }
        return serde_json::from_slice(body).map(|p| (p, None)).map_err(|_| "Bad Request: can't parse JSON");
    };
    let parts = crate::multipart::parse(body, &boundary).ok_or("Bad Request: can't parse multipart form")?;
    let mut params = json!({});
    let mut file = None;
    for part in parts {
        if part.file_name.is_some() {
            file = Some(part);
            continue;
        }
        let text = String::from_utf8_lossy(&part.data).into_owned();
        params[&part.name] = serde_json::from_str(&text).unwrap_or(Value::String(text));
    }
    Ok((params, file))
}

async fn call(
    State(fake): State<FakeTelegram>,
    Path((bot, method)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if bot.strip_prefix("bot") != Some(fake.token.as_str()) {
        return error(401, "Unauthorized");
    }
    let method = method.to_lowercase();
    let (params, upload) = match params(&headers, &body) {
        Ok(read) => read,
        Err(description) => return error(400, description),
    };
    let failure = {
        let mut inner = fake.inner();
        inner.calls.push(method.clone());
        inner.failures.iter_mut().find(|(m, f)| *m == method && !f.is_empty()).and_then(|(_, f)| f.pop_front())
    };
    if let Some(failure) = failure {
        let code = failure["error_code"].as_u64().unwrap_or(400) as u16;
        return (StatusCode::from_u16(code).expect("status"), axum::Json(failure)).into_response();
    }
    match method.as_str() {
        "getme" => ok(json!({
            "id": BOT_ID, "is_bot": true, "first_name": "gorp", "username": "gorp_bot",
            "can_join_groups": true, "can_read_all_group_messages": false, "supports_inline_queries": false,
            "can_connect_to_business": false, "has_main_web_app": false,
        })),
        "getupdates" => get_updates(&fake, &params).await,
        "sendmessage" => send_message(&fake, &params),
        "sendphoto" | "senddocument" | "sendaudio" | "sendvoice" => send_file(&fake, &method, &params, upload),
        "getfile" => get_file(&fake, &params),
        "editmessagetext" => edit_message_text(&fake, &params),
        "answercallbackquery" => {
            let Some(id) = params["callback_query_id"].as_str() else {
                return error(400, "Bad Request: callback_query_id is required");
            };
            fake.inner().answered_callbacks.push(id.to_owned());
            ok(json!(true))
        }
        _ => error(404, "Not Found: method not found"),
    }
}

async fn get_updates(fake: &FakeTelegram, params: &Value) -> Response {
    let offset = params["offset"].as_i64().unwrap_or(0);
    let timeout = Duration::from_secs(params["timeout"].as_u64().unwrap_or(0));
    let limit = params["limit"].as_u64().unwrap_or(100) as usize;
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        // Register for wake-ups before looking, so an update pushed in between is not missed.
        let notified = fake.updated.notified();
        {
            let mut inner = fake.inner();
            if offset > inner.confirmed {
                inner.confirmed = offset;
                inner.updates.retain(|u| u["update_id"].as_i64().unwrap_or(0) >= offset);
            }
            let ready: Vec<Value> = inner
                .updates
                .iter()
                .filter(|u| u["update_id"].as_i64().unwrap_or(0) >= offset)
                .take(limit)
                .cloned()
                .collect();
            if !ready.is_empty() || tokio::time::Instant::now() >= deadline {
                return ok(Value::Array(ready));
            }
        }
        let _ = tokio::time::timeout_at(deadline, notified).await;
    }
}

fn send_message(fake: &FakeTelegram, params: &Value) -> Response {
    let (Some(chat_id), Some(text)) = (params["chat_id"].as_i64(), params["text"].as_str()) else {
        return error(400, "Bad Request: chat_id and text are required");
    };
    if text.is_empty() {
        return error(400, "Bad Request: message text is empty");
    }
    if text.chars().count() > 4096 {
        return error(400, "Bad Request: message is too long");
    }
    let message_id = fake.next_message_id(chat_id);
    let sent = Sent {
        chat_id,
        message_id,
        text: text.to_owned(),
        reply_to: params["reply_parameters"]["message_id"].as_i64(),
        reply_markup: params.get("reply_markup").cloned(),
        edits: 0,
        file: None,
    };
    let result = sent_json(&sent);
    fake.inner().sent.push(sent);
    ok(result)
}

fn edit_message_text(fake: &FakeTelegram, params: &Value) -> Response {
    let (Some(chat_id), Some(message_id), Some(text)) =
        (params["chat_id"].as_i64(), params["message_id"].as_i64(), params["text"].as_str())
    else {
        return error(400, "Bad Request: chat_id, message_id and text are required");
    };
    if text.chars().count() > 4096 {
        return error(400, "Bad Request: MESSAGE_TOO_LONG");
    }
    let mut inner = fake.inner();
    let Some(sent) = inner.sent.iter_mut().find(|m| m.chat_id == chat_id && m.message_id == message_id) else {
        return error(400, "Bad Request: message to edit not found");
    };
    if sent.text == text {
        return error(
            400,
            "Bad Request: message is not modified: specified new message content and reply markup are exactly the \
             same as a current content and reply markup of the message",
        );
    }
    sent.text = text.to_owned();
    sent.edits += 1;
    ok(sent_json(sent))
}

fn get_file(fake: &FakeTelegram, params: &Value) -> Response {
    let Some(file_id) = params["file_id"].as_str() else { return error(400, "Bad Request: file_id is required") };
    let inner = fake.inner();
    let Some((path, data)) = inner.files.get(file_id) else { return error(400, "Bad Request: invalid file_id") };
    if data.len() > GET_FILE_MAX {
        return error(400, "Bad Request: file is too big");
    }
    ok(
        json!({ "file_id": file_id, "file_unique_id": format!("u{file_id}"), "file_size": data.len(), "file_path": path }),
    )
}

/// sendPhoto, sendDocument, sendAudio, sendVoice: the file is the form's file part.
fn send_file(fake: &FakeTelegram, method: &str, params: &Value, upload: Option<crate::multipart::Part>) -> Response {
    let (Some(chat_id), Some(upload)) = (params["chat_id"].as_i64(), upload) else {
        return error(400, "Bad Request: chat_id and a file are required");
    };
    let limit = if method == "sendphoto" { SEND_PHOTO_MAX } else { SEND_FILE_MAX };
    if upload.data.len() > limit {
        return error(413, "Request Entity Too Large");
    }
    let message_id = fake.next_message_id(chat_id);
    let file = SentFile { method: method.to_owned(), name: upload.file_name.unwrap_or_default(), data: upload.data };
    let sent = Sent {
        chat_id,
        message_id,
        text: params["caption"].as_str().unwrap_or_default().to_owned(),
        reply_to: params["reply_parameters"]["message_id"].as_i64(),
        reply_markup: None,
        edits: 0,
        file: Some(file),
    };
    let result = sent_json(&sent);
    fake.inner().sent.push(sent);
    ok(result)
}
