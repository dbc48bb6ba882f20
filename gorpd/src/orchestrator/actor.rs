//! Session actors: one task per session with work, which runs its turns one
//! at a time, in the order they were queued, streaming chunks live and
//! committing the final response (with the history entry and the turn's end
//! state) at once.
//!
//! An actor exists only while its session has work: the first queued message
//! starts it, and it ends when its queue is empty, so an idle session costs
//! no task and no buffers. Starting and retiring both happen under the
//! actors lock, and an actor retires only after checking its queue once more
//! under that lock, so a message is never queued to an actor that is gone.
//!
//! A busy session starts its next turn in the group commit of the answer
//! before it (the answer first, then the start), so each message costs one
//! commit on the turn's path instead of two, with the same order in the
//! history and the same outcome after a crash.
//!
//! Memory is bounded: at most `max_queued_messages` messages wait in actor
//! queues at once. Each holds a permit until its turn starts; when none is left,
//! `enqueue_turn` waits, which holds the intake and the router, so publishers
//! get their acks later instead of gorpd's memory growing (backpressure).

use super::turn_files::OutboxSnapshot;
use super::{Orchestrator, OrchestratorResult};
use crate::agent::{AgentEvent, HistoryTurn, PromptRequest, Sender};
use crate::bus::{ChannelRef, Chunk, Inbound, NewResponse, ResponseKind};
use crate::store::{Commit, InboundState, SCHEDULE_PLATFORM, SessionRow};
use futures::StreamExt;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// The sending side of a session actor.
#[derive(Debug, Clone)]
pub(super) struct SessionHandle {
    turns: mpsc::UnboundedSender<QueuedTurn>,
    /// Cancelled when the session is deleted (or gorpd stops).
    pub(super) cancel: CancellationToken,
    pub(super) busy: Arc<AtomicBool>,
    pub(super) queued: Arc<AtomicUsize>,
    /// The turn in progress, for `!cancel`.
    pub(super) current_turn: Arc<std::sync::Mutex<Option<Arc<RunningTurn>>>>,
    /// The session's row, read at the actor's first turn (one read per busy
    /// period, not per turn) and kept current when the agent reports a new session id.
    row: Arc<std::sync::Mutex<Option<SessionRow>>>,
}

/// A message in an actor's queue, holding one of the `max_queued_messages` permits until its turn starts.
#[derive(Debug)]
pub(super) struct QueuedTurn {
    inbound: Inbound,
    _permit: OwnedSemaphorePermit,
}

/// A turn in progress that `!cancel` can stop.
#[derive(Debug, Default)]
pub(super) struct RunningTurn {
    cancel: CancellationToken,
    /// Who cancelled it, for the notice.
    cancelled_by: std::sync::Mutex<Option<String>>,
    /// Files the agent's answer carried so far.
    produced: std::sync::Mutex<Vec<crate::agent::ProducedFile>>,
}

/// The answer a turn is streaming: its id, and what its durations are measured from and labelled with.
struct Answering<'a> {
    response_id: &'a str,
    /// The session's agent profile.
    agent: &'a str,
    started: std::time::Instant,
}

/// Most history entries handed to a backend as the conversation (it trims further to its budget).
const CONVERSATION_LIMIT: u32 = 200;

/// The span of `turn`'s turn, in the trace its message arrived in.
fn turn_span(session: &str, turn: &Inbound) -> tracing::Span {
    let span = tracing::info_span!(
        "turn",
        session = %session,
        message_id = turn.id,
        platform = %turn.channel.platform,
        channel = %turn.channel,
    );
    gorp_telemetry::continue_trace(&span, turn.trace_context.as_deref());
    span
}

/// The questions that got an answer and those answers, from history rows in order.
fn answered_turns(rows: Vec<crate::store::HistoryRow>) -> Vec<HistoryTurn> {
    let mut turns = Vec::with_capacity(rows.len());
    let mut rows = rows.into_iter().peekable();
    while let Some(row) = rows.next() {
        match row.role.as_str() {
            "user" if rows.peek().is_some_and(|next| next.role == "assistant") => {
                let sender = row.channel.map(|channel| Sender {
                    name: row.author,
                    platform: channel.platform,
                    channel: channel.channel_id,
                });
                turns.push(HistoryTurn { from_user: true, text: row.text, sender });
            }
            "assistant" => turns.push(HistoryTurn { from_user: false, text: row.text, sender: None }),
            _ => {}
        }
    }
    turns
}

