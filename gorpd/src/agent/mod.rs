//! Agent backends: the trait that turns a prompt into a stream of events, and
//! the registry of named backends a session can use.
//!
//! The session actor owns the turn; a backend only produces events. Dropping
//! the event stream cancels the turn.

mod acp;
mod echo;
mod openai;
mod template;

pub use acp::{AcpBackend, AcpConfig, AgentPool};
pub use echo::EchoBackend;
pub use openai::{OpenAiBackend, OpenAiConfig};
pub use template::{DEFAULT_PROMPT_TEMPLATE, PLACEHOLDERS, PromptTemplate, Sender};

pub use crate::bus::PermissionOption;
use futures::stream::BoxStream;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::oneshot;

/// One prompt for a backend.
#[derive(Debug, Clone, Default)]
pub struct PromptRequest {
    /// The session's name.
    pub session: String,
    /// The session's workspace directory (the agent's working directory).
    pub workspace: PathBuf,
    /// What the user said.
    pub text: String,
    /// Who said it (for the profile's prompt template).
    pub sender: Sender,
    /// The conversation before this prompt, oldest first (for backends that keep no state of their own).
    pub history: Vec<HistoryTurn>,
    /// The agent's own id for this conversation, as reported earlier with [`AgentEvent::SessionId`].
    pub agent_session_id: Option<String>,
}

/// One earlier message of the conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryTurn {
    /// True for the user's message, false for the agent's answer.
    pub from_user: bool,
    /// The text.
    pub text: String,
    /// Who wrote a user's message, when it came from a channel.
    pub sender: Option<Sender>,
}

/// An agent asks before doing something; gorp answers through `reply`.
#[derive(Debug)]
pub struct PermissionAsk {
    /// What the agent wants to do.
    pub title: String,
    /// The agent's choices.
    pub options: Vec<PermissionOption>,
    /// Where the decision goes; dropping it means "cancelled".
    pub reply: oneshot::Sender<PermissionDecision>,
}

/// gorp's answer to a permission request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PermissionDecision {
    /// The option with this id was chosen.
    Selected(String),
    /// No choice (the turn is being cancelled).
    Cancelled,
}

/// What a backend reports while it works on a prompt.
#[derive(Debug)]
pub enum AgentEvent {
    /// A piece of the answer.
    Chunk(String),
    /// A progress line (a tool call, a plan step); shown live, not part of the answer.
    Progress(String),
    /// Tokens used by this turn.
    Usage {
        /// Prompt tokens.
        input_tokens: u64,
        /// Completion tokens.
        output_tokens: u64,
    },
    /// The agent's own id for this conversation, to resume it later.
    SessionId(String),
    /// The agent asks for permission; the turn waits for the answer.
    Permission(PermissionAsk),
    /// The answer is complete (the concatenated chunks are the final text).
    Done,
    /// The turn failed; the text says why.
    Error(String),
}

/// A source of agent answers (echo, ACP, OpenAI-compatible).
pub trait AgentBackend: Send + Sync + 'static {
    /// Streams the answer to one prompt; ends with `Done` or `Error`.
    fn prompt(&self, request: PromptRequest) -> BoxStream<'static, AgentEvent>;

    /// Whether prompts must carry the conversation (`PromptRequest::history`);
    /// backends that keep their own (ACP agents) or need none (echo) say no,
    /// and gorp then skips loading it.
    fn needs_history(&self) -> bool {
        false
    }

    /// Whether this backend runs a process for `session` now: `None` when it
    /// runs no processes at all (built in, or a remote endpoint).
    fn process_running(&self, _session: &str) -> Option<bool> {
        None
    }

    /// Stops the process of `session`, if any (the session was deleted).
    fn stop_session(&self, _session: &str) {}

    /// Stops every process this backend runs (gorpd is stopping).
    fn shutdown(&self) {}
}

/// Named backends available to sessions.
#[derive(Clone, Default)]
pub struct Backends {
    by_name: BTreeMap<String, Arc<dyn AgentBackend>>,
}

impl std::fmt::Debug for Backends {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.by_name.keys()).finish()
    }
}

impl Backends {
    /// No backends.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a backend under `name`.
    pub fn with(mut self, name: &str, backend: impl AgentBackend) -> Self {
        self.by_name.insert(name.to_owned(), Arc::new(backend));
        self
    }

    /// The backend called `name`.
    pub fn get(&self, name: &str) -> Option<Arc<dyn AgentBackend>> {
        self.by_name.get(name).cloned()
    }

    /// Stops `session`'s agent process in every backend.
    pub fn stop_session(&self, session: &str) {
        for backend in self.by_name.values() {
            backend.stop_session(session);
        }
    }

    /// Stops every backend's processes.
    pub fn shutdown(&self) {
        for backend in self.by_name.values() {
            backend.shutdown();
        }
    }

    /// Names of all backends.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(String::as_str)
    }
}
