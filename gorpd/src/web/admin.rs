//! The admin panel: dashboard, session detail (history, unbind, delete,
//! tell), tokens (create, revoke) and health, server-rendered.
//!
//! Every form is a POST carrying the session's CSRF token and answers with a
//! redirect back (POST-redirect-GET); results and errors travel as a one-time
//! flash message in the login session. Actions call the same orchestrator and
//! authenticator functions as DISPATCH and the Control API.

use super::login::{ApiSession, PageSession};
use super::{WebError, WebState, html};
use crate::bus::ChannelRef;
use crate::store::TokenKind;
use axum::Router;
use axum::extract::{Path, State};
use axum::response::{Html, Redirect};
use axum::routing::{get, post};
use html::escape;

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

/// A page with the nav bar and any pending flash message.
pub(super) fn page(state: &WebState, session: &ApiSession, title: &str, body: &str) -> Html<String> {
    let flash = state
        .logins
        .take_flash(&session.id)
        .map(|text| format!("<p class=\"flash\" id=\"flash\">{}</p>", escape(&text)))
        .unwrap_or_default();
    Html(html::layout(title, &format!("{}<h1>{}</h1>{flash}{body}", html::nav(&session.csrf), escape(title))))
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
    let mut body = String::from(
        "<h2>Sessions</h2><table id=\"sessions\"><tr><th>Name</th><th>Agent</th><th>State</th><th>Queued</th><th>Channels</th></tr>",
    );
    for info in orchestrator.list_sessions().await? {
        let channels: Vec<String> = info.channels.iter().map(|c| escape(&c.to_string())).collect();
        body.push_str(&format!(
            "<tr><td><a href=\"{url}\">{name}</a></td><td>{agent}</td><td>{state}</td><td>{queued}</td><td>{channels}</td></tr>",
            url = escape(&session_url(&info.row.name)),
            name = escape(&info.row.name),
            agent = escape(&info.row.backend),
            state = info.state.as_str(),
            queued = info.queued,
            channels = channels.join(", "),
        ));
    }
    body.push_str("</table><h2>Gateways</h2><table id=\"gateways\"><tr><th>Gateway</th><th>Platform</th><th>Connected</th><th>Last seen</th><th>Pending deliveries</th><th>Undecryptable (waiting for keys)</th></tr>");
    let store = orchestrator.store();
    for gateway in store.gateways().await.map_err(WebError::internal)? {
        let pending =
            store.responses_pending(&gateway.platform, gateway.acked_seq).await.map_err(WebError::internal)?;
        let connected = if state.presence.is_connected(&gateway.gateway_id) { "yes" } else { "no" };
        let undecryptable = state
            .presence
            .health(&gateway.gateway_id)
            .map_or("–".to_owned(), |h| format!("{} ({})", h.undecryptable_since_start, h.waiting_for_keys));
        body.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{connected}</td><td>{}</td><td>{pending}</td><td>{undecryptable}</td></tr>",
            escape(&gateway.gateway_id),
            escape(&gateway.platform),
            gateway.last_seen.to_rfc3339(),
        ));
    }
    body.push_str("</table><h2>Recent errors</h2><ul id=\"errors\">");
    for error in store.recent_errors(10).await.map_err(WebError::internal)? {
        body.push_str(&format!(
            "<li>#{} {} {}: {}</li>",
            error.seq,
            error.created_at.to_rfc3339(),
            escape(error.session.as_deref().unwrap_or("DISPATCH")),
            escape(&error.text)
        ));
    }
    body.push_str("</ul>");
    Ok(page(&state, &session, "Dashboard", &body))
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
    let url = session_url(&name);
    let mut body = format!(
        "<p>agent {} · {} · workspace <code>{}</code></p><p id=\"usage\">{}</p><h2>Bindings</h2><ul id=\"bindings\">",
        escape(&info.row.backend),
        info.state.as_str(),
        escape(&info.row.workspace_dir),
        escape(&usage_line(&info))
    );
    for channel in &info.channels {
        let button = html::post_button(
            &format!("{url}/unbind"),
            &session.csrf,
            "Unbind",
            &[("platform", &channel.platform), ("channel", &channel.channel_id)],
        );
        body.push_str(&format!("<li>{} {button}</li>", escape(&channel.to_string())));
    }
    body.push_str(&format!(
        "</ul><h2>Tell</h2><form method=\"post\" action=\"{action}/tell\">{csrf}<input name=\"text\" size=\"60\"> \
         <button>Tell</button></form><h2>History</h2><div id=\"history\">",
        action = escape(&url),
        csrf = html::csrf_field(&session.csrf)
    ));
    for row in state.orchestrator.read(&name, Some(state.orchestrator.read_max())).await? {
        body.push_str(&format!("<div class=\"msg\">{}: {}</div>", escape(&row.author), escape(&row.text)));
    }
    body.push_str(&format!(
        "</div><h2>Danger</h2>{}",
        html::post_button(&format!("{url}/delete"), &session.csrf, "Delete session", &[])
    ));
    Ok(page(&state, &session, &format!("Session {name}"), &body))
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
    let outcome = state.orchestrator.tell(&name, &form.text, &admin_origin(), "operator").await;
    let outcome = outcome.map(|_| format!("Told {name}.")).map_err(WebError::from);
    Ok(done(&state, &session, outcome, &session_url(&name)))
}

