//! A session's schedules and webhook settings as a YAML document, for
//! export and import (`gorpctl session export|import`). Round-trip safe:
//! importing an export into a session and exporting again gives the same
//! document. Secrets are never exported; an imported hook gets a new one.

use super::{Orchestrator, OrchestratorError, OrchestratorResult, ScheduleInfo, ScheduleRequest};
use crate::scheduling::{parse_when, parse_zone};
use crate::store::{CatchUp, HookRow};
use chrono::SecondsFormat;
use serde::{Deserialize, Serialize};

/// Largest document accepted by import, in bytes.
pub const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;

/// What a session's schedules and webhook are, without ids or secrets.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionConfig {
    /// Scheduled prompts.
    #[serde(default)]
    pub schedules: Vec<ExportedSchedule>,
    /// The webhook, if the session has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hook: Option<ExportedHook>,
}

/// One schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportedSchedule {
    /// The cron expression or phrase; a one-time schedule's instant (RFC 3339).
    pub when: String,
    /// IANA time zone.
    pub timezone: String,
    /// The prompt.
    pub prompt: String,
    /// `once` or `skip`.
    #[serde(default = "default_catch_up")]
    pub catch_up: CatchUp,
    /// Whether it is paused.
    #[serde(default)]
    pub paused: bool,
}

fn default_catch_up() -> CatchUp {
    CatchUp::Once
}

/// A webhook's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportedHook {
    /// Template for JSON bodies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// Calls per minute.
    pub per_minute: u32,
}

fn exported(info: &ScheduleInfo) -> ExportedSchedule {
    let row = &info.row;
    let when = match (&row.cron, row.once_at) {
        (None, Some(at)) => at.to_rfc3339_opts(SecondsFormat::Secs, true),
        _ => row.spec.clone(),
    };
    ExportedSchedule {
        when,
        timezone: row.timezone.clone(),
        prompt: row.prompt.clone(),
        catch_up: row.catch_up,
        paused: row.paused,
    }
}

impl Orchestrator {
    /// `session`'s schedules and webhook settings as YAML.
    pub async fn export_session_config(&self, session: &str) -> OrchestratorResult<String> {
        let schedules = self.schedules(Some(session)).await?.iter().map(exported).collect();
        let hook = match self.inner.store.hook(session).await {
            Ok((HookRow { template, per_minute, .. }, _)) => Some(ExportedHook { template, per_minute }),
            Err(crate::store::StoreError::NotFound) => None,
            Err(error) => return Err(error.into()),
        };
        let document = SessionConfig { schedules, hook };
        serde_norway::to_string(&document).map_err(|error| OrchestratorError::Invalid(error.to_string()))
    }

    /// Adds the schedules (and webhook) of a YAML document to `session`.
    /// Everything is checked before anything is added: a bad entry changes nothing.
    pub async fn import_session_config(
        &self,
        session: &str,
        yaml: &str,
        created_by: &str,
    ) -> OrchestratorResult<(Vec<ScheduleInfo>, Option<(HookRow, String)>)> {
        let invalid = OrchestratorError::Invalid;
        if yaml.len() > MAX_DOCUMENT_BYTES {
            return Err(invalid(format!("the document is larger than {MAX_DOCUMENT_BYTES} bytes")));
        }
        let document: SessionConfig =
            serde_norway::from_str(yaml).map_err(|error| invalid(format!("not a session config document: {error}")))?;
        self.inner.store.session(session).await.map_err(super::fleet::not_found_as_unknown(session))?;
        let now = self.inner.clock.now();
        for (index, schedule) in document.schedules.iter().enumerate() {
            let zone = parse_zone(&schedule.timezone).map_err(|e| invalid(format!("schedule {}: {e}", index + 1)))?;
            parse_when(&schedule.when, zone, now).map_err(|e| invalid(format!("schedule {}: {e}", index + 1)))?;
            crate::names::check_text(&schedule.prompt, self.inner.config.max_text_bytes)
                .map_err(|e| invalid(format!("schedule {}: {e}", index + 1)))?;
        }
        let existing = self.inner.store.schedules(Some(session)).await?.len();
        if existing + document.schedules.len() > super::MAX_SCHEDULES_PER_SESSION {
            return Err(invalid(format!(
                "{session} would have more than {} schedules",
                super::MAX_SCHEDULES_PER_SESSION
            )));
        }
        if let Some(hook) = &document.hook {
            if let Some(template) = &hook.template {
                super::check_template(template).map_err(invalid)?;
            }
            if self.inner.store.hook(session).await.is_ok() {
                return Err(invalid(format!("{session} has a webhook already; delete it before importing one")));
            }
        }
        let mut added = Vec::new();
        for schedule in document.schedules {
            let request = ScheduleRequest {
                session: session.to_owned(),
                when: schedule.when,
                prompt: schedule.prompt,
                timezone: Some(schedule.timezone),
                catch_up: schedule.catch_up,
                created_by: created_by.to_owned(),
            };
            let info = self.add_schedule(request).await?;
            added.push(if schedule.paused { self.pause_schedule(info.row.id).await? } else { info });
        }
        let hook = match document.hook {
            Some(hook) => Some(self.create_hook(session, hook.template, Some(hook.per_minute)).await?),
            None => None,
        };
        Ok((added, hook))
    }
}
