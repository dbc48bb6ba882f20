//! The web chat page: the server-rendered frame, its script (`chat_render.js`
//! and `chat.js`, served as one) and
//! style sheet (`chat.css`), both compiled in with no build step, and
//! `GET /api/history` for a channel's bound session. The conversation itself
//! runs over the WebSocket in [`super::ws`]; the session list beside it is
//! [`super::sessions`]. Answers carry server-rendered, sanitised Markdown
//! ([`super::markdown`]) next to their text.

use super::login::{ApiSession, PageSession};
use super::templates::{self, Frame};
use super::{WebError, WebState};
use crate::bus::ChannelRef;
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse};

/// The platform id of the built-in web chat.
pub(crate) const PLATFORM: &str = "web";

/// History entries returned by `/api/history`.
const HISTORY_COUNT: u32 = 50;

/// `GET /`: the chat page.
pub(crate) async fn page(PageSession(session): PageSession) -> Result<Html<String>, WebError> {
    let frame = Frame { title: "Chat", csrf: Some(&session.csrf), flash: None };
    templates::render("chat.html", frame, ())
}

/// `GET /static/chat.js`: how messages look (`chat_render.js`), then the page's logic (`chat.js`).
pub(crate) async fn script() -> impl IntoResponse {
    asset("text/javascript; charset=utf-8", concat!(include_str!("chat_render.js"), "\n", include_str!("chat.js")))
}

/// `GET /static/chat.css`.
pub(crate) async fn style() -> impl IntoResponse {
    asset("text/css; charset=utf-8", include_str!("chat.css"))
}

fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    use axum::http::header;
    // Cacheable, but checked again on each load so an upgraded gorpd serves its own files.
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "no-cache")], body)
}

/// The browser's channel `web:<id>`, once the id is checked.
pub(crate) fn web_channel(id: String) -> Result<ChannelRef, WebError> {
    crate::names::check_external_id("channel id", &id).map_err(WebError::BadRequest)?;
    Ok(ChannelRef::new(PLATFORM, id))
}

/// The channel a request names.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct ChannelQuery {
    channel: String,
}

/// `GET /api/history?channel=<id>`: the bound session's last messages, oldest first.
pub(crate) async fn history(
    State(state): State<WebState>,
    _session: ApiSession,
    Query(query): Query<ChannelQuery>,
) -> Result<axum::Json<serde_json::Value>, WebError> {
    let channel = web_channel(query.channel)?;
    let Some(session) = state.orchestrator.session_of(&channel) else {
        return Ok(axum::Json(serde_json::json!({ "session": null, "messages": [] })));
    };
    let rows = state.orchestrator.store().last_messages(&session, HISTORY_COUNT).await.map_err(WebError::internal)?;
    let messages: Vec<_> = rows
        .iter()
        .map(|row| {
            serde_json::json!({
                "role": row.role, "author": row.author, "text": row.text, "html": super::markdown::to_html(&row.text),
                "channel": row.channel.as_ref().map(ToString::to_string),
                "created_at": row.created_at.to_rfc3339(),
                "attachments": row.attachments.iter().map(super::files::attachment_json).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(axum::Json(serde_json::json!({ "session": session, "messages": messages })))
}
