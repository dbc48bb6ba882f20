//! The inbound half's handle on the runner: [`ListenContext`].
//!
//! A platform's `listen` loop calls [`ListenContext::submit`] for every
//! message. The runner checks the allow-list, queues the message for gorpd and
//! resolves the returned [`AckHandle`] once gorpd has acknowledged it, so a
//! platform with an update offset (Telegram) advances it only then: a restart
//! of either side neither loses nor repeats a message. With a spool
//! ([`crate::GatewayConfig::spool`]) the handle resolves as soon as the
//! message is on disk ([`Ack::Spooled`]), or with [`SubmitError::Spool`] when
//! the spool cannot take it (then the platform must not be acknowledged).

use crate::allow::{AllowList, NOT_ALLOWED_TEXT};
use crate::platform::{Inbound, Outbound, OutboundKind};
use crate::spool::{Spool, SpoolError};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

/// How gorpd (or the allow-list) settled one submitted message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ack {
    /// gorpd committed it; it will be handled.
    Accepted,
    /// gorpd had accepted it before; nothing new happened.
    Duplicate,
    /// gorpd refused it (bad input); the user was told why. Do not resend.
    Rejected(String),
    /// The sender is not on the allow-list; it never reached gorpd and the
    /// user was told so.
    NotAllowed,
    /// The message is on disk in the gateway's spool, which delivers it to
    /// gorpd (across restarts of either side) and never drops it.
    Spooled,
}

/// A submitted message could not be settled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    /// The runner stopped before gorpd acknowledged the message; treat it as
    /// never received (read it again after a restart).
    #[error("the gateway stopped before gorpd acknowledged the message")]
    Closed,
    /// The spool did not take the message (full, or the disk failed); do
    /// not acknowledge it to the platform, which keeps it and retries.
    #[error("the gateway cannot take the message now: {0}")]
    Spool(SpoolError),
}

/// How a submitted message ended, as its [`AckHandle`] reports it.
pub(crate) type Settled = Result<Ack, SubmitError>;

/// A message on its way to gorpd, with whom to tell when it is settled.
#[derive(Debug)]
pub(crate) struct Submitted {
    pub(crate) inbound: Inbound,
    /// Who waits for gorpd's ack; none for a message from the spool.
    pub(crate) done: Option<oneshot::Sender<Settled>>,
    /// Open from the message's receipt until gorpd acknowledges it; gorpd's
    /// spans for the message continue its trace.
    pub(crate) receipt: tracing::Span,
}

/// Resolves when the submitted message is settled (see [`Ack`]).
#[derive(Debug)]
pub struct AckHandle(oneshot::Receiver<Settled>);

impl Future for AckHandle {
    type Output = Result<Ack, SubmitError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx).map(|r| r.unwrap_or(Err(SubmitError::Closed)))
    }
}

/// What `Platform::listen` gets: the shutdown signal and the way in.
#[derive(Debug, Clone)]
pub struct ListenContext {
    shutdown: CancellationToken,
    intake: mpsc::Sender<Submitted>,
    notices: mpsc::Sender<Outbound>,
    allow: Arc<AllowList>,
    /// With a spool, messages go to it instead of straight to `intake`.
    spool: Option<Spool>,
    /// The platform's latest health, sent to gorpd on every connection.
    health: watch::Sender<PlatformHealth>,
    /// gorpd's files, for uploads (none in tests of the inbound half alone).
    files: Option<crate::files::FileLink>,
    /// The platform and gateway id, for the receipt spans.
    identity: (&'static str, Arc<str>),
}

/// What a platform reports about its own side, for gorpd's gateway list,
/// its admin page and metrics (see [`ListenContext::report_health`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlatformHealth {
    /// Messages that could not be decrypted since the gateway started.
    pub undecryptable_since_start: u64,
    /// Of those, messages still kept, waiting for their keys.
    pub waiting_for_keys: u64,
}

impl ListenContext {
    pub(crate) fn new(
        shutdown: CancellationToken,
        intake: mpsc::Sender<Submitted>,
        notices: mpsc::Sender<Outbound>,
        allow: Arc<AllowList>,
        spool: Option<Spool>,
        health: watch::Sender<PlatformHealth>,
    ) -> Self {
        Self { shutdown, intake, notices, allow, spool, health, files: None, identity: ("", Arc::from("")) }
    }

