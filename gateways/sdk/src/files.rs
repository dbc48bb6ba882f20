//! Files on the gateway side. Inbound: a platform's `listen` downloads a
//! user's file from the platform and uploads it to gorpd with
//! [`ListenContext::upload`] before it submits the message, which then names
//! the file by its SHA-256 (gorpd stores content once, so a gateway that
//! restarts mid-upload and sends the file again stores nothing twice).
//! Outbound: a response's files are fetched from gorpd in chunks and sent
//! after its text, each as its own platform message; a file over the
//! platform's limit ([`crate::Platform::max_file_bytes`]) becomes a link to
//! gorpd's web chat instead (`--web-url`).

use crate::listen::ListenContext;
use crate::platform::{InboundFile, OutboundFile};
use gorp_client::Client;
use gorp_proto::v1 as pb;
use std::collections::HashMap;
use std::sync::Arc;

/// A file could not be uploaded to gorpd.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UploadError {
    /// gorpd refused the file (too large, bad name); tell the user, do not retry.
    #[error("gorpd refused the file: {0}")]
    Refused(String),
    /// gorpd could not be reached or failed; leave the platform message
    /// unacknowledged so it comes again.
    #[error("cannot upload the file now: {0}")]
    Unavailable(String),
    /// The gateway runs without a connection to gorpd (tests of the inbound half only).
    #[error("this gateway has no connection for files")]
    NoConnection,
}

/// The gateway's way to gorpd's files, and where users reach the web chat.
#[derive(Debug, Clone)]
pub(crate) struct FileLink {
    client: Client,
    web_url: Option<String>,
}

impl FileLink {
    pub(crate) fn new(client: Client, web_url: Option<String>) -> Self {
        Self { client, web_url: web_url.map(|url| url.trim_end_matches('/').to_owned()) }
    }

    /// Uploads `bytes` as one file.
    pub(crate) async fn upload(
        &self,
        name: &str,
        media_type: &str,
        bytes: Vec<u8>,
    ) -> Result<InboundFile, UploadError> {
        let size = bytes.len() as u64;
        match self.client.upload(std::io::Cursor::new(bytes), size).await {
            Ok(uploaded) => Ok(InboundFile {
                name: name.to_owned(),
                media_type: media_type.to_owned(),
                size: uploaded.size,
                sha256: uploaded.sha256,
            }),
            Err(error) => match error.code() {
                Some(tonic::Code::ResourceExhausted | tonic::Code::InvalidArgument) => Err(UploadError::Refused(
                    error.status().map_or_else(|| error.to_string(), |s| s.message().to_owned()),
                )),
                _ => Err(UploadError::Unavailable(error.to_string())),
            },
        }
    }

    /// The bytes of a stored file.
    pub(crate) async fn download(&self, sha256: &str) -> Result<Vec<u8>, gorp_client::Error> {
        self.client.download(sha256).await
    }

    /// What to write instead of a file the platform cannot take.
    pub(crate) fn link_text(&self, attachment: &pb::Attachment, platform: &str) -> String {
        let size = human_size(attachment.size);
        match &self.web_url {
            Some(url) => format!(
                "📎 {} ({size}) is too large for {platform}: {url}/files/{}/{}",
                attachment.name,
                attachment.sha256,
                percent_encode(&attachment.name)
            ),
            None => format!(
                "📎 {} ({size}) is too large for {platform}: open the web chat, or `gorpctl download {} {}`",
                attachment.name, attachment.sha256, attachment.name
            ),
        }
    }
}

/// Files of the response being delivered, fetched once for all its channels.
#[derive(Debug, Default)]
pub(crate) struct FetchedFiles {
    response_id: String,
    by_sha256: HashMap<String, Arc<[u8]>>,
}

impl FetchedFiles {
    /// The file `attachment` with its bytes, fetched on first use for `response_id`.
    pub(crate) async fn get(
        &mut self,
        link: &FileLink,
        response_id: &str,
        attachment: &pb::Attachment,
    ) -> Result<OutboundFile, gorp_client::Error> {
        if self.response_id != response_id {
            self.response_id = response_id.to_owned();
            self.by_sha256.clear();
        }
        let bytes = match self.by_sha256.get(&attachment.sha256) {
            Some(bytes) => bytes.clone(),
            None => {
                let bytes: Arc<[u8]> = link.download(&attachment.sha256).await?.into();
                self.by_sha256.insert(attachment.sha256.clone(), bytes.clone());
                bytes
            }
        };
        Ok(OutboundFile { name: attachment.name.clone(), media_type: attachment.media_type.clone(), bytes })
    }
}

impl ListenContext {
    /// Uploads one file of a user's message to gorpd; name the result in
    /// [`crate::Inbound::files`] when submitting the message.
    pub async fn upload(&self, name: &str, media_type: &str, bytes: Vec<u8>) -> Result<InboundFile, UploadError> {
        match self.file_link() {
            Some(link) => link.upload(name, media_type, bytes).await,
            None => Err(UploadError::NoConnection),
        }
    }
}

/// `1.5 MiB`, `300 KiB`, `12 bytes`.
pub(crate) fn human_size(bytes: u64) -> String {
    const KIB: u64 = 1024;
    match bytes {
        b if b >= KIB * KIB => format!("{:.1} MiB", b as f64 / (KIB * KIB) as f64),
        b if b >= KIB => format!("{} KiB", b / KIB),
        b => format!("{b} bytes"),
    }
}

/// A file name as a URL path segment.
fn percent_encode(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}
