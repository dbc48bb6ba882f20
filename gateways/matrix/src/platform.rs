//! [`Matrix`]: the gateway's [`Platform`], a sync loop in, room events out.
//!
//! `listen` logs in (or restores the saved device), then runs the sync loop
//! in [`crate::sync`]. `deliver` sends an answer as Markdown rendered to
//! sanitised HTML beside the plain text, as a reply to the question (inside
//! its thread when it was asked in one), with a transaction id derived from
//! the outbound id, so a retry after a lost answer is the same event on the
//! homeserver. Sent events are recorded in the state directory before the
//! runner acks them to gorpd: a final answer replayed after a restart is
//! not sent twice, and one whose streamed preview was already shown
//! replaces that preview instead of adding a second message. `edit` sends an
//! `m.replace` of an earlier event. A response's files are sent as Matrix
//! media ([`crate::media::send`]); the largest is the homeserver's upload
//! limit, learnt after login, or `--matrix-max-file-bytes` if lower.

use crate::api;
use crate::config::MatrixSettings;
use crate::convert::{self, BusIds};
use crate::error::{StartError, classify};
use crate::state::StateDir;
use crate::sync::Syncer;
use crate::typing::Typing;
use gorp_gateway::{
    AllowList, Backoff, BackoffConfig, Delivered, Edit, Limits, ListenContext, Outbound, OutboundKind, Platform,
    PlatformError,
};
use matrix_sdk::ruma::events::relation::{InReplyTo, Replacement, Thread};
use matrix_sdk::ruma::events::room::message::{Relation, RoomMessageEventContent};
use matrix_sdk::ruma::{OwnedEventId, OwnedRoomId, OwnedTransactionId};
use matrix_sdk::{Client, Room};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::watch;

/// The longest answer piece, in characters: Matrix events may be 64 KiB of
/// JSON; the HTML, escaping and the edit's doubled content must fit too.
pub(crate) const MAX_CHARS: usize = 12_000;

/// How many inbound messages are remembered for threading answers.
const REMEMBERED_MESSAGES: usize = 4096;

/// Where an inbound message was, so its answer can reply in place.
#[derive(Debug, Clone)]
pub(crate) struct Asked {
    /// The event id.
    pub(crate) event_id: OwnedEventId,
    /// The thread's root, when the message was written in a thread.
    pub(crate) thread: Option<OwnedEventId>,
}

/// Bounded memory of bus ids to Matrix ids.
#[derive(Debug, Default)]
struct Memory {
    rooms: HashMap<String, OwnedRoomId>,
    asked: HashMap<String, Asked>,
    asked_order: VecDeque<String>,
    /// Bot event id of a pending permission request -> its prompt id.
    prompts: HashMap<String, String>,
    prompts_order: VecDeque<String>,
}

/// The Matrix platform.
#[derive(Debug)]
pub(crate) struct Matrix {
    settings: MatrixSettings,
    pub(crate) state: StateDir,
    pub(crate) allow: AllowList,
    client: watch::Sender<Option<Client>>,
    memory: Mutex<Memory>,
    pub(crate) typing: Typing,
    /// Messages that could not be decrypted when they arrived (since start).
    undecryptable: AtomicU64,
    /// The largest file sent as media: the homeserver's upload limit (known
    /// after login; 0 before) or `--matrix-max-file-bytes` if lower.
    max_file_bytes: AtomicU64,
}

impl Matrix {
    /// The platform for `settings`; opens the state directory (a bad one is
    /// a configuration error). `allow` decides whose invites are accepted.
    pub(crate) fn new(settings: MatrixSettings, allow: AllowList) -> Result<Self, String> {
        let state = StateDir::open(&settings.state_dir).map_err(|e| e.to_string())?;
        Ok(Self {
            settings,
            state,
            allow,
            client: watch::Sender::new(None),
            memory: Mutex::default(),
            typing: Typing::default(),
            undecryptable: AtomicU64::new(0),
            max_file_bytes: AtomicU64::new(0),
        })
    }

    /// The Matrix settings.
    pub(crate) fn settings(&self) -> &MatrixSettings {
        &self.settings
    }

