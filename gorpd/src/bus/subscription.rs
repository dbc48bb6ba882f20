//! One platform's delivery stream: replay from the response log after a
//! cursor, then live events, falling back to replay whenever live lags.

use super::{Chunk, LiveEvent, Response};
use crate::store::{Store, StoreError};
use std::collections::VecDeque;
use std::sync::Arc;
use tokio::sync::broadcast::{self, error::RecvError};

/// Responses fetched from the log per replay query.
const REPLAY_BATCH: u32 = 256;

/// Why a subscription ended.
#[derive(Debug, thiserror::Error)]
pub enum SubscriptionError {
    /// Reading the log failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The bus is gone (gorpd is stopping).
    #[error("the bus is closed")]
    Closed,
}

/// What a subscription yields.
#[derive(Debug, Clone, PartialEq)]
pub enum Delivered {
    /// A final response (replayed or live), targets narrowed to the platform.
    Response(Arc<Response>),
    /// A live chunk, targets narrowed to the platform.
    Chunk(Arc<Chunk>),
    /// The replay is done and the stream is live: everything committed
    /// before this point has been yielded. Yielded again after a lag replay.
    CaughtUp,
}

/// Deliveries for one platform, each final response exactly once in `seq` order.
#[derive(Debug)]
pub struct Subscription {
    store: Store,
    live: broadcast::Sender<LiveEvent>,
    receiver: Option<broadcast::Receiver<LiveEvent>>,
    platform: String,
    /// Highest seq handed out (or the starting cursor).
    sent: u64,
    replay: VecDeque<Response>,
    replaying: bool,
}

impl Subscription {
    pub(super) fn new(store: Store, live: broadcast::Sender<LiveEvent>, platform: String, cursor: u64) -> Self {
        Self { store, live, receiver: None, platform, sent: cursor, replay: VecDeque::new(), replaying: true }
    }

    /// Highest seq handed out so far.
    pub fn position(&self) -> u64 {
        self.sent
    }

    /// The next delivery, chunks and final responses filtered to this platform.
    /// Cancel-safe: dropping the future loses nothing that was not returned.
    pub async fn next(&mut self) -> Result<Delivered, SubscriptionError> {
        loop {
            if self.replaying {
                return Ok(match self.next_replayed().await? {
                    Some(response) => Delivered::Response(Arc::new(response)),
                    None => Delivered::CaughtUp,
                });
            }
            if let Some(event) = self.next_live().await? {
                return Ok(event);
            }
        }
    }

    /// One replayed response, or `None` after switching to live.
    async fn next_replayed(&mut self) -> Result<Option<Response>, SubscriptionError> {
        if self.receiver.is_none() {
            // Register before reading the log, so nothing committed after the read is missed.
            self.receiver = Some(self.live.subscribe());
        }
        if self.replay.is_empty() {
            self.replay = self.store.responses_after(&self.platform, self.sent, REPLAY_BATCH).await?.into();
            if self.replay.is_empty() {
                self.replaying = false;
                return Ok(None);
            }
        }
        let response = self.replay.pop_front().expect("replay batch is not empty");
        self.sent = response.seq;
        Ok(Some(response))
    }

    /// One live event for this platform, or `None` to try again (skipped or lagged).
    async fn next_live(&mut self) -> Result<Option<Delivered>, SubscriptionError> {
        let receiver = self.receiver.as_mut().expect("subscribed before replay");
        match receiver.recv().await {
            Ok(LiveEvent::Response(response)) => {
                if response.seq <= self.sent || !response.targets_platform(&self.platform) {
                    return Ok(None);
                }
                self.sent = response.seq;
                Ok(Some(Delivered::Response(Arc::new(response.for_platform(&self.platform)))))
            }
            Ok(LiveEvent::Chunk(chunk)) => {
                Ok(chunk.for_platform(&self.platform).map(|c| Delivered::Chunk(Arc::new(c))))
            }
            Err(RecvError::Lagged(missed)) => {
                tracing::warn!(platform = %self.platform, missed, "subscriber lagged; replaying from the response log");
                self.receiver = None;
                self.replaying = true;
                Ok(None)
            }
            Err(RecvError::Closed) => Err(SubscriptionError::Closed),
        }
    }
}
