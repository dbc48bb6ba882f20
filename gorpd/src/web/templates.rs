//! The server-rendered pages: minijinja templates compiled into the binary
//! (`templates/*.html`), rendered with HTML auto-escaping on.
//!
//! Every value a handler passes is escaped when it reaches the page; nothing
//! here marks text as safe, so agent or user text can never become markup.
//! Templates are parsed once, on first use; a template error is a bug and
//! answers "internal error" (the unit tests render every page to catch it).

use super::WebError;
use axum::response::Html;
use minijinja::{Environment, UndefinedBehavior};
use serde::Serialize;
use std::sync::LazyLock;

/// Every template, by the name pages extend and import it by.
const SOURCES: &[(&str, &str)] = &[
    ("base.html", include_str!("templates/base.html")),
    ("forms.html", include_str!("templates/forms.html")),
    ("charts.html", include_str!("templates/charts.html")),
    ("chat.html", include_str!("templates/chat.html")),
    ("login.html", include_str!("templates/login.html")),
    ("dashboard.html", include_str!("templates/dashboard.html")),
    ("session.html", include_str!("templates/session.html")),
    ("tokens.html", include_str!("templates/tokens.html")),
    ("health.html", include_str!("templates/health.html")),
    ("automation.html", include_str!("templates/automation.html")),
];

static TEMPLATES: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut environment = Environment::new();
    // A misspelt variable fails the render (and the tests) instead of printing nothing.
    environment.set_undefined_behavior(UndefinedBehavior::Strict);
    for (name, source) in SOURCES {
        environment.add_template(name, source).expect("the compiled-in templates parse");
    }
    environment
});

/// What every page's frame shows besides its body.
#[derive(Debug, Serialize)]
pub(crate) struct Frame<'a> {
    /// The page title, also its heading.
    pub(crate) title: &'a str,
    /// The login session's CSRF token; the navigation bar shows only with one.
    pub(crate) csrf: Option<&'a str>,
    /// A one-time message from the last form.
    pub(crate) flash: Option<String>,
}

/// Renders `template` with the frame's fields and the page's own `page` fields (a struct or map).
pub(crate) fn render(template: &str, frame: Frame<'_>, page: impl Serialize) -> Result<Html<String>, WebError> {
    let context =
        minijinja::context! { ..minijinja::Value::from_serialize(&frame), ..minijinja::Value::from_serialize(&page) };
    TEMPLATES
        .get_template(template)
        .and_then(|template| template.render(context))
        .map(Html)
        .map_err(|error| WebError::internal(format!("template {template}: {error:#}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn frame(flash: Option<&str>) -> Frame<'static> {
        Frame { title: "T <1>", csrf: Some("c\"srf"), flash: flash.map(str::to_owned) }
    }

    fn page(template: &str, fields: serde_json::Value) -> String {
        render(template, frame(Some("<b>flash</b>")), fields).unwrap().0
    }

    #[test]
    fn values_are_escaped_in_text_and_attributes() {
        let html = page("chat.html", json!({}));
        assert!(html.contains("<title>T &lt;1&gt; · gorp</title>"), "{html}");
        assert!(html.contains("data-csrf=\"c&quot;srf\""), "{html}");
        assert!(html.contains("<p class=\"flash\" id=\"flash\">&lt;b&gt;flash&lt;&#x2f;b&gt;</p>"), "{html}");
        assert!(!html.contains("<b>"), "{html}");
    }

    #[test]
    fn every_page_renders_with_its_fields() {
        let evil = "<script>x</script>";
        let pages = [
            ("login.html", json!({ "error": evil, "password_login": true })),
            (
                "dashboard.html",
                json!({
                    "charts": [{ "id": evil, "title": evil, "unit": "ms", "last": "1", "peak": "2", "total": "3", "points": "0,1 2,3" }],
                    "sessions": [{ "name": evil, "agent": "echo", "state": "idle", "queued": 0, "channels": [evil] }],
                    "gateways": [{ "id": evil, "platform": "slack", "connected": true, "last_seen": "t", "pending": 1,
                                   "oldest_pending": "3 s", "undecryptable": "–" }],
                    "errors": [{ "seq": 1, "at": "t", "session": evil, "text": evil }],
                }),
            ),
            (
                "session.html",
                json!({
                    "agent": evil, "state": "idle", "workspace": evil, "usage": evil, "url": "/admin/sessions/a",
                    "channels": [{ "name": evil, "platform": evil, "channel": evil }],
                    "history": [{ "author": evil, "text": evil }],
                }),
            ),
            (
                "tokens.html",
                json!({ "tokens": [
                    { "id": 1, "name": evil, "kind": "admin", "created": "t", "revoked": null },
                    { "id": 2, "name": "b", "kind": "admin", "created": "t", "revoked": "t" },
                ]}),
            ),
            (
                "health.html",
                json!({
                    "sessions": 1, "inbound": 2, "db_bytes": 3, "db_free": 4, "rows": [evil],
                    "messages_in": 5, "responses_out": 6, "errors": 7, "compaction": evil,
                }),
            ),
            (
                "automation.html",
                json!({
                    "schedules": [{ "id": 1, "session": evil, "spec": evil, "description": evil, "timezone": "UTC",
                        "next": "t", "last": "", "failures": 0, "prompt": evil, "toggle": "pause" }],
                    "hooks": [{ "session": evil, "template": evil, "per_minute": 10, "created": "t", "rotated": "" }],
                }),
            ),
        ];
        for (template, fields) in pages {
            let html = page(template, fields);
            assert!(!html.contains("<script>"), "{template}: {html}");
            assert!(html.contains("&lt;script&gt;"), "{template}: {html}");
        }
    }

    #[test]
    fn a_missing_field_is_an_error_not_an_empty_string() {
        assert!(matches!(render("health.html", frame(None), json!({})), Err(WebError::Internal)));
    }
}
