//! Maps Web API failures (slack-morphism's `SlackClientError`) to the shared [`PlatformError`].
//!
//! Slack answers most failures with HTTP 200 and `{"ok":false,"error":"<code>"}`;
//! the code decides: a dead or wrong token stops the gateway (naming the flag
//! to fix), Slack's own trouble is retried, anything else refuses this one
//! message. HTTP 429 carries `Retry-After`, which the runner waits out.

use gorp_gateway::PlatformError;
use slack_morphism::errors::SlackClientError;
use std::time::Duration;

/// Which token a call used, so a fatal error names the flag to fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Token {
    /// The bot token (`xoxb-`, `--slack-bot-token`).
    Bot,
    /// The app-level token (`xapp-`, `--slack-app-token`).
    App,
}

impl Token {
    fn flag(self) -> &'static str {
        match self {
            Self::Bot => "--slack-bot-token / GORP_SLACK_BOT_TOKEN",
            Self::App => "--slack-app-token / GORP_SLACK_APP_TOKEN",
        }
    }
}

/// The wait when a 429 comes without `Retry-After`.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);

/// Error codes meaning the token cannot work at all.
const TOKEN_DEAD: &[&str] = &[
    "invalid_auth",
    "not_authed",
    "account_inactive",
    "token_revoked",
    "token_expired",
    "not_allowed_token_type",
    "invalid_token_type",
    "missing_scope",
    "no_permission",
    "team_access_not_granted",
    "ekm_access_denied",
];

/// Error codes meaning Slack itself had trouble; a retry may work.
const SERVER_SIDE: &[&str] = &["internal_error", "fatal_error", "service_unavailable", "request_timeout"];

/// What the gateway does with a failed Web API call made with `token`.
pub(crate) fn classify(error: SlackClientError, token: Token) -> PlatformError {
    match error {
        SlackClientError::RateLimitError(limit) => {
            PlatformError::RateLimited(limit.retry_after.unwrap_or(DEFAULT_RETRY_AFTER))
        }
        SlackClientError::ApiError(api) => api_error(&api.code, token),
        SlackClientError::HttpError(http) if http.status_code.is_server_error() => {
            PlatformError::Transient(format!("slack answered HTTP {}", http.status_code))
        }
        SlackClientError::HttpError(http) if matches!(http.status_code.as_u16(), 401 | 403) => {
            fatal(&format!("HTTP {}", http.status_code), token)
        }
        SlackClientError::HttpError(http) => {
            PlatformError::Rejected(format!("slack answered HTTP {}", http.status_code))
        }
        other => PlatformError::Transient(other.to_string()),
    }
}

/// What an `{"ok":false,"error":code}` answer means.
pub(crate) fn api_error(code: &str, token: Token) -> PlatformError {
    if TOKEN_DEAD.contains(&code) {
        fatal(code, token)
    } else if SERVER_SIDE.contains(&code) {
        PlatformError::Transient(format!("slack error {code}"))
    } else if code == "ratelimited" {
        PlatformError::RateLimited(DEFAULT_RETRY_AFTER)
    } else {
        PlatformError::Rejected(format!("slack error {code}"))
    }
}

fn fatal(code: &str, token: Token) -> PlatformError {
    PlatformError::Fatal(format!("slack rejected the {} token ({code}); check {}", name(token), token.flag()))
}

fn name(token: Token) -> &'static str {
    match token {
        Token::Bot => "bot",
        Token::App => "app-level",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use slack_morphism::errors::{SlackClientApiError, SlackClientHttpError, SlackRateLimitError};

    fn api(code: &str, token: Token) -> PlatformError {
        classify(SlackClientError::ApiError(SlackClientApiError::new(code.to_owned())), token)
    }

    #[test]
    fn dead_tokens_are_fatal_and_name_the_flag() {
        for code in ["invalid_auth", "not_authed", "account_inactive", "token_revoked"] {
            let PlatformError::Fatal(why) = api(code, Token::Bot) else { panic!("{code} is fatal") };
            assert!(why.contains(code) && why.contains("--slack-bot-token"), "{why}");
        }
        let PlatformError::Fatal(why) = api("invalid_auth", Token::App) else { panic!("fatal") };
        assert!(why.contains("--slack-app-token"), "{why}");
    }

    #[test]
    fn refused_messages_are_rejected_and_server_trouble_is_transient() {
        for code in ["channel_not_found", "not_in_channel", "msg_too_long", "message_not_found", "cant_update_message"]
        {
            assert!(matches!(api(code, Token::Bot), PlatformError::Rejected(_)), "{code}");
        }
        assert!(matches!(api("internal_error", Token::Bot), PlatformError::Transient(_)));
        let http = |status: u16| {
            let status = http::StatusCode::from_u16(status).expect("status");
            classify(SlackClientError::HttpError(SlackClientHttpError::new(status)), Token::Bot)
        };
        assert!(matches!(http(503), PlatformError::Transient(_)));
        assert!(matches!(http(404), PlatformError::Rejected(_)));
        assert!(matches!(http(401), PlatformError::Fatal(_)));
    }

    #[test]
    fn a_429_waits_what_slack_asked() {
        let limit = SlackRateLimitError::new().with_retry_after(Duration::from_secs(7));
        let waited = classify(SlackClientError::RateLimitError(limit), Token::Bot);
        assert_eq!(waited, PlatformError::RateLimited(Duration::from_secs(7)));
        let unsaid = classify(SlackClientError::RateLimitError(SlackRateLimitError::new()), Token::Bot);
        assert_eq!(unsaid, PlatformError::RateLimited(DEFAULT_RETRY_AFTER));
    }
}
