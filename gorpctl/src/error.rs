//! Errors that end a gorpctl run: what went wrong, what to do, and the exit code.

use tonic::Code;

/// A failed command.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    /// The command line is wrong.
    #[error("{0}")]
    Usage(String),
    /// Something named does not exist.
    #[error("{0}")]
    NotFound(String),
    /// No token, or gorpd refused it.
    #[error("{0}")]
    Unauthorized(String),
    /// gorpd cannot be reached.
    #[error("{0}")]
    Unreachable(String),
    /// Anything else gorpd refused or failed at.
    #[error("{0}")]
    Failed(String),
}

impl CliError {
    /// The documented exit code.
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            Self::Failed(_) => 1,
            Self::Usage(_) => 2,
            Self::NotFound(_) => 3,
            Self::Unauthorized(_) => 4,
            Self::Unreachable(_) => 5,
        }
    }

    /// A short machine-readable name for `--json` errors.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Self::Failed(_) => "failed",
            Self::Usage(_) => "usage",
            Self::NotFound(_) => "not_found",
            Self::Unauthorized(_) => "unauthorized",
            Self::Unreachable(_) => "unreachable",
        }
    }

    /// What the user can do about it.
    pub(crate) fn hint(&self) -> Option<&'static str> {
        match self {
            Self::NotFound(_) => Some("`gorpctl session list` shows the sessions"),
            Self::Unauthorized(_) => Some(
                "pass --token or set GORP_TOKEN; on the gorpd machine the admin token is read from <data-dir>/admin.token",
            ),
            Self::Unreachable(_) => Some("is gorpd running? point --server or GORP_SERVER at its gRPC address"),
            Self::Usage(_) => Some("`gorpctl --help` lists the commands"),
            Self::Failed(_) => None,
        }
    }

    /// Classifies a gRPC status from gorpd at `server`.
    pub(crate) fn from_status(status: tonic::Status, server: &str) -> Self {
        let message = status.message().to_owned();
        match status.code() {
            Code::NotFound => Self::NotFound(message),
            Code::Unauthenticated | Code::PermissionDenied => {
                Self::Unauthorized(format!("gorpd refused the token: {message}"))
            }
            Code::Unavailable | Code::DeadlineExceeded => {
                Self::Unreachable(format!("cannot reach gorpd at {server}: {message}"))
            }
            Code::Unimplemented => Self::Failed(format!("{server} does not serve this API ({message}); is it gorpd?")),
            _ => Self::Failed(message),
        }
    }
}
