//! Conversions between Slack's JSON and the gateway's own types: Socket Mode
//! envelopes to [`Envelope`]s, `message` / `app_mention` events and
//! `block_actions` clicks to [`Inbound`] messages, the thread encoding of
//! message ids, and Approve / Deny buttons as Block Kit blocks.
//!
//! Message ids are stateless and survive restarts: a top-level message is
//! `<ts>`, a message inside a thread `<ts>@<thread_ts>`, so the answer's
//! `in_reply_to` says where to post it. A mention arrives twice (`message`
//! and `app_mention`) with one `ts`, so gorpd sees the second as a duplicate.
//! Slack reserves `&`, `<` and `>` in message text (for mentions and links):
//! they arrive as `&amp;`, `&lt;`, `&gt;` and are escaped the same way on the
//! way out, so code in answers shows as written. Envelopes are parsed with small local serde types rather than
//! slack-morphism's socket models: unknown fields and event types must never
//! make the reader fail, and the gateway reads only a handful of fields.

use gorp_gateway::{Inbound, PermissionPrompt};
use serde::Deserialize;
use serde_json::Value;
use slack_morphism::prelude::*;

/// The `action_id` of the Approve button.
pub(crate) const APPROVE: &str = "gorp_approve";
/// The `action_id` of the Deny button.
pub(crate) const DENY: &str = "gorp_deny";
/// Message subtypes that are still a user writing to the channel: a thread
/// reply also sent to the channel, and files shared (fetched and passed on
/// with their comment). Others (edits, deletions, joins, bot
/// posts) are not messages for gorpd.
const USER_SUBTYPES: [&str; 2] = ["thread_broadcast", "file_share"];
/// Block Kit's limit on a section's text, in characters.
const SECTION_MAX: usize = 3000;

/// One Socket Mode frame from Slack.
#[derive(Debug, Deserialize)]
pub(crate) struct Envelope {
    #[serde(rename = "type")]
    pub(crate) kind: String,
    /// Present on everything that must be acknowledged.
    pub(crate) envelope_id: Option<String>,
    #[serde(default)]
    pub(crate) payload: Value,
    /// Why a `disconnect` is sent.
    pub(crate) reason: Option<String>,
    #[serde(default)]
    pub(crate) retry_attempt: u32,
}

/// An `event_callback`'s `event`: the fields of `message` and `app_mention` the gateway reads.
#[derive(Debug, Deserialize)]
struct Event {
    #[serde(rename = "type")]
    kind: String,
    subtype: Option<String>,
    channel: Option<String>,
    user: Option<String>,
    bot_id: Option<String>,
    text: Option<String>,
    ts: Option<String>,
    thread_ts: Option<String>,
    #[serde(default)]
    files: Vec<FileRef>,
}

/// One of a message's `files`, as Slack describes it.
#[derive(Debug, Deserialize)]
struct FileRef {
    name: Option<String>,
    mimetype: Option<String>,
    #[serde(default)]
    size: u64,
    url_private_download: Option<String>,
}

/// A file of a user's message, to fetch with the bot token and upload to gorpd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SlackFile {
    pub(crate) name: String,
    pub(crate) media_type: String,
    pub(crate) size: u64,
    pub(crate) url: String,
}

/// The files of the message in an `events_api` payload (those Slack gives a download URL for).
pub(crate) fn event_files(payload: &Value) -> Vec<SlackFile> {
    let Some(event) = payload.get("event").and_then(|event| serde_json::from_value::<Event>(event.clone()).ok()) else {
        return Vec::new();
    };
    event
        .files
        .into_iter()
        .filter_map(|file| {
            Some(SlackFile {
                url: file.url_private_download?,
                name: file.name.unwrap_or_else(|| "file".to_owned()),
                media_type: file.mimetype.unwrap_or_default(),
                size: file.size,
            })
        })
        .collect()
}

/// A `block_actions` payload: who clicked what, where.
#[derive(Debug, Deserialize)]
struct BlockActions {
    #[serde(rename = "type")]
    kind: String,
    user: IdOnly,
    channel: Option<IdOnly>,
    #[serde(default)]
    actions: Vec<Action>,
}

