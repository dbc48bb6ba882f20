//! Conversions between Bot API types and the gateway's own: updates to
//! [`Event`]s, permission prompts to inline keyboards, button data back to
//! `!approve` / `!deny` commands.
//!
//! Callback data is limited to 64 bytes by Telegram, so a button carries only
//! `a:<id>` or `d:<id>`; prompts whose id would not fit get no buttons (the
//! notice text still says how to answer).

use gorp_gateway::{Inbound, PermissionPrompt};
use std::collections::HashSet;
use teloxide::types::{CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message, Update, UpdateKind, User};

/// Telegram's limit on `callback_data`, in bytes.
const CALLBACK_DATA_MAX: usize = 64;

/// What one update means for the gateway.
#[derive(Debug)]
pub(crate) enum Event {
    /// A message (or a button press turned into one) for gorpd; a button
    /// press also carries the callback query id to answer, a message with a
    /// photo, document, voice note or audio file the files to fetch first.
    Message { inbound: Inbound, callback: Option<String>, files: Vec<PendingFile> },
    /// Nothing for gorpd (service messages, stickers, the bot's own posts).
    Ignored,
}

/// Turns platform users into allow-list ids: the numeric id, or `@username`
/// when that username is listed (usernames compare case-insensitively).
#[derive(Debug, Clone, Default)]
pub(crate) struct Senders {
    usernames: HashSet<String>,
}

impl Senders {
    /// From the `--allow` entries; only the `@name` ones matter here.
    pub(crate) fn new<'a>(allow: impl IntoIterator<Item = &'a str>) -> Self {
        let usernames = allow.into_iter().filter(|e| e.starts_with('@')).map(|e| e.to_lowercase()).collect();
        Self { usernames }
    }

    /// The id the allow-list matches for `user`.
    pub(crate) fn sender_id(&self, user: &User) -> String {
        let named = user.username.as_ref().map(|name| format!("@{}", name.to_lowercase()));
        match named {
            Some(name) if self.usernames.contains(&name) => name,
            _ => user.id.0.to_string(),
        }
    }
}

/// What an update means.
pub(crate) fn event(update: Update, senders: &Senders) -> Event {
    match update.kind {
        UpdateKind::Message(message) => message_event(&message, senders),
        UpdateKind::CallbackQuery(query) => callback_event(query, senders),
        _ => Event::Ignored,
    }
}

/// A file of a Telegram message, to fetch with `getFile` and upload to gorpd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PendingFile {
    pub(crate) file_id: String,
    pub(crate) name: String,
    pub(crate) media_type: String,
    pub(crate) size: u64,
}

/// The files of `message`: the largest size of a photo, a document, a voice
/// note (an audio file) or an audio file.
fn pending_files(message: &Message) -> Vec<PendingFile> {
    let id = message.id.0;
    let pending = |file: &teloxide::types::FileMeta, name: String, media_type: String| PendingFile {
        file_id: file.id.0.clone(),
        name,
        media_type,
        size: u64::from(file.size),
    };
    let mut files = Vec::new();
    if let Some(largest) = message.photo().and_then(|sizes| sizes.iter().max_by_key(|s| s.width * s.height)) {
        files.push(pending(&largest.file, format!("photo-{id}.jpg"), "image/jpeg".to_owned()));
    }
    if let Some(document) = message.document() {
        let name = document.file_name.clone().unwrap_or_else(|| format!("document-{id}"));
        files.push(pending(&document.file, name, mime_or(document.mime_type.as_ref(), "application/octet-stream")));
    }
    if let Some(voice) = message.voice() {
        files.push(pending(&voice.file, format!("voice-{id}.ogg"), mime_or(voice.mime_type.as_ref(), "audio/ogg")));
    }
    if let Some(audio) = message.audio() {
        let name = audio.file_name.clone().unwrap_or_else(|| format!("audio-{id}.mp3"));
        files.push(pending(&audio.file, name, mime_or(audio.mime_type.as_ref(), "audio/mpeg")));
    }
    files
}

fn mime_or(mime: Option<&impl ToString>, default: &str) -> String {
    mime.map_or_else(|| default.to_owned(), ToString::to_string)
}

fn message_event(message: &Message, senders: &Senders) -> Event {
    let Some(from) = message.from.as_ref() else { return Event::Ignored };
    let files = pending_files(message);
    let text = message.text().or(message.caption()).unwrap_or_default();
    if from.is_bot || (text.is_empty() && files.is_empty()) {
        return Event::Ignored;
    }
    let inbound = Inbound {
        channel_id: message.chat.id.0.to_string(),
        message_id: message.id.0.to_string(),
        sender_id: senders.sender_id(from),
        sender_name: from.full_name(),
        text: text.to_owned(),
        files: Vec::new(),
    };
    Event::Message { inbound, callback: None, files }
}

fn callback_event(query: CallbackQuery, senders: &Senders) -> Event {
    let (Some(message), Some(text)) = (query.message.as_ref(), query.data.as_deref().and_then(command)) else {
        return Event::Ignored;
    };
    let inbound = Inbound {
        channel_id: message.chat().id.0.to_string(),
        // Stable across re-reads of the update, so gorpd de-duplicates it.
        message_id: format!("cb-{}", query.id.0),
        sender_id: senders.sender_id(&query.from),
        sender_name: query.from.full_name(),
        text,
        files: Vec::new(),
    };
    Event::Message { inbound, callback: Some(query.id.0), files: Vec::new() }
}

/// `a:<id>` / `d:<id>` to the chat command it stands for.
pub(crate) fn command(data: &str) -> Option<String> {
    let (verb, id) = match data.split_once(':')? {
        ("a", id) => ("approve", id),
        ("d", id) => ("deny", id),
        _ => return None,
    };
    (!id.is_empty() && !id.contains(char::is_whitespace)).then(|| format!("!{verb} {id}"))
}

/// Approve / Deny buttons for a pending prompt whose id fits in callback data.
pub(crate) fn keyboard(prompt: &PermissionPrompt) -> Option<InlineKeyboardMarkup> {
    let (approve, deny) = (format!("a:{}", prompt.id), format!("d:{}", prompt.id));
    if !prompt.pending || prompt.id.is_empty() || approve.len() > CALLBACK_DATA_MAX {
        return None;
    }
    let row = vec![InlineKeyboardButton::callback("Approve", approve), InlineKeyboardButton::callback("Deny", deny)];
    Some(InlineKeyboardMarkup::new(vec![row]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prompt(id: &str, pending: bool) -> PermissionPrompt {
        PermissionPrompt { id: id.to_owned(), title: "run ls".to_owned(), choices: Vec::new(), pending }
    }

    #[test]
    fn button_data_maps_to_commands() {
        assert_eq!(command("a:p1").as_deref(), Some("!approve p1"));
        assert_eq!(command("d:p1").as_deref(), Some("!deny p1"));
        assert_eq!(command("x:p1"), None);
        assert_eq!(command("a:"), None);
        assert_eq!(command("a:p 1"), None);
    }

    #[test]
    fn keyboards_only_for_pending_prompts_whose_data_fits() {
        assert!(keyboard(&prompt("p1", true)).is_some());
        assert!(keyboard(&prompt("p1", false)).is_none());
        assert!(keyboard(&prompt(&"x".repeat(62), true)).is_some());
        assert!(keyboard(&prompt(&"x".repeat(63), true)).is_none());
    }
}
