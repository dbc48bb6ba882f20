//! The inbound half: the sync loop, invites, messages, reactions and
//! messages that cannot be decrypted yet.
//!
//! One `/sync` at a time from the position saved in the state directory.
//! Invites are accepted from users on the allow-list and refused
//! otherwise. The messages of one sync are handed to the runner together;
//! only when gorpd has settled every one is the new position saved and a
//! read receipt sent, so a restart of the gateway or gorpd reads the
//! unacknowledged messages again (gorpd de-duplicates on the event id).
//! A message that cannot be decrypted is not dropped: it is logged and
//! counted, the room gets a short notice, and the encrypted event is kept
//! in the state directory and tried again after every sync (keys arrive
//! by key forwarding or the key backup); once it decrypts it is published
//! like any other, and after the key wait (`--matrix-key-wait-secs`, a day
//! by default) the room is told it never could be. A media message's file
//! is fetched and uploaded to gorpd ([`crate::media::fetch`]) just before
//! the message is submitted.

use crate::api;
use crate::convert::{self, BusIds};
use crate::error::classify;
use crate::media::{self, Media};
use crate::platform::{Asked, Matrix};
use crate::state::{Health, Undecrypted};
use gorp_gateway::{Ack, Backoff, BackoffConfig, Inbound, ListenContext, PlatformError, PlatformHealth};
use matrix_sdk::config::SyncSettings;
use matrix_sdk::deserialized_responses::{TimelineEvent, TimelineEventKind};
use matrix_sdk::ruma::api::client::filter::FilterDefinition;
use matrix_sdk::ruma::api::client::receipt::create_receipt::v3::ReceiptType;
use matrix_sdk::ruma::api::client::sync::sync_events::v3::Filter;
use matrix_sdk::ruma::events::receipt::ReceiptThread;
use matrix_sdk::ruma::events::room::encrypted::OriginalSyncRoomEncryptedEvent;
use matrix_sdk::ruma::events::room::message::{MessageType, Relation};
use matrix_sdk::ruma::events::{AnySyncMessageLikeEvent, AnySyncTimelineEvent, SyncMessageLikeEvent};
use matrix_sdk::ruma::serde::Raw;
use matrix_sdk::ruma::{OwnedEventId, OwnedRoomId, UInt};
use matrix_sdk::sync::SyncResponse;
use matrix_sdk::{Client, Room};
use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long one `/sync` waits for news on the homeserver.
const LONG_POLL: Duration = Duration::from_secs(30);

/// Kept messages whose keys are looked up in the key backup after one sync
/// (the rest wait for later syncs), so a long list costs bounded requests.
const BACKUP_CHECKS_PER_SYNC: usize = 16;

/// Timeline events per room in one sync (more are fetched as more syncs).
const TIMELINE_LIMIT: u32 = 100;

/// The notice for a message that cannot be decrypted yet.
pub(crate) const UNDECRYPTABLE_TEXT: &str = "🔒 I could not decrypt this message yet (its keys have not reached me). \
     I will answer it as soon as they arrive.";

/// The notice when the keys never came.
pub(crate) const GAVE_UP_TEXT: &str =
    "🔒 I never received the keys for this message, so I cannot read it. Please send it again.";

/// A message for gorpd and where it came from.
struct Message {
    inbound: Inbound,
    room: Room,
    event_id: OwnedEventId,
    /// Its media, fetched and uploaded to gorpd just before it is submitted.
    media: Option<Box<Media>>,
}

/// One timeline event, sorted.
enum Item {
    Message(Message),
    Undecryptable(Undecrypted),
    Skip,
}

/// The sync loop of one run of `listen`.
pub(crate) struct Syncer<'a> {
    matrix: &'a Matrix,
    client: &'a Client,
    cx: &'a ListenContext,
}

impl<'a> Syncer<'a> {
    pub(crate) fn new(matrix: &'a Matrix, client: &'a Client, cx: &'a ListenContext) -> Self {
        Self { matrix, client, cx }
    }

