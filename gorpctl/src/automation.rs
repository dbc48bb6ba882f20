//! `gorpctl schedule …`, `gorpctl hook …` and `gorpctl session export|import`:
//! scheduled prompts, webhooks and their YAML documents.

use crate::commands::Failure;
use crate::connect::Control;
use crate::error::CliError;
use crate::output::{print_json, table};
use clap::Subcommand;
use gorp_proto::v1 as pb;
use serde_json::{Value, json};
use std::path::PathBuf;

/// Schedule subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum ScheduleCommand {
    /// Schedule a prompt for a session.
    Add {
        /// Session name.
        session: String,
        /// When: a cron expression ("30 8 * * MON-FRI"), a phrase ("every weekday at 8:30"),
        /// or one time ("in 20 minutes", "tomorrow 9am", "2026-12-01T09:00").
        when: String,
        /// The prompt (the words are joined with spaces).
        #[arg(required = true, num_args = 1..)]
        prompt: Vec<String>,
        /// IANA time zone, e.g. Europe/Berlin [default: gorpd's timezone setting].
        #[arg(long)]
        tz: Option<String>,
        /// A slot missed while gorpd was down fires once after it starts ("once") or is skipped ("skip").
        #[arg(long, value_parser = ["once", "skip"], default_value = "once")]
        catch_up: String,
    },
    /// List schedules (of one session, or all).
    List {
        /// Only this session's.
        session: Option<String>,
    },
    /// Pause a schedule.
    Pause {
        /// Schedule id.
        id: i64,
    },
    /// Resume a paused schedule from now (missed slots do not fire).
    Resume {
        /// Schedule id.
        id: i64,
    },
    /// Delete a schedule and its run history.
    Delete {
        /// Schedule id.
        id: i64,
    },
    /// Fire a schedule now, outside its slots.
    Run {
        /// Schedule id.
        id: i64,
    },
    /// A schedule's last runs, newest first.
    Runs {
        /// Schedule id.
        id: i64,
        /// How many [default: 20; at most 1000].
        #[arg(long, short = 'n')]
        count: Option<u32>,
    },
}

/// Webhook subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum HookCommand {
    /// Create a session's webhook (POST /hooks/<session>); its secret is printed once.
    Create {
        /// Session name.
        session: String,
        /// File with a template rendering JSON bodies to the prompt (minijinja syntax, e.g. "{{ action }}").
        #[arg(long, value_name = "FILE")]
        template: Option<PathBuf>,
        /// Calls accepted per minute [default: gorpd's hook_per_minute, 60].
        #[arg(long)]
        per_minute: Option<u32>,
    },
    /// List webhooks (never their secrets).
    List,
    /// Give a webhook a new secret (printed once); the old one stops working at once.
    Rotate {
        /// Session name.
        session: String,
    },
    /// Delete a session's webhook.
    Delete {
        /// Session name.
        session: String,
    },
}

pub(crate) fn schedule_json(schedule: &pb::Schedule) -> Value {
    json!({
        "id": schedule.id,
        "session": schedule.session,
        "spec": schedule.spec,
        "cron": non_empty(&schedule.cron),
        "once_at": non_empty(&schedule.once_at),
        "timezone": schedule.timezone,
        "description": schedule.description,
        "prompt": schedule.prompt,
        "catch_up": schedule.catch_up,
        "paused": schedule.paused,
        "next_slot": non_empty(&schedule.next_slot),
        "failures": schedule.failures,
        "created_by": schedule.created_by,
        "created_at": schedule.created_at,
        "last_run": schedule.last_run.as_ref().map(run_json),
    })
}

fn run_json(run: &pb::ScheduleRun) -> Value {
    json!({
        "id": run.id,
        "schedule_id": run.schedule_id,
        "slot": run.slot,
        "manual": run.manual,
        "fired_at": run.fired_at,
        "started_at": non_empty(&run.started_at),
        "ended_at": non_empty(&run.ended_at),
        "outcome": run.outcome,
        "answer_chars": (run.outcome == "ok").then_some(run.answer_chars),
        "error": non_empty(&run.error),
    })
}

fn hook_json(hook: &pb::Hook) -> Value {
    json!({
        "session": hook.session,
        "url_path": format!("/hooks/{}", hook.session),
        "template": non_empty(&hook.template),
        "per_minute": hook.per_minute,
        "created_at": hook.created_at,
        "rotated_at": non_empty(&hook.rotated_at),
    })
}

