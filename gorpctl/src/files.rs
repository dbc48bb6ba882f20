//! `gorpctl tell --attach FILE` and `gorpctl download`: files to and from
//! gorpd. A small file goes inline with the message; a larger one is first
//! uploaded in chunks (gorp-client). A download is written to FILE.partial,
//! checked against its SHA-256, synced and renamed, so FILE is never half a file.

use crate::commands::Failure;
use crate::error::CliError;
use crate::output::print_json;
use gorp_client::{Attachment, Client, media_type_of};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

fn failed(message: String) -> Failure {
    Failure::Cli(CliError::Failed(message))
}

impl From<gorp_client::Error> for Failure {
    fn from(error: gorp_client::Error) -> Self {
        match error {
            gorp_client::Error::Status(status) => Failure::Status(*status),
            other => failed(other.to_string()),
        }
    }
}

/// Runs `gorpctl tell SESSION [MESSAGE…] [--attach FILE…]`.
pub(crate) async fn tell(
    json_output: bool,
    session: &str,
    text: &str,
    files: &[PathBuf],
    client: &Client,
) -> Result<(), Failure> {
    let mut attachments = Vec::with_capacity(files.len());
    for path in files {
        attachments.push(attachment(client, path).await?);
    }
    let message_id = client.tell_with(session, text, attachments).await?;
    if json_output {
        print_json(&json!({ "session": session, "message_id": message_id, "attachments": files.len() }));
    } else {
        let with = if files.is_empty() { String::new() } else { format!(" with {} file(s)", files.len()) };
        println!("sent to {session} (message {message_id}){with}; its answer goes to its bound channels");
    }
    Ok(())
}

/// The attachment for one local file: inline when small, else uploaded first.
async fn attachment(client: &Client, path: &Path) -> Result<Attachment, Failure> {
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .ok_or_else(|| Failure::Cli(CliError::Usage(format!("{} is not a file", path.display()))))?;
    let bytes = std::fs::read(path)
        .map_err(|e| Failure::Cli(CliError::Usage(format!("cannot read {}: {e}", path.display()))))?;
    Ok(client.attachment(&name, media_type_of(&name), bytes).await?)
}

/// Runs `gorpctl download SHA256 FILE`.
pub(crate) async fn download(json_output: bool, sha256: &str, file: &Path, client: &Client) -> Result<(), Failure> {
    let mut partial_name = file.as_os_str().to_owned();
    partial_name.push(".partial");
    let partial = PathBuf::from(partial_name);
    let result = download_checked(client, sha256, &partial).await;
    let size = match result {
        Ok(size) => size,
        Err(failure) => {
            let _ = std::fs::remove_file(&partial);
            return Err(failure);
        }
    };
    std::fs::rename(&partial, file)
        .map_err(|e| failed(format!("cannot move the download to {}: {e}", file.display())))?;
    if json_output {
        print_json(&json!({ "file": file.display().to_string(), "bytes": size, "sha256": sha256 }));
    } else {
        println!("downloaded {size} bytes to {}", file.display());
    }
    Ok(())
}

async fn download_checked(client: &Client, sha256: &str, partial: &Path) -> Result<u64, Failure> {
    let cannot_write = |e: std::io::Error| failed(format!("cannot write {}: {e}", partial.display()));
    let mut out = tokio::fs::File::create(partial).await.map_err(cannot_write)?;
    let size = client.download_to(sha256, &mut out).await?;
    out.sync_all().await.map_err(cannot_write)?;
    let bytes = tokio::fs::read(partial).await.map_err(cannot_write)?;
    let digest = hex::encode(Sha256::digest(&bytes));
    if digest != sha256 {
        return Err(failed(format!(
            "the download arrived changed (sha256 {digest}); nothing was written to the target"
        )));
    }
    Ok(size)
}
