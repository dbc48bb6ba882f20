//! The client's own types for what crosses the bus, converted from and to
//! the generated `gorp.v1` messages at this one place, so callers never
//! need `gorp_proto` for common use.

use gorp_proto::v1 as pb;

/// A chat channel on one platform (a Telegram chat, a Slack channel, a
/// Matrix room, a web chat tab: platform `web`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Channel {
    /// Platform id, 1-32 characters of `[a-z0-9_-]`.
    pub platform: String,
    /// The platform's own id for the channel.
    pub channel_id: String,
}

impl Channel {
    /// The channel `channel_id` of `platform`.
    pub fn new(platform: impl Into<String>, channel_id: impl Into<String>) -> Self {
        Self { platform: platform.into(), channel_id: channel_id.into() }
    }
}

impl std::fmt::Display for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.platform, self.channel_id)
    }
}

impl From<Channel> for pb::Channel {
    fn from(channel: Channel) -> Self {
        Self { platform: channel.platform, channel_id: channel.channel_id }
    }
}

impl From<pb::Channel> for Channel {
    fn from(channel: pb::Channel) -> Self {
        Self { platform: channel.platform, channel_id: channel.channel_id }
    }
}

/// One inbound chat message to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Where it was written.
    pub channel: Channel,
    /// The platform's id for it; gorpd drops a second message with the same
    /// `(platform, message_id)`, so a resend never reaches an agent twice.
    pub message_id: String,
    /// The text (not blank, at most gorpd's limit, 64 KiB by default).
    pub text: String,
    /// The author's platform id, if known.
    pub sender_id: Option<String>,
    /// The author's display name, if known.
    pub sender_name: Option<String>,
    /// Files sent with it (with files, the text may be empty).
    pub attachments: Vec<crate::Attachment>,
}

impl Message {
    /// A message without author details.
    pub fn new(channel: Channel, message_id: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            channel,
            message_id: message_id.into(),
            text: text.into(),
            sender_id: None,
            sender_name: None,
            attachments: Vec::new(),
        }
    }

    /// Adds files.
    pub fn attach(mut self, attachments: impl IntoIterator<Item = crate::Attachment>) -> Self {
        self.attachments.extend(attachments);
        self
    }

    /// Names the author.
    pub fn sender(mut self, id: impl Into<String>, name: impl Into<String>) -> Self {
        self.sender_id = Some(id.into());
        self.sender_name = Some(name.into());
        self
    }

    pub(crate) fn to_pb(&self) -> pb::PublishRequest {
        pb::PublishRequest {
            channel: Some(self.channel.clone().into()),
            message_id: self.message_id.clone(),
            sender_id: self.sender_id.clone().unwrap_or_default(),
            sender_name: self.sender_name.clone().unwrap_or_default(),
            text: self.text.clone(),
            attachments: self.attachments.iter().cloned().map(pb::Attachment::from).collect(),
            // The span this is published in, when the caller exports traces.
            traceparent: gorp_telemetry::current_traceparent().unwrap_or_default(),
        }
    }
}

/// How gorpd took a published message (a refusal is [`crate::Error::Rejected`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Published {
    /// Committed; it will be handled.
    Accepted,
    /// Accepted earlier under the same id (e.g. before a reconnect); nothing new was stored.
    Duplicate,
}

/// What kind of final response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseKind {
    /// A complete answer, from an agent or from DISPATCH.
    Complete,
    /// The turn failed; the text says why.
    Error,
    /// A notice from gorpd itself (a turn interrupted by a restart, a permission request, ...).
    Notice,
}

/// One final response from the durable response log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Position in the response log: strictly increasing; acknowledge it once handled.
    pub seq: u64,
    /// Identifies the answer; the chunks streamed before it carry the same id.
    pub response_id: String,
    /// The session that answered; empty for DISPATCH's replies.
    pub session: String,
    /// True for DISPATCH's reply to a command (it targets only the asking channel).
    pub dispatch: bool,
    /// Complete, error or notice.
    pub kind: ResponseKind,
    /// The text.
    pub text: String,
    /// Channels it is meant for.
    pub targets: Vec<Channel>,
    /// The inbound message it answers, with its channel, when there is one.
    pub reply_to: Option<(Channel, String)>,
    /// When gorpd committed it, RFC 3339.
    pub created_at: String,
    /// Files that come with it, by reference (download them with [`crate::Client::download`]).
    pub attachments: Vec<crate::Attachment>,
}

impl From<pb::Response> for Response {
    fn from(r: pb::Response) -> Self {
        let kind = match pb::ResponseKind::try_from(r.kind) {
            Ok(pb::ResponseKind::Error) => ResponseKind::Error,
            Ok(pb::ResponseKind::Notice) => ResponseKind::Notice,
            _ => ResponseKind::Complete,
        };
        Self {
            seq: r.seq,
            response_id: r.response_id,
            session: r.session,
            dispatch: r.dispatch,
            kind,
            text: r.text,
            targets: r.targets.into_iter().map(Channel::from).collect(),
            reply_to: message_ref(r.reply_to),
            created_at: r.created_at,
            attachments: r.attachments.into_iter().map(crate::Attachment::from).collect(),
        }
    }
}

/// A streamed piece of an answer in progress: live only, best effort.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// The answer it belongs to (its final [`Response`] has the same id).
    pub response_id: String,
    /// The session answering.
    pub session: String,
    /// This piece's text; append it to the earlier pieces of the same answer.
    pub text: String,
    /// True for a progress line (a tool call, a plan step), not part of the answer.
    pub progress: bool,
    /// Channels the answer is meant for.
    pub targets: Vec<Channel>,
    /// The inbound message the answer is for, when there is one.
    pub reply_to: Option<(Channel, String)>,
}

impl From<pb::Chunk> for Chunk {
    fn from(c: pb::Chunk) -> Self {
        Self {
            progress: c.kind == pb::ChunkKind::Progress as i32,
            response_id: c.response_id,
            session: c.session,
            text: c.text,
            targets: c.targets.into_iter().map(Channel::from).collect(),
            reply_to: message_ref(c.reply_to),
        }
    }
}

fn message_ref(reference: Option<pb::MessageRef>) -> Option<(Channel, String)> {
    reference.and_then(|r| Some((r.channel?.into(), r.message_id)))
}
