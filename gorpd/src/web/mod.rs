//! The built-in web adapter: the axum router on the HTTP listener with the
//! web chat (a page, a little JavaScript and a WebSocket as platform `web`),
//! the admin panel, webhooks (`/hooks/…`), `/metrics` and `/healthz`.
//!
//! Everything except `/healthz`, the login pages and webhooks (which carry
//! their own secret) needs a login session (see [`login`]). Every state-changing request carries the session's CSRF
//! token. Handlers call the same orchestrator and authenticator functions as
//! DISPATCH and the Control API; nothing here writes to the store directly.

mod admin;
mod automation;
mod charts;
mod chat;
mod files;
mod guard;
mod hooks;
mod listener;
pub mod login;
mod markdown;
mod metrics;
pub mod middleware;
mod sessions;
mod templates;
mod ws;

pub use listener::ConnectionLimits;
pub use login::Logins;

use crate::auth::Authenticator;
use crate::grpc::Presence;
use crate::orchestrator::Orchestrator;
use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Everything the handlers share. Cheap to clone.
#[derive(Clone, Debug)]
pub struct WebState {
    /// Fleet operations and message intake.
    pub orchestrator: Orchestrator,
    /// Token management (admin panel) and bearer checks (`/metrics`).
    pub auth: Authenticator,
    /// Gateways with an open delivery stream.
    pub presence: Presence,
    /// Login sessions, the one-time link and the failed-login limiter.
    pub logins: Logins,
    /// Fires when gorpd stops; open WebSockets then close.
    pub shutdown: CancellationToken,
    /// Tracks WebSocket tasks so shutdown can wait for them.
    pub tasks: TaskTracker,
    /// Webhook calls per session in the current minute.
    pub hook_limits: hooks::RateLimits,
}

pub use hooks::{MAX_HOOK_BODY_BYTES, RateLimits, SIGNATURE_WINDOW_SECS};

/// Why a web request failed; each maps to one status code.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// No valid login session.
    #[error("login required")]
    Unauthorized,
    /// The CSRF token is missing or wrong.
    #[error("CSRF token mismatch")]
    Forbidden,
    /// Bad input.
    #[error("{0}")]
    BadRequest(String),
    /// Not here.
    #[error("{0}")]
    NotFound(String),
    /// Too many failed logins from this address.
    #[error("too many failed logins; try again in {0} s")]
    TooManyAttempts(u64),
    /// Something on our side failed (logged, not shown).
    #[error("internal error")]
    Internal,
}

impl WebError {
    /// Logs `error` and hides it behind "internal error".
    pub(crate) fn internal(error: impl std::fmt::Display) -> Self {
        tracing::error!(%error, "web request failed");
        Self::Internal
    }
}

impl From<crate::orchestrator::OrchestratorError> for WebError {
    fn from(error: crate::orchestrator::OrchestratorError) -> Self {
        use crate::orchestrator::OrchestratorError as E;
        match error {
            E::UnknownSession(_) | E::UnknownSchedule(_) | E::NoHook(_) => Self::NotFound(error.to_string()),
            E::Invalid(_) | E::SessionExists(_) | E::NotBound(_) => Self::BadRequest(error.to_string()),
            other => Self::internal(other),
        }
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let status = match &self {
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::TooManyAttempts(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let body = format!("{self}\n");
        match self {
            Self::TooManyAttempts(secs) => (status, [("retry-after", secs.to_string())], body).into_response(),
            _ => (status, body).into_response(),
        }
    }
}

/// The token of an `Authorization: Bearer <token>` header, if there is one.
pub(crate) fn bearer_token(headers: &axum::http::HeaderMap) -> Option<&str> {
    let value = headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?;
    value.strip_prefix("Bearer ").map(str::trim)
}

/// The web adapter's routes, each with its limits (see [`middleware`]).
pub fn router(state: WebState) -> Router {
    let pages = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/login", get(login::login_page).post(login::login_password))
        .route("/", get(chat::page))
        .route("/static/chat.js", get(chat::script))
        .route("/static/chat.css", get(chat::style))
        .route("/api/history", get(chat::history))
        .route("/files/{sha256}/{name}", get(files::download))
        .route("/ws", get(ws::upgrade))
        .route("/metrics", get(metrics::metrics))
        .merge(sessions::routes())
        .merge(admin::routes())
        .merge(automation::routes())
        .route("/logout", post(login::logout));
    let max_text_bytes = state.orchestrator.max_text_bytes();
    middleware::bounded(pages, max_text_bytes).merge(hooks::routes()).merge(files::upload_routes()).with_state(state)
}

/// Serves the web adapter on `listener` within `limits` until `state.shutdown` fires.
pub async fn serve(state: WebState, listener: TcpListener, limits: ConnectionLimits) -> std::io::Result<()> {
    let shutdown = state.shutdown.clone();
    let policy = guard::HostPolicy { loopback_only: listener.local_addr()?.ip().is_loopback() };
    state.tasks.spawn(charts::sample_lag(state.clone()));
    let app = router(state).layer(axum::middleware::from_fn_with_state(policy, guard::guard));
    listener::serve(listener, middleware::around(app), limits, shutdown).await;
    Ok(())
}
