//! The inbound half: the queue of messages gorpd has not acknowledged yet,
//! and one Publish stream at a time that sends them.
//!
//! The queue outlives connections: after every reconnect everything still in
//! it is sent again, in order (gorpd answers DUPLICATE for what it had already
//! stored). Acks arrive in order, so the sent entries are always at its front.
//! With a spool, messages come from it instead (already on disk, nobody
//! waiting) and each is removed from it once gorpd acknowledged it; the
//! spool's own bounds then limit the queue.

use super::SessionError;
use super::connect::Bus;
use super::convert::{publish_request, scoped_message_id};
use crate::listen::{Ack, Settled, Submitted, notice};
use crate::platform::{Inbound, Outbound};
use crate::spool::{Spool, Spooled};
use gorp_proto::v1 as pb;
use std::collections::VecDeque;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::Streaming;

/// Messages in flight on one stream (gorpd reads ahead as many).
const WINDOW: usize = 256;
/// Unacknowledged messages kept before `submit` waits.
const MAX_QUEUED: usize = 4096;

/// One message waiting for its ack, and who waits for it.
struct Entry {
    /// The id gorpd knows it by (scoped by channel) and names in its ack.
    bus_id: String,
    inbound: Inbound,
    waiters: Vec<oneshot::Sender<Settled>>,
    /// Its key in the spool, when it came from there.
    spooled: Option<i64>,
    /// Its receipt span, ended by its ack (none for a spooled message: the spool does not keep it).
    receipt: tracing::Span,
}

/// What settling one ack did.
#[derive(Debug, PartialEq, Eq)]
struct SettledEntry {
    /// The spool entry to remove.
    spooled: Option<i64>,
    /// The message and gorpd's reason, if gorpd refused it.
    refused: Option<(Inbound, String)>,
}

/// Messages not yet acknowledged by gorpd, oldest first.
#[derive(Default)]
pub(crate) struct PublishQueue {
    entries: VecDeque<Entry>,
}

impl PublishQueue {
    /// Queues a message; a second submit of a queued id waits for the same ack.
    fn push(&mut self, submitted: Submitted) {
        let bus_id = scoped_message_id(&submitted.inbound.channel_id, &submitted.inbound.message_id);
        let waiters = Vec::from_iter(submitted.done);
        match self.entries.iter_mut().find(|e| e.bus_id == bus_id) {
            Some(entry) => entry.waiters.extend(waiters),
            None => self.entries.push_back(Entry {
                bus_id,
                inbound: submitted.inbound,
                waiters,
                spooled: None,
                receipt: submitted.receipt,
            }),
        }
    }

    /// Queues a message from the spool (the spool already de-duplicated it).
    pub(crate) fn push_spooled(&mut self, spooled: Spooled) {
        let bus_id = scoped_message_id(&spooled.inbound.channel_id, &spooled.inbound.message_id);
        self.entries.push_back(Entry {
            bus_id,
            inbound: spooled.inbound,
            waiters: Vec::new(),
            spooled: Some(spooled.seq),
            receipt: tracing::Span::none(),
        });
    }

    /// Settles the message `ack` names.
    fn settle(&mut self, ack: pb::PublishAck) -> Option<SettledEntry> {
        let at = self.entries.iter().position(|e| e.bus_id == ack.message_id)?;
        if at != 0 {
            tracing::warn!(message_id = %ack.message_id, "ack out of order");
        }
        let entry = self.entries.remove(at)?;
        let (outcome, refused) = match pb::PublishStatus::try_from(ack.status) {
            Ok(pb::PublishStatus::Duplicate) => (Ack::Duplicate, None),
            Ok(pb::PublishStatus::Rejected) => (Ack::Rejected(ack.error.clone()), Some(ack.error)),
            _ => (Ack::Accepted, None),
        };
        tracing::debug!(message_id = %ack.message_id, ?outcome, "message acknowledged by gorpd");
        for waiter in entry.waiters {
            let _ = waiter.send(Ok(outcome.clone()));
        }
        Some(SettledEntry { spooled: entry.spooled, refused: refused.map(|reason| (entry.inbound, reason)) })
    }

    /// Messages not yet acknowledged.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

/// An open Publish stream.
pub(crate) struct PublishStream {
    requests: mpsc::Sender<pb::PublishRequest>,
    acks: Streaming<pb::PublishAck>,
}

impl PublishStream {
    pub(crate) async fn open(bus: &mut Bus) -> Result<Self, tonic::Status> {
        let (requests, rx) = mpsc::channel(WINDOW);
        let acks = bus.publish(ReceiverStream::new(rx)).await?.into_inner();
        Ok(Self { requests, acks })
    }
}

/// What the publish half works with.
pub(crate) struct PublishHalf<'a> {
    pub(crate) queue: &'a mut PublishQueue,
    pub(crate) intake: &'a mut mpsc::Receiver<Submitted>,
    /// Messages from the spool, and the spool to remove them from.
    pub(crate) spool: Option<(&'a mut mpsc::UnboundedReceiver<Spooled>, &'a Spool)>,
    pub(crate) notices: &'a mpsc::Sender<Outbound>,
    pub(crate) platform: &'static str,
    pub(crate) grace: Duration,
}