fn non_empty(text: &str) -> Option<&str> {
    (!text.is_empty()).then_some(text)
}

fn schedule_row(schedule: &pb::Schedule) -> Vec<String> {
    let next =
        if schedule.paused { "paused".to_owned() } else { non_empty(&schedule.next_slot).unwrap_or("-").to_owned() };
    let last = schedule.last_run.as_ref().map_or_else(|| "-".to_owned(), |run| format!("{} {}", run.outcome, run.slot));
    vec![
        schedule.id.to_string(),
        schedule.session.clone(),
        schedule.spec.clone(),
        schedule.timezone.clone(),
        next,
        last,
        schedule.failures.to_string(),
    ]
}

fn print_schedule(json_output: bool, schedule: &pb::Schedule, verb: &str) {
    if json_output {
        print_json(&schedule_json(schedule));
    } else {
        let next = if schedule.paused { "paused" } else { non_empty(&schedule.next_slot).unwrap_or("none") };
        println!(
            "{verb} schedule {} of {}: {} ({}); next: {next}",
            schedule.id, schedule.session, schedule.description, schedule.timezone
        );
    }
}

fn print_secret(json_output: bool, created: &pb::HookSecret, verb: &str) {
    let hook = created.hook.clone().unwrap_or_default();
    if json_output {
        let mut value = hook_json(&hook);
        value["secret"] = json!(created.secret);
        print_json(&value);
    } else {
        println!("{verb} the webhook of {}: POST /hooks/{} on gorpd's HTTP address", hook.session, hook.session);
        println!("secret (shown once): {}", created.secret);
    }
}

/// Runs `gorpctl schedule …`.
pub(crate) async fn schedule(
    json_output: bool,
    command: &ScheduleCommand,
    control: &mut Control,
) -> Result<(), Failure> {
    match command {
        ScheduleCommand::Add { session, when, prompt, tz, catch_up } => {
            let request = pb::AddScheduleRequest {
                session: session.clone(),
                when: when.clone(),
                prompt: prompt.join(" "),
                timezone: tz.clone().unwrap_or_default(),
                catch_up: catch_up.clone(),
            };
            print_schedule(json_output, &control.add_schedule(request).await?.into_inner(), "added");
        }
        ScheduleCommand::List { session } => {
            let request = pb::ListSchedulesRequest { session: session.clone().unwrap_or_default() };
            let schedules = control.list_schedules(request).await?.into_inner().schedules;
            if json_output {
                print_json(&json!({ "schedules": schedules.iter().map(schedule_json).collect::<Vec<_>>() }));
            } else {
                let rows: Vec<_> = schedules.iter().map(schedule_row).collect();
                println!("{}", table(&["ID", "SESSION", "WHEN", "ZONE", "NEXT", "LAST RUN", "FAILURES"], &rows));
            }
        }
        ScheduleCommand::Pause { id } | ScheduleCommand::Resume { id } => {
            let paused = matches!(command, ScheduleCommand::Pause { .. });
            let request = pb::SetSchedulePausedRequest { id: *id, paused };
            let schedule = control.set_schedule_paused(request).await?.into_inner();
            print_schedule(json_output, &schedule, if paused { "paused" } else { "resumed" });
        }
        ScheduleCommand::Delete { id } => {
            control.delete_schedule(pb::DeleteScheduleRequest { id: *id }).await?;
            if json_output {
                print_json(&json!({ "deleted": id }));
            } else {
                println!("deleted schedule {id} and its run history");
            }
        }
        ScheduleCommand::Run { id } => {
            let run = control.run_schedule(pb::RunScheduleRequest { id: *id }).await?.into_inner();
            if json_output {
                print_json(&run_json(&run));
            } else {
                println!("fired schedule {id} now (run {}); its answer goes to the session's bound channels", run.id);
            }
        }
        ScheduleCommand::Runs { id, count } => {
            let request = pb::ListScheduleRunsRequest { id: *id, count: count.unwrap_or(0) };
            let runs = control.list_schedule_runs(request).await?.into_inner().runs;
            if json_output {
                print_json(&json!({ "schedule_id": id, "runs": runs.iter().map(run_json).collect::<Vec<_>>() }));
            } else {
                let rows: Vec<_> = runs
                    .iter()
                    .map(|run| {
                        let detail = match run.outcome.as_str() {
                            "ok" => format!("{} chars", run.answer_chars),
                            _ => run.error.chars().take(80).collect(),
                        };
                        vec![
                            run.slot.clone(),
                            run.outcome.clone(),
                            run.started_at.clone(),
                            run.ended_at.clone(),
                            detail,
                        ]
                    })
                    .collect();
                println!("{}", table(&["SLOT", "OUTCOME", "STARTED", "ENDED", "DETAIL"], &rows));
            }
        }
    }
    Ok(())
}

