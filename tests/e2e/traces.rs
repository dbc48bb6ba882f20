//! Traces across processes: the real `gorpd` and `gorp-telegram` binaries
//! export their spans over OTLP/gRPC to a collector stub (a tonic server in
//! this test implementing the OTLP `TraceService`), and one trace follows a
//! Telegram message from the gateway's receipt through publish, commit,
//! routing, the turn (agent spawn, prompt, the permission request) and the
//! delivery back to the platform send, across the durable hop; a
//! `gorpctl tell` starts a trace its answer's delivery joins. Without an
//! endpoint (or with one nobody listens on) nothing is exported and the
//! answer still arrives.

use crate::chat_gateways::{TELEGRAM_BOT, TELEGRAM_CHAT, Upstream, telegram_gateway};
use crate::gorpd_process::{self, Gorpd};
use gorp_fakes::{FakeTelegram, GatewayProcess, profile_binary};
use gorp_proto::v1::delivery::Kind;
use gorpd::testing::clients::{Subscriber, bind, create, until};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};
use tokio::process::Command;

/// One span as the collector received it.
#[derive(Debug, Clone)]
struct Recorded {
    service: String,
    name: String,
    trace_id: String,
    span_id: String,
    parent_span_id: String,
    attributes: HashMap<String, String>,
}

/// The collector stub: records every exported span.
#[derive(Clone, Default)]
struct Collector {
    spans: Arc<Mutex<Vec<Recorded>>>,
}

fn text(value: Option<&AnyValue>) -> String {
    match value.and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

fn attributes(pairs: &[KeyValue]) -> HashMap<String, String> {
    pairs.iter().map(|kv| (kv.key.clone(), text(kv.value.as_ref()))).collect()
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut spans = self.spans.lock().unwrap();
        for resource_spans in request.into_inner().resource_spans {
            let resource = resource_spans.resource.map(|r| attributes(&r.attributes)).unwrap_or_default();
            let service = resource.get("service.name").cloned().unwrap_or_default();
            for span in resource_spans.scope_spans.into_iter().flat_map(|scope| scope.spans) {
                spans.push(Recorded {
                    service: service.clone(),
                    name: span.name,
                    trace_id: hex::encode(&span.trace_id),
                    span_id: hex::encode(&span.span_id),
                    parent_span_id: hex::encode(&span.parent_span_id),
                    attributes: attributes(&span.attributes),
                });
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse { partial_success: None }))
    }
}

impl Collector {
    /// Serves on 127.0.0.1:0 until the test's runtime ends; returns its endpoint URL.
    async fn start(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let service = TraceServiceServer::new(self.clone());
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        tokio::spawn(tonic::transport::Server::builder().add_service(service).serve_with_incoming(incoming));
        url
    }

    fn spans(&self) -> Vec<Recorded> {
        self.spans.lock().unwrap().clone()
    }
}

/// The real gorpd binary in `dir`, its session agent the scripted ACP agent,
/// exporting to `otlp` when given (`--otlp-endpoint`).
async fn start_gorpd(dir: &Path, otlp: Option<&str>) -> Gorpd {
    let agent = profile_binary("gorp-test-agent");
    let config = format!(
        "default_agent = \"test\"\n[agents.test]\nkind = \"acp\"\ncommand = {agent:?}\nprompt_template = \"{{text}}\"\n",
        agent = agent.display().to_string(),
    );
    let mut command = gorpd_process::command(dir, "data", &config);
    if let Some(endpoint) = otlp {
        command.args(["--otlp-endpoint", endpoint]);
    }
    Gorpd::spawn("gorpd", quiet(command)).await
}

/// `command` with no OpenTelemetry settings from the test's environment, logging at info.
fn quiet(mut command: Command) -> Command {
    for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("OTEL_")) {
        command.env_remove(name);
    }
    // Export quickly, so spans arrive while the test waits.
    command.env("OTEL_BSP_SCHEDULE_DELAY", "100").env("GORP_LOG", "info");
    command
}

