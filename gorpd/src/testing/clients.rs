//! Client helpers for tests: stream wrappers for the Bus RPCs, a `Chat` that
//! publishes as one platform and waits for the answers, request builders, and
//! polling with an upper bound (so a hang fails a test instead of blocking CI).
#![allow(missing_docs)]

use super::BusApi;
use gorp_proto::v1 as pb;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Streaming;

/// Upper bound for anything a test waits for; a hang fails instead of blocking CI.
pub const WAIT: Duration = Duration::from_secs(15);

pub async fn within<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, future).await.expect("timed out waiting")
}

pub fn channel(platform: &str, id: &str) -> pb::Channel {
    pb::Channel { platform: platform.into(), channel_id: id.into() }
}

pub fn message(platform: &str, channel_id: &str, message_id: &str, text: &str) -> pb::PublishRequest {
    pb::PublishRequest {
        channel: Some(channel(platform, channel_id)),
        message_id: message_id.into(),
        sender_id: "u1".into(),
        sender_name: "alice".into(),
        text: text.into(),
        attachments: Vec::new(),
        traceparent: String::new(),
    }
}

/// An open Publish stream.
pub struct Publisher {
    requests: mpsc::Sender<pb::PublishRequest>,
    acks: Streaming<pb::PublishAck>,
}

impl Publisher {
    pub async fn open(bus: &mut BusApi) -> Result<Self, tonic::Status> {
        let (requests, rx) = mpsc::channel(1024);
        let acks = bus.publish(ReceiverStream::new(rx)).await?.into_inner();
        Ok(Self { requests, acks })
    }

    /// Sends without waiting for the ack.
    pub async fn send(&mut self, request: pb::PublishRequest) {
        self.requests.send(request).await.expect("publish stream open");
    }

    /// The next ack, or the status that ended the stream.
    pub async fn ack(&mut self) -> Result<pb::PublishAck, tonic::Status> {
        within(self.acks.message()).await.and_then(|a| a.ok_or_else(|| tonic::Status::cancelled("stream ended")))
    }

    pub async fn publish(&mut self, request: pb::PublishRequest) -> pb::PublishAck {
        self.send(request).await;
        self.ack().await.expect("ack")
    }
}

/// An open SubscribeResponses stream.
pub struct Subscriber {
    requests: mpsc::Sender<pb::SubscribeRequest>,
    deliveries: Streaming<pb::Delivery>,
}

impl Subscriber {
    pub async fn open(
        bus: &mut BusApi,
        platform: &str,
        gateway_id: &str,
        cursor: Option<u64>,
    ) -> Result<Self, tonic::Status> {
        let (requests, rx) = mpsc::channel(1024);
        let hello = pb::SubscribeHello { gateway_id: gateway_id.into(), platform: platform.into(), cursor };
        requests.send(pb::SubscribeRequest { kind: Some(pb::subscribe_request::Kind::Hello(hello)) }).await.unwrap();
        let deliveries = bus.subscribe_responses(ReceiverStream::new(rx)).await?.into_inner();
        Ok(Self { requests, deliveries })
    }

    /// Opens a subscription with nothing to replay and waits until it is live.
    pub async fn open_live(bus: &mut BusApi, platform: &str, gateway_id: &str) -> Self {
        let mut subscriber = Self::open(bus, platform, gateway_id, None).await.expect("subscribe");
        match subscriber.next().await.expect("delivery").kind {
            Some(pb::delivery::Kind::CaughtUp(_)) => subscriber,
            other => panic!("expected nothing to replay, got {other:?}"),
        }
    }

    /// The next delivery, or the status that ended the stream.
    pub async fn next(&mut self) -> Result<pb::Delivery, tonic::Status> {
        within(self.deliveries.message()).await.and_then(|d| d.ok_or_else(|| tonic::Status::cancelled("stream ended")))
    }

    /// The next final response, skipping chunks.
    pub async fn response(&mut self) -> pb::Response {
        loop {
            match self.next().await.expect("delivery").kind {
                Some(pb::delivery::Kind::Response(response)) => return response,
                _ => continue,
            }
        }
    }

    /// Whether a final response arrives within `wait`.
    pub async fn response_within(&mut self, wait: Duration) -> Option<pb::Response> {
        tokio::time::timeout(wait, async {
            loop {
                match self.deliveries.message().await {
                    Ok(Some(pb::Delivery { kind: Some(pb::delivery::Kind::Response(r)) })) => return Some(r),
                    Ok(Some(_)) => continue,
                    _ => return None,
                }
            }
        })
        .await
        .ok()
        .flatten()
    }

    pub async fn ack(&mut self, seq: u64) {
        assert!(self.try_ack(seq).await, "subscribe stream open");
    }

    /// Sends a health report as a gateway does.
    pub async fn report_health(&mut self, undecryptable_since_start: u64, waiting_for_keys: u64) {
        let health = pb::GatewayHealth { undecryptable_since_start, waiting_for_keys };
        let request = pb::SubscribeRequest { kind: Some(pb::subscribe_request::Kind::Health(health)) };
        self.requests.send(request).await.expect("subscribe stream open");
    }

    /// Acks `seq`; false when the stream has ended (gorpd went away).
    pub async fn try_ack(&mut self, seq: u64) -> bool {
        let ack = pb::SubscribeRequest { kind: Some(pb::subscribe_request::Kind::Ack(pb::SubscribeAck { seq })) };
        self.requests.send(ack).await.is_ok()
    }
}

