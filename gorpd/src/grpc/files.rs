//! Attachments at the gRPC edge: the pb `Attachment` to and from the domain,
//! accepting a published message's files before the message is submitted
//! (so its files are durable before its row is committed), and the chunked
//! `UploadAttachment` / `DownloadAttachment` streams.

use super::GrpcState;
use crate::auth::Principal;
use crate::domain::Attachment;
use crate::files::{AttachmentIn, CHUNK_BYTES, FileError};
use gorp_proto::v1 as pb;
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;
use tonic::{Status, Streaming};

/// A stored attachment as sent to clients: by reference, no inline bytes.
pub(super) fn attachment_to_pb(attachment: &Attachment) -> pb::Attachment {
    pb::Attachment {
        name: attachment.name.clone(),
        media_type: attachment.media_type.clone(),
        size: attachment.size,
        sha256: attachment.sha256.clone(),
        data: Vec::new(),
    }
}

fn attachment_in(attachment: pb::Attachment) -> AttachmentIn {
    let pb::Attachment { name, media_type, size, sha256, data } = attachment;
    AttachmentIn { name, media_type, size, sha256, data }
}

/// Checks and stores a message's attachments; nothing is stored when any is refused.
pub(super) async fn accept(state: &GrpcState, attachments: Vec<pb::Attachment>) -> Result<Vec<Attachment>, Status> {
    if attachments.is_empty() {
        return Ok(Vec::new());
    }
    let items = attachments.into_iter().map(attachment_in).collect();
    Ok(state.orchestrator.files().accept(items).await?)
}

/// Receives one upload, chunk by chunk, and stores it.
pub(super) async fn upload(
    state: &GrpcState,
    mut chunks: Streaming<pb::UploadChunk>,
) -> Result<pb::UploadResult, Status> {
    let first = chunks.message().await.map_err(super::status::stream_error)?;
    let declared = first.as_ref().map(|chunk| chunk.total_size).filter(|size| *size > 0);
    let mut upload = state.orchestrator.files().upload(declared).await?;
    let mut next = first;
    while let Some(chunk) = next {
        if chunk.data.len() > CHUNK_BYTES {
            return Err(Status::invalid_argument(format!(
                "upload chunks are at most {CHUNK_BYTES} bytes, not {}",
                chunk.data.len()
            )));
        }
        upload.write(&chunk.data).await?;
        next = chunks.message().await.map_err(super::status::stream_error)?;
    }
    if declared.is_some_and(|size| size != upload.size()) {
        return Err(Status::invalid_argument(format!(
            "the upload said it was {} bytes but sent {}",
            declared.unwrap_or_default(),
            upload.size()
        )));
    }
    let stored = upload.finish().await?;
    tracing::debug!(sha256 = %stored.sha256, size = stored.size, existed = stored.existed, "file uploaded");
    Ok(pb::UploadResult { sha256: stored.sha256, size: stored.size, existed: stored.existed })
}

/// Streams one stored file in chunks, if the caller may see it.
pub(super) async fn download(
    state: GrpcState,
    caller: Principal,
    request: pb::DownloadRequest,
    tx: mpsc::Sender<Result<pb::DownloadChunk, Status>>,
) -> Result<(), Status> {
    let sha256 = request.sha256;
    let not_found = || Status::not_found(format!("no stored file {sha256} for this token"));
    if let Principal::Gateway { platform } = &caller
        && !state.orchestrator.store().platform_sees_file(platform, &sha256).await?
    {
        return Err(not_found());
    }
    let (mut file, total_size) = match state.orchestrator.files().open(&sha256).await {
        Err(FileError::NotFound(_)) => return Err(not_found()),
        other => other?,
    };
    let mut buffer = vec![0; CHUNK_BYTES];
    let mut first = true;
    loop {
        let read = file.read(&mut buffer).await.map_err(FileError::from)?;
        if read == 0 && !first {
            return Ok(());
        }
        let chunk = pb::DownloadChunk { data: buffer[..read].to_vec(), total_size: if first { total_size } else { 0 } };
        first = false;
        if tx.send(Ok(chunk)).await.is_err() || read == 0 {
            return Ok(());
        }
    }
}