/// `gorp-telegram` against `gorpd` and `telegram`, exporting to `otlp` through
/// the standard `OTEL_EXPORTER_OTLP_ENDPOINT` when given.
async fn exporting_telegram_gateway(
    gorpd: &Gorpd,
    telegram: &FakeTelegram,
    dir: &Path,
    otlp: Option<&str>,
) -> GatewayProcess {
    let upstream = Upstream { url: gorpd.url.clone(), token: gorpd.gateway_token("telegram").await };
    let mut command = quiet(telegram_gateway(telegram, &upstream, dir));
    if let Some(endpoint) = otlp {
        command.env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint);
    }
    GatewayProcess::spawn(command)
}

/// A session `traced` bound to the Telegram chat; the user asks for a
/// permission, approves it, and the answer arrives. Returns the answer.
async fn ask_and_approve(gorpd: &Gorpd, telegram: &FakeTelegram) -> String {
    let mut control = gorpd.client().await.control_api();
    control.create_session(create("traced")).await.unwrap();
    control.bind_session(bind("telegram", &TELEGRAM_CHAT.to_string(), "traced")).await.unwrap();
    telegram.dm(TELEGRAM_CHAT, "alice", "ask");
    let asked = || telegram.texts(TELEGRAM_CHAT).into_iter().find(|t| t.contains("!approve "));
    until(|| asked().is_some()).await;
    let notice = asked().unwrap();
    let id = notice.split("!approve ").nth(1).unwrap().split([' ', ',', '\n']).next().unwrap().to_owned();
    telegram.dm(TELEGRAM_CHAT, "alice", &format!("!approve {id}"));
    let granted = || telegram.texts(TELEGRAM_CHAT).into_iter().find(|t| t.contains("permission granted"));
    until(|| granted().is_some()).await;
    granted().unwrap()
}

