//! The gateway's own metrics (prometheus-client): how the platform's API
//! answers (latency per call, rate limits and failures, which the runner
//! retries) and how often the gateway (re)connected to gorpd. Served on
//! `/metrics` of `--health-addr` with the spool and connection gauges.
//!
//! Every platform call goes through [`crate::runner`]'s pacer, which
//! observes it here; observing is a few atomic adds and a short lock.

use crate::platform::PlatformError;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::time::Duration;

/// Buckets from 1 ms to about 33 s (doubling): platform APIs answer in tens to hundreds of ms.
fn call_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

/// One kind of platform call (`deliver`: a new message, `edit`: an edit in place).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    platform: &'static str,
    call: &'static str,
}

/// A failed platform call by how it failed.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    platform: &'static str,
    call: &'static str,
    error: &'static str,
}

#[derive(Debug)]
struct Inner {
    platform: &'static str,
    calls: Family<CallLabels, Histogram, fn() -> Histogram>,
    errors: Family<ErrorLabels, Counter>,
    connects: Family<[(&'static str, &'static str); 1], Counter>,
}

/// The gateway's live metrics. Cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct GatewayMetrics {
    inner: Arc<Inner>,
}

impl GatewayMetrics {
    /// Metrics labelled with `platform`.
    pub(crate) fn new(platform: &'static str) -> Self {
        let inner = Inner {
            platform,
            calls: Family::new_with_constructor(call_histogram),
            errors: Family::default(),
            connects: Family::default(),
        };
        Self { inner: Arc::new(inner) }
    }

    /// The platform answered `call` after `elapsed` with `result`.
    pub(crate) fn platform_call<T>(&self, call: &'static str, elapsed: Duration, result: &Result<T, PlatformError>) {
        let platform = self.inner.platform;
        self.inner.calls.get_or_create(&CallLabels { platform, call }).observe(elapsed.as_secs_f64());
        let error = match result {
            Ok(_) => return,
            Err(PlatformError::RateLimited(_)) => "rate_limited",
            Err(PlatformError::Transient(_)) => "transient",
            Err(PlatformError::Rejected(_)) => "rejected",
            Err(PlatformError::Fatal(_)) => "fatal",
        };
        self.inner.errors.get_or_create(&ErrorLabels { platform, call, error }).inc();
    }

    /// The gateway connected to gorpd (the first time or again).
    pub(crate) fn connected(&self) {
        self.inner.connects.get_or_create(&[("platform", self.inner.platform)]).inc();
    }

    /// Adds these metrics to `registry`.
    pub(crate) fn register(&self, registry: &mut Registry) {
        let inner = &self.inner;
        registry.register(
            "gorp_gateway_platform_call_seconds",
            "Time the platform's API took to answer a send (deliver) or an edit",
            inner.calls.clone(),
        );
        registry.register(
            "gorp_gateway_platform_errors",
            "Failed platform calls by kind (rate_limited: 429; rate limits and transient failures are retried)",
            inner.errors.clone(),
        );
        registry.register(
            "gorp_gateway_connects",
            "Connections to gorpd made (reconnects included)",
            inner.connects.clone(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_failures_and_connects_are_counted_per_platform() {
        let metrics = GatewayMetrics::new("slack");
        metrics.platform_call("deliver", Duration::from_millis(40), &Ok::<(), PlatformError>(()));
        let limited: Result<(), _> = Err(PlatformError::RateLimited(Duration::from_secs(1)));
        metrics.platform_call("edit", Duration::from_millis(5), &limited);
        metrics.connected();
        metrics.connected();
        let mut registry = Registry::default();
        metrics.register(&mut registry);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        for line in [
            "gorp_gateway_platform_call_seconds_count{platform=\"slack\",call=\"deliver\"} 1",
            "gorp_gateway_platform_call_seconds_bucket{le=\"0.064\",platform=\"slack\",call=\"deliver\"} 1",
            "gorp_gateway_platform_call_seconds_count{platform=\"slack\",call=\"edit\"} 1",
            "gorp_gateway_platform_errors_total{platform=\"slack\",call=\"edit\",error=\"rate_limited\"} 1",
            "gorp_gateway_connects_total{platform=\"slack\"} 2",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
    }
}
