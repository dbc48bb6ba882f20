//! Fleet operations: the one implementation behind DISPATCH commands, the
//! Control API and the web admin (create, delete, list, status, bind, unbind,
//! tell, read, broadcast).

use super::{Orchestrator, OrchestratorError, OrchestratorResult, workspace};
use crate::bus::{Activity, ChannelRef, Inbound, NewResponse, ResponseKind};
use crate::domain::Attachment;
use crate::names;
use crate::store::{Commit, HistoryRow, NewInbound, SessionRow, StoreError};
use std::sync::atomic::Ordering;

/// Whether a session's agent is working.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    /// Waiting for a message.
    Idle,
    /// A turn is in progress.
    Busy,
}

impl SessionState {
    /// "idle" or "busy".
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Idle => "idle",
            Self::Busy => "busy",
        }
    }
}

/// A session with its live state, for `!status`, `!list` and the Control API.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    /// The stored session.
    pub row: SessionRow,
    /// Bound channels, sorted.
    pub channels: Vec<ChannelRef>,
    /// Idle or busy.
    pub state: SessionState,
    /// Messages waiting behind the current turn.
    pub queued: usize,
    /// History entries.
    pub message_count: u64,
    /// Whether the agent's process runs now (`None`: the backend runs no process).
    pub agent_running: Option<bool>,
    /// Modes, models, commands, usage and login of the agent (`None`: the backend has none).
    pub agent: Option<crate::agent::AgentView>,
    /// Tokens of the last turn (input, output), when it reported any since gorpd started.
    pub last_turn: Option<(u64, u64)>,
    /// What the session cost so far: from the profile's price table, else as the agent reported it.
    pub cost: Option<(f64, String)>,
}

fn invalid(reason: String) -> OrchestratorError {
    OrchestratorError::Invalid(reason)
}

pub(super) fn not_found_as_unknown(session: &str) -> impl FnOnce(StoreError) -> OrchestratorError + '_ {
    move |error| match error {
        StoreError::NotFound => OrchestratorError::UnknownSession(session.to_owned()),
        other => other.into(),
    }
}

impl Orchestrator {
    /// Creates a session and its workspace (`workspace` is relative to the root; defaults to the name)
    /// running agent profile `agent` (default: the configured default). `created_on` is the platform
    /// of the channel that asked (`None`: an operator), which its `own-platform` DISPATCH scope reaches.
    pub async fn create_session(
        &self,
        name: &str,
        workspace: Option<&str>,
        agent: Option<&str>,
        created_on: Option<&str>,
    ) -> OrchestratorResult<SessionInfo> {
        names::check_session_name(name).map_err(invalid)?;
        let config = &self.inner.config;
        let backend = agent.unwrap_or(&config.default_agent);
        if self.inner.backends.get(backend).is_none() {
            let known: Vec<_> = self.inner.backends.names().collect();
            return Err(invalid(format!("unknown agent profile \"{backend}\" (known: {})", known.join(", "))));
        }
        let dir = workspace::resolve(&config.workspace_root, workspace, name)?;
        if self.inner.store.session(name).await.is_ok() {
            return Err(OrchestratorError::SessionExists(name.to_owned()));
        }
        let dir = workspace::prepare(&config.workspace_root, &dir, config.workspace_template.as_deref())?;
        let store = &self.inner.store;
        store.create_session_on(name, &dir.to_string_lossy(), backend, created_on).await.map_err(|e| match e {
            StoreError::Conflict => OrchestratorError::SessionExists(name.to_owned()),
            other => other.into(),
        })?;
        self.inner.bus.report(Activity::Session { name: name.to_owned(), created: true });
        tracing::info!(session = name, workspace = %dir.display(), "session created");
        self.session_info(name).await
    }

