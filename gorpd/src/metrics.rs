//! gorpd's live metrics: histograms and counters (prometheus-client) that
//! the hot path observes as it goes, and the exposition that `/metrics`
//! builds from them on every scrape.
//!
//! [`Metrics`] is a cheap handle shared by the gRPC services and the
//! orchestrator; each observation is a few atomic adds (a histogram takes a
//! short lock), never a write or an await. The writer's own histograms live
//! in [`crate::store::WriterStats`] so the store needs no handle. Values that
//! are read rather than observed (queue depths, gateway lag, table sizes) are
//! gauges filled in by [`Exposition`] at scrape time. The last hour's
//! per-minute totals ([`Metrics::recent`]) feed the dashboard's charts.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The content type of the exposition (OpenMetrics text, which Prometheus reads).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Buckets for latencies from 0.1 ms to about 52 s (doubling).
pub fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 2.0, 20))
}

/// Buckets for turns, which take from tens of milliseconds to many minutes.
fn turn_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.01, 2.0, 18))
}

/// Buckets for counts from 1 to 1024 (doubling), e.g. writes per commit.
pub fn size_histogram() -> Histogram {
    Histogram::new(exponential_buckets(1.0, 2.0, 11))
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// The agent profile a turn ran on.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AgentLabels {
    agent: String,
}

/// One gateway process.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GatewayLabels {
    gateway: String,
    platform: String,
}

/// Minutes of totals kept for the dashboard's charts.
pub const RECENT_MINUTES: usize = 60;

/// The totals of one minute, for the dashboard's charts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Minute {
    /// Minutes since the Unix epoch.
    pub at: i64,
    /// Publishes acknowledged.
    pub published: u64,
    /// Their publish→ack latencies added up, in seconds.
    pub ack_seconds: f64,
    /// Turns ended.
    pub turns: u64,
    /// Their durations added up, in seconds.
    pub turn_seconds: f64,
    /// The most answers each gateway (by id) was behind, as sampled.
    pub lag: BTreeMap<String, u64>,
}

#[derive(Debug)]
struct Inner {
    /// The last [`RECENT_MINUTES`] minutes, oldest first (minutes without activity are absent).
    recent: Mutex<VecDeque<Minute>>,
    publish_ack: Histogram,
    turn: Histograms<AgentLabels>,
    first_chunk: Histograms<AgentLabels>,
    permission_wait: Histogram,
    subscribes: Family<GatewayLabels, Counter>,
}

/// The metrics gorpd observes while it runs. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Metrics {
    inner: Arc<Inner>,
}

impl Default for Metrics {
    fn default() -> Self {
        let inner = Inner {
            recent: Mutex::default(),
            publish_ack: latency_histogram(),
            turn: Family::new_with_constructor(turn_histogram),
            first_chunk: Family::new_with_constructor(turn_histogram),
            permission_wait: turn_histogram(),
            subscribes: Family::default(),
        };
        Self { inner: Arc::new(inner) }
    }
}

impl Metrics {
    /// A published message was acknowledged `elapsed` after it was read.
    pub fn publish_acked(&self, elapsed: Duration) {
        self.inner.publish_ack.observe(elapsed.as_secs_f64());
        self.this_minute(|minute| {
            minute.published += 1;
            minute.ack_seconds += elapsed.as_secs_f64();
        });
    }

    /// A turn on agent profile `agent` ended (answered, failed or cancelled) after `elapsed`.
    pub fn turn_ended(&self, agent: &str, elapsed: Duration) {
        self.inner.turn.get_or_create(&AgentLabels { agent: agent.to_owned() }).observe(elapsed.as_secs_f64());
        self.this_minute(|minute| {
            minute.turns += 1;
            minute.turn_seconds += elapsed.as_secs_f64();
        });
    }

    /// Gateway `gateway` was `pending` answers behind when sampled.
    pub fn lag_sampled(&self, gateway: &str, pending: u64) {
        self.this_minute(|minute| {
            let lag = minute.lag.entry(gateway.to_owned()).or_default();
            *lag = (*lag).max(pending);
        });
    }

    /// The minutes of the last hour that saw activity, oldest first.
    pub fn recent(&self) -> Vec<Minute> {
        let now = unix_minute();
        let recent = self.inner.recent.lock().expect("recent lock");
        recent.iter().filter(|minute| now - minute.at < RECENT_MINUTES as i64).cloned().collect()
    }

    /// Adds to the current minute's totals, starting a new minute (and dropping the oldest) as time passes.
    fn this_minute(&self, add: impl FnOnce(&mut Minute)) {
        let now = unix_minute();
        let mut recent = self.inner.recent.lock().expect("recent lock");
        if recent.back().is_none_or(|minute| minute.at != now) {
            recent.push_back(Minute { at: now, ..Minute::default() });
            while recent.len() > RECENT_MINUTES {
                recent.pop_front();
            }
        }
        add(recent.back_mut().expect("a minute was just ensured"));
    }

    /// A turn on `agent` streamed its first chunk `elapsed` after it started.
    pub fn first_chunk(&self, agent: &str, elapsed: Duration) {
        self.inner.first_chunk.get_or_create(&AgentLabels { agent: agent.to_owned() }).observe(elapsed.as_secs_f64());
    }

    /// A permission request was resolved (answered, timed out or cancelled) after `elapsed`.
    pub fn permission_resolved(&self, elapsed: Duration) {
        self.inner.permission_wait.observe(elapsed.as_secs_f64());
    }

