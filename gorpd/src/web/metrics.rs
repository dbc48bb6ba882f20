//! `GET /metrics` in the Prometheus text format.
//!
//! Needs a login session or `Authorization: Bearer <admin token>` (what a
//! Prometheus scrape job sends with `authorization.credentials_file`).

use super::login::session_of;
use super::{WebError, WebState};
use crate::auth::Principal;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use std::fmt::Write;

/// Whether the request carries an admin bearer token.
fn has_admin_token(state: &WebState, headers: &HeaderMap) -> bool {
    super::bearer_token(headers).is_some_and(|token| state.auth.check(token) == Some(Principal::Admin))
}

/// Escapes a label value.
fn label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn metric<V: std::fmt::Display>(out: &mut String, name: &str, kind: &str, help: &str, samples: &[(String, V)]) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    for (labels, value) in samples {
        let _ = writeln!(out, "{name}{labels} {value}");
    }
}

/// `GET /metrics`.
pub(crate) async fn metrics(State(state): State<WebState>, headers: HeaderMap) -> Result<impl IntoResponse, WebError> {
    if session_of(&state, &headers).is_none() && !has_admin_token(&state, &headers) {
        return Err(WebError::Unauthorized);
    }
    let orchestrator = &state.orchestrator;
    let counters = orchestrator.bus().counters();
    let sessions = orchestrator.list_sessions().await?;
    let busy = sessions.iter().filter(|s| s.state == crate::orchestrator::SessionState::Busy).count() as u64;
    let running = sessions.iter().filter(|s| s.agent_running == Some(true)).count() as u64;
    let (mut pending, mut undecryptable, mut waiting) = (Vec::new(), Vec::new(), Vec::new());
    for gateway in orchestrator.store().gateways().await.map_err(WebError::internal)? {
        let labels =
            format!("{{gateway=\"{}\",platform=\"{}\"}}", label(&gateway.gateway_id), label(&gateway.platform));
        if let Some(health) = state.presence.health(&gateway.gateway_id) {
            undecryptable.push((labels.clone(), health.undecryptable_since_start));
            waiting.push((labels.clone(), health.waiting_for_keys));
        }
        let count = orchestrator
            .store()
            .responses_pending(&gateway.platform, gateway.acked_seq)
            .await
            .map_err(WebError::internal)?;
        pending.push((labels, count));
    }
    let failures: Vec<(String, u64)> = orchestrator
        .store()
        .schedules(None)
        .await
        .map_err(WebError::internal)?
        .iter()
        .map(|row| {
            let labels = format!("{{schedule=\"{}\",session=\"{}\"}}", row.id, label(&row.session));
            (labels, u64::from(row.failures))
        })
        .collect();
    let size = orchestrator.store().database_size().await.map_err(WebError::internal)?;
    let table_rows: Vec<(String, u64)> =
        size.rows.iter().map(|(table, rows)| (format!("{{table=\"{table}\"}}"), *rows)).collect();
    let tokens: Vec<(String, u64)> = sessions
        .iter()
        .flat_map(|info| {
            let session = label(&info.row.name);
            [
                (format!("{{session=\"{session}\",direction=\"input\"}}"), info.row.input_tokens),
                (format!("{{session=\"{session}\",direction=\"output\"}}"), info.row.output_tokens),
            ]
        })
        .collect();
    let costs: Vec<(String, f64)> = sessions
        .iter()
        .filter_map(|info| {
            let (amount, currency) = info.cost.as_ref()?;
            Some((format!("{{session=\"{}\",currency=\"{}\"}}", label(&info.row.name), label(currency)), *amount))
        })
        .collect();
    let compaction = orchestrator.compaction_report();
    let mut compacted: Vec<(String, u64)> = compaction
        .points
        .platforms
        .iter()
        .map(|(platform, seq)| (format!("{{platform=\"{}\"}}", label(platform)), *seq))
        .collect();
    compacted.push(("{platform=\"*\"}".to_owned(), compaction.points.others));
    let stale: Vec<(String, u64)> = compaction
        .stale_gateways
        .iter()
        .map(|gateway| {
            let labels =
                format!("{{gateway=\"{}\",platform=\"{}\"}}", label(&gateway.gateway_id), label(&gateway.platform));
            (labels, gateway.last_seen.timestamp().max(0) as u64)
        })
        .collect();
    let mut out = String::new();
    let one = |value: u64| vec![(String::new(), value)];
    metric(
        &mut out,
        "gorp_messages_in_total",
        "counter",
        "Inbound messages accepted since start.",
        &one(counters.messages_in()),
    );
    metric(
        &mut out,
        "gorp_responses_out_total",
        "counter",
        "Final responses committed since start.",
        &one(counters.responses_out()),
    );
    metric(&mut out, "gorp_errors_total", "counter", "Error responses committed since start.", &one(counters.errors()));
    metric(&mut out, "gorp_deliveries_pending", "gauge", "Final responses a gateway has not acknowledged.", &pending);
    metric(
        &mut out,
        "gorp_gateway_undecryptable_messages",
        "gauge",
        "Messages a gateway could not decrypt since it started, as it last reported.",
        &undecryptable,
    );
    metric(
        &mut out,
        "gorp_gateway_waiting_for_keys",
        "gauge",
        "Undecryptable messages a gateway still keeps for their keys, as it last reported.",
        &waiting,
    );
    metric(&mut out, "gorp_turns_in_flight", "gauge", "Sessions running a turn now.", &one(busy));
    metric(&mut out, "gorp_agent_processes_running", "gauge", "Agent processes alive now.", &one(running));
    metric(&mut out, "gorp_sessions", "gauge", "Sessions.", &one(sessions.len() as u64));
    metric(&mut out, "gorp_database_bytes", "gauge", "Size of gorp.db (without its WAL).", &one(size.bytes));
    metric(
        &mut out,
        "gorp_database_free_bytes",
        "gauge",
        "Free pages in gorp.db waiting for reuse.",
        &one(size.free_bytes),
    );
    metric(&mut out, "gorp_table_rows", "gauge", "Rows of the tables that grow with traffic.", &table_rows);
    metric(
        &mut out,
        "gorp_delivery_compacted_seq",
        "gauge",
        "Deliveries up to this seq were compacted away (platform \"*\": platforms without a live gateway).",
        &compacted,
    );
    metric(
        &mut out,
        "gorp_gateway_stale_last_seen_seconds",
        "gauge",
        "Gateways silent for longer than gateway_stale_days (no longer holding back compaction): last seen, Unix time.",
        &stale,
    );
    metric(&mut out, "gorp_schedule_failures", "gauge", "Failed runs in a row of each schedule.", &failures);
    metric(&mut out, "gorp_session_tokens_total", "counter", "Tokens each session's agent reported.", &tokens);
    metric(
        &mut out,
        "gorp_session_cost",
        "gauge",
        "What each session cost so far, by its price table or agent.",
        &costs,
    );
    Ok(([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], out))
}
