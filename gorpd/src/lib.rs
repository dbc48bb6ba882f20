//! gorpd: the one stateful gorp process. It hosts the durable message bus,
//! the orchestrator (session actors and DISPATCH), the agent backends and the
//! gRPC and HTTP listeners.
//!
//! [`Gorpd::open`] recovers everything from the data directory before any
//! port accepts a connection; [`Gorpd::run`] serves until the cancellation
//! token fires, then stops listeners, ends open streams with UNAVAILABLE and
//! waits for every task under a deadline.

pub mod agent;
pub mod auth;
pub mod bus;
pub mod clock;
pub mod config;
pub mod domain;
pub mod files;
pub mod grpc;
pub mod metrics;
pub mod names;
pub mod orchestrator;
pub mod replica;
pub mod scheduling;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;
pub mod web;

use agent::{
    AcpBackend, AcpConfig, AgentPool, Backends, EchoBackend, OpenAiBackend, OpenAiConfig, PromptTemplate,
    TerminalPolicy,
};
use auth::Authenticator;
use bus::Bus;
use config::{AgentProfile, Config};
use orchestrator::{Orchestrator, OrchestratorConfig, OrchestratorError};
use std::path::PathBuf;
use std::time::Duration;
use store::{Store, StoreError};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long shutdown waits for streams and turns to end.
pub const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(5);

