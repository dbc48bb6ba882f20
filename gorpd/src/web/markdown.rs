//! Answers as HTML for the web chat: CommonMark with tables, strikethrough and
//! task lists, rendered on the server with `pulldown-cmark`.
//!
//! Safe by construction: raw HTML in the text (block or inline) becomes
//! escaped text, links keep only `https:`, `http:` and `mailto:` targets (any
//! other link, relative ones included, shows as its text) and open in a new
//! tab without a referrer, and images become such links, so an answer never
//! loads anything by itself. Line breaks are kept (as in chat messages).
//! Fenced code keeps its language as a `language-<name>` class for the
//! page's highlighter.

use pulldown_cmark::{CowStr, Event, Options, Parser, Tag, TagEnd};

/// Link targets kept; every other link shows as its text.
const SAFE_SCHEMES: [&str; 3] = ["https:", "http:", "mailto:"];

/// `text` rendered as safe HTML.
pub(crate) fn to_html(text: &str) -> String {
    let options = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS;
    let mut links = Vec::new();
    let events = Parser::new_ext(text, options).filter_map(|event| made_safe(event, &mut links));
    let mut html = String::with_capacity(text.len() * 5 / 4);
    pulldown_cmark::html::push_html(&mut html, events);
    html.trim_end().to_owned()
}

/// One event made safe. `links` remembers, per open link or image, whether it
/// became an anchor, so its end matches.
fn made_safe<'a>(event: Event<'a>, links: &mut Vec<bool>) -> Option<Event<'a>> {
    match event {
        Event::Html(raw) | Event::InlineHtml(raw) => Some(Event::Text(raw)),
        // A chat keeps the line breaks its writer typed.
        Event::SoftBreak => Some(Event::HardBreak),
        Event::Start(Tag::Link { dest_url, .. }) | Event::Start(Tag::Image { dest_url, .. }) => {
            let anchor = safe_url(&dest_url).then(|| anchor_start(&dest_url));
            links.push(anchor.is_some());
            anchor.map(|html| Event::Html(html.into()))
        }
        Event::End(TagEnd::Link | TagEnd::Image) => {
            links.pop().unwrap_or(false).then_some(Event::Html(CowStr::Borrowed("</a>")))
        }
        other => Some(other),
    }
}

fn safe_url(url: &str) -> bool {
    let lower = url.trim_start().to_ascii_lowercase();
    SAFE_SCHEMES.iter().any(|scheme| lower.starts_with(scheme))
}

/// The opening tag of a link to `url` (already checked to be safe).
fn anchor_start(url: &str) -> String {
    // Percent-encodes what an attribute value cannot hold and writes `&` and `'` as entities.
    let mut href = String::new();
    pulldown_cmark_escape::escape_href(&mut href, url.trim()).expect("writing to a String");
    format!(r#"<a href="{href}" rel="noopener noreferrer" target="_blank">"#)
}

#[cfg(test)]
mod tests {
    use super::to_html;

    #[test]
    fn raw_html_is_shown_as_text() {
        let html = to_html("echo: <script>alert(1)</script><b>bold?</b>\n\n<div onclick=x>block</div>");
        assert!(!html.contains("<script") && !html.contains("<b>") && !html.contains("<div"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;&lt;b&gt;bold?&lt;/b&gt;"), "{html}");
    }

    #[test]
    fn only_safe_links_become_anchors() {
        let html = to_html(
            "[ok](https://example.org/a?b=1&c=\"2\") [js](javascript:alert(1)) [JS]( JavaScript:x) \
             [rel](/admin) [data](data:text/html,x) [mail](mailto:a@b.c) ![img](https://example.org/p.png)",
        );
        assert_eq!(html.matches("<a ").count(), 3, "{html}");
        assert!(
            html.contains(
                r#"<a href="https://example.org/a?b=1&amp;c=%222%22" rel="noopener noreferrer" target="_blank">ok</a>"#
            ),
            "{html}"
        );
        assert!(html.contains(r#"href="mailto:a@b.c""#) && html.contains(">img</a>"), "{html}");
        assert!(!html.contains("javascript") && !html.contains("JavaScript:") && !html.contains("data:"), "{html}");
        assert!(!html.contains("<img"), "{html}");
    }

    #[test]
    fn code_tables_and_emphasis_render() {
        let html = to_html("**b** *i* ~~s~~ `c`\n\n```rust\nfn main() {}\n```\n\n| a | b |\n|---|---|\n| 1 | 2 |");
        for part in ["<strong>b</strong>", "<em>i</em>", "<del>s</del>", "<code>c</code>", "<table>", "<td>2</td>"] {
            assert!(html.contains(part), "{part} in {html}");
        }
        assert!(html.contains(r#"<pre><code class="language-rust">fn main() {}"#), "{html}");
    }
}
