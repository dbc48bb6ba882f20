//! Agent backends: the trait that turns a prompt into a stream of events, and
//! the registry of named backends a session can use.
//!
//! The session actor owns the turn; a backend only produces events. Dropping
//! the event stream cancels the turn.

mod acp;
mod echo;
mod files;
mod openai;
mod template;

pub use acp::{AcpBackend, AcpConfig, AgentPool, TerminalPolicy};
pub use echo::EchoBackend;
pub use files::{OUTBOX_DIR, ProducedFile, PromptFile, describe};
pub use openai::{OpenAiBackend, OpenAiConfig};
pub use template::{DEFAULT_PROMPT_TEMPLATE, PLACEHOLDERS, PromptTemplate, Sender};

pub use crate::bus::PermissionOption;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
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
    /// Files the user sent with the message.
    pub files: Vec<PromptFile>,
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
    /// A file the agent produced (an image, an embedded resource); it goes
    /// with the final answer.
    File(ProducedFile),
    /// The answer is complete (the concatenated chunks are the final text).
    Done,
    /// The turn failed; the text says why.
    Error(String),
}

/// One choice an agent offers (a mode, a model, a way to log in).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Choice {
    /// The id to pass back (`!mode <id>`).
    pub id: String,
    /// Its display name.
    pub name: String,
    /// What it does, when the agent says.
    pub description: Option<String>,
}

/// A slash command the agent offers (`/name` in chat).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentCommand {
    /// The command's name, without the slash.
    pub name: String,
    /// What it does.
    pub description: String,
    /// What to type after it, when it takes input.
    pub hint: Option<String>,
}

/// What gorp knows about a session's agent besides its turns.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AgentView {
    /// The current mode, when the agent has modes.
    pub mode: Option<String>,
    /// The modes it offers.
    pub modes: Vec<Choice>,
    /// The current model, when the agent lets clients pick one.
    pub model: Option<String>,
    /// The models it offers.
    pub models: Vec<Choice>,
    /// Its slash commands.
    pub commands: Vec<AgentCommand>,
    /// How one logs in to it.
    pub auth_methods: Vec<Choice>,
    /// The agent said authentication is required.
    pub needs_login: bool,
    /// Tokens in the agent's context window and its size, as the agent last reported.
    pub context: Option<(u64, u64)>,
    /// The session's cost so far and its currency, as the agent last reported.
    pub cost: Option<(f64, String)>,
}

/// A session setting a user can change from chat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setting {
    /// The agent's session mode (`!mode`).
    Mode,
    /// The agent's model (`!model`).
    Model,
}

impl Setting {
    /// The word users see.
    pub fn name(self) -> &'static str {
        match self {
            Setting::Mode => "mode",
            Setting::Model => "model",
        }
    }
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

    /// What this backend's tokens cost, when its profile says.
    fn prices(&self) -> Option<&crate::config::PriceTable> {
        None
    }

    /// Modes, models, commands and login state of `session`'s agent, for backends that have them.
    fn view(&self, _session: &str) -> Option<AgentView> {
        None
    }

    /// Changes a setting of `session`'s agent (now if it runs, else when it
    /// next starts); the text says what happened, the error why not.
    fn change(&self, _session: &str, setting: Setting, _value: &str) -> BoxFuture<'static, Result<String, String>> {
        Box::pin(std::future::ready(Err(format!("this agent has no {} to choose", setting.name()))))
    }

    /// Starts the agent's login flow with `method` (or lists the ways).
    fn login(&self, _session: &str, _method: Option<&str>) -> BoxFuture<'static, Result<String, String>> {
        Box::pin(std::future::ready(Err("this agent needs no login through gorp".to_owned())))
    }

    /// Stops the process of `session`, if any (the session was deleted).
    fn stop_session(&self, _session: &str) {}

    /// Stops every process this backend runs (gorpd is stopping).
    fn shutdown(&self) {}

    /// Checks that the agent can be used at all (`gorpctl doctor`): its
    /// command starts and answers, or its endpoint answers. `Ok` says what
    /// was found, `Err` what is wrong.
    fn check(&self) -> BoxFuture<'static, Result<String, String>> {
        Box::pin(std::future::ready(Ok("built in".to_owned())))
    }
}

/// Longest one agent check may take before it counts as not answering.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(10);

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

    /// Checks every backend at once (each within [`CHECK_TIMEOUT`]), by name.
    pub async fn check_all(&self) -> Vec<(String, Result<String, String>)> {
        let checks = self.by_name.iter().map(|(name, backend)| {
            let check = tokio::time::timeout(CHECK_TIMEOUT, backend.check());
            async move {
                let outcome =
                    check.await.unwrap_or_else(|_| Err(format!("no answer within {} s", CHECK_TIMEOUT.as_secs())));
                (name.clone(), outcome)
            }
        });
        futures::future::join_all(checks).await
    }

    /// Names of all backends.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(String::as_str)
    }
}
