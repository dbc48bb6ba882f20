//! The gateway's own health and metrics, on `--health-addr` when given.
//!
//! `GET /healthz` answers JSON with the connection to gorpd and the spool
//! (messages, bytes, age of the oldest, full): 200 while messages are safe
//! (gorpd connected, or a spool with room takes them), 503 when they are not
//! (a full spool, or gorpd away with no spool). `GET /metrics` gives the same
//! numbers and the gateway's own metrics ([`crate::metrics`]: platform API
//! latency, rate limits, failures, connects) as OpenMetrics text. Read-only;
//! stops with the runner.

use crate::runner::ConnectionState;
use crate::spool::{SpoolConfig, SpoolStats};
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde_json::json;
use std::sync::atomic::AtomicU64;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// What the health endpoints read.
#[derive(Clone)]
pub(crate) struct Sources {
    /// The platform name, the `platform` label of every metric.
    pub(crate) platform: &'static str,
    pub(crate) connection: watch::Receiver<ConnectionState>,
    pub(crate) spool: Option<(watch::Receiver<SpoolStats>, SpoolConfig)>,
    /// Platform calls and connects.
    pub(crate) metrics: crate::metrics::GatewayMetrics,
}

/// Serves `/healthz` and `/metrics` on `listener` until `stop`.
pub(crate) async fn serve(listener: TcpListener, sources: Sources, stop: CancellationToken) {
    let app = Router::new().route("/healthz", get(healthz)).route("/metrics", get(metrics)).with_state(sources);
    let served = axum::serve(listener, app).with_graceful_shutdown(stop.cancelled_owned()).await;
    if let Err(error) = served {
        tracing::warn!(%error, "the health endpoint failed");
    }
}

fn gorpd_state(state: &ConnectionState) -> &'static str {
    match state {
        ConnectionState::Connecting => "connecting",
        ConnectionState::Connected => "connected",
        ConnectionState::Disconnected { .. } => "disconnected",
        ConnectionState::Stopped => "stopped",
    }
}

async fn healthz(State(sources): State<Sources>) -> impl IntoResponse {
    let connected = *sources.connection.borrow() == ConnectionState::Connected;
    let gorpd = gorpd_state(&sources.connection.borrow());
    let spool = sources.spool.as_ref().map(|(stats, config)| (stats.borrow().clone(), config.clone()));
    let (status, safe) = match &spool {
        Some((stats, _)) if stats.full => ("spool full", false),
        _ if connected => ("ok", true),
        Some(_) => ("gorpd away; spooling", true),
        None => ("gorpd away", false),
    };
    let spool = spool.map(|(stats, config)| {
        json!({
            "messages": stats.entries, "bytes": stats.bytes, "full": stats.full,
            "oldest_age_secs": stats.oldest_age().map(|age| age.as_secs()),
            "max_messages": config.max_entries, "max_bytes": config.max_bytes, "max_age_secs": config.max_age.as_secs(),
        })
    });
    let code = if safe { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (code, axum::Json(json!({ "status": status, "platform": sources.platform, "gorpd": gorpd, "spool": spool })))
}

async fn metrics(State(sources): State<Sources>) -> impl IntoResponse {
    let mut registry = Registry::default();
    sources.metrics.register(&mut registry);
    let gauge = |registry: &mut Registry, name: &str, help: &str, value: f64| {
        let family = Family::<[(&str, &str); 1], Gauge<f64, AtomicU64>>::default();
        family.get_or_create(&[("platform", sources.platform)]).set(value);
        registry.register(name, help, family);
    };
    let connected = u8::from(*sources.connection.borrow() == ConnectionState::Connected);
    gauge(&mut registry, "gorp_gateway_connected", "1 while the gateway is connected to gorpd", f64::from(connected));
    if let Some((stats, config)) = &sources.spool {
        let stats = stats.borrow().clone();
        let age = stats.oldest_age().map_or(0.0, |age| age.as_secs_f64());
        let spooled = "Messages in the spool that gorpd has not acknowledged";
        gauge(&mut registry, "gorp_gateway_spool_messages", spooled, stats.entries as f64);
        gauge(&mut registry, "gorp_gateway_spool_bytes", "Bytes of those messages", stats.bytes as f64);
        let oldest = "How long the oldest spooled message has waited";
        gauge(&mut registry, "gorp_gateway_spool_oldest_age_seconds", oldest, age);
        let full = "1 while the spool refuses new messages";
        gauge(&mut registry, "gorp_gateway_spool_full", full, f64::from(u8::from(stats.full)));
        let bound = "The spool's message bound";
        gauge(&mut registry, "gorp_gateway_spool_max_messages", bound, config.max_entries as f64);
    }
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &registry).expect("writing to a String cannot fail");
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], out)
}
