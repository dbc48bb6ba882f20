//! The JSON of the chat completions API: the streaming request gorpd sends,
//! the chunks it reads back, and the error bodies endpoints answer with.
//!
//! Unknown fields are ignored, and everything but the text is optional, so
//! the many OpenAI-compatible servers that differ in details all parse.

use super::parts::WireMessage;
use serde::{Deserialize, Serialize};

/// The endpoint's error message: from an OpenAI-style JSON body, else the start of the text.
pub(super) fn endpoint_message(body: &[u8]) -> Option<String> {
    if let Ok(error) = serde_json::from_slice::<ErrorBody>(body) {
        return Some(error.into_message());
    }
    let text = String::from_utf8_lossy(body);
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    (!text.is_empty()).then(|| text.chars().take(200).collect())
}

/// A streaming chat completion request.
#[derive(Serialize)]
pub(super) struct ChatRequest<'a> {
    pub(super) model: &'a str,
    pub(super) messages: &'a [WireMessage<'a>],
    pub(super) stream: bool,
    pub(super) stream_options: StreamOptions,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) temperature: Option<f32>,
}

/// Asks for a last chunk with the token usage.
#[derive(Serialize)]
pub(super) struct StreamOptions {
    pub(super) include_usage: bool,
}

/// One `data:` event of the stream: a piece of text, the usage, or an error.
#[derive(Deserialize)]
pub(super) struct StreamChunk {
    pub(super) choices: Option<Vec<Choice>>,
    pub(super) usage: Option<Usage>,
    pub(super) error: Option<ErrorDetail>,
}

/// One of the completions (gorpd asks for one).
#[derive(Deserialize)]
pub(super) struct Choice {
    pub(super) delta: Option<Delta>,
}

/// What a chunk adds to the message.
#[derive(Deserialize)]
pub(super) struct Delta {
    pub(super) content: Option<String>,
}

/// Tokens used by the request.
#[derive(Deserialize)]
pub(super) struct Usage {
    pub(super) prompt_tokens: Option<u64>,
    pub(super) completion_tokens: Option<u64>,
}

/// `{"error": {"message": ..}}` (OpenAI, llama.cpp), `{"error": ".."}` or `{"message": ..}` (some proxies).
#[derive(Deserialize)]
#[serde(untagged)]
enum ErrorBody {
    Wrapped { error: ErrorDetail },
    Flat { message: String },
}

/// An error as an object with a message, or as a bare string.
#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum ErrorDetail {
    Object { message: String },
    Text(String),
}

impl ErrorBody {
    fn into_message(self) -> String {
        match self {
            Self::Wrapped { error } => error.into_message(),
            Self::Flat { message } => message,
        }
    }
}

impl ErrorDetail {
    pub(super) fn into_message(self) -> String {
        match self {
            Self::Object { message } | Self::Text(message) => message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_messages_are_taken_from_json_or_text() {
        let message = |body: &str| endpoint_message(body.as_bytes());
        assert_eq!(message(r#"{"error":{"message":"bad key","type":"auth","code":null}}"#).as_deref(), Some("bad key"));
        assert_eq!(message(r#"{"error":"no such model"}"#).as_deref(), Some("no such model"));
        assert_eq!(message(r#"{"object":"error","message":"too long","code":400}"#).as_deref(), Some("too long"));
        assert_eq!(message("<html>\n  Bad   Gateway\n</html>").as_deref(), Some("<html> Bad Gateway </html>"));
        assert_eq!(message(" \n"), None);
    }
}