    /// Deletes a session: unbinds (and tells) every channel, drops its queue and history, keeps its files.
    /// `except` is a channel that gets no notice (the one that asked).
    pub async fn delete_session(&self, name: &str, except: Option<&ChannelRef>) -> OrchestratorResult<Vec<ChannelRef>> {
        let unbound = {
            let _writes = self.inner.binding_writes.lock().await;
            let deleted = self.inner.store.delete_session(name).await.map_err(not_found_as_unknown(name))?;
            let mut bindings = self.inner.bindings.write().expect("bindings lock");
            bindings.remove_session(name);
            deleted
        };
        let (unbound, dropped) = unbound;
        if let Some(actor) = self.inner.actors.lock().await.remove(name) {
            actor.cancel.cancel();
        }
        if let Some(replica) = &self.inner.replica {
            // The store dropped its lease with it.
            replica.disown(name);
        }
        // A session created later under the same name must not inherit this agent process.
        self.inner.backends.stop_session(name);
        for channel in &unbound {
            self.inner.bus.report(Activity::Binding { channel: channel.clone(), session: None });
        }
        let notify: Vec<ChannelRef> = unbound.iter().filter(|c| Some(*c) != except).cloned().collect();
        if !notify.is_empty() {
            let text = format!("Session {name} was deleted; this channel talks to DISPATCH again.");
            self.notify(Some(name), notify, text).await?;
        }
        for message in &dropped {
            self.tell_unanswered(name, message).await?;
        }
        self.inner.bus.report(Activity::Session { name: name.to_owned(), created: false });
        tracing::info!(session = name, dropped = dropped.len(), "session deleted");
        Ok(unbound)
    }

    /// Every session with its live state, by name.
    pub async fn list_sessions(&self) -> OrchestratorResult<Vec<SessionInfo>> {
        let mut infos = Vec::new();
        for row in self.inner.store.sessions().await? {
            infos.push(self.info_for(row).await?);
        }
        Ok(infos)
    }

    /// One session with its live state.
    pub async fn session_info(&self, name: &str) -> OrchestratorResult<SessionInfo> {
        let row = self.inner.store.session(name).await.map_err(not_found_as_unknown(name))?;
        self.info_for(row).await
    }

    async fn info_for(&self, row: SessionRow) -> OrchestratorResult<SessionInfo> {
        let local = self
            .inner
            .actors
            .lock()
            .await
            .get(&row.name)
            .map(|actor| (actor.busy.load(Ordering::SeqCst), actor.queued.load(Ordering::SeqCst)));
        let (busy, queued) = match local {
            Some(activity) => activity,
            // Among replicas another one may be running it: the store knows.
            None if self.inner.replica.is_some() => {
                let (running, queued) = self.inner.store.session_activity(&row.name).await?;
                (running, queued as usize)
            }
            None => (false, 0),
        };
        let backend = self.inner.backends.get(&row.backend);
        let agent = backend.as_ref().and_then(|b| b.view(&row.name));
        let priced = backend
            .as_ref()
            .and_then(|b| b.prices().map(|p| (p.cost(row.input_tokens, row.output_tokens), p.currency.clone())));
        let cost = priced.or_else(|| agent.as_ref().and_then(|view| view.cost.clone()));
        Ok(SessionInfo {
            channels: self.channels_of(&row.name),
            state: if busy { SessionState::Busy } else { SessionState::Idle },
            queued,
            message_count: self.inner.store.message_count(&row.name).await?,
            agent_running: self.inner.backends.get(&row.backend).and_then(|b| b.process_running(&row.name)),
            agent,
            last_turn: self.inner.last_turns.lock().expect("usage lock").get(&row.name).copied(),
            cost,
            row,
        })
    }

    /// Binds a channel to a session; returns the session it was bound to before.
    pub async fn bind(&self, channel: &ChannelRef, session: &str) -> OrchestratorResult<Option<String>> {
        super::check_not_reserved(&channel.platform).map_err(invalid)?;
        names::check_platform(&channel.platform).map_err(invalid)?;
        names::check_external_id("channel id", &channel.channel_id).map_err(invalid)?;
        let previous = {
            let _writes = self.inner.binding_writes.lock().await;
            self.inner.store.bind(channel, session).await.map_err(not_found_as_unknown(session))?;
            let mut bindings = self.inner.bindings.write().expect("bindings lock");
            bindings.insert(channel.clone(), session)
        };
        self.inner.bus.report(Activity::Binding { channel: channel.clone(), session: Some(session.to_owned()) });
        tracing::info!(%channel, session, "channel bound");
        Ok(previous)
    }

    /// Unbinds a channel; returns the session it was bound to.
    pub async fn unbind(&self, channel: &ChannelRef) -> OrchestratorResult<String> {
        let previous = {
            let _writes = self.inner.binding_writes.lock().await;
            self.inner.store.unbind(channel).await.map_err(|e| match e {
                StoreError::NotFound => OrchestratorError::NotBound(channel.clone()),
                other => other.into(),
            })?;
            let mut bindings = self.inner.bindings.write().expect("bindings lock");
            bindings.remove(channel).unwrap_or_default()
        };
        self.inner.bus.report(Activity::Binding { channel: channel.clone(), session: None });
        tracing::info!(%channel, session = previous, "channel unbound");
        Ok(previous)
    }