/// A chat platform in a test: publishes as `platform` and reads its deliveries.
pub struct Chat {
    pub platform: String,
    pub publisher: Publisher,
    pub subscriber: Subscriber,
    next_id: u64,
    /// Responses read while waiting for another one, in order.
    unclaimed: std::collections::VecDeque<pb::Response>,
}

impl Chat {
    pub async fn open(bus: &mut BusApi, platform: &str) -> Self {
        let mut subscriber = Subscriber::open(bus, platform, platform, None).await.expect("subscribe");
        // Keep what is replayed for `response`, and start once the stream is live.
        let mut unclaimed = std::collections::VecDeque::new();
        loop {
            match subscriber.next().await.expect("delivery").kind {
                Some(pb::delivery::Kind::CaughtUp(_)) => break,
                Some(pb::delivery::Kind::Response(response)) => unclaimed.push_back(response),
                _ => {}
            }
        }
        let publisher = Publisher::open(bus).await.expect("publish");
        Self { platform: platform.into(), publisher, subscriber, next_id: 0, unclaimed }
    }

    /// Publishes `text` in `channel_id`; returns the message id.
    pub async fn send(&mut self, channel_id: &str, text: &str) -> String {
        self.send_with(channel_id, text, Vec::new()).await
    }

    /// Publishes `text` with `attachments` in `channel_id`; returns the message id.
    pub async fn send_with(&mut self, channel_id: &str, text: &str, attachments: Vec<pb::Attachment>) -> String {
        self.next_id += 1;
        // Unique across restarts of gorpd, like a real platform's message ids.
        let id = format!("{}-{}-{}", self.platform, self.next_id, uuid::Uuid::new_v4());
        let request = pb::PublishRequest { attachments, ..message(&self.platform, channel_id, &id, text) };
        let ack = self.publisher.publish(request).await;
        assert_eq!(ack.status, pb::PublishStatus::Accepted as i32, "{ack:?}");
        id
    }

    /// Publishes `text` and returns the final response that answers it (acked).
    pub async fn say(&mut self, channel_id: &str, text: &str) -> pb::Response {
        self.say_with(channel_id, text, Vec::new()).await
    }

    /// Publishes `text` with `attachments` and returns the final response that answers it (acked).
    pub async fn say_with(&mut self, channel_id: &str, text: &str, attachments: Vec<pb::Attachment>) -> pb::Response {
        let id = self.send_with(channel_id, text, attachments).await;
        if let Some(at) = self.unclaimed.iter().position(|r| r.in_reply_to == id) {
            return self.unclaimed.remove(at).expect("position is valid");
        }
        loop {
            let response = self.subscriber.response().await;
            self.subscriber.ack(response.seq).await;
            if response.in_reply_to == id {
                return response;
            }
            self.unclaimed.push_back(response);
        }
    }

    /// The next final response not claimed by `say` (acked).
    pub async fn response(&mut self) -> pb::Response {
        if let Some(response) = self.unclaimed.pop_front() {
            return response;
        }
        let response = self.subscriber.response().await;
        self.subscriber.ack(response.seq).await;
        response
    }

    /// The text of the answer to `text`.
    pub async fn ask(&mut self, channel_id: &str, text: &str) -> String {
        self.say(channel_id, text).await.text
    }
}

pub fn create(name: &str) -> pb::CreateSessionRequest {
    pb::CreateSessionRequest { name: name.into(), workspace: String::new(), agent: String::new() }
}

pub fn bind(platform: &str, id: &str, session: &str) -> pb::BindSessionRequest {
    pb::BindSessionRequest { channel: Some(channel(platform, id)), session: session.into() }
}

pub fn tell(session: &str, text: &str) -> pb::TellRequest {
    pb::TellRequest { session: session.into(), text: text.into(), attachments: Vec::new() }
}

/// Polls `check` every 10 ms until it returns `Some`, failing after [`WAIT`].
pub async fn eventually<T, F, Fut>(mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    within(async {
        loop {
            if let Some(value) = check().await {
                return value;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
}

/// Polls `condition` every 10 ms until it holds, failing after [`WAIT`].
pub async fn until(mut condition: impl FnMut() -> bool) {
    eventually(|| std::future::ready(condition().then_some(()))).await
}

/// Waits until `session`'s status satisfies `done`.
pub async fn wait_for_session(control: &super::Control, session: &str, done: impl Fn(&pb::Session) -> bool) {
    eventually(|| {
        let mut control = control.clone();
        let request = pb::GetSessionRequest { name: session.into() };
        let done = &done;
        async move {
            let session = control.get_session(request).await.unwrap().into_inner();
            done(&session).then_some(())
        }
    })
    .await
}

/// Waits until a session reports `state`.
pub async fn wait_for_state(control: &super::Control, session: &str, state: &str) {
    wait_for_session(control, session, |s| s.state == state).await
}

/// Waits until `gateway_id` is listed and satisfies `done`.
pub async fn wait_for_gateway(control: &super::Control, gateway_id: &str, done: impl Fn(&pb::Gateway) -> bool) {
    eventually(|| {
        let mut control = control.clone();
        let done = &done;
        async move {
            let gateways = control.list_gateways(pb::ListGatewaysRequest {}).await.unwrap().into_inner().gateways;
            gateways.iter().any(|g| g.gateway_id == gateway_id && done(g)).then_some(())
        }
    })
    .await
}
