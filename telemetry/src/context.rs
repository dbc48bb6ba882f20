//! W3C trace context: the `traceparent` of a span, to carry to another
//! process (in gRPC metadata, in a message on the bus, in a stored row), and
//! continuing a trace from one.
//!
//! Without trace export (no OpenTelemetry layer installed) a span has no
//! trace context: [`traceparent`] is `None` and [`continue_trace`] does
//! nothing, so carrying context costs nothing when export is off.

use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The W3C header (and gRPC metadata key) carrying trace context.
pub const TRACEPARENT: &str = "traceparent";

/// `span`'s W3C `traceparent` (`00-<trace id>-<span id>-<flags>`), if it is part of a trace.
pub fn traceparent(span: &Span) -> Option<String> {
    let context = span.context();
    let span_context = context.span().span_context().clone();
    span_context.is_valid().then(|| {
        format!("00-{}-{}-{:02x}", span_context.trace_id(), span_context.span_id(), span_context.trace_flags().to_u8())
    })
}

/// The current span's `traceparent`, if it is part of a trace.
pub fn current_traceparent() -> Option<String> {
    traceparent(&Span::current())
}

/// Makes `span` a child of the remote span `traceparent` names. Call right
/// after creating `span`, before entering it. A missing or malformed value
/// leaves `span` as it was (a new trace, or its local parent's).
pub fn continue_trace(span: &Span, traceparent: Option<&str>) {
    let Some(value) = traceparent.filter(|value| !value.is_empty()) else {
        return;
    };
    let remote = TraceContextPropagator::new().extract(&OneHeader(value));
    if remote.span().span_context().is_valid() {
        // Fails only when the span is disabled or export is off: nothing to continue then.
        let _ = span.set_parent(remote);
    }
}

/// A carrier holding only a `traceparent`.
struct OneHeader<'a>(&'a str);

impl Extractor for OneHeader<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        (key == TRACEPARENT).then_some(self.0)
    }

    fn keys(&self) -> Vec<&str> {
        vec![TRACEPARENT]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::TracerProvider;
    use tracing_subscriber::layer::SubscriberExt;

    fn trace_id(traceparent: &str) -> &str {
        traceparent.split('-').nth(1).unwrap()
    }

    #[test]
    fn a_span_continues_the_trace_its_traceparent_names() {
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
        let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("test"));
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, || {
            let sender = tracing::info_span!("publish");
            let carried = traceparent(&sender).expect("an exported span has trace context");
            assert!(carried.starts_with("00-") && carried.ends_with("-01"), "{carried}");

            let receiver = tracing::info_span!("commit");
            continue_trace(&receiver, Some(&carried));
            let continued = traceparent(&receiver).unwrap();
            assert_eq!(trace_id(&continued), trace_id(&carried));
            assert_ne!(continued, carried, "a child has its own span id");

            let unrelated = tracing::info_span!("other");
            continue_trace(&unrelated, Some("00-not-a-traceparent-01"));
            assert_ne!(trace_id(&traceparent(&unrelated).unwrap()), trace_id(&carried));
        });
    }

    #[test]
    fn without_export_there_is_no_context_and_nothing_fails() {
        let subscriber = tracing_subscriber::registry();
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("publish");
            continue_trace(&span, Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
            assert_eq!(traceparent(&span), None);
            assert_eq!(current_traceparent(), None);
        });
    }
}
