//! The gRPC edge: the `Bus` and `Control` services, standard health checking
//! and server reflection, bearer-token authentication, TLS, and streams that
//! end with UNAVAILABLE when gorpd shuts down.

mod bus;
mod control;
mod convert;
mod files;
mod incoming;
mod status;
mod tls;

use crate::auth::{Authenticator, Revocation};
use crate::config::TlsFiles;
use crate::orchestrator::Orchestrator;
use gorp_proto::v1::bus_server::BusServer;
use gorp_proto::v1::control_server::ControlServer;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::Status;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Server, ServerTlsConfig};

/// Errors starting the gRPC server.
#[derive(Debug, thiserror::Error)]
pub enum GrpcError {
    /// TLS files could not be read or used.
    #[error("TLS: {0}")]
    Tls(String),
    /// The server failed.
    #[error("gRPC server: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// Reflection could not be built.
    #[error("gRPC reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
}

/// Everything the services share.
#[derive(Clone, Debug)]
pub struct GrpcState {
    /// Fleet operations and message intake.
    pub orchestrator: Orchestrator,
    /// Token checks and management.
    pub auth: Authenticator,
    /// Fires when gorpd stops; open streams then end with UNAVAILABLE.
    pub shutdown: CancellationToken,
    /// Tracks stream tasks so shutdown can wait for them.
    pub tasks: TaskTracker,
    /// Gateways with an open SubscribeResponses stream.
    pub presence: Presence,
    /// The gRPC listener's limits.
    pub limits: GrpcLimits,
    /// The HTTP listener's limits (reported by `GetServerInfo`).
    pub http_limits: crate::web::ConnectionLimits,
    /// The certificates gRPC TLS serves (set by [`serve`]; reported by `GetServerInfo`).
    pub tls_certificates: Arc<Vec<gorp_proto::v1::TlsCertificate>>,
}

/// Open delivery streams per gateway id, and each gateway's latest health
/// report (kept after it disconnects, until gorpd restarts).
#[derive(Clone, Debug, Default)]
pub struct Presence {
    open: Arc<Mutex<HashMap<String, usize>>>,
    health: Arc<Mutex<HashMap<String, GatewayHealth>>>,
}

/// What a gateway reported about its platform's side.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GatewayHealth {
    /// Messages it could not decrypt since it started.
    pub undecryptable_since_start: u64,
    /// Of those, messages still waiting for their keys.
    pub waiting_for_keys: u64,
}

impl From<&gorp_proto::v1::GatewayHealth> for GatewayHealth {
    fn from(health: &gorp_proto::v1::GatewayHealth) -> Self {
        Self { undecryptable_since_start: health.undecryptable_since_start, waiting_for_keys: health.waiting_for_keys }
    }
}

impl From<GatewayHealth> for gorp_proto::v1::GatewayHealth {
    fn from(health: GatewayHealth) -> Self {
        Self { undecryptable_since_start: health.undecryptable_since_start, waiting_for_keys: health.waiting_for_keys }
    }
}

/// Counts one open stream until dropped.
pub(crate) struct PresenceGuard {
    presence: Presence,
    gateway_id: String,
}

impl Presence {
    /// Registers the one open delivery stream of `gateway_id`; `None` when
    /// another stream of that id is open (two processes sharing an id would
    /// both post every answer and share one cursor).
    pub(crate) fn connect(&self, gateway_id: &str) -> Option<PresenceGuard> {
        let mut open = self.open.lock().expect("presence lock");
        let count = open.entry(gateway_id.to_owned()).or_default();
        if *count > 0 {
            return None;
        }
        *count += 1;
        Some(PresenceGuard { presence: self.clone(), gateway_id: gateway_id.to_owned() })
    }

    /// Whether `gateway_id` has an open stream.
    pub fn is_connected(&self, gateway_id: &str) -> bool {
        self.open.lock().expect("presence lock").get(gateway_id).is_some_and(|n| *n > 0)
    }

    /// Records `gateway_id`'s latest health report (only a gateway with an
    /// open stream reports, so the map holds at most the gateways seen).
    pub(crate) fn report_health(&self, gateway_id: &str, health: GatewayHealth) {
        self.health.lock().expect("presence lock").insert(gateway_id.to_owned(), health);
    }

    /// `gateway_id`'s latest health report since gorpd started, if any.
    pub fn health(&self, gateway_id: &str) -> Option<GatewayHealth> {
        self.health.lock().expect("presence lock").get(gateway_id).copied()
    }
}

