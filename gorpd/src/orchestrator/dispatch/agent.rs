//! DISPATCH's words for a session's agent: `!mode` and `!model` (show or
//! switch), `!login` (list the ways or start one), the agent's `/commands`
//! in `!help`, and the agent lines of `!status`. In a bound channel the
//! session is implied.

use super::{CommandResult, HELP, Reply, usage};
use crate::agent::{AgentView, Setting};
use crate::bus::ChannelRef;
use crate::orchestrator::{DispatchScope, Orchestrator};
use std::fmt::Write;

/// The session and the value of `!mode`, `!model` and `!login`: in a bound
/// channel the session is implied, so one word is the value.
fn session_and_value<'a>(args: &[&'a str], bound: Option<&'a str>) -> Option<(&'a str, Option<&'a str>)> {
    match (args, bound) {
        ([session, value], _) => Some((session, Some(value))),
        ([value], Some(bound)) => Some((bound, Some(value))),
        ([session], None) => Some((session, None)),
        ([], Some(bound)) => Some((bound, None)),
        _ => None,
    }
}

pub(super) async fn setting(
    o: &Orchestrator,
    setting: Setting,
    args: Vec<&str>,
    bound: Option<&str>,
    asker: &ChannelRef,
) -> CommandResult {
    let word = setting.name();
    let Some((session, value)) = session_and_value(&args, bound) else {
        return usage(&format!("!{word} [session] [{word}] (the session is implied in a bound channel)"));
    };
    o.check_reach(asker, session).await?;
    if let Some(value) = value {
        return Ok(Reply::ok(o.change_agent(session, setting, value).await?));
    }
    let view = o.session_info(session).await?.agent.unwrap_or_default();
    let (current, choices) = match setting {
        Setting::Mode => (view.mode, view.modes),
        Setting::Model => (view.model, view.models),
    };
    let mut text = match current {
        Some(current) => format!("{session}'s agent {word}: {current}"),
        None => format!("{session}'s agent has reported no {word} yet (it does once it runs)."),
    };
    for choice in &choices {
        let _ = write!(text, "\n• {} — {}", choice.id, choice.name);
        if let Some(description) = &choice.description {
            let _ = write!(text, ": {description}");
        }
    }
    if !choices.is_empty() {
        let _ = write!(text, "\nChange it with !{word} <id>.");
    }
    Ok(Reply::ok(text))
}

pub(super) async fn login(o: &Orchestrator, args: Vec<&str>, bound: Option<&str>, asker: &ChannelRef) -> CommandResult {
    let Some((session, method)) = session_and_value(&args, bound) else {
        return usage("!login [session] [method] (the session is implied in a bound channel)");
    };
    o.check_reach(asker, session).await?;
    Ok(Reply::ok(o.login_agent(session, method).await?))
}

pub(super) async fn help(o: &Orchestrator, bound: Option<&str>, asker: &ChannelRef) -> CommandResult {
    let help = format!("{HELP}{}", scope_note(o.dispatch_scope(&asker.platform), &asker.platform));
    let Some(session) = bound else { return Ok(Reply::ok(help)) };
    let commands = o.session_info(session).await?.agent.map(|view| view.commands).unwrap_or_default();
    if commands.is_empty() {
        return Ok(Reply::ok(help));
    }
    let mut text = format!("{help}\n\nCommands of {session}'s agent (send them as a message):");
    for command in &commands {
        let _ = write!(text, "\n/{}", command.name);
        if let Some(hint) = &command.hint {
            let _ = write!(text, " <{hint}>");
        }
        let _ = write!(text, " — {}", command.description);
    }
    Ok(Reply::ok(text))
}

/// The line `!help` adds when the asking platform's DISPATCH scope is not `full`.
fn scope_note(scope: DispatchScope, platform: &str) -> String {
    match scope {
        DispatchScope::Full => String::new(),
        DispatchScope::OwnPlatform => format!(
            "\nIn {platform} channels DISPATCH reaches only sessions bound to a {platform} channel or created from one (dispatch scope own-platform)."
        ),
        DispatchScope::Off => format!(
            "\nDISPATCH is off for {platform} channels (dispatch scope off): a channel controls only the session an operator bound it to."
        ),
    }
}

/// The agent lines of `!status`: mode, model, context, cost and login, where the agent reported them.
pub(super) fn status_lines(view: &AgentView) -> String {
    let mut text = String::new();
    if let Some(mode) = &view.mode {
        let _ = write!(text, "\nmode: {mode}");
    }
    if let Some(model) = &view.model {
        let _ = write!(text, "\nmodel: {model}");
    }
    if let Some((used, size)) = view.context {
        let _ = write!(text, "\ncontext: {used} of {size} tokens");
    }
    if view.needs_login {
        text.push_str("\nlogin: required (!login lists the ways)");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bound_channel_implies_the_session_of_agent_settings() {
        assert_eq!(session_and_value(&["plan"], Some("coder")), Some(("coder", Some("plan"))));
        assert_eq!(session_and_value(&["other", "plan"], Some("coder")), Some(("other", Some("plan"))));
        assert_eq!(session_and_value(&["coder"], None), Some(("coder", None)));
        assert_eq!(session_and_value(&[], Some("coder")), Some(("coder", None)));
        assert_eq!(session_and_value(&[], None), None);
        assert_eq!(session_and_value(&["a", "b", "c"], Some("coder")), None);
    }
}