    /// Syncs until shutdown; `Err` only when the homeserver refuses the bot.
    pub(crate) async fn run(self) -> Result<(), PlatformError> {
        let mut token = self.matrix.state.sync_token();
        let mut backoff = Backoff::new(BackoffConfig::default());
        let mut started = false;
        loop {
            let settings = sync_settings(token.clone());
            let synced = tokio::select! {
                _ = self.cx.shutdown().cancelled() => return Ok(()),
                synced = self.client.sync_once(settings) => synced,
            };
            let response = match synced.map_err(classify) {
                Ok(response) => response,
                Err(fatal @ PlatformError::Fatal(_)) => return Err(fatal),
                Err(error) => {
                    tracing::warn!(%error, "matrix sync failed; retrying");
                    if !backoff.wait_after(&error, self.cx.shutdown()).await {
                        return Ok(());
                    }
                    continue;
                }
            };
            backoff.reset();
            tracing::debug!(next = %response.next_batch, joined = response.rooms.joined.len(), invited = response.rooms.invited.len(), "synced");
            if !started {
                started = true;
                self.after_first_sync().await;
            }
            if !self.handle(&response, token.is_none()).await {
                return Ok(());
            }
            self.matrix.state.save_sync_token(&response.next_batch).map_err(|e| PlatformError::Fatal(e.to_string()))?;
            token = Some(response.next_batch);
        }
    }

    /// Once per run: health for operators, then the recovery key if given.
    async fn after_first_sync(&self) {
        self.report_health(self.matrix.state.undecrypted().len());
        if let Some(key) = &self.matrix.settings().recovery_key {
            api::recover(self.client, key.expose()).await;
        }
    }

    /// Everything one sync brought: invites, messages kept from earlier
    /// that decrypt now, and the new messages (not on the first sync of a
    /// new state directory, `history`), all settled by gorpd. False when
    /// the gateway stops first (the sync position must then stay).
    async fn handle(&self, response: &SyncResponse, history: bool) -> bool {
        self.invites(response).await;
        let (mut messages, decrypted_late) = self.retry_undecrypted().await;
        if history {
            skip_history(response);
        } else {
            messages.extend(self.messages(response).await);
        }
        if !self.settle(messages).await {
            return false;
        }
        self.forget_undecrypted(&decrypted_late);
        true
    }

    /// Accepts invites from allowed users, refuses the rest.
    async fn invites(&self, response: &SyncResponse) {
        for room_id in response.rooms.invited.keys() {
            let Some(room) = self.client.get_room(room_id) else { continue };
            let inviter = match room.invite_details().await {
                Ok(invite) => invite.inviter_id,
                Err(error) => {
                    tracing::warn!(room = %room_id, %error, "cannot read an invite; ignoring it");
                    continue;
                }
            };
            let allowed = self.matrix.allow.allows(inviter.as_str());
            let result = if allowed { join(&room).await } else { room.leave().await };
            match (allowed, result) {
                (true, Ok(())) => tracing::info!(room = %room_id, %inviter, "joined a room on invite"),
                (false, Ok(())) => {
                    tracing::info!(room = %room_id, %inviter, "refused an invite from a user not on the allow-list")
                }
                (_, Err(error)) => tracing::warn!(room = %room_id, %inviter, %error, "could not answer an invite"),
            }
        }
    }

    /// The messages of the joined rooms' timelines, in order; undecryptable
    /// ones are kept for later and the room is told.
    async fn messages(&self, response: &SyncResponse) -> Vec<Message> {
        let mut messages = Vec::new();
        let mut undecryptable = Vec::new();
        for (room_id, update) in &response.rooms.joined {
            let Some(room) = self.client.get_room(room_id) else { continue };
            for event in &update.timeline.events {
                match self.item(&room, event).await {
                    Item::Message(message) => messages.push(message),
                    Item::Undecryptable(pending) => undecryptable.push((room.clone(), pending)),
                    Item::Skip => {}
                }
            }
        }
        if !undecryptable.is_empty() {
            self.keep_undecryptable(undecryptable).await;
        }
        messages
    }

