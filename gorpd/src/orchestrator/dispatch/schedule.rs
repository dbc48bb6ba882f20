//! `!schedule`: DISPATCH's words for the schedule operations.
//!
//! `!schedule add [session] [--tz Zone] [--catch-up once|skip] "<when>" <prompt>`
//! (the session defaults to the channel's own when it is bound), `list
//! [session]`, `pause|resume|delete|run <id>` and `runs <id>`.

use super::{CommandResult, Reply, usage};
use crate::bus::{ChannelRef, Inbound};
use crate::orchestrator::{Orchestrator, ScheduleInfo, ScheduleRequest};
use crate::store::{CatchUp, RunRow};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use std::fmt::Write;

const ADD_USAGE: &str = "!schedule add [session] [--tz <zone>] [--catch-up once|skip] \"<when>\" <prompt>";
const USAGE: &str = "!schedule add|list|pause|resume|delete|run|runs … (!schedule help explains)";
/// Runs shown by `!schedule runs`.
const RUNS_SHOWN: u32 = 10;

pub(super) const HELP: &str = "Scheduled prompts:
!schedule add [session] [--tz <zone>] [--catch-up once|skip] \"<when>\" <prompt>
    when: a cron expression (\"30 8 * * MON-FRI\"), a phrase (\"every weekday at 8:30\", \"every 15 minutes\",
    \"every monday at 10am\"), or one time (\"in 20 minutes\", \"tomorrow 9am\", \"2026-12-01 09:00\").
    In a bound channel the session is this channel's. Answers go to the session's bound channels.
!schedule list [session]    schedules with their next slot and last run
!schedule pause <id> / resume <id> / delete <id>
!schedule run <id>          fire it now (its slots stay as they are)
!schedule runs <id>         its last runs: when it fired, started, ended, and how";

/// Handles `!schedule …` from a channel bound to `bound` (if any).
pub(super) async fn handle(o: &Orchestrator, rest: &str, inbound: &Inbound, bound: Option<&str>) -> CommandResult {
    let (word, args) = match rest.split_once(char::is_whitespace) {
        Some((word, args)) => (word.to_lowercase(), args.trim()),
        None => (rest.to_lowercase(), ""),
    };
    match word.as_str() {
        "add" => add(o, args, inbound, bound).await,
        "list" => list(o, args.split_whitespace().next().or(bound), &inbound.channel).await,
        "pause" | "resume" | "delete" | "run" | "runs" => {
            let Some(id) = parse_id(args) else { return usage(&format!("!schedule {word} <id>")) };
            o.check_reach(&inbound.channel, &o.schedule(id).await?.row.session).await?;
            by_id(o, &word, id).await
        }
        "help" | "" => Ok(Reply::ok(HELP)),
        _ => usage(USAGE),
    }
}

/// `3` or `#3`.
fn parse_id(args: &str) -> Option<i64> {
    args.split_whitespace().next()?.trim_start_matches('#').parse().ok()
}

async fn by_id(o: &Orchestrator, word: &str, id: i64) -> CommandResult {
    Ok(match word {
        "pause" => {
            let info = o.pause_schedule(id).await?;
            Reply::ok(format!("Paused #{id} ({}). !schedule resume {id} starts it again.", info.row.session))
        }
        "resume" => {
            let info = o.resume_schedule(id).await?;
            Reply::ok(format!("Resumed #{id}; next: {}.", next_text(&info)))
        }
        "delete" => {
            let row = o.delete_schedule(id).await?;
            Reply::ok(format!("Deleted #{id} of {} and its run history.", row.session))
        }
        "run" => {
            let run = o.run_schedule(id).await?;
            Reply::ok(format!("Fired #{id} now (run {}); its answer goes to the session's bound channels.", run.id))
        }
        _ => runs(o, id).await?,
    })
}

/// The parts of `!schedule add`.
#[derive(Debug, PartialEq)]
pub(super) struct AddArgs<'a> {
    session: Option<&'a str>,
    timezone: Option<&'a str>,
    catch_up: CatchUp,
    when: &'a str,
    prompt: &'a str,
}

