//! Stored files in the web chat: `POST /api/files` (the browser's uploads,
//! streamed into the file store within the per-file limit, before the
//! message that names them is sent over the socket) and
//! `GET /files/{sha256}/{name}` behind the login, the link every attachment
//! gets in the chat and the one gateways send when a file is too large for
//! their platform. Only a file some
//! message carries under that name is served. Raster images are shown
//! inline; everything else is a download, with a sandboxing CSP and
//! `nosniff`, so a stored HTML or SVG file never runs in gorp's origin.

use super::login::ApiSession;
use super::{WebError, WebState};
use crate::domain::Attachment;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// Media types the chat shows inline.
const INLINE_IMAGES: [&str; 4] = ["image/png", "image/jpeg", "image/gif", "image/webp"];

/// The path a file is served at.
pub(crate) fn file_path(attachment: &Attachment) -> String {
    let name: String = attachment
        .name
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect();
    format!("/files/{}/{name}", attachment.sha256)
}

/// An attachment as the chat's frames and history carry it.
pub(crate) fn attachment_json(attachment: &Attachment) -> Value {
    json!({
        "name": attachment.name,
        "media_type": attachment.media_type,
        "size": attachment.size,
        "url": file_path(attachment),
        "inline": INLINE_IMAGES.contains(&attachment.media_type.as_str()),
    })
}

/// Longest an upload may take (a large file over a slow link).
const UPLOAD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(600);

/// `POST /api/files`, outside the pages' body bound: its body is
/// streamed into the file store, which holds it to `max_attachment_bytes`.
pub(super) fn upload_routes() -> axum::Router<WebState> {
    axum::Router::new().route("/api/files", axum::routing::post(upload)).layer(
        tower_http::timeout::TimeoutLayer::with_status_code(axum::http::StatusCode::REQUEST_TIMEOUT, UPLOAD_TIMEOUT),
    )
}

/// Where `POST /api/files` is told the file's name, and the CSRF token.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct UploadQuery {
    name: String,
    csrf: String,
}

/// `POST /api/files?name=…&csrf=…` with the file as the body (its type in
/// `Content-Type`): stores it and answers what a chat frame names it by.
pub(crate) async fn upload(
    State(state): State<WebState>,
    session: ApiSession,
    Query(query): Query<UploadQuery>,
    headers: axum::http::HeaderMap,
    body: Body,
) -> Result<axum::Json<Value>, WebError> {
    session.check_csrf(&query.csrf)?;
    crate::files::check_name(&query.name).map_err(WebError::BadRequest)?;
    let declared = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let media_type = crate::files::check_media_type(declared).map_err(WebError::BadRequest)?;
    let length = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse().ok());
    let files = state.orchestrator.files();
    let mut upload = files.upload(length).await.map_err(file_error)?;
    let mut chunks = body.into_data_stream();
    while let Some(chunk) = futures::StreamExt::next(&mut chunks).await {
        let chunk = chunk.map_err(|error| WebError::BadRequest(format!("the upload broke off: {error}")))?;
        upload.write(&chunk).await.map_err(file_error)?;
    }
    let stored = upload.finish().await.map_err(file_error)?;
    Ok(axum::Json(json!({
        "name": query.name, "media_type": media_type, "size": stored.size, "sha256": stored.sha256,
    })))
}

fn file_error(error: crate::files::FileError) -> WebError {
    use crate::files::FileError;
    match error {
        FileError::TooLarge(reason) | FileError::Invalid(reason) => WebError::BadRequest(reason),
        FileError::NotFound(reason) => WebError::NotFound(reason),
        FileError::Io(error) => WebError::internal(error),
    }
}

/// `GET /files/{sha256}/{name}`.
pub(crate) async fn download(
    State(state): State<WebState>,
    _session: ApiSession,
    Path((sha256, name)): Path<(String, String)>,
) -> Result<Response, WebError> {
    let not_found = || WebError::NotFound(format!("no file {name}"));
    let store = state.orchestrator.store();
    let attachment = store.file_named(&sha256, &name).await.map_err(WebError::internal)?.ok_or_else(not_found)?;
    let bytes = match state.orchestrator.files().read(&sha256).await {
        Ok(bytes) => bytes,
        Err(crate::files::FileError::NotFound(_)) => return Err(not_found()),
        Err(error) => return Err(WebError::internal(error)),
    };
    let inline = INLINE_IMAGES.contains(&attachment.media_type.as_str());
    let disposition = match inline {
        true => "inline".to_owned(),
        false => format!("attachment; filename=\"{}\"", name.replace(['"', '\\'], "_")),
    };
    let content_type = if inline { attachment.media_type } else { "application/octet-stream".to_owned() };
    let headers = [
        (header::CONTENT_TYPE, content_type),
        (header::CONTENT_DISPOSITION, disposition),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
        (header::CONTENT_SECURITY_POLICY, "default-src 'none'; sandbox".to_owned()),
        (header::CACHE_CONTROL, "private, max-age=31536000, immutable".to_owned()),
    ];
    Ok((headers, bytes).into_response())
}
