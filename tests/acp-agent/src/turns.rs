//! The scripted prompt turns: what the agent streams and how each turn ends.
//!
//! `main` counts the turn and handles `crash` itself (it needs the process exit path);
//! everything here runs in a task spawned off the dispatch loop, because the turns that
//! ask the client something (`ask`, `read `) wait for responses only that loop delivers.

use agent_client_protocol::v1::ConnectionTo;
use agent_client_protocol::v1::schema::{
    ContentBlock, ContentChunk, Cost, CreateTerminalRequest, Diff, PermissionOption, PermissionOptionKind,
    PromptRequest, ReadTextFileRequest, ReleaseTerminalRequest, RequestPermissionOutcome, RequestPermissionRequest,
    SessionId, SessionNotification, SessionUpdate, StopReason, TerminalOutputRequest, ToolCall, ToolCallContent,
    ToolCallStatus, ToolCallUpdate, ToolCallUpdateFields, ToolKind, UsageUpdate, WaitForTerminalExitRequest,
};
use agent_client_protocol::{Client, Error};

use crate::sessions::Turn;

/// What a prompt asks the agent to do, chosen by how its text starts.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Script<'a> {
    /// `crash`: one chunk, then exit with status 3 without answering.
    Crash,
    /// `die`: answer, then `main` exits the process.
    Die,
    /// `stderr <text>`: write the text to stderr, then echo.
    Stderr(&'a str),
    /// `settings`: report mode, model and MCP servers.
    Settings,
    /// `/review <text>`: the agent's slash command.
    Review(&'a str),
    /// `think`: thought chunks, then an answer.
    Think,
    /// `edit`: a tool call with a diff.
    Edit,
    /// `term <command> [args…]`: run a command in a client terminal.
    Term(&'a str),
    /// `usage`: report context usage and cost.
    Usage,
    /// `hang`: one chunk, then wait for `session/cancel`.
    Hang,
    /// `ask`: ask the client for permission and report the outcome.
    Ask,
    /// `read <path>`: read a file through the client.
    Read(&'a str),
    /// `tool`: report a tool call running and completing.
    Tool,
    /// `blocks`: describe the prompt's non-text blocks, one line each.
    Blocks,
    /// `picture`: answer with an image block, then a line of text.
    Picture,
    /// `outbox <name> <text>`: write the text to `outbox/<name>` in the cwd.
    Outbox(&'a str),
    /// Anything else: echo the text, numbered by turn.
    Echo(&'a str),
}

impl<'a> Script<'a> {
    /// Picks the script for a prompt's text.
    pub(crate) fn parse(text: &'a str) -> Self {
        if text.starts_with("crash") {
            Self::Crash
        } else if text.starts_with("die") {
            Self::Die
        } else if let Some(line) = text.strip_prefix("stderr ") {
            Self::Stderr(line)
        } else if text.starts_with("settings") {
            Self::Settings
        } else if let Some(rest) = text.strip_prefix("/review") {
            Self::Review(rest.trim())
        } else if text.starts_with("think") {
            Self::Think
        } else if text.starts_with("edit") {
            Self::Edit
        } else if let Some(command) = text.strip_prefix("term ") {
            Self::Term(command.trim())
        } else if text.starts_with("usage") {
            Self::Usage
        } else if text.starts_with("hang") {
            Self::Hang
        } else if text.starts_with("ask") {
            Self::Ask
        } else if let Some(path) = text.strip_prefix("read ") {
            Self::Read(path.trim())
        } else if text.starts_with("tool") {
            Self::Tool
        } else if text.starts_with("blocks") {
            Self::Blocks
        } else if text.starts_with("picture") {
            Self::Picture
        } else if let Some(rest) = text.strip_prefix("outbox ") {
            Self::Outbox(rest.trim())
        } else {
            Self::Echo(text)
        }
    }
}

/// The prompt's text: its text blocks joined by newlines, other blocks ignored.
pub(crate) fn prompt_text(prompt: &PromptRequest) -> String {
    let texts: Vec<&str> = prompt
        .prompt
        .iter()
        .filter_map(|block| match block {
            ContentBlock::Text(text) => Some(text.text.as_str()),
            _ => None,
        })
        .collect();
    texts.join("\n")
}

/// Sends one `agent_message_chunk` with `text` for the session.
pub(crate) fn send_chunk(cx: &ConnectionTo<Client>, session: &SessionId, text: &str) -> Result<(), Error> {
    let chunk = ContentChunk::new(ContentBlock::from(text));
    cx.send_notification(SessionNotification::new(session.clone(), SessionUpdate::AgentMessageChunk(chunk)))
}

/// Runs every script but `crash` to the end of its turn and returns the stop reason.
pub(crate) async fn run(
    cx: &ConnectionTo<Client>,
    session: &SessionId,
    mut turn: Turn,
    script: Script<'_>,
    blocks: Vec<String>,
) -> Result<StopReason, Error> {
    match script {
        Script::Crash => unreachable!("main exits the process for crash"),
        Script::Hang => {
            send_chunk(cx, session, "working")?;
            turn.cancelled().await;
        }
        Script::Die => send_chunk(cx, session, "dying after this turn")?,
        Script::Stderr(line) => {
            eprintln!("{line}");
            echo(cx, session, &turn, line)?;
        }
        Script::Settings => send_chunk(cx, session, &crate::settings::describe(&turn.settings))?,
        Script::Review(what) => send_chunk(cx, session, &format!("review of: {what}"))?,
        Script::Think => {
            for thought in ["Considering ", "the options."] {
                let chunk = ContentChunk::new(ContentBlock::from(thought));
                cx.send_notification(SessionNotification::new(
                    session.clone(),
                    SessionUpdate::AgentThoughtChunk(chunk),
                ))?;
            }
            send_chunk(cx, session, "thought it through")?;
        }
        Script::Edit => edit(cx, session)?,
        Script::Term(command) => terminal(cx, session, &turn, command).await?,
        Script::Usage => {
            let usage = UsageUpdate::new(1200, 200_000).cost(Cost::new(0.0421, "USD"));
            cx.send_notification(SessionNotification::new(session.clone(), SessionUpdate::UsageUpdate(usage)))?;
            send_chunk(cx, session, "usage reported")?;
        }
        Script::Ask => ask(cx, session).await?,
        Script::Read(path) => read(cx, session, &turn, path).await?,
        Script::Tool => tool(cx, session)?,
        Script::Blocks if blocks.is_empty() => send_chunk(cx, session, "no blocks")?,
        Script::Blocks => send_chunk(cx, session, &blocks.join("\n"))?,
        Script::Picture => crate::files::picture(cx, session)?,
        Script::Outbox(rest) => send_chunk(cx, session, &crate::files::write_outbox(&turn.cwd, rest))?,
        Script::Echo(text) => echo(cx, session, &turn, text)?,
    }
    Ok(if turn.is_cancelled() { StopReason::Cancelled } else { StopReason::EndTurn })
}

fn echo(cx: &ConnectionTo<Client>, session: &SessionId, turn: &Turn, text: &str) -> Result<(), Error> {
    for chunk in chunks(&format!("acp[{}]: {text}", turn.number)) {
        send_chunk(cx, session, chunk)?;
    }
    Ok(())
}

async fn ask(cx: &ConnectionTo<Client>, session: &SessionId) -> Result<(), Error> {
    let tool_call = ToolCallUpdate::new(
        "ask1",
        ToolCallUpdateFields::new().title("write notes.txt").kind(ToolKind::Edit).status(ToolCallStatus::Pending),
    );
    let options = vec![
        PermissionOption::new("allow", "Allow once", PermissionOptionKind::AllowOnce),
        PermissionOption::new("always", "Always allow", PermissionOptionKind::AllowAlways),
        PermissionOption::new("reject", "Reject", PermissionOptionKind::RejectOnce),
    ];
    let request = RequestPermissionRequest::new(session.clone(), tool_call, options);
    let reply = match cx.send_request(request).block_task().await {
        Ok(response) => match response.outcome {
            RequestPermissionOutcome::Selected(selected)
                if matches!(selected.option_id.0.as_ref(), "allow" | "always") =>
            {
                format!("permission granted: {}", selected.option_id)
            }
            _ => "permission denied".to_owned(),
        },
        Err(err) => format!("permission failed: {}", describe(&err)),
    };
    send_chunk(cx, session, &reply)
}

async fn read(cx: &ConnectionTo<Client>, session: &SessionId, turn: &Turn, path: &str) -> Result<(), Error> {
    let request = ReadTextFileRequest::new(session.clone(), turn.cwd.join(path));
    let reply = match cx.send_request(request).block_task().await {
        Ok(response) => format!("file: {}", response.content),
        Err(err) => format!("read failed: {}", describe(&err)),
    };
    send_chunk(cx, session, &reply)
}

fn tool(cx: &ConnectionTo<Client>, session: &SessionId) -> Result<(), Error> {
    let call = ToolCall::new("t1", "list files").kind(ToolKind::Read).status(ToolCallStatus::InProgress);
    cx.send_notification(SessionNotification::new(session.clone(), SessionUpdate::ToolCall(call)))?;
    let done = ToolCallUpdate::new("t1", ToolCallUpdateFields::new().status(ToolCallStatus::Completed));
    cx.send_notification(SessionNotification::new(session.clone(), SessionUpdate::ToolCallUpdate(done)))?;
    send_chunk(cx, session, "tool done")
}

fn edit(cx: &ConnectionTo<Client>, session: &SessionId) -> Result<(), Error> {
    let diff = Diff::new("notes.txt", "one\n2\nthree").old_text("one\ntwo\nthree".to_owned());
    let call = ToolCall::new("e1", "edit notes.txt")
        .kind(ToolKind::Edit)
        .status(ToolCallStatus::InProgress)
        .content(vec![ToolCallContent::Diff(diff)]);
    cx.send_notification(SessionNotification::new(session.clone(), SessionUpdate::ToolCall(call)))?;
    let output = ToolCallContent::from(ContentBlock::from("1 line changed"));
    let done =
        ToolCallUpdate::new("e1", ToolCallUpdateFields::new().status(ToolCallStatus::Completed).content(vec![output]));
    cx.send_notification(SessionNotification::new(session.clone(), SessionUpdate::ToolCallUpdate(done)))?;
    send_chunk(cx, session, "edited")
}

async fn terminal(cx: &ConnectionTo<Client>, session: &SessionId, turn: &Turn, command: &str) -> Result<(), Error> {
    let mut words = command.split_whitespace().map(str::to_owned);
    let program = words.next().unwrap_or_default();
    let create = CreateTerminalRequest::new(session.clone(), program).args(words.collect()).cwd(turn.cwd.clone());
    let id = match cx.send_request(create).block_task().await {
        Ok(created) => created.terminal_id,
        Err(err) => return send_chunk(cx, session, &format!("terminal refused: {}", describe(&err))),
    };
    let exit = cx.send_request(WaitForTerminalExitRequest::new(session.clone(), id.clone())).block_task().await?;
    let output = cx.send_request(TerminalOutputRequest::new(session.clone(), id.clone())).block_task().await?;
    cx.send_request(ReleaseTerminalRequest::new(session.clone(), id)).block_task().await?;
    let status = match (exit.exit_status.exit_code, exit.exit_status.signal) {
        (Some(code), _) => format!("exit {code}"),
        (None, signal) => format!("signal {}", signal.unwrap_or_default()),
    };
    send_chunk(cx, session, &format!("{status}: {}", output.output.trim()))
}

/// An error from the client on one line: its message, then its data as compact JSON.
fn describe(err: &Error) -> String {
    match &err.data {
        Some(data) => format!("{}: {data}", err.message),
        None => err.message.clone(),
    }
}

/// Splits an answer after each space, then halves the longest piece until there are at
/// least three; the pieces concatenate to the answer exactly.
pub(crate) fn chunks(answer: &str) -> Vec<&str> {
    let mut pieces: Vec<&str> = answer.split_inclusive(' ').collect();
    while pieces.len() < 3 {
        let Some((index, longest)) = pieces.iter().enumerate().max_by_key(|(_, piece)| piece.chars().count()) else {
            break;
        };
        let count = longest.chars().count();
        if count < 2 {
            break;
        }
        let middle = longest.char_indices().nth(count / 2).map_or(longest.len(), |(at, _)| at);
        let (head, tail) = longest.split_at(middle);
        pieces.splice(index..=index, [head, tail]);
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_split_after_spaces_and_concatenate_exactly() {
        assert_eq!(chunks("acp[1]: hello there"), ["acp[1]: ", "hello ", "there"]);
        assert_eq!(chunks("acp[2]: a  b "), ["acp[2]: ", "a ", " ", "b "]);
    }

    #[test]
    fn short_answers_still_make_three_chunks() {
        for answer in ["acp[1]: ", "acp[7]: hi", "acp[3]: héllo"] {
            let pieces = chunks(answer);
            assert!(pieces.len() >= 3, "{answer:?} gave {pieces:?}");
            assert_eq!(pieces.concat(), answer);
        }
    }

    #[test]
    fn scripts_are_chosen_by_prefix() {
        assert_eq!(Script::parse("crash now"), Script::Crash);
        assert_eq!(Script::parse("hang"), Script::Hang);
        assert_eq!(Script::parse("ask me"), Script::Ask);
        assert_eq!(Script::parse("read notes.txt "), Script::Read("notes.txt"));
        assert_eq!(Script::parse("reading"), Script::Echo("reading"));
        assert_eq!(Script::parse("tool"), Script::Tool);
        assert_eq!(Script::parse("die now"), Script::Die);
        assert_eq!(Script::parse("/review the diff"), Script::Review("the diff"));
        assert_eq!(Script::parse("term ls -a"), Script::Term("ls -a"));
        assert_eq!(Script::parse("settings"), Script::Settings);
        assert_eq!(Script::parse("stderr oops"), Script::Stderr("oops"));
        assert_eq!(Script::parse("hello there"), Script::Echo("hello there"));
    }
}
