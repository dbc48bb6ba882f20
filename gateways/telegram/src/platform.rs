//! [`Telegram`]: the gateway's [`Platform`], long polling in, Bot API calls out.
//!
//! `listen` checks the bot token with `getMe`, then loops on `getUpdates`.
//! The updates of one batch are handed to the runner together and the offset
//! moves past each, in order, only once gorpd acknowledged it (or it was
//! settled otherwise), so the next
//! `getUpdates` confirms it to Telegram: a restart of the gateway or gorpd
//! neither loses nor repeats a message. Each chat (private or group) is the
//! channel `<chat id>`. `deliver` sends with `sendMessage` (replying to the
//! original when there is one, with Approve / Deny buttons on a pending
//! permission request) and a response's files with `sendPhoto` (JPEG, PNG
//! and WebP up to 10 MB), `sendAudio` or `sendDocument` (up to 50 MB; larger
//! ones become a link to the web chat); `edit` uses `editMessageText`. A
//! user's photo, document, voice note or audio file (up to the 20 MB a bot
//! may fetch) is fetched with `getFile` and uploaded to gorpd before its
//! message is submitted, with the caption as its text. Calls are paced at
//! Telegram's documented per-chat, per-group and per-bot rates. No spool:
//! the update offset already keeps an unacknowledged message at Telegram
//! (for 24 hours) while gorpd is away.

use crate::api::{Api, NewMessage};
use crate::convert::{self, Event, PendingFile, Senders};
use crate::error::{classify, not_modified};
use gorp_gateway::{
    AckHandle, Backoff, BackoffConfig, Delivered, Edit, Inbound, InboundFile, Limits, ListenContext, Outbound,
    Platform, PlatformError, Rate, SentMessages, SubmitError, UploadError,
};
use std::time::Duration;
use teloxide::types::{ChatId, MessageId, Update};
use tokio_util::sync::CancellationToken;

/// Largest file a bot may send (50 MB); larger ones go as a link to the web chat.
const BOT_UPLOAD_MAX_BYTES: u64 = 50 * 1024 * 1024;
/// Largest file a bot may fetch with `getFile` (20 MB).
const BOT_DOWNLOAD_MAX_BYTES: u64 = 20 * 1024 * 1024;

/// Telegram's limit on a message's text, in characters.
pub(crate) const MAX_CHARS: usize = 4096;

/// Telegram's documented pacing: about one message per second in a chat
/// (short bursts allowed), at most 20 per minute in a group, about 30 per
/// second for the whole bot. As token buckets whose worst case stays within
/// each: 3 then 1/s; 5 then one per 4 s (≤ 20 in any minute); 5 then one per
/// 40 ms (≤ 30 in any second).
const CHAT_RATE: Rate = Rate::new(3, Duration::from_secs(1));
const GROUP_RATE: Rate = Rate::new(5, Duration::from_secs(4));
const BOT_RATE: Rate = Rate::new(5, Duration::from_millis(40));

/// The Telegram platform.
#[derive(Debug)]
pub(crate) struct Telegram {
    api: Api,
    senders: Senders,
    /// Outbound ids already sent: the Bot API has no idempotency key.
    sent: SentMessages,
}

impl Telegram {
    /// A bot with `token` at `api_url`; `allow` are the `--allow` entries
    /// (numeric ids or `@usernames`), used to pick the sender id the
    /// allow-list matches.
    pub(crate) fn new(token: &str, api_url: url::Url, allow: &[String]) -> Self {
        let senders = Senders::new(allow.iter().map(String::as_str));
        Self { api: Api::new(token, api_url), senders, sent: SentMessages::default() }
    }

    /// `getMe` until it answers; a rejected token is fatal.
    async fn check_token(&self, shutdown: &CancellationToken) -> Result<(), PlatformError> {
        let mut backoff = Backoff::new(BackoffConfig::default());
        loop {
            let error = match self.api.me().await.map_err(classify) {
                Ok(name) => {
                    tracing::info!(bot = %name, "telegram accepted the bot token");
                    return Ok(());
                }
                Err(fatal @ PlatformError::Fatal(_)) => return Err(fatal),
                Err(error) => error,
            };
            // The error says why: the network, a server error, or an answer teloxide could not parse.
            tracing::warn!(%error, "getMe failed; retrying");
            if !backoff.wait_after(&error, shutdown).await {
                return Ok(());
            }
        }
    }

    /// Hands one update to the runner; the handle resolves once gorpd
    /// settled it (`Ok(None)`: nothing for gorpd). `Err` when the gateway stops.
    async fn submit(&self, cx: &ListenContext, update: Update) -> Result<Option<AckHandle>, SubmitError> {
        let Event::Message { mut inbound, callback, files } = convert::event(update, &self.senders) else {
            return Ok(None);
        };
        for file in files {
            if let Some(uploaded) = self.fetch(cx, &inbound, file).await? {
                inbound.files.push(uploaded);
            }
        }
        if let Some(id) = callback
            && let Err(error) = self.api.answer_callback(id).await
        {
            tracing::debug!(%error, "could not answer a callback query");
        }
        tracing::debug!(channel = %inbound.channel_id, message = %inbound.message_id, "message from telegram");
        cx.submit(inbound).await.map(Some)
    }

