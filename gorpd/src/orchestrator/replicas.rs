//! This gorpd as one of several replicas on one Postgres store: which
//! sessions it owns, taking over the work of replicas that died, and acting
//! on what the other replicas announce.
//!
//! A session's turns run only on the replica holding its lease (see
//! `store::cluster`). A message accepted here for a session owned elsewhere
//! stays queued in the store; the commit that queued it notified the owner,
//! which pulls it from there. A session without a live owner is taken by the
//! first replica with work for it, which does what a restart does for that
//! session alone: a turn left running is reported interrupted (never run
//! again), queued messages run in order. Pending messages (not yet routed)
//! belong to the replica that accepted them; those of a dead replica are
//! claimed and routed by another.
//!
//! Per-session order holds for the messages accepted through one replica.
//! Messages for one session accepted through different replicas at the same
//! moment run in the order their commits reach the owner.

use super::{Orchestrator, OrchestratorError, OrchestratorResult, dispatch};
use crate::bus::Inbound;
use crate::store::{InboundState, Notice};
use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// What a replica is configured with.
#[derive(Debug, Clone)]
pub struct ReplicaSettings {
    /// Its id: kept in the data directory, so a restart is the same replica.
    pub id: String,
    /// Whether the id was registered before (this replica restarted).
    pub rejoined: bool,
    /// Shown to operators (`replica_name`, by default the host name).
    pub name: String,
    /// How long a registration holds without renewal: a dead replica's
    /// sessions are taken over 2/3 to 4/3 of this long after it died (its
    /// registration expires, then another replica's next check, every third).
    pub lease: Duration,
}

/// The replica's state in the orchestrator.
#[derive(Debug)]
pub(super) struct Replica {
    pub(super) settings: ReplicaSettings,
    /// Sessions whose lease this replica holds.
    owned: std::sync::Mutex<HashSet<String>>,
    /// Held while a lease is taken and its session's work picked up, so
    /// that work is handed to the actor in order before anything newer.
    acquiring: tokio::sync::Mutex<()>,
    /// Messages in local actors' queues or turns, so none is handed twice.
    handed: std::sync::Mutex<HashSet<i64>>,
}

impl Replica {
    pub(super) fn new(settings: ReplicaSettings) -> Self {
        Self { settings, owned: Default::default(), acquiring: Default::default(), handed: Default::default() }
    }

    fn owns(&self, session: &str) -> bool {
        self.owned.lock().expect("owned lock").contains(session)
    }

    /// Remembers owning `session` (its lease is this replica's).
    fn own(&self, session: &str) {
        self.owned.lock().expect("owned lock").insert(session.to_owned());
    }

    /// Forgets owning `session` (deleted, or the store says otherwise).
    pub(super) fn disown(&self, session: &str) {
        self.owned.lock().expect("owned lock").remove(session);
    }

    /// Whether `message` is in a local actor's queue or turn.
    pub(super) fn has_handed(&self, message: i64) -> bool {
        self.handed.lock().expect("handed lock").contains(&message)
    }

    /// Marks `message` handed to a local actor; false when it was already.
    pub(super) fn hand(&self, message: i64) -> bool {
        self.handed.lock().expect("handed lock").insert(message)
    }

    /// `message`'s turn is over (or will not run here).
    pub(super) fn done_with(&self, message: i64) {
        self.handed.lock().expect("handed lock").remove(&message);
    }
}

impl Orchestrator {
    fn replica(&self) -> &Replica {
        self.inner.replica.as_ref().expect("called only among replicas")
    }

    /// Hands a queued message to its session's actor when this replica owns
    /// (or can take) the session; otherwise its owner runs it.
    pub(super) async fn route_among_replicas(&self, session: &str, inbound: Inbound) {
        if self.claim_session(session, Some(inbound.id)).await {
            self.push_turn(session, inbound).await;
        } else {
            tracing::debug!(session, message_id = inbound.id, "another replica owns the session; it runs the message");
        }
    }

