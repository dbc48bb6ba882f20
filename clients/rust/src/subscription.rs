//! The [`Subscription`]: one platform's deliveries from gorpd, as a stream
//! of [`Event`]s, with acknowledgements and automatic reconnects.
//!
//! A background task owns the SubscribeResponses stream. It opens it with a
//! hello (gateway id, platform, optional cursor), forwards every delivery,
//! and passes the caller's acks to gorpd, remembering the highest. When the
//! stream breaks it reconnects with backoff, saying hello with that highest
//! acked seq as the cursor (and acking it again so gorpd stores it): gorpd
//! replays every final response after it, then goes live. So no final
//! response is missed across a gorpd restart; one delivered but not yet
//! acked when the stream broke arrives again (at least once: handle
//! responses idempotently, keyed by `seq` or `response_id`).

use crate::connect::Client;
use crate::error::{Error, describe, is_fatal};
use crate::raw::SubscribeStream as Stream;
use crate::retry::Backoff;
use crate::types::{Chunk, Response};
use gorp_proto::v1 as pb;
use pb::delivery::Kind;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tonic::Status;

/// How long a closing stream waits for its last acks to be sent.
const ACK_LINGER: Duration = Duration::from_millis(150);

/// What to subscribe to: a platform's deliveries, under a gateway id, from a cursor.
#[derive(Debug, Clone)]
pub struct Subscribe {
    platform: String,
    gateway_id: Option<String>,
    cursor: Option<u64>,
    buffer: usize,
    max_backoff: Duration,
}

impl Subscribe {
    /// The deliveries for `platform` (a gateway token may only name its own).
    pub fn new(platform: impl Into<String>) -> Self {
        Self {
            platform: platform.into(),
            gateway_id: None,
            cursor: None,
            buffer: 256,
            max_backoff: Duration::from_secs(5),
        }
    }

    /// A stable name for this subscriber, 1-64 characters of `[a-z0-9_-]`;
    /// gorpd keeps a cursor per gateway id [default: the platform].
    pub fn gateway_id(mut self, id: impl Into<String>) -> Self {
        self.gateway_id = Some(id.into());
        self
    }

    /// Replay everything after `seq` instead of after the cursor gorpd stored.
    pub fn cursor(mut self, seq: u64) -> Self {
        self.cursor = Some(seq);
        self
    }

    /// The longest pause between reconnect attempts [default: 5 s].
    pub fn max_backoff(mut self, max: Duration) -> Self {
        self.max_backoff = max;
        self
    }

    async fn open(&self, client: &Client, cursor: Option<u64>) -> Result<Stream, Status> {
        let gateway_id = self.gateway_id.as_deref().unwrap_or_default();
        Stream::open(&mut client.fresh_bus_api(), gateway_id, &self.platform, cursor).await
    }
}

/// One thing a subscription receives.
#[derive(Debug)]
pub enum Event {
    /// A durable final response; [`Delivery::ack`] it once handled.
    Response(Delivery),
    /// A piece of an answer in progress (live only, best effort, never replayed).
    Chunk(Chunk),
    /// Replay is done and the stream is live: every final response committed
    /// before this point was delivered. Comes after the first replay, after
    /// every reconnect's replay, and when a lagging stream has caught up.
    CaughtUp,
}

/// A final response with its acknowledgement handle.
#[derive(Debug)]
pub struct Delivery {
    /// The response.
    pub response: Response,
    acks: mpsc::UnboundedSender<Control>,
}

impl Delivery {
    /// Tells gorpd this response (and every earlier one) was handled, so it
    /// is not replayed after a reconnect or a restart.
    pub fn ack(&self) {
        let _ = self.acks.send(Control::Ack(self.response.seq));
    }
}

impl std::ops::Deref for Delivery {
    type Target = Response;

    fn deref(&self) -> &Response {
        &self.response
    }
}