#[tokio::test]
async fn one_trace_follows_a_telegram_message_through_gorpd_and_the_agent_and_back() {
    let dir = tempfile::tempdir().unwrap();
    let collector = Collector::default();
    let endpoint = collector.start().await;
    let gorpd = start_gorpd(dir.path(), Some(&endpoint)).await;
    let telegram = FakeTelegram::start(TELEGRAM_BOT).await;
    let gateway = exporting_telegram_gateway(&gorpd, &telegram, dir.path(), Some(&endpoint)).await;

    assert_eq!(ask_and_approve(&gorpd, &telegram).await, "permission granted: allow");
    // gorpctl's call joins the trace too (its span is the root), and so does the answer it caused.
    let mut tell = quiet(Command::new(profile_binary("gorpctl")));
    tell.args(["tell", "traced", "told", "by", "gorpctl"]).env("GORP_SERVER", &gorpd.url);
    tell.env("GORP_TOKEN", &gorpd.admin_token).env("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint);
    assert!(tell.output().await.unwrap().status.success());
    until(|| telegram.texts(TELEGRAM_CHAT).iter().any(|t| t.ends_with(": told by gorpctl"))).await;
    // Both stop cleanly and export what they still hold (the agent's span ends with its process).
    gateway.stop().await;
    gorpd.stop().await;

    let spans = collector.spans();
    let command =
        spans.iter().find(|s| s.service == "gorpctl").unwrap_or_else(|| panic!("no gorpctl span: {spans:#?}"));
    assert_eq!((command.name.as_str(), command.attributes["command"].as_str()), ("gorpctl", "Tell"));
    let told: BTreeSet<(&str, &str)> = spans
        .iter()
        .filter(|s| s.trace_id == command.trace_id)
        .map(|s| (s.service.as_str(), s.name.as_str()))
        .collect();
    for step in [("gorpd", "grpc"), ("gorpd", "turn"), ("gorpd", "delivery"), ("gorp-telegram", "platform send")] {
        assert!(told.contains(&step), "{step:?} is in the trace of gorpctl tell: {told:?}");
    }

    let turn = spans.iter().find(|s| s.name == "turn" && s.trace_id != command.trace_id).expect("the asked turn");
    let trace: Vec<&Recorded> = spans.iter().filter(|s| s.trace_id == turn.trace_id).collect();
    let names = |service: &str| -> BTreeSet<&str> {
        trace.iter().filter(|s| s.service == service).map(|s| s.name.as_str()).collect()
    };
    let gorpd_spans =
        ["publish", "commit", "route", "turn", "prompt", "agent", "agent spawn", "permission", "delivery"];
    assert!(
        BTreeSet::from(["gateway receipt", "platform send"]).is_subset(&names("gorp-telegram")),
        "the gateway's spans are in the trace: {trace:#?}"
    );
    assert!(BTreeSet::from(gorpd_spans).is_subset(&names("gorpd")), "gorpd's spans are in the trace: {trace:#?}");

    // The trace starts at the gateway: publish is the receipt's child, across the process boundary.
    let one = |name: &str| *trace.iter().find(|s| s.name == name).unwrap();
    let receipt = one("gateway receipt");
    assert_eq!(receipt.parent_span_id, "", "the receipt is the trace's root");
    assert_eq!(one("publish").parent_span_id, receipt.span_id);
    assert_eq!(receipt.attributes["platform"], "telegram");
    assert_eq!(receipt.attributes["gateway_id"], "telegram");
    assert_eq!(one("publish").attributes["message_id"], receipt.attributes["message_id"]);

    // The same fields everywhere: session, message id, platform, gateway id.
    let turn_span = one("turn");
    assert_eq!(
        (turn_span.attributes["session"].as_str(), turn_span.attributes["platform"].as_str()),
        ("traced", "telegram")
    );
    let sends: Vec<_> = trace.iter().filter(|s| s.name == "platform send").collect();
    assert!(sends.len() >= 2, "the permission notice and the answer were sent: {sends:#?}");
    for send in sends {
        assert_eq!(send.attributes["session"], "traced");
        assert_eq!(send.attributes["platform"], "telegram");
        assert_eq!(send.attributes["gateway_id"], "telegram");
        assert_eq!(send.attributes["message_id"], receipt.attributes["message_id"], "the message the send answers");
        let parent = trace.iter().find(|s| s.span_id == send.parent_span_id).expect("a send's parent is in the trace");
        assert_eq!((parent.service.as_str(), parent.name.as_str()), ("gorpd", "delivery"));
    }
}

#[tokio::test]
async fn without_an_endpoint_nothing_is_exported_and_an_unreachable_one_fails_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let collector = Collector::default();
    collector.start().await;
    // gorpd exports nowhere; the gateway to a port nobody listens on.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let nobody = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let gorpd = start_gorpd(dir.path(), None).await;
    let telegram = FakeTelegram::start(TELEGRAM_BOT).await;
    let gateway = exporting_telegram_gateway(&gorpd, &telegram, dir.path(), Some(&nobody)).await;

    assert_eq!(ask_and_approve(&gorpd, &telegram).await, "permission granted: allow");
    // Without export gorpd keeps no trace context: the responses in its log carry none.
    let mut bus = gorpd.client().await.bus_api();
    let mut log = Subscriber::open(&mut bus, "telegram", "inspector", Some(0)).await.unwrap();
    let mut responses = 0;
    while let Some(kind) = log.next().await.unwrap().kind {
        match kind {
            Kind::Response(response) => {
                assert_eq!(response.traceparent, "", "{response:?}");
                responses += 1;
            }
            Kind::CaughtUp(_) => break,
            Kind::Chunk(_) => {}
        }
    }
    assert!(responses >= 3, "the notices and the answer were replayed ({responses})");
    gateway.stop().await;
    gorpd.stop().await;
    assert!(collector.spans().is_empty(), "nothing was exported: {:#?}", collector.spans());
}
