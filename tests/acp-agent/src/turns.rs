//! The scripted prompt turns: what the agent streams and how each turn ends.
//!
//! `main` counts the turn and handles `crash` itself (it needs the process exit path);
//! everything here runs in a task spawned off the dispatch loop, because the turns that
//! ask the client something (`ask`, `read `) wait for responses only that loop delivers.

use agent_client_protocol::v1::ConnectionTo;
use agent_client_protocol::v1::schema::{
    ContentBlock, ContentChunk, PermissionOption, PermissionOptionKind, PromptRequest, ReadTextFileRequest,
    RequestPermissionOutcome, RequestPermissionRequest, SessionId, SessionNotification, SessionUpdate, StopReason,
    ToolCall, ToolCallStatus, ToolCallUpdate, ToolCallUpdateFields, ToolKind,
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
    /// `hang`: one chunk, then wait for `session/cancel`.
    Hang,
    /// `ask`: ask the client for permission and report the outcome.
    Ask,
    /// `read <path>`: read a file through the client.
    Read(&'a str),
    /// `tool`: report a tool call running and completing.
    Tool,
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
        } else if text.starts_with("hang") {
            Self::Hang
        } else if text.starts_with("ask") {
            Self::Ask
        } else if let Some(path) = text.strip_prefix("read ") {
            Self::Read(path.trim())
        } else if text.starts_with("tool") {
            Self::Tool
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
        Script::Ask => ask(cx, session).await?,
        Script::Read(path) => read(cx, session, &turn, path).await?,
        Script::Tool => tool(cx, session)?,
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
        assert_eq!(Script::parse("stderr oops"), Script::Stderr("oops"));
        assert_eq!(Script::parse("hello there"), Script::Echo("hello there"));
    }
}