/// Requests from the handle to the task.
#[derive(Debug)]
enum Control {
    Ack(u64),
    Close(oneshot::Sender<()>),
}

/// A live subscription; read it with [`Subscription::next`] or as a `Stream`.
///
/// ```no_run
/// # async fn example(client: gorp_client::Client) -> Result<(), gorp_client::Error> {
/// use gorp_client::{Event, Subscribe};
/// let mut subscription = client.subscribe(Subscribe::new("myapp").gateway_id("myapp-1")).await?;
/// while let Some(event) = subscription.next().await {
///     match event? {
///         Event::Response(delivery) => {
///             println!("#{} from {}: {}", delivery.seq, delivery.session, delivery.text);
///             delivery.ack();
///         }
///         Event::Chunk(chunk) => print!("{}", chunk.text),
///         Event::CaughtUp => println!("(live)"),
///     }
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Subscription {
    events: mpsc::Receiver<Result<Event, Error>>,
    control: mpsc::UnboundedSender<Control>,
    task: JoinHandle<()>,
}

impl Subscription {
    /// Opens the first stream and waits for its first delivery (gorpd sends
    /// one at once: a replayed response, or CaughtUp), so a refused token,
    /// platform or cursor fails here; then hands it to the background task.
    pub(crate) async fn open(client: Client, subscribe: Subscribe) -> Result<Self, Error> {
        let mut first = subscribe.open(&client, subscribe.cursor).await?;
        let first_delivery = first.message().await?.ok_or_else(|| {
            Error::from(Status::unavailable("gorpd ended the delivery stream before the first delivery"))
        })?;
        let (events_tx, events) = mpsc::channel(subscribe.buffer);
        let (control, control_rx) = mpsc::unbounded_channel();
        let pumper = Pumper { client, subscribe, events: events_tx, control: control_rx, acks: control.clone() };
        if let Some(event) = pumper.event(first_delivery) {
            events_tx_send_now(&pumper.events, event);
        }
        let task = tokio::spawn(pumper.run(first));
        Ok(Self { events, control, task })
    }

    /// The next event; `None` once closed. An `Err` (a status retrying cannot
    /// fix, such as a revoked token) is the last item.
    pub async fn next(&mut self) -> Option<Result<Event, Error>> {
        self.events.recv().await
    }

    /// Acknowledges every response up to and including `seq`.
    pub fn ack(&self, seq: u64) {
        let _ = self.control.send(Control::Ack(seq));
    }

    /// Sends the acks given so far to gorpd, then ends the stream.
    pub async fn close(mut self) {
        // Unblocks the task if it waits for room for an event nobody will read.
        self.events.close();
        let (done, closed) = oneshot::channel();
        if self.control.send(Control::Close(done)).is_ok() {
            let _ = closed.await;
        }
    }
}

impl futures::Stream for Subscription {
    type Item = Result<Event, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.events.poll_recv(cx)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Queues the first event into the empty channel (it always has room).
fn events_tx_send_now(events: &mpsc::Sender<Result<Event, Error>>, event: Event) {
    let _ = events.try_send(Ok(event));
}

/// How one stream ended.
enum Ended {
    /// Closed by the caller, or nobody reads the events any more.
    Closed,
    /// Broken; reconnect unless the status is fatal.
    Lost(Status),
}

/// The background task's state.
struct Pumper {
    client: Client,
    subscribe: Subscribe,
    events: mpsc::Sender<Result<Event, Error>>,
    control: mpsc::UnboundedReceiver<Control>,
    /// Handed to each delivery so it can ack itself.
    acks: mpsc::UnboundedSender<Control>,
}

impl Pumper {
    async fn run(mut self, first: Stream) {
        let mut acked = self.subscribe.cursor.unwrap_or(0);
        let mut backoff = Backoff::new(self.subscribe.max_backoff);
        let mut stream = Some(first);
        loop {
            let open = match stream.take() {
                Some(open) => open,
                None => match self.reopen(acked).await {
                    Ok(open) => {
                        backoff.reset();
                        open
                    }
                    Err(status) if !is_fatal(&status) => {
                        self.pause(&status, &mut backoff).await;
                        continue;
                    }
                    Err(status) => return self.fail(status).await,
                },
            };
            match self.pump(open, &mut acked).await {
                Ended::Closed => return,
                Ended::Lost(status) if is_fatal(&status) => return self.fail(status).await,
                Ended::Lost(status) => self.pause(&status, &mut backoff).await,
            }
        }
    }

