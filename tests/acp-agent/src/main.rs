//! gorp-test-agent: a scripted ACP agent (protocol v1) that gorp's tests spawn over stdio.
//!
//! It speaks newline-delimited JSON-RPC on stdin/stdout, writes to stderr only where a
//! script says so, and exits with status 0 when stdin reaches EOF. Tests rely on exactly
//! this contract:
//!
//! - Environment `GORP_TEST_AGENT_STARTUP_ERROR=<text>`: writes `<text>` as one line to
//!   stderr and exits with status 1 before reading anything (an agent missing its API key).
//! - `initialize`: answers with the requested protocol version (the SDK pins it to v1),
//!   `agentCapabilities.loadSession = true` and `agentInfo.name = "gorp-test-agent"`.
//! - `session/new`: `cwd` must be absolute (else `-32602`). Answers a fresh id
//!   `s-<32 hex digits>` and records `{"sessions": {"<id>": {"turns": 0}}}` in
//!   `<cwd>/.gorp-test-agent.json` (sessions sharing a directory share the file).
//! - `session/load`: succeeds if `<cwd>/.gorp-test-agent.json` records the id, from any
//!   earlier process; the session continues its turn count. Replays no history. Otherwise
//!   error `-32002` (resource not found) with `data.sessionId`.
//! - `session/prompt`: unknown sessions get `-32002`. The prompt's text is its text blocks
//!   joined by newlines. Every prompt first adds one to the session's turn count and
//!   persists it, then by how the text starts:
//!   - `crash`: one `agent_message_chunk` "about to crash", flushed to stdout, the line
//!     "fatal: scripted crash" on stderr, then the process exits with status 3 without
//!     answering the prompt.
//!   - `die`: answers "dying after this turn" (stop reason `end_turn`), then the process
//!     exits with status 4 right after the answer is flushed (a death between turns).
//!   - `stderr <text>`: writes `<text>` as one line to stderr, then echoes like any text.
//!   - `hang`: one chunk "working", then no answer until `session/cancel` names the
//!     session; then stop reason `cancelled`.
//!   - `ask`: requests `session/request_permission` for tool call `ask1` titled
//!     "write notes.txt" with options `allow` (allow_once), `always` (allow_always) and
//!     `reject` (reject_once). Selecting `allow` or `always` streams one chunk
//!     "permission granted: <option id>"; anything else, including the `cancelled`
//!     outcome, streams "permission denied"; an error answer streams
//!     "permission failed: <message>[: <data json>]". Stop reason `end_turn`.
//!   - `read <path>`: calls `fs/read_text_file` with the path, resolved against the
//!     session's cwd when relative, and streams one chunk "file: <content>" or
//!     "read failed: <message>[: <data json>]". Stop reason `end_turn`.
//!   - `tool`: a `tool_call` update (id `t1`, title "list files", kind read, status
//!     in_progress), a `tool_call_update` (id `t1`, status completed), then one chunk
//!     "tool done". Stop reason `end_turn`.
//!   - anything else: streams `acp[<turn>]: <text>` as three or more
//!     `agent_message_chunk`s split after each space (a piece is halved when there are
//!     fewer than three) that concatenate to exactly that string; stop reason `end_turn`.
//!
//!   Any turn during which `session/cancel` arrives for its session ends with stop reason
//!   `cancelled` instead of `end_turn`; a cancel with no turn running is ignored. Turns
//!   of different sessions run concurrently; updates always precede their prompt's answer.
//!
//! No usage is reported: stable v1 `PromptResponse` has no usage field.

mod sessions;
mod turns;

use std::sync::Arc;

use agent_client_protocol::v1::schema::{
    self, AgentCapabilities, CancelNotification, Implementation, InitializeRequest, InitializeResponse,
    LoadSessionRequest, LoadSessionResponse, NewSessionRequest, NewSessionResponse, PromptRequest, PromptResponse,
};
use agent_client_protocol::v1::{ConnectionTo, Responder};
use agent_client_protocol::{Agent, ByteStreams, Client, Error};
use tokio::sync::mpsc;
use tokio_util::compat::{TokioAsyncReadCompatExt, TokioAsyncWriteCompatExt};

use sessions::{SessionError, Sessions};
use turns::Script;

/// Exit status of the `crash` script.
const CRASH_STATUS: i32 = 3;
/// Exit status of the `die` script.
const DIE_STATUS: i32 = 4;