#[derive(Debug, Deserialize)]
struct IdOnly {
    id: String,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Action {
    action_id: String,
    value: Option<String>,
    action_ts: Option<String>,
}

/// Parses one text frame; `None` if it is not an envelope at all.
pub(crate) fn envelope(frame: &str) -> Option<Envelope> {
    serde_json::from_str(frame).ok()
}

/// The message in an `events_api` payload, if it is one for gorpd: a plain
/// user message or mention, not from a bot (`bot_user` is our own user id),
/// with the leading mention of the bot removed.
pub(crate) fn event_message(payload: &Value, bot_user: &str) -> Option<Inbound> {
    if payload.get("type").and_then(Value::as_str) != Some("event_callback") {
        return None;
    }
    let event: Event = serde_json::from_value(payload.get("event")?.clone()).ok()?;
    let user_subtype = event.subtype.as_deref().is_none_or(|subtype| USER_SUBTYPES.contains(&subtype));
    if !matches!(event.kind.as_str(), "message" | "app_mention") || !user_subtype || event.bot_id.is_some() {
        return None;
    }
    let (channel, user, ts) = (event.channel?, event.user?, event.ts?);
    if user == bot_user {
        return None;
    }
    let text = unescape(strip_mention(event.text.as_deref().unwrap_or_default(), bot_user));
    if text.is_empty() && event.files.is_empty() {
        return None;
    }
    Some(Inbound {
        channel_id: channel,
        message_id: message_id(&ts, event.thread_ts.as_deref()),
        sender_name: user.clone(),
        sender_id: user,
        text,
        files: Vec::new(),
    })
}

/// Message text as Slack wants it: `&`, `<`, `>` escaped.
pub(crate) fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Message text from Slack with `&amp;`, `&lt;`, `&gt;` turned back.
fn unescape(text: &str) -> String {
    text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
}

/// The command an Approve / Deny click in an `interactive` payload stands for.
pub(crate) fn click(payload: &Value) -> Option<Inbound> {
    let actions: BlockActions = serde_json::from_value(payload.clone()).ok()?;
    if actions.kind != "block_actions" {
        return None;
    }
    let channel = actions.channel?.id;
    actions.actions.into_iter().find_map(|action| {
        let text = command(&action.action_id, action.value.as_deref()?)?;
        Some(Inbound {
            channel_id: channel.clone(),
            // Stable across redeliveries of the envelope, so gorpd de-duplicates it.
            message_id: format!("action-{}", action.action_ts?),
            sender_id: actions.user.id.clone(),
            sender_name: actions.user.name.clone().unwrap_or_else(|| actions.user.id.clone()),
            text,
            files: Vec::new(),
        })
    })
}

/// `gorp_approve` / `gorp_deny` with a permission id to the chat command.
pub(crate) fn command(action_id: &str, value: &str) -> Option<String> {
    let verb = match action_id {
        APPROVE => "approve",
        DENY => "deny",
        _ => return None,
    };
    (!value.is_empty() && !value.contains(char::is_whitespace)).then(|| format!("!{verb} {value}"))
}

/// The text without a leading `<@BOT>` (or `<@BOT|name>`) mention.
fn strip_mention<'a>(text: &'a str, bot_user: &str) -> &'a str {
    let text = text.trim();
    let Some(rest) = text.strip_prefix("<@").and_then(|r| r.strip_prefix(bot_user)) else { return text };
    let rest = match rest.strip_prefix('>') {
        Some(rest) => rest,
        None => match rest.strip_prefix('|').and_then(|r| r.split_once('>')) {
            Some((_, rest)) => rest,
            None => return text,
        },
    };
    rest.trim()
}

/// The gorp message id of a message: `ts`, or `ts@thread_ts` inside a thread.
pub(crate) fn message_id(ts: &str, thread_ts: Option<&str>) -> String {
    match thread_ts {
        Some(thread) if thread != ts => format!("{ts}@{thread}"),
        _ => ts.to_owned(),
    }
}