impl PublishHalf<'_> {
    /// Sends the queue and new messages and settles acks until `end` fires
    /// (then waits up to `grace` for outstanding acks if `stop` fired) or
    /// the stream fails.
    pub(crate) async fn run(
        mut self,
        mut stream: PublishStream,
        end: &CancellationToken,
        stop: &CancellationToken,
    ) -> Result<(), SessionError> {
        let mut sent = 0;
        let mut intake_open = true;
        loop {
            tokio::select! {
                biased;
                _ = end.cancelled() => break,
                ack = stream.acks.message() => {
                    let ack = ack?.ok_or_else(|| SessionError::Lost("gorpd ended the publish stream".into()))?;
                    sent = usize::saturating_sub(sent, 1);
                    self.settle(ack).await;
                }
                permit = stream.requests.reserve(), if sent < self.queue.len() && sent < WINDOW => {
                    let Ok(permit) = permit else { return Err(SessionError::Lost("the publish stream closed".into())) };
                    let entry = &self.queue.entries[sent];
                    let traceparent = gorp_telemetry::traceparent(&entry.receipt);
                    permit.send(publish_request(self.platform, &entry.bus_id, &entry.inbound, traceparent));
                    sent += 1;
                }
                submitted = self.intake.recv(), if intake_open && self.queue.len() < MAX_QUEUED => match submitted {
                    Some(submitted) => self.queue.push(submitted),
                    None => intake_open = false,
                },
                Some(spooled) = recv_spooled(&mut self.spool) => self.queue.push_spooled(spooled),
            }
        }
        if stop.is_cancelled() && sent > 0 {
            self.drain(&mut stream, sent).await;
        }
        Ok(())
    }

    /// On shutdown: waits a little for the acks of messages already sent.
    async fn drain(&mut self, stream: &mut PublishStream, mut sent: usize) {
        let _ = tokio::time::timeout(self.grace, async {
            while sent > 0 {
                let Ok(Some(ack)) = stream.acks.message().await else { return };
                sent -= 1;
                self.settle(ack).await;
            }
        })
        .await;
    }

    async fn settle(&mut self, ack: pb::PublishAck) {
        let Some(settled) = self.queue.settle(ack) else { return };
        if let (Some(seq), Some((_, spool))) = (settled.spooled, &self.spool) {
            spool.remove(seq);
        }
        if let Some((inbound, reason)) = settled.refused {
            tracing::warn!(message_id = %inbound.message_id, %reason, "gorpd refused a message");
            let text = format!("gorpd refused this message: {reason}");
            let _ = self.notices.send(notice(&inbound, "refused", &text)).await;
        }
    }
}

/// The next message from the spool; never, without a spool.
async fn recv_spooled(spool: &mut Option<(&mut mpsc::UnboundedReceiver<Spooled>, &Spool)>) -> Option<Spooled> {
    match spool {
        Some((spooled, _)) => spooled.recv().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn submitted(id: &str) -> (Submitted, oneshot::Receiver<Settled>) {
        let (done, rx) = oneshot::channel();
        let inbound =
            Inbound { channel_id: "c".into(), message_id: id.into(), text: "hi".into(), ..Default::default() };
        (Submitted { inbound, done: Some(done), receipt: tracing::Span::none() }, rx)
    }

    /// gorpd's ack for message `id` of channel "c".
    fn ack(id: &str, status: pb::PublishStatus, error: &str) -> pb::PublishAck {
        pb::PublishAck { message_id: format!("c/{id}"), status: status as i32, error_code: 0, error: error.into() }
    }

    #[test]
    fn a_repeated_id_waits_for_the_same_ack() {
        let mut queue = PublishQueue::default();
        let (first, mut first_rx) = submitted("m1");
        let (again, mut again_rx) = submitted("m1");
        queue.push(first);
        queue.push(again);
        assert_eq!(queue.len(), 1);
        assert_eq!(queue.settle(ack("m1", pb::PublishStatus::Duplicate, "")).unwrap().refused, None);
        assert_eq!(first_rx.try_recv(), Ok(Ok(Ack::Duplicate)));
        assert_eq!(again_rx.try_recv(), Ok(Ok(Ack::Duplicate)));
        assert_eq!(queue.len(), 0);
    }

    #[test]
    fn acks_settle_in_order_and_rejections_are_reported() {
        let mut queue = PublishQueue::default();
        let (one, mut one_rx) = submitted("m1");
        let (two, mut two_rx) = submitted("m2");
        queue.push(one);
        queue.push(two);
        assert_eq!(queue.settle(ack("m1", pb::PublishStatus::Accepted, "")).unwrap().refused, None);
        let refused = queue.settle(ack("m2", pb::PublishStatus::Rejected, "text is blank")).unwrap().refused;
        let (inbound, reason) = refused.unwrap();
        assert_eq!((inbound.message_id.as_str(), reason.as_str()), ("m2", "text is blank"));
        assert_eq!(one_rx.try_recv(), Ok(Ok(Ack::Accepted)));
        assert_eq!(two_rx.try_recv(), Ok(Ok(Ack::Rejected("text is blank".into()))));
        assert!(queue.settle(ack("unknown", pb::PublishStatus::Accepted, "")).is_none());
    }

    #[test]
    fn the_same_id_in_two_channels_is_two_messages() {
        let mut queue = PublishQueue::default();
        let (first, _) = submitted("5");
        let (mut other, _) = submitted("5");
        other.inbound.channel_id = "d".into();
        queue.push(first);
        queue.push(other);
        assert_eq!(queue.len(), 2);
    }

    #[test]
    fn a_spooled_message_names_its_spool_entry_when_settled() {
        let mut queue = PublishQueue::default();
        let inbound = Inbound { channel_id: "c".into(), message_id: "m1".into(), ..Default::default() };
        queue.push_spooled(Spooled { seq: 7, inbound });
        let settled = queue.settle(ack("m1", pb::PublishStatus::Duplicate, "")).unwrap();
        assert_eq!(settled, SettledEntry { spooled: Some(7), refused: None });
    }
}
