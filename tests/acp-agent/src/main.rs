//! gorp-test-agent: a scripted ACP agent (protocol v1) that gorp's tests spawn over stdio.
//!
//! It speaks newline-delimited JSON-RPC on stdin/stdout, writes to stderr only where a
//! script says so, and exits with status 0 when stdin reaches EOF. Tests rely on exactly
//! this contract:
//!
//! - Environment `GORP_TEST_AGENT_STARTUP_ERROR=<text>`: writes `<text>` as one line to
//!   stderr and exits with status 1 before reading anything (an agent missing its API key).
//! - `initialize`: answers with the requested protocol version (the SDK pins it to v1),
//!   `agentCapabilities.loadSession = true`, `mcpCapabilities.http = true`,
//!   `promptCapabilities.image = true` (false with `GORP_TEST_AGENT_NO_IMAGES=1`),
//!   `agentInfo.name = "gorp-test-agent"` and one auth method, `device` (type agent,
//!   "Device code", described "Open https://login.example.test/device and enter GORP-1234").
//! - Environment `GORP_TEST_AGENT_REQUIRE_LOGIN=1`: `session/new`, `session/load` and
//!   `session/prompt` fail with `-32000` (auth required) until `authenticate` names
//!   `device`; any other method id gets `-32602`.
//! - Every opened session (new or loaded) has modes `ask` (current), `code`, `plan` and a
//!   select config option `model` (category model) with `small` (current) and `large`,
//!   kept in memory; right after answering, the agent sends `available_commands_update`
//!   with one command, `review` (input hint "what to review"). `session/set_mode` and
//!   `session/set_config_option` accept those ids (else `-32602`); a mode change is
//!   followed by a `current_mode_update`. The MCP servers passed with `session/new` or
//!   `session/load` are remembered for the `settings` script.
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
//!   - `settings`: answers `mode=<mode> model=<model> mcp=<servers or none>`, each server
//!     as `<name> (stdio <command>)` or `<name> (http <url>)`.
//!   - `/review <text>`: answers `review of: <text>` (a slash command).
//!   - `think`: two `agent_thought_chunk`s "Considering " and "the options.", then one
//!     chunk "thought it through".
//!   - `edit`: a `tool_call` (id `e1`, "edit notes.txt", in_progress) with a diff of
//!     notes.txt from "one\ntwo\nthree" to "one\n2\nthree", a `tool_call_update` (id `e1`,
//!     completed, no title) with text content "1 line changed", then one chunk "edited".
//!   - `term <command> [args…]`: `terminal/create` in the session's cwd, then
//!     `wait_for_exit`, `output` and `release`; answers `exit <code>: <output trimmed>`
//!     (or `signal <name>: …`), or `terminal refused: <message>[: <data json>]`.
//!   - `usage`: a `usage_update` (used 1200 of 200000, cost 0.0421 USD), one chunk
//!     "usage reported", and the prompt's answer reports usage (1200 input and 300 output
//!     tokens, 1500 in total). No other turn reports usage.
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
//!   - `blocks`: one chunk with a line per non-text block of the prompt, in order:
//!     `image <mimeType> <decoded bytes> <sha256 hex of them>`, `resource_link <name>
//!     <mimeType> <size> <sha256 hex of the file the file:// uri names>` (or `… unreadable`),
//!     `resource <uri>`, `audio <mimeType>`; "no blocks" when there are none.
//!   - `picture`: one `agent_message_chunk` with an image block (the 67-byte PNG of
//!     `files::PICTURE`, mime image/png, uri `chart.png`), then one chunk "here is a picture".
//!   - `outbox <name> <text>`: writes `<text>` to `<cwd>/outbox/<name>` (creating the
//!     folder) and answers `wrote outbox/<name>` (or `outbox failed: <error>`).
//!   - anything else: streams `acp[<turn>]: <text>` as three or more
//!     `agent_message_chunk`s split after each space (a piece is halved when there are
//!     fewer than three) that concatenate to exactly that string; stop reason `end_turn`.
//!
//!   Any turn during which `session/cancel` arrives for its session ends with stop reason
//!   `cancelled` instead of `end_turn`; a cancel with no turn running is ignored. Turns
//!   of different sessions run concurrently; updates always precede their prompt's answer.
//!
//! Usage is reported only by the `usage` script (`PromptResponse.usage` is unstable in v1;
//! gorp enables the SDK's `unstable_end_turn_token_usage` to read it).

mod files;
mod sessions;
mod settings;
mod turns;

use std::sync::Arc;

use std::sync::atomic::{AtomicBool, Ordering};

