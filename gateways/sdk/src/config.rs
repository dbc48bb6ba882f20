//! The runner's settings, shared by every platform binary.
//!
//! Binaries fill this from their flags, `GORP_*` env vars and file; the runner
//! validates it before connecting (see [`crate::Runner::run`]).

use crate::allow::AllowList;
use crate::backoff::BackoffConfig;
use crate::spool::SpoolConfig;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// A secret string whose `Debug` prints `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// How a gateway reaches gorpd and behaves.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// gorpd's gRPC URL, `http://` or `https://` (default `http://127.0.0.1:7730`).
    pub gorpd: String,
    /// The gateway token (`gorpctl token create NAME --gateway PLATFORM`).
    pub token: Secret,
    /// The gateway id gorpd keeps a cursor for; defaults to the platform name.
    /// Give each instance its own id if several run for one platform.
    pub gateway_id: Option<String>,
    /// Extra CA certificate (PEM) to trust for `https://`, besides the system roots.
    pub ca_cert: Option<Vec<u8>>,
    /// Who may use the gateway (default: everyone).
    pub allow: AllowList,
    /// Shortest time between two edits of one streaming message (default 1 s).
    pub edit_interval: Duration,
    /// Reconnect and retry delays.
    pub backoff: BackoffConfig,
    /// How long a stopping runner waits for outstanding acks (default 1 s).
    pub shutdown_grace: Duration,
    /// A durable spool for inbound messages (default none): each is
    /// acknowledged to the platform once on disk, not once gorpd has it.
    pub spool: Option<SpoolConfig>,
    /// The gateway's state directory (default none): streaming previews are
    /// recorded there (`previews.db`), so a restart replaces them.
    pub state_dir: Option<PathBuf>,
    /// Where to serve `/healthz` and `/metrics` (default: nowhere).
    pub health_addr: Option<SocketAddr>,
    /// gorpd's web chat as users reach it (`https://gorp.example.org`), for
    /// links to files too large for the platform (default: none; the
    /// message then names the web chat and `gorpctl download`).
    pub web_url: Option<String>,
    /// OTLP/gRPC collector traces are exported to (`None`: the standard
    /// `OTEL_EXPORTER_OTLP_*ENDPOINT` variables decide; unset too, no export).
    pub otlp_endpoint: Option<String>,
}

impl GatewayConfig {
    /// Defaults for everything but the token.
    pub fn new(token: impl Into<String>) -> Self {
        Self {
            gorpd: "http://127.0.0.1:7730".to_owned(),
            token: Secret::new(token),
            gateway_id: None,
            ca_cert: None,
            allow: AllowList::everyone(),
            edit_interval: Duration::from_secs(1),
            backoff: BackoffConfig::default(),
            shutdown_grace: Duration::from_secs(1),
            spool: None,
            state_dir: None,
            health_addr: None,
            web_url: None,
            otlp_endpoint: None,
        }
    }

    /// Sets the gorpd URL.
    pub fn gorpd(mut self, url: impl Into<String>) -> Self {
        self.gorpd = url.into();
        self
    }
}
