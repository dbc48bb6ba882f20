//! The file scripts: what a prompt's non-text blocks were (`blocks`), an
//! answer that carries an image (`picture`), and a file written to the
//! workspace's `outbox/` (`outbox`).

use agent_client_protocol::v1::ConnectionTo;
use agent_client_protocol::v1::schema::{
    ContentBlock, ContentChunk, EmbeddedResourceResource, ImageContent, PromptRequest, SessionId, SessionNotification,
    SessionUpdate,
};
use agent_client_protocol::{Client, Error};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use sha2::{Digest, Sha256};
use std::path::Path;

/// A 1×1 PNG: the image the `picture` script answers with.
pub(crate) const PICTURE: [u8; 67] = [
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4, 0x89, 0x00, 0x00, 0x00, 0x0a, 0x49,
    0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0x00, 0x01, 0x00, 0x00, 0x05, 0x00, 0x01, 0x0d, 0x0a, 0x2d, 0xb4, 0x00, 0x00,
    0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// One line per non-text block of the prompt (see the crate docs for the format).
pub(crate) fn describe_blocks(prompt: &PromptRequest) -> Vec<String> {
    prompt.prompt.iter().filter_map(describe).collect()
}

fn describe(block: &ContentBlock) -> Option<String> {
    Some(match block {
        ContentBlock::Text(_) => return None,
        ContentBlock::Image(image) => match BASE64.decode(image.data.as_bytes()) {
            Ok(bytes) => format!("image {} {} {}", image.mime_type, bytes.len(), sha256_hex(&bytes)),
            Err(_) => format!("image {} undecodable", image.mime_type),
        },
        ContentBlock::ResourceLink(link) => {
            let mime = link.mime_type.as_deref().unwrap_or("-");
            let size = link.size.map_or("-".to_owned(), |s| s.to_string());
            let content = link.uri.strip_prefix("file://").and_then(|path| std::fs::read(path).ok());
            let digest = content.map_or("unreadable".to_owned(), |bytes| sha256_hex(&bytes));
            format!("resource_link {} {mime} {size} {digest}", link.name)
        }
        ContentBlock::Resource(resource) => match &resource.resource {
            EmbeddedResourceResource::TextResourceContents(text) => format!("resource {}", text.uri),
            EmbeddedResourceResource::BlobResourceContents(blob) => format!("resource {}", blob.uri),
            _ => "resource".to_owned(),
        },
        ContentBlock::Audio(audio) => format!("audio {}", audio.mime_type),
        _ => "unknown block".to_owned(),
    })
}

/// Answers with an image block, then a line of text.
pub(crate) fn picture(cx: &ConnectionTo<Client>, session: &SessionId) -> Result<(), Error> {
    let image = ImageContent::new(BASE64.encode(PICTURE), "image/png").uri("chart.png".to_owned());
    let chunk = ContentChunk::new(ContentBlock::Image(image));
    cx.send_notification(SessionNotification::new(session.clone(), SessionUpdate::AgentMessageChunk(chunk)))?;
    crate::turns::send_chunk(cx, session, "here is a picture")
}

/// Writes `<name> <text>` as `cwd/outbox/<name>`; returns the answer.
pub(crate) fn write_outbox(cwd: &Path, rest: &str) -> String {
    let (name, text) = rest.split_once(' ').unwrap_or((rest, ""));
    let outbox = cwd.join("outbox");
    let written = std::fs::create_dir_all(&outbox).and_then(|()| std::fs::write(outbox.join(name), text));
    match written {
        Ok(()) => format!("wrote outbox/{name}"),
        Err(error) => format!("outbox failed: {error}"),
    }
}
