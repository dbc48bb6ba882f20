//! Accepting the attachments of one inbound message: every check first
//! (count, names, media types, references, sizes), then the inline bytes
//! are stored, so a refused message stores nothing.

use super::{FileError, FileStore, INLINE_MAX_BYTES, INLINE_MAX_TOTAL, MAX_ATTACHMENTS, limits::human_bytes};
use crate::domain::Attachment;

/// An attachment as a client sent it: inline bytes, or the address of an upload.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttachmentIn {
    /// The file's name.
    pub name: String,
    /// Its media type; empty means `application/octet-stream`.
    pub media_type: String,
    /// The size the client says it has; 0 when not given.
    pub size: u64,
    /// The address of an uploaded file (or of `data`, to be checked); may be empty with `data`.
    pub sha256: String,
    /// The bytes, for a small file sent inline.
    pub data: Vec<u8>,
}

/// A file name: 1-255 bytes, no control characters, no path separators.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 255 {
        return Err(format!("attachment name must be 1-255 bytes, not {}", name.len()));
    }
    if name.chars().any(|c| c.is_control() || c == '/' || c == '\\') || name == "." || name == ".." {
        return Err(format!("attachment name {name:?} may not contain control characters, '/' or '\\'"));
    }
    Ok(())
}

/// A media type (`type/subtype`, optional parameters), lowercased; empty is `application/octet-stream`.
pub fn check_media_type(media_type: &str) -> Result<String, String> {
    if media_type.is_empty() {
        return Ok("application/octet-stream".to_owned());
    }
    let essence = media_type.split(';').next().unwrap_or_default().trim();
    let token =
        |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b));
    let valid = media_type.len() <= 127
        && media_type.chars().all(|c| c.is_ascii() && !c.is_control())
        && essence.split_once('/').is_some_and(|(kind, sub)| token(kind) && token(sub));
    if valid {
        Ok(media_type.to_ascii_lowercase())
    } else {
        Err(format!("attachment media type {media_type:?} is not of the form type/subtype"))
    }
}

impl FileStore {
    /// Checks and stores one message's attachments; on any error nothing new is stored.
    pub async fn accept(&self, items: Vec<AttachmentIn>) -> Result<Vec<Attachment>, FileError> {
        if items.len() > MAX_ATTACHMENTS {
            return Err(FileError::Invalid(format!(
                "a message may carry at most {MAX_ATTACHMENTS} attachments, not {}",
                items.len()
            )));
        }
        let inline_total: usize = items.iter().map(|item| item.data.len()).sum();
        if inline_total > INLINE_MAX_TOTAL {
            return Err(FileError::TooLarge(format!(
                "inline attachment data ({}) is over {} per message: upload the files with UploadAttachment and name them by sha256",
                human_bytes(inline_total as u64),
                human_bytes(INLINE_MAX_TOTAL as u64)
            )));
        }
        let mut checked = Vec::with_capacity(items.len());
        for item in items {
            checked.push(self.check(item).await?);
        }
        self.limits.check_message(checked.iter().map(|(attachment, _)| attachment.size).sum())?;
        let mut stored = Vec::with_capacity(checked.len());
        for (mut attachment, data) in checked {
            if let Some(data) = data {
                attachment.sha256 = self.put(&data).await?.sha256;
            }
            stored.push(attachment);
        }
        Ok(stored)
    }

    /// Checks one attachment without storing anything; returns it with its inline bytes, if any.
    async fn check(&self, item: AttachmentIn) -> Result<(Attachment, Option<Vec<u8>>), FileError> {
        let AttachmentIn { name, media_type, size, sha256, data } = item;
        check_name(&name).map_err(FileError::Invalid)?;
        let media_type = check_media_type(&media_type).map_err(FileError::Invalid)?;
        let attachment = |size, sha256| Attachment { name: name.clone(), media_type: media_type.clone(), size, sha256 };
        if data.is_empty() {
            if sha256.is_empty() {
                return Err(FileError::Invalid(format!("attachment {name:?} has neither data nor a sha256")));
            }
            let stored_size = self.touch(&sha256).await.map_err(|error| match error {
                FileError::NotFound(_) => FileError::Invalid(format!(
                    "attachment {name:?} names {sha256}, which was not uploaded (use UploadAttachment first)"
                )),
                other => other,
            })?;
            check_declared(&name, size, stored_size)?;
            self.limits.check_file(stored_size)?;
            return Ok((attachment(stored_size, sha256), None));
        }
        if data.len() > INLINE_MAX_BYTES {
            return Err(FileError::TooLarge(format!(
                "attachment {name:?} is {} inline; inline data is at most {}: upload it with UploadAttachment",
                human_bytes(data.len() as u64),
                human_bytes(INLINE_MAX_BYTES as u64)
            )));
        }
        let actual = data.len() as u64;
        check_declared(&name, size, actual)?;
        self.limits.check_file(actual)?;
        if !sha256.is_empty() {
            let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&data));
            if digest != sha256 {
                return Err(FileError::Invalid(format!("attachment {name:?}: its data does not match its sha256")));
            }
        }
        Ok((attachment(actual, String::new()), Some(data)))
    }
}

fn check_declared(name: &str, declared: u64, actual: u64) -> Result<(), FileError> {
    if declared != 0 && declared != actual {
        return Err(FileError::Invalid(format!("attachment {name:?} says it is {declared} bytes but is {actual}")));
    }
    Ok(())
}