    /// Sorts one timeline event.
    async fn item(&self, room: &Room, event: &TimelineEvent) -> Item {
        if let TimelineEventKind::UnableToDecrypt { event: raw, utd_info } = &event.kind {
            let Some(event_id) = event.event_id() else { return Item::Skip };
            tracing::debug!(room = %room.room_id(), event = %event_id, reason = ?utd_info.reason, "undecryptable event");
            let json = serde_json::from_str(raw.json().get()).unwrap_or_default();
            let first_seen = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
            let pending = Undecrypted {
                room_id: room.room_id().to_string(),
                event_id: event_id.to_string(),
                event: json,
                first_seen,
            };
            return Item::Undecryptable(pending);
        }
        match event.raw().deserialize() {
            Ok(parsed) => self.parsed(room, parsed).await.map_or(Item::Skip, Item::Message),
            Err(error) => {
                tracing::debug!(room = %room.room_id(), %error, "skipping an event that does not parse");
                Item::Skip
            }
        }
    }

    /// A text message or a reaction on a permission request, for gorpd.
    async fn parsed(&self, room: &Room, event: AnySyncTimelineEvent) -> Option<Message> {
        let AnySyncTimelineEvent::MessageLike(event) = event else { return None };
        if Some(event.sender()) == self.client.user_id() {
            return None;
        }
        let (text, thread, media) = match &event {
            AnySyncMessageLikeEvent::RoomMessage(SyncMessageLikeEvent::Original(message)) => {
                let thread = match &message.content.relates_to {
                    Some(Relation::Replacement(_)) => return None,
                    Some(Relation::Thread(thread)) => Some(thread.event_id.clone()),
                    _ => None,
                };
                match &message.content.msgtype {
                    MessageType::Text(text) => (convert::strip_reply_fallback(&text.body).to_owned(), thread, None),
                    MessageType::Emote(emote) => (convert::strip_reply_fallback(&emote.body).to_owned(), thread, None),
                    other => {
                        let (media, caption) = media::of_message(other)?;
                        (convert::strip_reply_fallback(&caption).to_owned(), thread, Some(Box::new(media)))
                    }
                }
            }
            AnySyncMessageLikeEvent::Reaction(SyncMessageLikeEvent::Original(reaction)) => {
                let annotation = &reaction.content.relates_to;
                let prompt = self.matrix.prompt_of(annotation.event_id.as_str())?;
                (convert::reaction_command(&annotation.key, &prompt)?, None, None)
            }
            _ => return None,
        };
        if text.trim().is_empty() && media.is_none() {
            return None;
        }
        let event_id = event.event_id().to_owned();
        let channel = self.matrix.channel(&room.room_id().to_owned());
        let message_id = BusIds::message(&channel, event_id.as_str());
        self.matrix.remember_asked(&message_id, Asked { event_id: event_id.clone(), thread });
        let sender = event.sender().to_owned();
        let member = room.get_member_no_sync(&sender).await.ok().flatten();
        let sender_name =
            member.and_then(|m| m.display_name().map(str::to_owned)).unwrap_or_else(|| sender.localpart().to_owned());
        let inbound = Inbound {
            channel_id: channel,
            message_id,
            sender_id: sender.to_string(),
            sender_name,
            text,
            files: Vec::new(),
        };
        Some(Message { inbound, room: room.clone(), event_id, media })
    }

    /// Records undecryptable messages (before the sync position moves past
    /// them) and tells their rooms.
    async fn keep_undecryptable(&self, new: Vec<(Room, Undecrypted)>) {
        let mut pending = self.matrix.state.undecrypted();
        for (_, event) in &new {
            if !pending.iter().any(|p| p.event_id == event.event_id) {
                pending.push(event.clone());
            }
        }
        if let Err(error) = self.matrix.state.save_undecrypted(&pending) {
            tracing::error!(%error, "cannot save undecryptable messages");
        }
        let waiting = pending.len();
        for (room, event) in new {
            let total = self.matrix.count_undecryptable();
            tracing::warn!(room = %event.room_id, event = %event.event_id, undecryptable_total = total, "a message could not be decrypted; waiting for its keys");
            let key = format!("undecryptable/{}", event.event_id);
            let reply_to = OwnedEventId::try_from(event.event_id.as_str()).ok();
            if let Err(error) = self.matrix.notice(&room, &key, UNDECRYPTABLE_TEXT, reply_to).await {
                tracing::warn!(room = %event.room_id, %error, "could not send the undecryptable notice");
            }
        }
        self.report_health(waiting);
    }

