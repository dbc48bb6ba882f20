//! `!retry` in a bound channel: runs the session's last turn that a restart
//! of gorpd interrupted again, as if its question was sent once more.
//!
//! The interrupted message is found in the intake (state `interrupted`); its
//! text is queued for the session like `!tell` (the answer goes to the
//! session's bound channels), then the message is marked done so a second
//! `!retry` does not run it again.

use super::{CommandResult, Reply};
use crate::bus::Inbound;
use crate::orchestrator::Orchestrator;
use crate::store::InboundState;

pub(super) async fn handle(o: &Orchestrator, bound: Option<&str>, inbound: &Inbound) -> CommandResult {
    let Some(session) = bound else {
        return Ok(Reply::error(
            "!retry works in a channel bound to a session: it re-runs that session's interrupted turn.",
        ));
    };
    let interrupted = o.store().inbound_in_state(InboundState::Interrupted).await?;
    let last = interrupted.into_iter().rev().find(|(_, routed)| routed.as_deref() == Some(session));
    let Some((turn, _)) = last else {
        return Ok(Reply::error(format!("{session} has no interrupted turn to retry.")));
    };
    o.tell(session, &turn.text, turn.attachments.clone(), &inbound.channel, &inbound.sender).await?;
    o.store().set_inbound_state(turn.id, InboundState::Done).await?;
    let preview: String = turn.text.chars().take(80).collect();
    tracing::info!(session, message_id = turn.id, "interrupted turn retried");
    Ok(Reply::ok(format!("Retrying \"{preview}\" with {session}.")))
}
