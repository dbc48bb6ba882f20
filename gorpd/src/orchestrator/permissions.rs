//! Permission requests from agents: published to every channel bound to the
//! session with a short id, answered from any of them with `!approve <id>`
//! (optionally `always`) or `!deny <id>`. The first answer wins; the other
//! channels are told who resolved it; later answers hear "already resolved";
//! silence denies after the configured timeout; a turn that ends cancels
//! what it still waits for. Nothing is ever approved without an answer.

use super::{Orchestrator, OrchestratorError, OrchestratorResult};
use crate::agent::{PermissionAsk, PermissionDecision};
use crate::bus::{
    ChannelRef, MessageRef, NewResponse, PermissionNotice, PermissionOption, PermissionState, ResponseKind,
};
use crate::store::Commit;
use std::collections::{HashMap, VecDeque};
use tokio::sync::oneshot;
use tracing::Instrument;

/// How many resolved requests are remembered for "already resolved" answers.
const RESOLVED_MEMORY: usize = 1024;

/// Requests waiting for an answer, and a memory of the resolved ones.
#[derive(Debug, Default)]
pub(super) struct PermissionTable {
    pending: HashMap<String, Pending>,
    resolved: VecDeque<(String, String)>,
}

#[derive(Debug)]
struct Pending {
    session: String,
    notice: PermissionNotice,
    reply_to: Option<MessageRef>,
    reply: oneshot::Sender<PermissionDecision>,
    asked_at: std::time::Instant,
    /// Open from the request to its answer (a child of the turn's span).
    span: tracing::Span,
}

/// How an answer picks among the agent's options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    /// `!approve <id>`.
    Approve,
    /// `!approve <id> always`.
    ApproveAlways,
    /// `!deny <id>` (and the timeout).
    Deny,
}

impl Answer {
    /// The option kinds to look for, most preferred first.
    fn preferred_kinds(self) -> &'static [&'static str] {
        match self {
            Self::Approve => &["allow_once", "allow_always"],
            Self::ApproveAlways => &["allow_always", "allow_once"],
            Self::Deny => &["reject_once", "reject_always"],
        }
    }

    fn state(self) -> PermissionState {
        match self {
            Self::Approve | Self::ApproveAlways => PermissionState::Approved,
            Self::Deny => PermissionState::Denied,
        }
    }
}

/// An answer given on one replica to a request another replica's turn
/// waits for; sent to every replica, and resolved by the one that has it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct ForwardedAnswer {
    id: String,
    answer: Answer,
    platform: String,
    channel: String,
    sender: String,
}

impl ForwardedAnswer {
    fn to_payload(&self) -> String {
        serde_json::to_string(self).expect("answers serialise")
    }

    fn from_payload(payload: &str) -> Option<Self> {
        serde_json::from_str(payload).ok()
    }
}

fn invalid(reason: String) -> OrchestratorError {
    OrchestratorError::Invalid(reason)
}

fn choose(options: &[PermissionOption], answer: Answer) -> PermissionDecision {
    let chosen = answer.preferred_kinds().iter().find_map(|kind| options.iter().find(|o| o.kind == *kind));
    chosen.map_or(PermissionDecision::Cancelled, |o| PermissionDecision::Selected(o.id.clone()))
}

fn new_id(taken: &HashMap<String, Pending>) -> String {
    loop {
        let id = format!("{:04x}", rand::random::<u16>());
        if !taken.contains_key(&id) {
            return id;
        }
    }
}

impl Orchestrator {
    /// Publishes an agent's permission request to the session's channels and
    /// arms its timeout. The answer reaches the agent through `ask.reply`.
    pub(super) async fn ask_permission(
        &self,
        session: &str,
        reply_to: Option<MessageRef>,
        ask: PermissionAsk,
    ) -> OrchestratorResult<()> {
        let span = tracing::info_span!("permission", session, permission = tracing::field::Empty);
        let notice = {
            let mut table = self.inner.permissions.lock().expect("permission lock");
            let id = new_id(&table.pending);
            span.record("permission", id.as_str());
            let notice = PermissionNotice {
                id: id.clone(),
                title: ask.title,
                options: ask.options,
                state: PermissionState::Pending,
                resolved_by: None,
            };
            let pending = Pending {
                session: session.to_owned(),
                notice: notice.clone(),
                reply_to: reply_to.clone(),
                reply: ask.reply,
                asked_at: std::time::Instant::now(),
                span: span.clone(),
            };
            table.pending.insert(id, pending);
            notice
        };
        let always = notice.options.iter().any(|o| o.kind == "allow_always");
        let id = &notice.id;
        let text = format!(
            "🔐 {session} asks for permission: {}\nAnswer with !approve {id}{} or !deny {id}.",
            notice.title,
            if always { format!(", !approve {id} always") } else { String::new() },
        );
        tracing::info!(session, permission = %id, title = %notice.title, "permission requested");
        let timeout = self.inner.config.permission_timeout;
        let orchestrator = self.clone();
        let timer_id = id.clone();
        self.inner.tasks.spawn(async move {
            tokio::select! {
                _ = orchestrator.inner.shutdown.cancelled() => {}
                _ = tokio::time::sleep(timeout) => {
                    let _ = orchestrator.finish(&timer_id, PermissionState::TimedOut, Answer::Deny, None, None).await;
                }
            }
        });
        self.publish_notice(session, text, notice, reply_to, None).instrument(span).await
    }

