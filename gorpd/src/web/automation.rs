//! The admin panel's schedules and webhooks page: every schedule with its
//! next slot, last run and failure count (pause, resume, run, delete, add),
//! and every webhook (create, rotate, delete; a secret is shown once, in the
//! flash message). Same forms, CSRF rules and operations as the rest of the
//! panel.

use super::admin::{CsrfOnly, done, page};
use super::login::{ApiSession, PageSession};
use super::{WebError, WebState, html};
use crate::orchestrator::{ScheduleInfo, ScheduleRequest};
use crate::store::CatchUp;
use axum::Router;
use axum::extract::{Path, State};
use axum::response::{Html, Redirect};
use axum::routing::{get, post};
use html::escape;

const PAGE: &str = "/admin/automation";

pub(super) fn routes() -> Router<WebState> {
    Router::new()
        .route(PAGE, get(automation_page))
        .route("/admin/schedules", post(add_schedule))
        .route("/admin/schedules/{id}/{action}", post(schedule_action))
        .route("/admin/hooks", post(create_hook))
        .route("/admin/hooks/{session}/{action}", post(hook_action))
}

fn schedule_row(info: &ScheduleInfo, csrf: &str) -> String {
    let row = &info.row;
    let next = match (row.paused, row.next_slot) {
        (true, _) => "paused".to_owned(),
        (false, Some(next)) => next.to_rfc3339(),
        (false, None) => "none (fired)".to_owned(),
    };
    let last =
        info.last_run.as_ref().map_or_else(String::new, |run| format!("{} ({})", run.outcome, run.slot.to_rfc3339()));
    let toggle = if row.paused { "resume" } else { "pause" };
    let buttons: String = [toggle, "run", "delete"]
        .iter()
        .map(|action| html::post_button(&format!("/admin/schedules/{}/{action}", row.id), csrf, action, &[]))
        .collect();
    format!(
        "<tr><td>#{}</td><td>{}</td><td>{}<br><small>{}</small></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{buttons}</td></tr>",
        row.id,
        escape(&row.session),
        escape(&row.spec),
        escape(&info.description),
        escape(&row.timezone),
        escape(&next),
        escape(&last),
        row.failures,
        escape(&row.prompt.chars().take(80).collect::<String>()),
    )
}

async fn automation_page(
    State(state): State<WebState>,
    PageSession(session): PageSession,
) -> Result<Html<String>, WebError> {
    let orchestrator = &state.orchestrator;
    let csrf = &session.csrf;
    let mut body = String::from(
        "<h2>Schedules</h2><table id=\"schedules\"><tr><th>Id</th><th>Session</th><th>When</th><th>Zone</th>\
         <th>Next</th><th>Last run</th><th>Failures in a row</th><th>Prompt</th><th></th></tr>",
    );
    for info in orchestrator.schedules(None).await? {
        body.push_str(&schedule_row(&info, csrf));
    }
    body.push_str(&format!(
        "</table><h3>New schedule</h3><form method=\"post\" action=\"/admin/schedules\" id=\"new-schedule\">{}\
         <label>Session <input name=\"session\"></label> \
         <label>When <input name=\"when\" placeholder=\"every weekday at 8:30\"></label> \
         <label>Zone <input name=\"timezone\" placeholder=\"default\"></label> \
         <label>Missed slots <select name=\"catch_up\"><option>once</option><option>skip</option></select></label><br>\
         <label>Prompt <input name=\"prompt\" size=\"60\"></label> <button>Add</button></form>",
        html::csrf_field(csrf)
    ));
    body.push_str(
        "<h2>Webhooks</h2><table id=\"hooks\"><tr><th>Session</th><th>URL path</th><th>Template</th>\
         <th>Per minute</th><th>Created</th><th>Rotated</th><th></th></tr>",
    );
    for hook in orchestrator.hooks().await? {
        let buttons: String = ["rotate", "delete"]
            .iter()
            .map(|action| html::post_button(&format!("/admin/hooks/{}/{action}", hook.session), csrf, action, &[]))
            .collect();
        body.push_str(&format!(
            "<tr><td>{session}</td><td><code>/hooks/{session}</code></td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{buttons}</td></tr>",
            escape(hook.template.as_deref().unwrap_or("")),
            hook.per_minute,
            hook.created_at.to_rfc3339(),
            hook.rotated_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
            session = escape(&hook.session),
        ));
    }
    body.push_str(&format!(
        "</table><h3>New webhook</h3><form method=\"post\" action=\"/admin/hooks\" id=\"new-hook\">{}\
         <label>Session <input name=\"session\"></label> <label>Per minute <input name=\"per_minute\" size=\"6\"></label><br>\
         <label>Template for JSON bodies (optional) <textarea name=\"template\" rows=\"2\" cols=\"60\"></textarea></label> \
         <button>Create</button></form>",
        html::csrf_field(csrf)
    ));
    Ok(page(&state, &session, "Schedules and webhooks", &body))
}

