//! Files between gorp and agents: what a prompt carries (files the user
//! sent, stored by `crate::files`) and what a turn produces (images and
//! resources in the agent's answer, files it writes to `outbox/`).
//! Backends decide how to show a prompt's files to their agent; those that
//! cannot take a file get [`describe`]'s line instead.

use std::path::PathBuf;

/// The folder of a workspace whose files, written during a turn, go out with its answer.
pub const OUTBOX_DIR: &str = "outbox";

/// A file the user sent with a prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptFile {
    /// Its name.
    pub name: String,
    /// Its media type.
    pub media_type: String,
    /// Its size in bytes.
    pub size: u64,
    /// Where its bytes are (in gorp's data directory; read only).
    pub path: PathBuf,
}

impl PromptFile {
    /// Whether it is an image (`image/*`).
    pub fn is_image(&self) -> bool {
        self.media_type.starts_with("image/")
    }
}

/// A file an agent produced during a turn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducedFile {
    /// Its name.
    pub name: String,
    /// Its media type.
    pub media_type: String,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

/// One line naming a file for an agent that cannot take it as it is.
pub fn describe(file: &PromptFile) -> String {
    format!("[attached file {} ({}, {} bytes)]", file.name, file.media_type, file.size)
}

/// The extension gorp gives a produced file of `media_type` that came without a name.
pub(crate) fn extension_of(media_type: &str) -> &'static str {
    match media_type.split(';').next().unwrap_or_default().trim() {
        "image/png" => "png",
        "image/jpeg" => "jpg",
        "image/gif" => "gif",
        "image/webp" => "webp",
        "image/svg+xml" => "svg",
        "text/plain" => "txt",
        "text/markdown" => "md",
        "application/json" => "json",
        "application/pdf" => "pdf",
        _ => "bin",
    }
}