    /// A new stream that resumes after the highest acked seq.
    async fn reopen(&self, acked: u64) -> Result<Stream, Status> {
        let resume = self.subscribe.cursor.is_some() || acked > 0;
        let stream = self.subscribe.open(&self.client, resume.then_some(acked)).await?;
        if acked > 0 {
            // The last ack may have been lost with the old stream: store it now.
            stream.ack(acked).await;
        }
        tracing::info!(platform = %self.subscribe.platform, cursor = acked, "subscription resumed");
        Ok(stream)
    }

    async fn pause(&self, status: &Status, backoff: &mut Backoff) {
        let retry_in = backoff.next_delay();
        let reason = describe(status);
        tracing::warn!(platform = %self.subscribe.platform, %reason, retry_in_ms = retry_in.as_millis() as u64, "subscription lost");
        tokio::time::sleep(retry_in).await;
    }

    async fn fail(self, status: Status) {
        tracing::error!(platform = %self.subscribe.platform, reason = %describe(&status), "subscription stopped");
        let _ = self.events.send(Err(status.into())).await;
    }

    /// Forwards deliveries and acks until the stream ends.
    async fn pump(&mut self, stream: Stream, acked: &mut u64) -> Ended {
        let mut stream = stream;
        loop {
            tokio::select! {
                biased;
                control = self.control.recv() => match control {
                    Some(Control::Ack(seq)) if seq > *acked => {
                        *acked = seq;
                        stream.ack(seq).await;
                    }
                    Some(Control::Ack(_)) => {}
                    Some(Control::Close(done)) => {
                        stream.close(ACK_LINGER).await;
                        let _ = done.send(());
                        return Ended::Closed;
                    }
                    None => return self.finish(stream, acked).await,
                },
                delivery = stream.message() => {
                    let event = match delivery {
                        Ok(Some(delivery)) => match self.event(delivery) {
                            Some(event) => event,
                            None => continue,
                        },
                        Ok(None) => return Ended::Lost(Status::unavailable("gorpd ended the delivery stream")),
                        Err(status) => return Ended::Lost(status),
                    };
                    if self.events.send(Ok(event)).await.is_err() {
                        return self.finish(stream, acked).await;
                    }
                }
            }
        }
    }

    /// Nobody reads events any more: sends the acks already given, then ends the stream.
    async fn finish(&mut self, stream: Stream, acked: &mut u64) -> Ended {
        let mut closing = None;
        while let Ok(control) = self.control.try_recv() {
            match control {
                Control::Ack(seq) if seq > *acked => {
                    *acked = seq;
                    stream.ack(seq).await;
                }
                Control::Ack(_) => {}
                Control::Close(done) => closing = Some(done),
            }
        }
        stream.close(ACK_LINGER).await;
        if let Some(done) = closing {
            let _ = done.send(());
        }
        Ended::Closed
    }

    fn event(&self, delivery: pb::Delivery) -> Option<Event> {
        Some(match delivery.kind? {
            Kind::Response(response) => {
                tracing::debug!(seq = response.seq, session = %response.session, "response delivered");
                Event::Response(Delivery { response: response.into(), acks: self.acks.clone() })
            }
            Kind::Chunk(chunk) => Event::Chunk(chunk.into()),
            Kind::CaughtUp(_) => Event::CaughtUp,
        })
    }
}
