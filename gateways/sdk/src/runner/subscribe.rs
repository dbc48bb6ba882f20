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
use futures::StreamExt;
use gorp_proto::v1 as pb;
use pb::delivery::Kind;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::Streaming;

/// How long a closing stream is held open so queued acks reach gorpd before
/// the stream is reset.
const ACK_LINGER: Duration = Duration::from_millis(150);

/// An open SubscribeResponses stream.
pub(crate) struct Subscription {
    requests: mpsc::Sender<pb::SubscribeRequest>,
    deliveries: Streaming<pb::Delivery>,
    /// Fires once every request (ack) was handed to the transport.
    flushed: oneshot::Receiver<()>,
}

impl Subscription {
    /// Opens the stream with `hello { gateway_id, platform }`.
    pub(crate) async fn open(bus: &mut Bus, gateway_id: &str, platform: &str) -> Result<Self, tonic::Status> {
        let (requests, rx) = mpsc::channel(64);
        let (flushed_tx, flushed) = oneshot::channel();
        let hello =
            pb::SubscribeHello { gateway_id: gateway_id.to_owned(), platform: platform.to_owned(), cursor: None };
        let _ = requests.send(pb::SubscribeRequest { kind: Some(pb::subscribe_request::Kind::Hello(hello)) }).await;
        let end = futures::stream::once(async move {
            let _ = flushed_tx.send(());
            None
        });
        let outgoing = ReceiverStream::new(rx).map(Some).chain(end).filter_map(futures::future::ready);
        let deliveries = bus.subscribe_responses(outgoing).await?.into_inner();
        Ok(Self { requests, deliveries, flushed })
    }

    async fn ack(&self, seq: u64) {
        let ack = pb::SubscribeRequest { kind: Some(pb::subscribe_request::Kind::Ack(pb::SubscribeAck { seq })) };
        // A closed stream shows up as an error on the next read.
        let _ = self.requests.send(ack).await;
    }

    async fn report(&self, health: PlatformHealth) {
        let health = pb::GatewayHealth {
            undecryptable_since_start: health.undecryptable_since_start,
            waiting_for_keys: health.waiting_for_keys,
        };
        let _ =
            self.requests.send(pb::SubscribeRequest { kind: Some(pb::subscribe_request::Kind::Health(health)) }).await;
    }

    /// Ends our side after every queued ack was sent.
    async fn close(self, grace: Duration) {
        let Self { requests, mut deliveries, flushed } = self;
        drop(requests);
        let _ = tokio::time::timeout(grace, flushed).await;
        let _ = tokio::time::timeout(ACK_LINGER, async { while let Ok(Some(_)) = deliveries.message().await {} }).await;
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
        while let Some(delivery) = subscription.deliveries.message().await? {
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
    end: &CancellationToken,
    stop: &CancellationToken,
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
            delivery = subscription.deliveries.message() => {
                let delivery = delivery?.ok_or_else(|| SessionError::Lost("gorpd ended the delivery stream".into()))?;
                match delivery.kind {
                    Some(Kind::Response(response)) => {
                        if !outbox.deliver_final(&response, stop).await? {
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

async fn sleep_until(due: Option<tokio::time::Instant>) {
    match due {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
