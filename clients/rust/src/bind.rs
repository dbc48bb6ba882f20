//! The [`BindFeed`]: binding and unbinding channels over the BindChannel
//! stream, and the live feed of binding changes it carries.
//!
//! A background task reads the stream: each result goes to the call that
//! waits for it (matched by request id), each change into the feed. The feed
//! does not reconnect: when the stream ends, waiting calls fail with
//! [`Error::Closed`] and [`BindFeed::next_change`] returns `None`; open a new
//! feed (its first changes are again the snapshot of current bindings).

use crate::connect::Client;
use crate::error::Error;
use crate::types::Channel;
use gorp_proto::v1 as pb;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, Status, Streaming};

/// A channel's binding changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindingChange {
    /// The channel.
    pub channel: Channel,
    /// The session it is bound to now; `None` when it was unbound.
    pub session: Option<String>,
    /// True for the snapshot of current bindings sent when the feed opens.
    pub initial: bool,
}

/// Calls waiting for their result, by request id.
type Waiting = Arc<Mutex<HashMap<String, oneshot::Sender<Result<(), Error>>>>>;

/// Binds and unbinds channels, and follows every binding change.
///
/// ```no_run
/// # async fn example(client: gorp_client::Client) -> Result<(), gorp_client::Error> {
/// use gorp_client::Channel;
/// let mut feed = client.bind_feed().await?;
/// feed.bind(Channel::new("myapp", "room-1"), "research").await?;
/// while let Some(change) = feed.next_change().await {
///     println!("{} -> {:?}", change.channel, change.session);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct BindFeed {
    requests: mpsc::Sender<pb::BindRequest>,
    waiting: Waiting,
    changes: mpsc::Receiver<BindingChange>,
    next_id: AtomicU64,
    task: JoinHandle<()>,
}

impl BindFeed {
    pub(crate) async fn open(client: &Client) -> Result<Self, Error> {
        let (requests, rx) = mpsc::channel(64);
        let events = client.bus_api().bind_channel(ReceiverStream::new(rx)).await?.into_inner();
        let waiting = Waiting::default();
        let (changes_tx, changes) = mpsc::channel(256);
        let task = tokio::spawn(read(events, waiting.clone(), changes_tx));
        Ok(Self { requests, waiting, changes, next_id: AtomicU64::new(1), task })
    }

    /// Binds `channel` to `session` (replacing an earlier binding of the channel).
    pub async fn bind(&self, channel: Channel, session: impl Into<String>) -> Result<(), Error> {
        let bind = pb::Bind { channel: Some(channel.into()), session: session.into() };
        self.call(pb::bind_request::Kind::Bind(bind)).await
    }

    /// Removes `channel`'s binding.
    pub async fn unbind(&self, channel: Channel) -> Result<(), Error> {
        self.call(pb::bind_request::Kind::Unbind(pb::Unbind { channel: Some(channel.into()) })).await
    }

    /// The next binding change; `None` once the stream ended.
    pub async fn next_change(&mut self) -> Option<BindingChange> {
        self.changes.recv().await
    }

    async fn call(&self, kind: pb::bind_request::Kind) -> Result<(), Error> {
        let request_id = self.next_id.fetch_add(1, Ordering::Relaxed).to_string();
        let (done, result) = oneshot::channel();
        self.waiting.lock().expect("the lock is never poisoned").insert(request_id.clone(), done);
        let request = pb::BindRequest { request_id, kind: Some(kind) };
        self.requests.send(request).await.map_err(|_| Error::Closed("the bind feed"))?;
        result.await.unwrap_or(Err(Error::Closed("the bind feed")))
    }
}

impl Drop for BindFeed {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads the stream until it ends, answering waiting calls and forwarding changes.
async fn read(mut events: Streaming<pb::BindEvent>, waiting: Waiting, changes: mpsc::Sender<BindingChange>) {
    while let Ok(Some(event)) = events.message().await {
        match event.kind {
            Some(pb::bind_event::Kind::Result(result)) => {
                let done = waiting.lock().expect("the lock is never poisoned").remove(&result.request_id);
                let outcome = match result.ok {
                    true => Ok(()),
                    false => Err(Status::new(Code::from_i32(result.error_code), result.error).into()),
                };
                if let Some(done) = done {
                    let _ = done.send(outcome);
                }
            }
            Some(pb::bind_event::Kind::Change(change)) => {
                let Some(channel) = change.channel else { continue };
                let session = Some(change.session).filter(|s| !s.is_empty());
                let change = BindingChange { channel: channel.into(), session, initial: change.initial };
                // A feed nobody reads must not stop the results of bind calls.
                let _ = changes.try_send(change);
            }
            None => {}
        }
    }
    // Dropping the waiters fails their calls with Closed.
    waiting.lock().expect("the lock is never poisoned").clear();
}