    /// Queues `text` (and files already stored, see `crate::files`) for a
    /// session as if it was said in `origin`; the answer goes to the
    /// session's channels. With files the text may be empty.
    pub async fn tell(
        &self,
        session: &str,
        text: &str,
        attachments: Vec<Attachment>,
        origin: &ChannelRef,
        sender: &str,
    ) -> OrchestratorResult<Inbound> {
        if attachments.is_empty() || !text.trim().is_empty() {
            names::check_text(text, self.inner.config.max_text_bytes).map_err(invalid)?;
        }
        self.inner.store.session(session).await.map_err(not_found_as_unknown(session))?;
        let mut queued = self.queue_told(text, attachments, origin, sender, vec![session.to_owned()]).await?;
        Ok(queued.pop().expect("one message per session"))
    }

    /// Queues `text` for every session; returns their names.
    pub async fn broadcast(&self, text: &str, origin: &ChannelRef, sender: &str) -> OrchestratorResult<Vec<String>> {
        let everyone: Vec<String> = self.inner.store.sessions().await?.into_iter().map(|row| row.name).collect();
        self.broadcast_to(text, origin, sender, everyone).await
    }

    /// Queues `text` for each of `sessions`; returns their names.
    pub(super) async fn broadcast_to(
        &self,
        text: &str,
        origin: &ChannelRef,
        sender: &str,
        sessions: Vec<String>,
    ) -> OrchestratorResult<Vec<String>> {
        names::check_text(text, self.inner.config.max_text_bytes).map_err(invalid)?;
        self.queue_told(text, Vec::new(), origin, sender, sessions.clone()).await?;
        Ok(sessions)
    }

    /// Queues `text` for each of `sessions` in one write (after a crash, all
    /// of them were told or none), then hands each copy to its session.
    async fn queue_told(
        &self,
        text: &str,
        attachments: Vec<Attachment>,
        origin: &ChannelRef,
        sender: &str,
        sessions: Vec<String>,
    ) -> OrchestratorResult<Vec<Inbound>> {
        let new = NewInbound {
            channel: origin.clone(),
            message_id: None,
            sender: sender.to_owned(),
            text: text.to_owned(),
            attachments,
            trace_context: gorp_telemetry::current_traceparent(),
        };
        let queued = self.inner.store.queue_for_sessions(&new, sessions.clone()).await?;
        for (session, inbound) in sessions.iter().zip(&queued) {
            self.inner.bus.report(Activity::Message(inbound.clone()));
            self.enqueue_turn(session, inbound.clone()).await;
        }
        Ok(queued)
    }

    /// The last `count` history entries of a session (default and cap from the config), oldest first.
    pub async fn read(&self, session: &str, count: Option<u32>) -> OrchestratorResult<Vec<HistoryRow>> {
        let config = &self.inner.config;
        let count = count.filter(|c| *c > 0).unwrap_or(config.read_default).min(config.read_max);
        self.inner.store.session(session).await.map_err(not_found_as_unknown(session))?;
        Ok(self.inner.store.last_messages(session, count).await?)
    }

    /// Removes the history entries of `session` that `rule` does not keep; returns how many.
    pub async fn prune_history(&self, session: &str, rule: crate::store::PruneRule) -> OrchestratorResult<u64> {
        self.inner.store.session(session).await.map_err(not_found_as_unknown(session))?;
        let removed = self.inner.store.prune_history(session, rule).await?;
        tracing::info!(session, removed, "history pruned");
        Ok(removed)
    }

    /// The time by the orchestrator's clock.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.inner.clock.now()
    }

    /// Largest `!read` count.
    pub fn read_max(&self) -> u32 {
        self.inner.config.read_max
    }

    /// Sends a notice (from a session, or from gorpd when `session` is `None`) to `targets`.
    pub(super) async fn notify(
        &self,
        session: Option<&str>,
        targets: Vec<ChannelRef>,
        text: String,
    ) -> OrchestratorResult<()> {
        let response = NewResponse {
            response_id: uuid::Uuid::new_v4().to_string(),
            session: session.map(str::to_owned),
            kind: ResponseKind::Notice,
            text,
            targets,
            reply_to: None,
            permission: None,
            attachments: Vec::new(),
            trace_context: gorp_telemetry::current_traceparent(),
        };
        self.inner.bus.append(response, Commit::default()).await?;
        Ok(())
    }
}
