//! Chunks in order with final responses, when finals come from the log
//! (Postgres, see [`super::follower`]).
//!
//! A chunk is produced after every response its replica had committed
//! before it, and a gateway must see them in that order: a chunk of the
//! next answer shown before the previous answer's final would open a new
//! message above it, and a chunk of an answer whose final went out already
//! would reopen it. But finals reach a replica's subscribers through the
//! follower, which reads the log after the commit, while chunks arrive at
//! once (locally, or from another replica through the relay). So each chunk
//! carries the last `seq` its replica had committed, and the gate holds it
//! until the follower has sent that far; a chunk of an answer whose final
//! was sent is dropped. Finals pass through the gate too, so the order
//! subscribers see is the order the gate decided.

use super::{Chunk, LiveEvent, Response};
use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

/// Most chunks held at once (the oldest go first: chunks are best effort).
const MAX_HELD: usize = 4096;
/// How many sent finals are remembered to drop late chunks of them.
const FINALS_REMEMBERED: usize = 4096;

/// The gate between chunks and the follower's finals.
#[derive(Debug, Default)]
pub(super) struct ChunkGate {
    state: Mutex<GateState>,
}

#[derive(Debug, Default)]
struct GateState {
    /// The last `seq` the follower sent.
    sent: u64,
    /// Response ids of finals sent, oldest first (and as a set).
    finals: VecDeque<String>,
    final_ids: HashSet<String>,
    /// Chunks waiting for the follower: (the `seq` it must have sent, chunk).
    held: VecDeque<(u64, Arc<Chunk>)>,
}

impl ChunkGate {
    /// Where the follower starts: everything up to `seq` counts as sent.
    pub(super) fn start_at(&self, live: &broadcast::Sender<LiveEvent>, seq: u64) {
        let mut state = self.state.lock().expect("gate lock");
        state.sent = state.sent.max(seq);
        state.release(live);
    }

    /// Sends `chunk` once the follower has sent every final up to `after`; drops it if its own final went out.
    pub(super) fn offer(&self, live: &broadcast::Sender<LiveEvent>, after: u64, chunk: Arc<Chunk>) {
        let mut state = self.state.lock().expect("gate lock");
        if state.final_ids.contains(&chunk.response_id) {
            return;
        }
        if after <= state.sent {
            let _ = live.send(LiveEvent::Chunk(chunk));
            return;
        }
        if state.held.len() >= MAX_HELD {
            state.held.pop_front();
        }
        state.held.push_back((after, chunk));
    }

    /// Sends a final (the follower, in `seq` order), then the chunks now due.
    pub(super) fn send_final(&self, live: &broadcast::Sender<LiveEvent>, response: Arc<Response>) {
        let mut state = self.state.lock().expect("gate lock");
        state.sent = state.sent.max(response.seq);
        if state.final_ids.insert(response.response_id.clone()) {
            state.finals.push_back(response.response_id.clone());
            if state.finals.len() > FINALS_REMEMBERED
                && let Some(oldest) = state.finals.pop_front()
            {
                state.final_ids.remove(&oldest);
            }
        }
        let _ = live.send(LiveEvent::Response(response));
        state.release(live);
    }
}

impl GateState {
    /// Sends held chunks that are due, in the order they came; drops those whose final went out.
    fn release(&mut self, live: &broadcast::Sender<LiveEvent>) {
        let mut waiting = VecDeque::with_capacity(self.held.len());
        for (after, chunk) in self.held.drain(..) {
            if self.final_ids.contains(&chunk.response_id) {
                continue;
            }
            if after <= self.sent {
                let _ = live.send(LiveEvent::Chunk(chunk));
            } else {
                waiting.push_back((after, chunk));
            }
        }
        self.held = waiting;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ChannelRef, ResponseKind};

    fn chunk(response_id: &str, text: &str) -> Arc<Chunk> {
        Arc::new(Chunk {
            response_id: response_id.into(),
            session: "s".into(),
            text: text.into(),
            progress: false,
            targets: vec![ChannelRef::new("tg", "1")],
            reply_to: None,
        })
    }

    fn answer(seq: u64, response_id: &str) -> Arc<Response> {
        Arc::new(Response {
            seq,
            response_id: response_id.into(),
            session: Some("s".into()),
            kind: ResponseKind::Complete,
            text: "done".into(),
            targets: vec![ChannelRef::new("tg", "1")],
            reply_to: None,
            permission: None,
            attachments: Vec::new(),
            created_at: chrono::Utc::now(),
            trace_context: None,
        })
    }

    fn seen(receiver: &mut broadcast::Receiver<LiveEvent>) -> Vec<String> {
        let mut seen = Vec::new();
        while let Ok(event) = receiver.try_recv() {
            seen.push(match event {
                LiveEvent::Chunk(chunk) => format!("chunk {} {}", chunk.response_id, chunk.text),
                LiveEvent::Response(response) => format!("final {} #{}", response.response_id, response.seq),
            });
        }
        seen
    }

    #[test]
    fn a_chunk_waits_for_the_finals_before_it_and_a_late_one_is_dropped() {
        let (live, mut receiver) = broadcast::channel(64);
        let gate = ChunkGate::default();
        gate.start_at(&live, 10);
        gate.offer(&live, 10, chunk("r1", "a"));
        // r2 began after r1 (seq 11) was committed; the follower has not sent 11 yet.
        gate.offer(&live, 11, chunk("r2", "b"));
        assert_eq!(seen(&mut receiver), ["chunk r1 a"]);
        gate.send_final(&live, answer(11, "r1"));
        // r1's final went out: a late chunk of it is dropped.
        gate.offer(&live, 10, chunk("r1", "late"));
        gate.send_final(&live, answer(12, "r2"));
        gate.offer(&live, 11, chunk("r2", "late"));
        assert_eq!(seen(&mut receiver), ["final r1 #11", "chunk r2 b", "final r2 #12"]);
    }

    #[test]
    fn held_chunks_are_bounded() {
        let (live, mut receiver) = broadcast::channel(16);
        let gate = ChunkGate::default();
        for i in 0..MAX_HELD + 3 {
            gate.offer(&live, 5, chunk(&format!("r{i}"), "x"));
        }
        gate.start_at(&live, 5);
        // The oldest three were dropped; the rest came (the receiver lags: the channel keeps the newest).
        assert!(matches!(receiver.try_recv(), Err(broadcast::error::TryRecvError::Lagged(_))));
        assert_eq!(gate.state.lock().unwrap().held.len(), 0);
    }
}
