//! The prompt template: how a user's message is framed for an agent, so an
//! agent in a shared channel knows who speaks ("alice (telegram): hi").
//!
//! A template is checked once, when the configuration loads: it must use
//! `{text}` and may use only the placeholders in [`PLACEHOLDERS`]; `{{` and
//! `}}` stand for literal braces.

/// The template of profiles that set none.
pub const DEFAULT_PROMPT_TEMPLATE: &str = "{sender} ({platform}): {text}";

/// Every placeholder a template may use.
pub const PLACEHOLDERS: [&str; 4] = ["sender", "platform", "channel", "text"];

/// Who wrote a prompt.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sender {
    /// Display name (or id) as the platform reported it.
    pub name: String,
    /// Platform id (`web`, `telegram`, …).
    pub platform: String,
    /// The platform's channel id.
    pub channel: String,
}

/// A checked prompt template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptTemplate {
    pieces: Vec<Piece>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(String),
    Field(&'static str),
}

impl PromptTemplate {
    /// Parses `template`; the error says what is wrong with it.
    pub fn parse(template: &str) -> Result<Self, String> {
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut rest = template;
        while let Some(at) = rest.find(['{', '}']) {
            literal.push_str(&rest[..at]);
            let tail = &rest[at..];
            if let Some(after) = tail.strip_prefix("{{").or_else(|| tail.strip_prefix("}}")) {
                literal.push_str(&tail[..1]);
                rest = after;
                continue;
            }
            let Some(end) = tail.strip_prefix('{').and_then(|t| t.find('}')) else {
                return Err(format!("unmatched brace in \"{template}\" (write {{{{ or }}}} for a literal one)"));
            };
            let name = &tail[1..=end];
            let Some(field) = PLACEHOLDERS.iter().find(|p| **p == name) else {
                return Err(format!("unknown placeholder {{{name}}} (known: {})", known()));
            };
            pieces.push(Piece::Literal(std::mem::take(&mut literal)));
            pieces.push(Piece::Field(field));
            rest = &tail[end + 2..];
        }
        literal.push_str(rest);
        pieces.push(Piece::Literal(literal));
        pieces.retain(|p| *p != Piece::Literal(String::new()));
        if !pieces.contains(&Piece::Field("text")) {
            return Err(format!("\"{template}\" does not use {{text}}, so the message itself would be lost"));
        }
        Ok(Self { pieces })
    }

    /// The default template.
    pub fn default_template() -> Self {
        Self::parse(DEFAULT_PROMPT_TEMPLATE).expect("the default template is valid")
    }

    /// `text` from `sender`, framed by the template.
    pub fn render(&self, sender: &Sender, text: &str) -> String {
        let mut out = String::with_capacity(text.len() + 32);
        for piece in &self.pieces {
            out.push_str(match piece {
                Piece::Literal(literal) => literal,
                Piece::Field("sender") => &sender.name,
                Piece::Field("platform") => &sender.platform,
                Piece::Field("channel") => &sender.channel,
                Piece::Field(_) => text,
            });
        }
        out
    }
}

fn known() -> String {
    PLACEHOLDERS.map(|p| format!("{{{p}}}")).join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> Sender {
        Sender { name: "Alice".into(), platform: "telegram".into(), channel: "42".into() }
    }

    #[test]
    fn the_default_names_sender_and_platform() {
        assert_eq!(PromptTemplate::default_template().render(&alice(), "hi {there}"), "Alice (telegram): hi {there}");
    }

    #[test]
    fn every_placeholder_and_literal_braces_render() {
        let template = PromptTemplate::parse("[{platform}:{channel}] {{{sender}}} says\n{text}").unwrap();
        assert_eq!(template.render(&alice(), "hello"), "[telegram:42] {Alice} says\nhello");
        assert_eq!(PromptTemplate::parse("{text}").unwrap().render(&alice(), "x"), "x");
    }

    #[test]
    fn bad_templates_are_refused_with_the_reason() {
        for (template, reason) in [
            ("{sender} says", "does not use {text}"),
            ("{who}: {text}", "unknown placeholder {who}"),
            ("{text", "unmatched brace"),
            ("{text} }", "unmatched brace"),
        ] {
            let error = PromptTemplate::parse(template).unwrap_err();
            assert!(error.contains(reason), "{template}: {error}");
        }
    }
}
