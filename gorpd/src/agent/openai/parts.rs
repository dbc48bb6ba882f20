//! A prompt's files in a chat completion request. Images become
//! `image_url` parts (base64 data URLs) when the profile says the endpoint
//! takes them (`images = true`); small text files (`text/*`, at most
//! [`INLINE_TEXT_BYTES`]) are added to the message as text; anything else,
//! and every image for endpoints without images, is named in one line.

use super::messages::{Message, Role};
use crate::agent::{PromptFile, describe};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Serialize;

/// Largest text file whose content goes into the prompt.
pub(super) const INLINE_TEXT_BYTES: u64 = 32 * 1024;

/// One message as sent: plain text, or parts when it carries images.
#[derive(Debug, Serialize)]
pub(super) struct WireMessage<'a> {
    role: Role,
    content: WireContent<'a>,
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
enum WireContent<'a> {
    Text(&'a str),
    Parts(Vec<Part>),
}

#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Part {
    Text { text: String },
    ImageUrl { image_url: ImageUrl },
}

#[derive(Debug, Serialize)]
struct ImageUrl {
    url: String,
}

/// The messages as sent, the last one (the new user message) with `files`.
pub(super) async fn wire_messages<'a>(
    messages: &'a [Message],
    files: &[PromptFile],
    images: bool,
) -> Vec<WireMessage<'a>> {
    let mut wire: Vec<WireMessage<'a>> =
        messages.iter().map(|m| WireMessage { role: m.role, content: WireContent::Text(&m.content) }).collect();
    let Some(last) = wire.last_mut().filter(|_| !files.is_empty()) else { return wire };
    let WireContent::Text(text) = last.content else { return wire };
    let mut parts = vec![Part::Text { text: text.to_owned() }];
    for file in files {
        parts.push(part(file, images).await);
    }
    last.content = WireContent::Parts(parts);
    wire
}

async fn part(file: &PromptFile, images: bool) -> Part {
    let wanted = (images && file.is_image()) || is_small_text(file);
    let bytes = match wanted {
        true => tokio::fs::read(&file.path).await.ok(),
        false => None,
    };
    match bytes {
        Some(bytes) if file.is_image() => {
            let url = format!("data:{};base64,{}", file.media_type, BASE64.encode(bytes));
            Part::ImageUrl { image_url: ImageUrl { url } }
        }
        Some(bytes) => {
            Part::Text { text: format!("[attached file {}]\n```\n{}\n```", file.name, String::from_utf8_lossy(&bytes)) }
        }
        None => Part::Text { text: describe(file) },
    }
}

fn is_small_text(file: &PromptFile) -> bool {
    file.media_type.starts_with("text/") && file.size <= INLINE_TEXT_BYTES
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(dir: &tempfile::TempDir, name: &str, media_type: &str, bytes: &[u8]) -> PromptFile {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        PromptFile { name: name.into(), media_type: media_type.into(), size: bytes.len() as u64, path }
    }

    #[tokio::test]
    async fn images_become_data_urls_only_for_endpoints_that_take_them() {
        let dir = tempfile::tempdir().unwrap();
        let files = [file(&dir, "a.png", "image/png", b"PNG"), file(&dir, "n.txt", "text/plain", b"notes")];
        let messages = [Message { role: Role::User, content: "look".into() }];
        let with = serde_json::to_value(wire_messages(&messages, &files, true).await).unwrap();
        assert_eq!(with[0]["content"][0], serde_json::json!({"type": "text", "text": "look"}));
        assert_eq!(with[0]["content"][1]["image_url"]["url"], "data:image/png;base64,UE5H");
        assert!(with[0]["content"][2]["text"].as_str().unwrap().contains("notes"));
        let without = serde_json::to_value(wire_messages(&messages, &files, false).await).unwrap();
        assert_eq!(without[0]["content"][1]["text"], "[attached file a.png (image/png, 3 bytes)]");
        let plain = serde_json::to_value(wire_messages(&messages, &[], true).await).unwrap();
        assert_eq!(plain[0]["content"], "look", "no files: content stays a string");
    }
}
