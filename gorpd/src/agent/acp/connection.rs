//! One agent process and its ACP connection: spawn the agent in the session's
//! workspace, initialize, then run turns one at a time until the turn queue
//! closes, the process idles out, or the agent dies. Session updates become
//! agent events of the running turn (`updates`) or the session's agent state
//! (`state`); the client requests the agent may make (permissions, files,
//! terminals) are served by `handlers`.

use super::AcpConfig;
use super::handlers;
use super::mcp;
use super::state::{AgentState, is_auth_required};
use super::stderr::StderrTail;
use super::terminal::Terminals;
use super::updates::TurnUpdates;
use crate::agent::{AgentEvent, PromptRequest, Setting};
use agent_client_protocol::schema::ProtocolVersion;
use agent_client_protocol::v1::schema::{
    CancelNotification, ClientCapabilities, CreateTerminalRequest, FileSystemCapabilities, InitializeRequest,
    KillTerminalRequest, KillTerminalResponse, LoadSessionRequest, NewSessionRequest, PromptRequest as AcpPrompt,
    ReadTextFileRequest, ReleaseTerminalRequest, ReleaseTerminalResponse, RequestPermissionRequest, SessionId,
    SessionNotification, StopReason, TerminalOutputRequest, WaitForTerminalExitRequest, WriteTextFileRequest,
};
use agent_client_protocol::{ByteStreams, Client};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::compat::{TokioAsyncReadCompatExt, TokioAsyncWriteCompatExt};

/// One prompt for the agent process, with where its events go.
pub(super) struct Turn {
    pub(super) request: PromptRequest,
    pub(super) events: mpsc::UnboundedSender<AgentEvent>,
}

/// What a process shares with the pool and the turns: the turn sink, the session's agent state, its stderr.
#[derive(Clone, Copy)]
struct Link<'a> {
    updates: &'a Arc<TurnUpdates>,
    state: &'a Arc<AgentState>,
    tail: &'a StderrTail,
}

/// How long a cancelled prompt may take to answer before the process is given up.
const CANCEL_GRACE: Duration = Duration::from_secs(10);

/// How long a failing process gets to exit and flush its stderr before it is reported.
const EXIT_GRACE: Duration = Duration::from_secs(2);

/// Runs the session's agent until its queue closes or it idles out. A
/// process that dies is reported to the turn it was running (quoting its
/// stderr); a turn queued meanwhile starts a new process, which resumes the
/// agent session, and with nothing queued the session is left without a
/// process, so it shows as not running until the next prompt.
pub(super) async fn run(
    config: Arc<AcpConfig>,
    session: String,
    workspace: PathBuf,
    mut turns: mpsc::UnboundedReceiver<Turn>,
    state: Arc<AgentState>,
) {
    let tail = StderrTail::default();
    let mut next: Option<Turn> = None;
    loop {
        let updates = Arc::new(TurnUpdates::default());
        let link = Link { updates: &updates, state: &state, tail: &tail };
        let outcome = serve(&config, &session, &workspace, &mut next, &mut turns, link).await;
        state.disconnected();
        let failure = match outcome {
            Ok(()) => return,
            Err(failure) => failure,
        };
        let running = updates.end();
        match (running, next.take()) {
            (Some(events), _) | (None, Some(Turn { events, .. })) => {
                tracing::warn!(session = %session, error = %failure, "agent process died during a turn");
                let _ = events.send(AgentEvent::Error(failure));
            }
            (None, None) => tracing::warn!(session = %session, error = %failure, "agent process died between turns"),
        }
        // A turn queued while it died gets a new process; otherwise none runs until the next prompt.
        match turns.try_recv() {
            Ok(turn) => next = Some(turn),
            Err(_) => return,
        }
    }
}

