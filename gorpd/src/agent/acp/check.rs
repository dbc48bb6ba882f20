//! The check of an ACP profile for `gorpctl doctor`: start the command as a
//! session would (its arguments and environment), send `initialize`, read
//! the answer, stop the process. Nothing else is asked of the agent, so the
//! check opens no session and costs no tokens.

use super::AcpConfig;
use agent_client_protocol::schema::ProtocolVersion;
use agent_client_protocol::v1::schema::InitializeRequest;
use agent_client_protocol::{ByteStreams, Client};
use std::process::Stdio;
use tokio_util::compat::{TokioAsyncReadCompatExt, TokioAsyncWriteCompatExt};

/// Starts the agent and asks `initialize`; says who answered, or what went wrong.
pub(super) async fn check(config: &AcpConfig) -> Result<String, String> {
    let command = &config.command;
    let mut child = tokio::process::Command::new(command)
        .args(&config.args)
        .envs(&config.env)
        .current_dir(std::env::temp_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|error| match error.kind() {
            std::io::ErrorKind::NotFound => format!("command \"{command}\" not found on gorpd's PATH"),
            _ => format!("cannot start \"{command}\": {error}"),
        })?;
    let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        return Err("the agent's pipes are missing".to_owned());
    };
    let transport = ByteStreams::new(stdin.compat_write(), stdout.compat());
    let answer = Client
        .v1()
        .name("gorp")
        .connect_with(transport, async |cx| {
            cx.send_request(InitializeRequest::new(ProtocolVersion::V1)).block_task().await
        })
        .await;
    let _ = child.kill().await;
    let init =
        answer.map_err(|error| format!("\"{command}\" started but did not answer initialize: {}", error.message))?;
    let name = init.agent_info.map(|info| format!(" as {}", info.name)).unwrap_or_default();
    Ok(format!("\"{command}\" answers initialize{name} (protocol {})", serde_json::json!(init.protocol_version)))
}
