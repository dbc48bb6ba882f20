//! DISPATCH: the chat command handler. Parses `!command` messages, calls the
//! fleet operations and words the reply. Replies go only to the asking
//! channel (the router does that); this module only decides what they say.
//! Every session a command names is checked against the asking platform's
//! DISPATCH scope first (`access`), and `!list` / `!broadcast` see only the
//! sessions it reaches.

use super::{Answer, DispatchScope, Orchestrator, OrchestratorError, SessionInfo};
use crate::agent::Setting;
use crate::bus::{ChannelRef, Inbound};
use crate::store::HistoryRow;
use std::fmt::Write;

mod agent;
mod prune;
pub use prune::parse_age;
mod retry;
mod schedule;

#[cfg(test)]
mod parser_fuzz;

/// Every DISPATCH command word; in a bound channel only these reach DISPATCH.
pub const COMMANDS: [&str; 19] = [
    "create",
    "delete",
    "list",
    "status",
    "join",
    "leave",
    "tell",
    "read",
    "broadcast",
    "approve",
    "deny",
    "cancel",
    "retry",
    "mode",
    "model",
    "login",
    "schedule",
    "prune",
    "help",
];

const HELP: &str = "DISPATCH commands:
!create <name> [workspace] [--agent <profile>]  create a session (workspace is relative to the workspace root)
!delete <name>              delete a session (unbinds its channels, keeps its files)
!list                       list sessions
!status <name>              show a session
!join <name>                bind this channel to a session
!leave                      unbind this channel
!tell <session> <message>   send a message to a session
!read <session> [count]     show a session's last messages
!broadcast <message>        send a message to every session
!approve <id> [always]      allow what an agent asked for (from a channel bound to its session)
!deny <id>                  refuse what an agent asked for
!cancel [session]           stop the turn a session is working on (default: this channel's session)
!retry                      run again the turn a restart of gorpd interrupted (in a bound channel)
!mode [session] [mode]      show or set the agent's mode (in a bound channel the session is implied)
!model [session] [model]    show or set the agent's model
!login [session] [method]   list the agent's ways to log in, or start one
!schedule add|list|pause|resume|delete|run|runs   scheduled prompts (!schedule help explains)
!prune [session] keep <N> | older-than <N>d|h|m   remove old history entries
!help                       this help (in a bound channel also the agent's /commands)
Session names: 1-64 characters of a-z, 0-9, '_' and '-', starting with a letter or digit.";

/// DISPATCH's answer to one message.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Reply {
    /// False for misuse and failures.
    pub(crate) ok: bool,
    /// What to show.
    pub(crate) text: String,
}

impl Reply {
    fn ok(text: impl Into<String>) -> Self {
        Self { ok: true, text: text.into() }
    }

    fn error(text: impl Into<String>) -> Self {
        Self { ok: false, text: text.into() }
    }
}

impl Reply {
    /// The reply to a command whose effect was committed just before gorpd
    /// stopped, when its own reply was not: it is never run twice.
    pub(crate) fn done_before_restart(command: &str) -> Self {
        let preview: String = command.chars().take(80).collect();
        Reply::ok(format!("Done: \"{preview}\" took effect just before gorpd restarted, so this is its reply."))
    }
}

impl From<OrchestratorError> for Reply {
    fn from(error: OrchestratorError) -> Self {
        match error {
            OrchestratorError::Store(crate::store::StoreError::Full) => {
                Reply::error("gorpd's disk is full, so nothing was changed; try again once space is freed")
            }
            OrchestratorError::Store(ref inner) => {
                tracing::error!(error = %inner, "dispatch command failed");
                Reply::error("internal error; the details are in gorpd's log")
            }
            other => Reply::error(capitalise(&other.to_string())),
        }
    }
}

/// Splits `!word rest` into the lowercase word and the rest, if `text` starts with `!`.
fn split_command(text: &str) -> Option<(String, &str)> {
    let text = text.trim_start();
    let body = text.strip_prefix('!')?;
    let end = body.find(char::is_whitespace).unwrap_or(body.len());
    Some((body[..end].to_lowercase(), body[end..].trim()))
}

/// Whether `text` starts with a DISPATCH command word.
pub(crate) fn is_command(text: &str) -> bool {
    split_command(text).is_some_and(|(word, _)| COMMANDS.contains(&word.as_str()))
}

/// Handles one message addressed to DISPATCH from a channel bound to `bound` (if any).
pub(crate) async fn handle(orchestrator: &Orchestrator, inbound: &Inbound, bound: Option<&str>) -> Reply {
    let asker = &inbound.channel;
    let Some((word, rest)) = split_command(&inbound.text) else {
        return listening(orchestrator.dispatch_scope(&asker.platform), &asker.platform);
    };
    if let Err(refusal) = orchestrator.check_command(asker, &word) {
        return refusal.into();
    }
    let mut args = rest.split_whitespace();
    let result = match word.as_str() {
        "help" => agent::help(orchestrator, bound, asker).await,
        "create" => create(orchestrator, rest, asker).await,
        "delete" => delete(orchestrator, args.next(), asker).await,
        "list" => list(orchestrator, asker).await,
        "status" => status(orchestrator, args.next(), asker).await,
        "join" => join(orchestrator, args.next(), asker).await,
        "leave" => leave(orchestrator, asker, bound).await,
        "tell" => tell(orchestrator, rest, inbound).await,
        "read" => read(orchestrator, args.next(), args.next(), asker).await,
        "broadcast" => broadcast(orchestrator, rest, inbound).await,
        "approve" | "deny" => answer(orchestrator, &word, args.next(), args.next(), inbound).await,
        "cancel" => cancel(orchestrator, args.next(), bound, inbound).await,
        "retry" => retry::handle(orchestrator, bound, inbound).await,
        "schedule" => schedule::handle(orchestrator, rest, inbound, bound).await,
        "prune" => prune::handle(orchestrator, rest, bound, asker).await,
        "mode" => agent::setting(orchestrator, Setting::Mode, args.collect(), bound, asker).await,
        "model" => agent::setting(orchestrator, Setting::Model, args.collect(), bound, asker).await,
        "login" => agent::login(orchestrator, args.collect(), bound, asker).await,
        other => Ok(Reply::error(format!("Unknown command !{other}. !help lists the commands."))),
    };
    result.unwrap_or_else(Reply::from)
}

/// The answer to plain text in a channel bound to no session.
fn listening(scope: DispatchScope, platform: &str) -> Reply {
    Reply::error(match scope {
        DispatchScope::Off => format!(
            "This channel is not bound to a session, and DISPATCH is off for {platform} channels, \
             so nothing here reaches a session. An operator can bind this channel with gorpctl."
        ),
        _ => "This channel is not bound to a session, so DISPATCH is listening. \
              !help lists the commands; !join <name> binds this channel to a session."
            .to_owned(),
    })
}

type CommandResult = Result<Reply, OrchestratorError>;

fn usage(syntax: &str) -> CommandResult {
    Ok(Reply::error(format!("Usage: {syntax}")))
}

async fn create(o: &Orchestrator, rest: &str, asker: &ChannelRef) -> CommandResult {
    let mut agent = None;
    let mut positional = Vec::new();
    let mut words = rest.split_whitespace();
    while let Some(word) = words.next() {
        match word {
            "--agent" => match words.next() {
                Some(profile) => agent = Some(profile),
                None => return usage("!create <name> [workspace] [--agent <profile>]"),
            },
            word => positional.push(word),
        }
    }
    let (name, workspace) = match positional[..] {
        [name] => (name, None),
        [name, workspace] => (name, Some(workspace)),
        _ => return usage("!create <name> [workspace] [--agent <profile>]"),
    };
    let info = o.create_session(name, workspace, agent, Some(&asker.platform)).await?;
    Ok(Reply::ok(format!(
        "Created session {name} (agent {}, workspace {}). Bind a channel to it with !join {name}.",
        info.row.backend, info.row.workspace_dir
    )))
}

async fn delete(o: &Orchestrator, name: Option<&str>, origin: &ChannelRef) -> CommandResult {
    let Some(name) = name else { return usage("!delete <name>") };
    o.check_reach(origin, name).await?;
    let workspace = o.session_info(name).await?.row.workspace_dir;
    let unbound = o.delete_session(name, Some(origin)).await?;
    let channels = if unbound.is_empty() {
        "no channels were bound".to_owned()
    } else {
        format!("unbound {}", join_channels(&unbound))
    };
    Ok(Reply::ok(format!("Deleted session {name}; {channels}. Its workspace {workspace} was kept.")))
}

async fn list(o: &Orchestrator, asker: &ChannelRef) -> CommandResult {
    let mut sessions = o.list_sessions().await?;
    sessions.retain(|info| o.reaches(asker, &info.row));
    if sessions.is_empty() {
        return Ok(Reply::ok("No sessions yet. Create one with !create <name>."));
    }
    let mut text = format!("Sessions ({}):", sessions.len());
    for info in &sessions {
        let _ =
            write!(text, "\n• {} — {}, {}, {}", info.row.name, info.row.backend, state_text(info), channel_count(info));
    }
    Ok(Reply::ok(text))
}

async fn status(o: &Orchestrator, name: Option<&str>, asker: &ChannelRef) -> CommandResult {
    let Some(name) = name else { return usage("!status <name>") };
    o.check_reach(asker, name).await?;
    let info = o.session_info(name).await?;
    let channels = if info.channels.is_empty() { "none".to_owned() } else { join_channels(&info.channels) };
    let process = match info.agent_running {
        None => "built in",
        Some(true) => "running",
        Some(false) => "not running",
    };
    let mut tokens = match (info.row.input_tokens, info.row.output_tokens) {
        (0, 0) => "none reported".to_owned(),
        (input, output) => format!("{input} in, {output} out"),
    };
    if let Some((input, output)) = info.last_turn {
        let _ = write!(tokens, " (last turn: {input} in, {output} out)");
    }
    if let Some((amount, currency)) = &info.cost {
        let _ = write!(tokens, "\ncost: {amount:.4} {currency}");
    }
    let agent = info.agent.as_ref().map(agent::status_lines).unwrap_or_default();
    Ok(Reply::ok(format!(
        "Session {name}\nstate: {}\nagent: {} ({process}){agent}\nworkspace: {}\nchannels: {channels}\nmessages: {}\ntokens: {tokens}\ncreated: {}",
        state_text(&info),
        info.row.backend,
        info.row.workspace_dir,
        info.message_count,
        info.row.created_at.format("%Y-%m-%d %H:%M:%S UTC"),
    )))
}

async fn join(o: &Orchestrator, name: Option<&str>, origin: &ChannelRef) -> CommandResult {
    let Some(name) = name else { return usage("!join <name>") };
    o.check_reach(origin, name).await?;
    let previous = o.bind(origin, name).await?;
    Ok(Reply::ok(match previous {
        Some(previous) if previous == name => format!("This channel is already bound to {name}."),
        Some(previous) => format!("This channel now talks to {name} (it was bound to {previous}). !leave unbinds it."),
        None => {
            format!("This channel is now bound to {name}: everything you write here goes to it. !leave unbinds it.")
        }
    }))
}

async fn leave(o: &Orchestrator, origin: &ChannelRef, bound: Option<&str>) -> CommandResult {
    if bound.is_none() {
        return Ok(Reply::error("This channel is not bound to a session; there is nothing to leave."));
    }
    let session = o.unbind(origin).await?;
    Ok(Reply::ok(format!("Left {session}. This channel talks to DISPATCH again.")))
}

async fn tell(o: &Orchestrator, rest: &str, inbound: &Inbound) -> CommandResult {
    let Some((session, text)) = rest.split_once(char::is_whitespace) else {
        return usage("!tell <session> <message>");
    };
    o.check_reach(&inbound.channel, session).await?;
    o.tell(session, text.trim(), inbound.attachments.clone(), &inbound.channel, &inbound.sender).await?;
    let channels = o.channels_of(session).len();
    Ok(Reply::ok(if channels == 0 {
        format!("Sent to {session}. It has no bound channels; read its answer with !read {session}.")
    } else {
        format!("Sent to {session}. Its answer goes to its {channels} bound channel(s).")
    }))
}

async fn read(o: &Orchestrator, session: Option<&str>, count: Option<&str>, asker: &ChannelRef) -> CommandResult {
    let Some(session) = session else { return usage("!read <session> [count]") };
    o.check_reach(asker, session).await?;
    let max = o.read_max();
    let count = match count.map(str::parse::<u32>) {
        None => None,
        Some(Ok(n)) if n >= 1 => Some(n),
        Some(_) => return Ok(Reply::error(format!("Count must be a number from 1 to {max}."))),
    };
    let rows = o.read(session, count).await?;
    if rows.is_empty() {
        return Ok(Reply::ok(format!("{session} has no messages yet.")));
    }
    let capped = if count.is_some_and(|c| c > max) { format!(" (at most {max})") } else { String::new() };
    let mut text = format!("Last {} message(s) of {session}{capped}:", rows.len());
    for row in &rows {
        let _ = write!(text, "\n{}", history_line(row));
    }
    Ok(Reply::ok(text))
}

async fn broadcast(o: &Orchestrator, rest: &str, inbound: &Inbound) -> CommandResult {
    if rest.is_empty() {
        return usage("!broadcast <message>");
    }
    let reachable = o.reachable_sessions(&inbound.channel).await?;
    let told = o.broadcast_to(rest, &inbound.channel, &inbound.sender, reachable).await?;
    Ok(Reply::ok(if told.is_empty() {
        "There are no sessions to broadcast to.".to_owned()
    } else {
        format!("Sent to {} session(s): {}.", told.len(), told.join(", "))
    }))
}

async fn answer(o: &Orchestrator, word: &str, id: Option<&str>, how: Option<&str>, inbound: &Inbound) -> CommandResult {
    let answer = match (word, how) {
        ("approve", None) => Answer::Approve,
        ("approve", Some("always")) => Answer::ApproveAlways,
        ("deny", None) => Answer::Deny,
        _ => return usage("!approve <id> [always] or !deny <id>"),
    };
    let Some(id) = id else { return usage("!approve <id> [always] or !deny <id>") };
    Ok(Reply::ok(o.answer_permission(id, answer, &inbound.channel, &inbound.sender).await?))
}

async fn cancel(o: &Orchestrator, session: Option<&str>, bound: Option<&str>, inbound: &Inbound) -> CommandResult {
    let Some(session) = session.or(bound) else { return usage("!cancel <session> (or !cancel in a bound channel)") };
    o.check_reach(&inbound.channel, session).await?;
    let by = format!("{} ({})", inbound.sender, inbound.channel);
    Ok(if o.cancel_turn(session, &by).await? {
        Reply::ok(format!("Cancelling {session}'s turn."))
    } else {
        Reply::error(format!("{session} is not working on anything."))
    })
}

fn history_line(row: &HistoryRow) -> String {
    let time = row.created_at.format("%H:%M");
    match row.role.as_str() {
        "user" => format!("[{time}] {}: {}", row.author, row.text),
        role => format!("[{time}] {} ({role}): {}", row.author, row.text),
    }
}

fn state_text(info: &SessionInfo) -> String {
    match info.queued {
        0 => info.state.as_str().to_owned(),
        n => format!("{} ({n} queued)", info.state.as_str()),
    }
}

fn channel_count(info: &SessionInfo) -> String {
    match info.channels.len() {
        1 => "1 channel".to_owned(),
        n => format!("{n} channels"),
    }
}

fn join_channels(channels: &[ChannelRef]) -> String {
    channels.iter().map(ChannelRef::to_string).collect::<Vec<_>>().join(", ")
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_words_are_recognised_case_insensitively() {
        assert!(is_command("!help"));
        assert!(is_command("  !JOIN research"));
        assert!(is_command("!leave"));
        assert!(!is_command("!deploy now"));
        assert!(!is_command("hello !help"));
        assert!(!is_command("help"));
    }

    #[test]
    fn split_keeps_the_rest_of_the_line() {
        assert_eq!(split_command("!tell a  do  this"), Some(("tell".to_owned(), "a  do  this")));
        assert_eq!(split_command("!list"), Some(("list".to_owned(), "")));
    }
}
