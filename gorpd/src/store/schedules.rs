//! Scheduled prompts and their runs. Firing a slot is one write: the run, the
//! queued message for the session and the schedule's next slot commit
//! together, and the run's unique (schedule, slot) key makes a second firing
//! of the same slot impossible, across restarts included. The turn's start
//! and end reach the run through triggers (migration 0007), in the same
//! transactions as the turn's own writes.

use super::inbound::insert_pending;
use super::sql::params;
use super::{NewInbound, Store, StoreError, StoreResult, StoredRow, now_text, parse_time, time_text};
use chrono::{DateTime, Utc};

/// The platform id of messages a schedule publishes (its channel id is the schedule's id).
pub const SCHEDULE_PLATFORM: &str = "schedule";

/// Whether a slot missed while gorpd was down fires once after the restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CatchUp {
    /// Fire once for the latest missed slot.
    Once,
    /// Skip missed slots (recorded as skipped).
    Skip,
}

impl CatchUp {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Once => "once",
            Self::Skip => "skip",
        }
    }

    /// Parses `once` or `skip`.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "once" => Ok(Self::Once),
            "skip" => Ok(Self::Skip),
            other => Err(format!("catch-up must be \"once\" or \"skip\", not \"{other}\"")),
        }
    }
}

/// A schedule to store.
#[derive(Debug, Clone)]
pub struct NewSchedule {
    /// The session it prompts.
    pub session: String,
    /// What the user wrote for "when".
    pub spec: String,
    /// The cron expression (recurring), or
    pub cron: Option<String>,
    /// the one time it fires.
    pub once_at: Option<DateTime<Utc>>,
    /// IANA time zone name.
    pub timezone: String,
    /// The prompt it publishes.
    pub prompt: String,
    /// Missed-slot policy.
    pub catch_up: CatchUp,
    /// Its first slot.
    pub next_slot: Option<DateTime<Utc>>,
    /// Who made it (sender and channel, or "gorpctl").
    pub created_by: String,
}

/// A stored schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleRow {
    /// Its id (`#id` in chat).
    pub id: i64,
    /// The session it prompts.
    pub session: String,
    /// What the user wrote for "when".
    pub spec: String,
    /// Cron expression of a recurring schedule.
    pub cron: Option<String>,
    /// The time of a one-time schedule.
    pub once_at: Option<DateTime<Utc>>,
    /// IANA time zone name.
    pub timezone: String,
    /// The prompt.
    pub prompt: String,
    /// Missed-slot policy.
    pub catch_up: CatchUp,
    /// Paused schedules do not fire.
    pub paused: bool,
    /// The next slot; `None` when a one-time schedule has fired.
    pub next_slot: Option<DateTime<Utc>>,
    /// Failed runs in a row (reset by a successful one).
    pub failures: u32,
    /// Who made it.
    pub created_by: String,
    /// When it was made.
    pub created_at: DateTime<Utc>,
}

/// One firing of a schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRow {
    /// Run id.
    pub id: i64,
    /// Its schedule.
    pub schedule_id: i64,
    /// The slot it was for (for a manual run, when it was asked for).
    pub slot: DateTime<Utc>,
    /// Started by `run`, not by the clock.
    pub manual: bool,
    /// When the message was published.
    pub fired_at: DateTime<Utc>,
    /// The published message, if one was (not for a skipped slot).
    pub inbound_id: Option<i64>,
    /// When the agent started on it.
    pub started_at: Option<DateTime<Utc>>,
    /// When its answer (or error) was committed.
    pub ended_at: Option<DateTime<Utc>>,
    /// queued, running, ok, failed, cancelled, interrupted or skipped.
    pub outcome: String,
    /// Length of the answer, in characters, when ok.
    pub answer_chars: Option<u32>,
    /// The error or notice, when not ok.
    pub error: Option<String>,
}

/// What firing a slot does.
#[derive(Debug, Clone)]
pub struct Firing {
    /// The schedule.
    pub schedule_id: i64,
    /// The slot the schedule is claimed at (`next_slot` must still be this),
    /// or `None` for a manual run, which claims nothing.
    pub claimed_slot: Option<DateTime<Utc>>,
    /// The slot the run is for.
    pub slot: DateTime<Utc>,
    /// The schedule's next slot afterwards.
    pub next_slot: Option<DateTime<Utc>>,
    /// Publish the prompt (`false`: the slot is recorded as skipped).
    pub publish: bool,
    /// The clock's time.
    pub now: DateTime<Utc>,
}

