//! Chunks across replicas (Postgres): an answer in progress on the replica
//! that owns its session is passed on to the others as `NOTIFY`s on
//! `gorp_chunks`, so a gateway connected to any replica sees it stream.
//!
//! Like chunks on one gorpd, this is best effort: a chunk is dropped when
//! the relay falls behind or when it is larger than a notification can
//! carry. The final response never depends on it (it comes from the log).

use crate::domain::Chunk;
use crate::store::{Announcement, MAX_CHUNK_PAYLOAD, Store};
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Chunks waiting to be passed on before new ones are dropped.
const QUEUE: usize = 1024;

/// Starts the task that passes chunks on; returns where to send them.
pub(super) fn spawn(store: Store, shutdown: CancellationToken, tasks: &TaskTracker) -> mpsc::Sender<Arc<Chunk>> {
    let (sender, mut chunks) = mpsc::channel::<Arc<Chunk>>(QUEUE);
    tasks.spawn(async move {
        loop {
            let chunk = tokio::select! {
                _ = shutdown.cancelled() => return,
                chunk = chunks.recv() => match chunk { Some(chunk) => chunk, None => return },
            };
            let payload = serde_json::to_string(&*chunk).expect("chunks serialise");
            if payload.len() > MAX_CHUNK_PAYLOAD {
                tracing::debug!(bytes = payload.len(), "chunk too large to pass to other replicas");
                continue;
            }
            if let Err(error) = store.notify(&Announcement::Chunk(payload)).await {
                tracing::debug!(%error, "could not pass a chunk to other replicas");
            }
        }
    });
    sender
}

/// A chunk from its payload.
pub(super) fn parse(payload: &str) -> Option<Chunk> {
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
        assert_eq!(parse(&serde_json::to_string(&chunk).unwrap()), Some(chunk));
        assert_eq!(parse("not json"), None);
    }
}
