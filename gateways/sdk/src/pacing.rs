//! Pacing outbound calls at the platform's documented rates.
//!
//! A [`Pacer`] keeps one rate-limit state per channel, shared by every call
//! to that channel (previews, their edits, final answers, the gateway's own
//! notices), plus one for the whole bot: token buckets (GCRA) for the
//! platform's [`Rate`]s, and the end of the last `Retry-After` the platform
//! gave for the channel. A call waits until every bucket has room and the
//! `Retry-After` has passed ([`Pacer::acquire`]); a preview edit only takes
//! room that is free now ([`Pacer::try_acquire`]) and is otherwise skipped
//! until later, so previews never delay answers. The platform says which
//! rates apply to which channel ([`crate::Platform::channel_rates`]).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// Channels remembered before idle ones are forgotten.
const REMEMBERED: usize = 1024;

/// A rate: `burst` calls at once, then one per `every`. Over any window of
/// length `w` at most `burst + w / every` calls pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Calls allowed back to back.
    pub burst: u32,
    /// Time per call after the burst.
    pub every: Duration,
}

impl Rate {
    /// `burst` at once, then one per `every`.
    pub const fn new(burst: u32, every: Duration) -> Self {
        Self { burst, every }
    }
}

/// One rate's state: the theoretical arrival time of the next call (GCRA).
#[derive(Debug, Clone)]
struct Bucket {
    rate: Rate,
    next: Instant,
}

impl Bucket {
    fn new(rate: Rate, now: Instant) -> Self {
        Self { rate, next: now }
    }

    /// The earliest time a call may go (`now` if that is in the past).
    fn earliest(&self, now: Instant) -> Instant {
        let slack = self.rate.every * self.rate.burst.saturating_sub(1);
        self.next.checked_sub(slack).unwrap_or(now)
    }

    fn take(&mut self, now: Instant) {
        self.next = self.next.max(now) + self.rate.every;
    }

    fn idle(&self, now: Instant) -> bool {
        self.next <= now
    }
}

/// The rate-limit state of one channel.
#[derive(Debug)]
struct Channel {
    buckets: Vec<Bucket>,
    /// No call before this (the platform's last `Retry-After`).
    blocked_until: Instant,
}

#[derive(Debug)]
struct Inner {
    channels: HashMap<String, Channel>,
    global: Option<Bucket>,
}

/// Per-channel and global pacing of one gateway's platform calls.
#[derive(Debug)]
pub(crate) struct Pacer {
    inner: Mutex<Inner>,
}

impl Pacer {
    /// A pacer with the bot-wide rate `global`, if the platform has one.
    pub(crate) fn new(global: Option<Rate>) -> Self {
        let global = global.map(|rate| Bucket::new(rate, Instant::now()));
        Self { inner: Mutex::new(Inner { channels: HashMap::new(), global }) }
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Takes room for one call to `channel` if there is some now; else the
    /// time when there will be. `rates` gives the channel's rates the first time.
    pub(crate) fn try_acquire(&self, channel: &str, rates: impl FnOnce() -> Vec<Rate>) -> Result<(), Instant> {
        let now = Instant::now();
        let mut inner = self.inner();
        let Inner { channels, global } = &mut *inner;
        if !channels.contains_key(channel) {
            forget_idle(channels, now);
            let buckets = rates().into_iter().map(|rate| Bucket::new(rate, now)).collect();
            channels.insert(channel.to_owned(), Channel { buckets, blocked_until: now });
        }
        let state = channels.get_mut(channel).expect("inserted above");
        let earliest = state
            .buckets
            .iter()
            .chain(global.as_ref())
            .map(|b| b.earliest(now))
            .fold(state.blocked_until, Instant::max);
        if earliest > now {
            return Err(earliest);
        }
        state.buckets.iter_mut().chain(global.as_mut()).for_each(|bucket| bucket.take(now));
        Ok(())
    }

    /// Waits until a call to `channel` may go, and takes room for it.
    pub(crate) async fn acquire(&self, channel: &str, rates: impl Fn() -> Vec<Rate>) {
        while let Err(at) = self.try_acquire(channel, &rates) {
            tokio::time::sleep_until(at).await;
        }
    }

    /// The platform answered a call to `channel` with "retry after `after`":
    /// no call to it goes before then.
    pub(crate) fn retry_after(&self, channel: &str, after: Duration) {
        let until = Instant::now() + after;
        if let Some(state) = self.inner().channels.get_mut(channel) {
            state.blocked_until = state.blocked_until.max(until);
        }
    }
}

/// Drops the state of channels with nothing pending, once there are many.
fn forget_idle(channels: &mut HashMap<String, Channel>, now: Instant) {
    if channels.len() >= REMEMBERED {
        channels.retain(|_, c| c.blocked_until > now || c.buckets.iter().any(|b| !b.idle(now)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    fn slack_like() -> Vec<Rate> {
        vec![Rate::new(3, SECOND)]
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_passes_then_one_call_per_interval() {
        let pacer = Pacer::new(None);
        let start = Instant::now();
        let mut times = Vec::new();
        for _ in 0..8 {
            pacer.acquire("C1", slack_like).await;
            times.push(start.elapsed());
        }
        let secs: Vec<u64> = times.iter().map(|t| t.as_secs()).collect();
        assert_eq!(secs, [0, 0, 0, 1, 2, 3, 4, 5]);
        assert!(pacer.try_acquire("C2", slack_like).is_ok(), "another channel has its own state");
    }

    #[tokio::test(start_paused = true)]
    async fn a_retry_after_holds_every_call_to_the_channel() {
        let pacer = Pacer::new(None);
        pacer.acquire("C1", slack_like).await;
        pacer.retry_after("C1", Duration::from_secs(5));
        let until = pacer.try_acquire("C1", slack_like).unwrap_err();
        assert_eq!(until - Instant::now(), Duration::from_secs(5));
        let start = Instant::now();
        pacer.acquire("C1", slack_like).await;
        assert_eq!(start.elapsed(), Duration::from_secs(5));
        assert!(pacer.try_acquire("C2", slack_like).is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn the_global_rate_spans_channels_and_a_group_rate_adds_to_the_chat_rate() {
        let pacer = Pacer::new(Some(Rate::new(2, SECOND)));
        assert!(pacer.try_acquire("a", Vec::new).is_ok());
        assert!(pacer.try_acquire("b", Vec::new).is_ok());
        assert!(pacer.try_acquire("c", Vec::new).is_err(), "the bot-wide burst is used up");

        let pacer = Pacer::new(None);
        let group = || vec![Rate::new(3, SECOND), Rate::new(5, Duration::from_secs(4))];
        let start = Instant::now();
        for _ in 0..7 {
            pacer.acquire("-100", group).await;
        }
        // 5 in the group burst (the chat rate lets 3 at once, then 1/s), then one per 4 s.
        assert_eq!(start.elapsed(), Duration::from_secs(8));
    }
}
