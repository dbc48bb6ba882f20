//! The admin panel: dashboard, session detail (history, unbind, delete,
//! tell), tokens (create, revoke) and health, server-rendered.
//!
//! Every form is a POST carrying the session's CSRF token and answers with a
//! redirect back (POST-redirect-GET); results and errors travel as a one-time
//! flash message in the login session. Actions call the same orchestrator and
//! authenticator functions as DISPATCH and the Control API.

use super::login::{ApiSession, PageSession};
use super::templates::{self, Frame};
use super::{WebError, WebState};
use crate::bus::ChannelRef;
use crate::store::TokenKind;
use axum::Router;
use axum::extract::{Path, State};
use axum::response::{Html, Redirect};
use axum::routing::{get, post};
use serde_json::json;

/// The origin recorded for messages told from the admin panel.
fn admin_origin() -> ChannelRef {
    ChannelRef::new("control", "web")
}

/// The admin routes.
pub(super) fn routes() -> Router<WebState> {
    Router::new()
        .route("/admin", get(dashboard))
        .route("/admin/sessions/{name}", get(session_page))
        .route("/admin/sessions/{name}/unbind", post(unbind))
        .route("/admin/sessions/{name}/delete", post(delete))
        .route("/admin/sessions/{name}/tell", post(tell))
        .route("/admin/tokens", get(tokens_page).post(create_token))
        .route("/admin/tokens/{id}/revoke", post(revoke_token))
        .route("/admin/health", get(health))
}

/// Renders `template` in the logged-in frame with any pending flash message.
pub(super) fn page(
    state: &WebState,
    session: &ApiSession,
    title: &str,
    template: &str,
    fields: impl serde::Serialize,
) -> Result<Html<String>, WebError> {
    let frame = Frame { title, csrf: Some(&session.csrf), flash: state.logins.take_flash(&session.id) };
    templates::render(template, frame, fields)
}

/// Shows the outcome of a form on the next page, and redirects there.
pub(super) fn done(state: &WebState, session: &ApiSession, outcome: Result<String, WebError>, to: &str) -> Redirect {
    let text = outcome.unwrap_or_else(|error| format!("Error: {error}"));
    state.logins.set_flash(&session.id, text);
    Redirect::to(to)
}

fn session_url(name: &str) -> String {
    format!("/admin/sessions/{name}")
}

async fn dashboard(State(state): State<WebState>, PageSession(session): PageSession) -> Result<Html<String>, WebError> {
    let orchestrator = &state.orchestrator;
    let sessions: Vec<_> = orchestrator
        .list_sessions()
        .await?
        .iter()
        .map(|info| {
            let channels: Vec<String> = info.channels.iter().map(ToString::to_string).collect();
            json!({ "name": info.row.name, "agent": info.row.backend, "state": info.state.as_str(),
                    "queued": info.queued, "channels": channels })
        })
        .collect();
    let store = orchestrator.store();
    let mut gateways = Vec::new();
    let now = chrono::Utc::now();
    for gateway in store.gateways().await.map_err(WebError::internal)? {
        let pending =
            store.responses_pending(&gateway.platform, gateway.acked_seq).await.map_err(WebError::internal)?;
        orchestrator.metrics().lag_sampled(&gateway.gateway_id, pending);
        let oldest = store.oldest_pending_at(&gateway.platform, gateway.acked_seq).await.map_err(WebError::internal)?;
        let oldest_pending = oldest.map_or("–".to_owned(), |at| format!("{} s", (now - at).num_seconds().max(0)));
        let undecryptable = state
            .presence
            .health(&gateway.gateway_id)
            .map_or("–".to_owned(), |h| format!("{} ({})", h.undecryptable_since_start, h.waiting_for_keys));
        gateways.push(json!({
            "id": gateway.gateway_id, "platform": gateway.platform,
            "connected": state.presence.is_connected(&gateway.gateway_id),
            "last_seen": gateway.last_seen.to_rfc3339(), "pending": pending, "oldest_pending": oldest_pending,
            "undecryptable": undecryptable,
        }));
    }
    let errors: Vec<_> = store
        .recent_errors(10)
        .await
        .map_err(WebError::internal)?
        .iter()
        .map(|error| {
            json!({ "seq": error.seq, "at": error.created_at.to_rfc3339(),
                    "session": error.session.as_deref().unwrap_or("DISPATCH"), "text": error.text })
        })
        .collect();
    let charts = super::charts::charts(orchestrator.metrics());
    let fields = json!({ "charts": charts, "sessions": sessions, "gateways": gateways, "errors": errors });
    page(&state, &session, "Dashboard", "dashboard.html", fields)
}

