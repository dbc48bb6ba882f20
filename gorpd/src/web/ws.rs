//! The web chat's WebSocket (`GET /ws?channel=<id>&csrf=<token>&after=<seq>`):
//! the browser is channel `web:<id>`.
//!
//! Inbound `{"type":"send","text","id"}` frames are submitted to the
//! orchestrator exactly like a gateway's Publish (platform `web`, the client's
//! id as message id, so a resend after a reconnect is acked `duplicate`).
//! Outbound: the responses for this channel after `after` are replayed from
//! the response log, then `{"type":"caught_up"}`, then live chunks and final
//! responses, all through `Bus::subscribe("web", after)` filtered to this
//! channel, so the hand-over has no gap and no duplicate.
//!
//! Besides, `{"type":"sessions_changed"}` tells the page to reload its
//! session list whenever the fleet's activity feed reports something (a
//! message, an answer, a binding, a session created or deleted): one frame
//! for everything that arrived together, so every open tab stays current.

use super::chat::PLATFORM;
use super::login::ApiSession;
use super::{WebError, WebState};
use crate::bus::{Activity, ChannelRef, Chunk, Delivered, Response};
use crate::orchestrator::{Accepted, OrchestratorError};
use crate::store::NewInbound;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::response::Response as HttpResponse;
use serde_json::{Value, json};
use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};

/// The query of the upgrade request.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct WsQuery {
    channel: String,
    csrf: String,
    #[serde(default)]
    after: u64,
}

/// A frame from the browser.
#[derive(Debug, serde::Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ClientFrame {
    /// A chat message with the client's id for it, and the files uploaded for it.
    Send {
        text: String,
        id: String,
        #[serde(default)]
        attachments: Vec<FrameAttachment>,
    },
}

/// A file a frame names: uploaded first with `POST /api/files`.
#[derive(Debug, serde::Deserialize)]
struct FrameAttachment {
    name: String,
    #[serde(default)]
    media_type: String,
    sha256: String,
}

impl From<FrameAttachment> for crate::files::AttachmentIn {
    fn from(file: FrameAttachment) -> Self {
        Self { name: file.name, media_type: file.media_type, sha256: file.sha256, ..Self::default() }
    }
}

/// `GET /ws`: checks the session and CSRF token, then upgrades.
pub(crate) async fn upgrade(
    State(state): State<WebState>,
    session: ApiSession,
    Query(query): Query<WsQuery>,
    ws: WebSocketUpgrade,
) -> Result<HttpResponse, WebError> {
    session.check_csrf(&query.csrf)?;
    let channel = super::chat::web_channel(query.channel)?;
    let max = state.orchestrator.max_text_bytes() + 4096;
    Ok(ws.max_message_size(max).on_upgrade(move |socket| {
        let tasks = state.tasks.clone();
        // Tracked, so shutdown waits for the socket to close.
        let task = tasks.spawn(run(state, socket, channel, query.after));
        async move {
            let _ = task.await;
        }
    }))
}

/// Serves one socket until the browser leaves or gorpd stops.
async fn run(state: WebState, mut socket: WebSocket, channel: ChannelRef, after: u64) {
    let mut subscription = state.orchestrator.bus().subscribe(PLATFORM, after);
    let mut activity = state.orchestrator.bus().watch();
    tracing::debug!(%channel, after, "web socket open");
    loop {
        let outgoing = tokio::select! {
            _ = state.shutdown.cancelled() => {
                let _ = socket.send(Message::Close(None)).await;
                break;
            }
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Text(text))) => Some(handle_frame(&state, &channel, text.as_str()).await),
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => None,
            },
            changed = activity.recv() => match changed {
                Ok(_) | Err(RecvError::Lagged(_)) => Some(sessions_changed(&mut activity)),
                Err(RecvError::Closed) => break,
            },
            delivered = subscription.next() => match delivered {
                Ok(delivered) => frame_for(&delivered, &channel),
                Err(error) => {
                    tracing::warn!(%error, %channel, "web delivery stream ended");
                    break;
                }
            },
        };
        if let Some(frame) = outgoing
            && socket.send(Message::Text(frame.to_string().into())).await.is_err()
        {
            break;
        }
    }
    tracing::debug!(%channel, "web socket closed");
}

/// The frame that tells the page to reload its session list; takes what else
/// is already waiting in the feed, which the same reload covers.
fn sessions_changed(activity: &mut broadcast::Receiver<Activity>) -> Value {
    while !matches!(activity.try_recv(), Err(TryRecvError::Empty | TryRecvError::Closed)) {}
    json!({ "type": "sessions_changed" })
}

/// Publishes one browser frame; returns the ack frame.
async fn handle_frame(state: &WebState, channel: &ChannelRef, text: &str) -> Value {
    let ClientFrame::Send { text, id, attachments } = match serde_json::from_str::<ClientFrame>(text) {
        Ok(frame) => frame,
        Err(error) => return ack(None, "rejected", Some(format!("malformed frame: {error}"))),
    };
    let attachments = match state.orchestrator.files().accept(attachments.into_iter().map(Into::into).collect()).await {
        Ok(attachments) => attachments,
        Err(error) => return ack(Some(&id), "rejected", Some(error.to_string())),
    };
    let new = NewInbound {
        channel: channel.clone(),
        message_id: Some(id.clone()),
        sender: "web".to_owned(),
        text,
        attachments,
        trace_context: gorp_telemetry::current_traceparent(),
    };
    let outcome = match state.orchestrator.submit(new).await {
        Ok(receipt) => receipt.await.unwrap_or(Err(OrchestratorError::ShuttingDown)),
        Err(error) => Err(error),
    };
    match outcome {
        Ok(Accepted::New(_)) => ack(Some(&id), "accepted", None),
        Ok(Accepted::Duplicate) => ack(Some(&id), "duplicate", None),
        Err(OrchestratorError::Invalid(reason)) => ack(Some(&id), "rejected", Some(reason)),
        Err(error) => {
            tracing::warn!(%error, "web message not accepted");
            ack(Some(&id), "rejected", Some(error.to_string()))
        }
    }
}

fn ack(id: Option<&str>, status: &str, error: Option<String>) -> Value {
    json!({ "type": "ack", "id": id, "status": status, "error": error })
}

/// The frame for a delivery, if it is for `channel`.
fn frame_for(delivered: &Delivered, channel: &ChannelRef) -> Option<Value> {
    match delivered {
        Delivered::Response(response) if response.targets.contains(channel) => Some(response_frame(response)),
        Delivered::Chunk(chunk) if chunk.targets.contains(channel) => Some(chunk_frame(chunk)),
        Delivered::CaughtUp => Some(json!({ "type": "caught_up" })),
        _ => None,
    }
}

fn chunk_frame(chunk: &Chunk) -> Value {
    json!({ "type": "chunk", "response_id": chunk.response_id, "text": chunk.text, "progress": chunk.progress })
}

fn response_frame(response: &Response) -> Value {
    json!({
        "type": "response",
        "seq": response.seq,
        "response_id": response.response_id,
        "session": response.session,
        "dispatch": response.session.is_none(),
        "kind": response.kind.as_str(),
        "text": response.text,
        "html": super::markdown::to_html(&response.text),
        "permission": response.permission,
        "attachments": response.attachments.iter().map(super::files::attachment_json).collect::<Vec<_>>(),
    })
}
