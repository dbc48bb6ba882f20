//! The outbound half's stream: `SubscribeResponses` with a hello, deliveries
//! handed to the [`Outbox`], an ack for each final once it is handled, and
//! the platform's health report (once it differs from nothing to report,
//! after every connect and on every change).
//!
//! gorpd keeps the cursor per gateway id, so the hello sends none: after a
//! reconnect or a restart gorpd replays exactly what was not acked.

use super::SessionError;
use super::connect::Bus;
use super::outbox::Outbox;
use crate::listen::PlatformHealth;
use crate::platform::Platform;
use gorp_client::raw::SubscribeStream;
use gorp_proto::v1 as pb;
use pb::delivery::Kind;
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// An open SubscribeResponses stream (gorp-client's, without its reconnects:
/// the runner reconnects both streams together).
pub(crate) struct Subscription(SubscribeStream);

impl Subscription {
    /// Opens the stream with `hello { gateway_id, platform }`.
    pub(crate) async fn open(bus: &mut Bus, gateway_id: &str, platform: &str) -> Result<Self, tonic::Status> {
        SubscribeStream::open(bus, gateway_id, platform, None).await.map(Self)
    }

    async fn ack(&self, seq: u64) {
        self.0.ack(seq).await
    }

    async fn report(&self, health: PlatformHealth) {
        let health = pb::GatewayHealth {
            undecryptable_since_start: health.undecryptable_since_start,
            waiting_for_keys: health.waiting_for_keys,
        };
        self.0.report_health(health).await;
    }

    /// Ends our side after every queued ack was sent.
    async fn close(self, grace: Duration) {
        self.0.close(grace).await
    }
}

/// On shutdown: makes sure gorpd stored the cursor. Subscribes again (gorpd
/// replays from its stored cursor) and re-acks whatever it replays that this
/// process already delivered, until nothing delivered is replayed.
pub(crate) async fn confirm_cursor(
    bus: &mut Bus,
    gateway_id: &str,
    platform: &str,
    delivered_through: u64,
    grace: Duration,
) -> Result<(), tonic::Status> {
    for _ in 0..3 {
        let mut subscription = Subscription::open(bus, gateway_id, platform).await?;
        let mut stale = None;
        while let Some(delivery) = subscription.0.message().await? {
            match delivery.kind {
                Some(Kind::Response(r)) if r.seq <= delivered_through => stale = Some(r.seq),
                Some(Kind::Chunk(_)) | None => {}
                Some(_) => break,
            }
        }
        let Some(seq) = stale else { return Ok(()) };
        tracing::debug!(seq, "gorpd had not stored the last ack; acking again");
        subscription.ack(seq).await;
        subscription.close(grace).await;
    }
    Ok(())
}

/// Runs the outbound half until `end` fires or the stream fails.
pub(crate) async fn run<P: Platform>(
    outbox: &mut Outbox<P>,
    mut subscription: Subscription,
    mut health: watch::Receiver<PlatformHealth>,
    gateway_id: &str,
    (end, stop): (&CancellationToken, &CancellationToken),
    grace: Duration,
) -> Result<(), SessionError> {
    let reported = *health.borrow_and_update();
    if reported != PlatformHealth::default() {
        subscription.report(reported).await;
    }
    loop {
        let due = outbox.next_due();
        // A due flush goes first even while deliveries keep arriving.
        if due.is_some_and(|at| at <= tokio::time::Instant::now()) {
            outbox.flush_due().await;
            continue;
        }
        tokio::select! {
            biased;
            _ = end.cancelled() => break,
            _ = sleep_until(due) => outbox.flush_due().await,
            Ok(()) = health.changed() => {
                let reported = *health.borrow_and_update();
                subscription.report(reported).await;
            }
            delivery = subscription.0.message() => {
                let delivery = delivery?.ok_or_else(|| SessionError::Lost("gorpd ended the delivery stream".into()))?;
                match delivery.kind {
                    Some(Kind::Response(response)) => {
                        let sending = send_span(&response, P::NAME, gateway_id);
                        if !outbox.deliver_final(&response, stop).instrument(sending).await? {
                            break;
                        }
                        subscription.ack(response.seq).await;
                    }
                    Some(Kind::Chunk(chunk)) => outbox.chunk(chunk),
                    Some(Kind::CaughtUp(_)) => tracing::debug!("replay done; deliveries are live"),
                    None => {}
                }
            }
        }
    }
    subscription.close(grace).await;
    Ok(())
}

/// The span of sending `response` to the platform, continuing the trace of
/// gorpd's delivery (and so of the message it answers).
fn send_span(response: &pb::Response, platform: &str, gateway_id: &str) -> tracing::Span {
    let span = tracing::debug_span!(
        "platform send",
        session = %response.session,
        message_id = response.reply_to.as_ref().map(|r| r.message_id.as_str()).unwrap_or_default(),
        platform,
        gateway_id,
        seq = response.seq,
    );
    gorp_telemetry::continue_trace(&span, Some(&response.traceparent));
    span
}

async fn sleep_until(due: Option<tokio::time::Instant>) {
    match due {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
