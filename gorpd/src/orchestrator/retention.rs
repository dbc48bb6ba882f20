//! Retention, at start and then hourly (`retention_every_secs`), in small
//! batches through the writer:
//!
//! - accepted messages that are finished (done, dropped, interrupted) and
//!   older than the de-duplication window (`dedup_window_days`, default 7)
//!   are forgotten, with their webhook-call records; after that a resend of
//!   the same platform message id is accepted as new (the history keeps them);
//! - with `history_keep_days` set, older history entries go too (see
//!   `Store::prune_history`);
//! - the delivery log is compacted: a platform's deliveries go once every
//!   gateway of that platform seen within `gateway_stale_days` has
//!   acknowledged them; deliveries to platforms without such a gateway (the
//!   web chat, or only silent gateways, which are reported) are kept that
//!   many days. Freed pages go back to the file system.
//! - stored files (attachments) that no message names any more and that are
//!   older than [`FILE_GRACE`] are removed (`crate::files`); the grace keeps
//!   an upload whose message is still on its way.

use super::{Orchestrator, OrchestratorResult};
use crate::files::Collected;
use crate::store::{Compacted, CompactionPoints, GatewayRow, PruneRule, StoreError};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

/// Where the last compaction stood, for `/metrics`, `gorpctl info` and the admin panel.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CompactionReport {
    /// When it ran.
    pub at: Option<DateTime<Utc>>,
    /// How far it compacted: per platform with a live gateway, and the others
    /// (web chat, platforms with only silent gateways).
    pub points: CompactionPoints,
    /// Gateways silent for longer than `gateway_stale_days`, which no longer hold compaction back.
    pub stale_gateways: Vec<GatewayRow>,
}

/// How old an unreferenced stored file must be before garbage collection removes it.
pub const FILE_GRACE: std::time::Duration = std::time::Duration::from_secs(3600);

/// What one retention pass removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Removed {
    messages: u64,
    history_entries: u64,
    compacted: Compacted,
}

impl Orchestrator {
    pub(super) async fn run_retention(self) {
        let mut ticks = tokio::time::interval(self.inner.config.retention_every);
        loop {
            tokio::select! {
                _ = self.inner.shutdown.cancelled() => break,
                _ = ticks.tick() => {}
            }
            match self.retain_once().await {
                Ok(removed) if removed == Removed::default() => {}
                Ok(Removed { messages, history_entries, compacted }) => tracing::info!(
                    messages,
                    history_entries,
                    deliveries = compacted.deliveries,
                    responses = compacted.responses,
                    pages_freed = compacted.pages_freed,
                    "retention removed old rows"
                ),
                Err(error) => tracing::error!(%error, "retention failed; trying again at the next pass"),
            }
            match self.collect_unreferenced_files(FILE_GRACE).await {
                Ok(collected) if collected.files > 0 => {
                    tracing::info!(files = collected.files, bytes = collected.bytes, "removed unreferenced files")
                }
                Ok(_) => {}
                Err(error) => tracing::error!(%error, "file garbage collection failed; trying again at the next pass"),
            }
        }
    }

    /// Removes the stored files no message names that are older than `grace`; nothing else.
    pub async fn collect_unreferenced_files(&self, grace: std::time::Duration) -> OrchestratorResult<Collected> {
        let referenced = self.inner.store.referenced_files().await?;
        Ok(self.inner.files.collect_garbage(&referenced, grace).await?)
    }

    /// The last compaction's points and the gateways it passed over.
    pub fn compaction_report(&self) -> CompactionReport {
        self.inner.compaction.lock().expect("compaction lock").clone()
    }

    /// One retention pass.
    async fn retain_once(&self) -> Result<Removed, StoreError> {
        let store = &self.inner.store;
        let messages = store.forget_finished_inbound(self.now() - self.inner.config.dedup_window).await?;
        let mut history_entries = 0;
        if let Some(keep) = self.inner.config.history_keep {
            let rule = PruneRule { keep_last: None, before: Some(self.now() - keep) };
            for session in store.sessions().await? {
                history_entries += store.prune_history(&session.name, rule).await?;
            }
        }
        let report = self.compaction_points().await?;
        let compacted = store.compact_delivery_log(&report.points).await?;
        *self.inner.compaction.lock().expect("compaction lock") = report;
        Ok(Removed { messages, history_entries, compacted })
    }

    /// How far each platform's deliveries may go, from its gateways' cursors.
    async fn compaction_points(&self) -> Result<CompactionReport, StoreError> {
        let now = self.now();
        let stale_before = now - self.inner.config.gateway_stale;
        let (fresh, stale): (Vec<GatewayRow>, Vec<GatewayRow>) =
            self.inner.store.gateways().await?.into_iter().partition(|gateway| gateway.last_seen >= stale_before);
        let mut platforms: BTreeMap<String, u64> = BTreeMap::new();
        for gateway in &fresh {
            let point = platforms.entry(gateway.platform.clone()).or_insert(gateway.acked_seq);
            *point = (*point).min(gateway.acked_seq);
        }
        for gateway in &stale {
            tracing::warn!(
                gateway_id = %gateway.gateway_id,
                platform = %gateway.platform,
                last_seen = %gateway.last_seen,
                "gateway silent for longer than gateway_stale_days: it no longer holds back compaction"
            );
        }
        let others = self.inner.store.last_seq_before(stale_before).await?;
        let points = CompactionPoints { platforms: platforms.into_iter().collect(), others };
        Ok(CompactionReport { at: Some(now), points, stale_gateways: stale })
    }
}
