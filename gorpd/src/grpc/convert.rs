//! Conversions between domain types and `gorp.v1` protobuf messages.
//! Incoming messages are validated here; domain code never sees `pb` types.

use crate::auth::AuthError;
use crate::bus::{Activity, ChannelRef, Chunk, MessageRef, PermissionNotice, PermissionState, Response, ResponseKind};
use crate::orchestrator::{ScheduleInfo, SessionInfo};
use crate::store::{HistoryRow, HookRow, RunRow, TokenKind, TokenRow};
use chrono::{DateTime, SecondsFormat, Utc};
use gorp_proto::v1 as pb;
use tonic::Status;

pub(super) fn time(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub(super) fn channel_to_pb(channel: &ChannelRef) -> pb::Channel {
    pb::Channel { platform: channel.platform.clone(), channel_id: channel.channel_id.clone() }
}

/// A required channel field; missing is INVALID_ARGUMENT.
pub(super) fn channel_from_pb(channel: Option<pb::Channel>) -> Result<ChannelRef, Status> {
    let channel = channel.ok_or_else(|| Status::invalid_argument("channel is missing"))?;
    crate::names::check_platform(&channel.platform).map_err(Status::invalid_argument)?;
    crate::names::check_external_id("channel id", &channel.channel_id).map_err(Status::invalid_argument)?;
    Ok(ChannelRef::new(channel.platform, channel.channel_id))
}

pub(super) fn response_to_pb(response: &Response) -> pb::Response {
    pb::Response {
        seq: response.seq,
        response_id: response.response_id.clone(),
        session: response.session.clone().unwrap_or_default(),
        dispatch: response.session.is_none(),
        kind: match response.kind {
            ResponseKind::Complete => pb::ResponseKind::Complete,
            ResponseKind::Error => pb::ResponseKind::Error,
            ResponseKind::Notice => pb::ResponseKind::Notice,
        } as i32,
        text: response.text.clone(),
        targets: response.targets.iter().map(channel_to_pb).collect(),
        in_reply_to: response.reply_to.as_ref().map(|r| r.message_id.clone()).unwrap_or_default(),
        reply_to: response.reply_to.as_ref().map(message_ref_to_pb),
        created_at: time(&response.created_at),
        permission: response.permission.as_ref().map(permission_to_pb),
        attachments: response.attachments.iter().map(super::files::attachment_to_pb).collect(),
        traceparent: response.trace_context.clone().unwrap_or_default(),
    }
}

fn permission_to_pb(notice: &PermissionNotice) -> pb::Permission {
    let state = match notice.state {
        PermissionState::Pending => pb::PermissionState::Pending,
        PermissionState::Approved => pb::PermissionState::Approved,
        PermissionState::Denied => pb::PermissionState::Denied,
        PermissionState::TimedOut => pb::PermissionState::TimedOut,
        PermissionState::Cancelled => pb::PermissionState::Cancelled,
    };
    pb::Permission {
        id: notice.id.clone(),
        title: notice.title.clone(),
        options: notice
            .options
            .iter()
            .map(|o| pb::PermissionOption { id: o.id.clone(), label: o.label.clone(), kind: o.kind.clone() })
            .collect(),
        state: state as i32,
        resolved_by: notice.resolved_by.clone().unwrap_or_default(),
    }
}

pub(super) fn chunk_to_pb(chunk: &Chunk) -> pb::Chunk {
    pb::Chunk {
        response_id: chunk.response_id.clone(),
        session: chunk.session.clone(),
        text: chunk.text.clone(),
        targets: chunk.targets.iter().map(channel_to_pb).collect(),
        kind: if chunk.progress { pb::ChunkKind::Progress } else { pb::ChunkKind::Text } as i32,
        reply_to: chunk.reply_to.as_ref().map(message_ref_to_pb),
    }
}

fn message_ref_to_pb(message: &MessageRef) -> pb::MessageRef {
    pb::MessageRef { channel: Some(channel_to_pb(&message.channel)), message_id: message.message_id.clone() }
}

pub(super) fn session_to_pb(info: &SessionInfo) -> pb::Session {
    pb::Session {
        name: info.row.name.clone(),
        workspace_dir: info.row.workspace_dir.clone(),
        backend: info.row.backend.clone(),
        channels: info.channels.iter().map(channel_to_pb).collect(),
        created_at: time(&info.row.created_at),
        state: info.state.as_str().to_owned(),
        queued: info.queued as u32,
        message_count: info.message_count,
        agent_running: info.agent_running.unwrap_or(false),
        input_tokens: info.row.input_tokens,
        output_tokens: info.row.output_tokens,
        last_turn_input_tokens: info.last_turn.map_or(0, |(input, _)| input),
        last_turn_output_tokens: info.last_turn.map_or(0, |(_, output)| output),
        cost: info.cost.as_ref().map_or(0.0, |(amount, _)| *amount),
        cost_currency: info.cost.as_ref().map(|(_, currency)| currency.clone()).unwrap_or_default(),
        agent_mode: info.agent.as_ref().and_then(|a| a.mode.clone()).unwrap_or_default(),
        agent_model: info.agent.as_ref().and_then(|a| a.model.clone()).unwrap_or_default(),
        context_used: info.agent.as_ref().and_then(|a| a.context).map_or(0, |(used, _)| used),
        context_size: info.agent.as_ref().and_then(|a| a.context).map_or(0, |(_, size)| size),
    }
}

pub(super) fn history_to_pb(row: &HistoryRow) -> pb::HistoryEntry {
    pb::HistoryEntry {
        id: row.id,
        role: row.role.clone(),
        author: row.author.clone(),
        text: row.text.clone(),
        channel: row.channel.as_ref().map(channel_to_pb),
        created_at: time(&row.created_at),
        attachments: row.attachments.iter().map(super::files::attachment_to_pb).collect(),
    }
}

pub(super) fn token_to_pb(row: &TokenRow) -> pb::TokenInfo {
    let (kind, platform) = match &row.kind {
        TokenKind::Admin => (pb::TokenKind::Admin, String::new()),
        TokenKind::Gateway { platform } => (pb::TokenKind::Gateway, platform.clone()),
    };
    pb::TokenInfo {
        id: row.id,
        name: row.name.clone(),
        kind: kind as i32,
        platform,
        created_at: time(&row.created_at),
        revoked_at: row.revoked_at.as_ref().map(time).unwrap_or_default(),
    }
}

pub(super) fn token_kind_from_pb(kind: i32, platform: String) -> Result<TokenKind, AuthError> {
    match pb::TokenKind::try_from(kind) {
        Ok(pb::TokenKind::Admin) if platform.is_empty() => Ok(TokenKind::Admin),
        Ok(pb::TokenKind::Admin) => Err(AuthError::Invalid("an admin token has no platform".to_owned())),
        Ok(pb::TokenKind::Gateway) if platform.is_empty() => {
            Err(AuthError::Invalid("a gateway token needs a platform".to_owned()))
        }
        Ok(pb::TokenKind::Gateway) => Ok(TokenKind::Gateway { platform }),
        _ => Err(AuthError::Invalid("token kind must be ADMIN or GATEWAY".to_owned())),
    }
}

pub(super) fn binding_change(channel: &ChannelRef, session: Option<&str>, initial: bool) -> pb::BindingChange {
    pb::BindingChange {
        channel: Some(channel_to_pb(channel)),
        session: session.unwrap_or_default().to_owned(),
        initial,
    }
}

pub(super) fn activity_to_pb(activity: &Activity) -> pb::WatchEvent {
    use pb::watch_event::Kind;
    let kind = match activity {
        Activity::Message(inbound) => Kind::Message(pb::MessageAccepted {
            channel: Some(channel_to_pb(&inbound.channel)),
            message_id: inbound.message_id.clone().unwrap_or_default(),
            sender: inbound.sender.clone(),
            text: inbound.text.clone(),
        }),
        Activity::Response(response) => Kind::Response(response_to_pb(response)),
        Activity::Binding { channel, session } => Kind::Binding(binding_change(channel, session.as_deref(), false)),
        Activity::Session { name, created } => {
            Kind::Session(pb::SessionChange { name: name.clone(), created: *created })
        }
    };
    pb::WatchEvent { at: time(&Utc::now()), kind: Some(kind) }
}

fn optional_time(at: Option<DateTime<Utc>>) -> String {
    at.as_ref().map(time).unwrap_or_default()
}

pub(super) fn schedule_to_pb(info: &ScheduleInfo) -> pb::Schedule {
    let row = &info.row;
    pb::Schedule {
        id: row.id,
        session: row.session.clone(),
        spec: row.spec.clone(),
        cron: row.cron.clone().unwrap_or_default(),
        once_at: optional_time(row.once_at),
        timezone: row.timezone.clone(),
        prompt: row.prompt.clone(),
        catch_up: row.catch_up.as_str().to_owned(),
        paused: row.paused,
        next_slot: if row.paused { String::new() } else { optional_time(row.next_slot) },
        failures: row.failures,
        description: info.description.clone(),
        created_by: row.created_by.clone(),
        created_at: time(&row.created_at),
        last_run: info.last_run.as_ref().map(run_to_pb),
    }
}

pub(super) fn run_to_pb(run: &RunRow) -> pb::ScheduleRun {
    pb::ScheduleRun {
        id: run.id,
        schedule_id: run.schedule_id,
        slot: time(&run.slot),
        manual: run.manual,
        fired_at: time(&run.fired_at),
        started_at: optional_time(run.started_at),
        ended_at: optional_time(run.ended_at),
        outcome: run.outcome.clone(),
        answer_chars: run.answer_chars.unwrap_or_default(),
        error: run.error.clone().unwrap_or_default(),
    }
}

pub(super) fn hook_to_pb(row: &HookRow) -> pb::Hook {
    pb::Hook {
        session: row.session.clone(),
        template: row.template.clone().unwrap_or_default(),
        per_minute: row.per_minute,
        created_at: time(&row.created_at),
        rotated_at: optional_time(row.rotated_at),
    }
}

pub(super) fn hook_secret_to_pb((row, secret): &(HookRow, String)) -> pb::HookSecret {
    pb::HookSecret { hook: Some(hook_to_pb(row)), secret: secret.clone() }
}