/// Tokens, cost, context and the agent's mode and model, as far as they are known.
fn usage_line(info: &crate::orchestrator::SessionInfo) -> String {
    let mut parts = vec![format!("tokens {} in, {} out", info.row.input_tokens, info.row.output_tokens)];
    if let Some((input, output)) = info.last_turn {
        parts.push(format!("last turn {input} in, {output} out"));
    }
    if let Some((amount, currency)) = &info.cost {
        parts.push(format!("cost {amount:.4} {currency}"));
    }
    let agent = info.agent.clone().unwrap_or_default();
    if let Some((used, size)) = agent.context {
        parts.push(format!("context {used} of {size} tokens"));
    }
    if let Some(mode) = &agent.mode {
        parts.push(format!("mode {mode}"));
    }
    if let Some(model) = &agent.model {
        parts.push(format!("model {model}"));
    }
    parts.join(" · ")
}

async fn session_page(
    State(state): State<WebState>,
    PageSession(session): PageSession,
    Path(name): Path<String>,
) -> Result<Html<String>, WebError> {
    let info = state.orchestrator.session_info(&name).await?;
    let channels: Vec<_> = info
        .channels
        .iter()
        .map(|channel| json!({ "name": channel.to_string(), "platform": channel.platform, "channel": channel.channel_id }))
        .collect();
    let history: Vec<_> = state
        .orchestrator
        .read(&name, Some(state.orchestrator.read_max()))
        .await?
        .iter()
        .map(|row| json!({ "author": row.author, "text": row.text }))
        .collect();
    let fields = json!({
        "agent": info.row.backend, "state": info.state.as_str(), "workspace": info.row.workspace_dir,
        "usage": usage_line(&info), "url": session_url(&name), "channels": channels, "history": history,
    });
    page(&state, &session, &format!("Session {name}"), "session.html", fields)
}

/// Fields of the unbind form.
#[derive(Debug, serde::Deserialize)]
struct UnbindForm {
    csrf: String,
    platform: String,
    channel: String,
}

async fn unbind(
    State(state): State<WebState>,
    session: ApiSession,
    Path(name): Path<String>,
    axum::Form(form): axum::Form<UnbindForm>,
) -> Result<Redirect, WebError> {
    session.check_csrf(&form.csrf)?;
    let channel = ChannelRef::new(form.platform, form.channel);
    let outcome = state.orchestrator.unbind(&channel).await.map(|s| format!("Unbound {channel} from {s}."));
    Ok(done(&state, &session, outcome.map_err(WebError::from), &session_url(&name)))
}

/// A form with only the CSRF token.
#[derive(Debug, serde::Deserialize)]
pub(super) struct CsrfOnly {
    pub(super) csrf: String,
}

async fn delete(
    State(state): State<WebState>,
    session: ApiSession,
    Path(name): Path<String>,
    axum::Form(form): axum::Form<CsrfOnly>,
) -> Result<Redirect, WebError> {
    session.check_csrf(&form.csrf)?;
    match state.orchestrator.delete_session(&name, None).await {
        Ok(_) => Ok(done(&state, &session, Ok(format!("Deleted session {name}.")), "/admin")),
        Err(error) => Ok(done(&state, &session, Err(error.into()), &session_url(&name))),
    }
}

/// Fields of the tell form.
#[derive(Debug, serde::Deserialize)]
struct TellForm {
    csrf: String,
    text: String,
}

async fn tell(
    State(state): State<WebState>,
    session: ApiSession,
    Path(name): Path<String>,
    axum::Form(form): axum::Form<TellForm>,
) -> Result<Redirect, WebError> {
    session.check_csrf(&form.csrf)?;
    let outcome = state.orchestrator.tell(&name, &form.text, Vec::new(), &admin_origin(), "operator").await;
    let outcome = outcome.map(|_| format!("Told {name}.")).map_err(WebError::from);
    Ok(done(&state, &session, outcome, &session_url(&name)))
}

