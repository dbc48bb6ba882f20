//! The admin panel's schedules and webhooks page: every schedule with its
//! next slot, last run and failure count (pause, resume, run, delete, add),
//! and every webhook (create, rotate, delete; a secret is shown once, in the
//! flash message). Same forms, CSRF rules and operations as the rest of the
//! panel.

use super::admin::{CsrfOnly, done, page};
use super::login::{ApiSession, PageSession};
use super::{WebError, WebState};
use crate::orchestrator::{ScheduleInfo, ScheduleRequest};
use crate::store::CatchUp;
use axum::Router;
use axum::extract::{Path, State};
use axum::response::{Html, Redirect};
use axum::routing::{get, post};
use serde_json::json;

const PAGE: &str = "/admin/automation";

pub(super) fn routes() -> Router<WebState> {
    Router::new()
        .route(PAGE, get(automation_page))
        .route("/admin/schedules", post(add_schedule))
        .route("/admin/schedules/{id}/{action}", post(schedule_action))
        .route("/admin/hooks", post(create_hook))
        .route("/admin/hooks/{session}/{action}", post(hook_action))
}

/// One schedule as the page shows it.
fn schedule_row(info: &ScheduleInfo) -> serde_json::Value {
    let row = &info.row;
    let next = match (row.paused, row.next_slot) {
        (true, _) => "paused".to_owned(),
        (false, Some(next)) => next.to_rfc3339(),
        (false, None) => "none (fired)".to_owned(),
    };
    let last =
        info.last_run.as_ref().map_or_else(String::new, |run| format!("{} ({})", run.outcome, run.slot.to_rfc3339()));
    json!({
        "id": row.id, "session": row.session, "spec": row.spec, "description": info.description,
        "timezone": row.timezone, "next": next, "last": last, "failures": row.failures,
        "prompt": row.prompt.chars().take(80).collect::<String>(),
        "toggle": if row.paused { "resume" } else { "pause" },
    })
}

async fn automation_page(
    State(state): State<WebState>,
    PageSession(session): PageSession,
) -> Result<Html<String>, WebError> {
    let orchestrator = &state.orchestrator;
    let schedules: Vec<_> = orchestrator.schedules(None).await?.iter().map(schedule_row).collect();
    let hooks: Vec<_> = orchestrator
        .hooks()
        .await?
        .iter()
        .map(|hook| {
            json!({
                "session": hook.session, "template": hook.template.as_deref().unwrap_or(""),
                "per_minute": hook.per_minute, "created": hook.created_at.to_rfc3339(),
                "rotated": hook.rotated_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
            })
        })
        .collect();
    page(
        &state,
        &session,
        "Schedules and webhooks",
        "automation.html",
        json!({ "schedules": schedules, "hooks": hooks }),
    )
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
