//! The tower-http layers every web response passes through: a request id
//! (`x-request-id`, taken from the client or made up, echoed back and on the
//! request's tracing span), a span per request, gzip compression, and the
//! security headers (no framing, scripts only from gorpd itself, no sniffing,
//! no referrer to other sites, no caching of pages with data).
//!
//! The limits that hold per route are applied in [`bounded`]: pages and APIs
//! answer within [`REQUEST_TIMEOUT`] (408 otherwise) and take bodies up to
//! [`max_request_body_bytes`] (413 otherwise). Webhooks keep their own bounds
//! (`hook_wait_max_secs`, [`super::MAX_HOOK_BODY_BYTES`]), so they are merged
//! outside these two layers.

use axum::Router;
use axum::extract::Request;
use axum::http::header::{self, HeaderName, HeaderValue};
use axum::http::{Response, StatusCode};
use std::time::Duration;
use tower_http::ServiceBuilderExt;
use tower_http::compression::CompressionLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::MakeRequestUuid;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

/// Longest a page or API request may take before it is answered 408.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Room in a request body besides the message text (the CSRF token, field names).
const FORM_OVERHEAD_BYTES: usize = 64 * 1024;

/// Largest request body a page or API route accepts (forms, JSON), for
/// messages of up to `max_text_bytes`: a form may carry such a text
/// percent-encoded (up to three bytes per byte). Larger bodies get 413.
pub fn max_request_body_bytes(max_text_bytes: usize) -> usize {
    max_text_bytes * 3 + FORM_OVERHEAD_BYTES
}

/// The page policy: gorpd's own scripts only (the pages' one inline
/// `<style>` is allowed), the chat socket to the same origin, no framing.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// The security headers, set on every response (`Cache-Control` only where a handler set none).
const SECURITY_HEADERS: [(HeaderName, &str); 4] = [
    (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
    (header::X_FRAME_OPTIONS, "DENY"),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    // Not "no-referrer": with it, browsers send "Origin: null" on form posts, which the Origin check refuses.
    (header::REFERRER_POLICY, "same-origin"),
];

/// `routes` with the request timeout and the body limit for messages of up to `max_text_bytes`.
pub(super) fn bounded<S: Clone + Send + Sync + 'static>(routes: Router<S>, max_text_bytes: usize) -> Router<S> {
    routes
        .layer(RequestBodyLimitLayer::new(max_request_body_bytes(max_text_bytes)))
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, REQUEST_TIMEOUT))
}

/// `app` with the layers every response passes through.
pub(super) fn around(app: Router) -> Router {
    let mut app =
        app.layer(SetResponseHeaderLayer::if_not_present(header::CACHE_CONTROL, HeaderValue::from_static("no-store")));
    for (name, value) in SECURITY_HEADERS {
        app = app.layer(SetResponseHeaderLayer::overriding(name, HeaderValue::from_static(value)));
    }
    // Outermost first: the id is set before the span opens, so the span carries it.
    app.layer(
        tower::ServiceBuilder::new()
            .set_x_request_id(MakeRequestUuid)
            .layer(TraceLayer::new_for_http().make_span_with(request_span).on_response(log_response))
            .propagate_x_request_id()
            .layer(CompressionLayer::new().gzip(true)),
    )
}

/// The span of one request: method, path and request id.
fn request_span(request: &Request) -> tracing::Span {
    let id = request.headers().get("x-request-id").and_then(|id| id.to_str().ok()).unwrap_or_default();
    tracing::debug_span!("http", method = %request.method(), path = %request.uri().path(), request_id = %id)
}

fn log_response<B>(response: &Response<B>, latency: Duration, _span: &tracing::Span) {
    tracing::debug!(status = response.status().as_u16(), latency_ms = latency.as_millis() as u64, "http response");
}