async fn tokens_page(
    State(state): State<WebState>,
    PageSession(session): PageSession,
) -> Result<Html<String>, WebError> {
    let mut body = String::from(
        "<table id=\"tokens\"><tr><th>Id</th><th>Name</th><th>Kind</th><th>Created</th><th>Revoked</th><th></th></tr>",
    );
    for token in state.auth.list().await.map_err(WebError::internal)? {
        let kind = match &token.kind {
            TokenKind::Admin => "admin".to_owned(),
            TokenKind::Gateway { platform } => format!("gateway ({platform})"),
        };
        let revoke = match token.revoked_at {
            Some(_) => String::new(),
            None => html::post_button(&format!("/admin/tokens/{}/revoke", token.id), &session.csrf, "Revoke", &[]),
        };
        body.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{revoke}</td></tr>",
            token.id,
            escape(&token.name),
            escape(&kind),
            token.created_at.to_rfc3339(),
            token.revoked_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
        ));
    }
    body.push_str(&format!(
        "</table><h2>New token</h2><form method=\"post\" action=\"/admin/tokens\">{}\
         <label>Name <input name=\"name\"></label> <label>Gateway platform (empty: admin) <input name=\"platform\"></label> \
         <button>Create</button></form>",
        html::csrf_field(&session.csrf)
    ));
    Ok(page(&state, &session, "Tokens", &body))
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

/// Where the last compaction stood, escaped for the health page.
fn compaction_summary(report: &crate::orchestrator::CompactionReport) -> String {
    let Some(at) = report.at else { return "not compacted yet".to_owned() };
    let mut points: Vec<String> = report
        .points
        .platforms
        .iter()
        .map(|(platform, seq)| format!("{} through seq {seq}", html::escape(platform)))
        .collect();
    points.push(format!("other platforms through seq {}", report.points.others));
    let stale: Vec<String> = report
        .stale_gateways
        .iter()
        .map(|gateway| format!("{} (last seen {})", html::escape(&gateway.gateway_id), gateway.last_seen.to_rfc3339()))
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
    let body = format!(
        "<ul id=\"health\"><li>status: ok</li><li>sessions: {}</li><li>messages stored: {inbound}</li>\
         <li>database: {} bytes ({} free); rows: {}</li>\
         <li>messages in since start: {}</li><li>responses out since start: {}</li><li>errors since start: {}</li>\
         <li>delivery log: {}</li></ul>\
         <p>Machine-readable: <a href=\"/healthz\">/healthz</a>, <a href=\"/metrics\">/metrics</a>.</p>",
        sessions.len(),
        size.bytes,
        size.free_bytes,
        rows.join(", "),
        counters.messages_in(),
        counters.responses_out(),
        counters.errors(),
        compaction_summary(&orchestrator.compaction_report()),
    );
    Ok(page(&state, &session, "Health", &body))
}