    /// Tries the kept undecryptable messages again; returns those that
    /// decrypt now with their event ids (they stay kept until gorpd has
    /// them, see [`Self::forget_undecrypted`]) and tells rooms about those
    /// given up.
    async fn retry_undecrypted(&self) -> (Vec<Message>, Vec<String>) {
        let pending = self.matrix.state.undecrypted();
        if pending.is_empty() {
            return (Vec::new(), Vec::new());
        }
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        let key_wait = self.matrix.settings().key_wait.as_secs();
        let mut backup_checks = 0;
        let (mut messages, mut decrypted_ids, mut still) = (Vec::new(), Vec::new(), Vec::new());
        for event in pending {
            let room = OwnedRoomId::try_from(event.room_id.as_str()).ok().and_then(|id| self.client.get_room(&id));
            let Some(room) = room else {
                tracing::info!(room = %event.room_id, event = %event.event_id, "the bot left the room of an undecryptable message; forgetting it");
                continue;
            };
            if backup_checks < BACKUP_CHECKS_PER_SYNC {
                backup_checks += 1;
                self.download_from_backup(&room, &event).await;
            }
            let raw = Raw::<OriginalSyncRoomEncryptedEvent>::from_json_string(event.event.to_string());
            let decrypted = match raw {
                Ok(raw) => room.decrypt_event(&raw, None).await.ok(),
                Err(_) => None,
            };
            match decrypted {
                Some(timeline) if !matches!(timeline.kind, TimelineEventKind::UnableToDecrypt { .. }) => {
                    tracing::info!(room = %event.room_id, event = %event.event_id, "a message's keys arrived; publishing it");
                    if let Some(message) = self.parsed_timeline(&room, &timeline).await {
                        messages.push(message);
                    }
                    decrypted_ids.push(event.event_id.clone());
                    still.push(event);
                }
                _ if now.saturating_sub(event.first_seen) >= key_wait => {
                    tracing::warn!(room = %event.room_id, event = %event.event_id, "gave up waiting for a message's keys");
                    let reply_to = OwnedEventId::try_from(event.event_id.as_str()).ok();
                    let key = format!("undecryptable-gave-up/{}", event.event_id);
                    if let Err(error) = self.matrix.notice(&room, &key, GAVE_UP_TEXT, reply_to).await {
                        tracing::warn!(%error, "could not send the gave-up notice");
                        still.push(event);
                    }
                }
                _ => still.push(event),
            }
        }
        if let Err(error) = self.matrix.state.save_undecrypted(&still) {
            tracing::error!(%error, "cannot save undecryptable messages");
        }
        self.report_health(still.len() - decrypted_ids.len());
        (messages, decrypted_ids)
    }

    /// Asks the key backup (when the recovery key enabled it) for the room
    /// key of a kept message. matrix-sdk tries the backup once when a
    /// message fails to decrypt and then backs off for a long time; keys
    /// that reach the backup later (from the bot's other sessions) are
    /// found here, at the next sync.
    async fn download_from_backup(&self, room: &Room, event: &Undecrypted) {
        let backups = self.client.encryption().backups();
        let Some(session_id) = event.event["content"]["session_id"].as_str() else { return };
        if !backups.are_enabled().await {
            return;
        }
        match backups.download_room_key(room.room_id(), session_id).await {
            Ok(found) => {
                tracing::debug!(room = %room.room_id(), event = %event.event_id, found, "asked the key backup")
            }
            Err(error) => {
                tracing::debug!(room = %room.room_id(), event = %event.event_id, %error, "the key backup has no key yet")
            }
        }
    }

    /// Drops messages that decrypted late from the kept list, once gorpd has them.
    fn forget_undecrypted(&self, event_ids: &[String]) {
        if event_ids.is_empty() {
            return;
        }
        let mut pending = self.matrix.state.undecrypted();
        pending.retain(|p| !event_ids.contains(&p.event_id));
        if let Err(error) = self.matrix.state.save_undecrypted(&pending) {
            tracing::error!(%error, "cannot save undecryptable messages");
        }
        self.report_health(pending.len());
    }