/// A turn's answer, ready to commit.
struct FinishedTurn {
    response: NewResponse,
    commit: Commit,
}

/// How a turn ended.
enum TurnEnd {
    Complete(String),
    Failed(String),
    Cancelled,
}

impl Orchestrator {
    /// Starts an actor for `session` and registers it; the caller holds the actors lock.
    fn start_actor(&self, session: &str, actors: &mut HashMap<String, SessionHandle>) -> SessionHandle {
        let (turns, receiver) = mpsc::unbounded_channel::<QueuedTurn>();
        let handle = SessionHandle {
            turns,
            cancel: self.inner.shutdown.child_token(),
            busy: Arc::new(AtomicBool::new(false)),
            queued: Arc::new(AtomicUsize::new(0)),
            current_turn: Arc::default(),
            row: Arc::default(),
        };
        actors.insert(session.to_owned(), handle.clone());
        let orchestrator = self.clone();
        let name = session.to_owned();
        let actor = handle.clone();
        self.inner.tasks.spawn(async move { orchestrator.run_actor(name, actor, receiver).await });
        handle
    }

    async fn run_actor(self, name: String, handle: SessionHandle, mut receiver: mpsc::UnboundedReceiver<QueuedTurn>) {
        let mut started_early = None;
        loop {
            let (queued, already_started) = match started_early.take() {
                Some(next) => next,
                None => match self.next_turn(&name, &handle, &mut receiver).await {
                    Some(queued) => (queued, false),
                    None => break,
                },
            };
            // The turn starts: its queue slot is free for the next message.
            let QueuedTurn { inbound: turn, _permit: permit } = queued;
            drop(permit);
            handle.queued.fetch_sub(1, Ordering::SeqCst);
            handle.busy.store(true, Ordering::SeqCst);
            let span = turn_span(&name, &turn);
            let answer = self.run_turn(&name, &turn, already_started, &handle).instrument(span.clone()).await;
            if let Some(answer) = answer {
                let next = if handle.cancel.is_cancelled() { None } else { receiver.try_recv().ok() };
                started_early = self.finish_turn(answer, next).instrument(span).await;
            }
            if let Some(replica) = &self.inner.replica {
                replica.done_with(turn.id);
            }
            handle.busy.store(false, Ordering::SeqCst);
        }
    }

    /// Commits a turn's answer and, when another message is queued, starts
    /// that one's turn in the same group commit: both writes are queued to the
    /// writer back to back (it runs them in that order), so a busy session
    /// costs one commit per message instead of two. Returns the next turn and
    /// whether its start is committed.
    async fn finish_turn(&self, answer: FinishedTurn, next: Option<QueuedTurn>) -> Option<(QueuedTurn, bool)> {
        let FinishedTurn { response, commit } = answer;
        let append = self.inner.bus.append(response, commit);
        // `join!` polls in order, so the answer is queued to the writer before the start.
        let (appended, next) = match next {
            None => (append.await, None),
            Some(next) => {
                let (appended, started) = tokio::join!(append, self.inner.store.start_turn(next.inbound.id));
                (appended, Some((next, started)))
            }
        };
        if let Err(error) = appended {
            // The turn stays `running` in the store and is reported as interrupted at the next start.
            tracing::error!(%error, "turn failed to complete");
        }
        let (next, started) = next?;
        let started = started.unwrap_or_else(|error| {
            // Not started: it goes through the normal start, which reports its own failure.
            tracing::warn!(%error, message_id = next.inbound.id, "could not start the next turn early");
            false
        });
        Some((next, started))
    }

    /// The next queued turn, or `None` when the actor retires (its queue is
    /// empty, the session was deleted, or gorpd is stopping).
    async fn next_turn(
        &self,
        name: &str,
        handle: &SessionHandle,
        receiver: &mut mpsc::UnboundedReceiver<QueuedTurn>,
    ) -> Option<QueuedTurn> {
        if handle.cancel.is_cancelled() {
            return None;
        }
        if let Ok(turn) = receiver.try_recv() {
            return Some(turn);
        }
        let mut actors = self.inner.actors.lock().await;
        // Checked again under the lock: `enqueue_turn` sends only while holding it.
        if let Ok(turn) = receiver.try_recv() {
            return Some(turn);
        }
        if actors.get(name).is_some_and(|current| Arc::ptr_eq(&current.busy, &handle.busy)) {
            actors.remove(name);
        }
        None
    }