    /// Names the platform and gateway id in the receipt spans.
    pub(crate) fn with_identity(mut self, platform: &'static str, gateway_id: &str) -> Self {
        self.identity = (platform, Arc::from(gateway_id));
        self
    }

    /// The span of receiving `inbound` (see [`Submitted::receipt`]).
    fn receipt_span(&self, inbound: &Inbound) -> tracing::Span {
        let (platform, gateway_id) = (self.identity.0, &*self.identity.1);
        tracing::debug_span!(
            "gateway receipt",
            platform,
            gateway_id,
            channel = %inbound.channel_id,
            // As gorpd knows it (scoped by channel), so every span names the message alike.
            message_id = %crate::runner::scoped_message_id(&inbound.channel_id, &inbound.message_id),
        )
    }

    /// Uploads go to gorpd through `files`.
    pub(crate) fn with_files(mut self, files: crate::files::FileLink) -> Self {
        self.files = Some(files);
        self
    }

    pub(crate) fn file_link(&self) -> Option<&crate::files::FileLink> {
        self.files.as_ref()
    }

    /// Tells the author of `inbound` that one of its files was not sent to gorpd, and why.
    pub async fn tell_file_refused(&self, inbound: &Inbound, name: &str, reason: &str) {
        let text = format!("⚠ {name} was not sent: {reason}");
        let _ = self.notices.send(notice(inbound, &format!("file-refused/{name}"), &text)).await;
    }

    /// Reports the platform's health; the runner sends it to gorpd now (if
    /// connected and it changed) and after every reconnect.
    pub fn report_health(&self, health: PlatformHealth) {
        self.health.send_if_modified(|current| std::mem::replace(current, health) != health);
    }

    /// Fires when the gateway is stopping; `listen` should return soon after.
    pub fn shutdown(&self) -> &CancellationToken {
        &self.shutdown
    }

    /// Hands one message to the runner. Waits while the queue to gorpd is
    /// full (backpressure); the handle resolves once the message is settled.
    pub async fn submit(&self, inbound: Inbound) -> Result<AckHandle, SubmitError> {
        let (done, handle) = oneshot::channel();
        if !self.allow.allows(&inbound.sender_id) {
            tracing::info!(sender = %inbound.sender_id, channel = %inbound.channel_id, "message from a user not on the allow-list");
            self.notices
                .send(notice(&inbound, "not-allowed", NOT_ALLOWED_TEXT))
                .await
                .map_err(|_| SubmitError::Closed)?;
            let _ = done.send(Ok(Ack::NotAllowed));
            return Ok(AckHandle(handle));
        }
        if let Some(spool) = &self.spool {
            // Queued here, in submit order; only the wait for the commit runs apart.
            let committed = spool.request_append(inbound).await.map_err(|_| SubmitError::Closed)?;
            tokio::spawn(async move {
                let settled = match committed.await {
                    Ok(Ok(())) => Ok(Ack::Spooled),
                    Ok(Err(error)) => Err(SubmitError::Spool(error)),
                    Err(_) => Err(SubmitError::Closed),
                };
                let _ = done.send(settled);
            });
            return Ok(AckHandle(handle));
        }
        let receipt = self.receipt_span(&inbound);
        let submitted = Submitted { inbound, done: Some(done), receipt };
        self.intake.send(submitted).await.map_err(|_| SubmitError::Closed)?;
        Ok(AckHandle(handle))
    }
}

/// A notice from the gateway itself, answering `inbound` in its channel.
pub(crate) fn notice(inbound: &Inbound, what: &str, text: &str) -> Outbound {
    Outbound {
        id: format!("{what}/{}/{}", inbound.channel_id, inbound.message_id),
        channel_id: inbound.channel_id.clone(),
        text: text.to_owned(),
        kind: OutboundKind::Notice,
        session: String::new(),
        in_reply_to: Some(inbound.message_id.clone()).filter(|id| !id.is_empty()),
        piece: (0, 1),
        permission: None,
        file: None,
    }
}