    fn memory(&self) -> std::sync::MutexGuard<'_, Memory> {
        self.memory.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The client once `listen` has logged in.
    async fn client(&self) -> Result<Client, PlatformError> {
        let mut ready = self.client.subscribe();
        let client = ready.wait_for(Option::is_some).await.map_err(|_| transient("the matrix client is gone"))?;
        Ok(client.clone().expect("waited for Some"))
    }

    /// Logs in, retrying what may pass; fatal errors end the gateway.
    async fn start(&self, cx: &ListenContext) -> Result<Option<Client>, PlatformError> {
        let mut backoff = Backoff::new(BackoffConfig::default());
        loop {
            let error = match api::connect(&self.settings, &self.state).await {
                Ok(client) => return Ok(Some(client)),
                Err(StartError::Matrix(error @ (PlatformError::Transient(_) | PlatformError::RateLimited(_)))) => error,
                Err(fatal) => return Err(fatal.into()),
            };
            tracing::warn!(%error, homeserver = %self.settings.homeserver, "cannot log in to matrix; retrying");
            if !backoff.wait_after(&error, cx.shutdown()).await {
                return Ok(None);
            }
        }
    }

    /// Counts one more message that could not be decrypted; returns the
    /// total since start (logged with each).
    pub(crate) fn count_undecryptable(&self) -> u64 {
        self.undecryptable.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Messages that could not be decrypted since start.
    pub(crate) fn undecryptable_total(&self) -> u64 {
        self.undecryptable.load(Ordering::Relaxed)
    }

    /// The channel id of a room, remembering hashed ones.
    pub(crate) fn channel(&self, room_id: &OwnedRoomId) -> String {
        let channel = BusIds::channel(room_id.as_str());
        if BusIds::is_hashed(&channel) {
            self.memory().rooms.insert(channel.clone(), room_id.clone());
        }
        channel
    }

    /// Remembers an inbound message so its answer can reply to it.
    pub(crate) fn remember_asked(&self, message_id: &str, asked: Asked) {
        let mut memory = self.memory();
        if memory.asked.insert(message_id.to_owned(), asked).is_none() {
            memory.asked_order.push_back(message_id.to_owned());
        }
        while memory.asked_order.len() > REMEMBERED_MESSAGES {
            if let Some(old) = memory.asked_order.pop_front() {
                memory.asked.remove(&old);
            }
        }
    }

    /// The prompt id of the permission request sent as `event_id`.
    pub(crate) fn prompt_of(&self, event_id: &str) -> Option<String> {
        self.memory().prompts.get(event_id).cloned()
    }

    fn remember_prompt(&self, event_id: &str, prompt_id: &str) {
        let mut memory = self.memory();
        memory.prompts.insert(event_id.to_owned(), prompt_id.to_owned());
        memory.prompts_order.push_back(event_id.to_owned());
        while memory.prompts_order.len() > REMEMBERED_MESSAGES {
            if let Some(old) = memory.prompts_order.pop_front() {
                memory.prompts.remove(&old);
            }
        }
    }

    /// The joined room behind a channel id.
    fn room(&self, client: &Client, channel: &str) -> Result<Room, PlatformError> {
        let room_id = if BusIds::is_hashed(channel) {
            self.memory().rooms.get(channel).cloned().ok_or_else(|| rejected("unknown room", channel))?
        } else {
            OwnedRoomId::try_from(channel).map_err(|_| rejected("room id", channel))?
        };
        client.get_room(&room_id).ok_or_else(|| rejected("room the bot is not in", channel))
    }

    /// The message `message_id` answers, if known.
    fn asked(&self, message_id: &str) -> Option<Asked> {
        let asked = self.memory().asked.get(message_id).cloned();
        asked.or_else(|| {
            let event_id = OwnedEventId::try_from(message_id).ok()?;
            Some(Asked { event_id, thread: None })
        })
    }

    /// Learns the homeserver's upload limit, lowered to the configured one.
    async fn learn_upload_limit(&self, client: &Client) {
        let server = match client.load_or_fetch_max_upload_size().await {
            Ok(limit) => u64::from(limit),
            Err(error) => {
                tracing::warn!(%error, "cannot read the homeserver's upload limit; answers' files go as links");
                0
            }
        };
        let limit = self.settings.max_file_bytes.map_or(server, |configured| configured.min(server));
        tracing::info!(server, limit, "files up to this size are sent as matrix media");
        self.max_file_bytes.store(limit, Ordering::Relaxed);
    }

    /// Where an answer to `message_id` goes: a reply, in its thread if any.
    fn relation(
        &self,
        message_id: &str,
    ) -> Option<Relation<matrix_sdk::ruma::events::room::message::RoomMessageEventContentWithoutRelation>> {
        let asked = self.asked(message_id)?;
        Some(match asked.thread {
            Some(root) => Relation::Thread(Thread::reply(root, asked.event_id)),
            None => Relation::Reply(matrix_sdk::ruma::events::relation::Reply::new(InReplyTo::new(asked.event_id))),
        })
    }

    /// Sends one event with an idempotent transaction id; returns its event id.
    pub(crate) async fn send(
        &self,
        room: &Room,
        content: RoomMessageEventContent,
        key: &str,
    ) -> Result<OwnedEventId, PlatformError> {
        let sent = room.send(content).with_transaction_id(transaction_id(key)).await.map_err(classify)?;
        Ok(sent.response.event_id)
    }

    /// Sends a notice from the gateway itself (undecryptable messages),
    /// once per `key`, replying to `reply_to`.
    pub(crate) async fn notice(
        &self,
        room: &Room,
        key: &str,
        text: &str,
        reply_to: Option<OwnedEventId>,
    ) -> Result<(), PlatformError> {
        if self.state.sent(key).is_some() {
            return Ok(());
        }
        let mut content = RoomMessageEventContent::notice_plain(text);
        content.relates_to =
            reply_to.map(|id| Relation::Reply(matrix_sdk::ruma::events::relation::Reply::new(InReplyTo::new(id))));
        let event_id = self.send(room, content, key).await?;
        self.state.record_sent(key, event_id.as_str()).map_err(|e| transient(&e.to_string()))
    }

    /// Sends the file of `msg` as media, replying to the question.
    async fn send_file(&self, room: &Room, msg: &Outbound) -> Result<OwnedEventId, PlatformError> {
        let Some(file) = &msg.file else { return Err(rejected("file", &msg.id)) };
        let reply_to = msg.in_reply_to.as_deref().and_then(|id| self.asked(id)).map(|asked| asked.event_id);
        crate::media::send(room, file, transaction_id(&msg.id), reply_to).await.map_err(classify)
    }

    /// Replaces the text of `event_id` with `text`.
    async fn replace(&self, room: &Room, event_id: OwnedEventId, text: &str) -> Result<(), PlatformError> {
        let new_content = content(text, OutboundKind::Complete);
        // The fallback for clients without edits: the new text marked with "* ".
        let fallback = format!("* {}", convert::markdown_html(text));
        let mut edit = RoomMessageEventContent::text_html(format!("* {text}"), fallback);
        edit.relates_to = Some(Relation::Replacement(Replacement::new(event_id.clone(), new_content.into())));
        self.send(room, edit, &format!("edit/{event_id}/{text}")).await.map(drop)
    }
}

/// An answer's content: Markdown as HTML beside the plain text; notices
/// and errors as `m.notice` so other bots do not answer them.
fn content(text: &str, kind: OutboundKind) -> RoomMessageEventContent {
    let html = convert::markdown_html(text);
    match kind {
        OutboundKind::Complete => RoomMessageEventContent::text_html(text, html),
        OutboundKind::Error | OutboundKind::Notice => RoomMessageEventContent::notice_html(text, html),
    }
}

/// A transaction id for `key`: the same key is the same event on the homeserver.
fn transaction_id(key: &str) -> OwnedTransactionId {
    let digest = Sha256::digest(key.as_bytes());
    OwnedTransactionId::from(format!("gorp-{}", &hex::encode(digest)[..32]))
}

/// The outbound id of the streamed preview a final's first piece replaces.
/// The runner names steps `<response>/<channel>/<piece>` and previews
/// `<response>/<channel>/preview`.
fn preview_of(outbound_id: &str) -> Option<String> {
    outbound_id.strip_suffix("/0").map(|base| format!("{base}/preview"))
}

impl Platform for Matrix {
    const NAME: &'static str = "matrix";

