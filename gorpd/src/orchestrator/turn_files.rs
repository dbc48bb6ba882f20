//! Files of a turn: the user's attachments handed to the backend as
//! [`PromptFile`]s, and what the turn produced (images and resources in the
//! agent's answer, regular files written or changed in the workspace's
//! `outbox/` folder while the turn ran) stored content-addressed before the final answer is
//! committed, so the answer names only durable files. Within the limits of
//! `crate::files`: at most [`MAX_ATTACHMENTS`] files, each within the
//! per-file limit; what does not fit is named in a note under the answer.

use super::Orchestrator;
use crate::agent::{OUTBOX_DIR, ProducedFile, PromptFile};
use crate::domain::Attachment;
use crate::files::{FileError, MAX_ATTACHMENTS};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::SystemTime;

/// A turn's produced files as stored, and notes about those left out.
#[derive(Debug, Default)]
pub(super) struct TurnFiles {
    pub(super) attachments: Vec<Attachment>,
    pub(super) notes: Vec<String>,
}

impl Orchestrator {
    /// The backend's view of a message's attachments: where each one's bytes are.
    pub(super) fn prompt_files(&self, attachments: &[Attachment]) -> Vec<PromptFile> {
        attachments
            .iter()
            .map(|a| PromptFile {
                name: a.name.clone(),
                media_type: a.media_type.clone(),
                size: a.size,
                path: self.inner.files.path(&a.sha256),
            })
            .collect()
    }

    /// Stores what a turn produced: `produced` first, then the files of
    /// `outbox/` that are new or changed since `before` (taken at its start).
    pub(super) async fn store_turn_files(
        &self,
        workspace: &Path,
        before: &OutboxSnapshot,
        produced: Vec<ProducedFile>,
    ) -> TurnFiles {
        let mut stored = TurnFiles::default();
        let mut files = produced;
        let max_bytes = self.inner.files.limits().max_file_bytes;
        match OutboxSnapshot::take(workspace).await {
            Ok(after) => {
                for (name, (size, _)) in after.changed_since(before) {
                    if size > max_bytes {
                        stored.notes.push(format!(
                            "{OUTBOX_DIR}/{name} was not sent: it is over the limit of {max_bytes} bytes per file"
                        ));
                        continue;
                    }
                    match tokio::fs::read(workspace.join(OUTBOX_DIR).join(&name)).await {
                        Ok(bytes) => files.push(ProducedFile {
                            media_type: gorp_client::media_type_of(&name).to_owned(),
                            name,
                            bytes,
                        }),
                        Err(error) => stored.notes.push(format!("{OUTBOX_DIR}/{name} was not sent: {error}")),
                    }
                }
            }
            Err(error) => tracing::warn!(%error, "cannot read the workspace's outbox"),
        }
        for file in files {
            if stored.attachments.len() == MAX_ATTACHMENTS {
                stored
                    .notes
                    .push(format!("{} was not sent: at most {MAX_ATTACHMENTS} files go with one answer", file.name));
                continue;
            }
            match self.store_one(&file).await {
                Ok(attachment) => stored.attachments.push(attachment),
                Err(error) => {
                    tracing::warn!(%error, file = %file.name, "an agent's file was not stored");
                    stored.notes.push(format!("{} was not sent: {error}", file.name));
                }
            }
        }
        stored
    }

    async fn store_one(&self, file: &ProducedFile) -> Result<Attachment, FileError> {
        crate::files::check_name(&file.name).map_err(FileError::Invalid)?;
        let media_type = crate::files::check_media_type(&file.media_type).map_err(FileError::Invalid)?;
        let stored = self.inner.files.put(&file.bytes).await?;
        Ok(Attachment { name: file.name.clone(), media_type, size: stored.size, sha256: stored.sha256 })
    }
}

/// The regular files (no links, no folders) of a workspace's `outbox/`, by
/// name, with their size and modification time: taken when a turn starts,
/// so its end sends what is new or changed (timestamps alone are too coarse
/// to compare with the clock).
#[derive(Debug, Default, PartialEq)]
pub(super) struct OutboxSnapshot(BTreeMap<String, (u64, Option<SystemTime>)>);

impl OutboxSnapshot {
    /// The outbox of `workspace` now (empty when it has none).
    pub(super) async fn take(workspace: &Path) -> std::io::Result<Self> {
        let outbox = workspace.join(OUTBOX_DIR);
        // Most workspaces have no outbox: one quick syscall on this thread
        // says so, instead of two trips to the blocking pool every turn.
        if matches!(std::fs::symlink_metadata(&outbox), Err(error) if error.kind() == std::io::ErrorKind::NotFound) {
            return Ok(Self::default());
        }
        let mut entries = match tokio::fs::read_dir(outbox).await {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(error) => return Err(error),
        };
        let mut files = BTreeMap::new();
        while let Some(entry) = entries.next_entry().await? {
            // symlink_metadata: a link could point outside the workspace.
            let metadata = tokio::fs::symlink_metadata(entry.path()).await?;
            if metadata.is_file() {
                let name = entry.file_name().to_string_lossy().into_owned();
                files.insert(name, (metadata.len(), metadata.modified().ok()));
            }
        }
        Ok(Self(files))
    }

    /// The files that are not in `before`, or differ from it, by name.
    fn changed_since(self, before: &OutboxSnapshot) -> impl Iterator<Item = (String, (u64, Option<SystemTime>))> {
        self.0.into_iter().filter(move |(name, state)| before.0.get(name) != Some(state))
    }
}
