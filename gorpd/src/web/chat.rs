//! The web chat page: the server-rendered frame, its script (`chat.js`,
//! compiled in, no build step) and `GET /api/history` for a channel's bound
//! session. The conversation itself runs over the WebSocket in [`super::ws`].

use super::login::{ApiSession, PageSession};
use super::{WebError, WebState, html};
use crate::bus::ChannelRef;
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse};

/// The platform id of the built-in web chat.
pub(crate) const PLATFORM: &str = "web";

/// History entries returned by `/api/history`.
const HISTORY_COUNT: u32 = 50;

/// `GET /`: the chat page.
pub(crate) async fn page(PageSession(session): PageSession) -> Html<String> {
    let body = format!(
        "{nav}<h1>gorp chat</h1><p id=\"status\">connecting…</p><div id=\"log\" aria-live=\"polite\"></div>\
         <form id=\"send\" data-csrf=\"{csrf}\"><input id=\"text\" autocomplete=\"off\" size=\"60\" placeholder=\"!help\" autofocus> \
         <button>Send</button></form>\
         <script src=\"/static/chat.js\"></script>",
        nav = html::nav(&session.csrf),
        csrf = html::escape(&session.csrf),
    );
    Html(html::layout("Chat", &body))
}

/// `GET /static/chat.js`.
pub(crate) async fn script() -> impl IntoResponse {
    ([(axum::http::header::CONTENT_TYPE, "text/javascript; charset=utf-8")], include_str!("chat.js"))
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
    crate::names::check_external_id("channel id", &query.channel).map_err(WebError::BadRequest)?;
    let channel = ChannelRef::new(PLATFORM, query.channel);
    let Some(session) = state.orchestrator.session_of(&channel) else {
        return Ok(axum::Json(serde_json::json!({ "session": null, "messages": [] })));
    };
    let rows = state.orchestrator.store().last_messages(&session, HISTORY_COUNT).await.map_err(WebError::internal)?;
    let messages: Vec<_> = rows
        .iter()
        .map(|row| {
            serde_json::json!({
                "role": row.role, "author": row.author, "text": row.text,
                "channel": row.channel.as_ref().map(ToString::to_string),
                "created_at": row.created_at.to_rfc3339(),
            })
        })
        .collect();
    Ok(axum::Json(serde_json::json!({ "session": session, "messages": messages })))
}
