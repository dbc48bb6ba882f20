//! Content-addressed file storage in the data directory: the bytes of every
//! attachment, stored once under their SHA-256 (`files/<aa>/<sha256>`).
//!
//! A file is written to `files/tmp/` while it arrives (hashed on the way),
//! fsynced, then renamed to its address and its directory fsynced, so a file
//! a message names is durable before that message is committed (callers
//! store the file first, then commit the row naming it through the store's
//! writer). Storing bytes that are there already writes nothing new and only
//! refreshes the file's time, which garbage collection reads: a file no
//! message names is removed once it is older than the grace period, so an
//! upload waiting for its message is never collected. The limits per file
//! and per message are checked before anything is written.

mod accept;
mod limits;

pub use accept::{AttachmentIn, check_media_type, check_name};
pub use limits::{CHUNK_BYTES, FileLimits, INLINE_MAX_BYTES, INLINE_MAX_TOTAL, MAX_ATTACHMENTS};

use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};
use tokio::io::AsyncWriteExt;

/// The folder of the data directory that holds the files.
pub const FILES_DIR: &str = "files";

/// Why a file could not be stored or read. Messages are shown to users.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// A file (or a message's files together) is over a limit; nothing was stored.
    #[error("{0}")]
    TooLarge(String),
    /// Bad input (a name, a media type, a reference); the text says what.
    #[error("{0}")]
    Invalid(String),
    /// No stored file has this address.
    #[error("no stored file {0}")]
    NotFound(String),
    /// Reading or writing the data directory failed.
    #[error("file storage: {0}")]
    Io(#[from] std::io::Error),
}

/// A file as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// Lowercase hex SHA-256 of its bytes.
    pub sha256: String,
    /// Its size.
    pub size: u64,
    /// The same bytes were stored already.
    pub existed: bool,
}

/// What one garbage collection removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Collected {
    /// Files no message names, removed.
    pub files: u64,
    /// Their bytes.
    pub bytes: u64,
}

/// A cheap, cloneable handle to the files of one data directory.
#[derive(Debug, Clone)]
pub struct FileStore {
    root: PathBuf,
    limits: FileLimits,
}

impl FileStore {
    /// The files under `root` (`files_dir`, by default `<data_dir>/files`),
    /// with these limits (directories are made on first write). Replicas may
    /// share one root: files are written under a temporary name and renamed
    /// to their content's address, so writers of the same file never clash.
    pub fn new(root: &Path, limits: FileLimits) -> Self {
        Self { root: root.to_path_buf(), limits }
    }

    /// The limits in force.
    pub fn limits(&self) -> FileLimits {
        self.limits
    }

    /// Where the file with this address lives (whether or not it exists).
    pub fn path(&self, sha256: &str) -> PathBuf {
        self.root.join(&sha256[..2]).join(sha256)
    }

    /// Starts storing one file of (optionally) known size; refused at once
    /// when that size is over the per-file limit.
    pub async fn upload(&self, declared_size: Option<u64>) -> Result<Upload, FileError> {
        if let Some(size) = declared_size {
            self.limits.check_file(size)?;
        }
        let temp_dir = self.root.join("tmp");
        tokio::fs::create_dir_all(&temp_dir).await?;
        let temp = temp_dir.join(uuid::Uuid::new_v4().to_string());
        let file = tokio::fs::File::create(&temp).await?;
        Ok(Upload { store: self.clone(), temp: TempPath(Some(temp)), file, hasher: Sha256::new(), size: 0 })
    }

    /// Stores `bytes` as one file.
    pub async fn put(&self, bytes: &[u8]) -> Result<Stored, FileError> {
        let mut upload = self.upload(Some(bytes.len() as u64)).await?;
        upload.write(bytes).await?;
        upload.finish().await
    }

