//! The web chat's session list and what it does: list every session with its
//! state, history size and last entry; create, delete, switch (bind the
//! browser's channel to a session or back to DISPATCH) and search a session's
//! history.
//!
//! The same fleet operations as DISPATCH, the Control API and the admin panel
//! (`Orchestrator::create_session`, `delete_session`, `bind`, `unbind`), and
//! the same rules: a login session, and the CSRF token in the form of every
//! POST. Nothing here writes to the store. Answers are JSON for `chat.js`;
//! errors are the usual status codes with the reason as text.

use super::chat::{PLATFORM, web_channel};
use super::login::ApiSession;
use super::{WebError, WebState};
use crate::orchestrator::{SessionInfo, SessionState};
use crate::store::{HistoryRow, Role, SEARCH_MAX_RESULTS, SearchQuery};
use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

/// Characters of a session's last entry the list shows.
const PREVIEW_CHARS: usize = 120;

/// The session list's routes.
pub(super) fn routes() -> Router<WebState> {
    Router::new()
        .route("/api/sessions", get(list).post(create))
        .route("/api/sessions/{name}/delete", post(delete))
        .route("/api/bind", post(bind))
        .route("/api/unbind", post(unbind))
        .route("/api/search", get(search))
}

/// The query naming the browser's channel.
#[derive(Debug, serde::Deserialize)]
struct ChannelQuery {
    channel: String,
}

/// `GET /api/sessions?channel=<id>`: every session, the one this channel is
/// bound to, and the agent profiles a new session can run.
async fn list(
    State(state): State<WebState>,
    _session: ApiSession,
    Query(query): Query<ChannelQuery>,
) -> Result<Json<Value>, WebError> {
    let channel = web_channel(query.channel)?;
    let orchestrator = &state.orchestrator;
    let mut sessions = Vec::new();
    for info in orchestrator.list_sessions().await? {
        sessions.push(session_entry(&state, &info).await?);
    }
    Ok(Json(json!({
        "bound": orchestrator.session_of(&channel),
        "agents": orchestrator.agent_profiles(),
        "default_agent": orchestrator.config().default_agent,
        "sessions": sessions,
    })))
}

async fn session_entry(state: &WebState, info: &SessionInfo) -> Result<Value, WebError> {
    let name = &info.row.name;
    let last = state.orchestrator.store().last_messages(name, 1).await.map_err(WebError::internal)?.pop();
    Ok(json!({
        "name": name,
        "agent": info.row.backend,
        "state": shown_state(state, info, last.as_ref()),
        "messages": info.message_count,
        "queued": info.queued,
        "last": last.map(|row| json!({
            "role": row.role, "author": row.author, "text": preview(&row.text),
            "at": row.created_at.to_rfc3339(),
        })),
    }))
}

/// What the list shows: "waiting" (for a permission answer), "working", "error" (the
/// last turn failed) or "idle".
fn shown_state(state: &WebState, info: &SessionInfo, last: Option<&HistoryRow>) -> &'static str {
    if state.orchestrator.waits_for_permission(&info.row.name) {
        "waiting"
    } else if info.state == SessionState::Busy {
        "working"
    } else if last.is_some_and(|row| row.role == Role::Error.as_str()) {
        "error"
    } else {
        "idle"
    }
}

/// `text` on one line without the commonest Markdown marks, cut to [`PREVIEW_CHARS`].
fn preview(text: &str) -> String {
    let plain = text.replace("**", "").replace("~~", "").replace('`', "");
    let words = plain.split_whitespace().filter(|word| !word.chars().all(|c| c == '#' || c == '>'));
    let line = words.collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(PREVIEW_CHARS) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line,
    }
}

/// Fields of the new-session form.
#[derive(Debug, serde::Deserialize)]
struct CreateForm {
    csrf: String,
    channel: String,
    name: String,
    /// An agent profile; empty for the default.
    #[serde(default)]
    agent: String,
}

