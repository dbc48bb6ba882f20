//! The seam between the shared runner and one chat platform.
//!
//! A platform crate implements [`Platform`]: an inbound half (`listen`) that
//! turns platform events into [`Inbound`] messages and hands them to the
//! runner through a [`ListenContext`], and an outbound half (`deliver`,
//! `edit`) that turns final responses and streaming previews into platform
//! messages. The runner owns everything else: gorpd, acks, retries, chunking,
//! throttling and allow-lists. Types here never mention protobuf.

use crate::listen::ListenContext;
use crate::pacing::Rate;
use std::future::Future;
use std::time::Duration;

/// What a platform can take in one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest message, in characters (Telegram: 4096).
    pub max_chars: usize,
    /// Whether [`Platform::edit`] works, so streamed chunks can be shown as
    /// one message edited in place.
    pub edits: bool,
}

/// One message written by a user on the platform.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Inbound {
    /// The platform's id for the channel (chat, room, DM).
    pub channel_id: String,
    /// The platform's id for this message, stable across re-reads: gorpd
    /// de-duplicates on it.
    pub message_id: String,
    /// The platform's id for the author; what allow-lists match.
    pub sender_id: String,
    /// A display name for the author.
    pub sender_name: String,
    /// The text (may be empty when the message carries files).
    pub text: String,
    /// Files that came with it, already uploaded to gorpd with
    /// [`ListenContext::upload`].
    pub files: Vec<InboundFile>,
}

/// A file of a user's message, uploaded to gorpd (content addressed, so
/// uploading the same bytes again, e.g. after a restart, stores nothing new).
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct InboundFile {
    /// Its name.
    pub name: String,
    /// Its media type (`image/jpeg`).
    pub media_type: String,
    /// Its size in bytes.
    pub size: u64,
    /// Lowercase hex SHA-256: how gorpd names it.
    pub sha256: String,
}

/// A file to send with a response, with its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundFile {
    /// Its name.
    pub name: String,
    /// Its media type (`image/png`).
    pub media_type: String,
    /// The bytes (at most [`Platform::max_file_bytes`]).
    pub bytes: std::sync::Arc<[u8]>,
}

impl OutboundFile {
    /// Whether it is an image (`image/*`).
    pub fn is_image(&self) -> bool {
        self.media_type.starts_with("image/")
    }

    /// Whether it is audio (`audio/*`).
    pub fn is_audio(&self) -> bool {
        self.media_type.starts_with("audio/")
    }
}

/// What a final response is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboundKind {
    /// A complete answer from an agent or DISPATCH.
    Complete,
    /// The turn failed; the text says why.
    Error,
    /// A notice from gorpd or from the gateway itself.
    Notice,
}

/// One choice of a permission request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermissionChoice {
    /// The agent's id for the choice.
    pub id: String,
    /// What to show.
    pub label: String,
    /// "allow_once", "allow_always", "reject_once" or "reject_always".
    pub kind: String,
}

/// An agent's permission request attached to a notice, so a platform can show
/// buttons; users answer with `!approve <id>` or `!deny <id>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermissionPrompt {
    /// Short id to answer with.
    pub id: String,
    /// What the agent wants to do.
    pub title: String,
    /// The agent's choices.
    pub choices: Vec<PermissionChoice>,
    /// Whether it is still waiting for an answer (buttons make sense).
    pub pending: bool,
}

/// One platform message to send: a piece of a final response (or a notice
/// from the gateway). `id` is stable across retries and replays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outbound {
    /// Idempotency key: the same id is the same message (the runner may retry).
    pub id: String,
    /// The channel to write in.
    pub channel_id: String,
    /// The text, at most [`Limits::max_chars`] characters.
    pub text: String,
    /// What the response is.
    pub kind: OutboundKind,
    /// The session that answered; empty for DISPATCH and gateway notices.
    pub session: String,
    /// The platform message id this answers, when there is one (reply or thread).
    pub in_reply_to: Option<String>,
    /// This piece's position and the number of pieces of the response.
    pub piece: (usize, usize),
    /// A permission request, on the first piece of a permission notice.
    pub permission: Option<PermissionPrompt>,
    /// A file to send (then `text` is its caption): each file of a response
    /// is its own outbound message, after the response's text.
    pub file: Option<OutboundFile>,
}

/// An accepted outbound message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// The platform's id for the message sent, for later edits.
    pub message_id: String,
}

/// An edit of a message sent earlier (a streaming preview or its final text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    /// The channel of the message.
    pub channel_id: String,
    /// The platform's id for the message, from [`Delivered`].
    pub message_id: String,
    /// The new text, at most [`Limits::max_chars`] characters.
    pub text: String,
}

/// A platform call that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlatformError {
    /// The platform asked to wait (HTTP 429 and friends); the runner waits and
    /// retries, and never drops the message.
    #[error("rate limited by the platform; retry after {0:?}")]
    RateLimited(Duration),
    /// A failure a retry may fix (network, 5xx); retried with backoff.
    #[error("temporary platform failure: {0}")]
    Transient(String),
    /// This message can never be sent (chat gone, bot blocked, bad markup);
    /// the runner logs it and moves on.
    #[error("the platform refused the message: {0}")]
    Rejected(String),
    /// The gateway cannot work at all (bad bot token, revoked app); ends the runner.
    #[error("the platform cannot be used: {0}")]
    Fatal(String),
}

/// One chat platform. The runner holds it in an `Arc` and calls `listen` once
/// per run. Responses are delivered and edited from one task, one call at a
/// time, in seq order; the gateway's own short notices (not allowed, refused)
/// come from a second task, so `deliver` may run twice at once.
pub trait Platform: Send + Sync + 'static {
    /// Platform id on the bus (`[a-z0-9_-]`, e.g. "telegram"); a gateway
    /// token must be made for it.
    const NAME: &'static str;

    /// Message size and abilities.
    fn limits(&self) -> Limits;

    /// Receives platform events until `cx.shutdown()` fires, handing each
    /// message to [`ListenContext::submit`]. Handles its own transient errors;
    /// returns `Err` only when it cannot go on (ends the runner).
    fn listen(&self, cx: ListenContext) -> impl Future<Output = Result<(), PlatformError>> + Send;

    /// Sends one message; idempotent on `msg.id` where the platform allows.
    fn deliver(&self, msg: Outbound) -> impl Future<Output = Result<Delivered, PlatformError>> + Send;

    /// Replaces the text of a message sent earlier. Only called when
    /// [`Limits::edits`] is true.
    fn edit(&self, edit: Edit) -> impl Future<Output = Result<(), PlatformError>> + Send;

    /// The platform's documented rates for calls to `channel_id` (every one
    /// applies; sends and edits share them). Default: none.
    fn channel_rates(&self, channel_id: &str) -> Vec<Rate> {
        let _ = channel_id;
        Vec::new()
    }

    /// Largest file the bot may send; a response's larger files are sent as
    /// a link to the web chat instead. Default: 0 (files always as links).
    fn max_file_bytes(&self) -> u64 {
        0
    }

    /// The platform's documented rate for all calls of the bot. Default: none.
    fn global_rate(&self) -> Option<Rate> {
        None
    }
}
