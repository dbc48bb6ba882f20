//! The requests an ACP agent makes of gorp, each answered here: permission
//! requests (handed to the turn, or approved at once with `auto_approve`),
//! file reads and writes confined to the workspace (`fs`), and terminals
//! (`terminal`). Anything that waits for a person or a process runs off the
//! connection's message loop, so the agent's other messages keep flowing.

use super::fs;
use super::terminal::{Progress, Terminals};
use super::updates::TurnUpdates;
use crate::agent::{AgentEvent, PermissionAsk, PermissionDecision, PermissionOption};
use agent_client_protocol::v1::schema::{
    CreateTerminalRequest, CreateTerminalResponse, PermissionOptionKind, ReadTextFileRequest, ReadTextFileResponse,
    RequestPermissionOutcome, RequestPermissionRequest, RequestPermissionResponse, SelectedPermissionOutcome,
    TerminalOutputRequest, TerminalOutputResponse, WaitForTerminalExitRequest, WaitForTerminalExitResponse,
    WriteTextFileRequest, WriteTextFileResponse,
};
use agent_client_protocol::v1::{ConnectionTo, Responder};
use agent_client_protocol::{Agent, Error};
use std::path::Path;
use std::sync::Arc;
use tokio::sync::oneshot;

/// The error an agent gets for a request gorp refuses; `reason` says why.
pub(super) fn invalid(reason: String) -> Error {
    Error::invalid_params().data(reason)
}

/// Hands a permission request to the turn (or approves it at once).
pub(super) fn permission(
    updates: &TurnUpdates,
    request: &RequestPermissionRequest,
    responder: Responder<RequestPermissionResponse>,
    cx: &ConnectionTo<Agent>,
    auto_approve: bool,
) -> Result<(), Error> {
    let Some(decision) = ask_gorp(updates, request, auto_approve) else {
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
}

/// Hands a permission request to gorp (or approves it at once with
/// `auto_approve`); `None` when no turn is listening.
fn ask_gorp(
    updates: &TurnUpdates,
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
        updates.send(AgentEvent::Progress(format!("🔓 auto-approved: {title}")));
        let _ = reply.send(decision_now);
        return Some(decision);
    }
    let events = updates.sink()?;
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

/// `fs/read_text_file`, inside the workspace.
pub(super) fn read_file(workspace: &Path, request: &ReadTextFileRequest) -> Result<ReadTextFileResponse, Error> {
    fs::read_text(workspace, &request.path, request.line, request.limit).map(ReadTextFileResponse::new).map_err(invalid)
}

/// `fs/write_text_file`, inside the workspace.
pub(super) fn write_file(workspace: &Path, request: &WriteTextFileRequest) -> Result<WriteTextFileResponse, Error> {
    fs::write_text(workspace, &request.path, &request.content).map(|()| WriteTextFileResponse::new()).map_err(invalid)
}

/// `terminal/create`: starts an allowed command, its output streamed to the running turn.
pub(super) fn create_terminal(
    terminals: &Terminals,
    updates: &Arc<TurnUpdates>,
    request: &CreateTerminalRequest,
) -> Result<CreateTerminalResponse, Error> {
    let shown = updates.clone();
    let progress: Progress = Arc::new(move |line| {
        shown.send(AgentEvent::Progress(line));
    });
    let env: Vec<(String, String)> = request.env.iter().map(|v| (v.name.clone(), v.value.clone())).collect();
    let created = terminals.create(
        &request.command,
        &request.args,
        &env,
        request.cwd.as_deref(),
        request.output_byte_limit,
        progress,
    );
    if let Err(reason) = &created {
        tracing::info!(command = %request.command, %reason, "agent terminal refused");
        updates.send(AgentEvent::Progress(format!("🚫 {reason}")));
    }
    created.map(CreateTerminalResponse::new).map_err(invalid)
}

/// `terminal/output`.
pub(super) fn terminal_output(
    terminals: &Terminals,
    request: &TerminalOutputRequest,
) -> Result<TerminalOutputResponse, Error> {
    let (output, truncated, exit) = terminals.output(&request.terminal_id.0).map_err(invalid)?;
    Ok(TerminalOutputResponse::new(output, truncated).exit_status(exit))
}

/// `terminal/wait_for_exit`, answered off the message loop when the command ends.
pub(super) fn wait_for_terminal(
    terminals: &Terminals,
    request: &WaitForTerminalExitRequest,
    responder: Responder<WaitForTerminalExitResponse>,
    cx: &ConnectionTo<Agent>,
) -> Result<(), Error> {
    match terminals.wait(&request.terminal_id.0) {
        Ok(exit) => cx.spawn(async move { responder.respond(WaitForTerminalExitResponse::new(exit.await)) }),
        Err(reason) => responder.respond_with_error(invalid(reason)),
    }
}