    /// Answers a pending request from `origin`, which must be bound to the session that asked.
    /// Returns the text for the one who answered. Among replicas, a request
    /// this replica does not know goes to the others (see [`ForwardedAnswer`]).
    pub async fn answer_permission(
        &self,
        id: &str,
        answer: Answer,
        origin: &ChannelRef,
        sender: &str,
    ) -> OrchestratorResult<String> {
        let (session, resolved) = {
            let table = self.inner.permissions.lock().expect("permission lock");
            let session = table.pending.get(id).map(|pending| pending.session.clone());
            (session, table.resolved.iter().find(|(rid, _)| rid == id).map(|(_, how)| how.clone()))
        };
        match (session, resolved) {
            (Some(session), _) => self.resolve_answer(id, &session, answer, origin, sender, Some(origin)).await,
            (None, Some(how)) => Err(invalid(format!("permission request {id} was already resolved: {how}"))),
            (None, None) if self.inner.replica.is_some() => self.forward_answer(id, answer, origin, sender).await,
            (None, None) => Err(invalid(format!("no pending permission request {id}"))),
        }
    }

    /// Resolves request `id` of `session` with `origin`'s answer; `quiet`
    /// (the asker, answered directly) gets no notice.
    async fn resolve_answer(
        &self,
        id: &str,
        session: &str,
        answer: Answer,
        origin: &ChannelRef,
        sender: &str,
        quiet: Option<&ChannelRef>,
    ) -> OrchestratorResult<String> {
        if self.session_of(origin).as_deref() != Some(session) {
            return Err(invalid(format!(
                "permission request {id} belongs to {session}; answer it from a channel bound to {session}"
            )));
        }
        let by = format!("{sender} ({origin})");
        match self.finish(id, answer.state(), answer, Some(by), quiet).await? {
            Some(summary) => Ok(summary),
            None => Err(invalid(format!("permission request {id} was resolved a moment ago"))),
        }
    }

    /// Sends an answer to the replica running the turn of `origin`'s session,
    /// which posts the outcome to the session's channels, `origin` included.
    async fn forward_answer(
        &self,
        id: &str,
        answer: Answer,
        origin: &ChannelRef,
        sender: &str,
    ) -> OrchestratorResult<String> {
        let unknown = || invalid(format!("no pending permission request {id}"));
        let session = self.session_of(origin).ok_or_else(unknown)?;
        // Its turn runs here (the request would be known) or nowhere: nothing to forward.
        let (running, _) = self.inner.store.session_activity(&session).await?;
        if !running || self.runs_here(&session) {
            return Err(unknown());
        }
        let forwarded = ForwardedAnswer {
            id: id.to_owned(),
            answer,
            platform: origin.platform.clone(),
            channel: origin.channel_id.clone(),
            sender: sender.to_owned(),
        };
        self.inner.store.notify(&crate::store::Announcement::permission(&forwarded.to_payload())).await?;
        tracing::info!(session, permission = id, "permission answer sent to the replica running the turn");
        Ok(format!("Your answer to {id} went to the replica running {session}'s turn; the outcome follows here."))
    }

    /// Resolves a forwarded answer when the request is pending here (another replica's user answered).
    pub(super) async fn answer_forwarded(&self, payload: &str) {
        let Some(forwarded) = ForwardedAnswer::from_payload(payload) else {
            tracing::warn!(payload, "a forwarded permission answer could not be read");
            return;
        };
        let session = {
            let table = self.inner.permissions.lock().expect("permission lock");
            table.pending.get(&forwarded.id).map(|pending| pending.session.clone())
        };
        let Some(session) = session else { return };
        let origin = ChannelRef::new(&forwarded.platform, &forwarded.channel);
        let (id, answer, sender) = (&forwarded.id, forwarded.answer, &forwarded.sender);
        if let Err(error) = self.resolve_answer(id, &session, answer, &origin, sender, None).await {
            tracing::warn!(%error, permission = %id, "a forwarded permission answer was refused");
            let _ = self.notify(Some(&session), vec![origin], format!("⚠ {error}")).await;
        }
    }

