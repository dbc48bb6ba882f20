//! Matrix failures as the runner's [`PlatformError`]s, and the gateway's own
//! start-up errors.
//!
//! The homeserver's rate limit (`M_LIMIT_EXCEEDED`, HTTP 429) is waited out;
//! a revoked or unknown access token ends the gateway; refusals about one
//! message (forbidden, unknown room, too large) skip that message; anything
//! else (network, 5xx) is retried.

use gorp_gateway::PlatformError;
use matrix_sdk::ruma::api::error::{ErrorKind, LimitExceededErrorData, RetryAfter};
use std::time::{Duration, SystemTime};

/// Why the gateway could not start its Matrix side.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StartError {
    /// The state directory cannot be used.
    #[error("state directory {path}: {why}")]
    State {
        /// The directory or file.
        path: String,
        /// What went wrong.
        why: String,
    },
    /// The saved session belongs to another account than `--matrix-user`.
    #[error("the state directory holds a session of {saved}, not {configured}; use another --matrix-state-dir")]
    OtherAccount {
        /// The account in the state directory.
        saved: String,
        /// The configured account.
        configured: String,
    },
    /// A Matrix call failed.
    #[error("{0}")]
    Matrix(PlatformError),
}

impl From<StartError> for PlatformError {
    fn from(error: StartError) -> Self {
        match error {
            StartError::Matrix(error) => error,
            other => PlatformError::Fatal(other.to_string()),
        }
    }
}

/// Sorts a matrix-sdk error for the runner.
pub(crate) fn classify(error: matrix_sdk::Error) -> PlatformError {
    let text = error.to_string();
    let Some(api) = error.as_client_api_error() else {
        return PlatformError::Transient(text);
    };
    match api.error_kind() {
        Some(ErrorKind::LimitExceeded(LimitExceededErrorData { retry_after, .. })) => {
            PlatformError::RateLimited(retry_delay(retry_after.as_ref()))
        }
        Some(ErrorKind::UnknownToken(_) | ErrorKind::MissingToken | ErrorKind::UserDeactivated) => {
            PlatformError::Fatal(format!("the homeserver refused the bot's login: {text}"))
        }
        _ if api.status_code.is_server_error() => PlatformError::Transient(text),
        _ if api.status_code.is_client_error() => PlatformError::Rejected(text),
        _ => PlatformError::Transient(text),
    }
}

/// How long a rate limit asks to wait (1 s when it does not say).
fn retry_delay(retry_after: Option<&RetryAfter>) -> Duration {
    match retry_after {
        Some(RetryAfter::Delay(delay)) => *delay,
        Some(RetryAfter::DateTime(at)) => at.duration_since(SystemTime::now()).unwrap_or_default(),
        None => Duration::from_secs(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limits_wait_as_told() {
        assert_eq!(retry_delay(Some(&RetryAfter::Delay(Duration::from_millis(300)))), Duration::from_millis(300));
        assert_eq!(retry_delay(None), Duration::from_secs(1));
        let past = SystemTime::now() - Duration::from_secs(5);
        assert_eq!(retry_delay(Some(&RetryAfter::DateTime(past))), Duration::ZERO);
    }
}
