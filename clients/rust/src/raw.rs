//! One SubscribeResponses stream, without reconnects: the building block of
//! [`crate::Subscription`], public for programs that manage reconnects and
//! cursors themselves (the gateway runner does). Works on `gorp.v1` types.

use crate::connect::BusApi;
use futures::StreamExt;
use gorp_proto::v1 as pb;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Status, Streaming};

/// How long a closing stream keeps reading so the last acks reach gorpd
/// before the stream is reset.
const ACK_LINGER: Duration = Duration::from_millis(150);

/// An open SubscribeResponses stream.
#[derive(Debug)]
pub struct SubscribeStream {
    requests: mpsc::Sender<pb::SubscribeRequest>,
    deliveries: Streaming<pb::Delivery>,
    /// Fires once every request was handed to the transport.
    flushed: oneshot::Receiver<()>,
}

impl SubscribeStream {
    /// Opens the stream with `hello { gateway_id, platform, cursor }` (an
    /// empty gateway id means the platform; no cursor means gorpd's stored one).
    pub async fn open(bus: &mut BusApi, gateway_id: &str, platform: &str, cursor: Option<u64>) -> Result<Self, Status> {
        let hello = pb::SubscribeHello { gateway_id: gateway_id.to_owned(), platform: platform.to_owned(), cursor };
        let (requests, rx) = mpsc::channel(64);
        let (flushed_tx, flushed) = oneshot::channel();
        let _ = requests.send(pb::SubscribeRequest { kind: Some(pb::subscribe_request::Kind::Hello(hello)) }).await;
        let end = futures::stream::once(async move {
            let _ = flushed_tx.send(());
            None
        });
        let outgoing = ReceiverStream::new(rx).map(Some).chain(end).filter_map(futures::future::ready);
        let deliveries = bus.subscribe_responses(outgoing).await?.into_inner();
        Ok(Self { requests, deliveries, flushed })
    }

    /// The next delivery; `None` when gorpd ended the stream.
    pub async fn message(&mut self) -> Result<Option<pb::Delivery>, Status> {
        self.deliveries.message().await
    }

    /// Acknowledges every delivery up to and including `seq`.
    pub async fn ack(&self, seq: u64) {
        let ack = pb::SubscribeRequest { kind: Some(pb::subscribe_request::Kind::Ack(pb::SubscribeAck { seq })) };
        // A broken stream shows up as an error on the next read.
        let _ = self.requests.send(ack).await;
    }

    /// Reports the gateway's platform health (gorpd shows the latest report
    /// in its gateway list, admin page and metrics).
    pub async fn report_health(&self, health: pb::GatewayHealth) {
        let report = pb::SubscribeRequest { kind: Some(pb::subscribe_request::Kind::Health(health)) };
        // A broken stream shows up as an error on the next read.
        let _ = self.requests.send(report).await;
    }

    /// Ends our side once every queued ack was sent (waiting at most `flush`
    /// for that), reading briefly so the acks are not lost to a reset.
    pub async fn close(self, flush: Duration) {
        let Self { requests, mut deliveries, flushed } = self;
        drop(requests);
        let _ = tokio::time::timeout(flush, flushed).await;
        let _ = tokio::time::timeout(ACK_LINGER, async { while let Ok(Some(_)) = deliveries.message().await {} }).await;
    }
}
