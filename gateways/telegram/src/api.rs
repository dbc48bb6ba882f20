//! The Bot API calls the gateway makes, over teloxide's `Bot`.
//!
//! Every call goes to `POST {api_url}bot{token}/{Method}`; the base URL is
//! configurable so tests point it at a fake server. Errors come back as
//! teloxide's `RequestError` for [`crate::error`] to classify.

use gorp_gateway::OutboundFile;
use teloxide::net::Download;
use teloxide::prelude::*;
use teloxide::types::{AllowedUpdate, FileId, InlineKeyboardMarkup, InputFile, MessageId, ReplyParameters, Update};
use teloxide::{Bot, RequestError};
use url::Url;

/// Long-polling wait per `getUpdates`, in seconds; below the HTTP client's own 17 s timeout.
pub(crate) const POLL_TIMEOUT_S: u32 = 10;

/// One bot's Bot API client.
#[derive(Debug, Clone)]
pub(crate) struct Api {
    bot: Bot,
}

/// A new message to send.
#[derive(Debug)]
pub(crate) struct NewMessage<'a> {
    pub(crate) chat: ChatId,
    pub(crate) text: &'a str,
    pub(crate) reply_to: Option<MessageId>,
    pub(crate) keyboard: Option<InlineKeyboardMarkup>,
}

impl Api {
    /// A client for the bot with `token` at `api_url` (`https://api.telegram.org` in production).
    pub(crate) fn new(token: &str, api_url: Url) -> Self {
        Self { bot: Bot::new(token).set_api_url(api_url) }
    }

    /// `getMe`: checks the token; returns the bot's username.
    pub(crate) async fn me(&self) -> Result<String, RequestError> {
        let me = self.bot.get_me().await?;
        Ok(me.user.username.unwrap_or_default())
    }

    /// `getUpdates`: updates from `offset` on, waiting up to [`POLL_TIMEOUT_S`] for one.
    pub(crate) async fn updates(&self, offset: i32) -> Result<Vec<Update>, RequestError> {
        self.bot
            .get_updates()
            .offset(offset)
            .timeout(POLL_TIMEOUT_S)
            .allowed_updates([AllowedUpdate::Message, AllowedUpdate::CallbackQuery])
            .await
    }

    /// `sendMessage`; returns the new message's id.
    pub(crate) async fn send(&self, message: NewMessage<'_>) -> Result<MessageId, RequestError> {
        let mut request = self.bot.send_message(message.chat, message.text);
        if let Some(id) = message.reply_to {
            // A deleted original must not make the answer undeliverable.
            request = request.reply_parameters(ReplyParameters::new(id).allow_sending_without_reply());
        }
        if let Some(keyboard) = message.keyboard {
            request = request.reply_markup(keyboard);
        }
        Ok(request.await?.id)
    }

    /// `getFile`, then the file's bytes from `{api_url}file/bot{token}/{path}`.
    pub(crate) async fn download(&self, file_id: &str) -> Result<Vec<u8>, String> {
        let file = self.bot.get_file(FileId(file_id.to_owned())).await.map_err(|error| error.to_string())?;
        let mut bytes = Vec::with_capacity(file.meta.size as usize);
        self.bot.download_file(&file.path, &mut bytes).await.map_err(|error| error.to_string())?;
        Ok(bytes)
    }

    /// Sends a file: `sendPhoto` for photos Telegram shows inline, `sendAudio`
    /// for audio, `sendDocument` for anything else; returns the new message's id.
    pub(crate) async fn send_file(
        &self,
        chat: ChatId,
        file: &OutboundFile,
        reply_to: Option<MessageId>,
    ) -> Result<MessageId, RequestError> {
        let input = InputFile::memory(file.bytes.to_vec()).file_name(file.name.clone());
        let reply = reply_to.map(|id| ReplyParameters::new(id).allow_sending_without_reply());
        // The three requests are different types with the same setter.
        macro_rules! sent {
            ($request:expr) => {
                match reply {
                    Some(reply) => $request.reply_parameters(reply).await?,
                    None => $request.await?,
                }
            };
        }
        let message = match FileKind::of(file) {
            FileKind::Photo => sent!(self.bot.send_photo(chat, input)),
            FileKind::Audio => sent!(self.bot.send_audio(chat, input)),
            FileKind::Document => sent!(self.bot.send_document(chat, input)),
        };
        Ok(message.id)
    }

    /// `editMessageText`.
    pub(crate) async fn edit(&self, chat: ChatId, id: MessageId, text: &str) -> Result<(), RequestError> {
        self.bot.edit_message_text(chat, id, text).await.map(drop)
    }

    /// `answerCallbackQuery`, so the client stops showing a spinner.
    pub(crate) async fn answer_callback(&self, id: String) -> Result<(), RequestError> {
        self.bot.answer_callback_query(teloxide::types::CallbackQueryId(id)).await.map(drop)
    }
}

/// Largest photo `sendPhoto` takes; larger images go as documents.
const PHOTO_MAX_BYTES: usize = 10 * 1024 * 1024;

/// How Telegram shows a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FileKind {
    Photo,
    Audio,
    Document,
}

impl FileKind {
    fn of(file: &OutboundFile) -> Self {
        let photo = matches!(file.media_type.as_str(), "image/jpeg" | "image/png" | "image/webp");
        match () {
            () if photo && file.bytes.len() <= PHOTO_MAX_BYTES => Self::Photo,
            () if file.is_audio() => Self::Audio,
            () => Self::Document,
        }
    }
}
