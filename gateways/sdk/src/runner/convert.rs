//! Protobuf to domain types, at the gRPC edge (nothing else sees `pb::`).
//!
//! Platforms number messages per channel (Telegram's message 5 exists in
//! every chat), but gorpd de-duplicates on (platform, message id). So a
//! message id goes to gorpd scoped by its channel, `<channel>/<id>`, and
//! comes back unscoped in [`reply_in`], which only answers in that channel.

use crate::platform::{Inbound, OutboundKind, PermissionChoice, PermissionPrompt};
use gorp_proto::v1 as pb;

/// An inbound message as a PublishRequest for `platform`, under the id
/// gorpd knows it by (see [`scoped_message_id`]).
pub(crate) fn publish_request(
    platform: &str,
    bus_id: &str,
    inbound: &Inbound,
    traceparent: Option<String>,
) -> pb::PublishRequest {
    pb::PublishRequest {
        channel: Some(pb::Channel { platform: platform.to_owned(), channel_id: inbound.channel_id.clone() }),
        message_id: bus_id.to_owned(),
        sender_id: inbound.sender_id.clone(),
        sender_name: inbound.sender_name.clone(),
        text: inbound.text.clone(),
        attachments: inbound
            .files
            .iter()
            .map(|file| pb::Attachment {
                name: file.name.clone(),
                media_type: file.media_type.clone(),
                size: file.size,
                sha256: file.sha256.clone(),
                data: Vec::new(),
            })
            .collect(),
        traceparent: traceparent.unwrap_or_default(),
    }
}

/// `message_id` made unique across the platform's channels (empty stays empty).
pub(crate) fn scoped_message_id(channel_id: &str, message_id: &str) -> String {
    if message_id.is_empty() { String::new() } else { format!("{channel_id}/{message_id}") }
}

/// The channel ids of `targets` on `platform`.
pub(crate) fn channel_ids(platform: &str, targets: &[pb::Channel]) -> Vec<String> {
    targets.iter().filter(|c| c.platform == platform).map(|c| c.channel_id.clone()).collect()
}

/// The platform's id of the message `reply_to` names, when that message is
/// in `channel` on `platform`; `None` elsewhere (a message id means nothing
/// in other channels). Ids published by other clients come back as they are.
pub(crate) fn reply_in(platform: &str, channel: &str, reply_to: Option<&pb::MessageRef>) -> Option<String> {
    let reply_to = reply_to?;
    let origin = reply_to.channel.as_ref()?;
    if origin.platform != platform || origin.channel_id != channel || reply_to.message_id.is_empty() {
        return None;
    }
    let id = reply_to.message_id.strip_prefix(channel).and_then(|rest| rest.strip_prefix('/'));
    Some(id.unwrap_or(&reply_to.message_id).to_owned())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_reference_holds_only_in_its_own_channel() {
        let origin = pb::Channel { platform: "telegram".into(), channel_id: "42".into() };
        let reply_to = pb::MessageRef { channel: Some(origin.clone()), message_id: "42/17".into() };
        assert_eq!(reply_in("telegram", "42", Some(&reply_to)).as_deref(), Some("17"));
        assert_eq!(reply_in("telegram", "43", Some(&reply_to)), None, "message 17 of chat 43 is another message");
        assert_eq!(reply_in("slack", "42", Some(&reply_to)), None);
        assert_eq!(reply_in("telegram", "42", None), None);
        let unscoped = pb::MessageRef { channel: Some(origin), message_id: "17".into() };
        assert_eq!(reply_in("telegram", "42", Some(&unscoped)).as_deref(), Some("17"), "a third-party client's id");
    }

    #[test]
    fn message_ids_are_scoped_by_channel_on_the_bus() {
        assert_eq!(scoped_message_id("42", "5"), "42/5");
        assert_eq!(scoped_message_id("43", "5"), "43/5");
        assert_eq!(scoped_message_id("42", ""), "");
    }
}