    /// Cancels the turn `session` is working on; false when it is idle.
    /// Among replicas, a turn running on another replica is cancelled by it.
    pub async fn cancel_turn(&self, session: &str, by: &str) -> OrchestratorResult<bool> {
        if let Some(cancelled) = self.cancel_local_turn(session, by).await {
            return Ok(cancelled);
        }
        // No actor here: the session is idle, if it exists, or its turn runs on another replica.
        self.inner.store.session(session).await.map_err(super::fleet::not_found_as_unknown(session))?;
        if self.running_elsewhere(session).await? {
            self.inner.store.notify(&crate::store::Announcement::cancel(session, by)).await?;
            tracing::info!(session, by, "cancel sent to the replica running the turn");
            return Ok(true);
        }
        Ok(false)
    }

    /// Cancels the turn of `session`'s local actor; `None` when there is no actor here.
    pub(super) async fn cancel_local_turn(&self, session: &str, by: &str) -> Option<bool> {
        let actors = self.inner.actors.lock().await;
        let actor = actors.get(session)?;
        let current = actor.current_turn.lock().expect("turn lock");
        let Some(running) = current.as_ref() else { return Some(false) };
        *running.cancelled_by.lock().expect("turn lock") = Some(by.to_owned());
        running.cancel.cancel();
        tracing::info!(session, by, "turn cancelled");
        Some(true)
    }

    /// Hands a routed message to its session's actor, starting one if the
    /// session is idle (among replicas: when this replica owns the session).
    pub(super) async fn enqueue_turn(&self, session: &str, inbound: Inbound) {
        match &self.inner.replica {
            Some(_) => self.route_among_replicas(session, inbound).await,
            None => self.push_turn(session, inbound).await,
        }
    }

