//! The bus: the response log's writer, live fan-out of chunks and final
//! responses, and the per-platform subscription that replays then goes live.
//!
//! Invariant: `append` sends a response live from the store writer's
//! after-commit hook, which runs in commit order, so live final responses
//! leave in exactly `seq` order without a lock around the commit (many
//! sessions' answers share one group commit). A subscriber
//! registers for live events *before* replaying, and skips live responses at
//! or below what it already sent, so the hand-over has no gap and no
//! duplicate. A subscriber that lags behind the live channel goes back to
//! replay from the log instead of skipping anything.
//!
//! On Postgres, where several replicas append to one log, the live feed is
//! read back from the log instead ([`follower`]), so it holds every
//! replica's responses in `seq` order.

mod follower;
mod gate;
mod relay;
mod subscription;

pub use crate::domain::{
    Activity, ChannelRef, Chunk, Inbound, MessageRef, NewResponse, PermissionNotice, PermissionOption, PermissionState,
    Response, ResponseKind,
};
pub use subscription::{Delivered, Subscription, SubscriptionError};

use crate::store::{Commit, Store, StoreResult};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::broadcast;

/// Cheap running totals for `/metrics`, counted since gorpd started.
#[derive(Debug, Default)]
pub struct Counters {
    messages_in: AtomicU64,
    responses_out: AtomicU64,
    errors: AtomicU64,
}

impl Counters {
    /// Accepted inbound messages (published, told or broadcast).
    pub fn messages_in(&self) -> u64 {
        self.messages_in.load(Ordering::Relaxed)
    }

    /// Committed final responses (complete, error, notice).
    pub fn responses_out(&self) -> u64 {
        self.responses_out.load(Ordering::Relaxed)
    }

    /// Committed responses of kind error.
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }
}

/// Live events sent to subscribers.
#[derive(Debug, Clone)]
pub enum LiveEvent {
    /// A chunk of an answer in progress (best effort).
    Chunk(Arc<Chunk>),
    /// A committed final response.
    Response(Arc<Response>),
}

/// Cloneable handle to the bus.
#[derive(Clone, Debug)]
pub struct Bus {
    store: Store,
    live: broadcast::Sender<LiveEvent>,
    activity: broadcast::Sender<Activity>,
    counters: Arc<Counters>,
    /// Wakes the log follower (Postgres); `None`: commits are sent live directly.
    follower: Option<Arc<tokio::sync::Notify>>,
    /// Passes chunks on to the other replicas (Postgres).
    relay: Option<tokio::sync::mpsc::Sender<relay::Relayed>>,
    /// Orders chunks after the finals the follower sends (Postgres).
    gate: Option<Arc<gate::ChunkGate>>,
    /// The last `seq` this gorpd committed (what a chunk made now comes after).
    last_committed: Arc<AtomicU64>,
    /// Whether another replica is alive (the replica driver keeps it current); chunks are passed on only then.
    peers: Arc<std::sync::atomic::AtomicBool>,
}

impl Bus {
    /// A bus whose live channel holds `capacity` events (small values exercise lag handling).
    pub fn with_capacity(store: Store, capacity: usize) -> Self {
        let (live, _) = broadcast::channel(capacity);
        let (activity, _) = broadcast::channel(capacity);
        Self {
            store,
            live,
            activity,
            counters: Arc::default(),
            follower: None,
            relay: None,
            gate: None,
            last_committed: Arc::default(),
            peers: Arc::default(),
        }
    }

    /// Like [`Bus::with_capacity`], with the live feed read back from the
    /// response log by a task that runs until `shutdown` (see [`follower`]).
    pub fn following_the_log(
        store: Store,
        capacity: usize,
        shutdown: tokio_util::sync::CancellationToken,
        tasks: &tokio_util::task::TaskTracker,
    ) -> Self {
        let wake = Arc::new(tokio::sync::Notify::new());
        let relay = relay::spawn(store.clone(), shutdown.clone(), tasks);
        let gate = Arc::new(gate::ChunkGate::default());
        let bus = Self {
            follower: Some(wake.clone()),
            relay: Some(relay),
            gate: Some(gate.clone()),
            ..Self::with_capacity(store, capacity)
        };
        let (store, live, activity) = (bus.store.clone(), bus.live.clone(), bus.activity.clone());
        tasks.spawn(follower::follow(store, live, activity, gate, wake, shutdown));
        bus
    }

