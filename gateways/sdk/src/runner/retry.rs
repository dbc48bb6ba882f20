//! Retrying one platform call: waits out rate limits (never drops), backs off
//! on transient failures, gives up on a rejected message, stops on shutdown.

use crate::backoff::{Backoff, BackoffConfig};
use crate::platform::PlatformError;
use std::future::Future;
use tokio_util::sync::CancellationToken;

/// How a retried call ended, short of a fatal error.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Outcome<T> {
    /// The platform took it.
    Done(T),
    /// The platform refused this message for good; the reason.
    Rejected(String),
    /// Shutdown came first; the call may not have happened.
    Stopped,
}

/// Calls `call` until it succeeds, is rejected, fails fatally, or `stop` fires
/// while waiting. The call itself is never cancelled halfway.
pub(crate) async fn retry<T, F, Fut>(
    what: &str,
    backoff: BackoffConfig,
    stop: &CancellationToken,
    call: F,
) -> Result<Outcome<T>, PlatformError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, PlatformError>>,
{
    retry_at_most(what, backoff, stop, u32::MAX, call).await
}

/// Like [`retry`], but a call that failed with transient errors `attempts`
/// times is given up as rejected, so the caller can take another way. For
/// calls that have one (an edit falls back to a new message): an edit the
/// platform took but answered in a shape the gateway cannot read must not
/// block every later answer in the chat. Rate limits are always waited out.
pub(crate) async fn retry_at_most<T, F, Fut>(
    what: &str,
    backoff: BackoffConfig,
    stop: &CancellationToken,
    attempts: u32,
    mut call: F,
) -> Result<Outcome<T>, PlatformError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, PlatformError>>,
{
    let mut backoff = Backoff::new(backoff);
    let mut failures = 0;
    loop {
        let wait = match call().await {
            Ok(value) => return Ok(Outcome::Done(value)),
            Err(PlatformError::Rejected(reason)) => return Ok(Outcome::Rejected(reason)),
            Err(error @ PlatformError::Fatal(_)) => return Err(error),
            Err(PlatformError::RateLimited(after)) => {
                tracing::info!(what, retry_in = ?after, "rate limited by the platform; waiting before retrying");
                after
            }
            Err(PlatformError::Transient(reason)) => {
                failures += 1;
                if failures >= attempts {
                    tracing::warn!(what, %reason, failures, "platform call kept failing; giving up on it");
                    return Ok(Outcome::Rejected(format!("gave up after {failures} attempts: {reason}")));
                }
                let delay = backoff.next_delay();
                tracing::warn!(what, %reason, retry_in = ?delay, "platform call failed; retrying");
                delay
            }
        };
        tokio::select! {
            _ = stop.cancelled() => return Ok(Outcome::Stopped),
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn a_bounded_call_gives_up_after_its_attempts_but_waits_out_rate_limits() {
        let calls = AtomicU32::new(0);
        let outcome = retry_at_most("test", BackoffConfig::default(), &CancellationToken::new(), 3, || async {
            match calls.fetch_add(1, Ordering::SeqCst) {
                0 => Err::<(), _>(PlatformError::RateLimited(Duration::from_secs(3))),
                _ => Err(PlatformError::Transient("unparsable answer".into())),
            }
        })
        .await;
        assert_eq!(outcome, Ok(Outcome::Rejected("gave up after 3 attempts: unparsable answer".into())));
        assert_eq!(calls.load(Ordering::SeqCst), 4, "the rate limit did not count as an attempt");
    }

    #[tokio::test(start_paused = true)]
    async fn waits_out_rate_limits_then_succeeds() {
        let calls = AtomicU32::new(0);
        let started = tokio::time::Instant::now();
        let outcome = retry("test", BackoffConfig::default(), &CancellationToken::new(), || async {
            match calls.fetch_add(1, Ordering::SeqCst) {
                0 | 1 => Err(PlatformError::RateLimited(Duration::from_secs(3))),
                _ => Ok(7),
            }
        })
        .await;
        assert_eq!(outcome, Ok(Outcome::Done(7)));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        assert!(started.elapsed() >= Duration::from_secs(6));
    }

    #[tokio::test(start_paused = true)]
    async fn transient_failures_back_off_and_rejections_give_up() {
        let calls = AtomicU32::new(0);
        let outcome = retry("test", BackoffConfig::default(), &CancellationToken::new(), || async {
            match calls.fetch_add(1, Ordering::SeqCst) {
                0..=4 => Err(PlatformError::Transient("503".into())),
                _ => Err::<(), _>(PlatformError::Rejected("chat not found".into())),
            }
        })
        .await;
        assert_eq!(outcome, Ok(Outcome::Rejected("chat not found".into())));
        assert_eq!(calls.load(Ordering::SeqCst), 6);
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_stops_a_wait_and_fatal_ends() {
        let stop = CancellationToken::new();
        stop.cancel();
        let limited = || async { Err::<(), _>(PlatformError::RateLimited(Duration::from_secs(3600))) };
        assert_eq!(retry("test", BackoffConfig::default(), &stop, limited).await, Ok(Outcome::Stopped));
        let fatal = || async { Err::<(), _>(PlatformError::Fatal("bad bot token".into())) };
        let outcome = retry("test", BackoffConfig::default(), &CancellationToken::new(), fatal).await;
        assert_eq!(outcome, Err(PlatformError::Fatal("bad bot token".into())));
    }
}
