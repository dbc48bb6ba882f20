//! Matrix events and gorp messages, both ways, without I/O.
//!
//! In: a room message becomes an [`Inbound`] on the channel of its room,
//! with ids that fit the bus (a room id or event id too long for the
//! 256-byte scoped message id is replaced by a short hash, see [`BusIds`]);
//! reply fallbacks are cut, edits and the bot's own and other bots'
//! notices are skipped. Out: Markdown answers become sanitised
//! `formatted_body` HTML (raw HTML is shown as text, links only to safe
//! schemes, images as links) next to the plain text; reactions ✅ / ❌ become
//! `!approve` / `!deny`.

use pulldown_cmark::{CowStr, Event, Options, Parser, Tag, TagEnd};
use sha2::{Digest, Sha256};

/// The bus's limit on a channel id and on a channel-scoped message id, in bytes.
const BUS_ID_MAX: usize = 256;

/// Room ids longer than this are hashed, so a scoped event id still fits.
const CHANNEL_ID_MAX: usize = 128;

/// Link schemes kept in answers; other links show as their text.
const SAFE_SCHEMES: [&str; 5] = ["https:", "http:", "mailto:", "matrix:", "mxc:"];

/// Reaction keys that answer a permission request.
const APPROVE_KEYS: [&str; 3] = ["✅", "✔️", "👍"];
const DENY_KEYS: [&str; 3] = ["❌", "✖️", "👎"];

/// Short stand-ins for Matrix ids the bus cannot hold whole.
pub(crate) struct BusIds;

impl BusIds {
    /// The channel id of a room: the room id, or `~<hash>` when it is long.
    pub(crate) fn channel(room_id: &str) -> String {
        if room_id.len() <= CHANNEL_ID_MAX { room_id.to_owned() } else { hashed(room_id) }
    }

    /// The message id of an event in `channel`: the event id, or `~<hash>`
    /// when `<channel>/<event id>` would pass the bus's limit.
    pub(crate) fn message(channel: &str, event_id: &str) -> String {
        if channel.len() + 1 + event_id.len() <= BUS_ID_MAX { event_id.to_owned() } else { hashed(event_id) }
    }

    /// Whether an id is a hashed stand-in.
    pub(crate) fn is_hashed(id: &str) -> bool {
        id.starts_with('~')
    }
}

fn hashed(id: &str) -> String {
    let digest = Sha256::digest(id.as_bytes());
    format!("~{}", &hex::encode(digest)[..40])
}

/// An answer's text as Matrix `formatted_body` HTML: CommonMark with
/// tables and strikethrough, raw HTML escaped, unsafe links dropped.
pub(crate) fn markdown_html(text: &str) -> String {
    let mut options = Options::empty();
    options.insert(Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH);
    let mut kept_links = Vec::new();
    let events = Parser::new_ext(text, options).filter_map(|event| sanitise(event, &mut kept_links));
    let mut html = String::with_capacity(text.len() * 5 / 4);
    pulldown_cmark::html::push_html(&mut html, events);
    html.trim_end().to_owned()
}

/// One Markdown event made safe; `kept_links` remembers, per open link or
/// image, whether it was kept, so its end matches.
fn sanitise<'a>(event: Event<'a>, kept_links: &mut Vec<bool>) -> Option<Event<'a>> {
    match event {
        Event::Html(raw) | Event::InlineHtml(raw) => Some(Event::Text(raw)),
        Event::Start(Tag::Link { link_type, dest_url, title, id })
        | Event::Start(Tag::Image { link_type, dest_url, title, id }) => {
            let safe = is_safe_url(&dest_url);
            kept_links.push(safe);
            safe.then_some(Event::Start(Tag::Link { link_type, dest_url, title, id }))
        }
        Event::End(TagEnd::Link | TagEnd::Image) => {
            kept_links.pop().unwrap_or(false).then_some(Event::End(TagEnd::Link))
        }
        other => Some(other),
    }
}