    /// Fetches one file of a message from Telegram and uploads it to gorpd;
    /// `None` when it cannot be sent (its author is told why). `Err` when
    /// gorpd cannot take it now: the update stays unconfirmed and comes again.
    async fn fetch(
        &self,
        cx: &ListenContext,
        inbound: &Inbound,
        file: PendingFile,
    ) -> Result<Option<InboundFile>, SubmitError> {
        if file.size > BOT_DOWNLOAD_MAX_BYTES {
            let reason = "Telegram lets bots fetch files of at most 20 MB; send it from the web chat instead";
            cx.tell_file_refused(inbound, &file.name, reason).await;
            return Ok(None);
        }
        let bytes = match self.api.download(&file.file_id).await {
            Ok(bytes) => bytes,
            Err(error) => {
                tracing::warn!(%error, file = %file.name, "cannot fetch a file from telegram");
                cx.tell_file_refused(inbound, &file.name, "Telegram did not hand it to the bot").await;
                return Ok(None);
            }
        };
        match cx.upload(&file.name, &file.media_type, bytes).await {
            Ok(uploaded) => Ok(Some(uploaded)),
            Err(UploadError::Refused(reason)) => {
                cx.tell_file_refused(inbound, &file.name, &reason).await;
                Ok(None)
            }
            Err(error) => {
                tracing::warn!(%error, file = %file.name, "cannot upload a file to gorpd; the update comes again");
                // Not straight back: gorpd is away, and the next poll would fail the same way.
                tokio::time::sleep(Duration::from_secs(1)).await;
                Err(SubmitError::Closed)
            }
        }
    }

    /// Submits a batch of updates at once, then moves `offset` past each as
    /// gorpd settles it, in order. False when the gateway stops first (the
    /// offset then stays before the first unsettled update).
    async fn handle_batch(&self, cx: &ListenContext, updates: Vec<Update>, offset: &mut i32) -> bool {
        let mut submitted = Vec::with_capacity(updates.len());
        for update in updates {
            let next = i32::try_from(update.id.0).unwrap_or(i32::MAX).saturating_add(1);
            match self.submit(cx, update).await {
                Ok(handle) => submitted.push((next, handle)),
                Err(_) => break,
            }
        }
        for (next, handle) in submitted {
            if let Some(handle) = handle {
                let settled = tokio::select! {
                    _ = cx.shutdown().cancelled() => false,
                    ack = handle => ack.is_ok(),
                };
                if !settled {
                    return false;
                }
            }
            *offset = next;
        }
        !cx.shutdown().is_cancelled()
    }
}

impl Platform for Telegram {
    const NAME: &'static str = "telegram";

    fn limits(&self) -> Limits {
        Limits { max_chars: MAX_CHARS, edits: true }
    }

    async fn listen(&self, cx: ListenContext) -> Result<(), PlatformError> {
        let shutdown = cx.shutdown().clone();
        self.check_token(&shutdown).await?;
        let mut offset = 0;
        let mut backoff = Backoff::new(BackoffConfig::default());
        loop {
            let polled = tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                polled = self.api.updates(offset) => polled,
            };
            match polled.map_err(classify) {
                Ok(updates) => {
                    backoff.reset();
                    if !self.handle_batch(&cx, updates, &mut offset).await {
                        return Ok(());
                    }
                }
                Err(fatal @ PlatformError::Fatal(_)) => return Err(fatal),
                Err(error) => {
                    tracing::warn!(%error, "getUpdates failed; retrying");
                    if !backoff.wait_after(&error, &shutdown).await {
                        return Ok(());
                    }
                }
            }
        }
    }

    async fn deliver(&self, msg: Outbound) -> Result<Delivered, PlatformError> {
        if let Some(message_id) = self.sent.get(&msg.id) {
            return Ok(Delivered { message_id });
        }
        let reply_to = msg.in_reply_to.as_deref().and_then(|id| id.parse().ok()).map(MessageId);
        if let Some(file) = &msg.file {
            let id = self.api.send_file(chat_id(&msg.channel_id)?, file, reply_to).await.map_err(classify)?;
            let id = id.0.to_string();
            self.sent.record(&msg.id, &id);
            return Ok(Delivered { message_id: id });
        }
        let message = NewMessage {
            chat: chat_id(&msg.channel_id)?,
            text: &msg.text,
            reply_to,
            keyboard: msg.permission.as_ref().and_then(convert::keyboard),
        };
        let id = self.api.send(message).await.map_err(classify)?.0.to_string();
        self.sent.record(&msg.id, &id);
        Ok(Delivered { message_id: id })
    }

    async fn edit(&self, edit: Edit) -> Result<(), PlatformError> {
        let chat = chat_id(&edit.channel_id)?;
        let id = edit.message_id.parse().map(MessageId).map_err(|_| rejected("message id", &edit.message_id))?;
        match self.api.edit(chat, id, &edit.text).await {
            Err(error) if not_modified(&error) => Ok(()),
            result => result.map_err(classify),
        }
    }

    fn channel_rates(&self, channel_id: &str) -> Vec<Rate> {
        // Group and channel chat ids are negative; private chats are users' ids.
        match channel_id.starts_with('-') {
            true => vec![CHAT_RATE, GROUP_RATE],
            false => vec![CHAT_RATE],
        }
    }

    fn max_file_bytes(&self) -> u64 {
        BOT_UPLOAD_MAX_BYTES
    }

    fn global_rate(&self) -> Option<Rate> {
        Some(BOT_RATE)
    }
}

/// Parses a channel id back into a chat id.
fn chat_id(channel_id: &str) -> Result<ChatId, PlatformError> {
    channel_id.parse().map(ChatId).map_err(|_| rejected("chat id", channel_id))
}

fn rejected(what: &str, value: &str) -> PlatformError {
    PlatformError::Rejected(format!("invalid telegram {what} {value:?}"))
}