/// The thread an answer to message `in_reply_to` belongs in, if any.
pub(crate) fn reply_thread(in_reply_to: &str) -> Option<&str> {
    in_reply_to.split_once('@').map(|(_, thread)| thread).filter(|t| !t.is_empty())
}

/// A section with `text` and Approve / Deny buttons, for a pending prompt.
pub(crate) fn blocks(text: &str, prompt: &PermissionPrompt) -> Option<Vec<SlackBlock>> {
    if !prompt.pending || prompt.id.is_empty() {
        return None;
    }
    let button = |action: &str, label: &str, style| {
        SlackActionBlockElement::Button(
            SlackBlockButtonElement::new(pt!(label))
                .with_action_id(action.into())
                .with_value(prompt.id.clone())
                .with_style(style),
        )
    };
    // The full text stays in the message's `text` (the notification fallback).
    let shown: String = if text.chars().count() > SECTION_MAX {
        text.chars().take(SECTION_MAX - 1).chain(['…']).collect()
    } else {
        text.to_owned()
    };
    let section = SlackSectionBlock::new().with_text(SlackBlockText::Plain(SlackBlockPlainText::new(shown)));
    let actions = SlackActionsBlock::new(vec![
        button(APPROVE, "Approve", SlackBlockButtonStyle::Primary),
        button(DENY, "Deny", SlackBlockButtonStyle::Danger),
    ]);
    Some(vec![section.into(), actions.into()])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn callback(event: Value) -> Value {
        json!({ "type": "event_callback", "team_id": "T1", "api_app_id": "A1", "event": event, "event_id": "Ev1" })
    }

    fn message(extra: Value) -> Value {
        let mut event = json!({
            "type": "message", "channel": "C1", "user": "U1", "text": "hello", "ts": "1700000000.000100",
            "channel_type": "channel", "event_ts": "1700000000.000100",
        });
        event.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        callback(event)
    }

    #[test]
    fn a_user_message_becomes_inbound() {
        let inbound = event_message(&message(json!({})), "UBOT").expect("a message");
        assert_eq!(inbound.channel_id, "C1");
        assert_eq!(inbound.message_id, "1700000000.000100");
        assert_eq!(inbound.sender_id, "U1");
        assert_eq!(inbound.text, "hello");
    }

    #[test]
    fn threads_are_encoded_in_the_message_id() {
        let threaded = message(json!({ "ts": "2.000002", "thread_ts": "1.000001" }));
        assert_eq!(event_message(&threaded, "UBOT").unwrap().message_id, "2.000002@1.000001");
        assert_eq!(message_id("1.1", Some("1.1")), "1.1");
        assert_eq!(reply_thread("2.000002@1.000001"), Some("1.000001"));
        assert_eq!(reply_thread("2.000002"), None);
        assert_eq!(reply_thread("action-3.3"), None);
    }

    #[test]
    fn bots_edits_and_joins_are_ignored() {
        assert!(event_message(&message(json!({ "subtype": "message_changed" })), "UBOT").is_none());
        assert!(event_message(&message(json!({ "subtype": "channel_join" })), "UBOT").is_none());
        let broadcast = message(json!({ "subtype": "thread_broadcast", "ts": "2.2", "thread_ts": "1.1" }));
        assert_eq!(
            event_message(&broadcast, "UBOT").unwrap().message_id,
            "2.2@1.1",
            "a reply also sent to the channel"
        );
        assert!(event_message(&message(json!({ "subtype": "file_share" })), "UBOT").is_some(), "a file's comment");
        assert!(event_message(&message(json!({ "bot_id": "B1" })), "UBOT").is_none());
        assert!(event_message(&message(json!({ "user": "UBOT" })), "UBOT").is_none());
        assert!(event_message(&message(json!({ "type": "reaction_added" })), "UBOT").is_none());
        assert!(event_message(&json!({ "type": "url_verification" }), "UBOT").is_none());
    }

    #[test]
    fn a_mention_is_stripped_and_keeps_the_message_ts() {
        let mention = callback(json!({
            "type": "app_mention", "channel": "C1", "user": "U1", "text": "<@UBOT>  !help ", "ts": "5.5",
            "event_ts": "5.5",
        }));
        let inbound = event_message(&mention, "UBOT").unwrap();
        assert_eq!((inbound.text.as_str(), inbound.message_id.as_str()), ("!help", "5.5"));
        assert_eq!(strip_mention("<@UBOT|gorp> hi", "UBOT"), "hi");
        assert_eq!(strip_mention("<@UOTHER> hi", "UBOT"), "<@UOTHER> hi");
        assert!(event_message(&message(json!({ "text": "<@UBOT>" })), "UBOT").is_none());
    }

    #[test]
    fn reserved_characters_are_escaped_out_and_unescaped_in() {
        assert_eq!(escape("Vec<u8> && x > 1"), "Vec&lt;u8&gt; &amp;&amp; x &gt; 1");
        assert_eq!(unescape(&escape("a &lt; <b> & c")), "a &lt; <b> & c");
        let inbound = event_message(&message(json!({ "text": "if a &lt; b &amp;&amp; c" })), "UBOT").unwrap();
        assert_eq!(inbound.text, "if a < b && c");
    }

    #[test]
    fn a_button_click_becomes_a_command() {
        let payload = json!({
            "type": "block_actions", "user": { "id": "U1", "name": "alice" }, "channel": { "id": "D1" },
            "container": { "type": "message", "message_ts": "1.1" }, "trigger_id": "t",
            "actions": [{ "action_id": "gorp_approve", "block_id": "b", "value": "p1", "type": "button", "action_ts": "9.9" }],
        });
        let inbound = click(&payload).unwrap();
        assert_eq!(inbound.text, "!approve p1");
        assert_eq!((inbound.channel_id.as_str(), inbound.message_id.as_str()), ("D1", "action-9.9"));
        assert_eq!(inbound.sender_id, "U1");
        assert_eq!(command("gorp_deny", "p1").as_deref(), Some("!deny p1"));
        assert_eq!(command("other", "p1"), None);
        assert_eq!(command("gorp_deny", "p 1"), None);
    }

    #[test]
    fn pending_prompts_get_two_styled_buttons() {
        let prompt = PermissionPrompt { id: "p1".into(), title: "write".into(), choices: Vec::new(), pending: true };
        let blocks = serde_json::to_value(blocks("may I?", &prompt).unwrap()).unwrap();
        assert_eq!(blocks[0]["type"], "section");
        assert_eq!(blocks[0]["text"]["text"], "may I?");
        let buttons = &blocks[1]["elements"];
        assert_eq!(blocks[1]["type"], "actions");
        assert_eq!((buttons[0]["action_id"].as_str(), buttons[0]["value"].as_str()), (Some(APPROVE), Some("p1")));
        assert_eq!((buttons[0]["style"].as_str(), buttons[1]["style"].as_str()), (Some("primary"), Some("danger")));
        assert_eq!(
            (buttons[0]["text"]["text"].as_str(), buttons[1]["text"]["text"].as_str()),
            (Some("Approve"), Some("Deny"))
        );
        let long = serde_json::to_value(super::blocks(&"x".repeat(5000), &prompt).unwrap()).unwrap();
        assert_eq!(long[0]["text"]["text"].as_str().unwrap().chars().count(), SECTION_MAX);
        let resolved = PermissionPrompt { pending: false, ..prompt };
        assert!(super::blocks("done", &resolved).is_none());
    }

    #[test]
    fn envelopes_parse_and_junk_does_not() {
        let hello = envelope(r#"{"type":"hello","num_connections":1}"#).unwrap();
        assert_eq!((hello.kind.as_str(), hello.envelope_id), ("hello", None));
        let disconnect = envelope(r#"{"type":"disconnect","reason":"refresh_requested"}"#).unwrap();
        assert_eq!(disconnect.reason.as_deref(), Some("refresh_requested"));
        assert!(envelope("not json").is_none());
    }
}
