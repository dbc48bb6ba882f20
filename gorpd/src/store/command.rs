//! Exactly once for DISPATCH commands: a command's effect and the mark that
//! it was applied are one commit.
//!
//! The router runs each command inside [`scope`] (through
//! `Store::as_command`). While it runs, every store write made by its task
//! also sets `inbound.applied = 1` for the command's message, in the same
//! write, so the effect and the mark commit together or not at all. The
//! reply is committed next, marking the message `done`. If gorpd stops in
//! between, the next start finds the message pending but applied
//! (`Store::applied_commands`) and only sends its reply; it never runs the
//! command again. A command whose writes all failed stays unapplied and is
//! simply run again.

use super::{StoreResult, WriteConnection};

tokio::task_local! {
    /// The inbound id of the DISPATCH command this task is running.
    static COMMAND: i64;
}

/// Runs `work` as the command with inbound id `inbound_id`.
pub(super) async fn scope<F: std::future::Future>(inbound_id: i64, work: F) -> F::Output {
    COMMAND.scope(inbound_id, work).await
}

/// `write`, followed (inside the same write) by marking the current command
/// applied when the calling task runs one.
pub(super) fn marking_applied<R, W>(write: W) -> impl FnOnce(&WriteConnection) -> StoreResult<R> + Send + 'static
where
    R: Send + 'static,
    W: FnOnce(&WriteConnection) -> StoreResult<R> + Send + 'static,
{
    let command = COMMAND.try_with(|id| *id).ok();
    move |connection: &WriteConnection| {
        let result = write(connection)?;
        if let Some(inbound_id) = command {
            connection.execute(
                "UPDATE messages SET applied = 1 WHERE id = ? AND state = 'pending'",
                super::sql::params![inbound_id],
            )?;
        }
        Ok(result)
    }
}
