//! Agent backends: the trait that turns a prompt into a stream of events, and
//! the registry of named backends a session can use.
//!
//! The session actor owns the turn; a backend only produces events. Dropping
//! the event stream cancels the turn.

mod echo;

pub use echo::EchoBackend;

use futures::stream::BoxStream;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// One prompt for a backend.
#[derive(Debug, Clone)]
pub struct PromptRequest {
    /// The session's name.
    pub session: String,
    /// The session's workspace directory (the agent's working directory).
    pub workspace: PathBuf,
    /// What the user said.
    pub text: String,
}

/// What a backend reports while it works on a prompt.
#[derive(Debug, Clone, PartialEq)]
pub enum AgentEvent {
    /// A piece of the answer.
    Chunk(String),
    /// The answer is complete (the concatenated chunks are the final text).
    Done,
    /// The turn failed; the text says why.
    Error(String),
}

/// A source of agent answers (echo, ACP, OpenAI-compatible).
pub trait AgentBackend: Send + Sync + 'static {
    /// Streams the answer to one prompt; ends with `Done` or `Error`.
    fn prompt(&self, request: PromptRequest) -> BoxStream<'static, AgentEvent>;
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

    /// Names of all backends.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(String::as_str)
    }
}
