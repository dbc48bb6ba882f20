//! The runner: one platform's connection to gorpd, from start to shutdown.
//!
//! [`Runner::run`] spawns the platform's `listen` loop and a task for the
//! gateway's own notices, then keeps one session with gorpd at a time (a
//! Publish and a SubscribeResponses stream on one connection). Any stream
//! error ends the session; the runner reconnects with capped, jittered
//! backoff, logging each state change once. The publish queue and the outbox
//! outlive sessions, so nothing unacknowledged is lost and nothing handled is
//! repeated. UNAUTHENTICATED / PERMISSION_DENIED end the runner. With a
//! spool configured, it is opened first (a second process on the same state
//! directory fails here) and what it holds is sent before anything new.

mod connect;
mod convert;
mod outbox;
mod paced;
mod publish;
mod retry;
mod saved;
mod subscribe;

use crate::backoff::Backoff;
use crate::config::GatewayConfig;
use crate::error::GatewayError;
use crate::health;
use crate::listen::{ListenContext, Submitted};
use crate::platform::{Outbound, Platform, PlatformError};
use crate::spool::{Spool, Spooled};
use connect::{Connector, describe, fatal};
use outbox::Outbox;
use paced::Paced;
use publish::{PublishHalf, PublishQueue, PublishStream};
use std::sync::Arc;
use std::time::Duration;
use subscribe::Subscription;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

pub(crate) use convert::scoped_message_id;

/// How long a stopping runner waits for the spool to close its file.
const SPOOL_CLOSE: Duration = Duration::from_secs(5);

/// Messages handed over by `listen` before they enter the publish queue.
const INTAKE: usize = 64;

/// Where the runner's connection to gorpd stands (for logs and health checks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionState {
    /// Opening the streams.
    Connecting,
    /// Both streams are open.
    Connected,
    /// The last attempt or session failed; the next attempt is in `retry_in`.
    Disconnected {
        /// Why.
        reason: String,
        /// Delay before the next attempt.
        retry_in: Duration,
    },
    /// The runner has ended.
    Stopped,
}

/// Why a session with gorpd ended.
#[derive(Debug)]
pub(crate) enum SessionError {
    /// The connection or a stream broke; reconnect.
    Lost(String),
    /// Retrying cannot help.
    Fatal(GatewayError),
}

impl From<tonic::Status> for SessionError {
    fn from(status: tonic::Status) -> Self {
        fatal(&status).map_or_else(|| Self::Lost(describe(&status)), Self::Fatal)
    }
}

impl From<PlatformError> for SessionError {
    fn from(error: PlatformError) -> Self {
        Self::Fatal(error.into())
    }
}

/// State kept across sessions.
struct Kept<P> {
    queue: PublishQueue,
    intake: mpsc::Receiver<Submitted>,
    notices: mpsc::Sender<Outbound>,
    outbox: Outbox<P>,
    /// Messages from the spool, and the spool, when there is one.
    spool: Option<(mpsc::UnboundedReceiver<Spooled>, Spool)>,
    /// The platform's latest health report, sent on every connection.
    health: watch::Sender<crate::PlatformHealth>,
}

/// Runs one platform against gorpd.
pub struct Runner<P> {
    config: GatewayConfig,
    platform: Arc<P>,
    state: watch::Sender<ConnectionState>,
    metrics: crate::metrics::GatewayMetrics,
}

impl<P: Platform> Runner<P> {
    /// A runner for `platform`; nothing happens until [`Runner::run`].
    pub fn new(config: GatewayConfig, platform: Arc<P>) -> Self {
        let metrics = crate::metrics::GatewayMetrics::new(P::NAME);
        Self { config, platform, state: watch::Sender::new(ConnectionState::Connecting), metrics }
    }

    /// Follows the connection state.
    pub fn state(&self) -> watch::Receiver<ConnectionState> {
        self.state.subscribe()
    }

    fn gateway_id(&self) -> String {
        self.config.gateway_id.clone().unwrap_or_else(|| P::NAME.to_owned())
    }