const OPEN_QUOTES: [char; 3] = ['"', '“', '”'];

pub(super) fn parse_add(args: &str) -> Result<AddArgs<'_>, String> {
    if !args.contains(OPEN_QUOTES) {
        return Err(format!("Put \"when\" in quotes. Usage: {ADD_USAGE}"));
    }
    let mut rest = args.trim_start();
    let mut parsed = AddArgs { session: None, timezone: None, catch_up: CatchUp::Once, when: "", prompt: "" };
    while !rest.starts_with(OPEN_QUOTES) {
        let (word, tail) = split_word(rest);
        match word {
            "--tz" => {
                let (zone, tail) = split_word(tail);
                parsed.timezone = Some(zone).filter(|z| !z.is_empty());
                rest = tail;
            }
            "--catch-up" => {
                let (policy, tail) = split_word(tail);
                parsed.catch_up = CatchUp::parse(policy)?;
                rest = tail;
            }
            session if parsed.session.is_none() && !session.starts_with("--") => {
                parsed.session = Some(session);
                rest = tail;
            }
            other => return Err(format!("Unexpected \"{other}\". Usage: {ADD_USAGE}")),
        }
    }
    let quoted = &rest[rest.chars().next().map_or(0, char::len_utf8)..];
    let Some(end) = quoted.find(OPEN_QUOTES) else {
        return Err(format!("\"when\" has no closing quote. Usage: {ADD_USAGE}"));
    };
    parsed.when = quoted[..end].trim();
    parsed.prompt = quoted[end + quoted[end..].chars().next().map_or(0, char::len_utf8)..].trim();
    if parsed.prompt.is_empty() {
        return Err(format!("Say what to ask after \"when\". Usage: {ADD_USAGE}"));
    }
    Ok(parsed)
}

fn split_word(text: &str) -> (&str, &str) {
    let text = text.trim_start();
    let end = text.find(char::is_whitespace).unwrap_or(text.len());
    (&text[..end], text[end..].trim_start())
}

async fn add(o: &Orchestrator, args: &str, inbound: &Inbound, bound: Option<&str>) -> CommandResult {
    let parsed = match parse_add(args) {
        Ok(parsed) => parsed,
        Err(message) => return Ok(Reply::error(message)),
    };
    let Some(session) = parsed.session.or(bound) else {
        return Ok(Reply::error(format!("Which session? This channel is not bound to one. Usage: {ADD_USAGE}")));
    };
    o.check_reach(&inbound.channel, session).await?;
    let request = ScheduleRequest {
        session: session.to_owned(),
        when: parsed.when.to_owned(),
        prompt: parsed.prompt.to_owned(),
        timezone: parsed.timezone.map(str::to_owned),
        catch_up: parsed.catch_up,
        created_by: format!("{} ({})", inbound.sender, inbound.channel),
    };
    let info = o.add_schedule(request).await?;
    let channels = o.channels_of(session).len();
    let answers = if channels == 0 {
        format!(" {session} has no bound channels: read answers with !read {session}.")
    } else {
        format!(" Answers go to its {channels} bound channel(s).")
    };
    Ok(Reply::ok(format!(
        "Scheduled #{} for {session}: {} ({}). Next: {}.{answers}",
        info.row.id,
        info.description,
        info.row.timezone,
        next_text(&info)
    )))
}

async fn list(o: &Orchestrator, session: Option<&str>, asker: &ChannelRef) -> CommandResult {
    if let Some(session) = session {
        o.check_reach(asker, session).await?;
    }
    let mut schedules = o.schedules(session).await?;
    let reachable = o.reachable_sessions(asker).await?;
    schedules.retain(|info| reachable.contains(&info.row.session));
    if schedules.is_empty() {
        return Ok(Reply::ok("No schedules. !schedule help shows how to add one."));
    }
    let mut text = format!("Schedules ({}):", schedules.len());
    for info in &schedules {
        let row = &info.row;
        let _ = write!(text, "\n#{} {} — {} ({}, {})", row.id, row.session, row.spec, info.description, row.timezone);
        let _ = write!(text, "\n   next: {}", next_text(info));
        if let Some(run) = &info.last_run {
            let _ = write!(text, "; last: {}", run_text(run, zone(info)));
        }
        if row.failures > 0 {
            let _ = write!(text, "; {} failure(s) in a row", row.failures);
        }
        let preview: String = row.prompt.chars().take(60).collect();
        let _ = write!(text, "\n   prompt: {preview}");
    }
    Ok(Reply::ok(text))
}

