//! [`SentMessages`]: which outbound ids a platform already sent, and as
//! which platform message.
//!
//! The runner may deliver one [`crate::Outbound`] twice (a retry after an
//! answer that got lost on the way back). Chat APIs have no idempotency key
//! of their own, so a platform looks the id up here before sending and
//! records it after. The memory is bounded: the oldest ids are forgotten
//! first, long after any retry of them could come.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// How many ids are remembered by default.
const REMEMBERED: usize = 1024;

/// A bounded, thread-safe map from outbound ids to platform message ids.
#[derive(Debug)]
pub struct SentMessages {
    capacity: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    ids: HashMap<String, String>,
    order: VecDeque<String>,
}

impl Default for SentMessages {
    fn default() -> Self {
        Self::with_capacity(REMEMBERED)
    }
}

impl SentMessages {
    /// Remembers the last `capacity` ids.
    pub fn with_capacity(capacity: usize) -> Self {
        Self { capacity: capacity.max(1), inner: Mutex::default() }
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The platform message sent for `outbound_id`, if it was sent.
    pub fn get(&self, outbound_id: &str) -> Option<String> {
        self.inner().ids.get(outbound_id).cloned()
    }

    /// Records that `outbound_id` was sent as `message_id`.
    pub fn record(&self, outbound_id: &str, message_id: &str) {
        let mut inner = self.inner();
        if inner.ids.insert(outbound_id.to_owned(), message_id.to_owned()).is_none() {
            inner.order.push_back(outbound_id.to_owned());
        }
        while inner.order.len() > self.capacity {
            if let Some(oldest) = inner.order.pop_front() {
                inner.ids.remove(&oldest);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_the_newest_ids_only() {
        let sent = SentMessages::with_capacity(2);
        sent.record("a", "1");
        sent.record("b", "2");
        sent.record("a", "1");
        assert_eq!(sent.get("a").as_deref(), Some("1"));
        sent.record("c", "3");
        assert_eq!(sent.get("a"), None, "the oldest is forgotten first");
        assert_eq!((sent.get("b").as_deref(), sent.get("c").as_deref()), (Some("2"), Some("3")));
    }
}
