//! The orchestrator: routes accepted messages to DISPATCH or to a session,
//! runs an actor for each session with work, and implements the fleet
//! operations that DISPATCH, the Control API and the web admin all call.
//!
//! Lifecycle: `start` loads the bindings, starts the router, marks turns
//! that were running when gorpd stopped as interrupted (telling their
//! channels), re-queues accepted but unanswered messages, then starts the
//! intake and the scheduler (which fires missed slots per their catch-up). Messages reach the router in the order they were accepted (for one
//! Publish stream, exactly its order); the router hands each session's
//! messages to its actor in that order (per-session FIFO).

mod access;
mod actor;
mod agents;
mod bindings;
mod dispatch;
mod error;
mod fleet;
mod hooks;
mod intake;
mod permissions;
mod replicas;
mod retention;
mod router;
mod scheduler;
mod session_config;
mod turn_files;
mod workspace;

pub use access::{DispatchScope, DispatchScopes};
pub use dispatch::{COMMANDS, parse_age};
pub use error::{OrchestratorError, OrchestratorResult};
pub use fleet::{SessionInfo, SessionState};
pub use hooks::{MAX_PER_MINUTE, MAX_TEMPLATE_BYTES, check_template, render_template};
pub use intake::Receipt;
pub use permissions::Answer;
pub use replicas::ReplicaSettings;
pub use retention::{CompactionReport, FILE_GRACE};
pub use scheduler::{MAX_SCHEDULES_PER_SESSION, MISSED_AFTER, ScheduleInfo, ScheduleRequest};
pub use session_config::{ExportedHook, ExportedSchedule, MAX_DOCUMENT_BYTES, SessionConfig};

