//! The fake's Socket Mode side: `/link/?ticket=…`, hello, envelopes,
//! acks, redelivery to the next connection, silence and refresh.

use super::{APP, Command, FakeSlack, Pending};
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::HashMap;
use tokio::sync::mpsc;

fn envelope_frame(pending: &mut Pending) -> String {
    let retry = pending.deliveries;
    pending.deliveries += 1;
    json!({
        "envelope_id": pending.id, "type": pending.kind, "accepts_response_payload": false,
        "retry_attempt": retry, "retry_reason": if retry > 0 { "timeout" } else { "" },
        "payload": pending.payload,
    })
    .to_string()
}

impl FakeSlack {
    /// Queues an envelope and sends it on the current connection, if any.
    pub(super) fn push(&self, kind: &'static str, payload: Value) {
        let mut inner = self.inner();
        inner.next_envelope += 1;
        let id = format!("env-{:06}", inner.next_envelope);
        inner.pending.push(Pending { id, kind, payload, deliveries: 0 });
        if let Some((_, socket)) = inner.current.clone() {
            let last = inner.pending.len() - 1;
            let frame = envelope_frame(&mut inner.pending[last]);
            let _ = socket.send(Command::Send(frame));
        }
    }

    /// Registers a new connection as current and (re)sends every unacked envelope to it.
    pub(super) fn connect(&self) -> (usize, mpsc::UnboundedReceiver<Command>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut inner = self.inner();
        inner.connections += 1;
        let id = inner.connections;
        let hello = json!({
            "type": "hello", "num_connections": 1,
            "debug_info": { "host": "applink-fake", "build_number": 1, "approximate_connection_time": 18060 },
            "connection_info": { "app_id": APP },
        });
        let _ = tx.send(Command::Send(hello.to_string()));
        for pending in inner.pending.iter_mut() {
            let _ = tx.send(Command::Send(envelope_frame(pending)));
        }
        inner.current = Some((id, tx));
        (id, rx)
    }

    pub(super) fn disconnected(&self, id: usize) {
        let mut inner = self.inner();
        if inner.current.as_ref().is_some_and(|(current, _)| *current == id) {
            inner.current = None;
        }
    }

    pub(super) fn ack(&self, frame: &str) {
        let Ok(ack) = serde_json::from_str::<Value>(frame) else { return };
        let Some(id) = ack["envelope_id"].as_str() else { return };
        let mut inner = self.inner();
        inner.acked.push(id.to_owned());
        inner.pending.retain(|p| p.id != id);
    }
}

pub(super) async fn link(
    State(fake): State<FakeSlack>,
    Query(query): Query<HashMap<String, String>>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let ticket = query.get("ticket").cloned().unwrap_or_default();
    let valid = {
        let mut inner = fake.inner();
        let before = inner.tickets.len();
        inner.tickets.retain(|t| *t != ticket);
        inner.tickets.len() < before
    };
    if !valid {
        return (StatusCode::UNAUTHORIZED, "invalid ticket").into_response();
    }
    upgrade.on_upgrade(move |socket| serve_socket(fake, socket))
}

async fn serve_socket(fake: FakeSlack, mut socket: WebSocket) {
    let (id, mut commands) = fake.connect();
    loop {
        tokio::select! {
            frame = socket.recv() => match frame {
                Some(Ok(Message::Text(text))) => fake.ack(text.as_str()),
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                Some(Ok(_)) => {}
            },
            command = commands.recv() => match command {
                Some(Command::Send(frame)) => {
                    if socket.send(Message::Text(frame.into())).await.is_err() {
                        break;
                    }
                }
                Some(Command::Silent) => {
                    // Hold the socket open without reading or writing, until the client gives up.
                    let _hold = socket;
                    std::future::pending::<()>().await;
                    return;
                }
                Some(Command::Refresh) => {
                    let disconnect = json!({
                        "type": "disconnect", "reason": "refresh_requested",
                        "debug_info": { "host": "applink-fake" },
                    });
                    let _ = socket.send(Message::Text(disconnect.to_string().into())).await;
                    let _ = socket.send(Message::Close(None)).await;
                    break;
                }
                None => break,
            },
        }
    }
    fake.disconnected(id);
}