    /// Hands a message to its session's local actor, starting one if the
    /// session is idle; among replicas, a message already handed is not again.
    pub(super) async fn push_turn(&self, session: &str, inbound: Inbound) {
        // A message handed already needs no queue slot: a scan that finds it
        // again must not wait for one (checked again below, under the lock).
        if self.inner.replica.as_ref().is_some_and(|replica| replica.has_handed(inbound.id)) {
            return;
        }
        // Taken before the actors lock: actors need that lock to retire, never to run.
        let Ok(permit) = self.inner.queue_permits.clone().acquire_owned().await else { return };
        let mut actors = self.inner.actors.lock().await;
        if let Some(replica) = &self.inner.replica
            && !replica.hand(inbound.id)
        {
            return;
        }
        let handle = match actors.get(session) {
            Some(handle) if !handle.cancel.is_cancelled() => handle.clone(),
            _ => self.start_actor(session, &mut actors),
        };
        handle.queued.fetch_add(1, Ordering::SeqCst);
        if handle.turns.send(QueuedTurn { inbound, _permit: permit }).is_err() {
            // gorpd is stopping: the message stays queued in the store for the next start.
            handle.queued.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Runs a turn to its end; returns the answer to commit, if any.
    /// `already_started`: its start was committed with the previous answer.
    async fn run_turn(
        &self,
        session: &str,
        turn: &Inbound,
        already_started: bool,
        handle: &SessionHandle,
    ) -> Option<FinishedTurn> {
        let running = Arc::new(RunningTurn { cancel: handle.cancel.child_token(), ..Default::default() });
        *handle.current_turn.lock().expect("turn lock") = Some(running.clone());
        let result = self.try_run_turn(session, turn, already_started, &running, handle).await;
        *handle.current_turn.lock().expect("turn lock") = None;
        result.unwrap_or_else(|error| {
            // The turn stays `running` in the store and is reported as interrupted at the next start.
            tracing::error!(%error, "turn failed to complete");
            None
        })
    }

    async fn try_run_turn(
        &self,
        session: &str,
        turn: &Inbound,
        already_started: bool,
        running: &RunningTurn,
        handle: &SessionHandle,
    ) -> OrchestratorResult<Option<FinishedTurn>> {
        let session_gone = &handle.cancel;
        let store = &self.inner.store;
        let Some(row) = self.session_row(session, handle).await? else {
            if already_started {
                // Deleted after its start: the deletion dropped it and told its channel.
                return Ok(None);
            }
            // Deleted while this message was on its way to the session.
            self.tell_unanswered(session, turn).await?;
            return Ok(None);
        };
        let backend = self.inner.backends.get(&row.backend);
        // Only answered questions make the conversation, so this message is
        // not in it even when its start is committed already.
        let history = match &backend {
            Some(backend) if backend.needs_history() => self.conversation(session).await?,
            _ => Vec::new(),
        };
        if !already_started && !store.start_turn(turn.id).await? {
            // The session was deleted after this message was queued.
            return Ok(None);
        }
        let response_id = uuid::Uuid::new_v4().to_string();
        tracing::debug!(%response_id, "turn started");
        let workspace = PathBuf::from(&row.workspace_dir);
        let outbox_before = match &backend {
            Some(_) => OutboxSnapshot::take(&workspace).await.unwrap_or_default(),
            None => OutboxSnapshot::default(),
        };
        let end = match backend {
            None => TurnEnd::Failed(format!("agent backend \"{}\" is not configured in gorpd", row.backend)),
            Some(backend) => {
                let request = PromptRequest {
                    session: session.to_owned(),
                    workspace: workspace.clone(),
                    text: turn.text.clone(),
                    sender: Sender {
                        name: turn.sender.clone(),
                        platform: turn.channel.platform.clone(),
                        channel: turn.channel.channel_id.clone(),
                    },
                    history,
                    agent_session_id: row.agent_session_id.clone(),
                    files: self.prompt_files(&turn.attachments),
                };
                let answering =
                    Answering { response_id: &response_id, agent: &row.backend, started: std::time::Instant::now() };
                let prompt = tracing::debug_span!("prompt", session, agent = %row.backend);
                let events = prompt.in_scope(|| backend.prompt(request));
                let end =
                    self.stream_answer(session, &answering, turn, events, running, handle).instrument(prompt).await;
                self.inner.metrics.turn_ended(answering.agent, answering.started.elapsed());
                self.cancel_permissions(session).await;
                end
            }
        };
        let (kind, mut text) = match end {
            TurnEnd::Complete(text) => (ResponseKind::Complete, text),
            TurnEnd::Failed(error) if turn.channel.platform == SCHEDULE_PLATFORM => {
                (ResponseKind::Error, format!("⚠ {session} failed on the prompt of {}: {error}", turn.sender))
            }
            TurnEnd::Failed(error) => (ResponseKind::Error, format!("⚠ {session} failed: {error}")),
            // Shutdown or deletion: nothing is committed (a restart reports the turn as interrupted).
            TurnEnd::Cancelled if session_gone.is_cancelled() => return Ok(None),
            TurnEnd::Cancelled => {
                let by =
                    running.cancelled_by.lock().expect("turn lock").clone().unwrap_or_else(|| "someone".to_owned());
                (ResponseKind::Notice, format!("⏹ {session}'s turn was cancelled by {by}."))
            }
        };
        let produced = std::mem::take(&mut *running.produced.lock().expect("turn lock"));
        let files = self.store_turn_files(&workspace, &outbox_before, produced).await;
        for note in &files.notes {
            text.push_str(&format!("\n\n📎 {note}"));
        }
        let response = NewResponse {
            response_id,
            session: Some(session.to_owned()),
            kind,
            text,
            targets: self.answer_targets(session, turn),
            reply_to: turn.reply_ref(),
            permission: None,
            attachments: files.attachments,
            trace_context: gorp_telemetry::current_traceparent(),
        };
        let commit = Commit {
            in_history: true,
            finish: Some((turn.id, InboundState::Done)),
            // A deletion that raced this turn already dropped the message and told its channel.
            only_if_running: true,
        };
        Ok(Some(FinishedTurn { response, commit }))
    }

    /// Forwards chunks live and collects the final text.
    async fn stream_answer(
        &self,
        session: &str,
        answering: &Answering<'_>,
        turn: &Inbound,
        mut events: futures::stream::BoxStream<'static, AgentEvent>,
        running: &RunningTurn,
        handle: &SessionHandle,
    ) -> TurnEnd {
        let response_id = answering.response_id;
        let cancel = &running.cancel;
        let mut text = String::new();
        self.inner.last_turns.lock().expect("usage lock").remove(session);
        let timeout = self.inner.config.turn_timeout;
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        loop {
            let event = tokio::select! {
                biased;
                _ = cancel.cancelled() => return TurnEnd::Cancelled,
                _ = &mut deadline => {
                    return TurnEnd::Failed(format!("no answer within {} s; the turn was cancelled", timeout.as_secs()));
                }
                event = events.next() => event,
            };
            match event {
                Some(AgentEvent::Chunk(chunk)) => {
                    if text.is_empty() {
                        self.inner.metrics.first_chunk(answering.agent, answering.started.elapsed());
                    }
                    text.push_str(&chunk);
                    self.send_chunk(turn, session, response_id, chunk, false);
                }
                Some(AgentEvent::Progress(line)) => self.send_chunk(turn, session, response_id, line, true),
                Some(AgentEvent::Usage { input_tokens, output_tokens }) => {
                    self.count_turn_usage(session, input_tokens, output_tokens);
                    if let Err(error) = self.inner.store.add_usage(session, input_tokens, output_tokens).await {
                        tracing::warn!(%error, "could not record token usage");
                    }
                }
                Some(AgentEvent::Permission(ask)) => {
                    if let Err(error) = self.ask_permission(session, turn.reply_ref(), ask).await {
                        tracing::error!(%error, "could not publish a permission request; it is cancelled");
                    }
                }
                Some(AgentEvent::SessionId(id)) => {
                    if let Some(row) = handle.row.lock().expect("row lock").as_mut() {
                        row.agent_session_id = Some(id.clone());
                    }
                    if let Err(error) = self.inner.store.set_agent_session_id(session, &id).await {
                        tracing::warn!(%error, "could not record the agent's session id");
                    }
                }
                Some(AgentEvent::File(file)) => {
                    tracing::debug!(file = %file.name, bytes = file.bytes.len(), "the agent produced a file");
                    running.produced.lock().expect("turn lock").push(file);
                }
                Some(AgentEvent::Done) => return TurnEnd::Complete(text),
                Some(AgentEvent::Error(error)) => return TurnEnd::Failed(error),
                None => return TurnEnd::Failed("the agent stopped without finishing its answer".to_owned()),
            }
        }
    }

    /// Adds to the tokens of `session`'s turn in progress (shown as its last turn).
    fn count_turn_usage(&self, session: &str, input_tokens: u64, output_tokens: u64) {
        let mut last_turns = self.inner.last_turns.lock().expect("usage lock");
        let turn = last_turns.entry(session.to_owned()).or_default();
        *turn = (turn.0 + input_tokens, turn.1 + output_tokens);
    }

    fn send_chunk(&self, turn: &Inbound, session: &str, response_id: &str, text: String, progress: bool) {
        self.inner.bus.send_chunk(Chunk {
            response_id: response_id.to_owned(),
            session: session.to_owned(),
            text,
            progress,
            targets: self.answer_targets(session, turn),
            reply_to: turn.reply_ref(),
        });
    }

    /// The session's row from the actor's cache, read once per busy period; `None` when it was deleted.
    async fn session_row(&self, session: &str, handle: &SessionHandle) -> OrchestratorResult<Option<SessionRow>> {
        if let Some(row) = handle.row.lock().expect("row lock").clone() {
            return Ok(Some(row));
        }
        match self.inner.store.session(session).await {
            Ok(row) => {
                *handle.row.lock().expect("row lock") = Some(row.clone());
                Ok(Some(row))
            }
            Err(crate::store::StoreError::NotFound) => Ok(None),
            Err(error) => Err(error.into()),
        }
    }

    /// Where an answer to `turn` goes: every channel bound to the session now,
    /// and the channel that asked even if it was unbound (or rebound) while
    /// the agent worked, so an answer is never committed to nobody. Messages
    /// queued by tell or broadcast (no platform message id) answer only to
    /// the bound channels.
    fn answer_targets(&self, session: &str, turn: &Inbound) -> Vec<ChannelRef> {
        let mut targets = self.channels_of(session);
        if turn.message_id.is_some() && !targets.contains(&turn.channel) {
            targets.push(turn.channel.clone());
        }
        targets
    }

    /// The conversation so far, oldest first: every question the agent
    /// answered, with its answer. A question whose turn failed, was cancelled
    /// or was interrupted is left out, so it never leaks into the next prompt.
    async fn conversation(&self, session: &str) -> OrchestratorResult<Vec<HistoryTurn>> {
        let rows = self.inner.store.last_messages(session, CONVERSATION_LIMIT).await?;
        Ok(answered_turns(rows))
    }

    /// Tells the channel of a message that its session was deleted before
    /// answering it (so no message goes unanswered in silence), and marks it dropped.
    pub(super) async fn tell_unanswered(&self, session: &str, message: &Inbound) -> OrchestratorResult<()> {
        if message.message_id.is_none() {
            // Told or broadcast: nobody waits in a channel for it.
            return Ok(self.inner.store.set_inbound_state(message.id, InboundState::Dropped).await?);
        }
        let preview: String = message.text.chars().take(80).collect();
        let text = format!("⚠ Session {session} was deleted before it answered \"{preview}\".");
        let response = NewResponse {
            response_id: uuid::Uuid::new_v4().to_string(),
            session: None,
            kind: ResponseKind::Notice,
            text,
            targets: vec![message.channel.clone()],
            reply_to: message.reply_ref(),
            permission: None,
            attachments: Vec::new(),
            trace_context: gorp_telemetry::current_traceparent(),
        };
        let commit = Commit { finish: Some((message.id, InboundState::Dropped)), ..Commit::default() };
        self.inner.bus.append(response, commit).await?;
        Ok(())
    }

    /// Marks a turn that was running when gorpd stopped as interrupted and tells its channels.
    pub(super) async fn report_interrupted(&self, turn: &Inbound, session: Option<&str>) -> OrchestratorResult<()> {
        let Some(session) = session else {
            return Ok(self.inner.store.set_inbound_state(turn.id, InboundState::Interrupted).await?);
        };
        let preview: String = turn.text.chars().take(80).collect();
        let text = format!(
            "⚠ gorpd restarted while {session} was answering \"{preview}\"; that turn was interrupted. Send it again if you still need it."
        );
        tracing::warn!(session, message_id = turn.id, "turn interrupted by a restart");
        let response = NewResponse {
            response_id: uuid::Uuid::new_v4().to_string(),
            session: Some(session.to_owned()),
            kind: ResponseKind::Notice,
            text: text.clone(),
            targets: self.answer_targets(session, turn),
            reply_to: turn.reply_ref(),
            permission: None,
            attachments: Vec::new(),
            trace_context: gorp_telemetry::current_traceparent(),
        };
        let commit =
            Commit { in_history: true, finish: Some((turn.id, InboundState::Interrupted)), only_if_running: false };
        self.inner.bus.append(response, commit).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::HistoryRow;

    fn row(role: &str, text: &str) -> HistoryRow {
        let channel = (role == "user").then(|| ChannelRef::new("web", "c"));
        let (role, author, text) = (role.to_owned(), "bob".to_owned(), text.to_owned());
        HistoryRow { id: 0, role, author, text, channel, created_at: chrono::Utc::now(), attachments: Vec::new() }
    }

    #[test]
    fn only_answered_questions_and_their_answers_make_the_conversation() {
        let rows = vec![
            row("user", "q1"),
            row("assistant", "a1"),
            row("user", "failed"),
            row("error", "⚠ failed"),
            row("user", "cancelled"),
            row("notice", "⏹ cancelled"),
            row("user", "q2"),
            row("assistant", "a2"),
            row("user", "running now"),
        ];
        let turns = answered_turns(rows);
        let texts: Vec<_> = turns.iter().map(|t| (t.from_user, t.text.as_str())).collect();
        assert_eq!(texts, [(true, "q1"), (false, "a1"), (true, "q2"), (false, "a2")]);
        let sender = turns[0].sender.as_ref().unwrap();
        assert_eq!((sender.name.as_str(), sender.platform.as_str(), sender.channel.as_str()), ("bob", "web", "c"));
    }
}