async fn tokens_page(
    State(state): State<WebState>,
    PageSession(session): PageSession,
) -> Result<Html<String>, WebError> {
    let tokens: Vec<_> = state
        .auth
        .list()
        .await
        .map_err(WebError::internal)?
        .iter()
        .map(|token| {
            let kind = match &token.kind {
                TokenKind::Admin => "admin".to_owned(),
                TokenKind::Gateway { platform } => format!("gateway ({platform})"),
            };
            json!({ "id": token.id, "name": token.name, "kind": kind, "created": token.created_at.to_rfc3339(),
                    "revoked": token.revoked_at.map(|t| t.to_rfc3339()) })
        })
        .collect();
    page(&state, &session, "Tokens", "tokens.html", json!({ "tokens": tokens }))
}

/// Fields of the new-token form.
#[derive(Debug, serde::Deserialize)]
struct TokenForm {
    csrf: String,
    name: String,
    #[serde(default)]
    platform: String,
}

async fn create_token(
    State(state): State<WebState>,
    session: ApiSession,
    axum::Form(form): axum::Form<TokenForm>,
) -> Result<Redirect, WebError> {
    session.check_csrf(&form.csrf)?;
    let kind = match form.platform.trim() {
        "" => TokenKind::Admin,
        platform => TokenKind::Gateway { platform: platform.to_owned() },
    };
    let outcome = match state.auth.create(form.name.trim(), kind).await {
        Ok((row, secret)) => {
            Ok(format!("Created token {} ({}). Its secret, shown only now: {secret}", row.id, row.name))
        }
        Err(crate::auth::AuthError::Invalid(reason)) => Err(WebError::BadRequest(reason)),
        Err(error) => Err(WebError::internal(error)),
    };
    Ok(done(&state, &session, outcome, "/admin/tokens"))
}

async fn revoke_token(
    State(state): State<WebState>,
    session: ApiSession,
    Path(id): Path<i64>,
    axum::Form(form): axum::Form<CsrfOnly>,
) -> Result<Redirect, WebError> {
    session.check_csrf(&form.csrf)?;
    let outcome = match state.auth.revoke(id).await {
        Ok(row) => Ok(format!("Revoked token {} ({}).", row.id, row.name)),
        Err(error @ crate::auth::AuthError::UnknownToken(_)) => Err(WebError::BadRequest(error.to_string())),
        Err(error) => Err(WebError::internal(error)),
    };
    Ok(done(&state, &session, outcome, "/admin/tokens"))
}

/// Where the last compaction stood, in words for the health page.
fn compaction_summary(report: &crate::orchestrator::CompactionReport) -> String {
    let Some(at) = report.at else { return "not compacted yet".to_owned() };
    let mut points: Vec<String> =
        report.points.platforms.iter().map(|(platform, seq)| format!("{platform} through seq {seq}")).collect();
    points.push(format!("other platforms through seq {}", report.points.others));
    let stale: Vec<String> = report
        .stale_gateways
        .iter()
        .map(|gateway| format!("{} (last seen {})", gateway.gateway_id, gateway.last_seen.to_rfc3339()))
        .collect();
    let stale = if stale.is_empty() { "none".to_owned() } else { stale.join(", ") };
    format!("compacted at {}: {}; stale gateways: {stale}", at.to_rfc3339(), points.join(", "))
}

async fn health(State(state): State<WebState>, PageSession(session): PageSession) -> Result<Html<String>, WebError> {
    let orchestrator = &state.orchestrator;
    let sessions = orchestrator.list_sessions().await?;
    let counters = orchestrator.bus().counters();
    let inbound = orchestrator.store().inbound_count().await.map_err(WebError::internal)?;
    let size = orchestrator.store().database_size().await.map_err(WebError::internal)?;
    let rows: Vec<String> = size.rows.iter().map(|(table, rows)| format!("{table} {rows}")).collect();
    let fields = json!({
        "sessions": sessions.len(), "inbound": inbound, "db_bytes": size.bytes, "db_free": size.free_bytes,
        "rows": rows, "messages_in": counters.messages_in(), "responses_out": counters.responses_out(),
        "errors": counters.errors(), "compaction": compaction_summary(&orchestrator.compaction_report()),
    });
    page(&state, &session, "Health", "health.html", fields)
}
