//! Retention, at start and then hourly, in small batches through the writer:
//! accepted messages that are finished (done, dropped, interrupted) and older
//! than the de-duplication window (`dedup_window_days`, default 7) are
//! forgotten, with their webhook-call records; after that a resend of the
//! same platform message id is accepted as new. With `history_keep_days`
//! set, older history entries go too (see `Store::prune_history`).

use super::Orchestrator;
use crate::store::{PruneRule, StoreError};
use std::time::Duration;

/// How often retention runs.
const EVERY: Duration = Duration::from_secs(3600);

impl Orchestrator {
    pub(super) async fn run_retention(self) {
        let mut ticks = tokio::time::interval(EVERY);
        loop {
            tokio::select! {
                _ = self.inner.shutdown.cancelled() => break,
                _ = ticks.tick() => {}
            }
            match self.retain_once().await {
                Ok((0, 0)) => {}
                Ok((messages, entries)) => {
                    tracing::info!(messages, history_entries = entries, "retention removed old rows")
                }
                Err(error) => tracing::error!(%error, "retention failed; trying again in an hour"),
            }
        }
    }

    /// One retention pass: (finished messages forgotten, history entries removed).
    async fn retain_once(&self) -> Result<(u64, u64), StoreError> {
        let store = &self.inner.store;
        let forgotten = store.forget_finished_inbound(self.now() - self.inner.config.dedup_window).await?;
        let Some(keep) = self.inner.config.history_keep else { return Ok((forgotten, 0)) };
        let rule = PruneRule { keep_last: None, before: Some(self.now() - keep) };
        let mut removed = 0;
        for session in store.sessions().await? {
            removed += store.prune_history(&session.name, rule).await?;
        }
        Ok((forgotten, removed))
    }
}
