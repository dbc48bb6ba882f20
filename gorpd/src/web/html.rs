//! HTML helpers for the server-rendered pages: escaping and the page frame.
//! Every piece of text that reaches a page goes through [`escape`].

/// Escapes text for HTML element content and quoted attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:60rem;margin:1rem auto;padding:0 1rem}\
nav a{margin-right:1rem}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2rem .5rem;text-align:left}\
.error{color:#b00}.msg{white-space:pre-wrap;margin:.3rem 0;padding:.3rem .5rem;border-radius:.3rem;background:#f3f3f3}\
.msg pre{background:#fff;padding:.4rem;margin:.2rem 0;overflow-x:auto}.msg.me{background:#e3efff}.msg.partial{opacity:.7}.msg .progress{font-size:.85em;color:#555;border-left:2px solid #ccc;padding-left:.4rem;margin:.2rem 0}.msg.kind-error{background:#fde}.flash{background:#ffd;padding:.5rem}\
form.inline{display:inline}#log{min-height:10rem}";

/// A full page: `title` (escaped) and `body` (already HTML).
pub(crate) fn layout(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title} · gorp</title>\
         <meta name=\"viewport\" content=\"width=device-width\"><style>{STYLE}</style></head>\
         <body>{body}</body></html>\n",
        title = escape(title)
    )
}

/// The navigation bar of logged-in pages, with the logout form.
pub(crate) fn nav(csrf: &str) -> String {
    format!(
        "<nav><a href=\"/\">Chat</a><a href=\"/admin\">Dashboard</a><a href=\"/admin/automation\">Schedules</a><a href=\"/admin/tokens\">Tokens</a>\
         <a href=\"/admin/health\">Health</a>{}</nav>",
        post_button("/logout", csrf, "Log out", &[])
    )
}

/// A one-button POST form carrying the CSRF token and `fields` (names and values escaped).
pub(crate) fn post_button(action: &str, csrf: &str, label: &str, fields: &[(&str, &str)]) -> String {
    let hidden: String = fields
        .iter()
        .map(|(name, value)| format!("<input type=\"hidden\" name=\"{}\" value=\"{}\">", escape(name), escape(value)))
        .collect();
    format!(
        "<form class=\"inline\" method=\"post\" action=\"{}\">{}{hidden}<button>{}</button></form>",
        escape(action),
        csrf_field(csrf),
        escape(label)
    )
}

/// The hidden CSRF field of a form.
pub(crate) fn csrf_field(csrf: &str) -> String {
    format!("<input type=\"hidden\" name=\"csrf\" value=\"{}\">", escape(csrf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_neutralises_markup_and_quotes() {
        assert_eq!(
            escape("<script>alert('x')</script> & \"y\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;y&quot;"
        );
    }
}
