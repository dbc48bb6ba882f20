//! Output: aligned tables for people, JSON for scripts. The JSON shapes are
//! part of gorpctl's interface (documented in the README); change them only
//! by adding fields.

use gorp_proto::v1 as pb;
use serde::Serialize;
use serde_json::{Value, json};

/// Renders rows under headers with aligned columns.
pub(crate) fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        padded.join("  ").trim_end().to_owned()
    };
    let mut out = vec![line(headers.to_vec())];
    out.extend(rows.iter().map(|row| line(row.iter().map(String::as_str).collect())));
    out.join("\n")
}

/// Prints a JSON document.
pub(crate) fn print_json(value: &impl Serialize) {
    println!("{}", serde_json::to_string_pretty(value).expect("JSON values serialise"));
}

/// `platform:channel_id`.
pub(crate) fn channel_text(channel: &pb::Channel) -> String {
    format!("{}:{}", channel.platform, channel.channel_id)
}

pub(crate) fn channel_json(channel: &pb::Channel) -> Value {
    json!({ "platform": channel.platform, "channel_id": channel.channel_id })
}

fn or_null(text: &str) -> Value {
    if text.is_empty() { Value::Null } else { Value::from(text) }
}

pub(crate) fn session_json(session: &pb::Session) -> Value {
    json!({
        "name": session.name,
        "workspace_dir": session.workspace_dir,
        "backend": session.backend,
        "state": session.state,
        "queued": session.queued,
        "message_count": session.message_count,
        "agent_running": session.agent_running,
        "input_tokens": session.input_tokens,
        "output_tokens": session.output_tokens,
        "last_turn_input_tokens": session.last_turn_input_tokens,
        "last_turn_output_tokens": session.last_turn_output_tokens,
        "cost": if session.cost_currency.is_empty() { Value::Null } else { Value::from(session.cost) },
        "cost_currency": or_null(&session.cost_currency),
        "agent_mode": or_null(&session.agent_mode),
        "agent_model": or_null(&session.agent_model),
        "context_used": session.context_used,
        "context_size": session.context_size,
        "created_at": session.created_at,
        "channels": session.channels.iter().map(channel_json).collect::<Vec<_>>(),
    })
}

pub(crate) fn history_json(entry: &pb::HistoryEntry) -> Value {
    json!({
        "id": entry.id,
        "role": entry.role,
        "author": entry.author,
        "text": entry.text,
        "channel": entry.channel.as_ref().map(channel_json),
        "created_at": entry.created_at,
        "attachments": entry.attachments.iter().map(|a| json!({
            "name": a.name, "media_type": a.media_type, "size": a.size, "sha256": a.sha256,
        })).collect::<Vec<_>>(),
    })
}

/// One row of `read`'s file table.
pub(crate) fn attachment_row(message: i64, attachment: &pb::Attachment) -> Vec<String> {
    let pb::Attachment { name, media_type, size, sha256, .. } = attachment;
    vec![message.to_string(), name.clone(), media_type.clone(), size.to_string(), sha256.clone()]
}

pub(crate) fn gateway_json(gateway: &pb::Gateway) -> Value {
    json!({
        "gateway_id": gateway.gateway_id,
        "platform": gateway.platform,
        "connected": gateway.connected,
        "last_seen": gateway.last_seen,
        "acked_seq": gateway.acked_seq,
        "pending": gateway.pending,
        "health": gateway.health.as_ref().map(|h| json!({
            "undecryptable_since_start": h.undecryptable_since_start,
            "waiting_for_keys": h.waiting_for_keys,
        })),
    })
}

pub(crate) fn token_kind(kind: i32) -> &'static str {
    match pb::TokenKind::try_from(kind) {
        Ok(pb::TokenKind::Admin) => "admin",
        Ok(pb::TokenKind::Gateway) => "gateway",
        _ => "unknown",
    }
}

pub(crate) fn token_json(token: &pb::TokenInfo) -> Value {
    json!({
        "id": token.id,
        "name": token.name,
        "kind": token_kind(token.kind),
        "platform": or_null(&token.platform),
        "created_at": token.created_at,
        "revoked_at": or_null(&token.revoked_at),
    })
}

pub(crate) fn response_kind(kind: i32) -> &'static str {
    match pb::ResponseKind::try_from(kind) {
        Ok(pb::ResponseKind::Complete) => "complete",
        Ok(pb::ResponseKind::Error) => "error",
        Ok(pb::ResponseKind::Notice) => "notice",
        _ => "unknown",
    }
}

/// One watch event as a JSON object (`type` says which fields follow).
pub(crate) fn watch_json(event: &pb::WatchEvent) -> Value {
    use pb::watch_event::Kind;
    let mut value = match &event.kind {
        Some(Kind::Message(m)) => json!({
            "type": "message",
            "channel": m.channel.as_ref().map(channel_json),
            "message_id": m.message_id,
            "sender": m.sender,
            "text": m.text,
        }),
        Some(Kind::Response(r)) => json!({
            "type": "response",
            "seq": r.seq,
            "response_id": r.response_id,
            "session": or_null(&r.session),
            "dispatch": r.dispatch,
            "kind": response_kind(r.kind),
            "text": r.text,
            "targets": r.targets.iter().map(channel_json).collect::<Vec<_>>(),
        }),
        Some(Kind::Binding(b)) => json!({
            "type": "binding",
            "channel": b.channel.as_ref().map(channel_json),
            "session": or_null(&b.session),
        }),
        Some(Kind::Session(s)) => json!({ "type": "session", "name": s.name, "created": s.created }),
        None => json!({ "type": "unknown" }),
    };
    value["at"] = Value::from(event.at.clone());
    value
}

/// One watch event as a line of text.
pub(crate) fn watch_line(event: &pb::WatchEvent) -> String {
    use pb::watch_event::Kind;
    let what = match &event.kind {
        Some(Kind::Message(m)) => {
            let channel = m.channel.as_ref().map(channel_text).unwrap_or_default();
            format!("message   {channel} {}: {}", m.sender, m.text)
        }
        Some(Kind::Response(r)) => {
            let from = if r.dispatch { "DISPATCH".to_owned() } else { r.session.clone() };
            let targets: Vec<_> = r.targets.iter().map(channel_text).collect();
            format!("response  #{} {from} → {} [{}]: {}", r.seq, targets.join(", "), response_kind(r.kind), r.text)
        }
        Some(Kind::Binding(b)) => {
            let channel = b.channel.as_ref().map(channel_text).unwrap_or_default();
            match b.session.as_str() {
                "" => format!("unbound   {channel}"),
                session => format!("bound     {channel} → {session}"),
            }
        }
        Some(Kind::Session(s)) => format!("{}   {}", if s.created { "created" } else { "deleted" }, s.name),
        None => "unknown event".to_owned(),
    };
    format!("{} {what}", event.at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns_and_trim_trailing_space() {
        let rows = vec![vec!["research".to_owned(), "idle".to_owned()], vec!["a".to_owned(), "".to_owned()]];
        assert_eq!(table(&["NAME", "STATE"], &rows), "NAME      STATE\nresearch  idle\na");
    }
}
