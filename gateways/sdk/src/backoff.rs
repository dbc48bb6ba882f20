//! Capped exponential backoff with jitter, for reconnects and transient retries.
//!
//! Each failure doubles the base delay up to the cap; the delay handed out is
//! a random point in the upper half of the base, so many gateways restarting
//! together do not knock on gorpd in step. A success resets it.

use crate::platform::PlatformError;
use rand::Rng;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Backoff settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffConfig {
    /// Delay after the first failure.
    pub initial: Duration,
    /// Longest delay.
    pub max: Duration,
}

impl Default for BackoffConfig {
    /// 0.5 s, doubling up to 30 s.
    fn default() -> Self {
        Self { initial: Duration::from_millis(500), max: Duration::from_secs(30) }
    }
}

/// The delay state of one retry loop.
#[derive(Debug, Clone)]
pub struct Backoff {
    config: BackoffConfig,
    failures: u32,
}

impl Backoff {
    /// A fresh backoff.
    pub fn new(config: BackoffConfig) -> Self {
        Self { config, failures: 0 }
    }

    /// Forgets earlier failures.
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// Failures since the last reset.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// The delay before the next attempt, counting one more failure.
    pub fn next_delay(&mut self) -> Duration {
        let base = self.base();
        self.failures = self.failures.saturating_add(1);
        let half = base / 2;
        let jitter = rand::rng().random_range(0..=half.as_millis().max(1) as u64);
        (half + Duration::from_millis(jitter)).min(self.config.max)
    }

    /// Sleeps as long as a failed platform call asks for (the platform's
    /// retry-after on a rate limit, else the next backoff delay), for a
    /// platform's own retry loops. False when `shutdown` fires first.
    pub async fn wait_after(&mut self, error: &PlatformError, shutdown: &CancellationToken) -> bool {
        let wait = match error {
            PlatformError::RateLimited(wait) => *wait,
            _ => self.next_delay(),
        };
        tokio::select! {
            _ = shutdown.cancelled() => false,
            _ = tokio::time::sleep(wait) => true,
        }
    }

    /// The un-jittered delay for the current failure count.
    fn base(&self) -> Duration {
        let factor = 2u32.saturating_pow(self.failures.min(20));
        self.config.initial.saturating_mul(factor).min(self.config.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_doubling_within_jitter_and_stays_under_the_cap() {
        let config = BackoffConfig { initial: Duration::from_millis(100), max: Duration::from_secs(2) };
        let mut backoff = Backoff::new(config);
        for n in 0..40u32 {
            let base = Duration::from_millis(100).saturating_mul(2u32.saturating_pow(n.min(20))).min(config.max);
            let delay = backoff.next_delay();
            assert!(delay >= base / 2 && delay <= base, "failure {n}: {delay:?} not in [{:?}, {base:?}]", base / 2);
        }
        assert_eq!(backoff.failures(), 40);
    }

    #[test]
    fn reset_starts_over() {
        let mut backoff = Backoff::new(BackoffConfig::default());
        for _ in 0..10 {
            backoff.next_delay();
        }
        backoff.reset();
        assert!(backoff.next_delay() <= Duration::from_millis(500));
    }

    #[tokio::test(start_paused = true)]
    async fn waits_what_the_platform_asks_or_the_backoff_and_stops_on_shutdown() {
        let config = BackoffConfig { initial: Duration::from_secs(1), max: Duration::from_secs(1) };
        let mut backoff = Backoff::new(config);
        let running = CancellationToken::new();
        let started = tokio::time::Instant::now();
        assert!(backoff.wait_after(&PlatformError::RateLimited(Duration::from_secs(7)), &running).await);
        assert_eq!(started.elapsed(), Duration::from_secs(7), "a rate limit waits exactly what it asked");
        assert_eq!(backoff.failures(), 0, "a rate limit is not a failure");
        assert!(backoff.wait_after(&PlatformError::Transient("503".into()), &running).await);
        assert_eq!(backoff.failures(), 1);
        let stopped = CancellationToken::new();
        stopped.cancel();
        assert!(!backoff.wait_after(&PlatformError::Transient("503".into()), &stopped).await);
    }

    #[test]
    fn jitter_spreads_delays() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..50 {
            let mut backoff =
                Backoff::new(BackoffConfig { initial: Duration::from_secs(8), max: Duration::from_secs(8) });
            seen.insert(backoff.next_delay());
        }
        assert!(seen.len() > 5, "{seen:?}");
    }
}
