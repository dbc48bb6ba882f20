//! `gorpctl backup FILE`: streams gorpd's database snapshot into FILE,
//! checks its size and SHA-256, syncs it to disk, and only then renames it
//! into place, so FILE is either the old file or a whole, verified backup.

use crate::commands::Failure;
use crate::connect::Control;
use crate::error::CliError;
use crate::output::print_json;
use gorp_proto::v1 as pb;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::Path;

fn failed(message: String) -> Failure {
    Failure::Cli(CliError::Failed(message))
}

/// Runs `gorpctl backup`.
pub(crate) async fn backup(json_output: bool, file: &Path, control: &mut Control) -> Result<(), Failure> {
    let mut partial_name = file.as_os_str().to_owned();
    partial_name.push(".partial");
    let partial = Path::new(&partial_name);
    let result = download(control, partial).await;
    let (bytes, sha256) = match result {
        Ok(done) => done,
        Err(failure) => {
            let _ = std::fs::remove_file(partial);
            return Err(failure);
        }
    };
    std::fs::rename(partial, file).map_err(|e| failed(format!("cannot move the backup to {}: {e}", file.display())))?;
    if json_output {
        print_json(&json!({ "file": file.display().to_string(), "bytes": bytes, "sha256": sha256 }));
    } else {
        println!("backed up {bytes} bytes to {} (sha256 {sha256})", file.display());
    }
    Ok(())
}

/// Writes the stream into `partial`; returns its size and SHA-256 once both match what gorpd sent.
async fn download(control: &mut Control, partial: &Path) -> Result<(u64, String), Failure> {
    let cannot_write = |e: std::io::Error| failed(format!("cannot write {}: {e}", partial.display()));
    let mut out = std::fs::File::create(partial).map_err(cannot_write)?;
    let mut chunks = control.backup(pb::BackupRequest {}).await?.into_inner();
    let mut hash = Sha256::new();
    let (mut written, mut expected_bytes, mut expected_sha256) = (0u64, 0u64, String::new());
    while let Some(chunk) = chunks.message().await? {
        out.write_all(&chunk.data).map_err(cannot_write)?;
        hash.update(&chunk.data);
        written += chunk.data.len() as u64;
        expected_bytes = chunk.total_bytes;
        if !chunk.sha256.is_empty() {
            expected_sha256 = chunk.sha256;
        }
    }
    let sha256 = hex::encode(hash.finalize());
    if expected_sha256.is_empty() || written != expected_bytes || sha256 != expected_sha256 {
        return Err(failed(format!(
            "the backup arrived incomplete or changed ({written} of {expected_bytes} bytes); nothing was written to the target"
        )));
    }
    out.sync_all().map_err(cannot_write)?;
    Ok((written, sha256))
}
