//! `GET /metrics`: gorpd's live histograms and counters ([`crate::metrics`])
//! and gauges read for the scrape (queues, sessions, gateway lag, storage),
//! in the OpenMetrics text format.
//!
//! Needs a login session or `Authorization: Bearer <admin token>` (what a
//! Prometheus scrape job sends with `authorization.credentials_file`).

use super::login::session_of;
use super::{WebError, WebState};
use crate::auth::Principal;
use crate::metrics::{CONTENT_TYPE, Exposition, Labels};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::IntoResponse;

/// Whether the request carries an admin bearer token.
fn has_admin_token(state: &WebState, headers: &HeaderMap) -> bool {
    super::bearer_token(headers).is_some_and(|token| state.auth.check(token) == Some(Principal::Admin))
}

/// The labels of one gateway.
fn gateway_labels(gateway_id: &str, platform: &str) -> Labels {
    vec![("gateway", gateway_id.to_owned()), ("platform", platform.to_owned())]
}

/// `GET /metrics`.
pub(crate) async fn metrics(State(state): State<WebState>, headers: HeaderMap) -> Result<impl IntoResponse, WebError> {
    if session_of(&state, &headers).await.is_none() && !has_admin_token(&state, &headers) {
        return Err(WebError::Unauthorized);
    }
    let mut out = Exposition::default();
    state.orchestrator.metrics().register(&mut out);
    add_writer(&state, &mut out);
    add_counters(&state, &mut out);
    add_sessions(&state, &mut out).await?;
    add_gateways(&state, &mut out).await?;
    add_storage(&state, &mut out).await?;
    Ok(([(axum::http::header::CONTENT_TYPE, CONTENT_TYPE)], out.encode()))
}

fn add_writer(state: &WebState, out: &mut Exposition) {
    let stats = state.orchestrator.store().writer_stats();
    out.metric("gorp_commit_batch_writes", "Writes committed per transaction (group commit)", stats.batch_writes());
    out.metric("gorp_commit_seconds", "Time of each transaction's COMMIT, the fsync", stats.commit_seconds());
}

fn add_counters(state: &WebState, out: &mut Exposition) {
    let counters = state.orchestrator.bus().counters();
    let one = |value: u64| [(Vec::new(), value)];
    out.counters("gorp_messages_in", "Inbound messages accepted since start", one(counters.messages_in()));
    out.counters("gorp_responses_out", "Final responses committed since start", one(counters.responses_out()));
    out.counters("gorp_errors", "Error responses committed since start", one(counters.errors()));
    let depth = |value: usize| value as i64;
    out.gauge(
        "gorp_intake_queue",
        "Published messages waiting for the intake's commit",
        depth(state.orchestrator.intake_depth()),
    );
    out.gauge(
        "gorp_router_queue",
        "Accepted messages waiting for the router",
        depth(state.orchestrator.router_depth()),
    );
}

async fn add_sessions(state: &WebState, out: &mut Exposition) -> Result<(), WebError> {
    let sessions = state.orchestrator.list_sessions().await?;
    let busy = sessions.iter().filter(|s| s.state == crate::orchestrator::SessionState::Busy).count();
    let running = sessions.iter().filter(|s| s.agent_running == Some(true)).count();
    out.gauge("gorp_turns_in_flight", "Sessions running a turn now", busy as i64);
    out.gauge("gorp_agent_processes_running", "Agent processes alive now", running as i64);
    out.gauge("gorp_sessions", "Sessions", sessions.len() as i64);
    let session = |info: &crate::orchestrator::SessionInfo| ("session", info.row.name.clone());
    let queued = sessions.iter().filter(|info| info.queued > 0).map(|info| (vec![session(info)], info.queued as i64));
    out.gauges("gorp_session_queue", "Messages waiting for each session with work", queued);
    let tokens = sessions.iter().flat_map(|info| {
        [
            (vec![session(info), ("direction", "input".to_owned())], info.row.input_tokens),
            (vec![session(info), ("direction", "output".to_owned())], info.row.output_tokens),
        ]
    });
    out.counters("gorp_session_tokens", "Tokens each session's agent reported", tokens);
    let costs = sessions.iter().filter_map(|info| {
        let (amount, currency) = info.cost.as_ref()?;
        Some((vec![session(info), ("currency", currency.clone())], *amount))
    });
    out.float_gauges("gorp_session_cost", "What each session cost so far, by its price table or agent", costs);
    Ok(())
}

