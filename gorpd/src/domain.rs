//! Domain types shared by the store, the bus and the orchestrator: channels,
//! inbound messages, final responses, chunks and activity events. They sit
//! below every module that uses them and depend on none of them; protobuf
//! never appears here (the gRPC edge converts).

use chrono::{DateTime, Utc};
use std::fmt;

/// A chat channel on one platform, e.g. `telegram` / `12345`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct ChannelRef {
    /// Platform id (`web`, `telegram`, …).
    pub platform: String,
    /// The platform's own channel id.
    pub channel_id: String,
}

impl ChannelRef {
    /// Builds a channel reference.
    pub fn new(platform: impl Into<String>, channel_id: impl Into<String>) -> Self {
        Self { platform: platform.into(), channel_id: channel_id.into() }
    }
}

impl fmt::Display for ChannelRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.platform, self.channel_id)
    }
}

/// One platform message: the channel it is in and the platform's id for it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MessageRef {
    /// Its channel.
    pub channel: ChannelRef,
    /// The platform's message id.
    pub message_id: String,
}

/// A stored file carried by a message or a response: its bytes live once in
/// the data directory under their SHA-256 (see `crate::files`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// The file's name, without directories.
    pub name: String,
    /// Its media type (`image/png`).
    pub media_type: String,
    /// Its size in bytes.
    pub size: u64,
    /// Lowercase hex SHA-256 of its bytes: where it is stored.
    pub sha256: String,
}

impl Attachment {
    /// Whether it is an image (`image/*`).
    pub fn is_image(&self) -> bool {
        self.media_type.starts_with("image/")
    }
}

/// The kind of a final response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseKind {
    /// A complete answer.
    Complete,
    /// The turn failed.
    Error,
    /// A notice from gorpd itself.
    Notice,
}

impl ResponseKind {
    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Complete => "complete",
            Self::Error => "error",
            Self::Notice => "notice",
        }
    }

    /// Parses a stored name; unknown names read as notices.
    pub fn parse(value: &str) -> Self {
        match value {
            "complete" => Self::Complete,
            "error" => Self::Error,
            _ => Self::Notice,
        }
    }
}

/// Where a permission request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PermissionState {
    /// Waiting for `!approve` / `!deny`.
    Pending,
    /// Approved by someone.
    Approved,
    /// Denied by someone.
    Denied,
    /// Nobody answered in time; denied.
    TimedOut,
    /// The turn ended first (cancelled, crashed, gorpd restarted).
    Cancelled,
}

/// One choice an agent offers in a permission request.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PermissionOption {
    /// The agent's id for the choice.
    pub id: String,
    /// What to show.
    pub label: String,
    /// `allow_once`, `allow_always`, `reject_once` or `reject_always`.
    pub kind: String,
}

/// The structured part of a response about a permission request.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PermissionNotice {
    /// Short id to answer with (`!approve <id>`).
    pub id: String,
    /// What the agent wants to do.
    pub title: String,
    /// The agent's choices.
    pub options: Vec<PermissionOption>,
    /// Pending, or how it was resolved.
    pub state: PermissionState,
    /// Who resolved it (sender and channel), if someone did.
    pub resolved_by: Option<String>,
}

/// A final response to be committed to the response log.
#[derive(Debug, Clone)]
pub struct NewResponse {
    /// Shared with the chunks streamed before it.
    pub response_id: String,
    /// The producing session; `None` for DISPATCH replies.
    pub session: Option<String>,
    /// Complete, error or notice.
    pub kind: ResponseKind,
    /// The text.
    pub text: String,
    /// Channels the response is meant for.
    pub targets: Vec<ChannelRef>,
    /// The inbound message this answers (a reply only in its channel).
    pub reply_to: Option<MessageRef>,
    /// A permission request (or its outcome) this response is about.
    pub permission: Option<PermissionNotice>,
    /// Files that come with it (stored before the response is committed).
    pub attachments: Vec<Attachment>,
    /// W3C `traceparent` of the span it belongs to (see `gorp_telemetry::context`):
    /// the message's trace carried across the durable hop; `None` without trace export.
    pub trace_context: Option<String>,
}

