//! Maps Bot API failures (teloxide's `RequestError`) to the shared [`PlatformError`].
//!
//! The runner branches on the result: a 429 waits `retry_after`, network and
//! server trouble is retried, a refused message is skipped, a bad bot token
//! stops the gateway.

use gorp_gateway::PlatformError;
use teloxide::{ApiError, RequestError};

/// What the gateway does with a failed Bot API call.
pub(crate) fn classify(error: RequestError) -> PlatformError {
    match error {
        RequestError::RetryAfter(wait) => PlatformError::RateLimited(wait.duration()),
        RequestError::Api(ApiError::InvalidToken) => {
            PlatformError::Fatal("telegram rejected the bot token (check --telegram-token)".to_owned())
        }
        // teloxide drops the HTTP status (after waiting 10 s on any 5xx);
        // Telegram's 5xx descriptions are the only unknown errors that are
        // not the request's fault.
        RequestError::Api(ApiError::Unknown(text)) if server_side(&text) => PlatformError::Transient(text),
        RequestError::Api(api) => PlatformError::Rejected(api.to_string()),
        RequestError::MigrateToChatId(chat) => PlatformError::Rejected(format!("the group moved to chat {chat}")),
        other @ (RequestError::Network(_) | RequestError::Io(_) | RequestError::InvalidJson { .. }) => {
            PlatformError::Transient(other.to_string())
        }
    }
}

/// Whether an unknown error description is a server-side failure worth retrying.
fn server_side(description: &str) -> bool {
    ["Internal Server Error", "Bad Gateway", "Service Unavailable", "Gateway Timeout"]
        .iter()
        .any(|prefix| description.starts_with(prefix))
}

/// Whether an edit failed only because the text was already the same.
pub(crate) fn not_modified(error: &RequestError) -> bool {
    matches!(error, RequestError::Api(ApiError::MessageNotModified))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use teloxide::types::Seconds;

    #[test]
    fn a_429_waits_and_a_bad_token_is_fatal() {
        let wait = classify(RequestError::RetryAfter(Seconds::from_seconds(3)));
        assert_eq!(wait, PlatformError::RateLimited(Duration::from_secs(3)));
        assert!(matches!(classify(RequestError::Api(ApiError::InvalidToken)), PlatformError::Fatal(_)));
        assert!(matches!(classify(RequestError::Api(ApiError::ChatNotFound)), PlatformError::Rejected(_)));
        let server = classify(RequestError::Api(ApiError::Unknown("Internal Server Error: restart".to_owned())));
        assert!(matches!(server, PlatformError::Transient(_)));
        let refused = classify(RequestError::Api(ApiError::Unknown("Bad Request: odd".to_owned())));
        assert!(matches!(refused, PlatformError::Rejected(_)));
        assert!(not_modified(&RequestError::Api(ApiError::MessageNotModified)));
    }
}