    /// Whether this replica owns `session`, taking it (and its waiting work)
    /// when no live replica does. With `arriving`, the message being routed:
    /// what was queued before it is handed on first, what came after (which
    /// other replicas may have queued meanwhile) right after it.
    async fn claim_session(&self, session: &str, arriving: Option<i64>) -> bool {
        let replica = self.replica();
        if replica.owns(session) {
            return true;
        }
        let _acquiring = replica.acquiring.lock().await;
        if replica.owns(session) {
            return true;
        }
        match self.inner.store.acquire_lease(session).await {
            Ok(true) => {
                tracing::info!(session, replica = %replica.settings.name, "session taken over");
                self.take_over_session(session, arriving).await;
                replica.own(session);
                if arriving.is_some() {
                    let (orchestrator, session) = (self.clone(), session.to_owned());
                    self.inner.tasks.spawn(async move { orchestrator.pull_queued(&session, None).await });
                }
                true
            }
            Ok(false) => false,
            Err(error) => {
                // Its work stays queued; the next scan tries again.
                tracing::warn!(%error, session, "could not take the session's lease");
                false
            }
        }
    }

    /// Takes a session the store listed without a live owner. Under the
    /// acquiring lock the store is asked again: a lease this replica took
    /// after the list was read stands (its turn may be running here); one
    /// this replica owns only in memory (lapsed, or gone with a deletion) is
    /// forgotten and the session taken again.
    async fn reclaim_session(&self, session: &str) {
        let replica = self.replica();
        {
            let _acquiring = replica.acquiring.lock().await;
            match self.inner.store.holds_lease(session).await {
                Ok(true) => return,
                Ok(false) => replica.disown(session),
                Err(error) => {
                    tracing::warn!(%error, session, "could not check the session's lease; the next scan retries");
                    return;
                }
            }
        }
        self.claim_session(session, None).await;
    }

    /// Does for one session what a restart does: its running turn (its last
    /// owner died) is reported interrupted, its queued messages (those before
    /// `before`, when given) go to its actor.
    async fn take_over_session(&self, session: &str, before: Option<i64>) {
        let store = &self.inner.store;
        match store.inbound_of_session(session, InboundState::Running).await {
            Ok(turns) => {
                for turn in turns {
                    if let Err(error) = self.report_interrupted(&turn, Some(session)).await {
                        tracing::error!(%error, session, message_id = turn.id, "could not report an interrupted turn");
                    }
                }
            }
            Err(error) => tracing::error!(%error, session, "could not read the session's running turns"),
        }
        self.pull_queued(session, before).await;
    }

    /// Hands `session`'s queued messages (those before `before`, when given)
    /// that no local actor has yet to its actor, oldest first.
    async fn pull_queued(&self, session: &str, before: Option<i64>) {
        match self.inner.store.inbound_of_session(session, InboundState::Queued).await {
            Ok(queued) => {
                for message in queued.into_iter().filter(|m| before.is_none_or(|before| m.id < before)) {
                    self.push_turn(session, message).await;
                }
            }
            Err(error) => tracing::warn!(%error, session, "could not read the session's queue; the next scan retries"),
        }
    }

    /// Takes over what dead replicas left: their pending messages (routed
    /// here) and their sessions with work; then picks up anything queued for
    /// this replica's sessions that a lost notification left waiting.
    pub async fn take_over_orphans(&self) -> OrchestratorResult<()> {
        for (message, applied) in self.inner.store.claim_pending().await? {
            tracing::info!(message_id = message.id, "pending message of a stopped replica claimed");
            self.resume_pending(message, applied).await?;
        }
        for session in self.inner.store.sessions_without_owner().await? {
            self.reclaim_session(&session).await;
        }
        for (session, message) in self.inner.store.queued_for_replica().await? {
            self.push_turn(&session, message).await;
        }
        Ok(())
    }

