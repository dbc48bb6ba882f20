//! The inbound half's handle on the runner: [`ListenContext`].
//!
//! A platform's `listen` loop calls [`ListenContext::submit`] for every
//! message. The runner checks the allow-list, queues the message for gorpd and
//! resolves the returned [`AckHandle`] once gorpd has acknowledged it, so a
//! platform with an update offset (Telegram) advances it only then: a restart
//! of either side neither loses nor repeats a message.

use crate::allow::{AllowList, NOT_ALLOWED_TEXT};
use crate::platform::{Inbound, Outbound, OutboundKind};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::sync::{mpsc, oneshot};
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
}

/// A submitted message could not be settled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    /// The runner stopped before gorpd acknowledged the message; treat it as
    /// never received (read it again after a restart).
    #[error("the gateway stopped before gorpd acknowledged the message")]
    Closed,
}

/// A message on its way to gorpd, with whom to tell when it is settled.
#[derive(Debug)]
pub(crate) struct Submitted {
    pub(crate) inbound: Inbound,
    pub(crate) done: oneshot::Sender<Ack>,
}

/// Resolves when the submitted message is settled (see [`Ack`]).
#[derive(Debug)]
pub struct AckHandle(oneshot::Receiver<Ack>);

impl Future for AckHandle {
    type Output = Result<Ack, SubmitError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx).map(|r| r.map_err(|_| SubmitError::Closed))
    }
}

/// What `Platform::listen` gets: the shutdown signal and the way in.
#[derive(Debug, Clone)]
pub struct ListenContext {
    shutdown: CancellationToken,
    intake: mpsc::Sender<Submitted>,
    notices: mpsc::Sender<Outbound>,
    allow: Arc<AllowList>,
}

impl ListenContext {
    pub(crate) fn new(
        shutdown: CancellationToken,
        intake: mpsc::Sender<Submitted>,
        notices: mpsc::Sender<Outbound>,
        allow: Arc<AllowList>,
    ) -> Self {
        Self { shutdown, intake, notices, allow }
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
            let _ = done.send(Ack::NotAllowed);
            return Ok(AckHandle(handle));
        }
        self.intake.send(Submitted { inbound, done }).await.map_err(|_| SubmitError::Closed)?;
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
    }
}