/// Spawns the agent and serves turns (`next` first) until the queue closes,
/// it idles out or the process dies; the error says how it died.
async fn serve(
    config: &AcpConfig,
    session: &str,
    workspace: &Path,
    next: &mut Option<Turn>,
    turns: &mut mpsc::UnboundedReceiver<Turn>,
    link: Link<'_>,
) -> Result<(), String> {
    let tail = link.tail;
    // Inside the process's `agent` span, which the turn that needed the process started.
    let spawning = tracing::info_span!("agent spawn", session, command = %config.command).entered();
    let mut child = tokio::process::Command::new(&config.command)
        .args(&config.args)
        .envs(&config.env)
        .current_dir(workspace)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start agent \"{}\": {e}", config.command))?;
    let (Some(stdin), Some(stdout), Some(stderr)) = (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err("the agent's pipes are missing".to_owned());
    };
    tail.clear();
    let stderr_reader = tail.follow(session, stderr);
    tracing::info!(session, command = %config.command, pid = child.id(), workspace = %workspace.display(), "agent process started");
    drop(spawning);
    let transport = ByteStreams::new(stdin.compat_write(), stdout.compat());
    let connection = connect(config, workspace, next, turns, link.updates, link.state, transport);
    tokio::pin!(connection);
    // The process is watched, not just its pipes: one that dies between turns is noticed at once.
    let (status, error) = tokio::select! {
        result = &mut connection => match result {
            Ok(()) => return Ok(()),
            Err(error) => (tokio::time::timeout(EXIT_GRACE, child.wait()).await.ok().and_then(Result::ok), Some(error)),
        },
        status = child.wait() => {
            // What it wrote before it died (the answer of its last turn) is still read and delivered.
            match tokio::time::timeout(EXIT_GRACE, &mut connection).await {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(error)) => (status.ok(), Some(error)),
                Err(_) => (status.ok(), None),
            }
        }
    };
    // Whatever it wrote before it died belongs in the report.
    let _ = tokio::time::timeout(EXIT_GRACE, stderr_reader).await;
    let reason = match (status, error) {
        (Some(status), _) => format!("the agent process exited ({status})"),
        (None, Some(error)) => format!("the agent connection failed: {error}"),
        (None, None) => "the agent process could not be watched".to_owned(),
    };
    Err(tail.explain(&reason))
}