    /// After this replica restarted (the same data directory, so the same
    /// id): what a restart does, for what it owned and accepted.
    pub(super) async fn recover_own(&self) -> OrchestratorResult<()> {
        for session in self.inner.store.own_sessions().await? {
            self.take_over_session(&session, None).await;
            self.replica().own(&session);
        }
        for (message, applied) in self.inner.store.own_pending().await? {
            self.resume_pending(message, applied).await?;
        }
        Ok(())
    }

    /// Routes a pending message again, or answers a command applied before its replica stopped.
    pub(super) async fn resume_pending(&self, message: Inbound, applied: bool) -> OrchestratorResult<()> {
        if applied {
            tracing::warn!(message_id = message.id, channel = %message.channel, "command applied before a restart; replying");
            let reply = dispatch::Reply::done_before_restart(&message.text);
            return self.commit_reply(&message, reply).await;
        }
        self.inner.router_backlog.fetch_add(1, Ordering::SeqCst);
        self.inner.router.send(message).await.map_err(|_| OrchestratorError::ShuttingDown)
    }

    /// Acts on another replica's announcement.
    pub async fn on_replica_notice(&self, notice: Notice) {
        let outcome = match notice {
            Notice::Responses => {
                self.inner.bus.log_changed();
                Ok(())
            }
            Notice::Chunk(payload) => {
                self.inner.bus.chunk_from_replica(&payload);
                Ok(())
            }
            Notice::Queued(session) => {
                if self.replica().owns(&session) {
                    // In a task: waiting for queue room (backpressure) must not hold up other notices.
                    let orchestrator = self.clone();
                    self.inner.tasks.spawn(async move { orchestrator.pull_queued(&session, None).await });
                }
                Ok(())
            }
            Notice::Bindings => self.reload_bindings().await,
            Notice::Deleted(session) => {
                self.forget_deleted_session(&session).await;
                Ok(())
            }
            Notice::Cancel { session, by } => {
                self.cancel_local_turn(&session, &by).await;
                Ok(())
            }
            Notice::Left => self.take_over_orphans().await,
            Notice::Joined => {
                self.inner.bus.set_peers(true);
                Ok(())
            }
            Notice::Permission(payload) => {
                self.answer_forwarded(&payload).await;
                Ok(())
            }
            // Tokens and web logins are the edges'; the replica driver gives them to those.
            Notice::Tokens | Notice::Logout(_) => Ok(()),
        };
        if let Err(error) = outcome {
            tracing::warn!(%error, "acting on another replica's notice failed");
        }
    }

    /// Reads every binding again (another replica changed some).
    pub async fn reload_bindings(&self) -> OrchestratorResult<()> {
        let _writes = self.inner.binding_writes.lock().await;
        let pairs = self.inner.store.bindings().await?;
        *self.inner.bindings.write().expect("bindings lock") = super::bindings::Bindings::from_pairs(pairs);
        Ok(())
    }

    /// Stops what runs here for a session another replica deleted (it told the channels).
    async fn forget_deleted_session(&self, session: &str) {
        if let Some(actor) = self.inner.actors.lock().await.remove(session) {
            actor.cancel.cancel();
        }
        self.inner.backends.stop_session(session);
        self.replica().disown(session);
        if let Err(error) = self.reload_bindings().await {
            tracing::warn!(%error, "could not reload the bindings");
        }
    }

    /// Whether this replica owns `session` (so its turns run here).
    pub(super) fn runs_here(&self, session: &str) -> bool {
        self.inner.replica.as_ref().is_none_or(|replica| replica.owns(session))
    }

    /// Whether `session` has a turn running on some replica (for `!cancel` on a replica that does not own it).
    pub(super) async fn running_elsewhere(&self, session: &str) -> OrchestratorResult<bool> {
        if self.runs_here(session) {
            return Ok(false);
        }
        Ok(self.inner.store.session_activity(session).await?.0)
    }
}
