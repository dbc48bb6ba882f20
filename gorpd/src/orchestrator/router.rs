//! The router: takes accepted messages in commit order and sends each to
//! DISPATCH (commands, and anything from an unbound channel) or to the
//! session its channel is bound to.
//!
//! It takes whatever is waiting at once: consecutive messages for sessions
//! are marked queued in one write (one group commit) and then handed to
//! their actors in order; a DISPATCH command runs in its place in the
//! sequence, after the messages before it were handed on, so a `!join`
//! affects exactly the messages after it.

use super::{Orchestrator, OrchestratorResult, dispatch};
use crate::bus::{Inbound, NewResponse, ResponseKind};
use crate::store::{Commit, InboundState};
use tokio::sync::mpsc;
use tracing::Instrument;

/// Accepted messages waiting for the router before the intake waits for room.
pub(super) const QUEUE: usize = 4096;
/// Most messages the router takes at once.
const BATCH: usize = 512;

/// The span of handing `inbound` to `session` (none: to the router), in
/// the trace the message arrived in.
pub(super) fn route_span(inbound: &Inbound, session: Option<&str>) -> tracing::Span {
    let span = tracing::debug_span!(
        "route",
        session = session.unwrap_or_default(),
        message_id = inbound.id,
        platform = %inbound.channel.platform,
        channel = %inbound.channel,
    );
    gorp_telemetry::continue_trace(&span, inbound.trace_context.as_deref());
    span
}

impl Orchestrator {
    pub(super) async fn run_router(self, mut inbox: mpsc::Receiver<Inbound>) {
        let mut received = Vec::with_capacity(BATCH);
        loop {
            let count = tokio::select! {
                biased;
                _ = self.inner.shutdown.cancelled() => break,
                count = inbox.recv_many(&mut received, BATCH) => count,
            };
            if count == 0 {
                break;
            }
            if let Err(error) = self.route_all(std::mem::take(&mut received)).await {
                // The messages stay `pending` and are routed again at the next start.
                tracing::error!(%error, "routing failed");
            }
            self.inner.router_backlog.fetch_sub(count, std::sync::atomic::Ordering::SeqCst);
        }
    }

    /// Routes `messages` in order: runs of session messages in one write each.
    async fn route_all(&self, messages: Vec<Inbound>) -> OrchestratorResult<()> {
        let mut to_sessions: Vec<(Inbound, String)> = Vec::new();
        for inbound in messages {
            match self.session_of(&inbound.channel) {
                Some(session) if !dispatch::is_command(&inbound.text) => to_sessions.push((inbound, session)),
                bound => {
                    self.queue_for_sessions(std::mem::take(&mut to_sessions)).await?;
                    let span = tracing::info_span!("dispatch", message_id = inbound.id, channel = %inbound.channel);
                    gorp_telemetry::continue_trace(&span, inbound.trace_context.as_deref());
                    self.answer_dispatch(inbound, bound).instrument(span).await?;
                }
            }
        }
        self.queue_for_sessions(to_sessions).await
    }

    /// Marks messages queued for their sessions (one commit), then hands each to its actor in order.
    async fn queue_for_sessions(&self, routed: Vec<(Inbound, String)>) -> OrchestratorResult<()> {
        if routed.is_empty() {
            return Ok(());
        }
        let routes = routed.iter().map(|(inbound, session)| (inbound.id, session.clone())).collect();
        self.inner.store.route_to_sessions(routes).await?;
        for (inbound, session) in routed {
            let span = route_span(&inbound, Some(&session));
            tracing::debug!(parent: &span, session, message_id = inbound.id, "queued for session");
            self.enqueue_turn(&session, inbound).instrument(span).await;
        }
        Ok(())
    }

    /// Runs a DISPATCH command and commits the reply to the asking channel only.
    async fn answer_dispatch(&self, inbound: Inbound, bound: Option<String>) -> OrchestratorResult<()> {
        // Every write the command makes also marks it applied: a crash after
        // its effect and before this reply never runs it again.
        let store = &self.inner.store;
        let reply = store.as_command(inbound.id, dispatch::handle(self, &inbound, bound.as_deref())).await;
        self.commit_reply(&inbound, reply).await
    }

    /// Commits DISPATCH's reply to the asking channel only, finishing the command's message.
    pub(super) async fn commit_reply(&self, inbound: &Inbound, reply: dispatch::Reply) -> OrchestratorResult<()> {
        let response = NewResponse {
            response_id: uuid::Uuid::new_v4().to_string(),
            session: None,
            kind: if reply.ok { ResponseKind::Complete } else { ResponseKind::Error },
            text: reply.text,
            targets: vec![inbound.channel.clone()],
            reply_to: inbound.reply_ref(),
            permission: None,
            attachments: Vec::new(),
            trace_context: gorp_telemetry::current_traceparent(),
        };
        let commit = Commit { finish: Some((inbound.id, InboundState::Done)), ..Commit::default() };
        self.inner.bus.append(response, commit).await?;
        Ok(())
    }
}