    /// Runs until `shutdown` fires (`Ok`), gorpd rejects the token, or the
    /// platform fails fatally.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), GatewayError> {
        let connector = Connector::new(&self.config)?;
        let (spool, spool_task) = match &self.config.spool {
            Some(config) => {
                let (forward, spooled) = mpsc::unbounded_channel();
                let (spool, task) = Spool::open(config.clone(), forward).await?;
                (Some((spooled, spool)), Some(task))
            }
            None => (None, None),
        };
        let stop = shutdown.child_token();
        let health = self.serve_health(spool.as_ref().map(|(_, spool)| spool.stats()), &stop).await?;
        let (intake_tx, intake) = mpsc::channel(INTAKE);
        let (notices, notices_rx) = mpsc::channel(64);
        let allow = Arc::new(self.config.allow.clone());
        let spool_handle = spool.as_ref().map(|(_, spool)| spool.clone());
        let health_tx = watch::Sender::new(crate::PlatformHealth::default());
        let files = crate::files::FileLink::new(connector.client(), self.config.web_url.clone());
        let cx = ListenContext::new(stop.clone(), intake_tx, notices.clone(), allow, spool_handle, health_tx.clone())
            .with_files(files.clone())
            .with_identity(P::NAME, &self.gateway_id());
        let listen = tokio::spawn(listen(self.platform.clone(), cx, stop.clone()));
        let paced = Arc::new(Paced::new(self.platform.clone(), stop.clone(), self.metrics.clone()));
        let notifier = tokio::spawn(notify(paced.clone(), notices_rx, self.config.clone(), stop.clone()));
        let mut outbox = Outbox::new(paced, self.config.edit_interval, self.config.backoff).with_files(files);
        if let Some(dir) = &self.config.state_dir {
            let saved = saved::SavedPreviews::open(dir).await.map_err(|e| {
                GatewayError::Config(format!(
                    "cannot open the previews in {}: {e} (is another gateway using it?)",
                    dir.display()
                ))
            })?;
            outbox = outbox.with_saved(saved);
        }
        let mut kept = Kept { queue: PublishQueue::default(), intake, notices, outbox, spool, health: health_tx };
        let result = self.connect_loop(&connector, &mut kept, &stop).await;
        stop.cancel();
        let listened = listen.await.unwrap_or(Ok(()));
        let _ = notifier.await;
        match (kept.queue.len(), &kept.spool) {
            (0, _) => {}
            (waiting, Some(_)) => tracing::info!(waiting, "stopping; the spool keeps what gorpd has not acknowledged"),
            (unacknowledged, None) => {
                tracing::info!(unacknowledged, "stopping with messages gorpd has not acknowledged")
            }
        }
        drop(kept);
        if let Some(task) = spool_task {
            let _ = tokio::time::timeout(SPOOL_CLOSE, task).await;
        }
        if let Some(task) = health {
            let _ = task.await;
        }
        self.set_state(ConnectionState::Stopped);
        tracing::info!("gateway stopped");
        result.and(listened.map_err(GatewayError::from))
    }

    /// Starts `/healthz` and `/metrics` on `--health-addr`, if given.
    async fn serve_health(
        &self,
        spool: Option<watch::Receiver<crate::SpoolStats>>,
        stop: &CancellationToken,
    ) -> Result<Option<tokio::task::JoinHandle<()>>, GatewayError> {
        let Some(addr) = self.config.health_addr else { return Ok(None) };
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| GatewayError::Config(format!("cannot listen on --health-addr {addr}: {e}")))?;
        let addr = listener.local_addr().unwrap_or(addr);
        tracing::info!("health at http://{addr}/healthz, metrics at http://{addr}/metrics");
        let spool = spool.zip(self.config.spool.clone());
        let sources = health::Sources {
            platform: P::NAME,
            connection: self.state.subscribe(),
            spool,
            metrics: self.metrics.clone(),
        };
        Ok(Some(tokio::spawn(health::serve(listener, sources, stop.clone()))))
    }

    /// Keeps a session with gorpd until `stop` fires or an error is fatal.
    async fn connect_loop(
        &self,
        connector: &Connector,
        kept: &mut Kept<P>,
        stop: &CancellationToken,
    ) -> Result<(), GatewayError> {
        let mut backoff = Backoff::new(self.config.backoff);
        loop {
            if stop.is_cancelled() {
                return Ok(());
            }
            self.set_state(ConnectionState::Connecting);
            let reason = match self.session(connector, kept, stop, &mut backoff).await {
                Ok(()) if stop.is_cancelled() => return Ok(()),
                Ok(()) => "the session ended".to_owned(),
                Err(SessionError::Fatal(error)) => {
                    tracing::error!(%error, "giving up");
                    return Err(error);
                }
                Err(SessionError::Lost(reason)) => reason,
            };
            let retry_in = backoff.next_delay();
            self.set_state(ConnectionState::Disconnected { reason, retry_in });
            tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                _ = tokio::time::sleep(retry_in) => {}
            }
        }
    }

    /// One session: both streams, until either ends.
    async fn session(
        &self,
        connector: &Connector,
        kept: &mut Kept<P>,
        stop: &CancellationToken,
        backoff: &mut Backoff,
    ) -> Result<(), SessionError> {
        let mut bus = connector.bus();
        let subscription = Subscription::open(&mut bus, &self.gateway_id(), P::NAME).await?;
        let publish = PublishStream::open(&mut bus).await?;
        self.set_state(ConnectionState::Connected);
        backoff.reset();
        let end = stop.child_token();
        let grace = self.config.shutdown_grace;
        let half = PublishHalf {
            queue: &mut kept.queue,
            intake: &mut kept.intake,
            spool: kept.spool.as_mut().map(|(spooled, spool)| (spooled, &*spool)),
            notices: &kept.notices,
            platform: P::NAME,
            grace,
        };
        let (published, subscribed) = tokio::join!(
            async {
                let result = half.run(publish, &end, stop).await;
                end.cancel();
                result
            },
            async {
                let health = kept.health.subscribe();
                let gateway_id = self.gateway_id();
                let result =
                    subscribe::run(&mut kept.outbox, subscription, health, &gateway_id, (&end, stop), grace).await;
                end.cancel();
                result
            },
        );
        if stop.is_cancelled() && matches!(subscribed, Ok(())) {
            self.confirm_cursor(&mut bus, &kept.outbox).await;
        }
        match (published, subscribed) {
            (Err(fatal @ SessionError::Fatal(_)), _) | (_, Err(fatal @ SessionError::Fatal(_))) => Err(fatal),
            (Err(lost), _) | (_, Err(lost)) => Err(lost),
            (Ok(()), Ok(())) => Ok(()),
        }
    }

    /// On shutdown, checks (bounded in time) that gorpd stored the last ack,
    /// so a restarted gateway repeats nothing.
    async fn confirm_cursor(&self, bus: &mut connect::Bus, outbox: &Outbox<P>) {
        let (through, grace) = (outbox.delivered_through(), self.config.shutdown_grace);
        if through == 0 {
            return;
        }
        let gateway_id = self.gateway_id();
        let confirm = subscribe::confirm_cursor(bus, &gateway_id, P::NAME, through, grace);
        match tokio::time::timeout(grace * 2, confirm).await {
            Ok(Ok(())) => tracing::debug!(seq = through, "cursor confirmed"),
            Ok(Err(status)) => tracing::debug!(%status, "could not confirm the cursor"),
            Err(_) => tracing::debug!("timed out confirming the cursor"),
        }
    }

    /// Records and logs a state change.
    fn set_state(&self, new: ConnectionState) {
        let old = self.state.send_replace(new.clone());
        let gorpd = &self.config.gorpd;
        match (&old, &new) {
            (ConnectionState::Disconnected { .. }, ConnectionState::Connecting) => {
                tracing::debug!(%gorpd, "connecting to gorpd")
            }
            (_, ConnectionState::Connecting) => tracing::info!(%gorpd, "connecting to gorpd"),
            (_, ConnectionState::Connected) => {
                self.metrics.connected();
                tracing::info!(%gorpd, gateway = %self.gateway_id(), platform = P::NAME, "connected to gorpd")
            }
            (ConnectionState::Connected, ConnectionState::Disconnected { reason, retry_in }) => {
                tracing::warn!(%gorpd, %reason, retry_in_s = retry_in.as_secs_f32(), "disconnected from gorpd")
            }
            (_, ConnectionState::Disconnected { reason, retry_in }) => {
                tracing::warn!(%gorpd, %reason, retry_in_s = retry_in.as_secs_f32(), "cannot reach gorpd; retrying")
            }
            (_, ConnectionState::Stopped) => {}
        }
    }
}

/// The platform's inbound loop; a fatal error stops the runner.
async fn listen<P: Platform>(
    platform: Arc<P>,
    cx: ListenContext,
    stop: CancellationToken,
) -> Result<(), PlatformError> {
    let result = platform.listen(cx).await;
    if let Err(error) = &result {
        tracing::error!(%error, "the platform's listener failed");
        stop.cancel();
    }
    result
}

/// Delivers the gateway's own notices (not allowed, refused) until `stop`.
async fn notify<P: Platform>(
    platform: Arc<Paced<P>>,
    mut notices: mpsc::Receiver<Outbound>,
    config: GatewayConfig,
    stop: CancellationToken,
) {
    loop {
        let notice = tokio::select! {
            _ = stop.cancelled() => return,
            notice = notices.recv() => match notice { Some(notice) => notice, None => return },
        };
        let outcome = retry::retry("notice", config.backoff, &stop, || platform.deliver(notice.clone())).await;
        if let Err(error) | Ok(retry::Outcome::Rejected(error)) = outcome.map_err(|e| e.to_string()) {
            tracing::warn!(channel = %notice.channel_id, %error, "could not send a notice");
        }
    }
}