    /// A gateway opened its delivery stream (its first connect or a reconnect).
    pub fn gateway_subscribed(&self, gateway: &str, platform: &str) {
        let labels = GatewayLabels { gateway: gateway.to_owned(), platform: platform.to_owned() };
        self.inner.subscribes.get_or_create(&labels).inc();
    }

    /// Adds the live metrics to `exposition`.
    pub(crate) fn register(&self, exposition: &mut Exposition) {
        let inner = &self.inner;
        let registry = &mut exposition.registry;
        registry.register(
            "gorp_publish_ack_seconds",
            "From reading a published message to sending its ack (committed or duplicate)",
            inner.publish_ack.clone(),
        );
        registry.register(
            "gorp_turn_seconds",
            "Turn duration by agent profile, from its start to the agent's last event",
            inner.turn.clone(),
        );
        registry.register(
            "gorp_turn_first_chunk_seconds",
            "From a turn's start to its first streamed chunk, by agent profile",
            inner.first_chunk.clone(),
        );
        registry.register(
            "gorp_permission_wait_seconds",
            "From a permission request to its answer, timeout or cancellation",
            inner.permission_wait.clone(),
        );
        registry.register(
            "gorp_gateway_subscribes",
            "Delivery streams opened by each gateway (connects and reconnects)",
            inner.subscribes.clone(),
        );
    }
}

/// Minutes since the Unix epoch, now.
pub fn unix_minute() -> i64 {
    chrono::Utc::now().timestamp().div_euclid(60)
}

/// Label pairs of one sample, in order.
pub type Labels = Vec<(&'static str, String)>;

/// One scrape's exposition: the live metrics plus gauges read for it.
#[derive(Debug, Default)]
pub struct Exposition {
    registry: Registry,
}

impl Exposition {
    /// Adds a metric already kept elsewhere (e.g. the writer's histograms).
    pub fn metric(&mut self, name: &str, help: &str, metric: impl prometheus_client::registry::Metric) {
        self.registry.register(name, help, metric);
    }

    /// Adds a gauge with one sample per label set.
    pub fn gauges(&mut self, name: &str, help: &str, samples: impl IntoIterator<Item = (Labels, i64)>) {
        let family = Family::<Labels, Gauge>::default();
        for (labels, value) in samples {
            family.get_or_create(&labels).set(value);
        }
        self.registry.register(name, help, family);
    }

    /// Adds a gauge without labels.
    pub fn gauge(&mut self, name: &str, help: &str, value: i64) {
        self.gauges(name, help, [(Vec::new(), value)]);
    }

    /// Adds a gauge of fractional values.
    pub fn float_gauges(&mut self, name: &str, help: &str, samples: impl IntoIterator<Item = (Labels, f64)>) {
        let family = Family::<Labels, Gauge<f64, AtomicU64>>::default();
        for (labels, value) in samples {
            family.get_or_create(&labels).set(value);
        }
        self.registry.register(name, help, family);
    }

    /// Adds a counter read from elsewhere (`name` without `_total`, which the exposition adds).
    pub fn counters(&mut self, name: &str, help: &str, samples: impl IntoIterator<Item = (Labels, u64)>) {
        let family = Family::<Labels, Counter>::default();
        for (labels, value) in samples {
            family.get_or_create(&labels).inc_by(value);
        }
        self.registry.register(name, help, family);
    }

    /// The OpenMetrics text of everything added.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_show_as_histogram_buckets_and_counts() {
        let metrics = Metrics::default();
        metrics.publish_acked(Duration::from_micros(300));
        metrics.publish_acked(Duration::from_millis(20));
        metrics.turn_ended("echo", Duration::from_millis(50));
        metrics.gateway_subscribed("tg-1", "telegram");
        metrics.gateway_subscribed("tg-1", "telegram");
        let mut exposition = Exposition::default();
        metrics.register(&mut exposition);
        exposition.gauge("gorp_sessions", "Sessions", 3);
        let text = exposition.encode();
        for line in [
            "# TYPE gorp_publish_ack_seconds histogram",
            "gorp_publish_ack_seconds_count 2",
            "gorp_publish_ack_seconds_bucket{le=\"0.0004\"} 1",
            "gorp_publish_ack_seconds_bucket{le=\"+Inf\"} 2",
            "gorp_turn_seconds_count{agent=\"echo\"} 1",
            "gorp_gateway_subscribes_total{gateway=\"tg-1\",platform=\"telegram\"} 2",
            "gorp_sessions 3",
            "# EOF",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
    }

    #[test]
    fn the_current_minute_adds_up_publishes_turns_and_the_worst_lag() {
        let metrics = Metrics::default();
        metrics.publish_acked(Duration::from_millis(2));
        metrics.publish_acked(Duration::from_millis(4));
        metrics.turn_ended("echo", Duration::from_secs(3));
        metrics.lag_sampled("tg", 5);
        metrics.lag_sampled("tg", 2);
        let recent = metrics.recent();
        assert_eq!(recent.len(), 1, "{recent:?}");
        let minute = &recent[0];
        assert_eq!((minute.published, minute.turns), (2, 1));
        assert!((minute.ack_seconds - 0.006).abs() < 1e-9 && (minute.turn_seconds - 3.0).abs() < 1e-9);
        assert_eq!(minute.lag["tg"], 5, "the worst sample of the minute");
    }
}
