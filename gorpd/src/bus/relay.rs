//! Chunks across replicas (Postgres): an answer in progress on the replica
//! that owns its session is passed on to the others as `NOTIFY`s on
//! `gorp_chunks`, so a gateway connected to any replica sees it stream.
//!
//! Like chunks on one gorpd, this is best effort: a chunk is dropped when
//! the relay falls behind or when it is larger than a notification can
//! carry. The final response never depends on it (it comes from the log).
//! So the relay costs as little as it can: nothing while no other replica
//! is alive, and otherwise one round trip for whatever is waiting, whose
//! commit does not wait for the disk.

use crate::domain::Chunk;
use crate::store::{Announcement, MAX_CHUNK_PAYLOAD, Store};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Chunks waiting to be passed on before new ones are dropped.
const QUEUE: usize = 1024;
/// Most chunks passed on in one round trip.
const BATCH: usize = 64;

/// A chunk as it travels: with the last `seq` its replica had committed
/// when it was made, which the receiving replica's gate waits for (see `super::gate`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct Relayed {
    /// The last `seq` committed on the sending replica before the chunk.
    pub(super) after: u64,
    /// The chunk.
    pub(super) chunk: Chunk,
}

/// Starts the task that passes chunks on; returns where to send them.
pub(super) fn spawn(store: Store, shutdown: CancellationToken, tasks: &TaskTracker) -> mpsc::Sender<Relayed> {
    let (sender, mut chunks) = mpsc::channel::<Relayed>(QUEUE);
    tasks.spawn(async move {
        let mut waiting = Vec::with_capacity(BATCH);
        loop {
            let received = tokio::select! {
                _ = shutdown.cancelled() => return,
                received = chunks.recv_many(&mut waiting, BATCH) => received,
            };
            if received == 0 {
                return;
            }
            let batch: Vec<Announcement> = waiting.drain(..).filter_map(|chunk| announcement(&chunk)).collect();
            if !batch.is_empty()
                && let Err(error) = store.notify_unsynced(&batch).await
            {
                tracing::debug!(%error, chunks = batch.len(), "could not pass chunks to other replicas");
            }
        }
    });
    sender
}

/// The announcement of `chunk`, unless it is too large for a notification.
fn announcement(chunk: &Relayed) -> Option<Announcement> {
    let payload = serde_json::to_string(chunk).expect("chunks serialise");
    if payload.len() > MAX_CHUNK_PAYLOAD {
        tracing::debug!(bytes = payload.len(), "chunk too large to pass to other replicas");
        return None;
    }
    Some(Announcement::Chunk(payload))
}

/// A chunk from its payload.
pub(super) fn parse(payload: &str) -> Option<Relayed> {
    serde_json::from_str(payload).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ChannelRef, MessageRef};

    #[test]
    fn a_chunk_survives_the_trip() {
        let chunk = Chunk {
            response_id: "r".into(),
            session: "s".into(),
            text: "hé \"quoted\" 'single'".into(),
            progress: true,
            targets: vec![ChannelRef::new("tg", "1 2")],
            reply_to: Some(MessageRef { channel: ChannelRef::new("sl", "c"), message_id: "m".into() }),
        };
        let relayed = Relayed { after: 7, chunk };
        assert_eq!(parse(&serde_json::to_string(&relayed).unwrap()), Some(relayed));
        assert_eq!(parse("not json"), None);
    }
}
