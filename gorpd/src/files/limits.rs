//! The documented limits on attachments: per file, per message, inline.

use super::FileError;

/// Most attachments one message may carry.
pub const MAX_ATTACHMENTS: usize = 10;
/// Largest file sent inline (`Attachment.data`); larger ones are uploaded first.
pub const INLINE_MAX_BYTES: usize = 256 * 1024;
/// Largest total of inline bytes in one request.
pub const INLINE_MAX_TOTAL: usize = 1024 * 1024;
/// Largest chunk of an upload or a download.
pub const CHUNK_BYTES: usize = 1024 * 1024;

/// The configured size limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileLimits {
    /// Largest single file, in bytes.
    pub max_file_bytes: u64,
    /// Largest total of one message's files, in bytes.
    pub max_message_bytes: u64,
}

impl Default for FileLimits {
    fn default() -> Self {
        Self { max_file_bytes: 25 * 1024 * 1024, max_message_bytes: 100 * 1024 * 1024 }
    }
}

impl FileLimits {
    /// Refuses a file of `size` bytes when over the per-file limit.
    pub fn check_file(&self, size: u64) -> Result<(), FileError> {
        if size > self.max_file_bytes {
            return Err(FileError::TooLarge(format!(
                "the file is over the limit of {} per attachment (max_attachment_bytes)",
                human_bytes(self.max_file_bytes)
            )));
        }
        Ok(())
    }

    /// Refuses a message whose files together are `total` bytes when over the per-message limit.
    pub fn check_message(&self, total: u64) -> Result<(), FileError> {
        if total > self.max_message_bytes {
            return Err(FileError::TooLarge(format!(
                "the message's attachments ({}) are over the limit of {} per message (max_message_attachment_bytes)",
                human_bytes(total),
                human_bytes(self.max_message_bytes)
            )));
        }
        Ok(())
    }
}

/// `1.5 MiB`, `300 KiB`, `12 bytes`.
pub(crate) fn human_bytes(bytes: u64) -> String {
    const KIB: u64 = 1024;
    match bytes {
        b if b >= KIB * KIB => format!("{:.1} MiB", b as f64 / (KIB * KIB) as f64).replace(".0 ", " "),
        b if b >= KIB => format!("{} KiB", b / KIB),
        b => format!("{b} bytes"),
    }
}
