//! The [`Publisher`]: inbound messages to gorpd over one Publish stream at a
//! time, with a window of messages in flight.
//!
//! Its promise: every message handed to [`Publisher::send`] gets exactly one
//! outcome. The queue of unacknowledged messages belongs to a background task
//! and outlives streams: when a stream breaks (gorpd restarted, the network
//! dropped) the task reconnects with backoff and sends everything still
//! unacknowledged again, in order. gorpd answers DUPLICATE for what it had
//! already committed, which counts as success, so nothing is lost and nothing
//! reaches an agent twice. gorpd acknowledges in order, so the messages in
//! flight are always the queue's front. A refused message settles as
//! [`Error::Rejected`] and the publisher goes on; only a status that
//! retrying cannot fix (a bad token) ends it, failing every waiting message.

use crate::connect::Client;
use crate::error::{Error, describe, is_fatal};
use crate::retry::Backoff;
use crate::types::{Message, Published};
use gorp_proto::v1 as pb;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, Status};

/// Tuning of a [`Publisher`].
#[derive(Debug, Clone)]
pub struct PublisherOptions {
    /// Messages sent but not yet acknowledged, at most [default: 256].
    pub window: usize,
    /// Messages waiting for an ack before [`Publisher::send`] waits [default: 4096].
    pub max_queued: usize,
    /// The longest pause between reconnect attempts [default: 5 s].
    pub max_backoff: Duration,
}

impl Default for PublisherOptions {
    fn default() -> Self {
        Self { window: 256, max_queued: 4096, max_backoff: Duration::from_secs(5) }
    }
}

/// The outcome of one message, delivered to whoever waits for it.
type Outcome = Result<Published, Error>;

/// One message waiting for its ack.
struct Entry {
    request: pb::PublishRequest,
    waiter: oneshot::Sender<Outcome>,
}

/// Publishes messages to gorpd; see the module docs for what it promises.
///
/// ```no_run
/// # async fn example() -> Result<(), gorp_client::Error> {
/// use gorp_client::{Channel, Client, Message, Published};
/// let client = Client::builder("http://127.0.0.1:7730").token("gorp_…").connect().await?;
/// let publisher = client.publisher();
/// let room = Channel::new("myapp", "room-1");
/// // Waits for gorpd's ack: the message is committed once this returns Ok.
/// let published = publisher.publish(&Message::new(room.clone(), "m-1", "hello")).await?;
/// assert!(matches!(published, Published::Accepted | Published::Duplicate));
/// // Or keep many in flight and collect the acks later.
/// let mut pending = Vec::new();
/// for i in 2..100 {
///     pending.push(publisher.send(&Message::new(room.clone(), format!("m-{i}"), "more")).await?);
/// }
/// for ack in pending {
///     if let Err(error) = ack.await {
///         eprintln!("{error}"); // e.g. a Rejected message; the others still go through
///     }
/// }
/// publisher.close().await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Publisher {
    intake: Option<mpsc::Sender<Entry>>,
    task: Option<JoinHandle<Result<(), Error>>>,
}

impl Publisher {
    pub(crate) fn start(client: Client, options: PublisherOptions) -> Self {
        let (intake, rx) = mpsc::channel(options.window.max(1));
        let task = tokio::spawn(run(client, rx, options));
        Self { intake: Some(intake), task: Some(task) }
    }

    /// Queues `message` (waiting while the queue is full) and returns its
    /// pending ack. Fails only when the publisher has stopped.
    pub async fn send(&self, message: &Message) -> Result<PendingAck, Error> {
        let (waiter, outcome) = oneshot::channel();
        let entry = Entry { request: message.to_pb(), waiter };
        let intake = self.intake.as_ref().ok_or(Error::Closed("the publisher"))?;
        intake.send(entry).await.map_err(|_| Error::Closed("the publisher"))?;
        Ok(PendingAck { outcome })
    }

    /// Sends `message` and waits for gorpd's ack.
    pub async fn publish(&self, message: &Message) -> Result<Published, Error> {
        self.send(message).await?.await
    }

    /// Takes no more messages and waits until gorpd acknowledged every queued
    /// one (reconnecting as needed). Returns the error that stopped the
    /// publisher early, if one did.
    pub async fn close(mut self) -> Result<(), Error> {
        drop(self.intake.take());
        match self.task.take() {
            Some(task) => task.await.unwrap_or(Err(Error::Closed("the publisher"))),
            None => Ok(()),
        }
    }
}

impl Drop for Publisher {
    /// Dropped without [`Publisher::close`]: stops at once; waiting messages
    /// settle as [`Error::Closed`].
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// gorpd's answer to one message: `.await` it.
#[derive(Debug)]
pub struct PendingAck {
    outcome: oneshot::Receiver<Outcome>,
}

impl Future for PendingAck {
    type Output = Outcome;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome> {
        Pin::new(&mut self.outcome).poll(cx).map(|outcome| outcome.unwrap_or(Err(Error::Closed("the publisher"))))
    }
}

/// The unacknowledged messages, oldest first, and whether more can come.
struct Queue {
    entries: VecDeque<Entry>,
    intake: mpsc::Receiver<Entry>,
    intake_open: bool,
}

impl Queue {
    fn done(&self) -> bool {
        !self.intake_open && self.entries.is_empty()
    }

