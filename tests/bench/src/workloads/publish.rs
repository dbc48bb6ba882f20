//! Workloads 1-3 (`serial`, `pipelined`, `streams`): publish until acked.
//!
//! One runner drives any `AckedPublisher` (gorpd's `Bus.Publish` here, NATS
//! JetStream in `nats.rs`) with at most `window` unacknowledged messages
//! (1 for `serial`), timing each message from its send to its ack. Acks
//! come back in order, so the oldest send time belongs to the next ack.
//! `streams` runs one publisher per stream, each on its own connection, and
//! divides the wall time into the total count. On gorpd every message goes
//! to a channel bound to an echo session, so each one also becomes a turn.

use super::{Plan, STALL, Workload, fleet, text};
use crate::client::{self, Bus};
use crate::gorpd::Gorpd;
use crate::report::{Section, Side};
use crate::stats::{Latencies, per_second};
use anyhow::{Context, Result, anyhow, bail};
use gorp_proto::v1 as pb;
use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

/// The platform gorp's publish workloads publish as.
const PLATFORM: &str = "bench";

/// How one message was acknowledged.
#[derive(Debug)]
pub(crate) enum Ack {
    /// Stored.
    Accepted,
    /// Already stored under the same id (a bench message id is never reused: a bug).
    Duplicate,
    /// Refused, with the reason.
    Rejected(String),
}

/// A stream of messages that are acknowledged in the order they were sent.
pub(crate) trait AckedPublisher: Send + 'static {
    /// Sends message number `index` of this stream without waiting for its ack.
    fn send(&mut self, index: u64) -> impl Future<Output = Result<()>> + Send;
    /// Waits for the ack of the oldest unacknowledged message.
    fn ack(&mut self) -> impl Future<Output = Result<Ack>> + Send;
}

/// When a publisher stops sending.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Limit {
    /// After this many messages.
    Count(u64),
    /// At this time (messages in flight are still acknowledged).
    Until(Instant),
}

impl Limit {
    fn allows(self, next: u64) -> bool {
        match self {
            Limit::Count(count) => next < count,
            Limit::Until(end) => Instant::now() < end,
        }
    }

    /// The limit of one of `streams` streams when the whole run is `plan`'s.
    pub(crate) fn for_stream(plan: &Plan, total: usize, streams: usize) -> Self {
        match plan.seconds {
            Some(seconds) => Limit::Until(Instant::now() + Duration::from_secs_f64(seconds)),
            None => Limit::Count(total.div_ceil(streams.max(1)) as u64),
        }
    }
}

/// What one or more publishers saw.
#[derive(Debug, Default)]
pub(crate) struct PublishRun {
    /// Send-to-ack time of every acknowledged message.
    pub(crate) latencies: Latencies,
    /// Messages acked as stored.
    pub(crate) accepted: usize,
    /// Messages acked as duplicates.
    pub(crate) duplicates: usize,
    /// Messages refused.
    pub(crate) rejected: usize,
    /// The first refusal's reason.
    pub(crate) first_rejection: Option<String>,
}

impl PublishRun {
    fn merge(&mut self, other: PublishRun) {
        self.latencies.extend(other.latencies);
        self.accepted += other.accepted;
        self.duplicates += other.duplicates;
        self.rejected += other.rejected;
        self.first_rejection = self.first_rejection.take().or(other.first_rejection);
    }

    fn count(&mut self, ack: Ack) {
        match ack {
            Ack::Accepted => self.accepted += 1,
            Ack::Duplicate => self.duplicates += 1,
            Ack::Rejected(reason) => {
                self.rejected += 1;
                self.first_rejection.get_or_insert(reason);
            }
        }
    }

