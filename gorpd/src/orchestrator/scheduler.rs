//! Scheduled prompts: the operations behind `!schedule`, the Control API and
//! the admin page, and the task that fires due slots.
//!
//! The task sleeps until the earliest slot of any active schedule (or until a
//! schedule changes), then fires every due schedule through the store's one
//! atomic write (`Store::fire_schedule`), which claims the slot, records the
//! run and queues the prompt, and hands the message to the session's actor
//! like any other. A slot found more than [`MISSED_AFTER`] in the past was
//! missed (gorpd was down or the machine slept): a schedule with catch-up
//! "once" fires once for the latest missed slot, one with "skip" records it
//! as skipped; either way the next slot is the first one after now, so
//! downtime never causes a burst.

use super::{Orchestrator, OrchestratorError, OrchestratorResult};
use crate::bus::Activity;
use crate::scheduling::{When, parse_when, parse_zone};
use crate::store::{CatchUp, Firing, NewSchedule, RunRow, ScheduleRow, StoreError};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use tracing::Instrument;

/// A slot older than this when the scheduler gets to it was missed.
pub const MISSED_AFTER: chrono::Duration = chrono::Duration::minutes(2);
/// Most schedules one session may have.
pub const MAX_SCHEDULES_PER_SESSION: usize = 100;
/// Longest "when" text, in bytes.
const MAX_SPEC_BYTES: usize = 200;

/// A new schedule as asked for.
#[derive(Debug, Clone)]
pub struct ScheduleRequest {
    /// The session to prompt.
    pub session: String,
    /// When: cron, a phrase, or one time.
    pub when: String,
    /// The prompt.
    pub prompt: String,
    /// IANA zone; the configured default when `None`.
    pub timezone: Option<String>,
    /// Missed-slot policy.
    pub catch_up: CatchUp,
    /// Who asks (shown in listings).
    pub created_by: String,
}

/// A schedule with what people need to see about it.
#[derive(Debug, Clone)]
pub struct ScheduleInfo {
    /// The stored schedule.
    pub row: ScheduleRow,
    /// "At 08:30 on Monday through Friday", or the one time in its zone.
    pub description: String,
    /// Its latest run.
    pub last_run: Option<RunRow>,
}

fn invalid(reason: String) -> OrchestratorError {
    OrchestratorError::Invalid(reason)
}

fn unknown_schedule(id: i64) -> impl FnOnce(StoreError) -> OrchestratorError {
    move |error| match error {
        StoreError::NotFound => OrchestratorError::UnknownSchedule(id),
        other => other.into(),
    }
}

/// The zone a stored schedule fires in (stored names were checked when it was made).
fn zone_of(row: &ScheduleRow) -> Tz {
    parse_zone(&row.timezone).unwrap_or(Tz::UTC)
}

fn when_of(row: &ScheduleRow) -> OrchestratorResult<When> {
    When::from_stored(row.cron.as_deref(), row.once_at).map_err(invalid)
}

impl Orchestrator {
    /// Stores a new schedule for a session.
    pub async fn add_schedule(&self, request: ScheduleRequest) -> OrchestratorResult<ScheduleInfo> {
        let store = &self.inner.store;
        store.session(&request.session).await.map_err(super::fleet::not_found_as_unknown(&request.session))?;
        crate::names::check_text(&request.prompt, self.inner.config.max_text_bytes).map_err(invalid)?;
        if request.when.len() > MAX_SPEC_BYTES {
            return Err(invalid(format!("\"when\" is longer than {MAX_SPEC_BYTES} bytes")));
        }
        let zone = match &request.timezone {
            Some(name) => parse_zone(name).map_err(invalid)?,
            None => self.inner.config.timezone,
        };
        let now = self.inner.clock.now();
        let when = parse_when(&request.when, zone, now).map_err(invalid)?;
        if store.schedules(Some(&request.session)).await?.len() >= MAX_SCHEDULES_PER_SESSION {
            return Err(invalid(format!(
                "{} has {MAX_SCHEDULES_PER_SESSION} schedules already; delete one first",
                request.session
            )));
        }
        let (cron, once_at) = match &when {
            When::Cron(spec) => (Some(spec.expression.clone()), None),
            When::Once(at) => (None, Some(*at)),
        };
        let new = NewSchedule {
            session: request.session.clone(),
            spec: request.when.trim().to_owned(),
            cron,
            once_at,
            timezone: zone.name().to_owned(),
            prompt: request.prompt,
            catch_up: request.catch_up,
            next_slot: when.next_after(now, zone),
            created_by: request.created_by,
        };
        let row = store.add_schedule(new).await.map_err(super::fleet::not_found_as_unknown(&request.session))?;
        tracing::info!(schedule = row.id, session = %row.session, spec = %row.spec, "schedule added");
        self.inner.schedules_changed.notify_one();
        self.schedule_info(row).await
    }

    /// Every schedule, or those of one session, by id.
    pub async fn schedules(&self, session: Option<&str>) -> OrchestratorResult<Vec<ScheduleInfo>> {
        if let Some(session) = session {
            self.inner.store.session(session).await.map_err(super::fleet::not_found_as_unknown(session))?;
        }
        let mut infos = Vec::new();
        for row in self.inner.store.schedules(session).await? {
            infos.push(self.schedule_info(row).await?);
        }
        Ok(infos)
    }

    /// One schedule.
    pub async fn schedule(&self, id: i64) -> OrchestratorResult<ScheduleInfo> {
        let row = self.inner.store.schedule(id).await.map_err(unknown_schedule(id))?;
        self.schedule_info(row).await
    }

