//! Files in ACP content blocks, both ways.
//!
//! Into a prompt: an image goes as an `image` block when the agent said it
//! takes images (`promptCapabilities.image`); any other file, and images for
//! agents that take none, is copied into the workspace's `inbox/` folder and
//! named by a `resource_link` block (which every agent must accept), so the
//! agent opens it with its own tools. Out of an answer: `image` blocks and
//! embedded `resource` blocks become files that go with the final answer.

use crate::agent::files::extension_of;
use crate::agent::{ProducedFile, PromptFile, describe};
use agent_client_protocol::v1::schema::{
    ContentBlock, EmbeddedResourceResource, ImageContent, ResourceLink, TextContent,
};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use std::path::Path;

/// The workspace folder a prompt's files are copied into.
pub(super) const INBOX_DIR: &str = "inbox";

/// The prompt's blocks: its text, then one block per file.
pub(super) async fn prompt_blocks(
    text: String,
    files: &[PromptFile],
    images: bool,
    workspace: &Path,
) -> Vec<ContentBlock> {
    let mut blocks = vec![ContentBlock::Text(TextContent::new(text))];
    for file in files {
        let block = match file_block(file, images, workspace).await {
            Ok(block) => block,
            Err(error) => {
                tracing::warn!(%error, file = %file.name, "cannot hand a file to the agent; describing it instead");
                ContentBlock::Text(TextContent::new(describe(file)))
            }
        };
        blocks.push(block);
    }
    blocks
}

async fn file_block(file: &PromptFile, images: bool, workspace: &Path) -> std::io::Result<ContentBlock> {
    if images && file.is_image() {
        let bytes = tokio::fs::read(&file.path).await?;
        return Ok(ContentBlock::Image(ImageContent::new(BASE64.encode(bytes), file.media_type.clone())));
    }
    let inbox = workspace.join(INBOX_DIR);
    tokio::fs::create_dir_all(&inbox).await?;
    let copy = inbox.join(&file.name);
    tokio::fs::copy(&file.path, &copy).await?;
    let uri = format!("file://{}", copy.display());
    let link = ResourceLink::new(file.name.clone(), uri).mime_type(file.media_type.clone()).size(file.size as i64);
    Ok(ContentBlock::ResourceLink(link))
}

/// The file an answer's content block carries, if it carries one; `count` numbers unnamed ones.
pub(super) fn produced_file(block: ContentBlock, count: usize) -> Option<ProducedFile> {
    match block {
        ContentBlock::Image(image) => {
            let bytes = BASE64.decode(image.data.as_bytes()).ok()?;
            let name = image
                .uri
                .as_deref()
                .and_then(file_name_of)
                .unwrap_or_else(|| format!("image-{count}.{}", extension_of(&image.mime_type)));
            Some(ProducedFile { name, media_type: image.mime_type, bytes })
        }
        ContentBlock::Resource(resource) => match resource.resource {
            EmbeddedResourceResource::BlobResourceContents(blob) => {
                let media_type = blob.mime_type.unwrap_or_else(|| "application/octet-stream".to_owned());
                let name =
                    file_name_of(&blob.uri).unwrap_or_else(|| format!("file-{count}.{}", extension_of(&media_type)));
                Some(ProducedFile { name, media_type, bytes: BASE64.decode(blob.blob.as_bytes()).ok()? })
            }
            EmbeddedResourceResource::TextResourceContents(text) => {
                let media_type = text.mime_type.unwrap_or_else(|| "text/plain".to_owned());
                let name =
                    file_name_of(&text.uri).unwrap_or_else(|| format!("file-{count}.{}", extension_of(&media_type)));
                Some(ProducedFile { name, media_type, bytes: text.text.into_bytes() })
            }
            _ => None,
        },
        _ => None,
    }
}

/// The last path segment of a URI, when there is a usable one.
fn file_name_of(uri: &str) -> Option<String> {
    let name = uri.rsplit('/').next()?.split(['?', '#']).next()?;
    crate::files::check_name(name).ok()?;
    Some(name.to_owned())
}
