//! The fake's Socket Mode side: `/link/?ticket=…`, hello, envelopes,
//! acks, redelivery (to the next connection, or on Slack's retry schedule),
//! silence and refresh.

use super::{APP, Command, FakeSlack, Inner, Pending};
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// How often the retry schedule is checked.
const RETRY_TICK: Duration = Duration::from_millis(20);

fn envelope_frame(pending: &mut Pending) -> String {
    let retry = pending.attempts;
    pending.deliveries += 1;
    pending.attempts += 1;
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
        let pending = Pending { id, kind, payload, deliveries: 0, attempts: 0, last_attempt: None, retry_at: None };
        inner.pending.push(pending);
        let last = inner.pending.len() - 1;
        attempt(&mut inner, last);
    }

    /// Slack's retry schedule: every tick, retries what is due and gives up
    /// what timed out after its last retry.
    pub(super) async fn drive_retries(self) {
        loop {
            tokio::time::sleep(RETRY_TICK).await;
            let mut inner = self.inner();
            let Some(schedule) = inner.schedule.clone() else { return };
            let now = Instant::now();
            let mut i = 0;
            while i < inner.pending.len() {
                let pending = &mut inner.pending[i];
                if pending.retry_at.is_some_and(|at| at <= now) {
                    pending.retry_at = None;
                    attempt(&mut inner, i);
                } else if pending.retry_at.is_none()
                    && pending.last_attempt.is_some_and(|at| now >= at + schedule.ack_timeout)
                {
                    match schedule.retries.get(pending.attempts as usize - 1) {
                        Some(wait) => pending.retry_at = Some(now + *wait),
                        None => {
                            let given_up = inner.pending.remove(i);
                            inner.lost.push(given_up.id);
                            continue;
                        }
                    }
                }
                i += 1;
            }
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
        // A patient Slack resends what is unacked to a new connection; with a
        // schedule, only retries do.
        if inner.schedule.is_none() {
            for pending in inner.pending.iter_mut() {
                let _ = tx.send(Command::Send(envelope_frame(pending)));
            }
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
        let sent = inner.pending.iter().find(|p| p.id == id).and_then(|p| p.last_attempt);
        if let Some(sent) = sent {
            inner.ack_latencies.push(sent.elapsed());
        }
        inner.pending.retain(|p| p.id != id);
    }
}

/// One attempt at delivering envelope `i`: on the current socket if there
/// is one; with a schedule an attempt without a socket counts (and times out).
fn attempt(inner: &mut Inner, i: usize) {
    let socket = inner.current.as_ref().map(|(_, socket)| socket.clone());
    let pending = &mut inner.pending[i];
    match socket {
        Some(socket) => {
            let _ = socket.send(Command::Send(envelope_frame(pending)));
        }
        None if inner.schedule.is_some() => pending.attempts += 1,
        None => return,
    }
    pending.last_attempt = Some(Instant::now());
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