    /// The report section: rate, p50, p99, and every duplicate or rejection as a problem.
    pub(crate) fn section(mut self, workload: Workload, side: Side, elapsed: Duration) -> Section {
        let mut section = Section::new(workload.name(), side);
        let acked = self.latencies.len();
        section.metric("messages acked", "count", acked as f64);
        section.metric("throughput", "msg/s", per_second(acked, elapsed));
        section.metric("p50 ack latency", "ms", self.latencies.percentile_ms(50.0));
        section.metric("p99 ack latency", "ms", self.latencies.percentile_ms(99.0));
        section.expect_zero(self.duplicates, "messages acked DUPLICATE (ids are unique)");
        if self.rejected > 0 {
            let reason = self.first_rejection.unwrap_or_default();
            section.problem(format!("{} messages REJECTED (first: {reason})", self.rejected));
        }
        section
    }
}

/// Publishes until `limit` with at most `window` messages unacknowledged.
pub(crate) async fn run_windowed(
    publisher: &mut impl AckedPublisher,
    limit: Limit,
    window: usize,
) -> Result<PublishRun> {
    let mut run = PublishRun::default();
    let mut in_flight = VecDeque::with_capacity(window);
    let mut next = 0;
    loop {
        while in_flight.len() < window.max(1) && limit.allows(next) {
            publisher.send(next).await?;
            in_flight.push_back(Instant::now());
            next += 1;
        }
        let Some(sent_at) = in_flight.front().copied() else { return Ok(run) };
        let ack = tokio::time::timeout(STALL, publisher.ack())
            .await
            .map_err(|_| anyhow!("no ack for {STALL:?} with {} messages in flight", in_flight.len()))??;
        in_flight.pop_front();
        run.latencies.push(sent_at.elapsed());
        run.count(ack);
    }
}

/// Runs `streams` publishers made by `open` at once; returns their merged run and the wall time.
pub(crate) async fn run_streams<P, F>(
    streams: usize,
    limit: impl Fn() -> Limit,
    window: usize,
    open: impl Fn(usize) -> F,
) -> Result<(PublishRun, Duration)>
where
    P: AckedPublisher,
    F: Future<Output = Result<P>>,
{
    let mut publishers = Vec::with_capacity(streams);
    for stream in 0..streams {
        publishers.push(open(stream).await?);
    }
    let started = Instant::now();
    let tasks: Vec<_> = publishers
        .into_iter()
        .map(|mut publisher| {
            let limit = limit();
            tokio::spawn(async move { run_windowed(&mut publisher, limit, window).await })
        })
        .collect();
    let mut total = PublishRun::default();
    for task in tasks {
        total.merge(task.await.context("publisher task panicked")??);
    }
    Ok((total, started.elapsed()))
}

/// Runs workload 1, 2 or 3 against a fresh gorpd.
pub(crate) async fn gorp(plan: &Plan, workload: Workload) -> Result<Section> {
    let (gorpd, token, channels) = setup(plan).await?;
    let (streams, window, total) = shape(plan, workload);
    let addr = gorpd.grpc_addr;
    let text = Arc::new(text("bench", plan.size));
    let prefix = format!("{}-{}", plan.run_id, workload.name());
    let open = |stream| {
        let (token, channels, text, prefix) = (token.clone(), channels.clone(), text.clone(), prefix.clone());
        async move {
            let bus = client::bus(addr, &token).await?;
            GorpPublisher::open(bus, stream, streams, channels, text, prefix).await
        }
    };
    let (run, elapsed) = run_streams(streams, || Limit::for_stream(plan, total, streams), window, open)
        .await
        .with_context(|| format!("gorpd log:\n{}", gorpd.log_tail(10)))?;
    let mut section = run.section(workload, Side::Gorp, elapsed);
    gorpd.report_log(&mut section);
    Ok(section)
}

/// (streams, window, total messages) of workload 1, 2 or 3.
pub(crate) fn shape(plan: &Plan, workload: Workload) -> (usize, usize, usize) {
    match workload {
        Workload::Serial => (1, 1, plan.serial_messages),
        Workload::Pipelined => (1, plan.window, plan.messages),
        _ => (plan.streams, plan.window, plan.messages),
    }
}

