//! OpenTelemetry traces: where spans go (an OTLP/gRPC endpoint, or nowhere)
//! and the tracer provider that batches and exports them.
//!
//! Export is off unless an endpoint is configured: the binary's own setting
//! (gorpd's `otlp_endpoint`, a gateway's `--otlp-endpoint`) or the standard
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` / `OTEL_EXPORTER_OTLP_ENDPOINT`.
//! The other standard variables (`OTEL_SERVICE_NAME`, `OTEL_TRACES_SAMPLER`,
//! `OTEL_BSP_SCHEDULE_DELAY`, `OTEL_EXPORTER_OTLP_HEADERS`, ...) apply as usual.

use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;

/// The standard variables naming the OTLP endpoint, the traces-only one first.
pub const ENDPOINT_VARS: [&str; 2] = ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"];

/// An OTLP endpoint that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TracesError {
    /// Not an `http://` or `https://` URL.
    #[error("the OTLP endpoint \"{0}\" must start with http:// or https:// (e.g. http://127.0.0.1:4317)")]
    BadEndpoint(String),
    /// The exporter refused its settings.
    #[error("cannot set up the OTLP exporter for {endpoint}: {reason}")]
    Exporter {
        /// The endpoint.
        endpoint: String,
        /// Why.
        reason: String,
    },
}

/// Where spans are exported: `configured` (a binary's own setting) when
/// given and not blank, else the first of [`ENDPOINT_VARS`] that is set;
/// `None` means export is off.
pub fn endpoint(configured: Option<&str>) -> Option<String> {
    let from_env = || ENDPOINT_VARS.iter().find_map(|var| std::env::var(var).ok());
    configured
        .map(str::to_owned)
        .or_else(from_env)
        .map(|value| value.trim().to_owned())
        .filter(|value| !value.is_empty())
}

/// A provider exporting `service`'s spans in batches to `endpoint` over OTLP/gRPC.
/// Call inside a Tokio runtime: the gRPC channel's connection task runs on it.
pub(crate) fn provider(service: &str, endpoint: &str) -> Result<SdkTracerProvider, TracesError> {
    if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
        return Err(TracesError::BadEndpoint(endpoint.to_owned()));
    }
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .build()
        .map_err(|error| TracesError::Exporter { endpoint: endpoint.to_owned(), reason: error.to_string() })?;
    let mut resource = Resource::builder();
    // OTEL_SERVICE_NAME, when set, names the service instead (the resource builder reads it).
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name(service.to_owned());
    }
    Ok(SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource.build()).build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configured_endpoint_wins_and_blank_means_off() {
        assert_eq!(endpoint(Some(" http://collector:4317 ")).as_deref(), Some("http://collector:4317"));
        if ENDPOINT_VARS.iter().all(|var| std::env::var_os(var).is_none()) {
            assert_eq!(endpoint(None), None);
            assert_eq!(endpoint(Some("  ")), None);
        }
    }

    #[tokio::test]
    async fn an_endpoint_that_is_not_a_url_is_named() {
        let error = provider("gorp-test", "collector:4317").unwrap_err();
        assert_eq!(
            error.to_string(),
            "the OTLP endpoint \"collector:4317\" must start with http:// or https:// (e.g. http://127.0.0.1:4317)"
        );
    }
}
