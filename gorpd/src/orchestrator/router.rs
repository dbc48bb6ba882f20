//! The router: takes accepted messages in commit order and sends each to
//! DISPATCH (commands, and anything from an unbound channel) or to the
//! session its channel is bound to.

use super::{Orchestrator, OrchestratorResult, dispatch};
use crate::bus::{Inbound, NewResponse, ResponseKind};
use crate::store::{Commit, InboundState};
use tokio::sync::mpsc;
use tracing::Instrument;

impl Orchestrator {
    pub(super) async fn run_router(self, mut inbox: mpsc::UnboundedReceiver<Inbound>) {
        loop {
            let inbound = tokio::select! {
                biased;
                _ = self.inner.shutdown.cancelled() => break,
                inbound = inbox.recv() => match inbound { Some(inbound) => inbound, None => break },
            };
            let span = tracing::info_span!("route", message_id = inbound.id, channel = %inbound.channel);
            if let Err(error) = self.route(inbound).instrument(span).await {
                // The message stays `pending` and is routed again at the next start.
                tracing::error!(%error, "routing failed");
            }
        }
    }

    async fn route(&self, inbound: Inbound) -> OrchestratorResult<()> {
        let bound = self.session_of(&inbound.channel);
        match bound {
            Some(session) if !dispatch::is_command(&inbound.text) => {
                self.inner.store.route_to_session(inbound.id, &session).await?;
                tracing::debug!(session, "queued for session");
                self.enqueue_turn(&session, inbound).await;
                Ok(())
            }
            bound => self.answer_dispatch(inbound, bound).await,
        }
    }

    /// Runs a DISPATCH command and commits the reply to the asking channel only.
    async fn answer_dispatch(&self, inbound: Inbound, bound: Option<String>) -> OrchestratorResult<()> {
        let reply = dispatch::handle(self, &inbound, bound.as_deref()).await;
        let response = NewResponse {
            response_id: uuid::Uuid::new_v4().to_string(),
            session: None,
            kind: if reply.ok { ResponseKind::Complete } else { ResponseKind::Error },
            text: reply.text,
            targets: vec![inbound.channel.clone()],
            reply_to: inbound.reply_ref(),
            permission: None,
        };
        let commit = Commit { history: None, finish: Some((inbound.id, InboundState::Done)) };
        self.inner.bus.append(response, commit).await?;
        Ok(())
    }
}
