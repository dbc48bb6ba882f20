//! Why a runner stopped.

use crate::platform::PlatformError;
use crate::spool::SpoolError;

/// A reason the runner gave up (everything else it retries).
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The configuration cannot work (bad URL, token with invalid characters).
    #[error("invalid gateway config: {0}")]
    Config(String),
    /// gorpd answered UNAUTHENTICATED or PERMISSION_DENIED.
    #[error("gorpd rejected the gateway token: {0}")]
    Unauthorized(String),
    /// gorpd refused a request as malformed (INVALID_ARGUMENT); retrying would not help.
    #[error("gorpd refused the gateway's request: {0}")]
    Refused(String),
    /// The platform reported a failure it cannot recover from.
    #[error(transparent)]
    Platform(#[from] PlatformError),
    /// The spool cannot be opened (another process holds it, or the disk refuses).
    #[error(transparent)]
    Spool(#[from] SpoolError),
}
