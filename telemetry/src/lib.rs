//! `gorp-telemetry`: how every gorp binary (gorpd, the gateways, gorpctl)
//! sets up its logs and traces, so they all read `GORP_LOG`,
//! `GORP_LOG_FORMAT` and the OpenTelemetry variables the same way.
//!
//! Logs go to stderr: human-readable text (coloured only on a terminal) by
//! default, or one JSON object per line with `GORP_LOG_FORMAT=json`, for log
//! shippers. A span's fields (session, message id, gateway, request id) are
//! on every line inside it, in both formats.
//!
//! Traces go to an OTLP collector when an endpoint is configured (see
//! [`traces`]); the spans carry their W3C trace context across processes
//! through [`context`].

pub mod context;
pub mod traces;

pub use context::{TRACEPARENT, continue_trace, current_traceparent, traceparent};

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// The environment variable naming the log format.
pub const FORMAT_VAR: &str = "GORP_LOG_FORMAT";

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Readable text, one event per line.
    #[default]
    Text,
    /// One JSON object per line: `timestamp`, `level`, `target`, `fields`, `span`, `spans`.
    Json,
}

/// A `GORP_LOG_FORMAT` that is neither `text` nor `json`.
#[derive(Debug, thiserror::Error)]
#[error("{FORMAT_VAR} must be \"text\" or \"json\", not \"{0}\"")]
pub struct UnknownFormat(String);

impl LogFormat {
    /// Parses a format name (`text`, `json`; case-insensitive, empty means text).
    pub fn parse(name: &str) -> Result<Self, UnknownFormat> {
        match name.trim().to_ascii_lowercase().as_str() {
            "" | "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            _ => Err(UnknownFormat(name.to_owned())),
        }
    }

    /// The format `GORP_LOG_FORMAT` asks for (text when unset).
    pub fn from_env() -> Result<Self, UnknownFormat> {
        Self::parse(&std::env::var(FORMAT_VAR).unwrap_or_default())
    }
}

/// The level filter: `GORP_LOG`, else `RUST_LOG`, else `info` (also for an unparsable value).
fn filter() -> EnvFilter {
    EnvFilter::try_from_env("GORP_LOG").or_else(|_| EnvFilter::try_from_default_env()).unwrap_or_else(|_| "info".into())
}

/// Logs or traces that cannot be set up as configured.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// `GORP_LOG_FORMAT` names no format.
    #[error(transparent)]
    Format(#[from] UnknownFormat),
    /// The OTLP endpoint cannot be used.
    #[error(transparent)]
    Traces(#[from] traces::TracesError),
}

/// The process's telemetry once installed: keep it until the end and call
/// [`Telemetry::shutdown`] so the last spans are exported.
#[derive(Debug)]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Whether spans are exported (an OTLP endpoint is configured).
    pub fn exporting(&self) -> bool {
        self.provider.is_some()
    }

    /// Exports the spans still buffered and stops the exporter.
    pub async fn shutdown(self) {
        if let Some(provider) = self.provider {
            // Blocks until the batch is out; not on a runtime worker.
            let _ = tokio::task::spawn_blocking(move || provider.shutdown()).await;
        }
    }
}

/// Spans of gorp's own crates (`debug` and above) become trace spans, and
/// their warnings and errors span events; dependencies' internals stay out
/// of traces. The per-message spans are `debug`: without export, and with
/// logs at `info`, they are never even created.
fn traced(metadata: &tracing::Metadata<'_>) -> bool {
    let level = if metadata.is_span() { tracing::Level::DEBUG } else { tracing::Level::WARN };
    metadata.target().starts_with("gorp") && *metadata.level() <= level
}

/// Installs the process's log subscriber (stderr) in the format
/// `GORP_LOG_FORMAT` asks for and, when an OTLP endpoint is configured
/// (`otlp_endpoint`, else the standard variables), trace export as
/// `service`. Call once, first thing, inside the Tokio runtime; the error is
/// a configuration error for the binary to report.
pub fn init(service: &str, otlp_endpoint: Option<&str>) -> Result<Telemetry, InitError> {
    let format = LogFormat::from_env()?;
    let provider = traces::endpoint(otlp_endpoint).map(|endpoint| traces::provider(service, &endpoint)).transpose()?;
    let logs = match format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .boxed(),
    };
    tracing_subscriber::registry().with(logs.with_filter(filter())).with(spans(provider.as_ref())).init();
    if let Some(endpoint) = provider.as_ref().and(traces::endpoint(otlp_endpoint)) {
        tracing::info!(%endpoint, service, "exporting traces over OTLP");
    }
    Ok(Telemetry { provider })
}

/// Installs trace export only, no logs, when the standard variables name an
/// OTLP endpoint: for command-line tools whose output is their answer
/// (gorpctl), whose calls then join gorpd's traces.
pub fn init_traces_only(service: &str) -> Result<Telemetry, traces::TracesError> {
    let provider = traces::endpoint(None).map(|endpoint| traces::provider(service, &endpoint)).transpose()?;
    if provider.is_some() {
        tracing_subscriber::registry().with(spans(provider.as_ref())).init();
    }
    Ok(Telemetry { provider })
}

/// The layer turning [`traced`] spans into exported ones, when exporting.
fn spans<S>(provider: Option<&SdkTracerProvider>) -> Option<impl Layer<S> + Send + Sync + 'static>
where
    S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span> + Send + Sync,
{
    provider.map(|provider| {
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("gorp"))
            .with_filter(tracing_subscriber::filter::filter_fn(traced))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_parse_and_unknown_ones_are_named() {
        assert_eq!(LogFormat::parse("").unwrap(), LogFormat::Text);
        assert_eq!(LogFormat::parse("JSON").unwrap(), LogFormat::Json);
        assert_eq!(
            LogFormat::parse("yaml").unwrap_err().to_string(),
            "GORP_LOG_FORMAT must be \"text\" or \"json\", not \"yaml\""
        );
    }
}
