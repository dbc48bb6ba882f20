//! One agent process and its ACP connection: spawn the agent in the session's
//! workspace, initialize, then run turns one at a time until the turn queue
//! closes, the process idles out, or the agent dies. Session updates become
//! agent events of the running turn; permission requests go to gorp (or are
//! approved at once when the profile says so); file reads and writes are
//! confined to the workspace.

use super::AcpConfig;
use super::fs;
use super::stderr::StderrTail;
use crate::agent::{AgentEvent, PermissionAsk, PermissionDecision, PermissionOption, PromptRequest};
use agent_client_protocol::schema::ProtocolVersion;
use agent_client_protocol::v1::schema::{
    CancelNotification, ClientCapabilities, ContentBlock, FileSystemCapabilities, InitializeRequest,
    LoadSessionRequest, NewSessionRequest, PermissionOptionKind, PromptRequest as AcpPrompt, ReadTextFileRequest,
    ReadTextFileResponse, RequestPermissionOutcome, RequestPermissionRequest, RequestPermissionResponse,
    SelectedPermissionOutcome, SessionId, SessionNotification, SessionUpdate, StopReason, TextContent,
    WriteTextFileRequest, WriteTextFileResponse,
};
use agent_client_protocol::{ByteStreams, Client};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio_util::compat::{TokioAsyncReadCompatExt, TokioAsyncWriteCompatExt};

/// One prompt for the agent process, with where its events go.
pub(super) struct Turn {
    pub(super) request: PromptRequest,
    pub(super) events: mpsc::UnboundedSender<AgentEvent>,
}