use crate::agent::Backends;
use crate::bus::{Bus, ChannelRef, Inbound};
use crate::clock::SharedClock;
use crate::store::{InboundState, NewInbound, Store};
use actor::SessionHandle;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use tokio::sync::{Mutex, Notify, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Settings the orchestrator needs from the configuration.
#[derive(Debug, Clone)]
pub struct OrchestratorConfig {
    /// Directory under which every workspace lives.
    pub workspace_root: PathBuf,
    /// Copied into each new workspace, when set.
    pub workspace_template: Option<PathBuf>,
    /// Largest message text, in bytes.
    pub max_text_bytes: usize,
    /// `!read` count when none is given.
    pub read_default: u32,
    /// Largest `!read` count.
    pub read_max: u32,
    /// Agent profile of new sessions.
    pub default_agent: String,
    /// How long a permission request waits for an answer before it is denied.
    pub permission_timeout: std::time::Duration,
    /// How long one turn may take before it is cancelled.
    pub turn_timeout: std::time::Duration,
    /// Most messages waiting in actor queues at once, over all sessions.
    pub max_queued_messages: usize,
    /// Time zone of schedules made without one.
    pub timezone: chrono_tz::Tz,
    /// Webhook calls per minute of hooks made without their own limit.
    pub hook_per_minute: u32,
    /// Longest a webhook caller may wait for its answer, in seconds.
    pub hook_wait_max_secs: u64,
    /// History entries older than this are removed (`None`: kept for ever).
    pub history_keep: Option<chrono::Duration>,
    /// Finished messages older than this are forgotten (their de-duplication keys with them).
    pub dedup_window: chrono::Duration,
    /// Gateways silent longer than this stop holding back compaction; deliveries
    /// to platforms without a gateway are kept this long.
    pub gateway_stale: chrono::Duration,
    /// Time between retention passes.
    pub retention_every: std::time::Duration,
    /// The database size limit (`None`: the disk).
    pub max_database_bytes: Option<u64>,
    /// How far each platform's channels reach through DISPATCH.
    pub dispatch_scopes: DispatchScopes,
    /// Size limits of attachments.
    pub file_limits: crate::files::FileLimits,
    /// Where attachments' bytes are stored.
    pub files_dir: PathBuf,
    /// Set when this gorpd is one of the replicas on a Postgres store.
    pub replica: Option<ReplicaSettings>,
}

/// The result of accepting a published message.
#[derive(Debug, Clone, PartialEq)]
pub enum Accepted {
    /// Committed and queued for handling.
    New(i64),
    /// Already accepted earlier; nothing was stored.
    Duplicate,
}

/// Cloneable handle to the orchestrator.
#[derive(Clone, Debug)]
pub struct Orchestrator {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Store,
    /// The attachments' bytes, in the data directory beside the database.
    files: crate::files::FileStore,
    bus: Bus,
    config: OrchestratorConfig,
    backends: Backends,
    /// Write-through cache of `channel_bindings`.
    bindings: RwLock<bindings::Bindings>,
    /// Serialises binding writes so the cache and the table agree.
    binding_writes: Mutex<()>,
    actors: Mutex<HashMap<String, SessionHandle>>,
    /// Permits for messages waiting in actor queues (`config.max_queued_messages`).
    queue_permits: Arc<Semaphore>,
    permissions: std::sync::Mutex<permissions::PermissionTable>,
    router: mpsc::Sender<Inbound>,
    /// Messages handed to the router and not yet routed by it.
    router_backlog: AtomicUsize,
    intake: mpsc::Sender<intake::IntakeRequest>,
    /// What schedules fire by.
    clock: SharedClock,
    /// Wakes the scheduler when a schedule was added, changed or deleted.
    schedules_changed: Notify,
    /// Where the last delivery-log compaction stood.
    compaction: std::sync::Mutex<retention::CompactionReport>,
    /// Tokens of each session's last turn (input, output), while gorpd runs.
    last_turns: std::sync::Mutex<HashMap<String, (u64, u64)>>,
    /// Histograms and counters of the turn path.
    metrics: crate::metrics::Metrics,
    /// Sessions owned and messages handed, when this gorpd is a replica.
    replica: Option<replicas::Replica>,
    shutdown: CancellationToken,
    tasks: TaskTracker,
}

/// Platforms whose messages only gorpd itself makes (schedules, webhooks).
const RESERVED_PLATFORMS: [&str; 2] = [crate::store::SCHEDULE_PLATFORM, crate::store::HOOK_PLATFORM];

fn check_not_reserved(platform: &str) -> Result<(), String> {
    if RESERVED_PLATFORMS.contains(&platform) {
        return Err(format!("platform \"{platform}\" is reserved for gorpd's own messages"));
    }
    Ok(())
}

impl Orchestrator {
    /// Recovers state from the store and starts the router and session actors.
    pub async fn start(
        store: Store,
        bus: Bus,
        config: OrchestratorConfig,
        backends: Backends,
        clock: SharedClock,
        shutdown: CancellationToken,
        tasks: TaskTracker,
    ) -> OrchestratorResult<Self> {
        let (router_tx, router_rx) = mpsc::channel(router::QUEUE);
        let max_queued_messages = config.max_queued_messages;
        let (intake_tx, intake_rx) = mpsc::channel(intake::QUEUE);
        let bindings = bindings::Bindings::from_pairs(store.bindings().await?);
        let files = crate::files::FileStore::new(&config.files_dir, config.file_limits);
        let replica = config.replica.clone().map(replicas::Replica::new);
        let orchestrator = Self {
            inner: Arc::new(Inner {
                files,
                store,
                bus,
                config,
                backends,
                bindings: RwLock::new(bindings),
                binding_writes: Mutex::new(()),
                actors: Mutex::new(HashMap::new()),
                queue_permits: Arc::new(Semaphore::new(max_queued_messages)),
                permissions: Default::default(),
                router: router_tx,
                router_backlog: AtomicUsize::new(0),
                intake: intake_tx,
                clock,
                schedules_changed: Notify::new(),
                last_turns: std::sync::Mutex::default(),
                metrics: crate::metrics::Metrics::default(),
                compaction: std::sync::Mutex::default(),
                replica,
                shutdown,
                tasks,
            }),
        };
        // The router runs before recovery, which may hand it more than its queue holds.
        let router = orchestrator.clone();
        orchestrator.inner.tasks.spawn(async move { router.run_router(router_rx).await });
        match &orchestrator.inner.config.replica {
            None => orchestrator.recover().await?,
            Some(settings) => {
                orchestrator.inner.store.join_replicas(&settings.id, &settings.name, settings.lease).await?;
                let (id, lease_secs) = (&settings.id, settings.lease.as_secs());
                tracing::info!(replica = %settings.name, id, lease_secs, rejoined = settings.rejoined, "joined the replicas");
                if settings.rejoined {
                    orchestrator.recover_own().await?;
                }
                orchestrator.take_over_orphans().await?;
            }
        }
        let intake = orchestrator.clone();
        orchestrator.inner.tasks.spawn(async move { intake.run_intake(intake_rx).await });
        let scheduler = orchestrator.clone();
        orchestrator.inner.tasks.spawn(async move { scheduler.run_scheduler().await });
        let retention = orchestrator.clone();
        orchestrator.inner.tasks.spawn(async move { retention.run_retention().await });
        Ok(orchestrator)
    }

    /// Commits a published message and queues it; duplicates change nothing.
    pub async fn accept(&self, new: NewInbound) -> OrchestratorResult<Accepted> {
        self.submit(new).await?.await.unwrap_or(Err(OrchestratorError::ShuttingDown))
    }

    fn check_inbound(&self, new: &NewInbound) -> OrchestratorResult<()> {
        let check = || -> Result<(), String> {
            check_not_reserved(&new.channel.platform)?;
            crate::names::check_platform(&new.channel.platform)?;
            crate::names::check_external_id("channel id", &new.channel.channel_id)?;
            if let Some(id) = &new.message_id {
                crate::names::check_external_id("message id", id)?;
            }
            // A message may be only files; its text is still held to the size limit.
            let only_files = !new.attachments.is_empty() && new.text.trim().is_empty();
            match only_files {
                true if new.text.len() > self.inner.config.max_text_bytes => {
                    crate::names::check_text(&new.text, self.inner.config.max_text_bytes)
                }
                true => Ok(()),
                false => crate::names::check_text(&new.text, self.inner.config.max_text_bytes),
            }
        };
        check().map_err(OrchestratorError::Invalid)
    }

    /// The session a channel is bound to.
    pub fn session_of(&self, channel: &ChannelRef) -> Option<String> {
        self.inner.bindings.read().expect("bindings lock").session_of(channel)
    }

    /// Every channel bound to `session`, sorted.
    pub fn channels_of(&self, session: &str) -> Vec<ChannelRef> {
        self.inner.bindings.read().expect("bindings lock").channels_of(session)
    }

    /// Every binding, sorted by channel.
    pub fn all_bindings(&self) -> Vec<(ChannelRef, String)> {
        self.inner.bindings.read().expect("bindings lock").all()
    }

    /// Checks every agent profile (`gorpctl doctor`), by name.
    pub async fn check_agents(&self) -> Vec<(String, Result<String, String>)> {
        self.inner.backends.check_all().await
    }

    /// Stops every agent process (gorpd is stopping).
    pub fn stop_agents(&self) {
        self.inner.backends.shutdown();
    }

    /// The bus this orchestrator writes to.
    pub fn bus(&self) -> &Bus {
        &self.inner.bus
    }

    /// The live metrics (shared with the gRPC services and `/metrics`).
    pub fn metrics(&self) -> &crate::metrics::Metrics {
        &self.inner.metrics
    }

    /// Messages waiting for the intake's next commit.
    pub fn intake_depth(&self) -> usize {
        self.inner.intake.max_capacity() - self.inner.intake.capacity()
    }

    /// Messages handed to the router and not yet routed.
    pub fn router_depth(&self) -> usize {
        self.inner.router_backlog.load(Ordering::SeqCst)
    }

    /// The store this orchestrator uses.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The stored attachments.
    pub fn files(&self) -> &crate::files::FileStore {
        &self.inner.files
    }

    /// The settings clients must know (sizes, counts, zone, retention).
    pub fn config(&self) -> &OrchestratorConfig {
        &self.inner.config
    }

    /// The names of the configured agent profiles, sorted.
    pub fn agent_profiles(&self) -> Vec<String> {
        let mut names: Vec<String> = self.inner.backends.names().map(str::to_owned).collect();
        names.sort();
        names
    }

    /// Largest accepted message text, in bytes.
    pub fn max_text_bytes(&self) -> usize {
        self.inner.config.max_text_bytes
    }

    /// Marks interrupted turns, replies to commands that were applied but not
    /// answered, and re-queues accepted messages not yet answered (a replica
    /// does this per session as it takes sessions over: see [`replicas`]).
    async fn recover(&self) -> OrchestratorResult<()> {
        for command in self.inner.store.applied_commands().await? {
            self.resume_pending(command, true).await?;
        }
        for (inbound, session) in self.inner.store.inbound_in_state(InboundState::Running).await? {
            self.report_interrupted(&inbound, session.as_deref()).await?;
        }
        for (inbound, session) in self.inner.store.inbound_in_state(InboundState::Queued).await? {
            match session {
                Some(session) => self.enqueue_turn(&session, inbound).await,
                None => self.inner.store.set_inbound_state(inbound.id, InboundState::Pending).await?,
            }
        }
        for (inbound, _) in self.inner.store.inbound_in_state(InboundState::Pending).await? {
            self.resume_pending(inbound, false).await?;
        }
        Ok(())
    }
}