    fn limits(&self) -> Limits {
        Limits { max_chars: MAX_CHARS, edits: true }
    }

    async fn listen(&self, cx: ListenContext) -> Result<(), PlatformError> {
        let Some(client) = self.start(&cx).await? else { return Ok(()) };
        self.learn_upload_limit(&client).await;
        self.client.send_replace(Some(client.clone()));
        for room in client.joined_rooms() {
            self.channel(&room.room_id().to_owned());
        }
        let result = Syncer::new(self, &client, &cx).run().await;
        self.typing.stop_all(&client).await;
        result
    }

    async fn deliver(&self, msg: Outbound) -> Result<Delivered, PlatformError> {
        if let Some(message_id) = self.state.sent(&msg.id) {
            return Ok(Delivered { message_id });
        }
        let client = self.client().await?;
        let room = self.room(&client, &msg.channel_id)?;
        self.typing.stop(&room).await;
        let preview = if msg.piece.0 == 0 { preview_of(&msg.id).and_then(|p| self.state.sent(&p)) } else { None };
        let mut text = msg.text.clone();
        if let Some(prompt) = msg.permission.as_ref().filter(|p| p.pending && !p.id.is_empty()) {
            text.push_str(&convert::permission_hint(&prompt.id));
        }
        let event_id = match preview.and_then(|id| OwnedEventId::try_from(id).ok()) {
            _ if msg.file.is_some() => self.send_file(&room, &msg).await?,
            // A restart between the preview and the final: finish the preview.
            Some(preview) => self.replace(&room, preview.clone(), &text).await.map(|()| preview)?,
            None => {
                let mut content = content(&text, msg.kind);
                content.relates_to = msg.in_reply_to.as_deref().and_then(|id| self.relation(id));
                self.send(&room, content, &msg.id).await?
            }
        };
        if let Some(prompt) = msg.permission.as_ref().filter(|p| p.pending) {
            self.remember_prompt(event_id.as_str(), &prompt.id);
        }
        self.state.record_sent(&msg.id, event_id.as_str()).map_err(|e| transient(&e.to_string()))?;
        tracing::debug!(channel = %msg.channel_id, id = %msg.id, event = %event_id, "sent to matrix");
        Ok(Delivered { message_id: event_id.to_string() })
    }