    /// Whether other replicas are alive, so chunks are passed on to them.
    pub fn set_peers(&self, alive: bool) {
        self.peers.store(alive, Ordering::Relaxed);
    }

    /// A chunk another replica passed on (see [`relay`]).
    pub fn chunk_from_replica(&self, payload: &str) {
        match (relay::parse(payload), &self.gate) {
            (Some(relayed), Some(gate)) => gate.offer(&self.live, relayed.after, Arc::new(relayed.chunk)),
            _ => tracing::debug!("a chunk from another replica could not be read"),
        }
    }

    /// Another replica committed responses: the follower reads the log again.
    pub fn log_changed(&self) {
        if let Some(wake) = &self.follower {
            wake.notify_one();
        }
    }

    /// Commits a final response (with `commit`'s extra writes) and sends it
    /// live; `None` when a guarded commit found its message no longer running.
    pub async fn append(&self, new: NewResponse, commit: Commit) -> StoreResult<Option<Arc<Response>>> {
        let (live, activity, counters) = (self.live.clone(), self.activity.clone(), self.counters.clone());
        let (follower, last_committed) = (self.follower.clone(), self.last_committed.clone());
        let response = self
            .store
            .append_response(new, commit, move |response| {
                let response = Arc::new(response);
                counters.responses_out.fetch_add(1, Ordering::Relaxed);
                if response.kind == ResponseKind::Error {
                    counters.errors.fetch_add(1, Ordering::Relaxed);
                }
                match follower {
                    // It reads this commit back from the log, in order with other replicas' commits.
                    Some(wake) => {
                        last_committed.fetch_max(response.seq, Ordering::SeqCst);
                        wake.notify_one();
                    }
                    None => {
                        // No receivers is fine: subscribers replay from the log.
                        let _ = live.send(LiveEvent::Response(response.clone()));
                        let _ = activity.send(Activity::Response(response.clone()));
                    }
                }
                response
            })
            .await?;
        match &response {
            Some(response) => {
                tracing::debug!(seq = response.seq, response_id = %response.response_id, "response committed")
            }
            None => tracing::debug!("response not committed: its message was no longer running"),
        }
        Ok(response)
    }

    /// Sends a chunk to live subscribers (and other replicas'); nothing is stored.
    pub fn send_chunk(&self, chunk: Chunk) {
        let Some(gate) = &self.gate else {
            let _ = self.live.send(LiveEvent::Chunk(Arc::new(chunk)));
            return;
        };
        let after = self.last_committed.load(Ordering::SeqCst);
        if let Some(relay) = self.relay.as_ref().filter(|_| self.peers.load(Ordering::Relaxed)) {
            // Best effort: when the relay is behind, other replicas miss this chunk, never the answer.
            let _ = relay.try_send(relay::Relayed { after, chunk: chunk.clone() });
        }
        gate.offer(&self.live, after, Arc::new(chunk));
    }

    /// Records a piece of activity for watchers.
    pub fn report(&self, activity: Activity) {
        if matches!(activity, Activity::Message(_)) {
            self.counters.messages_in.fetch_add(1, Ordering::Relaxed);
        }
        let _ = self.activity.send(activity);
    }

    /// Running totals since start.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// A live feed of activity (best effort; a lagging watcher misses events).
    pub fn watch(&self) -> broadcast::Receiver<Activity> {
        self.activity.subscribe()
    }

    /// Deliveries for `platform` after `cursor`: replay, then live.
    pub fn subscribe(&self, platform: &str, cursor: u64) -> Subscription {
        Subscription::new(self.store.clone(), self.live.clone(), platform.to_owned(), cursor)
    }
}