impl Drop for PresenceGuard {
    fn drop(&mut self) {
        let mut open = self.presence.open.lock().expect("presence lock");
        if let Some(count) = open.get_mut(&self.gateway_id) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.gateway_id);
            }
        }
    }
}

/// A server stream fed by a tracked task. The task ends when `body` returns,
/// as soon as the client goes away, at shutdown (the stream ends with
/// UNAVAILABLE), or when the token it was opened with is revoked
/// (UNAUTHENTICATED).
pub(crate) fn spawn_stream<T, F, Fut>(
    state: &GrpcState,
    revocation: Revocation,
    body: F,
) -> ReceiverStream<Result<T, Status>>
where
    T: Send + 'static,
    F: FnOnce(mpsc::Sender<Result<T, Status>>) -> Fut,
    Fut: Future<Output = Result<(), Status>> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(64);
    let work = body(tx.clone());
    let shutdown = state.shutdown.clone();
    state.tasks.spawn(async move {
        let result = tokio::select! {
            _ = shutdown.cancelled() => Err(Status::unavailable("gorpd is shutting down")),
            _ = revocation.revoked() => Err(Status::unauthenticated("the token of this stream was revoked")),
            // The client went away: stop now, not at the next event.
            _ = tx.closed() => Ok(()),
            result = work => result,
        };
        if let Err(status) = result {
            // The client may have stopped reading; never block shutdown on it.
            let _ = tokio::time::timeout(Duration::from_secs(1), tx.send(Err(status))).await;
        }
    });
    ReceiverStream::new(rx)
}

/// How many connections the gRPC listener serves at once, and how soon each must open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrpcLimits {
    /// Largest message a client may send, in bytes.
    pub max_message_bytes: usize,
    /// Most connections open at once; more wait to be accepted.
    pub max_connections: usize,
    /// Longest a new connection may take to send its first bytes (the HTTP/2 preface or a TLS hello).
    pub opening_timeout: Duration,
}

/// Serves gRPC on `listener` until `shutdown` fires.
pub async fn serve(mut state: GrpcState, listener: TcpListener, tls: Option<&TlsFiles>) -> Result<(), GrpcError> {
    let identity = tls.map(tls::read).transpose()?;
    if let Some((_, certificates)) = &identity {
        state.tls_certificates = Arc::new(certificates.clone());
    }
    let limits = state.limits;
    let max_message_bytes = limits.max_message_bytes;
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<BusServer<bus::BusService>>().await;
    health.set_serving::<ControlServer<control::ControlService>>().await;
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(gorp_proto::v1::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    // v1 for current tools, v1alpha for older ones (grpcui, older grpcurl).
    let (reflection_v1, reflection_v1alpha) = (reflection().build_v1()?, reflection().build_v1alpha()?);
    let bus = BusServer::new(bus::BusService::new(state.clone())).max_decoding_message_size(max_message_bytes);
    let control =
        ControlServer::new(control::ControlService::new(state.clone())).max_decoding_message_size(max_message_bytes);
    // A gateway whose connection died without a FIN (a network cut) must not
    // hold its gateway id: unanswered pings end the connection within 30 s.
    let mut builder = Server::builder()
        .trace_fn(call_span)
        .http2_keepalive_interval(Some(Duration::from_secs(20)))
        .http2_keepalive_timeout(Some(Duration::from_secs(10)));
    if let Some((identity, _)) = identity {
        builder = builder.tls_config(ServerTlsConfig::new().identity(identity)).map_err(GrpcError::Transport)?;
    }
    let shutdown = state.shutdown.clone();
    builder
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(InterceptedService::new(bus, state.auth.clone()))
        .add_service(InterceptedService::new(control, state.auth.clone()))
        .serve_with_incoming_shutdown(
            incoming::accept_limited(listener, limits.max_connections, limits.opening_timeout),
            shutdown.cancelled_owned(),
        )
        .await?;
    Ok(())
}

/// The span of one gRPC call, continuing the caller's trace when its
/// metadata carries a W3C `traceparent` (gorp-client and gorpctl send one).
fn call_span(request: &tonic::codegen::http::Request<()>) -> tracing::Span {
    let span = tracing::debug_span!("grpc", method = %request.uri().path());
    let traceparent = request.headers().get(gorp_telemetry::TRACEPARENT).and_then(|value| value.to_str().ok());
    gorp_telemetry::continue_trace(&span, traceparent);
    span
}
