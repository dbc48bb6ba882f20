//! The live feed read back from the response log, for replicas on Postgres.
//!
//! With several gorpd on one database, a replica's subscribers must see the
//! responses every replica commits, in `seq` order, none skipped: a response
//! sent live out of order would move a subscriber's position past one it
//! never saw. So on Postgres no commit is sent live directly: each local
//! commit, each notification from another replica (`gorp_responses`) and a
//! periodic poll (the backstop for a notification that never came) wake
//! the follower, which reads the log after the last `seq` it sent and sends
//! what it finds, in order. The replicas' group commits take turns on one
//! lock (see `store::sql::Engine::begin`), so `seq`s become visible in
//! order and a read never sees a later one without the earlier ones.

use super::LiveEvent;
use super::gate::ChunkGate;
use crate::domain::Activity;
use crate::store::Store;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, broadcast};
use tokio_util::sync::CancellationToken;

/// Responses read from the log per query.
const BATCH: u32 = 256;
/// How often the log is read without being woken.
const POLL: Duration = Duration::from_secs(1);

/// Sends what the log holds after `sent` live, each time it is woken, until `shutdown`.
pub(super) async fn follow(
    store: Store,
    live: broadcast::Sender<LiveEvent>,
    activity: broadcast::Sender<Activity>,
    gate: Arc<ChunkGate>,
    wake: Arc<Notify>,
    shutdown: CancellationToken,
) {
    let mut sent = match store.newest_committed_seq().await {
        Ok(seq) => seq,
        Err(error) => {
            tracing::error!(%error, "cannot read the response log; live delivery waits for the poll");
            0
        }
    };
    gate.start_at(&live, sent);
    let mut poll = tokio::time::interval(POLL);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            _ = wake.notified() => {}
            _ = poll.tick() => {}
        }
        sent = send_new(&store, &live, &activity, &gate, sent).await;
    }
}

/// Sends every response after `sent` in `seq` order; returns the last one sent.
async fn send_new(
    store: &Store,
    live: &broadcast::Sender<LiveEvent>,
    activity: &broadcast::Sender<Activity>,
    gate: &ChunkGate,
    mut sent: u64,
) -> u64 {
    loop {
        let batch = match store.all_responses_after(sent, BATCH).await {
            Ok(batch) => batch,
            Err(error) => {
                tracing::warn!(%error, after = sent, "reading the response log failed; trying again at the next wake-up");
                return sent;
            }
        };
        let full = batch.len() == BATCH as usize;
        for response in batch {
            sent = response.seq;
            let response = Arc::new(response);
            // No receivers is fine: subscribers replay from the log.
            gate.send_final(live, response.clone());
            let _ = activity.send(Activity::Response(response));
        }
        if !full {
            return sent;
        }
    }
}