#[allow(clippy::too_many_arguments)]
async fn connect(
    config: &AcpConfig,
    workspace: &Path,
    next: &mut Option<Turn>,
    turns: &mut mpsc::UnboundedReceiver<Turn>,
    updates: &Arc<TurnUpdates>,
    state: &Arc<AgentState>,
    transport: impl agent_client_protocol::ConnectTo<Client> + 'static,
) -> Result<(), agent_client_protocol::Error> {
    let terminals = Arc::new(Terminals::new(config.terminal.clone(), workspace));
    let (notified, asked, shown) = (updates.clone(), updates.clone(), updates.clone());
    let known = state.clone();
    let auto_approve = config.auto_approve;
    let (read_root, write_root) = (workspace.to_path_buf(), workspace.to_path_buf());
    let (creating, reading, waiting, killing, releasing) =
        (terminals.clone(), terminals.clone(), terminals.clone(), terminals.clone(), terminals.clone());
    Client
        .v1()
        .name("gorp")
        .on_receive_notification(
            async move |notification: SessionNotification, _cx| {
                if !known.apply(&notification.update) {
                    notified.forward(notification.update);
                }
                Ok(())
            },
            agent_client_protocol::on_receive_notification!(),
        )
        .on_receive_request(
            async move |request: RequestPermissionRequest, responder, cx| {
                handlers::permission(&asked, &request, responder, &cx, auto_approve)
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            async move |request: ReadTextFileRequest, responder, _cx| {
                responder.respond_with_result(handlers::read_file(&read_root, &request))
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            async move |request: WriteTextFileRequest, responder, _cx| {
                responder.respond_with_result(handlers::write_file(&write_root, &request))
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            async move |request: CreateTerminalRequest, responder, _cx| {
                responder.respond_with_result(handlers::create_terminal(&creating, &shown, &request))
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            async move |request: TerminalOutputRequest, responder, _cx| {
                responder.respond_with_result(handlers::terminal_output(&reading, &request))
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            async move |request: WaitForTerminalExitRequest, responder, cx| {
                handlers::wait_for_terminal(&waiting, &request, responder, &cx)
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            async move |request: KillTerminalRequest, responder, _cx| {
                let killed = killing.kill(&request.terminal_id.0).map(|()| KillTerminalResponse::new());
                responder.respond_with_result(killed.map_err(handlers::invalid))
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            async move |request: ReleaseTerminalRequest, responder, _cx| {
                let released = releasing.release(&request.terminal_id.0).map(|()| ReleaseTerminalResponse::new());
                responder.respond_with_result(released.map_err(handlers::invalid))
            },
            agent_client_protocol::on_receive_request!(),
        )
        .connect_with(transport, async |cx| {
            let capabilities = ClientCapabilities::new()
                .fs(FileSystemCapabilities::new().read_text_file(true).write_text_file(true))
                .terminal(terminals.enabled());
            let init = cx
                .send_request(InitializeRequest::new(ProtocolVersion::V1).client_capabilities(capabilities))
                .block_task()
                .await?;
            state.connected(cx.clone(), init.auth_methods.clone());
            let agent = AgentSupport {
                can_load: init.agent_capabilities.load_session,
                http_mcp: init.agent_capabilities.mcp_capabilities.http,
                images: init.agent_capabilities.prompt_capabilities.image,
            };
            let mut session: Option<SessionId> = None;
            loop {
                if next.is_none() {
                    *next = tokio::select! {
                        turn = turns.recv() => match turn { Some(turn) => Some(turn), None => return Ok(()) },
                        () = cx.incoming_closed() => {
                            return Err(agent_client_protocol::Error::internal_error().data("the agent closed its output"));
                        }
                        _ = tokio::time::sleep(config.idle_timeout) => {
                            tracing::info!(command = %config.command, "agent idle; stopping its process");
                            return Ok(());
                        }
                    };
                }
                // The turn stays in `next` until its session is open, so a death meanwhile reports to it.
                let opening = next.as_ref().expect("a turn was just queued");
                let id = match open_session(&cx, config, &mut session, agent, workspace, opening, state).await {
                    Ok(id) => id,
                    Err(error) if agent_client_protocol::is_incoming_transport_closed(&error) => return Err(error),
                    Err(error) => {
                        let turn = next.take().expect("the turn being opened");
                        let text = if is_auth_required(&error) {
                            state.login_error()
                        } else {
                            format!("the agent refused the session: {}", error.message)
                        };
                        let _ = turn.events.send(AgentEvent::Error(text));
                        continue;
                    }
                };
                let turn = next.take().expect("the turn being opened");
                updates.begin(turn.events.clone());
                let outcome = prompt(&cx, config, agent.images, &id, &turn).await;
                let events = updates.end();
                match (outcome, events) {
                    (Ok(StopReason::Cancelled), _) | (Ok(_), None) => {}
                    (Ok(_), Some(events)) => {
                        let _ = events.send(AgentEvent::Done);
                    }
                    (Err(error), Some(events)) if !agent_client_protocol::is_incoming_transport_closed(&error) => {
                        let text = if is_auth_required(&error) {
                            state.login_error()
                        } else {
                            format!("the agent failed: {}", error.message)
                        };
                        let _ = events.send(AgentEvent::Error(text));
                    }
                    (Err(error), events) => {
                        // The process is gone: put the sink back so `run` reports it.
                        updates.restore(events);
                        return Err(error);
                    }
                }
            }
        })
        .await
}

/// What the agent said it supports, from its `initialize` answer.
#[derive(Debug, Clone, Copy)]
struct AgentSupport {
    can_load: bool,
    http_mcp: bool,
    /// It takes `image` blocks in prompts.
    images: bool,
}

/// The ACP session for this gorp session: the one already open, else the
/// stored one loaded (to resume), else a new one (reported to be stored).
/// A session just opened gets the profile's MCP servers, and the mode and
/// model chosen for it.
async fn open_session(
    cx: &agent_client_protocol::v1::ConnectionTo<agent_client_protocol::Agent>,
    config: &AcpConfig,
    session: &mut Option<SessionId>,
    agent: AgentSupport,
    workspace: &Path,
    turn: &Turn,
    state: &AgentState,
) -> Result<SessionId, agent_client_protocol::Error> {
    if let Some(id) = session {
        return Ok(id.clone());
    }
    let servers = mcp::servers(&config.mcp_servers, agent.http_mcp);
    let mut opened = None;
    if let (true, Some(stored)) = (agent.can_load, &turn.request.agent_session_id) {
        let id = SessionId::new(stored.clone());
        // Replayed history arrives as updates while no turn is current, so it is dropped.
        let load = LoadSessionRequest::new(id.clone(), workspace.to_path_buf()).mcp_servers(servers.clone());
        match cx.send_request(load).block_task().await {
            Ok(loaded) => {
                tracing::info!(agent_session = %stored, "agent session resumed");
                state.opened(id.clone(), loaded.modes, loaded.config_options);
                opened = Some(id);
            }
            Err(error) if is_auth_required(&error) => return Err(error),
            Err(error) => {
                tracing::warn!(agent_session = %stored, error = %error.message, "could not resume; starting anew")
            }
        }
    }
    let id = match opened {
        Some(id) => id,
        None => {
            let new = NewSessionRequest::new(workspace.to_path_buf()).mcp_servers(servers);
            let created = cx.send_request(new).block_task().await?;
            let id = created.session_id;
            let _ = turn.events.send(AgentEvent::SessionId(id.to_string()));
            state.opened(id.clone(), created.modes, created.config_options);
            id
        }
    };
    *session = Some(id.clone());
    for (setting, default) in [(Setting::Mode, config.mode.as_deref()), (Setting::Model, config.model.as_deref())] {
        if let Some(value) = state.wanted(setting, default)
            && let Err(error) = state.send(cx, &id, setting, &value).await
        {
            tracing::warn!(%error, "could not apply the session's {}", setting.name());
            let _ = turn.events.send(AgentEvent::Progress(format!("⚠ {error}")));
        }
    }
    Ok(id)
}

/// The stop reason, after passing on the turn's token usage when the agent reported it.
fn report_usage(response: agent_client_protocol::v1::schema::PromptResponse, turn: &Turn) -> StopReason {
    if let Some(usage) = response.usage {
        let _ = turn
            .events
            .send(AgentEvent::Usage { input_tokens: usage.input_tokens, output_tokens: usage.output_tokens });
    }
    response.stop_reason
}

/// Sends the prompt; if gorp stops listening (the turn was cancelled), sends
/// `session/cancel` and waits a little for the agent to stop.
async fn prompt(
    cx: &agent_client_protocol::v1::ConnectionTo<agent_client_protocol::Agent>,
    config: &AcpConfig,
    images: bool,
    id: &SessionId,
    turn: &Turn,
) -> Result<StopReason, agent_client_protocol::Error> {
    // A slash command goes unframed, or the agent would not recognise it.
    let request = &turn.request;
    let text = &request.text;
    let framed =
        if text.starts_with('/') { text.clone() } else { config.prompt_template.render(&request.sender, text) };
    let blocks = super::content::prompt_blocks(framed, &request.files, images, &request.workspace).await;
    let response = cx.send_request(AcpPrompt::new(id.clone(), blocks)).block_task();
    tokio::pin!(response);
    tokio::select! {
        result = &mut response => return result.map(|r| report_usage(r, turn)),
        _ = turn.events.closed() => {}
    }
    cx.send_notification(CancelNotification::new(id.clone()))?;
    match tokio::time::timeout(CANCEL_GRACE, &mut response).await {
        Ok(result) => result.map(|r| r.stop_reason),
        Err(_) => {
            Err(agent_client_protocol::Error::internal_error().data("the agent did not stop after session/cancel"))
        }
    }
}
