//! `gorp-telemetry`: how every gorp binary (gorpd, the gateways) sets up its
//! logs, so they all read `GORP_LOG` and `GORP_LOG_FORMAT` the same way.
//!
//! Logs go to stderr: human-readable text (coloured only on a terminal) by
//! default, or one JSON object per line with `GORP_LOG_FORMAT=json`, for log
//! shippers. A span's fields (session, message id, gateway, request id) are
//! on every line inside it, in both formats.

use tracing_subscriber::EnvFilter;

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

/// Installs the process's log subscriber (stderr) in the format `GORP_LOG_FORMAT` asks for.
/// Call once, first thing; the error is a configuration error for the binary to report.
pub fn init_logging() -> Result<LogFormat, UnknownFormat> {
    let format = LogFormat::from_env()?;
    let builder = tracing_subscriber::fmt().with_env_filter(filter()).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).init(),
        LogFormat::Json => builder.json().with_current_span(true).with_span_list(true).init(),
    }
    Ok(format)
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