    /// The size of the stored file `sha256`, refreshing its time (it is about
    /// to be named by a message, so collection must leave it alone).
    pub async fn touch(&self, sha256: &str) -> Result<u64, FileError> {
        check_address(sha256)?;
        let path = self.path(sha256);
        let file = match std::fs::File::options().append(true).open(&path) {
            Ok(file) => file,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Err(FileError::NotFound(sha256.to_owned()));
            }
            Err(error) => return Err(error.into()),
        };
        file.set_modified(SystemTime::now())?;
        Ok(file.metadata()?.len())
    }

    /// Opens the stored file `sha256` for reading, with its size.
    pub async fn open(&self, sha256: &str) -> Result<(tokio::fs::File, u64), FileError> {
        check_address(sha256)?;
        match tokio::fs::File::open(self.path(sha256)).await {
            Ok(file) => {
                let size = file.metadata().await?.len();
                Ok((file, size))
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Err(FileError::NotFound(sha256.to_owned())),
            Err(error) => Err(error.into()),
        }
    }

    /// Reads the whole stored file `sha256`.
    pub async fn read(&self, sha256: &str) -> Result<Vec<u8>, FileError> {
        check_address(sha256)?;
        tokio::fs::read(self.path(sha256)).await.map_err(|error| match error.kind() {
            std::io::ErrorKind::NotFound => FileError::NotFound(sha256.to_owned()),
            _ => error.into(),
        })
    }

    /// Removes every stored file (and leftover partial upload) that is not in
    /// `referenced` and is older than `grace`; nothing else.
    pub async fn collect_garbage(&self, referenced: &HashSet<String>, grace: Duration) -> Result<Collected, FileError> {
        let root = self.root.clone();
        let referenced = referenced.clone();
        tokio::task::spawn_blocking(move || collect(&root, &referenced, grace))
            .await
            .map_err(|error| FileError::Io(std::io::Error::other(error)))?
    }
}

/// Lowercase hex, 64 digits.
fn check_address(sha256: &str) -> Result<(), FileError> {
    let valid = sha256.len() == 64 && sha256.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if valid { Ok(()) } else { Err(FileError::Invalid(format!("\"{sha256}\" is not a lowercase hex SHA-256"))) }
}

fn collect(root: &Path, referenced: &HashSet<String>, grace: Duration) -> Result<Collected, FileError> {
    let mut collected = Collected::default();
    let entries = match std::fs::read_dir(root) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(collected),
        Err(error) => return Err(error.into()),
    };
    let now = SystemTime::now();
    for folder in entries {
        let folder = folder?;
        if !folder.file_type()?.is_dir() {
            continue;
        }
        let is_temp = folder.file_name() == "tmp";
        for file in std::fs::read_dir(folder.path())? {
            let file = file?;
            let name = file.file_name().to_string_lossy().into_owned();
            if !is_temp && referenced.contains(&name) {
                continue;
            }
            let metadata = file.metadata()?;
            let age = metadata.modified().ok().and_then(|at| now.duration_since(at).ok()).unwrap_or_default();
            if age < grace {
                continue;
            }
            std::fs::remove_file(file.path())?;
            collected.files += 1;
            collected.bytes += metadata.len();
        }
    }
    Ok(collected)
}

/// A partial upload's temporary file, removed unless it was renamed into place.
#[derive(Debug)]
struct TempPath(Option<PathBuf>);

impl Drop for TempPath {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// One file being stored: write its bytes in order, then [`Upload::finish`].
/// Dropped unfinished, it leaves nothing behind.
#[derive(Debug)]
pub struct Upload {
    store: FileStore,
    temp: TempPath,
    file: tokio::fs::File,
    hasher: Sha256,
    size: u64,
}

impl Upload {
    /// Appends the next bytes; refused once the file is over the per-file limit.
    pub async fn write(&mut self, bytes: &[u8]) -> Result<(), FileError> {
        self.size += bytes.len() as u64;
        self.store.limits.check_file(self.size)?;
        self.hasher.update(bytes);
        self.file.write_all(bytes).await?;
        Ok(())
    }

    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Makes the file durable under its address and returns it.
    pub async fn finish(mut self) -> Result<Stored, FileError> {
        self.file.flush().await?;
        self.file.sync_all().await?;
        let sha256 = hex::encode(self.hasher.finalize_reset());
        let size = self.size;
        let store = self.store.clone();
        let temp = self.temp.0.clone().expect("an unfinished upload has its file");
        let existed = tokio::task::spawn_blocking({
            let sha256 = sha256.clone();
            move || place(&store, &temp, &sha256)
        })
        .await
        .map_err(|error| FileError::Io(std::io::Error::other(error)))??;
        if !existed {
            // Renamed into place: nothing left to remove.
            self.temp.0 = None;
        }
        Ok(Stored { sha256, size, existed })
    }
}

/// Renames `temp` to its address (fsyncing the directories), or, when the
/// same bytes are there already, refreshes that file's time; true then.
fn place(store: &FileStore, temp: &Path, sha256: &str) -> Result<bool, FileError> {
    let target = store.path(sha256);
    let folder = target.parent().expect("an address has a folder");
    if target.exists() {
        std::fs::File::options().append(true).open(&target)?.set_modified(SystemTime::now())?;
        return Ok(true);
    }
    let new_folder = !folder.exists();
    std::fs::create_dir_all(folder)?;
    std::fs::rename(temp, &target)?;
    std::fs::File::open(folder)?.sync_all()?;
    if new_folder {
        std::fs::File::open(&store.root)?.sync_all()?;
    }
    Ok(false)
}

#[cfg(test)]
mod tests;
