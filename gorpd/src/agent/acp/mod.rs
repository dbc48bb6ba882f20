//! The ACP backend: Agent Client Protocol agents (Claude Code, Codex, Gemini
//! CLI, …) run as subprocesses speaking JSON-RPC over stdio.
//!
//! The warm-session pool keeps one agent process per gorp session alive
//! between prompts; a process stops after `idle_timeout` without a prompt,
//! and at most `max_running` run at once (starting one more stops the least
//! recently used). A prompt for a session without a live process starts one,
//! which resumes the conversation with `session/load` and the stored agent
//! session id. Dropping a turn's event stream cancels the turn.

mod check;
mod connection;
mod content;
mod fs;
mod handlers;
mod mcp;
mod state;
mod stderr;
mod terminal;
mod updates;

pub use terminal::TerminalPolicy;

use super::{AgentBackend, AgentEvent, AgentView, PromptRequest, PromptTemplate, Setting};
use connection::Turn;
use futures::future::BoxFuture;
use futures::stream::{BoxStream, StreamExt};
use state::AgentState;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// How to run one ACP agent.
#[derive(Debug, Clone)]
pub struct AcpConfig {
    /// Program to run.
    pub command: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// Extra environment variables.
    pub env: BTreeMap<String, String>,
    /// Approve every permission request without asking.
    pub auto_approve: bool,
    /// Stop a process after this long without a prompt.
    pub idle_timeout: Duration,
    /// How a user's message is framed.
    pub prompt_template: PromptTemplate,
    /// MCP servers passed with `session/new` and `session/load`.
    pub mcp_servers: Vec<crate::config::McpServerConfig>,
    /// Mode set when a session opens.
    pub mode: Option<String>,
    /// Model set when a session opens.
    pub model: Option<String>,
    /// What the agent may run in terminals.
    pub terminal: TerminalPolicy,
    /// What its tokens cost.
    pub prices: Option<crate::config::PriceTable>,
}

/// Live agent processes of all ACP profiles, by gorp session.
#[derive(Debug)]
pub struct AgentPool {
    max_running: usize,
    processes: Mutex<HashMap<String, Process>>,
    /// Modes, models, commands and login of each session's agent, kept across its processes.
    states: Mutex<HashMap<String, Arc<AgentState>>>,
    /// Fired at shutdown: every process is killed, mid-turn or not.
    stop: CancellationToken,
}

#[derive(Debug)]
struct Process {
    turns: mpsc::UnboundedSender<Turn>,
    last_used: Instant,
}

impl Process {
    fn is_alive(&self) -> bool {
        !self.turns.is_closed()
    }
}

impl AgentPool {
    /// A pool running at most `max_running` agent processes at once.
    pub fn new(max_running: usize) -> Arc<Self> {
        Arc::new(Self {
            max_running: max_running.max(1),
            processes: Mutex::default(),
            states: Mutex::default(),
            stop: CancellationToken::new(),
        })
    }

    /// Lets `session`'s process finish its turn and exit, and forgets its agent's state.
    pub fn stop(&self, session: &str) {
        self.processes.lock().expect("pool lock").remove(session);
        self.states.lock().expect("pool lock").remove(session);
    }

    /// The agent state of `session`, created on first use.
    fn state(&self, session: &str) -> Arc<AgentState> {
        self.states.lock().expect("pool lock").entry(session.to_owned()).or_default().clone()
    }

    /// The agent state of `session`, if it ever had one.
    fn known_state(&self, session: &str) -> Option<Arc<AgentState>> {
        self.states.lock().expect("pool lock").get(session).cloned()
    }

    /// Kills every agent process.
    pub fn shutdown(&self) {
        self.stop.cancel();
        self.processes.lock().expect("pool lock").clear();
    }

    /// Whether `session` has a live process.
    pub fn is_running(&self, session: &str) -> bool {
        self.processes.lock().expect("pool lock").get(session).is_some_and(Process::is_alive)
    }

