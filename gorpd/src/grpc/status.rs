//! The one place that picks gRPC status codes for domain errors. Internal
//! failures are logged with their detail and sent as "internal error".

use crate::auth::{AuthError, Principal, Revocation};
use crate::orchestrator::OrchestratorError;
use crate::store::StoreError;
use tonic::{Request, Status};

/// Logs `error` and hides it behind "internal error".
pub(super) fn internal(error: &dyn std::error::Error) -> Status {
    tracing::error!(%error, "internal error");
    Status::internal("internal error; the details are in gorpd's log")
}

impl From<OrchestratorError> for Status {
    fn from(error: OrchestratorError) -> Self {
        let message = error.to_string();
        match error {
            OrchestratorError::UnknownSession(_)
            | OrchestratorError::UnknownSchedule(_)
            | OrchestratorError::NoHook(_)
            | OrchestratorError::NotBound(_) => Status::not_found(message),
            OrchestratorError::SessionExists(_) => Status::already_exists(message),
            OrchestratorError::Invalid(_) => Status::invalid_argument(message),
            OrchestratorError::NotPermitted(_) => Status::permission_denied(message),
            OrchestratorError::Workspace { .. } => Status::failed_precondition(message),
            OrchestratorError::ShuttingDown => Status::unavailable(message),
            OrchestratorError::Store(inner) => inner.into(),
            OrchestratorError::Files(inner) => inner.into(),
        }
    }
}

impl From<AuthError> for Status {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::Invalid(message) => Status::invalid_argument(message),
            AuthError::UnknownToken(_) => Status::not_found(error.to_string()),
            other => internal(&other),
        }
    }
}

impl From<StoreError> for Status {
    fn from(error: StoreError) -> Self {
        match error {
            // Nothing was stored; reads and deliveries go on, and a resend after space returns succeeds.
            StoreError::Full => {
                tracing::warn!("refusing a write: the disk (or max_database_bytes) is full");
                Status::resource_exhausted(error.to_string())
            }
            // Asked of an engine that does not do it (a backup of Postgres): the message says what to do.
            StoreError::Unsupported(_) => Status::failed_precondition(error.to_string()),
            other => internal(&other),
        }
    }
}

impl From<crate::files::FileError> for Status {
    fn from(error: crate::files::FileError) -> Self {
        use crate::files::FileError;
        let message = error.to_string();
        match error {
            FileError::TooLarge(_) => Status::resource_exhausted(message),
            FileError::Invalid(_) => Status::invalid_argument(message),
            FileError::NotFound(_) => Status::not_found(message),
            FileError::Io(inner) => internal(&inner),
        }
    }
}

/// The caller, as set by the authenticating interceptor.
pub(super) fn principal<T>(request: &Request<T>) -> Result<Principal, Status> {
    request.extensions().get::<Principal>().cloned().ok_or_else(|| Status::unauthenticated("missing authorization"))
}

/// Fires when the token of `request` is revoked (never, for a request without one).
pub(super) fn revocation<T>(request: &Request<T>) -> Revocation {
    request.extensions().get::<Revocation>().cloned().unwrap_or_default()
}

/// Refuses anything but an admin token.
pub(super) fn require_admin<T>(request: &Request<T>) -> Result<(), Status> {
    match principal(request)? {
        Principal::Admin => Ok(()),
        Principal::Gateway { platform } => Err(Status::permission_denied(format!(
            "this is a gateway token for platform \"{platform}\"; the Control API needs an admin token"
        ))),
    }
}

/// Refuses a caller that may not act for `platform`.
pub(super) fn require_platform(principal: &Principal, platform: &str) -> Result<(), Status> {
    match principal {
        p if p.may_act_for(platform) => Ok(()),
        Principal::Gateway { platform: own } => Err(Status::permission_denied(format!(
            "this token may act only for platform \"{own}\", not \"{platform}\""
        ))),
        Principal::Admin => Ok(()),
    }
}

/// A decode failure of a client stream becomes INVALID_ARGUMENT with the reason.
pub(super) fn stream_error(status: Status) -> Status {
    match status.code() {
        tonic::Code::Internal | tonic::Code::Unknown => {
            Status::invalid_argument(format!("malformed request: {}", status.message()))
        }
        _ => status,
    }
}