/// A fresh gorpd with `plan.sessions` sessions, each bound to one channel of
/// platform `bench`, and a gateway token for `bench`.
async fn setup(plan: &Plan) -> Result<(Gorpd, String, Arc<[pb::Channel]>)> {
    let gorpd = Gorpd::start(plan).await?;
    let mut control = gorpd.control().await?;
    fleet::create_sessions(&control, plan.sessions, plan.setup_concurrency).await?;
    let bindings = fleet::one_channel_per_session(PLATFORM, plan.sessions);
    let channels: Arc<[pb::Channel]> = bindings.iter().map(|(channel, _)| channel.clone()).collect();
    fleet::bind(&control, bindings, plan.setup_concurrency).await?;
    let token = client::gateway_token(&mut control, PLATFORM).await?;
    Ok((gorpd, token, channels))
}

/// One `Bus.Publish` stream.
pub(crate) struct GorpPublisher {
    requests: mpsc::Sender<pb::PublishRequest>,
    acks: tonic::Streaming<pb::PublishAck>,
    in_flight: VecDeque<String>,
    stream: usize,
    streams: usize,
    channels: Arc<[pb::Channel]>,
    text: Arc<String>,
    prefix: String,
}

impl GorpPublisher {
    /// Opens stream number `stream` of `streams`; message ids are `<prefix>-<stream>.<index>`.
    pub(crate) async fn open(
        mut bus: Bus,
        stream: usize,
        streams: usize,
        channels: Arc<[pb::Channel]>,
        text: Arc<String>,
        prefix: String,
    ) -> Result<Self> {
        let (requests, receiver) = mpsc::channel(1024);
        let acks = client::bounded("Bus.Publish", bus.publish(ReceiverStream::new(receiver))).await?.into_inner();
        Ok(Self { requests, acks, in_flight: VecDeque::new(), stream, streams, channels, text, prefix })
    }
}

impl AckedPublisher for GorpPublisher {
    async fn send(&mut self, index: u64) -> Result<()> {
        // Streams interleave over the channels, so every session gets work from every stream.
        let global = index as usize * self.streams + self.stream;
        let channel = self.channels[global % self.channels.len()].clone();
        let message_id = format!("{}-{}.{index}", self.prefix, self.stream);
        let request = pb::PublishRequest {
            channel: Some(channel),
            message_id: message_id.clone(),
            sender_id: "bench".to_owned(),
            sender_name: "bench".to_owned(),
            text: self.text.as_str().to_owned(),
            attachments: Vec::new(),
            traceparent: String::new(),
        };
        self.requests.send(request).await.map_err(|_| anyhow!("the publish stream closed"))?;
        self.in_flight.push_back(message_id);
        Ok(())
    }

    async fn ack(&mut self) -> Result<Ack> {
        let ack = self.acks.message().await.context("publish stream failed")?.context("publish stream ended")?;
        let expected = self.in_flight.pop_front().context("an ack for nothing in flight")?;
        if ack.message_id != expected {
            bail!("ack out of order: expected {expected}, got {}", ack.message_id);
        }
        Ok(match pb::PublishStatus::try_from(ack.status) {
            Ok(pb::PublishStatus::Accepted) => Ack::Accepted,
            Ok(pb::PublishStatus::Duplicate) => Ack::Duplicate,
            _ => Ack::Rejected(format!("status {}, code {}: {}", ack.status, ack.error_code, ack.error)),
        })
    }
}

/// Publishes `count` messages from `channels` on one stream (window `plan.window`)
/// with ids `<prefix>-0.<n>`; used by workloads that need a backlog.
pub(crate) async fn publish_backlog(
    addr: SocketAddr,
    token: &str,
    channels: Arc<[pb::Channel]>,
    plan: &Plan,
    count: usize,
    prefix: &str,
) -> Result<PublishRun> {
    let bus = client::bus(addr, token).await?;
    let text = Arc::new(text("backlog", plan.size));
    let mut publisher = GorpPublisher::open(bus, 0, 1, channels, text, prefix.to_owned()).await?;
    run_windowed(&mut publisher, Limit::Count(count as u64), plan.window).await
}