/// Fields of the new-schedule form.
#[derive(Debug, serde::Deserialize)]
struct ScheduleForm {
    csrf: String,
    session: String,
    when: String,
    #[serde(default)]
    timezone: String,
    catch_up: String,
    prompt: String,
}

async fn add_schedule(
    State(state): State<WebState>,
    session: ApiSession,
    axum::Form(form): axum::Form<ScheduleForm>,
) -> Result<Redirect, WebError> {
    session.check_csrf(&form.csrf)?;
    let outcome = async {
        let catch_up = CatchUp::parse(&form.catch_up).map_err(WebError::BadRequest)?;
        let request = ScheduleRequest {
            session: form.session.trim().to_owned(),
            when: form.when,
            prompt: form.prompt,
            timezone: Some(form.timezone.trim().to_owned()).filter(|zone| !zone.is_empty()),
            catch_up,
            created_by: "admin panel".to_owned(),
        };
        let info = state.orchestrator.add_schedule(request).await?;
        Ok(format!("Scheduled #{} for {}: {}.", info.row.id, info.row.session, info.description))
    }
    .await;
    Ok(done(&state, &session, outcome, PAGE))
}

async fn schedule_action(
    State(state): State<WebState>,
    session: ApiSession,
    Path((id, action)): Path<(i64, String)>,
    axum::Form(form): axum::Form<CsrfOnly>,
) -> Result<Redirect, WebError> {
    session.check_csrf(&form.csrf)?;
    let orchestrator = &state.orchestrator;
    let outcome = match action.as_str() {
        "pause" => orchestrator.pause_schedule(id).await.map(|_| format!("Paused #{id}.")),
        "resume" => orchestrator.resume_schedule(id).await.map(|_| format!("Resumed #{id}.")),
        "run" => orchestrator.run_schedule(id).await.map(|run| format!("Fired #{id} now (run {}).", run.id)),
        "delete" => orchestrator.delete_schedule(id).await.map(|_| format!("Deleted #{id}.")),
        other => return Err(WebError::NotFound(format!("no schedule action \"{other}\""))),
    };
    Ok(done(&state, &session, outcome.map_err(WebError::from), PAGE))
}

/// Fields of the new-webhook form.
#[derive(Debug, serde::Deserialize)]
struct HookForm {
    csrf: String,
    session: String,
    #[serde(default)]
    per_minute: String,
    #[serde(default)]
    template: String,
}

async fn create_hook(
    State(state): State<WebState>,
    session: ApiSession,
    axum::Form(form): axum::Form<HookForm>,
) -> Result<Redirect, WebError> {
    session.check_csrf(&form.csrf)?;
    let outcome = async {
        let per_minute = match form.per_minute.trim() {
            "" => None,
            text => Some(text.parse().map_err(|_| WebError::BadRequest(format!("\"{text}\" is not a number")))?),
        };
        let name = form.session.trim();
        let (_, secret) = state.orchestrator.create_hook(name, Some(form.template), per_minute).await?;
        Ok(format!("Created the webhook of {name} (POST /hooks/{name}). Its secret, shown only now: {secret}"))
    }
    .await;
    Ok(done(&state, &session, outcome, PAGE))
}

async fn hook_action(
    State(state): State<WebState>,
    session: ApiSession,
    Path((name, action)): Path<(String, String)>,
    axum::Form(form): axum::Form<CsrfOnly>,
) -> Result<Redirect, WebError> {
    session.check_csrf(&form.csrf)?;
    let orchestrator = &state.orchestrator;
    let outcome = match action.as_str() {
        "rotate" => orchestrator
            .rotate_hook(&name)
            .await
            .map(|(_, secret)| format!("Rotated the webhook secret of {name}. The new one, shown only now: {secret}")),
        "delete" => orchestrator.delete_hook(&name).await.map(|_| format!("Deleted the webhook of {name}.")),
        other => return Err(WebError::NotFound(format!("no webhook action \"{other}\""))),
    };
    Ok(done(&state, &session, outcome.map_err(WebError::from), PAGE))
}