/// Runs `gorpctl hook …`.
pub(crate) async fn hook(json_output: bool, command: &HookCommand, control: &mut Control) -> Result<(), Failure> {
    match command {
        HookCommand::Create { session, template, per_minute } => {
            let template = match template {
                Some(path) => std::fs::read_to_string(path).map_err(|error| {
                    Failure::Cli(CliError::Failed(format!("cannot read the template {}: {error}", path.display())))
                })?,
                None => String::new(),
            };
            let request =
                pb::CreateHookRequest { session: session.clone(), template, per_minute: per_minute.unwrap_or(0) };
            print_secret(json_output, &control.create_hook(request).await?.into_inner(), "created");
        }
        HookCommand::List => {
            let hooks = control.list_hooks(pb::ListHooksRequest {}).await?.into_inner().hooks;
            if json_output {
                print_json(&json!({ "hooks": hooks.iter().map(hook_json).collect::<Vec<_>>() }));
            } else {
                let rows: Vec<_> = hooks
                    .iter()
                    .map(|h| {
                        let template = if h.template.is_empty() { "no" } else { "yes" };
                        let rotated = non_empty(&h.rotated_at).unwrap_or("-").to_owned();
                        vec![
                            h.session.clone(),
                            format!("/hooks/{}", h.session),
                            template.into(),
                            h.per_minute.to_string(),
                            h.created_at.clone(),
                            rotated,
                        ]
                    })
                    .collect();
                println!("{}", table(&["SESSION", "PATH", "TEMPLATE", "PER MINUTE", "CREATED", "ROTATED"], &rows));
            }
        }
        HookCommand::Rotate { session } => {
            let request = pb::RotateHookSecretRequest { session: session.clone() };
            print_secret(json_output, &control.rotate_hook_secret(request).await?.into_inner(), "rotated");
        }
        HookCommand::Delete { session } => {
            control.delete_hook(pb::DeleteHookRequest { session: session.clone() }).await?;
            if json_output {
                print_json(&json!({ "deleted": session }));
            } else {
                println!("deleted the webhook of {session}");
            }
        }
    }
    Ok(())
}

/// `gorpctl session export`: the YAML document on stdout (or JSON with --json).
pub(crate) async fn export(json_output: bool, session: &str, control: &mut Control) -> Result<(), Failure> {
    let request = pb::ExportSessionConfigRequest { session: session.to_owned() };
    let yaml = control.export_session_config(request).await?.into_inner().yaml;
    if json_output {
        print_json(&json!({ "session": session, "yaml": yaml }));
    } else {
        print!("{yaml}");
    }
    Ok(())
}

/// `gorpctl session import`: adds a document's schedules and hook to a session.
pub(crate) async fn import(
    json_output: bool,
    session: &str,
    file: &PathBuf,
    control: &mut Control,
) -> Result<(), Failure> {
    let yaml =
        if file.as_os_str() == "-" { std::io::read_to_string(std::io::stdin()) } else { std::fs::read_to_string(file) }
            .map_err(|error| Failure::Cli(CliError::Failed(format!("cannot read {}: {error}", file.display()))))?;
    let request = pb::ImportSessionConfigRequest { session: session.to_owned(), yaml };
    let imported = control.import_session_config(request).await?.into_inner();
    if json_output {
        let mut value = json!({ "session": session, "schedules": imported.schedules.iter().map(schedule_json).collect::<Vec<_>>() });
        if let Some(created) = &imported.hook {
            value["hook_secret"] = json!(created.secret);
        }
        print_json(&value);
    } else {
        println!("imported {} schedule(s) into {session}", imported.schedules.len());
        if let Some(created) = &imported.hook {
            print_secret(false, created, "created");
        }
    }
    Ok(())
}