/// The events sink of the turn in progress, shared with the protocol handlers.
type CurrentTurn = Arc<Mutex<Option<mpsc::UnboundedSender<AgentEvent>>>>;

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
) {
    let tail = StderrTail::default();
    let mut next: Option<Turn> = None;
    loop {
        let current: CurrentTurn = Arc::default();
        let failure = match serve(&config, &session, &workspace, &mut next, &mut turns, &current, &tail).await {
            Ok(()) => return,
            Err(failure) => failure,
        };
        let running = current.lock().expect("turn lock").take();
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
    current: &CurrentTurn,
    tail: &StderrTail,
) -> Result<(), String> {
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
    let transport = ByteStreams::new(stdin.compat_write(), stdout.compat());
    let connection = connect(config, workspace, next, turns, current, transport);
    // The process is watched, not just its pipes: one that dies between turns is noticed at once.
    let (status, error) = tokio::select! {
        result = connection => match result {
            Ok(()) => return Ok(()),
            Err(error) => (tokio::time::timeout(EXIT_GRACE, child.wait()).await.ok().and_then(Result::ok), Some(error)),
        },
        status = child.wait() => (status.ok(), None),
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

async fn connect(
    config: &AcpConfig,
    workspace: &Path,
    next: &mut Option<Turn>,
    turns: &mut mpsc::UnboundedReceiver<Turn>,
    current: &CurrentTurn,
    transport: impl agent_client_protocol::ConnectTo<Client> + 'static,
) -> Result<(), agent_client_protocol::Error> {
    let updates = current.clone();
    let asks = current.clone();
    let auto_approve = config.auto_approve;
    let (read_root, write_root) = (workspace.to_path_buf(), workspace.to_path_buf());
    Client
        .v1()
        .name("gorp")
        .on_receive_notification(
            async move |notification: SessionNotification, _cx| {
                forward_update(&updates, notification.update);
                Ok(())
            },
            agent_client_protocol::on_receive_notification!(),
        )
        .on_receive_request(
            async move |request: RequestPermissionRequest, responder, cx| {
                let Some(decision) = ask_gorp(&asks, &request, auto_approve) else {
                    return responder.respond(RequestPermissionResponse::new(RequestPermissionOutcome::Cancelled));
                };
                // Waiting for a person must not hold the connection's message loop.
                cx.spawn(async move {
                    let outcome = match decision.await {
                        Ok(PermissionDecision::Selected(id)) => {
                            RequestPermissionOutcome::Selected(SelectedPermissionOutcome::new(id))
                        }
                        _ => RequestPermissionOutcome::Cancelled,
                    };
                    responder.respond(RequestPermissionResponse::new(outcome))
                })
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            async move |request: ReadTextFileRequest, responder, _cx| match fs::read_text(
                &read_root,
                &request.path,
                request.line,
                request.limit,
            ) {
                Ok(text) => responder.respond(ReadTextFileResponse::new(text)),
                Err(reason) => {
                    responder.respond_with_error(agent_client_protocol::Error::invalid_params().data(reason))
                }
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            async move |request: WriteTextFileRequest, responder, _cx| match fs::write_text(
                &write_root,
                &request.path,
                &request.content,
            ) {
                Ok(()) => responder.respond(WriteTextFileResponse::new()),
                Err(reason) => {
                    responder.respond_with_error(agent_client_protocol::Error::invalid_params().data(reason))
                }
            },
            agent_client_protocol::on_receive_request!(),
        )
        .connect_with(transport, async |cx| {
            let capabilities =
                ClientCapabilities::new().fs(FileSystemCapabilities::new().read_text_file(true).write_text_file(true));
            let init = cx
                .send_request(InitializeRequest::new(ProtocolVersion::V1).client_capabilities(capabilities))
                .block_task()
                .await?;
            let can_load = init.agent_capabilities.load_session;
            let mut session: Option<SessionId> = None;
            loop {
                if next.is_none() {
                    *next = tokio::select! {
                        turn = turns.recv() => match turn { Some(turn) => Some(turn), None => return Ok(()) },
                        _ = tokio::time::sleep(config.idle_timeout) => {
                            tracing::info!(command = %config.command, "agent idle; stopping its process");
                            return Ok(());
                        }
                    };
                }
                // The turn stays in `next` until its session is open, so a death meanwhile reports to it.
                let opening = next.as_ref().expect("a turn was just queued");
                let id = match open_session(&cx, &mut session, can_load, workspace, opening).await {
                    Ok(id) => id,
                    Err(error) if agent_client_protocol::is_incoming_transport_closed(&error) => return Err(error),
                    Err(error) => {
                        let turn = next.take().expect("the turn being opened");
                        let _ = turn.events.send(AgentEvent::Error(format!("the agent refused the session: {error}")));
                        continue;
                    }
                };
                let turn = next.take().expect("the turn being opened");
                *current.lock().expect("turn lock") = Some(turn.events.clone());
                let outcome = prompt(&cx, config, &id, &turn).await;
                let events = current.lock().expect("turn lock").take();
                match (outcome, events) {
                    (Ok(StopReason::Cancelled), _) | (Ok(_), None) => {}
                    (Ok(_), Some(events)) => {
                        let _ = events.send(AgentEvent::Done);
                    }
                    (Err(error), Some(events)) if !agent_client_protocol::is_incoming_transport_closed(&error) => {
                        let _ = events.send(AgentEvent::Error(format!("the agent failed: {}", error.message)));
                    }
                    (Err(error), events) => {
                        // The process is gone: put the sink back so `run` reports it.
                        *current.lock().expect("turn lock") = events;
                        return Err(error);
                    }
                }
            }
        })
        .await
}

/// The ACP session for this gorp session: the one already open, else the
/// stored one loaded (to resume), else a new one (reported to be stored).
async fn open_session(
    cx: &agent_client_protocol::v1::ConnectionTo<agent_client_protocol::Agent>,
    session: &mut Option<SessionId>,
    can_load: bool,
    workspace: &Path,
    turn: &Turn,
) -> Result<SessionId, agent_client_protocol::Error> {
    if let Some(id) = session {
        return Ok(id.clone());
    }
    if let (true, Some(stored)) = (can_load, &turn.request.agent_session_id) {
        let id = SessionId::new(stored.clone());
        // Replayed history arrives as updates while no turn is current, so it is dropped.
        match cx.send_request(LoadSessionRequest::new(id.clone(), workspace.to_path_buf())).block_task().await {
            Ok(_) => {
                tracing::info!(agent_session = %stored, "agent session resumed");
                *session = Some(id.clone());
                return Ok(id);
            }
            Err(error) => {
                tracing::warn!(agent_session = %stored, error = %error.message, "could not resume; starting anew")
            }
        }
    }
    let created = cx.send_request(NewSessionRequest::new(workspace.to_path_buf())).block_task().await?;
    let id = created.session_id;
    let _ = turn.events.send(AgentEvent::SessionId(id.to_string()));
    *session = Some(id.clone());
    Ok(id)
}

/// Sends the prompt; if gorp stops listening (the turn was cancelled), sends
/// `session/cancel` and waits a little for the agent to stop.
async fn prompt(
    cx: &agent_client_protocol::v1::ConnectionTo<agent_client_protocol::Agent>,
    config: &AcpConfig,
    id: &SessionId,
    turn: &Turn,
) -> Result<StopReason, agent_client_protocol::Error> {
    let framed = config.prompt_template.render(&turn.request.sender, &turn.request.text);
    let text = ContentBlock::Text(TextContent::new(framed));
    let response = cx.send_request(AcpPrompt::new(id.clone(), vec![text])).block_task();
    tokio::pin!(response);
    tokio::select! {
        result = &mut response => return result.map(|r| r.stop_reason),
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

/// Turns a session update into an event of the turn in progress.
fn forward_update(current: &CurrentTurn, update: SessionUpdate) {
    let event = match update {
        SessionUpdate::AgentMessageChunk(chunk) => match chunk.content {
            ContentBlock::Text(text) => AgentEvent::Chunk(text.text),
            _ => return,
        },
        SessionUpdate::ToolCall(call) => AgentEvent::Progress(format!("🔧 {} ({:?})", call.title, call.status)),
        SessionUpdate::ToolCallUpdate(update) => match update.fields.status {
            Some(status) => {
                let what = update.fields.title.unwrap_or_else(|| update.tool_call_id.to_string());
                AgentEvent::Progress(format!("🔧 {what}: {status:?}"))
            }
            None => return,
        },
        SessionUpdate::Plan(plan) => {
            let steps: Vec<_> = plan.entries.iter().map(|e| format!("{:?}: {}", e.status, e.content)).collect();
            AgentEvent::Progress(format!("📋 plan\n{}", steps.join("\n")))
        }
        _ => return,
    };
    if let Some(events) = current.lock().expect("turn lock").as_ref() {
        let _ = events.send(event);
    }
}

/// Hands a permission request to gorp (or approves it at once with
/// `auto_approve`); `None` when no turn is listening.
fn ask_gorp(
    current: &CurrentTurn,
    request: &RequestPermissionRequest,
    auto_approve: bool,
) -> Option<oneshot::Receiver<PermissionDecision>> {
    let options: Vec<PermissionOption> = request
        .options
        .iter()
        .map(|o| PermissionOption {
            id: o.option_id.to_string(),
            label: o.name.clone(),
            kind: kind_name(&o.kind).to_owned(),
        })
        .collect();
    let (reply, decision) = oneshot::channel();
    let title = request.tool_call.fields.title.clone().unwrap_or_else(|| request.tool_call.tool_call_id.to_string());
    if auto_approve {
        let allow = options
            .iter()
            .find(|o| o.kind == "allow_once")
            .or_else(|| options.iter().find(|o| o.kind == "allow_always"));
        let decision_now = allow.map_or(PermissionDecision::Cancelled, |o| PermissionDecision::Selected(o.id.clone()));
        if let Some(events) = current.lock().expect("turn lock").as_ref() {
            let _ = events.send(AgentEvent::Progress(format!("🔓 auto-approved: {title}")));
        }
        let _ = reply.send(decision_now);
        return Some(decision);
    }
    let events = current.lock().expect("turn lock").clone()?;
    events.send(AgentEvent::Permission(PermissionAsk { title, options, reply })).ok()?;
    Some(decision)
}

fn kind_name(kind: &PermissionOptionKind) -> &'static str {
    match kind {
        PermissionOptionKind::AllowOnce => "allow_once",
        PermissionOptionKind::AllowAlways => "allow_always",
        PermissionOptionKind::RejectOnce => "reject_once",
        PermissionOptionKind::RejectAlways => "reject_always",
        _ => "other",
    }
}