fn is_safe_url(url: &CowStr<'_>) -> bool {
    let lower = url.trim().to_ascii_lowercase();
    SAFE_SCHEMES.iter().any(|scheme| lower.starts_with(scheme))
}

/// A message's body without the quoted reply fallback (`> <@user> ...` lines
/// and the blank line after them) that older clients put before the text.
pub(crate) fn strip_reply_fallback(body: &str) -> &str {
    if !body.starts_with("> <") {
        return body;
    }
    let mut rest = body;
    while let Some(line_end) = rest.find('\n') {
        if !rest.starts_with('>') {
            break;
        }
        rest = &rest[line_end + 1..];
    }
    if rest.starts_with('>') { "" } else { rest.strip_prefix('\n').unwrap_or(rest) }
}

/// The command a reaction on a permission request stands for.
pub(crate) fn reaction_command(key: &str, prompt_id: &str) -> Option<String> {
    let key = key.trim();
    if APPROVE_KEYS.contains(&key) {
        Some(format!("!approve {prompt_id}"))
    } else if DENY_KEYS.contains(&key) {
        Some(format!("!deny {prompt_id}"))
    } else {
        None
    }
}

/// The hint under a pending permission request.
pub(crate) fn permission_hint(prompt_id: &str) -> String {
    format!("\n\nReact with ✅ to approve or ❌ to deny (or write `!approve {prompt_id}` / `!deny {prompt_id}`).")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_becomes_html_with_code_kept() {
        let html = markdown_html("**bold** and `x`\n\n```rust\nlet a = 1 < 2;\n```");
        assert!(html.contains("<strong>bold</strong>") && html.contains("<code>x</code>"), "{html}");
        assert!(html.contains("<pre><code class=\"language-rust\">let a = 1 &lt; 2;\n</code></pre>"), "{html}");
    }

    #[test]
    fn raw_html_and_unsafe_links_are_neutralised() {
        let html = markdown_html(
            "<script>alert(1)</script>\n\nhi <img src=x onerror=y> [a](javascript:alert(1)) [b](https://x.org) ![i](http://x.org/i.png)",
        );
        assert!(!html.contains("<script") && !html.contains("<img"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
        assert!(!html.contains("javascript:") && html.contains(">a<") || html.contains(" a "), "{html}");
        assert!(html.contains("<a href=\"https://x.org\">b</a>"), "{html}");
        assert!(html.contains("<a href=\"http://x.org/i.png\">i</a>"), "{html}");
    }

    #[test]
    fn long_ids_are_hashed_to_fit_the_bus() {
        let room = format!("!{}:example.org", "r".repeat(20));
        assert_eq!(BusIds::channel(&room), room);
        let long_room = format!("!abc:{}", "s".repeat(200));
        let channel = BusIds::channel(&long_room);
        assert!(BusIds::is_hashed(&channel) && channel.len() == 41);
        assert_eq!(channel, BusIds::channel(&long_room), "stable");
        let event = format!("${}", "e".repeat(43));
        assert_eq!(BusIds::message(&room, &event), event);
        let long_event = format!("$e:{}", "s".repeat(250));
        let id = BusIds::message(&channel, &long_event);
        assert!(channel.len() + 1 + id.len() <= BUS_ID_MAX && BusIds::is_hashed(&id));
    }

    #[test]
    fn reply_fallbacks_are_cut() {
        assert_eq!(strip_reply_fallback("> <@a:x> question\n> more\n\nanswer"), "answer");
        assert_eq!(strip_reply_fallback("> quote without sender\n\ntext"), "> quote without sender\n\ntext");
        assert_eq!(strip_reply_fallback("plain"), "plain");
    }

    #[test]
    fn reactions_map_to_permission_commands() {
        assert_eq!(reaction_command("✅", "p1").as_deref(), Some("!approve p1"));
        assert_eq!(reaction_command("❌", "p1").as_deref(), Some("!deny p1"));
        assert_eq!(reaction_command("🎉", "p1"), None);
    }
}
