//! Workload 4 (`e2e`): publish to final delivery at a fixed offered rate.
//!
//! Every session is bound to channel `c<i>` on each of the platforms
//! `bench1..benchP`, with one subscriber per platform (acking every seq).
//! Message `n` goes out from platform `n % P`, channel `c<n % S>`, when it is
//! due: at `start + n / rate` (open loop: a late publisher does not move the
//! schedule, so queueing in gorpd or in the client shows up as latency).
//! Its latency runs from that due time to the arrival of its answer at the
//! subscriber of the platform it came from; the other subscribers must get
//! exactly one copy each. After the load, answers get `grace` to arrive;
//! anything still missing, duplicated, refused or failed is a problem.

use super::subscriber::{Subscriber, answered_id, message_number};
use super::{Plan, STALL, Workload, fleet, text};
use crate::client::{self, Bus};
use crate::gorpd::Gorpd;
use crate::report::{Section, Side};
use crate::stats::{Latencies, per_second};
use anyhow::Result;
use gorp_proto::v1 as pb;
use pb::delivery::Kind;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;

/// What a subscriber task reports.
enum Event {
    /// A final response arrived at subscriber `subscriber`.
    Response { subscriber: usize, number: Option<u64>, complete: bool, at: Instant },
    /// A subscriber replayed and caught up again (it lagged behind the live feed).
    CaughtUp,
    /// A subscription ended early.
    Ended { subscriber: usize, error: String },
}

/// Counts of one publish stream's acks.
#[derive(Debug, Default)]
struct AckCounts {
    accepted: usize,
    duplicate: usize,
    rejected: usize,
    failure: Option<String>,
}

/// One platform's publish stream: the sender and the task counting its acks.
struct PublishStream {
    requests: mpsc::Sender<pb::PublishRequest>,
    acks: JoinHandle<AckCounts>,
}

/// The run's fixed facts: who publishes where, and when each message is due.
struct Schedule {
    platforms: Vec<String>,
    sessions: usize,
    rate: f64,
    total: u64,
    prefix: String,
    start: Instant,
}

impl Schedule {
    fn due(&self, number: u64) -> Instant {
        self.start + Duration::from_secs_f64(number as f64 / self.rate)
    }

    fn platform_of(&self, number: u64) -> usize {
        (number % self.platforms.len() as u64) as usize
    }

    fn request(&self, number: u64, size: usize) -> pb::PublishRequest {
        let id = format!("{}.{number}", self.prefix);
        let channel = format!("c{}", number % self.sessions as u64);
        pb::PublishRequest {
            channel: Some(client::channel(&self.platforms[self.platform_of(number)], &channel)),
            text: text(&id, size),
            message_id: id,
            sender_id: "bench".to_owned(),
            sender_name: "bench".to_owned(),
            attachments: Vec::new(),
            traceparent: String::new(),
        }
    }
}

/// Runs workload 4 against a fresh gorpd.
pub(crate) async fn gorp(plan: &Plan) -> Result<Section> {
    let gorpd = Gorpd::start(plan).await?;
    let platforms: Vec<String> = (1..=plan.platforms.max(1)).map(|p| format!("bench{p}")).collect();
    let tokens = setup(&gorpd, plan, &platforms).await?;
    let bytes_before = database_bytes(&gorpd).await?;
    let prefix = format!("{}-e2e", plan.run_id);
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let chunks = Arc::new(AtomicU64::new(0));
    let mut readers = Vec::new();
    for (index, platform) in platforms.iter().enumerate() {
        let mut bus = client::bus(gorpd.grpc_addr, &tokens[index]).await?;
        let mut subscriber = Subscriber::open(&mut bus, platform, &format!("gw-{platform}"), None).await?;
        subscriber.caught_up(STALL).await?;
        readers.push(tokio::spawn(read(subscriber, index, prefix.clone(), events_tx.clone(), chunks.clone())));
    }
    let mut streams = Vec::new();
    for token in &tokens {
        streams.push(open_stream(client::bus(gorpd.grpc_addr, token).await?).await?);
    }
    let total = (plan.rate * plan.duration).round() as u64;
    let schedule =
        Schedule { platforms, sessions: plan.sessions.max(1), rate: plan.rate, total, prefix, start: Instant::now() };
    let (sent, load_end) = offer(&schedule, &streams, plan).await;
    let mut tally = Tally::new(&schedule, sent);
    tally.collect(&schedule, &mut events, load_end + plan.grace()).await;
    for reader in readers {
        reader.abort();
    }
    let mut section = tally.section(&schedule, plan, load_end);
    section.metric("chunks received", "count", chunks.load(Ordering::Relaxed) as f64);
    check_acks(&mut section, streams, sent).await;
    // Lazily written cursors reach the database within half a second.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let grown = database_bytes(&gorpd).await?.saturating_sub(bytes_before);
    section.metric("database growth", "MiB", grown as f64 / (1024.0 * 1024.0));
    section.metric("stored per message", "bytes", (sent > 0).then(|| grown as f64 / sent as f64));
    gorpd.report_log(&mut section);
    Ok(section)
}

