//! Errors of fleet operations, shared by DISPATCH, the Control API and the web admin.

use crate::bus::ChannelRef;
use crate::store::StoreError;

/// Why a fleet operation failed. Messages are written to be shown to users.
#[derive(Debug, thiserror::Error)]
pub enum OrchestratorError {
    /// No session has this name.
    #[error("unknown session \"{0}\"")]
    UnknownSession(String),
    /// A session with this name exists already.
    #[error("session \"{0}\" already exists")]
    SessionExists(String),
    /// No schedule has this id.
    #[error("unknown schedule #{0}")]
    UnknownSchedule(i64),
    /// The session has no webhook.
    #[error("session \"{0}\" has no webhook")]
    NoHook(String),
    /// The channel is not bound to any session.
    #[error("channel {0} is not bound to a session")]
    NotBound(ChannelRef),
    /// The asking channel's DISPATCH scope does not allow it; the text says why.
    #[error("{0}")]
    NotPermitted(String),
    /// Bad input; the text says what and how to fix it.
    #[error("{0}")]
    Invalid(String),
    /// The workspace directory could not be prepared.
    #[error("workspace {path}: {source}")]
    Workspace {
        /// The directory.
        path: String,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
    /// gorpd is stopping.
    #[error("gorpd is shutting down")]
    ShuttingDown,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored file could not be written or read.
    #[error(transparent)]
    Files(#[from] crate::files::FileError),
}

/// Result alias for fleet operations.
pub type OrchestratorResult<T> = Result<T, OrchestratorError>;