async fn add_gateways(state: &WebState, out: &mut Exposition) -> Result<(), WebError> {
    let store = state.orchestrator.store();
    let (mut pending, mut oldest, mut undecryptable, mut waiting) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let now = chrono::Utc::now();
    for gateway in store.gateways().await.map_err(WebError::internal)? {
        let labels = gateway_labels(&gateway.gateway_id, &gateway.platform);
        if let Some(health) = state.presence.health(&gateway.gateway_id) {
            undecryptable.push((labels.clone(), health.undecryptable_since_start as i64));
            waiting.push((labels.clone(), health.waiting_for_keys as i64));
        }
        let count = store.responses_pending(&gateway.platform, gateway.acked_seq).await.map_err(WebError::internal)?;
        let since = store.oldest_pending_at(&gateway.platform, gateway.acked_seq).await.map_err(WebError::internal)?;
        let age = since.map_or(0.0, |at| (now - at).num_milliseconds().max(0) as f64 / 1000.0);
        pending.push((labels.clone(), count as i64));
        oldest.push((labels, age));
    }
    out.gauges("gorp_deliveries_pending", "Final responses a gateway has not acknowledged", pending);
    out.float_gauges(
        "gorp_delivery_oldest_pending_seconds",
        "Age of the oldest final response a gateway has not acknowledged (0: none)",
        oldest,
    );
    out.gauges(
        "gorp_gateway_undecryptable_messages",
        "Messages a gateway could not decrypt since it started, as it last reported",
        undecryptable,
    );
    out.gauges(
        "gorp_gateway_waiting_for_keys",
        "Undecryptable messages a gateway still keeps for their keys, as it last reported",
        waiting,
    );
    let compaction = state.orchestrator.compaction_report();
    let mut compacted: Vec<(Labels, i64)> = compaction
        .points
        .platforms
        .iter()
        .map(|(platform, seq)| (vec![("platform", platform.clone())], *seq as i64))
        .collect();
    compacted.push((vec![("platform", "*".to_owned())], compaction.points.others as i64));
    out.gauges(
        "gorp_delivery_compacted_seq",
        "Deliveries up to this seq were compacted away (platform \"*\": platforms without a live gateway)",
        compacted,
    );
    let stale = compaction
        .stale_gateways
        .iter()
        .map(|gateway| (gateway_labels(&gateway.gateway_id, &gateway.platform), gateway.last_seen.timestamp().max(0)));
    out.gauges(
        "gorp_gateway_stale_last_seen_seconds",
        "Gateways silent for longer than gateway_stale_days (no longer holding back compaction): last seen, Unix time",
        stale,
    );
    Ok(())
}

async fn add_storage(state: &WebState, out: &mut Exposition) -> Result<(), WebError> {
    let store = state.orchestrator.store();
    let failures = store
        .schedules(None)
        .await
        .map_err(WebError::internal)?
        .into_iter()
        .map(|row| (vec![("schedule", row.id.to_string()), ("session", row.session)], i64::from(row.failures)));
    out.gauges("gorp_schedule_failures", "Failed runs in a row of each schedule", failures);
    let size = store.database_size().await.map_err(WebError::internal)?;
    out.gauge("gorp_database_bytes", "Size of gorp.db (without its WAL)", size.bytes as i64);
    out.gauge("gorp_database_free_bytes", "Free pages in gorp.db waiting for reuse", size.free_bytes as i64);
    let rows = size.rows.iter().map(|(table, rows)| (vec![("table", table.to_string())], *rows as i64));
    out.gauges("gorp_table_rows", "Rows of the tables that grow with traffic", rows);
    Ok(())
}