    async fn schedule_info(&self, row: ScheduleRow) -> OrchestratorResult<ScheduleInfo> {
        let description = match when_of(&row)? {
            When::Cron(spec) => spec.describe(),
            When::Once(at) => format!("Once at {}", at.with_timezone(&zone_of(&row)).format("%Y-%m-%d %H:%M %Z")),
        };
        let last_run = self.inner.store.schedule_runs(row.id, 1).await?.pop();
        Ok(ScheduleInfo { row, description, last_run })
    }

    /// Pauses a schedule: it does not fire until resumed.
    pub async fn pause_schedule(&self, id: i64) -> OrchestratorResult<ScheduleInfo> {
        let current = self.inner.store.schedule(id).await.map_err(unknown_schedule(id))?;
        let row =
            self.inner.store.set_schedule_paused(id, true, current.next_slot).await.map_err(unknown_schedule(id))?;
        self.inner.schedules_changed.notify_one();
        self.schedule_info(row).await
    }

    /// Resumes a schedule from now: slots that passed while it was paused do not fire.
    pub async fn resume_schedule(&self, id: i64) -> OrchestratorResult<ScheduleInfo> {
        let current = self.inner.store.schedule(id).await.map_err(unknown_schedule(id))?;
        let next = when_of(&current)?.next_after(self.inner.clock.now(), zone_of(&current));
        let row = self.inner.store.set_schedule_paused(id, false, next).await.map_err(unknown_schedule(id))?;
        self.inner.schedules_changed.notify_one();
        self.schedule_info(row).await
    }

    /// Deletes a schedule and its run history.
    pub async fn delete_schedule(&self, id: i64) -> OrchestratorResult<ScheduleRow> {
        let row = self.inner.store.delete_schedule(id).await.map_err(unknown_schedule(id))?;
        tracing::info!(schedule = id, session = %row.session, "schedule deleted");
        self.inner.schedules_changed.notify_one();
        Ok(row)
    }

    /// Fires a schedule now, outside its slots (its next slot is unchanged).
    pub async fn run_schedule(&self, id: i64) -> OrchestratorResult<RunRow> {
        let now = self.inner.clock.now();
        let firing = Firing { schedule_id: id, claimed_slot: None, slot: now, next_slot: None, publish: true, now };
        let (run, inbound) =
            self.inner.store.fire_schedule(firing).await?.ok_or(OrchestratorError::UnknownSchedule(id))?;
        let row = self.inner.store.schedule(id).await.map_err(unknown_schedule(id))?;
        if let Some(inbound) = inbound {
            self.hand_to_session(&row.session, inbound).await;
        }
        Ok(run)
    }

    /// The last `limit` runs of a schedule, newest first.
    pub async fn schedule_runs(&self, id: i64, limit: u32) -> OrchestratorResult<Vec<RunRow>> {
        self.inner.store.schedule(id).await.map_err(unknown_schedule(id))?;
        Ok(self.inner.store.schedule_runs(id, limit).await?)
    }

    async fn hand_to_session(&self, session: &str, inbound: crate::bus::Inbound) {
        self.inner.bus.report(Activity::Message(inbound.clone()));
        self.enqueue_turn(session, inbound).await;
    }

    /// Fires due slots until gorpd stops.
    pub(super) async fn run_scheduler(self) {
        let clock = self.inner.clock.clone();
        loop {
            // Armed before reading the next slot, so a change made meanwhile is not missed.
            let changed = self.inner.schedules_changed.notified();
            let next = match self.fire_due(clock.now()).await {
                Ok(()) => self.inner.store.earliest_slot().await,
                Err(error) => Err(error),
            };
            let wake = match next {
                Ok(next) => next,
                Err(error) => {
                    tracing::error!(%error, "scheduler failed; retrying in a minute");
                    Some(clock.now() + chrono::Duration::minutes(1))
                }
            };
            let sleep = async {
                match wake {
                    Some(at) => clock.sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = self.inner.shutdown.cancelled() => break,
                _ = changed => {}
                _ = sleep => {}
            }
        }
    }

    /// Fires (or skips) every schedule due at `now`.
    async fn fire_due(&self, now: DateTime<Utc>) -> Result<(), StoreError> {
        for row in self.inner.store.due_schedules(now).await? {
            let span = tracing::info_span!("schedule", schedule = row.id, session = %row.session);
            self.fire_one(row, now).instrument(span).await?;
        }
        Ok(())
    }

    /// Fires (or, when missed and not caught up, skips) one due schedule.
    async fn fire_one(&self, row: ScheduleRow, now: DateTime<Utc>) -> Result<(), StoreError> {
        let Some(claimed) = row.next_slot else { return Ok(()) };
        let Ok(when) = when_of(&row) else {
            tracing::error!("stored schedule cannot be read; it is not fired");
            return Ok(());
        };
        let zone = zone_of(&row);
        let missed = now - claimed > MISSED_AFTER;
        let slot = if missed { when.latest_at_or_before(now, zone).unwrap_or(claimed) } else { claimed };
        let publish = !missed || row.catch_up == CatchUp::Once;
        let next_slot = when.next_after(now, zone);
        let firing = Firing { schedule_id: row.id, claimed_slot: Some(claimed), slot, next_slot, publish, now };
        match self.inner.store.fire_schedule(firing).await? {
            Some((run, Some(inbound))) => {
                tracing::info!(run = run.id, message_id = inbound.id, %slot, missed, "schedule fired");
                self.hand_to_session(&row.session, inbound).await;
            }
            Some((run, None)) => tracing::info!(run = run.id, %slot, "missed slot skipped (catch-up: skip)"),
            None => tracing::debug!("slot taken meanwhile"),
        }
        Ok(())
    }
}