use agent_client_protocol::v1::schema::{
    self, AgentCapabilities, AuthenticateRequest, AuthenticateResponse, CancelNotification, Implementation,
    InitializeRequest, InitializeResponse, LoadSessionRequest, LoadSessionResponse, McpCapabilities, NewSessionRequest,
    NewSessionResponse, PromptCapabilities, PromptRequest, PromptResponse, SetSessionConfigOptionRequest,
    SetSessionConfigOptionResponse, SetSessionModeRequest, SetSessionModeResponse,
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
    let logged_in = Arc::new(AtomicBool::new(std::env::var("GORP_TEST_AGENT_REQUIRE_LOGIN").as_deref() != Ok("1")));
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
                let images = std::env::var("GORP_TEST_AGENT_NO_IMAGES").as_deref() != Ok("1");
                let capabilities = AgentCapabilities::new()
                    .load_session(true)
                    .mcp_capabilities(McpCapabilities::new().http(true))
                    .prompt_capabilities(PromptCapabilities::new().image(images));
                responder.respond(
                    InitializeResponse::new(request.protocol_version)
                        .agent_capabilities(capabilities)
                        .auth_methods(settings::auth_methods())
                        .agent_info(Implementation::new("gorp-test-agent", env!("CARGO_PKG_VERSION"))),
                )
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            {
                let logged_in = logged_in.clone();
                async move |request: AuthenticateRequest, responder, _cx| {
                    if request.method_id.0.as_ref() != "device" {
                        let error = Error::invalid_params().data(format!("unknown method {}", request.method_id));
                        return responder.respond_with_error(error);
                    }
                    logged_in.store(true, Ordering::SeqCst);
                    responder.respond(AuthenticateResponse::new())
                }
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            {
                let sessions = sessions.clone();
                async move |request: SetSessionModeRequest, responder, cx| {
                    let mode = request.mode_id.0.to_string();
                    if !settings::MODES.contains(&mode.as_str()) {
                        return responder.respond_with_error(Error::invalid_params().data(format!("no mode {mode}")));
                    }
                    if !sessions.update(&request.session_id, |s| s.mode = mode.clone()) {
                        return responder.respond_with_error(to_acp(SessionError::NotFound(request.session_id)));
                    }
                    responder.respond(SetSessionModeResponse::new())?;
                    settings::announce_mode(&cx, &request.session_id, &mode)
                }
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            {
                let sessions = sessions.clone();
                async move |request: SetSessionConfigOptionRequest, responder, _cx| {
                    let model = request.value.as_value_id().map(|v| v.0.to_string()).unwrap_or_default();
                    if request.config_id.0.as_ref() != settings::MODEL_OPTION
                        || !settings::MODELS.contains(&model.as_str())
                    {
                        let error = Error::invalid_params().data(format!("no option {} = {model}", request.config_id));
                        return responder.respond_with_error(error);
                    }
                    if !sessions.update(&request.session_id, |s| s.model = model.clone()) {
                        return responder.respond_with_error(to_acp(SessionError::NotFound(request.session_id)));
                    }
                    responder.respond(SetSessionConfigOptionResponse::new(settings::options(&model)))
                }
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            {
                let sessions = sessions.clone();
                let logged_in = logged_in.clone();
                async move |request: NewSessionRequest, responder, cx| {
                    if !logged_in.load(Ordering::SeqCst) {
                        return responder.respond_with_error(Error::auth_required());
                    }
                    if !request.cwd.is_absolute() {
                        let error = Error::invalid_params().data(format!("cwd must be absolute: {:?}", request.cwd));
                        return responder.respond_with_error(error);
                    }
                    let id = match sessions.create(&request.cwd) {
                        Ok(id) => id,
                        Err(err) => return responder.respond_with_error(to_acp(err)),
                    };
                    let mcp = settings::describe_mcp(&request.mcp_servers);
                    sessions.update(&id, |s| s.mcp = mcp);
                    let defaults = sessions::Settings::default();
                    responder.respond(
                        NewSessionResponse::new(id.clone())
                            .modes(settings::modes(&defaults.mode))
                            .config_options(settings::options(&defaults.model)),
                    )?;
                    settings::announce_commands(&cx, &id)
                }
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            {
                let sessions = sessions.clone();
                let logged_in = logged_in.clone();
                async move |request: LoadSessionRequest, responder, cx| {
                    if !logged_in.load(Ordering::SeqCst) {
                        return responder.respond_with_error(Error::auth_required());
                    }
                    if let Err(err) = sessions.load(&request.session_id, &request.cwd) {
                        return responder.respond_with_error(to_acp(err));
                    }
                    let mcp = settings::describe_mcp(&request.mcp_servers);
                    let mut current = sessions::Settings::default();
                    sessions.update(&request.session_id, |s| {
                        s.mcp = mcp;
                        current = s.clone();
                    });
                    responder.respond(
                        LoadSessionResponse::new()
                            .modes(settings::modes(&current.mode))
                            .config_options(settings::options(&current.model)),
                    )?;
                    settings::announce_commands(&cx, &request.session_id)
                }
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            {
                let sessions = sessions.clone();
                let logged_in = logged_in.clone();
                async move |request: PromptRequest, responder, cx| {
                    if !logged_in.load(Ordering::SeqCst) {
                        return responder.respond_with_error(Error::auth_required());
                    }
                    prompt(&sessions, &exit_tx, request, responder, cx)
                }
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
    let blocks = files::describe_blocks(&request);
    let script = Script::parse(&text);
    if script == Script::Crash {
        turns::send_chunk(&cx, &session, "about to crash")?;
        eprintln!("fatal: scripted crash");
        // Queued after the chunk, so the foreground's drain writes the chunk first.
        let exit = Exit { status: CRASH_STATUS, _unanswered: Some(responder) };
        return exit_tx.send(exit).map_err(|_| Error::internal_error().data("already exiting"));
    }
    let dies = script == Script::Die;
    let usage = (script == Script::Usage).then(|| schema::Usage::new(1500, 1200, 300));
    let task_cx = cx.clone();
    let exit_tx = exit_tx.clone();
    cx.spawn(async move {
        let stop = turns::run(&task_cx, &session, turn, Script::parse(&text), blocks).await;
        responder.respond_with_result(stop.map(|stop| PromptResponse::new(stop).usage(usage)))?;
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
