//! Files: attachments to send with a message (inline when small, else
//! uploaded first in chunks through `Bus.UploadAttachment`) and stored files
//! to download in chunks through `Bus.DownloadAttachment`.

use crate::{Client, Error};
use gorp_proto::v1 as pb;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Largest file sent inline in a message (gorpd's limit); larger ones are uploaded first.
pub const INLINE_MAX_BYTES: usize = 256 * 1024;
/// Size of upload chunks (gorpd takes at most 1 MiB per chunk).
pub const UPLOAD_CHUNK_BYTES: usize = 1024 * 1024;

/// A file carried by a message or a response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Attachment {
    /// Its name, without directories.
    pub name: String,
    /// Its media type (`image/png`).
    pub media_type: String,
    /// Its size in bytes.
    pub size: u64,
    /// Lowercase hex SHA-256 of its bytes: how gorpd stores and names it.
    /// Empty for an inline attachment not yet sent.
    pub sha256: String,
    /// The bytes, for a small file sent inline; empty otherwise (and always
    /// in what gorpd delivers: download those with [`Client::download`]).
    pub data: Vec<u8>,
}

impl Attachment {
    /// A small file sent inline (at most [`INLINE_MAX_BYTES`]).
    pub fn inline(name: impl Into<String>, media_type: impl Into<String>, data: Vec<u8>) -> Self {
        Self { name: name.into(), media_type: media_type.into(), size: data.len() as u64, sha256: String::new(), data }
    }

    /// A file stored in gorpd already (uploaded, or from a response).
    pub fn stored(
        name: impl Into<String>,
        media_type: impl Into<String>,
        size: u64,
        sha256: impl Into<String>,
    ) -> Self {
        Self { name: name.into(), media_type: media_type.into(), size, sha256: sha256.into(), data: Vec::new() }
    }

    /// Whether it is an image (`image/*`).
    pub fn is_image(&self) -> bool {
        self.media_type.starts_with("image/")
    }
}

impl From<pb::Attachment> for Attachment {
    fn from(a: pb::Attachment) -> Self {
        Self { name: a.name, media_type: a.media_type, size: a.size, sha256: a.sha256, data: a.data }
    }
}

impl From<Attachment> for pb::Attachment {
    fn from(a: Attachment) -> Self {
        Self { name: a.name, media_type: a.media_type, size: a.size, sha256: a.sha256, data: a.data }
    }
}

/// What gorpd stored for an upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uploaded {
    /// Lowercase hex SHA-256 of the file.
    pub sha256: String,
    /// Its size.
    pub size: u64,
    /// The same bytes were stored already; nothing new was written.
    pub existed: bool,
}

/// The media type of a file name by its extension (`application/octet-stream` when unknown).
pub fn media_type_of(name: &str) -> &'static str {
    let extension = name.rsplit_once('.').map(|(_, ext)| ext.to_ascii_lowercase()).unwrap_or_default();
    match extension.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "svg" => "image/svg+xml",
        "pdf" => "application/pdf",
        "txt" | "log" => "text/plain",
        "md" => "text/markdown",
        "csv" => "text/csv",
        "json" => "application/json",
        "html" | "htm" => "text/html",
        "diff" | "patch" => "text/x-diff",
        "zip" => "application/zip",
        "gz" => "application/gzip",
        "mp3" => "audio/mpeg",
        "ogg" | "oga" => "audio/ogg",
        "m4a" => "audio/mp4",
        "wav" => "audio/wav",
        "mp4" => "video/mp4",
        _ => "application/octet-stream",
    }
}

impl Client {
    /// Uploads `size` bytes from `reader` in chunks; the file is durable in gorpd when this returns.
    pub async fn upload<R>(&self, mut reader: R, size: u64) -> Result<Uploaded, Error>
    where
        R: AsyncRead + Unpin + Send + 'static,
    {
        let (tx, rx) = tokio::sync::mpsc::channel::<pb::UploadChunk>(4);
        let reading = tokio::spawn(async move {
            let mut total_size = size;
            loop {
                let mut data = vec![0; UPLOAD_CHUNK_BYTES];
                let read = read_full(&mut reader, &mut data).await?;
                data.truncate(read);
                let last = read < UPLOAD_CHUNK_BYTES;
                if (read > 0 || total_size > 0 || size == 0)
                    && tx.send(pb::UploadChunk { data, total_size: std::mem::take(&mut total_size) }).await.is_err()
                {
                    return Ok(());
                }
                if last {
                    return Ok::<(), std::io::Error>(());
                }
            }
        });
        let result = self.bus_api().upload_attachment(tokio_stream::wrappers::ReceiverStream::new(rx)).await;
        let read = reading.await.map_err(|error| Error::Config(format!("reading the upload failed: {error}")))?;
        read.map_err(|error| Error::Config(format!("reading the upload failed: {error}")))?;
        let result = result?.into_inner();
        Ok(Uploaded { sha256: result.sha256, size: result.size, existed: result.existed })
    }

    /// An attachment for `bytes`: inline when small, else uploaded first.
    pub async fn attachment(&self, name: &str, media_type: &str, bytes: Vec<u8>) -> Result<Attachment, Error> {
        if bytes.len() <= INLINE_MAX_BYTES {
            return Ok(Attachment::inline(name, media_type, bytes));
        }
        let size = bytes.len() as u64;
        let uploaded = self.upload(std::io::Cursor::new(bytes), size).await?;
        Ok(Attachment::stored(name, media_type, uploaded.size, uploaded.sha256))
    }

    /// Writes the stored file `sha256` to `writer`, chunk by chunk; returns its size.
    pub async fn download_to<W>(&self, sha256: &str, writer: &mut W) -> Result<u64, Error>
    where
        W: AsyncWrite + Unpin,
    {
        let request = pb::DownloadRequest { sha256: sha256.to_owned() };
        let mut chunks = self.bus_api().download_attachment(request).await?.into_inner();
        let mut written = 0;
        while let Some(chunk) = chunks.message().await? {
            writer
                .write_all(&chunk.data)
                .await
                .map_err(|error| Error::Config(format!("writing the download: {error}")))?;
            written += chunk.data.len() as u64;
        }
        writer.flush().await.map_err(|error| Error::Config(format!("writing the download: {error}")))?;
        Ok(written)
    }

    /// The whole stored file `sha256`.
    pub async fn download(&self, sha256: &str) -> Result<Vec<u8>, Error> {
        let mut bytes = Vec::new();
        self.download_to(sha256, &mut bytes).await?;
        Ok(bytes)
    }

    /// Sends `text` with `attachments` to `session`; returns its history id.
    pub async fn tell_with(&self, session: &str, text: &str, attachments: Vec<Attachment>) -> Result<i64, Error> {
        let request = pb::TellRequest {
            session: session.to_owned(),
            text: text.to_owned(),
            attachments: attachments.into_iter().map(pb::Attachment::from).collect(),
        };
        Ok(self.control_api().tell(request).await?.into_inner().message_id)
    }
}

/// Fills `buffer` unless the reader ends first; returns how much was read.
async fn read_full<R: AsyncRead + Unpin>(reader: &mut R, buffer: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        let read = reader.read(&mut buffer[filled..]).await?;
        if read == 0 {
            break;
        }
        filled += read;
    }
    Ok(filled)
}