/// `POST /api/sessions`: creates a session and binds the browser's channel to it.
async fn create(
    State(state): State<WebState>,
    session: ApiSession,
    axum::Form(form): axum::Form<CreateForm>,
) -> Result<Json<Value>, WebError> {
    session.check_csrf(&form.csrf)?;
    let channel = web_channel(form.channel)?;
    let agent = Some(form.agent.trim()).filter(|agent| !agent.is_empty());
    let orchestrator = &state.orchestrator;
    let info = orchestrator.create_session(form.name.trim(), None, agent, Some(PLATFORM)).await?;
    orchestrator.bind(&channel, &info.row.name).await?;
    Ok(Json(json!({ "created": info.row.name, "bound": info.row.name })))
}

/// A form with only the CSRF token.
#[derive(Debug, serde::Deserialize)]
struct CsrfOnly {
    csrf: String,
}

/// `POST /api/sessions/{name}/delete`: deletes a session (its channels are told).
async fn delete(
    State(state): State<WebState>,
    session: ApiSession,
    Path(name): Path<String>,
    axum::Form(form): axum::Form<CsrfOnly>,
) -> Result<Json<Value>, WebError> {
    session.check_csrf(&form.csrf)?;
    state.orchestrator.delete_session(&name, None).await?;
    Ok(Json(json!({ "deleted": name })))
}

/// Fields of the switch form.
#[derive(Debug, serde::Deserialize)]
struct BindForm {
    csrf: String,
    channel: String,
    session: String,
}

/// `POST /api/bind`: the browser's channel talks to `session` from now on.
async fn bind(
    State(state): State<WebState>,
    session: ApiSession,
    axum::Form(form): axum::Form<BindForm>,
) -> Result<Json<Value>, WebError> {
    session.check_csrf(&form.csrf)?;
    let channel = web_channel(form.channel)?;
    state.orchestrator.bind(&channel, &form.session).await?;
    Ok(Json(json!({ "bound": form.session })))
}

/// Fields of the back-to-DISPATCH form.
#[derive(Debug, serde::Deserialize)]
struct UnbindForm {
    csrf: String,
    channel: String,
}

/// `POST /api/unbind`: the browser's channel talks to DISPATCH again.
async fn unbind(
    State(state): State<WebState>,
    session: ApiSession,
    axum::Form(form): axum::Form<UnbindForm>,
) -> Result<Json<Value>, WebError> {
    session.check_csrf(&form.csrf)?;
    let channel = web_channel(form.channel)?;
    state.orchestrator.unbind(&channel).await?;
    Ok(Json(json!({ "bound": null })))
}

/// The search query.
#[derive(Debug, serde::Deserialize)]
struct SearchParams {
    session: String,
    q: String,
}

/// `GET /api/search?session=<name>&q=<text>`: the session's newest history
/// entries containing the text (at most [`SEARCH_MAX_RESULTS`]).
async fn search(
    State(state): State<WebState>,
    _session: ApiSession,
    Query(params): Query<SearchParams>,
) -> Result<Json<Value>, WebError> {
    let query = SearchQuery::parse(&params.q).map_err(WebError::BadRequest)?;
    let orchestrator = &state.orchestrator;
    // An unknown session is a 404, not an empty result.
    orchestrator.session_info(&params.session).await?;
    let rows = orchestrator
        .store()
        .search_history(&params.session, &query, SEARCH_MAX_RESULTS)
        .await
        .map_err(WebError::internal)?;
    let results: Vec<Value> = rows
        .iter()
        .map(|row| json!({ "role": row.role, "author": row.author, "text": row.text, "at": row.created_at.to_rfc3339() }))
        .collect();
    Ok(Json(json!({ "session": params.session, "results": results })))
}

#[cfg(test)]
mod tests {
    use super::preview;

    #[test]
    fn a_preview_is_one_line_of_at_most_120_characters() {
        assert_eq!(preview("a\n\n b\tc "), "a b c");
        assert_eq!(preview("# Plan\n> **bold** `code` ~~gone~~ snake_case"), "Plan bold code gone snake_case");
        let long = "é".repeat(130);
        assert_eq!(preview(&long), format!("{}…", "é".repeat(120)));
        assert_eq!(preview(&"x".repeat(120)), "x".repeat(120));
    }
}