    /// Reports the undecryptable counts to gorpd (its gateway list, admin
    /// page and metrics) and writes `health.json` (best effort: a failure is
    /// only logged).
    fn report_health(&self, waiting_for_keys: usize) {
        let undecryptable_since_start = self.matrix.undecryptable_total();
        self.cx.report_health(PlatformHealth { undecryptable_since_start, waiting_for_keys: waiting_for_keys as u64 });
        let health = Health { undecryptable_since_start, waiting_for_keys };
        if let Err(error) = self.matrix.state.save_health(&health) {
            tracing::warn!(%error, "cannot write health.json");
        }
    }

    async fn parsed_timeline(&self, room: &Room, event: &TimelineEvent) -> Option<Message> {
        self.parsed(room, event.raw().deserialize().ok()?).await
    }

    /// Hands `messages` to the runner and waits until gorpd settled each;
    /// then sends read receipts and typing notices. False when the gateway
    /// stops first.
    async fn settle(&self, messages: Vec<Message>) -> bool {
        let mut handles = Vec::with_capacity(messages.len());
        for mut message in messages {
            if let Some(media) = &message.media {
                match media::fetch(self.client, self.cx, &message.inbound, media).await {
                    Some(file) => message.inbound.files.push(file),
                    None if self.cx.shutdown().is_cancelled() => return false,
                    None if message.inbound.text.trim().is_empty() => continue,
                    None => {}
                }
            }
            tracing::debug!(channel = %message.inbound.channel_id, message = %message.inbound.message_id, files = message.inbound.files.len(), "message from matrix");
            match self.cx.submit(message.inbound.clone()).await {
                Ok(handle) => handles.push((message, handle)),
                Err(_) => return false,
            }
        }
        let mut read_up_to: HashMap<OwnedRoomId, (Room, OwnedEventId)> = HashMap::new();
        for (message, handle) in handles {
            let ack = tokio::select! {
                _ = self.cx.shutdown().cancelled() => return false,
                ack = handle => ack,
            };
            match ack {
                Ok(Ack::Accepted) => self.matrix.typing.start(&message.room),
                Ok(_) => {}
                Err(_) => return false,
            }
            read_up_to.insert(message.room.room_id().to_owned(), (message.room, message.event_id));
        }
        for (room, event_id) in read_up_to.into_values() {
            if let Err(error) = room.send_single_receipt(ReceiptType::Read, ReceiptThread::Unthreaded, event_id).await {
                tracing::debug!(room = %room.room_id(), %error, "could not send a read receipt");
            }
        }
        true
    }
}

/// Joins an invited room, retrying a few times (a fresh invite can race
/// the homeserver's own bookkeeping).
async fn join(room: &Room) -> Result<(), matrix_sdk::Error> {
    let mut delay = Duration::from_millis(200);
    for _ in 0..4 {
        match room.join().await {
            Ok(()) => return Ok(()),
            Err(error) => tracing::debug!(room = %room.room_id(), %error, "join failed; retrying"),
        }
        tokio::time::sleep(delay).await;
        delay *= 2;
    }
    room.join().await
}

/// The first sync of a new state directory returns room history the bot
/// never answered and must not answer now; it is only logged.
fn skip_history(response: &SyncResponse) {
    let old: usize = response.rooms.joined.values().map(|room| room.timeline.events.len()).sum();
    if old > 0 {
        tracing::info!(events = old, "first sync of a new state directory: earlier room history is not answered");
    }
}

/// Long polling after the first sync; a filter with lazy-loaded members and
/// a timeline long enough that busy rooms lose nothing between syncs.
fn sync_settings(token: Option<String>) -> SyncSettings {
    let mut filter = FilterDefinition::with_lazy_loading();
    filter.room.timeline.limit = Some(UInt::from(TIMELINE_LIMIT));
    let settings = SyncSettings::default().filter(Filter::FilterDefinition(filter));
    match token {
        Some(token) => settings.token(token).timeout(LONG_POLL),
        None => settings.timeout(Duration::ZERO),
    }
}
