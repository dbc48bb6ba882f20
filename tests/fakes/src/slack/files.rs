//! The fake's file sharing, Slack's documented upload flow:
//! `files.getUploadURLExternal` (filename, length) returns an `upload_url`
//! and a `file_id`; the bytes are POSTed to that URL (Slack answers
//! `OK - <length>` as text); `files.completeUploadExternal` (files, channel_id,
//! thread_ts, initial_comment) shares them in the channel. A file whose
//! bytes never came, or came with another length, cannot be completed.
//! Users' files arrive as `file_share` messages whose `files` carry a
//! `url_private_download`, served only with the bot token (`/files-pri/…`).

use super::{FakeSlack, web};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

/// A file the bot shared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedFile {
    pub channel: String,
    pub thread_ts: Option<String>,
    pub file_id: String,
    pub name: String,
    pub title: Option<String>,
    pub data: Vec<u8>,
}

/// An upload between `files.getUploadURLExternal` and `files.completeUploadExternal`.
#[derive(Debug, Clone, Default)]
pub(super) struct Upload {
    name: String,
    length: usize,
    data: Option<Vec<u8>>,
}

pub(super) fn get_upload_url(fake: &FakeSlack, params: &Map<String, Value>) -> Response {
    let Some(name) = web::string(params, "filename") else { return web::error("invalid_arguments") };
    let length = params.get("length").and_then(|v| v.as_str().and_then(|s| s.parse().ok()).or(v.as_u64()));
    let Some(length) = length.filter(|length| *length > 0) else { return web::error("invalid_arguments") };
    let mut inner = fake.inner();
    let file_id = format!("F{:04}", inner.uploads.len() + 1);
    inner.uploads.insert(file_id.clone(), Upload { name, length: length as usize, data: None });
    web::ok(json!({ "upload_url": format!("http://{}/upload/{file_id}", fake.addr), "file_id": file_id }))
}

/// The bytes of an upload, POSTed to its `upload_url`.
pub(super) async fn receive(State(fake): State<FakeSlack>, Path(file_id): Path<String>, body: Bytes) -> Response {
    let mut inner = fake.inner();
    let Some(upload) = inner.uploads.get_mut(&file_id) else { return StatusCode::NOT_FOUND.into_response() };
    let length = body.len();
    upload.data = Some(body.to_vec());
    (StatusCode::OK, [("content-type", "text/plain")], format!("OK - {length}")).into_response()
}

pub(super) fn complete(fake: &FakeSlack, params: &Map<String, Value>) -> Response {
    let Some(channel) = web::string(params, "channel_id") else { return web::error("invalid_arguments") };
    let files: Vec<(String, Option<String>)> = match params.get("files") {
        Some(Value::Array(files)) => files,
        _ => return web::error("invalid_arguments"),
    }
    .iter()
    .filter_map(|f| Some((f["id"].as_str()?.to_owned(), f["title"].as_str().map(str::to_owned))))
    .collect();
    let thread_ts = web::string(params, "thread_ts");
    let mut inner = fake.inner();
    let mut shared = Vec::new();
    for (file_id, title) in files {
        let Some(upload) = inner.uploads.get(&file_id) else { return web::error("file_not_found") };
        let Some(data) = upload.data.clone().filter(|data| data.len() == upload.length) else {
            return web::error("file_upload_size_mismatch");
        };
        let name = upload.name.clone();
        shared.push(json!({ "id": file_id, "name": name, "title": title.clone().unwrap_or_else(|| name.clone()) }));
        let file = SharedFile { channel: channel.clone(), thread_ts: thread_ts.clone(), file_id, name, title, data };
        inner.shared.push(file);
    }
    web::ok(json!({ "files": shared }))
}

/// A user's file at its `url_private_download`: only with the bot token.
pub(super) async fn private(
    State(fake): State<FakeSlack>,
    Path((file_id, _name)): Path<(String, String)>,
    headers: axum::http::HeaderMap,
) -> Response {
    let bearer = headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    if bearer != Some(fake.bot_token.as_str()) {
        return StatusCode::FORBIDDEN.into_response();
    }
    match fake.inner().user_files.get(&file_id) {
        Some(data) => data.clone().into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

impl FakeSlack {
    /// `user` shares a file in their DM with the bot, with `comment` as the
    /// message text (Slack's `file_share` message); returns the message ts.
    pub fn dm_file(&self, user: &str, name: &str, mimetype: &str, data: Vec<u8>, comment: &str) -> String {
        let channel = Self::dm_channel(user);
        let file_id = format!("FU{:04}", self.inner().user_files.len() + 1);
        let file = json!({
            "id": file_id, "name": name, "title": name, "mimetype": mimetype, "size": data.len(),
            "url_private": format!("http://{}/files-pri/{file_id}/{name}", self.addr),
            "url_private_download": format!("http://{}/files-pri/{file_id}/download/{name}", self.addr),
        });
        self.inner().user_files.insert(file_id, data);
        let ts = self.tick();
        self.inner().user_messages.push((channel.clone(), ts.clone()));
        let mut event = super::message_event(&channel, "im", user, comment, &ts, None);
        event["subtype"] = json!("file_share");
        event["files"] = json!([file]);
        self.push("events_api", super::callback(event));
        ts
    }

    /// Every file the bot shared, in order.
    pub fn shared_files(&self) -> Vec<SharedFile> {
        self.inner().shared.clone()
    }
}
