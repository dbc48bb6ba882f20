//! A `Bus.SubscribeResponses` stream as a gateway uses it: hello first, then
//! an ack for every final response it receives.

use crate::client::Bus;
use anyhow::{Context, Result, anyhow};
use gorp_proto::v1 as pb;
use pb::delivery::Kind;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;

/// One open subscription.
pub(crate) struct Subscriber {
    requests: mpsc::UnboundedSender<pb::SubscribeRequest>,
    deliveries: tonic::Streaming<pb::Delivery>,
}

impl Subscriber {
    /// Sends the hello for `platform` as `gateway_id` (replaying after `cursor`, if given).
    pub(crate) async fn open(bus: &mut Bus, platform: &str, gateway_id: &str, cursor: Option<u64>) -> Result<Self> {
        // Unbounded: acks must never wait while deliveries are being read.
        let (requests, receiver) = mpsc::unbounded_channel();
        let hello = pb::SubscribeHello { gateway_id: gateway_id.to_owned(), platform: platform.to_owned(), cursor };
        requests.send(pb::SubscribeRequest { kind: Some(pb::subscribe_request::Kind::Hello(hello)) })?;
        let what = format!("SubscribeResponses for {platform} as {gateway_id}");
        let call = bus.subscribe_responses(UnboundedReceiverStream::new(receiver));
        let deliveries = crate::client::bounded(&what, call).await?.into_inner();
        Ok(Self { requests, deliveries })
    }

    /// The next delivery within `wait`; `Ok(None)` when none came in time.
    pub(crate) async fn next(&mut self, wait: Duration) -> Result<Option<Kind>> {
        match tokio::time::timeout(wait, self.deliveries.message()).await {
            Err(_) => Ok(None),
            Ok(Ok(Some(delivery))) => delivery.kind.map(Some).context("a delivery without content"),
            Ok(Ok(None)) => Err(anyhow!("the subscription ended")),
            Ok(Err(status)) => Err(anyhow!("the subscription failed: {status}")),
        }
    }

    /// Acknowledges every delivery up to `seq`.
    pub(crate) fn ack(&self, seq: u64) -> Result<()> {
        let ack = pb::SubscribeRequest { kind: Some(pb::subscribe_request::Kind::Ack(pb::SubscribeAck { seq })) };
        self.requests.send(ack).map_err(|_| anyhow!("the subscription's request stream closed"))
    }

    /// Reads until the first CaughtUp (acknowledging what is replayed); fails after `wait` of silence.
    pub(crate) async fn caught_up(&mut self, wait: Duration) -> Result<Vec<pb::Response>> {
        let mut replayed = Vec::new();
        loop {
            match self.next(wait).await? {
                None => return Err(anyhow!("no CaughtUp within {wait:?} of the last delivery")),
                Some(Kind::CaughtUp(_)) => return Ok(replayed),
                Some(Kind::Response(response)) => {
                    self.ack(response.seq)?;
                    replayed.push(response);
                }
                Some(Kind::Chunk(_)) => {}
            }
        }
    }
}

/// The id of the message a response answers: `reply_to`, else `in_reply_to`.
pub(crate) fn answered_id(response: &pb::Response) -> Option<&str> {
    match &response.reply_to {
        Some(reply_to) if !reply_to.message_id.is_empty() => Some(&reply_to.message_id),
        _ if !response.in_reply_to.is_empty() => Some(&response.in_reply_to),
        _ => None,
    }
}

/// The number at the end of a bench message id `<prefix>.<number>`, when the prefix matches.
pub(crate) fn message_number(id: &str, prefix: &str) -> Option<u64> {
    let (head, number) = id.rsplit_once('.')?;
    if head != prefix {
        return None;
    }
    number.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_numbers_need_the_prefix() {
        assert_eq!(message_number("run1-e2e.42", "run1-e2e"), Some(42));
        assert_eq!(message_number("other.42", "run1-e2e"), None);
        assert_eq!(message_number("run1-e2e.x", "run1-e2e"), None);
    }
}