fn optional_time(row: &dyn StoredRow, column: &str) -> Option<DateTime<Utc>> {
    row.optional_text(column).as_deref().map(parse_time)
}

fn schedule_from_row(row: &dyn StoredRow) -> ScheduleRow {
    ScheduleRow {
        id: row.integer("id"),
        session: row.text("session_name"),
        spec: row.text("spec"),
        cron: row.optional_text("cron"),
        once_at: optional_time(row, "once_at"),
        timezone: row.text("timezone"),
        prompt: row.text("prompt"),
        catch_up: CatchUp::parse(&row.text("catch_up")).unwrap_or(CatchUp::Once),
        paused: row.integer("paused") != 0,
        next_slot: optional_time(row, "next_slot"),
        failures: row.integer("failures") as u32,
        created_by: row.text("created_by"),
        created_at: parse_time(&row.text("created_at")),
    }
}

fn run_from_row(row: &dyn StoredRow) -> RunRow {
    RunRow {
        id: row.integer("id"),
        schedule_id: row.integer("schedule_id"),
        slot: parse_time(&row.text("slot")),
        manual: row.integer("manual") != 0,
        fired_at: parse_time(&row.text("fired_at")),
        inbound_id: row.optional_integer("inbound_id"),
        started_at: optional_time(row, "started_at"),
        ended_at: optional_time(row, "ended_at"),
        outcome: row.text("outcome"),
        answer_chars: row.optional_integer("answer_chars").map(|n| n as u32),
        error: row.optional_text("error"),
    }
}