/// A committed final response with its durable `seq`.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    /// Position in the response log.
    pub seq: u64,
    /// Shared with the chunks streamed before it.
    pub response_id: String,
    /// The producing session; `None` for DISPATCH replies.
    pub session: Option<String>,
    /// Complete, error or notice.
    pub kind: ResponseKind,
    /// The text.
    pub text: String,
    /// Channels the response is meant for.
    pub targets: Vec<ChannelRef>,
    /// The inbound message this answers (a reply only in its channel).
    pub reply_to: Option<MessageRef>,
    /// A permission request (or its outcome) this response is about.
    pub permission: Option<PermissionNotice>,
    /// Files that come with it.
    pub attachments: Vec<Attachment>,
    /// Commit time.
    pub created_at: DateTime<Utc>,
    /// W3C `traceparent` of the span it belongs to (see `gorp_telemetry::context`):
    /// the message's trace carried across the durable hop; `None` without trace export.
    pub trace_context: Option<String>,
}

impl Response {
    /// Whether any target is on `platform`.
    pub fn targets_platform(&self, platform: &str) -> bool {
        self.targets.iter().any(|t| t.platform == platform)
    }

    /// A copy whose targets are only those on `platform`.
    pub fn for_platform(&self, platform: &str) -> Response {
        let mut copy = self.clone();
        copy.targets.retain(|t| t.platform == platform);
        copy
    }
}

/// A live piece of an answer in progress (serialised: replicas pass them on).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Chunk {
    /// The answer it belongs to.
    pub response_id: String,
    /// The producing session.
    pub session: String,
    /// This chunk's text.
    pub text: String,
    /// A progress line (tool call, plan) rather than part of the answer.
    pub progress: bool,
    /// Channels the answer is meant for.
    pub targets: Vec<ChannelRef>,
    /// The inbound message the answer is for.
    pub reply_to: Option<MessageRef>,
}

impl Chunk {
    /// A copy whose targets are only those on `platform`, or `None` if none are.
    pub fn for_platform(&self, platform: &str) -> Option<Chunk> {
        let targets: Vec<_> = self.targets.iter().filter(|t| t.platform == platform).cloned().collect();
        (!targets.is_empty()).then(|| Chunk { targets, ..self.clone() })
    }
}

/// An accepted inbound message.
#[derive(Debug, Clone, PartialEq)]
pub struct Inbound {
    /// Store id.
    pub id: i64,
    /// Where it came from.
    pub channel: ChannelRef,
    /// The platform's message id (`None` for tell/broadcast).
    pub message_id: Option<String>,
    /// Author.
    pub sender: String,
    /// Text.
    pub text: String,
    /// Files sent with it.
    pub attachments: Vec<Attachment>,
    /// W3C `traceparent` of the span it belongs to (see `gorp_telemetry::context`):
    /// the message's trace carried across the durable hop; `None` without trace export.
    pub trace_context: Option<String>,
}

impl Inbound {
    /// This message as something to reply to; `None` for tell/broadcast.
    pub fn reply_ref(&self) -> Option<MessageRef> {
        let message_id = self.message_id.clone()?;
        Some(MessageRef { channel: self.channel.clone(), message_id })
    }
}

/// One piece of bus activity, for `Watch` and the admin views.
#[derive(Debug, Clone)]
pub enum Activity {
    /// An inbound message was accepted.
    Message(Inbound),
    /// A final response was committed.
    Response(std::sync::Arc<Response>),
    /// A channel was bound (`Some(session)`) or unbound (`None`).
    Binding {
        /// The channel.
        channel: ChannelRef,
        /// Its session now, `None` when unbound.
        session: Option<String>,
    },
    /// A session was created (`true`) or deleted (`false`).
    Session {
        /// The session.
        name: String,
        /// Created (`true`) or deleted (`false`).
        created: bool,
    },
}
