//! Workloads 6 (`restart`) and 7 (`memory`), on one gorpd when both run.
//!
//! `memory`: VmRSS of the idle gorpd, then again after creating S idle
//! sessions; the difference per session. `restart`: S sessions and B
//! bindings (channel `r<b>` of platform `bench` bound to session `b % S`),
//! created through Control with many calls in flight; then SIGTERM, wait for
//! the exit, start again on the same data directory and time the spawn to
//! the first SERVING health answer. Afterwards the bindings of the first and
//! last session are checked, so a fast start that lost state does not pass.

use super::{Plan, Workload, fleet, session_name};
use crate::client;
use crate::gorpd::Gorpd;
use crate::report::{Section, Side};
use crate::stats::per_second;
use anyhow::Result;
use gorp_proto::v1 as pb;

const MIB: f64 = 1024.0 * 1024.0;

/// Runs `restart` and/or `memory` on one fresh gorpd; one section per workload run.
pub(crate) async fn gorp(plan: &Plan, restart: bool, memory: bool) -> Result<Vec<Section>> {
    let mut gorpd = Gorpd::start(plan).await?;
    let control = gorpd.control().await?;
    let sessions = plan.restart_sessions.max(1);
    let idle_rss = gorpd.rss_bytes();
    let took = fleet::create_sessions(&control, sessions, plan.setup_concurrency).await?;
    let sessions_rss = gorpd.rss_bytes();
    let mut sections = Vec::new();
    if memory {
        let mut section = Section::new(Workload::Memory.name(), Side::Gorp);
        section.metric("sessions", "count", sessions as f64);
        section.metric("RSS idle, no sessions", "MiB", idle_rss.map(|b| b as f64 / MIB));
        section.metric("RSS with idle sessions", "MiB", sessions_rss.map(|b| b as f64 / MIB));
        let per_session = idle_rss.zip(sessions_rss).map(|(idle, full)| (full as f64 - idle as f64) / sessions as f64);
        section.metric("RSS per idle session", "bytes", per_session);
        sections.push(section);
    }
    if restart {
        let mut section = Section::new(Workload::Restart.name(), Side::Gorp);
        section.metric("sessions", "count", sessions as f64);
        section.metric("bindings", "count", plan.restart_bindings as f64);
        section.metric("CreateSession calls", "calls/s", per_second(sessions, took));
        let bindings = bindings(plan.restart_bindings, sessions);
        let took = fleet::bind(&control, bindings, plan.setup_concurrency).await?;
        section.metric("BindSession calls", "calls/s", per_second(plan.restart_bindings, took));
        section.metric("start to SERVING, empty data dir", "s", gorpd.ready_after.as_secs_f64());
        section.metric("RSS before restart", "MiB", gorpd.rss_bytes().map(|b| b as f64 / MIB));
        let stopped = gorpd.restart().await?;
        section.metric("SIGTERM to exit", "s", stopped.as_secs_f64());
        section.metric("start to SERVING, after restart", "s", gorpd.ready_after.as_secs_f64());
        section.metric("RSS after restart", "MiB", gorpd.rss_bytes().map(|b| b as f64 / MIB));
        check_bindings(&gorpd, plan.restart_bindings, sessions, &mut section).await?;
        sections.push(section);
    }
    if let Some(last) = sections.last_mut() {
        gorpd.report_log(last);
    }
    Ok(sections)
}

/// Channel `r<b>` of platform `bench` for session `b % sessions`.
fn bindings(count: usize, sessions: usize) -> Vec<(pb::Channel, String)> {
    (0..count).map(|b| (client::channel("bench", &format!("r{b}")), session_name(b % sessions))).collect()
}

/// Bindings of session `index` when `count` bindings are spread round-robin.
fn expected_bindings(index: usize, count: usize, sessions: usize) -> usize {
    count / sessions + usize::from(index < count % sessions)
}

/// Checks that the first and last session still have their bindings after the restart.
async fn check_bindings(gorpd: &Gorpd, count: usize, sessions: usize, section: &mut Section) -> Result<()> {
    let mut control = gorpd.control().await?;
    for index in [0, sessions - 1] {
        let request = pb::GetSessionRequest { name: session_name(index) };
        let session = client::bounded("GetSession after the restart", control.get_session(request)).await?.into_inner();
        let expected = expected_bindings(index, count, sessions);
        if session.channels.len() != expected {
            section.problem(format!(
                "after the restart {} has {} channels, expected {expected}",
                session.name,
                session.channels.len()
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_robin_binding_counts() {
        assert_eq!(expected_bindings(0, 10, 4), 3);
        assert_eq!(expected_bindings(1, 10, 4), 3);
        assert_eq!(expected_bindings(2, 10, 4), 2);
        assert_eq!(expected_bindings(3, 10, 4), 2);
    }
}