/// Why gorpd could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The data directory could not be created.
    #[error("data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
    /// The configured default backend does not exist.
    #[error("agent profile \"{0}\" has no backend in this build")]
    UnknownBackend(String),
    /// Opening the store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Token setup failed.
    #[error(transparent)]
    Auth(#[from] auth::AuthError),
    /// Recovery failed.
    #[error(transparent)]
    Orchestrator(#[from] OrchestratorError),
    /// The gRPC server failed.
    #[error(transparent)]
    Grpc(#[from] grpc::GrpcError),
    /// The HTTP server failed.
    #[error("HTTP server: {0}")]
    Http(#[source] std::io::Error),
    /// Another gorpd runs on the data directory.
    #[error("another gorpd is running on the data directory {0} (it holds {0}/gorpd.lock)")]
    DataDirInUse(String),
    /// This replica had to stop (its registration expired).
    #[error("replica stopped: {0}")]
    Replica(String),
}

/// The listeners gorpd serves on; bound by the caller so tests can use port 0.
#[derive(Debug)]
pub struct Listeners {
    /// gRPC (Bus, Control, health, reflection).
    pub grpc: TcpListener,
    /// HTTP (web adapter, `/healthz`).
    pub http: TcpListener,
}

impl Listeners {
    /// Binds the configured addresses.
    pub async fn bind(config: &Config) -> std::io::Result<Self> {
        let grpc = TcpListener::bind(config.grpc_addr).await?;
        let http = TcpListener::bind(config.http_addr).await?;
        Ok(Self { grpc, http })
    }
}

/// A backend for every agent profile in `config`.
pub fn agent_backends(config: &Config) -> Backends {
    let mut backends = Backends::new();
    let pool = AgentPool::new(config.max_agents);
    for (name, profile) in &config.agents {
        let template = PromptTemplate::parse(profile.prompt_template().unwrap_or(&config.prompt_template))
            .expect("templates are checked when the config loads");
        backends = match profile {
            AgentProfile::Echo { chunk_delay_ms } => {
                let delay = chunk_delay_ms.unwrap_or(config.echo_chunk_delay_ms);
                backends.with(name, EchoBackend::new(Duration::from_millis(delay)))
            }
            AgentProfile::Openai {
                base_url,
                model,
                api_key_env,
                system_prompt,
                context_tokens,
                timeout_secs,
                max_tokens,
                temperature,
                prompt_template: _,
                prices,
                images,
            } => {
                let openai = OpenAiConfig {
                    base_url: base_url.clone(),
                    model: model.clone(),
                    api_key_env: api_key_env.clone(),
                    system_prompt: system_prompt.clone(),
                    context_tokens: context_tokens.unwrap_or(OpenAiConfig::DEFAULT_CONTEXT_TOKENS),
                    timeout: Duration::from_secs(timeout_secs.unwrap_or(OpenAiConfig::DEFAULT_TIMEOUT_SECS)),
                    max_tokens: *max_tokens,
                    temperature: *temperature,
                    prompt_template: template,
                    prices: prices.clone(),
                    images: images.unwrap_or(false),
                };
                backends.with(name, OpenAiBackend::new(openai))
            }
            AgentProfile::Acp(profile) => {
                let acp = AcpConfig {
                    command: profile.command.clone(),
                    args: profile.args.clone(),
                    env: profile.env.clone(),
                    auto_approve: profile.auto_approve,
                    idle_timeout: Duration::from_secs(config.agent_idle_secs),
                    prompt_template: template,
                    mcp_servers: profile.mcp_servers.clone(),
                    prices: profile.prices.clone(),
                    mode: profile.mode.clone(),
                    model: profile.model.clone(),
                    terminal: TerminalPolicy {
                        allow: profile.terminal_commands.clone(),
                        timeout: Duration::from_secs(
                            profile.terminal_timeout_secs.unwrap_or(config::DEFAULT_TERMINAL_TIMEOUT_SECS),
                        ),
                    },
                };
                backends.with(name, AcpBackend::new(acp, pool.clone()))
            }
        };
    }
    backends
}

/// Makes ring rustls's process-wide crypto provider. A workspace build links
/// a second provider (aws-lc-rs, through the Matrix gateway's dependencies),
/// and rustls then refuses to pick one by itself. Idempotent.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A recovered gorpd, ready to serve.
#[derive(Debug)]
pub struct Gorpd {
    config: Config,
    store: Store,
    auth: Authenticator,
    orchestrator: Orchestrator,
    admin_token_path: PathBuf,
    logins: web::Logins,
    /// Set when this gorpd is a replica on Postgres: says why it had to stop, if it did.
    replica: Option<replica::Stopped>,
    /// Held while this gorpd runs: one gorpd per data directory.
    data_dir_lock: std::fs::File,
    shutdown: CancellationToken,
    tasks: TaskTracker,
}

impl Gorpd {
    /// Opens the data directory, migrates the store, makes sure an admin token
    /// exists and recovers sessions, bindings and unfinished turns.
    pub async fn open(config: Config, backends: Backends, shutdown: CancellationToken) -> Result<Self, ServeError> {
        Self::open_with_clock(config, backends, std::sync::Arc::new(clock::SystemClock), shutdown).await
    }

    /// Like [`Gorpd::open`], with schedules firing by `clock` (tests move it by hand).
    pub async fn open_with_clock(
        config: Config,
        backends: Backends,
        clock: clock::SharedClock,
        shutdown: CancellationToken,
    ) -> Result<Self, ServeError> {
        install_crypto_provider();
        if let Some(name) = config.agents.keys().find(|name| backends.get(name).is_none()) {
            return Err(ServeError::UnknownBackend(name.clone()));
        }
        create_private_dir(&config.data_dir)
            .map_err(|source| ServeError::DataDir { path: config.data_dir.clone(), source })?;
        let data_dir_lock = lock_data_dir(&config.data_dir)?;
        let replica_settings = match &config.store_url {
            None => None,
            Some(_) => {
                let (id, rejoined) = replica::identity(&config.data_dir)
                    .map_err(|source| ServeError::DataDir { path: config.data_dir.clone(), source })?;
                let lease = Duration::from_secs(config.lease_secs);
                Some(orchestrator::ReplicaSettings { id, rejoined, name: config.replica_name.clone(), lease })
            }
        };
        let store =
            Store::open_configured(&config.data_dir, config.store_url.as_deref(), config.max_database_bytes).await?;
        let auth = Authenticator::load(store.clone()).await?;
        let admin_token_path = auth.ensure_admin_token(&config.data_dir).await?;
        let tasks = TaskTracker::new();
        let orchestrator_config = OrchestratorConfig {
            workspace_root: config.workspace_root.clone(),
            workspace_template: config.workspace_template.clone(),
            max_text_bytes: config.max_body_bytes,
            read_default: config.read_default,
            read_max: config.read_max,
            default_agent: config.default_agent.clone(),
            permission_timeout: Duration::from_secs(config.permission_timeout_secs),
            turn_timeout: Duration::from_secs(config.turn_timeout_secs),
            max_queued_messages: config.max_queued_messages,
            timezone: config.timezone,
            hook_per_minute: config.hook_per_minute,
            hook_wait_max_secs: config.hook_wait_max_secs,
            history_keep: config.history_keep_days.map(|days| chrono::Duration::days(i64::from(days))),
            max_database_bytes: config.max_database_bytes,
            dedup_window: chrono::Duration::days(i64::from(config.dedup_window_days)),
            gateway_stale: chrono::Duration::days(i64::from(config.gateway_stale_days)),
            retention_every: Duration::from_secs(config.retention_every_secs),
            dispatch_scopes: config.dispatch_scopes.clone(),
            file_limits: config.file_limits,
            files_dir: config.files_dir.clone(),
            replica: replica_settings,
        };
        let bus = match store.engine() {
            store::Engine::Sqlite => Bus::with_capacity(store.clone(), config.live_buffer),
            store::Engine::Postgres => {
                Bus::following_the_log(store.clone(), config.live_buffer, shutdown.clone(), &tasks)
            }
        };
        let orchestrator = Orchestrator::start(
            store.clone(),
            bus,
            orchestrator_config,
            backends,
            clock,
            shutdown.clone(),
            tasks.clone(),
        )
        .await?;
        let logins = web::Logins::restore(config.web_password_hash.clone(), store.clone()).await?;
        let replica = match store.replica() {
            Some(_) => {
                let edges =
                    replica::Edges { orchestrator: orchestrator.clone(), auth: auth.clone(), logins: logins.clone() };
                Some(replica::spawn(edges, shutdown.clone(), &tasks))
            }
            None => None,
        };
        Ok(Self {
            config,
            store,
            auth,
            orchestrator,
            admin_token_path,
            logins,
            replica,
            data_dir_lock,
            shutdown,
            tasks,
        })
    }

    /// Where the admin token is.
    pub fn admin_token_path(&self) -> &std::path::Path {
        &self.admin_token_path
    }

    /// The store (for in-process use and tests).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Web login sessions (tests mint one-time links with [`web::Logins::new_link_secret`]).
    pub fn logins(&self) -> &web::Logins {
        &self.logins
    }

    /// The orchestrator (for in-process use and tests).
    pub fn orchestrator(&self) -> &Orchestrator {
        &self.orchestrator
    }

    /// Serves until the shutdown token fires, then stops everything within [`SHUTDOWN_DEADLINE`].
    pub async fn run(self, listeners: Listeners) -> Result<(), ServeError> {
        let address = |listener: &TcpListener| listener.local_addr().map_or_else(|e| e.to_string(), |a| a.to_string());
        let (grpc_addr, http_addr) = (address(&listeners.grpc), address(&listeners.http));
        let presence = grpc::Presence::default();
        // Frames up to the largest text any configuration allows (plus inline
        // attachments and the envelope) are read, so a text over the configured limit gets its own
        // REJECTED ack; only a frame beyond this ends a stream.
        let max_message = config::MAX_MAX_BODY_BYTES + files::INLINE_MAX_TOTAL + 64 * 1024;
        let opening_timeout = Duration::from_secs(self.config.header_read_timeout_secs);
        let grpc_limits = grpc::GrpcLimits {
            max_message_bytes: max_message,
            max_connections: self.config.grpc_max_connections,
            opening_timeout,
        };
        let http_limits = web::ConnectionLimits {
            max_connections: self.config.http_max_connections,
            header_read_timeout: opening_timeout,
        };
        let state = grpc::GrpcState {
            orchestrator: self.orchestrator.clone(),
            auth: self.auth.clone(),
            shutdown: self.shutdown.clone(),
            tasks: self.tasks.clone(),
            presence: presence.clone(),
            limits: grpc_limits,
            http_limits,
            tls_certificates: Default::default(),
        };
        let web_state = web::WebState {
            orchestrator: self.orchestrator.clone(),
            auth: self.auth.clone(),
            presence,
            logins: self.logins.clone(),
            shutdown: self.shutdown.clone(),
            tasks: self.tasks.clone(),
            hook_limits: web::RateLimits::default(),
        };
        let tls = self.config.tls.clone();
        let mut grpc = tokio::spawn(async move { grpc::serve(state, listeners.grpc, tls.as_ref()).await });
        let mut http = tokio::spawn(web::serve(web_state, listeners.http, http_limits));
        tracing::info!(
            grpc = %grpc_addr, http = %http_addr, tls = self.config.tls.is_some(),
            admin_token = %self.admin_token_path.display(), data_dir = %self.config.data_dir.display(),
            store = self.store.engine().name(),
            "gorpd is serving"
        );
        // Like a notebook server: the link logs in once; a restart prints a new one.
        let login_url = format!("http://{http_addr}/login?token={}", self.logins.new_link_secret());
        tracing::info!(url = %login_url, "open the web chat (this login link works once)");
        // A listener that ends first (an error, or its own reaction to the token) is not awaited twice.
        let (mut grpc_done, mut http_done) = (false, false);
        let early = tokio::select! {
            _ = self.shutdown.cancelled() => None,
            result = &mut grpc => { grpc_done = true; Some(result.map(|r| r.map_err(ServeError::from))) }
            result = &mut http => { http_done = true; Some(result.map(|r| r.map_err(ServeError::Http))) }
        };
        self.shutdown.cancel();
        self.orchestrator.stop_agents();
        self.tasks.close();
        let drained = tokio::time::timeout(SHUTDOWN_DEADLINE, async {
            if !grpc_done {
                let _ = (&mut grpc).await;
            }
            if !http_done {
                let _ = (&mut http).await;
            }
            self.tasks.wait().await;
        })
        .await;
        if drained.is_err() {
            tracing::warn!("shutdown deadline passed; stopping anyway");
            grpc.abort();
            http.abort();
        }
        let lost = self.replica.as_ref().and_then(|stopped| stopped.reason());
        if self.replica.is_some() && lost.is_none() {
            // The other replicas take this one's sessions over now, not after the lease.
            if let Err(error) = self.store.leave_replicas().await {
                tracing::warn!(%error, "could not leave the replicas; they take over after the lease");
            }
        }
        self.store.close().await;
        drop(self.data_dir_lock);
        tracing::info!("gorpd stopped");
        match (early, lost) {
            (_, Some(reason)) => Err(ServeError::Replica(reason)),
            (Some(Ok(Err(error))), None) => Err(error),
            _ => Ok(()),
        }
    }
}

/// Locks the data directory for this gorpd (`gorpd.lock`, released when
/// the file is closed, also by a crash).
fn lock_data_dir(dir: &std::path::Path) -> Result<std::fs::File, ServeError> {
    let path = dir.join("gorpd.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| ServeError::DataDir { path: path.clone(), source })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(ServeError::DataDirInUse(dir.display().to_string())),
        Err(std::fs::TryLockError::Error(source)) => Err(ServeError::DataDir { path, source }),
    }
}

/// Creates `dir` (and missing parents) readable only by its owner; an existing directory is left as it is.
fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

/// Opens and serves with the built-in backends until `shutdown` fires.
pub async fn serve(config: Config, listeners: Listeners, shutdown: CancellationToken) -> Result<(), ServeError> {
    let backends = agent_backends(&config);
    Gorpd::open(config, backends, shutdown).await?.run(listeners).await
}
