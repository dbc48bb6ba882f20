//! Intake: commits published messages in batches, one transaction (and one
//! fsync) for everything that arrived together, then answers each submitter
//! and hands the new messages on in commit order.
//!
//! Routing in the same commit: when the router has nothing waiting, the
//! intake routes a batch's messages itself, up to its first command (a
//! command can change bindings, so it and everything after it go through the
//! router). Those messages are stored already queued for their session and
//! go straight to the actors, which saves the router's commit on the common
//! path. With the router idle, nothing routed earlier can still be waiting,
//! so per-session order is kept.
//!
//! Submissions are queued in the order `submit` is called, so one Publish
//! stream's messages are committed, acknowledged and routed in its order.
//! An answer is sent only after its message is committed.

use super::{Accepted, Orchestrator, OrchestratorError, OrchestratorResult, dispatch};
use crate::bus::{Activity, Inbound};
use crate::store::{NewInbound, StoreResult};
use std::sync::atomic::Ordering;
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;

/// Submissions waiting for the intake task before `submit` waits for room.
pub(super) const QUEUE: usize = 4096;
/// Most messages committed in one transaction.
const MAX_BATCH: usize = 512;

/// The answer to one submission, sent once its batch is committed.
pub type Receipt = oneshot::Receiver<OrchestratorResult<Accepted>>;

/// A message waiting to be committed.
#[derive(Debug)]
pub(super) struct IntakeRequest {
    new: NewInbound,
    reply: oneshot::Sender<OrchestratorResult<Accepted>>,
}

impl Orchestrator {
    /// Validates a published message and queues it for commit; the receipt
    /// resolves once it is committed (or found to be a duplicate).
    pub async fn submit(&self, new: NewInbound) -> OrchestratorResult<Receipt> {
        if self.inner.shutdown.is_cancelled() {
            return Err(OrchestratorError::ShuttingDown);
        }
        self.check_inbound(&new)?;
        let (reply, receipt) = oneshot::channel();
        self.inner.intake.send(IntakeRequest { new, reply }).await.map_err(|_| OrchestratorError::ShuttingDown)?;
        Ok(receipt)
    }

    pub(super) async fn run_intake(self, mut queue: mpsc::Receiver<IntakeRequest>) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        loop {
            let first = tokio::select! {
                biased;
                _ = self.inner.shutdown.cancelled() => break,
                request = queue.recv() => match request { Some(request) => request, None => break },
            };
            batch.push(first);
            while batch.len() < MAX_BATCH {
                match queue.try_recv() {
                    Ok(request) => batch.push(request),
                    Err(_) => break,
                }
            }
            self.commit_batch(std::mem::take(&mut batch)).await;
        }
        // Dropping what is still queued answers its submitters "shutting down": nothing uncommitted is acknowledged.
    }

    /// The session each message of the batch can be routed to now, if any:
    /// none at all while the router has work, and none from the first command on.
    fn route_in_intake(&self, batch: &[IntakeRequest]) -> Vec<Option<String>> {
        let mut routes = vec![None; batch.len()];
        if self.inner.router_backlog.load(Ordering::SeqCst) > 0 {
            return routes;
        }
        for (route, request) in routes.iter_mut().zip(batch) {
            if dispatch::is_command(&request.new.text) {
                break;
            }
            *route = self.session_of(&request.new.channel);
        }
        routes
    }

    async fn commit_batch(&self, batch: Vec<IntakeRequest>) {
        let routes = self.route_in_intake(&batch);
        let rows = || batch.iter().zip(&routes).map(|(r, session)| (r.new.clone(), session.clone()));
        let results = match self.inner.store.accept_inbound_batch(rows().collect()).await {
            Ok(results) => results.into_iter().map(Ok).collect(),
            Err(error) => {
                // One bad row must not fail its neighbours: retry one by one, each with its own outcome.
                tracing::warn!(%error, size = batch.len(), "batch commit failed; committing one by one");
                let mut results: Vec<StoreResult<Option<Inbound>>> = Vec::with_capacity(batch.len());
                for row in rows() {
                    let one = self.inner.store.accept_inbound_batch(vec![row]).await;
                    results.push(one.map(|mut one| one.pop().flatten()));
                }
                results
            }
        };
        for ((request, result), route) in batch.into_iter().zip(results).zip(routes) {
            let outcome = match result {
                Ok(Some(inbound)) => {
                    let id = inbound.id;
                    tracing::debug!(message_id = id, channel = %inbound.channel, session = ?route, "message accepted");
                    self.inner.bus.report(Activity::Message(inbound.clone()));
                    let span = super::router::route_span(&inbound, route.as_deref());
                    match route {
                        Some(session) => self.enqueue_turn(&session, inbound).instrument(span).await,
                        None => {
                            self.inner.router_backlog.fetch_add(1, Ordering::SeqCst);
                            // A full router queue holds the intake here, so acks slow down: backpressure.
                            let _ = self.inner.router.send(inbound).instrument(span).await;
                        }
                    }
                    Ok(Accepted::New(id))
                }
                Ok(None) => Ok(Accepted::Duplicate),
                Err(error) => Err(error.into()),
            };
            // The submitter may have gone away; its message is committed either way.
            let _ = request.reply.send(outcome);
        }
    }
}