    /// How many processes are alive.
    pub fn running(&self) -> usize {
        self.processes.lock().expect("pool lock").values().filter(|p| p.is_alive()).count()
    }

    /// Hands `turn` to the session's live process, starting one when needed.
    fn submit(&self, config: &Arc<AcpConfig>, turn: Turn) {
        let mut processes = self.processes.lock().expect("pool lock");
        processes.retain(|_, p| p.is_alive());
        let session = turn.request.session.clone();
        if let Some(process) = processes.get_mut(&session) {
            process.last_used = Instant::now();
            match process.turns.send(turn) {
                Ok(()) => return,
                // It died just now: start a new one below with the same turn.
                Err(mpsc::error::SendError(turn)) => return self.start(&mut processes, config, turn),
            }
        }
        self.start(&mut processes, config, turn);
    }

    fn start(&self, processes: &mut HashMap<String, Process>, config: &Arc<AcpConfig>, turn: Turn) {
        while processes.len() >= self.max_running {
            let Some(oldest) = processes.iter().min_by_key(|(_, p)| p.last_used).map(|(s, _)| s.clone()) else { break };
            // Dropping its queue lets the process finish its turn and exit.
            processes.remove(&oldest);
            tracing::info!(session = %oldest, "stopping the least recently used agent process");
        }
        let (turns, queue) = mpsc::unbounded_channel();
        let config = config.clone();
        let session = turn.request.session.clone();
        let workspace = turn.request.workspace.clone();
        let _ = turns.send(turn);
        let stop = self.stop.clone();
        let span = tracing::info_span!("agent", session = %session);
        let process = connection::run(config, session.clone(), workspace, queue, self.state(&session));
        tokio::spawn(
            async move {
                tokio::select! {
                    _ = stop.cancelled() => {}
                    _ = process => {}
                }
            }
            .instrument(span),
        );
        processes.insert(session, Process { turns, last_used: Instant::now() });
    }
}

/// An ACP agent profile.
#[derive(Debug, Clone)]
pub struct AcpBackend {
    config: Arc<AcpConfig>,
    pool: Arc<AgentPool>,
}

impl AcpBackend {
    /// A backend for one profile, sharing `pool` with the other ACP profiles.
    pub fn new(config: AcpConfig, pool: Arc<AgentPool>) -> Self {
        Self { config: Arc::new(config), pool }
    }
}

impl AgentBackend for AcpBackend {
    fn prompt(&self, request: PromptRequest) -> BoxStream<'static, AgentEvent> {
        let (events, stream) = mpsc::unbounded_channel();
        self.pool.submit(&self.config, Turn { request, events });
        UnboundedReceiverStream::new(stream).boxed()
    }

    fn process_running(&self, session: &str) -> Option<bool> {
        Some(self.pool.is_running(session))
    }

    fn prices(&self) -> Option<&crate::config::PriceTable> {
        self.config.prices.as_ref()
    }

    fn check(&self) -> BoxFuture<'static, Result<String, String>> {
        let config = self.config.clone();
        Box::pin(async move { check::check(&config).await })
    }

    fn view(&self, session: &str) -> Option<AgentView> {
        Some(self.pool.known_state(session).map(|state| state.view()).unwrap_or_default())
    }

    fn change(&self, session: &str, setting: Setting, value: &str) -> BoxFuture<'static, Result<String, String>> {
        let state = self.pool.state(session);
        let value = value.to_owned();
        Box::pin(async move { state.change(setting, &value).await })
    }

    fn login(&self, session: &str, method: Option<&str>) -> BoxFuture<'static, Result<String, String>> {
        let state = self.pool.state(session);
        let method = method.map(str::to_owned);
        Box::pin(async move { state.login(method.as_deref()).await })
    }

    fn stop_session(&self, session: &str) {
        self.pool.stop(session);
    }

    fn shutdown(&self) {
        self.pool.shutdown();
    }
}
