//! The dashboard's charts of the last hour, drawn on the server as SVG
//! (`templates/charts.html`) from the per-minute totals that
//! [`crate::metrics::Metrics`] keeps: no script and nothing from elsewhere.
//!
//! Throughput and latency come from what the hot path observes; how far each
//! gateway is behind is sampled every [`LAG_SAMPLE_EVERY`] by
//! [`sample_lag`], which runs as long as the web adapter, and whenever the
//! dashboard is shown.

use super::WebState;
use crate::metrics::{Metrics, Minute, RECENT_MINUTES, unix_minute};
use crate::store::StoreResult;
use serde::Serialize;
use std::time::Duration;

/// How often each gateway's lag is sampled.
pub(super) const LAG_SAMPLE_EVERY: Duration = Duration::from_secs(15);

/// The drawing's size in SVG units (the page scales it).
const WIDTH: f64 = 300.0;
const HEIGHT: f64 = 60.0;

/// One chart as the template draws it.
#[derive(Debug, Serialize)]
pub(super) struct Chart {
    /// Part of the element id (`chart-<id>`).
    id: String,
    title: String,
    unit: &'static str,
    /// The latest minute's value and the hour's highest, formatted.
    last: String,
    peak: String,
    /// The hour's sum, for charts of counts.
    total: Option<String>,
    /// The polyline's points, one per minute, oldest first.
    points: String,
}

/// The charts of the last hour: throughput, latency, and each gateway's lag.
pub(super) fn charts(metrics: &Metrics) -> Vec<Chart> {
    let minutes = metrics.recent();
    let now = unix_minute();
    let series = |value: &dyn Fn(&Minute) -> f64| -> Vec<f64> {
        (0..RECENT_MINUTES as i64)
            .map(|i| now - (RECENT_MINUTES as i64 - 1) + i)
            .map(|at| minutes.iter().find(|minute| minute.at == at).map_or(0.0, value))
            .collect()
    };
    let mean = |sum: f64, count: u64| if count == 0 { 0.0 } else { sum / count as f64 };
    let mut charts = vec![
        counts(chart("published", "Messages published per minute", "", series(&|m| m.published as f64))),
        counts(chart("turns", "Turns per minute", "", series(&|m| m.turns as f64))),
        chart("ack-latency", "Publish→ack, mean", "ms", series(&|m| 1000.0 * mean(m.ack_seconds, m.published))).0,
        chart("turn-latency", "Turn duration, mean", "s", series(&|m| mean(m.turn_seconds, m.turns))).0,
    ];
    let mut gateways: Vec<&String> = minutes.iter().flat_map(|minute| minute.lag.keys()).collect();
    gateways.sort();
    gateways.dedup();
    for gateway in gateways {
        let lag = series(&|m| m.lag.get(gateway).copied().unwrap_or(0) as f64);
        charts.push(chart(&format!("lag-{gateway}"), &format!("Answers {gateway} is behind"), "", lag).0);
    }
    charts
}

/// `chart` with the hour's total shown (its values are counts per minute).
fn counts(chart: (Chart, f64)) -> Chart {
    Chart { total: Some(format!("{:.0}", chart.1)), ..chart.0 }
}

/// A chart of `values` (one per minute), and their sum.
fn chart(id: &str, title: &str, unit: &'static str, values: Vec<f64>) -> (Chart, f64) {
    let peak = values.iter().copied().fold(0.0, f64::max);
    let step = WIDTH / (values.len().max(2) - 1) as f64;
    let points: Vec<String> = values
        .iter()
        .enumerate()
        .map(|(i, value)| {
            let height = if peak > 0.0 { value / peak * (HEIGHT - 2.0) } else { 0.0 };
            format!("{:.1},{:.1}", i as f64 * step, HEIGHT - 1.0 - height)
        })
        .collect();
    let number = |value: f64| if value.fract() == 0.0 { format!("{value:.0}") } else { format!("{value:.2}") };
    let chart = Chart {
        id: id.to_owned(),
        title: title.to_owned(),
        unit,
        last: number(values.last().copied().unwrap_or_default()),
        peak: number(peak),
        total: None,
        points: points.join(" "),
    };
    (chart, values.iter().sum())
}

/// Samples every gateway's lag until gorpd stops.
pub(super) async fn sample_lag(state: WebState) {
    let mut every = tokio::time::interval(LAG_SAMPLE_EVERY);
    loop {
        tokio::select! {
            _ = state.shutdown.cancelled() => return,
            _ = every.tick() => {}
        }
        if let Err(error) = sample_lag_once(&state).await {
            tracing::debug!(%error, "could not sample the gateways' lag");
        }
    }
}

/// Records how many answers each known gateway is behind now.
pub(super) async fn sample_lag_once(state: &WebState) -> StoreResult<()> {
    let store = state.orchestrator.store();
    for gateway in store.gateways().await? {
        let pending = store.responses_pending(&gateway.platform, gateway.acked_seq).await?;
        state.orchestrator.metrics().lag_sampled(&gateway.gateway_id, pending);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_has_a_point_per_minute_scaled_to_its_peak() {
        let metrics = Metrics::default();
        metrics.publish_acked(Duration::from_micros(2500));
        metrics.lag_sampled("tg-main", 4);
        let charts = charts(&metrics);
        let ids: Vec<&str> = charts.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["published", "turns", "ack-latency", "turn-latency", "lag-tg-main"]);
        let published = &charts[0];
        let points: Vec<&str> = published.points.split(' ').collect();
        assert_eq!(points.len(), RECENT_MINUTES);
        assert_eq!(points[0], "0.0,59.0", "an empty minute sits on the baseline");
        assert_eq!(*points.last().unwrap(), "300.0,1.0", "the peak reaches the top");
        assert_eq!((published.last.as_str(), published.peak.as_str()), ("1", "1"));
        assert_eq!(published.total.as_deref(), Some("1"));
        assert_eq!(charts[2].last, "2.50", "milliseconds");
        assert_eq!(charts[1].peak, "0", "no turn yet: a flat line");
    }
}