impl Store {
    /// Stores a schedule; `NotFound` when its session does not exist.
    pub async fn add_schedule(&self, new: NewSchedule) -> StoreResult<ScheduleRow> {
        self.write(move |connection| {
            connection.query_one(
                "INSERT INTO schedules (session_name, spec, cron, once_at, timezone, prompt, catch_up, next_slot,
                                        created_by, created_at)
                 SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10 WHERE EXISTS (SELECT 1 FROM sessions WHERE name = ?1)
                 RETURNING *",
                params![
                    new.session,
                    new.spec,
                    new.cron,
                    new.once_at.map(time_text),
                    new.timezone,
                    new.prompt,
                    new.catch_up.as_str(),
                    new.next_slot.map(time_text),
                    new.created_by,
                    now_text(),
                ],
                schedule_from_row,
            )
        })
        .await
    }

    /// One schedule; `NotFound` when unknown.
    pub async fn schedule(&self, id: i64) -> StoreResult<ScheduleRow> {
        self.reads.one("SELECT * FROM schedules WHERE id = ?", params![id], schedule_from_row).await
    }

    /// Every schedule (of `session`, when given), by id.
    pub async fn schedules(&self, session: Option<&str>) -> StoreResult<Vec<ScheduleRow>> {
        self.reads
            .rows(
                "SELECT * FROM schedules WHERE ?1 IS NULL OR session_name = ?1 ORDER BY id",
                params![session],
                schedule_from_row,
            )
            .await
    }

    /// Schedules due at `now` (not paused, next slot reached), oldest slot first.
    pub async fn due_schedules(&self, now: DateTime<Utc>) -> StoreResult<Vec<ScheduleRow>> {
        self.reads
            .rows(
                "SELECT * FROM schedules WHERE paused = 0 AND next_slot IS NOT NULL AND next_slot <= ? ORDER BY next_slot, id",
                params![time_text(now)],
                schedule_from_row,
            )
            .await
    }

    /// The earliest slot of any active schedule.
    pub async fn earliest_slot(&self) -> StoreResult<Option<DateTime<Utc>>> {
        let earliest = self
            .reads
            .one("SELECT MIN(next_slot) AS slot FROM schedules WHERE paused = 0", &[], |row| optional_time(row, "slot"))
            .await?;
        Ok(earliest)
    }

    /// Pauses or resumes a schedule, setting its next slot; `NotFound` when unknown.
    pub async fn set_schedule_paused(
        &self,
        id: i64,
        paused: bool,
        next_slot: Option<DateTime<Utc>>,
    ) -> StoreResult<ScheduleRow> {
        self.write(move |connection| {
            connection.query_one(
                "UPDATE schedules SET paused = ?, next_slot = ? WHERE id = ? RETURNING *",
                params![paused, next_slot.map(time_text), id],
                schedule_from_row,
            )
        })
        .await
    }

    /// Deletes a schedule and its run history; `NotFound` when unknown.
    pub async fn delete_schedule(&self, id: i64) -> StoreResult<ScheduleRow> {
        self.write(move |connection| {
            connection.query_one("DELETE FROM schedules WHERE id = ? RETURNING *", params![id], schedule_from_row)
        })
        .await
    }

    /// Fires (or skips) one slot atomically: claims it, records the run and
    /// queues the prompt for the session. `None` when the slot was already
    /// taken (the schedule moved on, was paused or deleted meanwhile).
    pub async fn fire_schedule(&self, firing: Firing) -> StoreResult<Option<(RunRow, Option<crate::domain::Inbound>)>> {
        self.write(move |connection| {
            let schedule = match connection.query_one(
                "SELECT * FROM schedules WHERE id = ?",
                params![firing.schedule_id],
                schedule_from_row,
            ) {
                Ok(schedule) => schedule,
                Err(StoreError::NotFound) => return Ok(None),
                Err(error) => return Err(error),
            };
            if let Some(claimed) = firing.claimed_slot {
                if schedule.paused || schedule.next_slot != Some(claimed) {
                    return Ok(None);
                }
                connection.execute(
                    "UPDATE schedules SET next_slot = ? WHERE id = ?",
                    params![firing.next_slot.map(time_text), schedule.id],
                )?;
            }
            let inbound = if firing.publish {
                let new = NewInbound {
                    channel: crate::domain::ChannelRef::new(SCHEDULE_PLATFORM, schedule.id.to_string()),
                    message_id: None,
                    sender: format!("schedule #{}", schedule.id),
                    text: schedule.prompt.clone(),
                    attachments: Vec::new(),
                    trace_context: None,
                };
                let rows = [(new, Some(schedule.session.clone()))];
                insert_pending(connection, &rows, &time_text(firing.now))?.pop().flatten()
            } else {
                None
            };
            let run = connection.query_one(
                "INSERT INTO schedule_runs (schedule_id, slot, manual, fired_at, inbound_id, outcome)
                 VALUES (?, ?, ?, ?, ?, ?) RETURNING *",
                params![
                    schedule.id,
                    time_text(firing.slot),
                    firing.claimed_slot.is_none(),
                    time_text(firing.now),
                    inbound.as_ref().map(|i| i.id),
                    if firing.publish { "queued" } else { "skipped" },
                ],
                run_from_row,
            )?;
            Ok(Some((run, inbound)))
        })
        .await
    }

    /// The last `limit` runs of a schedule, newest first.
    pub async fn schedule_runs(&self, schedule_id: i64, limit: u32) -> StoreResult<Vec<RunRow>> {
        self.reads
            .rows(
                "SELECT * FROM schedule_runs WHERE schedule_id = ? ORDER BY id DESC LIMIT ?",
                params![schedule_id, limit],
                run_from_row,
            )
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    fn every_quarter_hour(session: &str) -> NewSchedule {
        NewSchedule {
            session: session.into(),
            spec: "every 15 minutes".into(),
            cron: Some("*/15 * * * *".into()),
            once_at: None,
            timezone: "UTC".into(),
            prompt: "tick".into(),
            catch_up: CatchUp::Once,
            next_slot: Some(at("2026-03-02T08:15:00Z")),
            created_by: "test".into(),
        }
    }

    #[tokio::test]
    async fn a_slot_is_claimed_once_and_its_message_queued_with_the_run() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::open_for_test(dir.path()).await;
        assert!(matches!(store.add_schedule(every_quarter_hour("nobody")).await, Err(StoreError::NotFound)));
        store.create_session("s", "/tmp", "echo").await.unwrap();
        let schedule = store.add_schedule(every_quarter_hour("s")).await.unwrap();
        let now = at("2026-03-02T08:15:01Z");
        assert_eq!(store.due_schedules(now).await.unwrap().len(), 1);
        let firing = Firing {
            schedule_id: schedule.id,
            claimed_slot: schedule.next_slot,
            slot: at("2026-03-02T08:15:00Z"),
            next_slot: Some(at("2026-03-02T08:30:00Z")),
            publish: true,
            now,
        };
        let (run, inbound) = store.fire_schedule(firing.clone()).await.unwrap().expect("fired");
        assert_eq!((run.outcome.as_str(), run.inbound_id), ("queued", inbound.as_ref().map(|i| i.id)));
        assert_eq!(inbound.unwrap().channel.platform, SCHEDULE_PLATFORM);
        assert!(store.fire_schedule(firing).await.unwrap().is_none(), "the same slot never fires twice");
        assert!(store.due_schedules(now).await.unwrap().is_empty());
        assert_eq!(store.earliest_slot().await.unwrap(), Some(at("2026-03-02T08:30:00Z")));
        store.close().await;
    }
}
