//! Protobuf to domain types, at the gRPC edge (nothing else sees `pb::`).

use crate::platform::{Inbound, OutboundKind, PermissionChoice, PermissionPrompt};
use gorp_proto::v1 as pb;

/// An inbound message as a PublishRequest for `platform`.
pub(crate) fn publish_request(platform: &str, inbound: &Inbound) -> pb::PublishRequest {
    pb::PublishRequest {
        channel: Some(pb::Channel { platform: platform.to_owned(), channel_id: inbound.channel_id.clone() }),
        message_id: inbound.message_id.clone(),
        sender_id: inbound.sender_id.clone(),
        sender_name: inbound.sender_name.clone(),
        text: inbound.text.clone(),
    }
}

/// The channel ids of `targets` on `platform`.
pub(crate) fn channel_ids(platform: &str, targets: &[pb::Channel]) -> Vec<String> {
    targets.iter().filter(|c| c.platform == platform).map(|c| c.channel_id.clone()).collect()
}

/// The kind of a final response (unknown kinds count as complete answers).
pub(crate) fn kind(kind: i32) -> OutboundKind {
    match pb::ResponseKind::try_from(kind) {
        Ok(pb::ResponseKind::Error) => OutboundKind::Error,
        Ok(pb::ResponseKind::Notice) => OutboundKind::Notice,
        _ => OutboundKind::Complete,
    }
}

/// A permission request attached to a response.
pub(crate) fn permission(permission: Option<&pb::Permission>) -> Option<PermissionPrompt> {
    let p = permission?;
    let choices = p
        .options
        .iter()
        .map(|o| PermissionChoice { id: o.id.clone(), label: o.label.clone(), kind: o.kind.clone() })
        .collect();
    let pending = p.state == pb::PermissionState::Pending as i32;
    Some(PermissionPrompt { id: p.id.clone(), title: p.title.clone(), choices, pending })
}

/// Whether a chunk is answer text (not a progress line).
pub(crate) fn is_text(chunk: &pb::Chunk) -> bool {
    chunk.kind == pb::ChunkKind::Text as i32
}