/// Why the process is about to exit: the status, and a prompt it must never answer.
struct Exit {
    status: i32,
    _unanswered: Option<Responder<PromptResponse>>,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    if let Ok(error) = std::env::var("GORP_TEST_AGENT_STARTUP_ERROR") {
        eprintln!("{error}");
        std::process::exit(1);
    }
    let sessions = Arc::new(Sessions::default());
    // A crashing turn hands over its unanswered responder, so the SDK cannot answer it
    // with an error on its way out.
    let (exit_tx, mut exit_rx) = mpsc::unbounded_channel::<Exit>();

    // ByteStreams rather than the SDK's `Stdio`: when the foreground below returns,
    // ByteStreams has flushed every accepted message to stdout, which `crash` relies on.
    let transport = ByteStreams::new(tokio::io::stdout().compat_write(), tokio::io::stdin().compat());
    let exited = Agent
        .v1()
        .name("gorp-test-agent")
        .on_receive_request(
            async |request: InitializeRequest, responder, _cx| {
                let capabilities = AgentCapabilities::new().load_session(true);
                responder.respond(
                    InitializeResponse::new(request.protocol_version)
                        .agent_capabilities(capabilities)
                        .agent_info(Implementation::new("gorp-test-agent", env!("CARGO_PKG_VERSION"))),
                )
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            {
                let sessions = sessions.clone();
                async move |request: NewSessionRequest, responder, _cx| {
                    if !request.cwd.is_absolute() {
                        let error = Error::invalid_params().data(format!("cwd must be absolute: {:?}", request.cwd));
                        return responder.respond_with_error(error);
                    }
                    let result = sessions.create(&request.cwd).map(NewSessionResponse::new);
                    responder.respond_with_result(result.map_err(to_acp))
                }
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            {
                let sessions = sessions.clone();
                async move |request: LoadSessionRequest, responder, _cx| {
                    let result = sessions.load(&request.session_id, &request.cwd).map(|()| LoadSessionResponse::new());
                    responder.respond_with_result(result.map_err(to_acp))
                }
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            {
                let sessions = sessions.clone();
                async move |request: PromptRequest, responder, cx| prompt(&sessions, &exit_tx, request, responder, cx)
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_notification(
            {
                let sessions = sessions.clone();
                async move |cancel: CancelNotification, _cx| {
                    sessions.cancel(&cancel.session_id);
                    Ok(())
                }
            },
            agent_client_protocol::on_receive_notification!(),
        )
        .connect_with(transport, async |cx| {
            tokio::select! {
                () = cx.incoming_closed() => Ok(None),
                Some(exit) = exit_rx.recv() => Ok(Some(exit)),
            }
        })
        .await?;

    if let Some(exit) = exited {
        std::process::exit(exit.status);
    }
    Ok(())
}

/// Counts the turn in order with other messages, then runs it off the dispatch loop.
fn prompt(
    sessions: &Sessions,
    exit_tx: &mpsc::UnboundedSender<Exit>,
    request: PromptRequest,
    responder: Responder<PromptResponse>,
    cx: ConnectionTo<Client>,
) -> Result<(), Error> {
    let session = request.session_id.clone();
    let turn = match sessions.begin_turn(&session) {
        Ok(turn) => turn,
        Err(err) => return responder.respond_with_error(to_acp(err)),
    };
    let text = turns::prompt_text(&request);
    let script = Script::parse(&text);
    if script == Script::Crash {
        turns::send_chunk(&cx, &session, "about to crash")?;
        eprintln!("fatal: scripted crash");
        // Queued after the chunk, so the foreground's drain writes the chunk first.
        let exit = Exit { status: CRASH_STATUS, _unanswered: Some(responder) };
        return exit_tx.send(exit).map_err(|_| Error::internal_error().data("already exiting"));
    }
    let dies = script == Script::Die;
    let task_cx = cx.clone();
    let exit_tx = exit_tx.clone();
    cx.spawn(async move {
        let stop = turns::run(&task_cx, &session, turn, Script::parse(&text)).await;
        responder.respond_with_result(stop.map(PromptResponse::new))?;
        if dies {
            // After the answer, so the foreground's drain writes the answer first.
            let _ = exit_tx.send(Exit { status: DIE_STATUS, _unanswered: None });
        }
        Ok(())
    })
}

fn to_acp(err: SessionError) -> Error {
    match err {
        SessionError::NotFound(id) => schema::Error::session_not_found(id).into(),
        other => Error::internal_error().data(other.to_string()),
    }
}
