//! The Bot API calls the gateway makes, over teloxide's `Bot`.
//!
//! Every call goes to `POST {api_url}bot{token}/{Method}`; the base URL is
//! configurable so tests point it at a fake server. Errors come back as
//! teloxide's `RequestError` for [`crate::error`] to classify.

use teloxide::prelude::*;
use teloxide::types::{AllowedUpdate, InlineKeyboardMarkup, MessageId, ReplyParameters, Update};
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

    /// `editMessageText`.
    pub(crate) async fn edit(&self, chat: ChatId, id: MessageId, text: &str) -> Result<(), RequestError> {
        self.bot.edit_message_text(chat, id, text).await.map(drop)
    }

    /// `answerCallbackQuery`, so the client stops showing a spinner.
    pub(crate) async fn answer_callback(&self, id: String) -> Result<(), RequestError> {
        self.bot.answer_callback_query(teloxide::types::CallbackQueryId(id)).await.map(drop)
    }
}