async fn runs(o: &Orchestrator, id: i64) -> CommandResult {
    let info = o.schedule(id).await?;
    let runs = o.schedule_runs(id, RUNS_SHOWN).await?;
    if runs.is_empty() {
        return Ok(Reply::ok(format!("#{id} has not run yet; next: {}.", next_text(&info))));
    }
    let mut text = format!("Last {} run(s) of #{id} ({}):", runs.len(), info.row.session);
    for run in &runs {
        let _ = write!(text, "\n{}", run_text(run, zone(&info)));
    }
    Ok(Reply::ok(text))
}

fn zone(info: &ScheduleInfo) -> Tz {
    crate::scheduling::parse_zone(&info.row.timezone).unwrap_or(Tz::UTC)
}

fn local(at: DateTime<Utc>, zone: Tz) -> String {
    at.with_timezone(&zone).format("%Y-%m-%d %H:%M %Z").to_string()
}

fn next_text(info: &ScheduleInfo) -> String {
    match (info.row.paused, info.row.next_slot) {
        (true, _) => "paused".to_owned(),
        (false, Some(next)) => local(next, zone(info)),
        (false, None) => "none (it has fired)".to_owned(),
    }
}

/// "ok 2026-12-01 08:30 CET (fired 08:30:00, 412 chars)" and the like.
fn run_text(run: &RunRow, zone: Tz) -> String {
    let mut text = format!("{} {}", run.outcome, local(run.slot, zone));
    if run.manual {
        text.push_str(" (run by hand)");
    }
    match (run.started_at, run.ended_at) {
        (Some(started), Some(ended)) => {
            let _ = write!(text, ", took {:.1} s", (ended - started).num_milliseconds() as f64 / 1000.0);
        }
        (Some(_), None) => text.push_str(", running"),
        _ => {}
    }
    if let Some(chars) = run.answer_chars {
        let _ = write!(text, ", answer {chars} chars");
    }
    if let Some(error) = &run.error {
        let preview: String = error.chars().take(120).collect();
        let _ = write!(text, ": {preview}");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_takes_a_session_options_a_quoted_when_and_the_prompt() {
        let parsed = parse_add("research --tz Europe/Berlin \"every weekday at 8:30\" Summarise the inbox").unwrap();
        assert_eq!(
            parsed,
            AddArgs {
                session: Some("research"),
                timezone: Some("Europe/Berlin"),
                catch_up: CatchUp::Once,
                when: "every weekday at 8:30",
                prompt: "Summarise the inbox",
            }
        );
        let phone = parse_add("--catch-up skip “30 8 * * MON-FRI” stand-up notes").unwrap();
        assert_eq!((phone.session, phone.catch_up, phone.when), (None, CatchUp::Skip, "30 8 * * MON-FRI"));
        assert_eq!(phone.prompt, "stand-up notes");
    }

    #[test]
    fn add_explains_what_is_missing() {
        assert!(parse_add("research every day at 9 hello").unwrap_err().contains("quotes"));
        assert!(parse_add("research \"every day at 9").unwrap_err().contains("closing quote"));
        assert!(parse_add("research \"every day at 9\"").unwrap_err().contains("what to ask"));
        assert!(parse_add("--catch-up sometimes \"in 5 minutes\" x").unwrap_err().contains("once"));
        assert!(parse_add("a b \"in 5 minutes\" x").unwrap_err().contains("Unexpected \"b\""));
    }
}