    /// Whether `session` waits for an answer to a permission request.
    pub fn waits_for_permission(&self, session: &str) -> bool {
        let table = self.inner.permissions.lock().expect("permission lock");
        table.pending.values().any(|pending| pending.session == session)
    }

    /// Cancels what a session's finished turn still waits for.
    pub(super) async fn cancel_permissions(&self, session: &str) {
        let ids: Vec<String> = {
            let table = self.inner.permissions.lock().expect("permission lock");
            table.pending.iter().filter(|(_, p)| p.session == session).map(|(id, _)| id.clone()).collect()
        };
        for id in ids {
            if let Err(error) = self.finish(&id, PermissionState::Cancelled, Answer::Deny, None, None).await {
                tracing::warn!(%error, permission = %id, "could not report a cancelled permission request");
            }
        }
    }

    /// Resolves a pending request once: tells the agent, remembers the outcome
    /// and tells the session's channels (except `quiet`, who is answered directly).
    /// `None` when it was no longer pending.
    async fn finish(
        &self,
        id: &str,
        state: PermissionState,
        answer: Answer,
        by: Option<String>,
        quiet: Option<&ChannelRef>,
    ) -> OrchestratorResult<Option<String>> {
        let pending = {
            let mut table = self.inner.permissions.lock().expect("permission lock");
            let Some(pending) = table.pending.remove(id) else { return Ok(None) };
            pending
        };
        self.inner.metrics.permission_resolved(pending.asked_at.elapsed());
        let decision = match state {
            PermissionState::Cancelled => PermissionDecision::Cancelled,
            _ => choose(&pending.notice.options, answer),
        };
        // The agent may have gone away already; the outcome is reported either way.
        let _ = pending.reply.send(decision);
        let title = &pending.notice.title;
        let summary = match (state, &by) {
            (PermissionState::Approved, Some(by)) => {
                format!("approved{} by {by}", if answer == Answer::ApproveAlways { " (always)" } else { "" })
            }
            (PermissionState::Denied, Some(by)) => format!("denied by {by}"),
            (PermissionState::TimedOut, _) => "denied: nobody answered in time".to_owned(),
            _ => "cancelled: the turn ended first".to_owned(),
        };
        {
            let mut table = self.inner.permissions.lock().expect("permission lock");
            table.resolved.push_back((id.to_owned(), summary.clone()));
            if table.resolved.len() > RESOLVED_MEMORY {
                table.resolved.pop_front();
            }
        }
        tracing::info!(session = %pending.session, permission = id, outcome = %summary, "permission resolved");
        let notice = PermissionNotice { state, resolved_by: by, ..pending.notice.clone() };
        let text = format!("Permission {id} ({title}) {summary}.");
        let published = self.publish_notice(&pending.session, text, notice, pending.reply_to.clone(), quiet);
        published.instrument(pending.span.clone()).await?;
        Ok(Some(format!("Permission {id} ({title}) {summary}.")))
    }

    async fn publish_notice(
        &self,
        session: &str,
        text: String,
        notice: PermissionNotice,
        reply_to: Option<MessageRef>,
        except: Option<&ChannelRef>,
    ) -> OrchestratorResult<()> {
        let targets = self.channels_of(session).into_iter().filter(|c| Some(c) != except).collect();
        let response = NewResponse {
            response_id: uuid::Uuid::new_v4().to_string(),
            session: Some(session.to_owned()),
            kind: ResponseKind::Notice,
            text,
            targets,
            reply_to,
            permission: Some(notice),
            attachments: Vec::new(),
            trace_context: gorp_telemetry::current_traceparent(),
        };
        self.inner.bus.append(response, Commit::default()).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn option(id: &str, kind: &str) -> PermissionOption {
        PermissionOption { id: id.into(), label: id.into(), kind: kind.into() }
    }

    #[test]
    fn answers_pick_the_matching_kind_of_option() {
        let all = [option("a1", "allow_once"), option("a2", "allow_always"), option("r1", "reject_once")];
        assert_eq!(choose(&all, Answer::Approve), PermissionDecision::Selected("a1".into()));
        assert_eq!(choose(&all, Answer::ApproveAlways), PermissionDecision::Selected("a2".into()));
        assert_eq!(choose(&all, Answer::Deny), PermissionDecision::Selected("r1".into()));
        let only_always = [option("a2", "allow_always")];
        assert_eq!(choose(&only_always, Answer::Approve), PermissionDecision::Selected("a2".into()));
        assert_eq!(choose(&only_always, Answer::Deny), PermissionDecision::Cancelled, "no reject option: cancel");
    }
}
