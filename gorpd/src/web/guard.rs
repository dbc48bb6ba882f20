//! What every web request passes through before a handler: the Host check
//! that defeats DNS rebinding on a loopback listener and the Origin check
//! that refuses cross-site requests (a page elsewhere opening the chat socket
//! or posting a form). The security headers are set in [`super::middleware`].

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::http::header::{self, HeaderMap};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// How the listener is reached, which decides the Host check.
#[derive(Clone, Copy, Debug)]
pub(super) struct HostPolicy {
    /// The listener is on a loopback address: only loopback host names are answered.
    pub(super) loopback_only: bool,
}

/// Checks Host and Origin before the request goes on.
pub(super) async fn guard(State(policy): State<HostPolicy>, request: Request, next: Next) -> Response {
    let headers = request.headers();
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or_default().to_owned();
    // Webhooks carry their own secret and no cookie, so rebinding and
    // cross-site checks (which protect login sessions) do not apply; their
    // callers reach gorpd through proxies under other names.
    let webhook = request.uri().path().starts_with("/hooks/");
    if !webhook && policy.loopback_only && !host.is_empty() && !is_loopback_host(&host) {
        let message =
            format!("gorpd listens on a loopback address and answers only to localhost names, not \"{host}\"\n");
        return (StatusCode::MISDIRECTED_REQUEST, message).into_response();
    }
    if let Some(origin) = cross_site_origin(headers, &host).filter(|_| !webhook) {
        let message = format!("cross-site request from {origin} refused\n");
        return (StatusCode::FORBIDDEN, message).into_response();
    }
    next.run(request).await
}

/// Whether `host` (a Host header, with or without a port) names this machine's loopback.
fn is_loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    let name = name.to_ascii_lowercase();
    name == "localhost"
        || name.ends_with(".localhost")
        || name == "::1"
        || name.parse::<std::net::Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
}

/// The request's Origin when it is not the site being asked (`host`).
fn cross_site_origin(headers: &HeaderMap, host: &str) -> Option<String> {
    let origin = headers.get(header::ORIGIN)?.to_str().ok()?;
    let origin_host = origin.split_once("://").map(|(_, rest)| rest).unwrap_or(origin);
    (!origin_host.eq_ignore_ascii_case(host)).then(|| origin.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn loopback_names_with_and_without_ports() {
        for host in ["localhost", "localhost:7731", "127.0.0.1:7731", "127.9.9.9", "[::1]:7731", "app.localhost:80"] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in ["evil.example:7731", "10.0.0.1:7731", "localhost.evil.example", "[::2]:7731"] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }

    #[test]
    fn an_origin_other_than_the_host_is_cross_site() {
        let mut headers = HeaderMap::new();
        headers.insert(header::ORIGIN, HeaderValue::from_static("http://127.0.0.1:7731"));
        assert_eq!(cross_site_origin(&headers, "127.0.0.1:7731"), None);
        assert_eq!(cross_site_origin(&headers, "127.0.0.1:9999").as_deref(), Some("http://127.0.0.1:7731"));
        headers.insert(header::ORIGIN, HeaderValue::from_static("null"));
        assert!(cross_site_origin(&headers, "127.0.0.1:7731").is_some(), "an opaque origin is not this site");
    }
}