    fn max_file_bytes(&self) -> u64 {
        self.max_file_bytes.load(Ordering::Relaxed)
    }

    async fn edit(&self, edit: Edit) -> Result<(), PlatformError> {
        let client = self.client().await?;
        let room = self.room(&client, &edit.channel_id)?;
        self.typing.stop(&room).await;
        let event_id =
            OwnedEventId::try_from(edit.message_id.as_str()).map_err(|_| rejected("event id", &edit.message_id))?;
        self.replace(&room, event_id, &edit.text).await
    }
}

fn rejected(what: &str, value: &str) -> PlatformError {
    PlatformError::Rejected(format!("invalid matrix {what} {value:?}"))
}

fn transient(why: &str) -> PlatformError {
    PlatformError::Transient(why.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transaction_ids_are_stable_per_key() {
        assert_eq!(transaction_id("r1/!a:x/0"), transaction_id("r1/!a:x/0"));
        assert_ne!(transaction_id("r1/!a:x/0"), transaction_id("r1/!a:x/1"));
    }

    #[test]
    fn a_first_piece_names_its_preview() {
        assert_eq!(preview_of("r1/!a:x/0").as_deref(), Some("r1/!a:x/preview"));
        assert_eq!(preview_of("r1/!a:x/1"), None);
    }

    #[test]
    fn notices_are_m_notice_and_answers_m_text_with_html() {
        let answer = content("**hi**", OutboundKind::Complete);
        assert_eq!(answer.msgtype(), "m.text");
        let json = serde_json::to_value(&answer).unwrap();
        assert_eq!(json["formatted_body"], "<p><strong>hi</strong></p>");
        assert_eq!(json["body"], "**hi**");
        assert_eq!(content("x", OutboundKind::Notice).msgtype(), "m.notice");
    }
}