/// gorp.db's size as gorpd reports it (pages in use and free, WAL included).
async fn database_bytes(gorpd: &Gorpd) -> Result<u64> {
    let info = gorpd.control().await?.get_server_info(pb::GetServerInfoRequest {}).await?.into_inner();
    Ok(info.database_bytes)
}

/// Sessions, one bound channel per session and platform, and one gateway token per platform.
async fn setup(gorpd: &Gorpd, plan: &Plan, platforms: &[String]) -> Result<Vec<String>> {
    let mut control = gorpd.control().await?;
    fleet::create_sessions(&control, plan.sessions, plan.setup_concurrency).await?;
    let mut tokens = Vec::new();
    for platform in platforms {
        fleet::bind(&control, fleet::one_channel_per_session(platform, plan.sessions), plan.setup_concurrency).await?;
        tokens.push(client::gateway_token(&mut control, platform).await?);
    }
    Ok(tokens)
}

/// Reads one subscription until it ends, acking every final response.
async fn read(
    mut subscriber: Subscriber,
    index: usize,
    prefix: String,
    events: mpsc::UnboundedSender<Event>,
    chunks: Arc<AtomicU64>,
) {
    loop {
        let event = match subscriber.next(Duration::from_secs(3600)).await {
            Ok(Some(Kind::Response(response))) => {
                let at = Instant::now();
                let number = answered_id(&response).and_then(|id| message_number(id, &prefix));
                let complete = response.kind == pb::ResponseKind::Complete as i32;
                if let Err(error) = subscriber.ack(response.seq) {
                    let _ = events.send(Event::Ended { subscriber: index, error: error.to_string() });
                    return;
                }
                Event::Response { subscriber: index, number, complete, at }
            }
            Ok(Some(Kind::Chunk(_))) => {
                chunks.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            Ok(Some(Kind::CaughtUp(_))) => Event::CaughtUp,
            Ok(None) => continue,
            Err(error) => {
                let _ = events.send(Event::Ended { subscriber: index, error: error.to_string() });
                return;
            }
        };
        if events.send(event).is_err() {
            return;
        }
    }
}

/// Opens a Publish stream whose acks are counted by a task until the stream ends.
async fn open_stream(mut bus: Bus) -> Result<PublishStream> {
    let (requests, receiver) = mpsc::channel(1024);
    let mut acks = client::bounded("Bus.Publish", bus.publish(ReceiverStream::new(receiver))).await?.into_inner();
    let acks = tokio::spawn(async move {
        let mut counts = AckCounts::default();
        loop {
            match acks.message().await {
                Ok(Some(ack)) => match pb::PublishStatus::try_from(ack.status) {
                    Ok(pb::PublishStatus::Accepted) => counts.accepted += 1,
                    Ok(pb::PublishStatus::Duplicate) => counts.duplicate += 1,
                    _ => {
                        counts.rejected += 1;
                        counts.failure.get_or_insert(format!("REJECTED {}: {}", ack.message_id, ack.error));
                    }
                },
                Ok(None) => return counts,
                Err(status) => {
                    counts.failure.get_or_insert(format!("publish stream failed: {status}"));
                    return counts;
                }
            }
        }
    });
    Ok(PublishStream { requests, acks })
}

/// Sends every message when it is due; stops early only if sending is blocked
/// past the end of the load plus the grace period. Returns (sent, end of sending).
async fn offer(schedule: &Schedule, streams: &[PublishStream], plan: &Plan) -> (u64, Instant) {
    let hard_stop = schedule.due(schedule.total) + plan.grace();
    let mut sent = 0;
    while sent < schedule.total {
        tokio::time::sleep_until(schedule.due(sent).into()).await;
        let request = schedule.request(sent, plan.size);
        let stream = &streams[schedule.platform_of(sent)];
        match tokio::time::timeout_at(hard_stop.into(), stream.requests.send(request)).await {
            Ok(Ok(())) => sent += 1,
            _ => break,
        }
    }
    (sent, Instant::now())
}

/// Closes the publish streams and checks every sent message was acked ACCEPTED.
async fn check_acks(section: &mut Section, streams: Vec<PublishStream>, sent: u64) {
    let mut accepted = 0;
    for stream in streams {
        drop(stream.requests);
        match tokio::time::timeout(STALL, stream.acks).await {
            Ok(Ok(counts)) => {
                accepted += counts.accepted;
                section.expect_zero(counts.duplicate, "messages acked DUPLICATE (ids are unique)");
                section.expect_zero(counts.rejected, "messages REJECTED");
                if let Some(failure) = counts.failure {
                    section.problem(failure);
                }
            }
            Ok(Err(error)) => section.problem(format!("ack task failed: {error}")),
            Err(_) => section.problem(format!("publish stream did not end within {STALL:?} after the load")),
        }
    }
    if accepted as u64 != sent {
        section.problem(format!("{accepted} of {sent} sent messages were acked ACCEPTED"));
    }
}

/// Deliveries per message and subscriber, and the latencies of the answers at home.
struct Tally {
    /// `seen[subscriber][number]`: deliveries of message `number`'s answer to that subscriber.
    seen: Vec<Vec<u8>>,
    sent: u64,
    latencies: Latencies,
    unique: u64,
    duplicates: u64,
    not_complete: u64,
    unexpected: u64,
    lag_replays: u64,
    ended: Vec<String>,
    last_home_arrival: Option<Instant>,
}

impl Tally {
    fn new(schedule: &Schedule, sent: u64) -> Self {
        Self {
            seen: vec![vec![0; sent as usize]; schedule.platforms.len()],
            sent,
            latencies: Latencies::with_capacity(sent as usize),
            unique: 0,
            duplicates: 0,
            not_complete: 0,
            unexpected: 0,
            lag_replays: 0,
            ended: Vec::new(),
            last_home_arrival: None,
        }
    }

    /// Reads events until every sent message reached every subscriber, or `deadline`.
    async fn collect(&mut self, schedule: &Schedule, events: &mut mpsc::UnboundedReceiver<Event>, deadline: Instant) {
        let expected = self.sent * schedule.platforms.len() as u64;
        while self.unique < expected {
            match tokio::time::timeout_at(deadline.into(), events.recv()).await {
                Ok(Some(event)) => self.record(schedule, event),
                Ok(None) | Err(_) => return,
            }
        }
    }

    fn record(&mut self, schedule: &Schedule, event: Event) {
        let (subscriber, number, complete, at) = match event {
            Event::Response { subscriber, number, complete, at } => (subscriber, number, complete, at),
            Event::CaughtUp => return self.lag_replays += 1,
            Event::Ended { subscriber, error } => {
                return self.ended.push(format!("subscriber {} ended: {error}", schedule.platforms[subscriber]));
            }
        };
        let Some(number) = number.filter(|n| *n < self.sent) else { return self.unexpected += 1 };
        if !complete {
            self.not_complete += 1;
        }
        let count = &mut self.seen[subscriber][number as usize];
        *count = count.saturating_add(1);
        if *count > 1 {
            return self.duplicates += 1;
        }
        self.unique += 1;
        if schedule.platform_of(number) == subscriber {
            self.latencies.push(at.saturating_duration_since(schedule.due(number)));
            self.last_home_arrival = Some(self.last_home_arrival.map_or(at, |last| last.max(at)));
        }
    }

    /// (answers missing at their own platform, copies missing at the other platforms).
    fn missing(&self, schedule: &Schedule) -> (usize, usize) {
        let mut home = 0;
        let mut copies = 0;
        for (subscriber, seen) in self.seen.iter().enumerate() {
            for (number, count) in seen.iter().enumerate() {
                if *count == 0 {
                    if schedule.platform_of(number as u64) == subscriber { home += 1 } else { copies += 1 }
                }
            }
        }
        (home, copies)
    }

    fn section(mut self, schedule: &Schedule, plan: &Plan, load_end: Instant) -> Section {
        let mut section = Section::new(Workload::E2e.name(), Side::Gorp);
        let answered = self.latencies.len();
        let span = self.last_home_arrival.map_or(Duration::ZERO, |last| last.saturating_duration_since(schedule.start));
        section.metric("offered rate", "msg/s", plan.rate);
        section.metric("messages sent", "count", self.sent as f64);
        section.metric(
            "publisher behind schedule at end",
            "ms",
            crate::stats::ms(load_end.saturating_duration_since(schedule.due(self.sent))),
        );
        section.metric("answers delivered", "msg/s", per_second(answered, span));
        for (label, p) in [("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("max", 100.0)] {
            section.metric(&format!("{label} publish-to-answer latency"), "ms", self.latencies.percentile_ms(p));
        }
        section.metric("lag replays (CaughtUp again)", "count", self.lag_replays as f64);
        let (home, copies) = self.missing(schedule);
        let grace = plan.grace();
        section
            .expect_zero(home, &format!("answers never reached their own platform (waited {grace:?} after the load)"));
        section.expect_zero(copies, &format!("copies never reached the other platforms (waited {grace:?})"));
        section.expect_zero(self.duplicates as usize, "duplicate deliveries");
        section.expect_zero(self.not_complete as usize, "responses were not COMPLETE");
        section.expect_zero(self.unexpected as usize, "responses answered no message of this run");
        section.expect_zero((schedule.total - self.sent) as usize, "messages could not be sent (publisher blocked)");
        for ended in self.ended {
            section.problem(ended);
        }
        section
    }
}
