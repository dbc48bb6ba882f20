//! The platform as the runner calls it: every call through the [`Pacer`].
//!
//! Final answers and notices wait for room ([`Paced::deliver`],
//! [`Paced::edit`]); previews go only when there is room now
//! ([`Paced::deliver_now`], [`Paced::edit_now`]) and otherwise report a
//! rate limit of their own, which the outbox treats like the platform's.
//! A 429 from the platform holds every later call to that channel for its
//! `Retry-After`. While stopping, waiting calls end as transient failures.

use crate::metrics::GatewayMetrics;
use crate::pacing::Pacer;
use crate::platform::{Delivered, Edit, Outbound, Platform, PlatformError};
use std::future::Future;
use std::sync::Arc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// A platform behind its pacer.
pub(crate) struct Paced<P> {
    platform: Arc<P>,
    pacer: Pacer,
    stop: CancellationToken,
    metrics: GatewayMetrics,
}

impl<P: Platform> Paced<P> {
    /// Paces `platform` at its own rates until `stop`, observing each call in `metrics`.
    pub(crate) fn new(platform: Arc<P>, stop: CancellationToken, metrics: GatewayMetrics) -> Self {
        let pacer = Pacer::new(platform.global_rate());
        Self { platform, pacer, stop, metrics }
    }

    /// The platform itself.
    pub(crate) fn platform(&self) -> &P {
        &self.platform
    }

    /// Sends a message once the channel has room.
    pub(crate) async fn deliver(&self, msg: Outbound) -> Result<Delivered, PlatformError> {
        let channel = msg.channel_id.clone();
        self.paced(&channel, "deliver", self.platform.deliver(msg)).await
    }

    /// Edits a message once the channel has room.
    pub(crate) async fn edit(&self, edit: Edit) -> Result<(), PlatformError> {
        let channel = edit.channel_id.clone();
        self.paced(&channel, "edit", self.platform.edit(edit)).await
    }

    /// Sends a message if the channel has room now.
    pub(crate) async fn deliver_now(&self, msg: Outbound) -> Result<Delivered, PlatformError> {
        let channel = msg.channel_id.clone();
        self.room_now(&channel)?;
        self.timed(&channel, "deliver", self.platform.deliver(msg)).await
    }

    /// Edits a message if the channel has room now.
    pub(crate) async fn edit_now(&self, edit: Edit) -> Result<(), PlatformError> {
        let channel = edit.channel_id.clone();
        self.room_now(&channel)?;
        self.timed(&channel, "edit", self.platform.edit(edit)).await
    }

    async fn paced<T>(
        &self,
        channel: &str,
        kind: &'static str,
        call: impl Future<Output = Result<T, PlatformError>>,
    ) -> Result<T, PlatformError> {
        tokio::select! {
            _ = self.stop.cancelled() => return Err(PlatformError::Transient("the gateway is stopping".to_owned())),
            () = self.pacer.acquire(channel, || self.platform.channel_rates(channel)) => {}
        }
        self.timed(channel, kind, call).await
    }

    /// Makes the call, measuring how long the platform took to answer.
    async fn timed<T>(
        &self,
        channel: &str,
        kind: &'static str,
        call: impl Future<Output = Result<T, PlatformError>>,
    ) -> Result<T, PlatformError> {
        let started = std::time::Instant::now();
        let result = call.await;
        self.metrics.platform_call(kind, started.elapsed(), &result);
        self.observed(channel, result)
    }

    fn room_now(&self, channel: &str) -> Result<(), PlatformError> {
        self.pacer
            .try_acquire(channel, || self.platform.channel_rates(channel))
            .map_err(|at| PlatformError::RateLimited(at.saturating_duration_since(Instant::now())))
    }

    /// Remembers a platform's `Retry-After` for the channel.
    fn observed<T>(&self, channel: &str, result: Result<T, PlatformError>) -> Result<T, PlatformError> {
        if let Err(PlatformError::RateLimited(after)) = &result {
            tracing::debug!(%channel, retry_after = ?after, "the platform asked to wait; holding calls to this channel");
            self.pacer.retry_after(channel, *after);
        }
        result
    }
}
