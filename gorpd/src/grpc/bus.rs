//! The `Bus` service: Publish (read-ahead intake with in-order acks),
//! SubscribeResponses (replay then live, with acknowledged cursors) and
//! BindChannel (bind requests and a live feed of binding changes).

use super::convert::{binding_change, channel_from_pb, chunk_to_pb, response_to_pb};
use super::status::{principal, require_platform, revocation, stream_error};
use super::{GrpcState, spawn_stream};
use crate::auth::Principal;
use crate::bus::{Activity, ChannelRef, Delivered};
use crate::orchestrator::{Accepted, OrchestratorError};
use crate::store::NewInbound;
use futures::future::{self, BoxFuture, FutureExt};
use futures::stream::{FuturesOrdered, StreamExt};
use gorp_proto::v1 as pb;
use pb::bus_server::Bus;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::{broadcast::error::RecvError, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use tracing::Instrument;

type ServerStream<T> = ReceiverStream<Result<T, Status>>;

/// Implementation of `gorp.v1.Bus`.
#[derive(Debug)]
pub(crate) struct BusService {
    state: GrpcState,
}

impl BusService {
    pub(crate) fn new(state: GrpcState) -> Self {
        Self { state }
    }
}

fn rejected(message_id: String, status: Status) -> pb::PublishAck {
    pb::PublishAck {
        message_id,
        status: pb::PublishStatus::Rejected as i32,
        error_code: status.code() as i32,
        error: status.message().to_owned(),
    }
}

/// Unacknowledged messages one Publish stream may have in flight; reading
/// ahead lets one stream's messages share a commit.
const PUBLISH_WINDOW: usize = 256;

/// The pending ack of one published message.
type PendingAck = BoxFuture<'static, Result<pb::PublishAck, Status>>;

/// Queues one message for commit, in stream order. Bad input becomes a
/// REJECTED ack; failures that a retry could fix (shutdown, storage) end the
/// stream instead.
async fn submit_one(state: &GrpcState, caller: &Principal, request: pb::PublishRequest) -> Result<PendingAck, Status> {
    let message_id = request.message_id.clone();
    let read_at = std::time::Instant::now();
    let ready = |ack: pb::PublishAck| -> Result<PendingAck, Status> { Ok(future::ready(Ok(ack)).boxed()) };
    let channel = match channel_from_pb(request.channel) {
        Ok(channel) => channel,
        Err(status) => return ready(rejected(message_id, status)),
    };
    if let Err(status) = require_platform(caller, &channel.platform) {
        return ready(rejected(message_id, status));
    }
    for (what, value) in [("sender name", &request.sender_name), ("sender id", &request.sender_id)] {
        if let Err(reason) = crate::names::check_sender(what, value) {
            return ready(rejected(message_id, Status::invalid_argument(reason)));
        }
    }
    // Stored (and fsynced) before the message is submitted, so its row never names a missing file.
    let attachments = match super::files::accept(state, request.attachments).await {
        Ok(attachments) => attachments,
        Err(status) if status.code() == tonic::Code::Internal => return Err(status),
        Err(status) => return ready(rejected(message_id, status)),
    };
    let sender = [request.sender_name, request.sender_id].into_iter().find(|s| !s.is_empty());
    let span = publish_span(&channel, &message_id, &request.traceparent);
    let new = NewInbound {
        channel,
        message_id: Some(request.message_id),
        sender: sender.unwrap_or_else(|| "someone".to_owned()),
        text: request.text,
        attachments,
        // Stored with the message: its routing, turn and answer join this trace.
        trace_context: gorp_telemetry::traceparent(&span),
    };
    let committing = tracing::debug_span!(parent: &span, "commit", message_id = %message_id);
    let receipt = match state.orchestrator.submit(new).instrument(span).await {
        Ok(receipt) => receipt,
        Err(error @ OrchestratorError::Invalid(_)) => return ready(rejected(message_id, error.into())),
        Err(error) => return Err(error.into()),
    };
    let metrics = state.orchestrator.metrics().clone();
    Ok(async move {
        let status = match receipt.await.unwrap_or(Err(OrchestratorError::ShuttingDown))? {
            Accepted::New(_) => pb::PublishStatus::Accepted,
            Accepted::Duplicate => pb::PublishStatus::Duplicate,
        };
        metrics.publish_acked(read_at.elapsed());
        Ok(pb::PublishAck { message_id, status: status as i32, error_code: 0, error: String::new() })
    }
    .instrument(committing)
    .boxed())
}

/// The span of one published message, continuing the trace of the gateway
/// span that received it (`traceparent`, when the publisher sent one).
fn publish_span(channel: &ChannelRef, message_id: &str, traceparent: &str) -> tracing::Span {
    let span =
        tracing::debug_span!("publish", platform = %channel.platform, channel = %channel, message_id = %message_id);
    gorp_telemetry::continue_trace(&span, Some(traceparent));
    span
}

/// Reads ahead up to [`PUBLISH_WINDOW`] messages and sends their acks in order.
///
/// A request that cannot be read (beyond the transport's frame limit, or
/// malformed) ends the stream, but only after every message read before it
/// got its ack: a client never has a stored message it was not told about.
async fn publish_stream(
    state: GrpcState,
    caller: Principal,
    mut requests: Streaming<pb::PublishRequest>,
    tx: mpsc::Sender<Result<pb::PublishAck, Status>>,
) -> Result<(), Status> {
    let mut pending: FuturesOrdered<PendingAck> = FuturesOrdered::new();
    let mut requests_open = true;
    let mut unreadable = None;
    loop {
        tokio::select! {
            request = requests.message(), if requests_open && pending.len() < PUBLISH_WINDOW => {
                match request {
                    Ok(Some(request)) => pending.push_back(submit_one(&state, &caller, request).await?),
                    Ok(None) => requests_open = false,
                    Err(status) => {
                        requests_open = false;
                        unreadable = Some(stream_error(status));
                    }
                }
            }
            Some(ack) = pending.next(), if !pending.is_empty() => {
                if tx.send(Ok(ack?)).await.is_err() {
                    return Ok(());
                }
            }
            else => return unreadable.map_or(Ok(()), Err),
        }
    }
}

/// Validates the hello for `gateway_id` (the hello's, or its platform) and returns (gateway id, platform, starting cursor).
async fn open_subscription(
    state: &GrpcState,
    caller: &Principal,
    gateway_id: String,
    hello: pb::SubscribeHello,
) -> Result<(String, String, u64), Status> {
    crate::names::check_platform(&hello.platform).map_err(Status::invalid_argument)?;
    require_platform(caller, &hello.platform)?;
    crate::names::check_label("gateway id", &gateway_id).map_err(Status::invalid_argument)?;
    let store = state.orchestrator.store();
    if let Some(owner) = store.gateway_platform(&gateway_id).await?
        && owner != hello.platform
    {
        return Err(Status::permission_denied(format!(
            "gateway id \"{gateway_id}\" belongs to platform {owner}; use another gateway id"
        )));
    }
    let cursor = match hello.cursor {
        Some(cursor) => {
            let last = store.last_seq().await?;
            if cursor > last {
                return Err(Status::out_of_range(format!(
                    "cursor {cursor} is past the end of the response log (last seq: {last})"
                )));
            }
            cursor
        }
        None => store.resume_cursor(&gateway_id, &hello.platform).await?,
    };
    store.touch_gateway(&gateway_id, &hello.platform, cursor).await?;
    Ok((gateway_id, hello.platform, cursor))
}

async fn first_hello(requests: &mut Streaming<pb::SubscribeRequest>) -> Result<pb::SubscribeHello, Status> {
    match requests.message().await.map_err(stream_error)? {
        Some(pb::SubscribeRequest { kind: Some(pb::subscribe_request::Kind::Hello(hello)) }) => Ok(hello),
        Some(_) => Err(Status::invalid_argument("the first SubscribeRequest must be a hello")),
        None => Err(Status::cancelled("the stream closed before its hello")),
    }
}

/// Streams deliveries and records acks until the client goes away.
async fn deliver(
    state: GrpcState,
    caller: Principal,
    mut requests: Streaming<pb::SubscribeRequest>,
    tx: mpsc::Sender<Result<pb::Delivery, Status>>,
) -> Result<(), Status> {
    let hello = first_hello(&mut requests).await?;
    let gateway_id = if hello.gateway_id.is_empty() { hello.platform.clone() } else { hello.gateway_id.clone() };
    // Claimed before anything is written, so a refused second stream changes nothing.
    let Some(_present) = state.presence.connect(&gateway_id) else {
        return Err(Status::already_exists(format!(
            "gateway id \"{gateway_id}\" already has an open SubscribeResponses stream; give each gateway process its own id"
        )));
    };
    let (gateway_id, platform, cursor) = open_subscription(&state, &caller, gateway_id, hello).await?;
    tracing::info!(gateway = %gateway_id, %platform, cursor, "gateway subscribed");
    state.orchestrator.metrics().gateway_subscribed(&gateway_id, &platform);
    let delivered = Arc::new(AtomicU64::new(cursor));
    let mut subscription = state.orchestrator.bus().subscribe(&platform, cursor);
    let mut requests_open = true;
    loop {
        tokio::select! {
            event = subscription.next() => {
                let event = event.map_err(|e| Status::unavailable(e.to_string()))?;
                let mut span = tracing::Span::none();
                let kind = match event {
                    Delivered::Response(response) => {
                        delivered.store(response.seq, Ordering::SeqCst);
                        span = delivery_span(&response, &gateway_id);
                        let mut delivery = response_to_pb(&response);
                        // The gateway's send continues from this delivery.
                        if let Some(traceparent) = gorp_telemetry::traceparent(&span) {
                            delivery.traceparent = traceparent;
                        }
                        pb::delivery::Kind::Response(delivery)
                    }
                    Delivered::CaughtUp => pb::delivery::Kind::CaughtUp(pb::CaughtUp {}),
                    Delivered::Chunk(chunk) => {
                        // Chunks are best effort: a client that is behind skips them.
                        let _ = tx.try_send(Ok(pb::Delivery { kind: Some(pb::delivery::Kind::Chunk(chunk_to_pb(&chunk))) }));
                        continue;
                    }
                };
                if tx.send(Ok(pb::Delivery { kind: Some(kind) })).instrument(span).await.is_err() {
                    break;
                }
            }
            request = requests.message(), if requests_open => match request.map_err(stream_error)? {
                Some(pb::SubscribeRequest { kind: Some(pb::subscribe_request::Kind::Ack(ack)) }) => {
                    let last = delivered.load(Ordering::SeqCst);
                    if ack.seq > last {
                        return Err(Status::invalid_argument(format!("ack for seq {} which was not delivered (last delivered: {last})", ack.seq)));
                    }
                    state.orchestrator.store().ack_gateway(&gateway_id, ack.seq);
                }
                Some(pb::SubscribeRequest { kind: Some(pb::subscribe_request::Kind::Health(health)) }) => {
                    tracing::debug!(gateway = %gateway_id, undecryptable = health.undecryptable_since_start, waiting = health.waiting_for_keys, "gateway health");
                    state.presence.report_health(&gateway_id, (&health).into());
                }
                Some(_) => return Err(Status::invalid_argument("only acks and health reports may follow the hello")),
                None => requests_open = false,
            },
        }
    }
    tracing::info!(gateway = %gateway_id, "gateway unsubscribed");
    Ok(())
}

/// The span of handing `response` to `gateway_id`'s stream, in the trace of
/// the turn (or command) that wrote it.
fn delivery_span(response: &crate::bus::Response, gateway_id: &str) -> tracing::Span {
    let span = tracing::debug_span!(
        "delivery",
        session = response.session.as_deref().unwrap_or_default(),
        message_id = response.reply_to.as_ref().map(|r| r.message_id.as_str()).unwrap_or_default(),
        platform = response.targets.first().map(|t| t.platform.as_str()).unwrap_or_default(),
        gateway_id,
        seq = response.seq,
    );
    gorp_telemetry::continue_trace(&span, response.trace_context.as_deref());
    span
}

/// Handles one bind request, answering with its result.
async fn bind_one(state: &GrpcState, caller: &Principal, request: pb::BindRequest) -> pb::BindResult {
    let outcome = async {
        match request.kind {
            Some(pb::bind_request::Kind::Bind(bind)) => {
                let channel = channel_from_pb(bind.channel)?;
                require_platform(caller, &channel.platform)?;
                if *caller != Principal::Admin {
                    // A gateway token binds only within its platform's DISPATCH scope, as `!join` does.
                    state.orchestrator.check_reach(&channel, &bind.session).await?;
                }
                state.orchestrator.bind(&channel, &bind.session).await?;
            }
            Some(pb::bind_request::Kind::Unbind(unbind)) => {
                let channel = channel_from_pb(unbind.channel)?;
                require_platform(caller, &channel.platform)?;
                state.orchestrator.unbind(&channel).await?;
            }
            None => return Err(Status::invalid_argument("bind request needs bind or unbind")),
        }
        Ok::<_, Status>(())
    }
    .await;
    let (ok, error_code, error) = match outcome {
        Ok(()) => (true, 0, String::new()),
        Err(status) => (false, status.code() as i32, status.message().to_owned()),
    };
    pb::BindResult { request_id: request.request_id, ok, error_code, error }
}

fn bind_event(kind: pb::bind_event::Kind) -> Result<pb::BindEvent, Status> {
    Ok(pb::BindEvent { kind: Some(kind) })
}

async fn bindings_feed(
    state: GrpcState,
    caller: Principal,
    mut requests: Streaming<pb::BindRequest>,
    tx: mpsc::Sender<Result<pb::BindEvent, Status>>,
) -> Result<(), Status> {
    let mut activity = state.orchestrator.bus().watch();
    for (channel, session) in state.orchestrator.all_bindings() {
        if caller.may_act_for(&channel.platform) {
            let change = binding_change(&channel, Some(&session), true);
            if tx.send(bind_event(pb::bind_event::Kind::Change(change))).await.is_err() {
                return Ok(());
            }
        }
    }
    let mut requests_open = true;
    loop {
        let event = tokio::select! {
            request = requests.message(), if requests_open => match request.map_err(stream_error)? {
                Some(request) => pb::bind_event::Kind::Result(bind_one(&state, &caller, request).await),
                None => { requests_open = false; continue }
            },
            activity = activity.recv() => match activity {
                Ok(Activity::Binding { channel, session }) if caller.may_act_for(&channel.platform) => {
                    pb::bind_event::Kind::Change(binding_change(&channel, session.as_deref(), false))
                }
                Ok(_) => continue,
                Err(RecvError::Lagged(missed)) => {
                    return Err(Status::data_loss(format!("binding feed fell {missed} events behind; reopen the stream for a fresh snapshot")));
                }
                Err(RecvError::Closed) => return Err(Status::unavailable("gorpd is shutting down")),
            },
        };
        if tx.send(bind_event(event)).await.is_err() {
            return Ok(());
        }
    }
}

#[tonic::async_trait]
impl Bus for BusService {
    type PublishStream = ServerStream<pb::PublishAck>;
    type SubscribeResponsesStream = ServerStream<pb::Delivery>;
    type BindChannelStream = ServerStream<pb::BindEvent>;
    type DownloadAttachmentStream = ServerStream<pb::DownloadChunk>;

    async fn publish(
        &self,
        request: Request<Streaming<pb::PublishRequest>>,
    ) -> Result<Response<Self::PublishStream>, Status> {
        let (caller, revoked) = (principal(&request)?, revocation(&request));
        let requests = request.into_inner();
        let state = self.state.clone();
        Ok(Response::new(spawn_stream(&self.state, revoked, move |tx| publish_stream(state, caller, requests, tx))))
    }

    async fn subscribe_responses(
        &self,
        request: Request<Streaming<pb::SubscribeRequest>>,
    ) -> Result<Response<Self::SubscribeResponsesStream>, Status> {
        let (caller, revoked) = (principal(&request)?, revocation(&request));
        let requests = request.into_inner();
        let state = self.state.clone();
        Ok(Response::new(spawn_stream(&self.state, revoked, move |tx| deliver(state, caller, requests, tx))))
    }

    async fn bind_channel(
        &self,
        request: Request<Streaming<pb::BindRequest>>,
    ) -> Result<Response<Self::BindChannelStream>, Status> {
        let (caller, revoked) = (principal(&request)?, revocation(&request));
        let requests = request.into_inner();
        let state = self.state.clone();
        Ok(Response::new(spawn_stream(&self.state, revoked, move |tx| bindings_feed(state, caller, requests, tx))))
    }

    async fn upload_attachment(
        &self,
        request: Request<Streaming<pb::UploadChunk>>,
    ) -> Result<Response<pb::UploadResult>, Status> {
        principal(&request)?;
        Ok(Response::new(super::files::upload(&self.state, request.into_inner()).await?))
    }

    async fn download_attachment(
        &self,
        request: Request<pb::DownloadRequest>,
    ) -> Result<Response<Self::DownloadAttachmentStream>, Status> {
        let (caller, revoked) = (principal(&request)?, revocation(&request));
        let request = request.into_inner();
        let state = self.state.clone();
        Ok(Response::new(spawn_stream(&self.state, revoked, move |tx| {
            super::files::download(state, caller, request, tx)
        })))
    }
}