    /// Settles the message `ack` names.
    fn settle(&mut self, ack: pb::PublishAck) {
        let Some(at) = self.entries.iter().position(|e| e.request.message_id == ack.message_id) else {
            tracing::warn!(message_id = %ack.message_id, "ack for a message that is not waiting");
            return;
        };
        let entry = self.entries.remove(at).expect("the position was just found");
        let outcome = match pb::PublishStatus::try_from(ack.status) {
            Ok(pb::PublishStatus::Accepted) => Ok(Published::Accepted),
            Ok(pb::PublishStatus::Duplicate) => Ok(Published::Duplicate),
            _ => {
                tracing::warn!(message_id = %ack.message_id, reason = %ack.error, "gorpd refused a message");
                let code = if ack.error_code == 0 { Code::Unknown } else { Code::from_i32(ack.error_code) };
                Err(Error::Rejected { message_id: ack.message_id, code, reason: ack.error })
            }
        };
        tracing::debug!(message_id = %entry.request.message_id, ok = outcome.is_ok(), "message acknowledged");
        let _ = entry.waiter.send(outcome);
    }

    /// Ends every waiting message (and every later one) with `status`.
    fn fail_all(&mut self, status: &Status) {
        self.intake.close();
        self.intake_open = false;
        while let Ok(entry) = self.intake.try_recv() {
            self.entries.push_back(entry);
        }
        for entry in self.entries.drain(..) {
            let _ = entry.waiter.send(Err(status.clone().into()));
        }
    }
}

/// The background task: one stream at a time until closed and drained, or a fatal status.
async fn run(client: Client, intake: mpsc::Receiver<Entry>, options: PublisherOptions) -> Result<(), Error> {
    let mut queue = Queue { entries: VecDeque::new(), intake, intake_open: true };
    let mut backoff = Backoff::new(options.max_backoff);
    loop {
        // No stream while there is nothing to send: an idle publisher does not retry.
        if queue.entries.is_empty() {
            match queue.intake.recv().await {
                Some(entry) => queue.entries.push_back(entry),
                None => return Ok(()),
            }
        }
        match stream(&client, &mut queue, &options, &mut backoff).await {
            Ok(()) if queue.done() => return Ok(()),
            Ok(()) => {}
            Err(status) if is_fatal(&status) => {
                tracing::error!(reason = %describe(&status), "publisher stopped");
                queue.fail_all(&status);
                return Err(status.into());
            }
            Err(status) => {
                let retry_in = backoff.next_delay();
                let (reason, unacknowledged) = (describe(&status), queue.entries.len());
                tracing::warn!(%reason, unacknowledged, retry_in_ms = retry_in.as_millis() as u64, "publish stream lost");
                tokio::time::sleep(retry_in).await;
            }
        }
    }
}

/// One Publish stream: sends the queue from its front, then new messages,
/// settling acks, until the queue is done or the stream fails.
async fn stream(
    client: &Client,
    queue: &mut Queue,
    options: &PublisherOptions,
    backoff: &mut Backoff,
) -> Result<(), Status> {
    let (requests, rx) = mpsc::channel(options.window.max(1));
    let mut acks = client.fresh_bus_api().publish(ReceiverStream::new(rx)).await?.into_inner();
    backoff.reset();
    // Messages of the queue's front already sent on this stream.
    let mut sent = 0;
    while !queue.done() {
        tokio::select! {
            biased;
            ack = acks.message() => {
                let ack = ack?.ok_or_else(|| Status::unavailable("gorpd ended the publish stream"))?;
                sent = usize::saturating_sub(sent, 1);
                queue.settle(ack);
            }
            permit = requests.reserve(), if sent < queue.entries.len() && sent < options.window => {
                let permit = permit.map_err(|_| Status::unavailable("the publish stream closed"))?;
                permit.send(queue.entries[sent].request.clone());
                sent += 1;
            }
            entry = queue.intake.recv(), if queue.intake_open && queue.entries.len() < options.max_queued => {
                match entry {
                    Some(entry) => queue.entries.push_back(entry),
                    None => queue.intake_open = false,
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue_of(ids: &[&str]) -> (Queue, Vec<oneshot::Receiver<Outcome>>) {
        let (_, intake) = mpsc::channel(1);
        let mut queue = Queue { entries: VecDeque::new(), intake, intake_open: true };
        let mut outcomes = Vec::new();
        for id in ids {
            let (waiter, outcome) = oneshot::channel();
            let request = pb::PublishRequest { message_id: (*id).into(), ..Default::default() };
            queue.entries.push_back(Entry { request, waiter });
            outcomes.push(outcome);
        }
        (queue, outcomes)
    }

    fn ack(id: &str, status: pb::PublishStatus, code: i32, error: &str) -> pb::PublishAck {
        pb::PublishAck { message_id: id.into(), status: status as i32, error_code: code, error: error.into() }
    }

    #[test]
    fn duplicates_are_success_and_rejections_are_per_message() {
        let (mut queue, mut outcomes) = queue_of(&["m1", "m2", "m3"]);
        queue.settle(ack("m1", pb::PublishStatus::Accepted, 0, ""));
        queue.settle(ack("m2", pb::PublishStatus::Rejected, 3, "text is blank"));
        queue.settle(ack("m3", pb::PublishStatus::Duplicate, 0, ""));
        assert!(queue.entries.is_empty());
        assert_eq!(outcomes[0].try_recv().unwrap().unwrap(), Published::Accepted);
        match outcomes[1].try_recv().unwrap() {
            Err(Error::Rejected { message_id, code, reason }) => {
                assert_eq!((message_id.as_str(), code, reason.as_str()), ("m2", Code::InvalidArgument, "text is blank"))
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(outcomes[2].try_recv().unwrap().unwrap(), Published::Duplicate);
    }

    #[test]
    fn a_fatal_status_fails_every_waiting_message() {
        let (mut queue, mut outcomes) = queue_of(&["m1", "m2"]);
        queue.fail_all(&Status::unauthenticated("unknown token"));
        for outcome in &mut outcomes {
            assert_eq!(outcome.try_recv().unwrap().unwrap_err().code(), Some(Code::Unauthenticated));
        }
        assert!(queue.done());
    }
}
