//! History retention: with `history_keep_days` set, a task removes history
//! entries older than that from every session, at start and then hourly,
//! in small batches through the writer (see `Store::prune_history`).

use super::Orchestrator;
use crate::store::PruneRule;
use std::time::Duration;

/// How often retention runs.
const EVERY: Duration = Duration::from_secs(3600);

impl Orchestrator {
    pub(super) async fn run_retention(self, keep: chrono::Duration) {
        let mut ticks = tokio::time::interval(EVERY);
        loop {
            tokio::select! {
                _ = self.inner.shutdown.cancelled() => break,
                _ = ticks.tick() => {}
            }
            let rule = PruneRule { keep_last: None, before: Some(self.now() - keep) };
            match self.prune_every_session(rule).await {
                Ok(0) => {}
                Ok(removed) => tracing::info!(removed, "history retention removed old entries"),
                Err(error) => tracing::error!(%error, "history retention failed; trying again in an hour"),
            }
        }
    }

    async fn prune_every_session(&self, rule: PruneRule) -> Result<u64, crate::store::StoreError> {
        let mut removed = 0;
        for session in self.inner.store.sessions().await? {
            removed += self.inner.store.prune_history(&session.name, rule).await?;
        }
        Ok(removed)
    }
}
