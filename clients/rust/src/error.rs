//! The one error type of the client: what went wrong before, while or after
//! talking to gorpd, keeping gorpd's gRPC status when there is one.

use tonic::{Code, Status};

/// Everything a gorp-client call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The settings cannot work: a URL that is not `http://` or `https://`,
    /// an unreadable CA file, a token with characters that cannot be sent.
    #[error("{0}")]
    Config(String),
    /// No token was given and none could be found.
    #[error("{0}")]
    NoToken(String),
    /// gorpd could not be reached at all.
    #[error("cannot reach gorpd at {url}: {cause}")]
    Unreachable {
        /// The URL tried.
        url: String,
        /// The transport's reason.
        cause: String,
    },
    /// gorpd refused one published message; nothing was stored for it and the
    /// publisher goes on with the next one. Do not resend it unchanged.
    #[error("gorpd refused message {message_id:?}: {reason}")]
    Rejected {
        /// The refused message's id.
        message_id: String,
        /// gorpd's reason as a gRPC code (`InvalidArgument`, `PermissionDenied`, ...).
        code: Code,
        /// A readable reason.
        reason: String,
    },
    /// gorpd answered a call with an error status.
    #[error("gorpd: {}", .0.message())]
    Status(Box<Status>),
    /// The publisher, subscription or bind feed has stopped (closed, or ended
    /// by an earlier error that retrying cannot fix).
    #[error("{0} is closed")]
    Closed(&'static str),
}

impl Error {
    /// The gRPC code, for gorpd's answers and rejected messages.
    pub fn code(&self) -> Option<Code> {
        match self {
            Self::Status(status) => Some(status.code()),
            Self::Rejected { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// gorpd's status, when the error is one.
    pub fn status(&self) -> Option<&Status> {
        match self {
            Self::Status(status) => Some(status),
            _ => None,
        }
    }
}

impl From<Status> for Error {
    fn from(status: Status) -> Self {
        Self::Status(Box::new(status))
    }
}

/// Whether reconnecting cannot fix a stream that ended with `status`: a bad
/// token, a forbidden platform, a malformed hello, a cursor past the end of
/// the log, or a server that is not gorpd.
pub(crate) fn is_fatal(status: &Status) -> bool {
    matches!(
        status.code(),
        Code::Unauthenticated | Code::PermissionDenied | Code::InvalidArgument | Code::OutOfRange | Code::Unimplemented
    )
}

/// A readable reason for a failed call or lost stream: gorpd's message
/// followed by the transport's causes.
pub fn describe(status: &Status) -> String {
    let mut reason = status.message().to_owned();
    let mut source = std::error::Error::source(status);
    while let Some(cause) = source {
        reason = format!("{reason}: {cause}");
        source = cause.source();
    }
    reason
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_and_its_code_are_kept() {
        let error = Error::from(Status::not_found("unknown session \"x\""));
        assert_eq!(error.code(), Some(Code::NotFound));
        assert_eq!(error.status().unwrap().message(), "unknown session \"x\"");
        assert_eq!(error.to_string(), "gorpd: unknown session \"x\"");
    }

    #[test]
    fn only_what_retrying_cannot_fix_is_fatal() {
        assert!(is_fatal(&Status::unauthenticated("bad token")));
        assert!(is_fatal(&Status::invalid_argument("bad hello")));
        assert!(!is_fatal(&Status::unavailable("gorpd is shutting down")));
        // A second stream for the same gateway id while gorpd still sees the old one.
        assert!(!is_fatal(&Status::already_exists("gateway id has an open stream")));
    }
}
