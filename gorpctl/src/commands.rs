//! One function per command: call gorpd, then print a table or JSON.

use crate::cli::{ChannelArgs, Cli, Command, GatewayCommand, SessionCommand, TokenCommand};
use crate::connect::{self, Control};
use crate::error::CliError;
use crate::output::*;
use gorp_proto::v1 as pb;
use serde_json::json;

type CommandResult = Result<(), CliError>;

/// Runs the chosen command.
pub(crate) async fn run(cli: &Cli) -> CommandResult {
    let server = cli.server.as_str();
    let status = |status: tonic::Status| CliError::from_status(status, server);
    match &cli.command {
        Command::Completions { .. } => unreachable!("handled before connecting"),
        Command::Health => health(cli).await,
        Command::Doctor { gateway_health } => crate::doctor::run(cli, gateway_health).await,
        Command::Watch => watch(cli, connect::control(cli).await?).await,
        Command::Tell { session, message, attach } => {
            let client = connect::client(cli).await?;
            let text = message.join(" ");
            crate::files::tell(cli.json, session, &text, attach, &client).await.map_err(|e| match e {
                Failure::Status(s) => status(s),
                Failure::Cli(e) => e,
            })
        }
        Command::Download { sha256, file } => {
            let client = connect::client(cli).await?;
            crate::files::download(cli.json, sha256, file, &client).await.map_err(|e| match e {
                Failure::Status(s) => status(s),
                Failure::Cli(e) => e,
            })
        }
        command => {
            let control = connect::control(cli).await?;
            fleet(cli, command, control).await.map_err(|e| match e {
                Failure::Status(s) => status(s),
                Failure::Cli(e) => e,
            })
        }
    }
}

fn server_info_json(info: &pb::ServerInfo) -> serde_json::Value {
    json!({
        "version": info.version,
        "max_body_bytes": info.max_body_bytes,
        "read_default": info.read_default,
        "read_max": info.read_max,
        "max_queued_messages": info.max_queued_messages,
        "timezone": info.timezone,
        "history_keep_days": (info.history_keep_days > 0).then_some(info.history_keep_days),
        "database_bytes": info.database_bytes,
        "database_free_bytes": info.database_free_bytes,
        "max_database_bytes": (info.max_database_bytes > 0).then_some(info.max_database_bytes),
        "table_rows": info.table_rows,
        "dedup_window_days": info.dedup_window_days,
        "gateway_stale_days": info.gateway_stale_days,
        "compacted_at": (!info.compacted_at.is_empty()).then_some(&info.compacted_at),
        "compacted_through": info.compacted_through,
        "compacted_through_others": info.compacted_through_others,
        "stale_gateways": info.stale_gateways,
        "max_sender_bytes": info.max_sender_bytes,
        "max_id_bytes": info.max_id_bytes,
        "max_frame_bytes": info.max_frame_bytes,
        "grpc_max_connections": info.grpc_max_connections,
        "http_max_connections": info.http_max_connections,
        "header_read_timeout_secs": info.header_read_timeout_secs,
        "max_attachment_bytes": info.max_attachment_bytes,
        "max_message_attachment_bytes": info.max_message_attachment_bytes,
        "replica": (!info.replica.is_empty()).then_some(&info.replica),
        "lease_secs": (info.lease_secs > 0).then_some(info.lease_secs),
        "replicas": info.replicas.iter().map(|r| json!({
            "id": r.id, "name": r.name, "started_at": r.started_at, "alive": r.alive, "sessions": r.sessions,
        })).collect::<Vec<_>>(),
    })
}

/// One row per registered replica (Postgres), after the one that answered.
fn replica_rows(info: &pb::ServerInfo) -> Vec<Vec<String>> {
    if info.replica.is_empty() {
        return Vec::new();
    }
    let mut rows =
        vec![vec!["replica (answering)".to_owned(), format!("{} (lease {} s)", info.replica, info.lease_secs)]];
    for replica in &info.replicas {
        let state = if replica.alive { "alive" } else { "stopped" };
        let detail = format!("{state}, {} sessions, since {}", replica.sessions, replica.started_at);
        rows.push(vec![format!("replica {}", replica.name), detail]);
    }
    rows
}

/// The retention settings and where the last delivery-log compaction stood.
fn compaction_rows(info: &pb::ServerInfo) -> Vec<Vec<String>> {
    let mut rows = vec![
        vec!["de-duplication window".to_owned(), format!("{} days", info.dedup_window_days)],
        vec!["gateways stale after".to_owned(), format!("{} days", info.gateway_stale_days)],
    ];
    if info.compacted_at.is_empty() {
        rows.push(vec!["compaction".to_owned(), "not run yet".to_owned()]);
        return rows;
    }
    rows.push(vec!["compacted at".to_owned(), info.compacted_at.clone()]);
    let mut platforms: Vec<_> = info.compacted_through.iter().collect();
    platforms.sort();
    rows.extend(
        platforms.into_iter().map(|(platform, seq)| vec![format!("compacted: {platform}"), format!("seq {seq}")]),
    );
    rows.push(vec!["compacted: other platforms".to_owned(), format!("seq {}", info.compacted_through_others)]);
    let stale = if info.stale_gateways.is_empty() { "none".to_owned() } else { info.stale_gateways.join(", ") };
    rows.push(vec!["stale gateways".to_owned(), stale]);
    rows
}

/// A command failed in gorpd or before reaching it.
pub(crate) enum Failure {
    Status(tonic::Status),
    Cli(CliError),
}

impl From<tonic::Status> for Failure {
    fn from(status: tonic::Status) -> Self {
        Self::Status(status)
    }
}

async fn fleet(cli: &Cli, command: &Command, mut control: Control) -> Result<(), Failure> {
    match command {
        Command::Session(command) => session(cli, command, &mut control).await,
        Command::Read { session, count } => {
            let request = pb::ReadHistoryRequest { session: session.clone(), count: count.unwrap_or(0) };
            let entries = control.read_history(request).await?.into_inner().entries;
            if cli.json {
                print_json(
                    &json!({ "session": session, "entries": entries.iter().map(history_json).collect::<Vec<_>>() }),
                );
            } else {
                let rows: Vec<_> = entries
                    .iter()
                    .map(|e| vec![e.created_at.clone(), e.role.clone(), e.author.clone(), e.text.clone()])
                    .collect();
                println!("{}", table(&["TIME", "ROLE", "AUTHOR", "TEXT"], &rows));
                let files: Vec<_> =
                    entries.iter().flat_map(|e| e.attachments.iter().map(move |a| attachment_row(e.id, a))).collect();
                if !files.is_empty() {
                    println!("\n{}", table(&["MESSAGE", "FILE", "TYPE", "BYTES", "SHA256"], &files));
                    println!("(gorpctl download SHA256 FILE saves one)");
                }
            }
            Ok(())
        }
        Command::Broadcast { message } => {
            let sessions =
                control.broadcast(pb::BroadcastRequest { text: message.join(" ") }).await?.into_inner().sessions;
            if cli.json {
                print_json(&json!({ "sessions": sessions }));
            } else {
                println!("sent to {} session(s): {}", sessions.len(), sessions.join(", "));
            }
            Ok(())
        }
        Command::Bind(ChannelArgs { platform, channel, session }) => {
            let target = pb::Channel { platform: platform.clone(), channel_id: channel.clone() };
            let request = pb::BindSessionRequest { channel: Some(target.clone()), session: session.clone() };
            let previous = control.bind_session(request).await?.into_inner().previous_session;
            if cli.json {
                let previous = if previous.is_empty() { None } else { Some(previous) };
                print_json(
                    &json!({ "channel": channel_json(&target), "session": session, "previous_session": previous }),
                );
            } else {
                println!("bound {} to {session}", channel_text(&target));
            }
            Ok(())
        }
        Command::Unbind { platform, channel } => {
            let target = pb::Channel { platform: platform.clone(), channel_id: channel.clone() };
            let request = pb::UnbindChannelRequest { channel: Some(target.clone()) };
            let session = control.unbind_channel(request).await?.into_inner().session;
            if cli.json {
                print_json(&json!({ "channel": channel_json(&target), "session": session }));
            } else {
                println!("unbound {} (was bound to {session})", channel_text(&target));
            }
            Ok(())
        }
        Command::Gateway(GatewayCommand::List) => {
            let gateways = control.list_gateways(pb::ListGatewaysRequest {}).await?.into_inner().gateways;
            if cli.json {
                print_json(&json!({ "gateways": gateways.iter().map(gateway_json).collect::<Vec<_>>() }));
            } else {
                let rows: Vec<_> = gateways
                    .iter()
                    .map(|g| {
                        let connected = if g.connected { "yes" } else { "no" };
                        let undecryptable = g.health.as_ref().map_or("-".to_owned(), |h| {
                            format!("{} ({} waiting)", h.undecryptable_since_start, h.waiting_for_keys)
                        });
                        vec![
                            g.gateway_id.clone(),
                            g.platform.clone(),
                            connected.into(),
                            g.last_seen.clone(),
                            g.acked_seq.to_string(),
                            g.pending.to_string(),
                            undecryptable,
                        ]
                    })
                    .collect();
                println!(
                    "{}",
                    table(
                        &["GATEWAY", "PLATFORM", "CONNECTED", "LAST SEEN", "ACKED SEQ", "PENDING", "UNDECRYPTABLE"],
                        &rows
                    )
                );
            }
            Ok(())
        }
        Command::Token(command) => token(cli, command, &mut control).await,
        Command::Schedule(command) => crate::automation::schedule(cli.json, command, &mut control).await,
        Command::Hook(command) => crate::automation::hook(cli.json, command, &mut control).await,
        Command::Backup { file } => crate::backup::backup(cli.json, file, &mut control).await,
        Command::Info => {
            let info = control.get_server_info(pb::GetServerInfoRequest {}).await?.into_inner();
            if cli.json {
                print_json(&server_info_json(&info));
            } else {
                let mut rows: Vec<Vec<String>> = [
                    ("version", info.version.clone()),
                    ("max message bytes", info.max_body_bytes.to_string()),
                    ("max sender / id bytes", format!("{} / {}", info.max_sender_bytes, info.max_id_bytes)),
                    ("max frame bytes", info.max_frame_bytes.to_string()),
                    (
                        "max attachment / per message bytes",
                        format!("{} / {}", info.max_attachment_bytes, info.max_message_attachment_bytes),
                    ),
                    (
                        "connections gRPC / HTTP",
                        format!("{} / {}", info.grpc_max_connections, info.http_max_connections),
                    ),
                    ("header read timeout", format!("{} s", info.header_read_timeout_secs)),
                    ("read default / max", format!("{} / {}", info.read_default, info.read_max)),
                    ("max queued messages", info.max_queued_messages.to_string()),
                    ("time zone", info.timezone.clone()),
                    (
                        "history kept",
                        if info.history_keep_days == 0 {
                            "for ever".into()
                        } else {
                            format!("{} days", info.history_keep_days)
                        },
                    ),
                    ("database bytes", format!("{} ({} free)", info.database_bytes, info.database_free_bytes)),
                    (
                        "database limit",
                        if info.max_database_bytes == 0 {
                            "the disk".into()
                        } else {
                            info.max_database_bytes.to_string()
                        },
                    ),
                ]
                .into_iter()
                .map(|(k, v)| vec![k.to_owned(), v])
                .collect();
                let mut tables: Vec<_> = info.table_rows.iter().collect();
                tables.sort();
                rows.extend(tables.into_iter().map(|(table, n)| vec![format!("rows: {table}"), n.to_string()]));
                rows.extend(compaction_rows(&info));
                rows.extend(replica_rows(&info));
                println!("{}", table(&["FIELD", "VALUE"], &rows));
            }
            Ok(())
        }
        Command::Watch
        | Command::Health
        | Command::Doctor { .. }
        | Command::Completions { .. }
        | Command::Tell { .. }
        | Command::Download { .. } => {
            unreachable!("handled in run")
        }
    }
}

async fn session(cli: &Cli, command: &SessionCommand, control: &mut Control) -> Result<(), Failure> {
    match command {
        SessionCommand::Export { name } => return crate::automation::export(cli.json, name, control).await,
        SessionCommand::Prune { name, keep, older_than } => {
            let older_than_secs = match older_than.as_deref().map(gorp_client::parse_age_secs) {
                None => 0,
                Some(Some(secs)) => secs,
                Some(None) => {
                    return Err(Failure::Cli(CliError::Usage(format!(
                        "--older-than takes an age such as 30d, 12h or 90m, not \"{}\"",
                        older_than.as_deref().unwrap_or_default()
                    ))));
                }
            };
            let request = pb::PruneHistoryRequest { session: name.clone(), keep_last: *keep, older_than_secs };
            let removed = control.prune_history(request).await?.into_inner().removed;
            if cli.json {
                print_json(&json!({ "session": name, "removed": removed }));
            } else {
                println!("removed {removed} history entries of {name}");
            }
        }
        SessionCommand::Import { name, file } => return crate::automation::import(cli.json, name, file, control).await,
        SessionCommand::Create { name, workspace, agent } => {
            let request = pb::CreateSessionRequest {
                name: name.clone(),
                workspace: workspace.clone().unwrap_or_default(),
                agent: agent.clone().unwrap_or_default(),
            };
            let session = control.create_session(request).await?.into_inner();
            if cli.json {
                print_json(&session_json(&session));
            } else {
                println!(
                    "created session {} (agent {}, workspace {})",
                    session.name, session.backend, session.workspace_dir
                );
            }
        }
        SessionCommand::Delete { name } => {
            let unbound =
                control.delete_session(pb::DeleteSessionRequest { name: name.clone() }).await?.into_inner().unbound;
            if cli.json {
                print_json(
                    &json!({ "deleted": name, "unbound": unbound.iter().map(channel_json).collect::<Vec<_>>() }),
                );
            } else {
                let channels: Vec<_> = unbound.iter().map(channel_text).collect();
                println!(
                    "deleted session {name}; unbound {} channel(s){}; its workspace was kept",
                    unbound.len(),
                    list_suffix(&channels)
                );
            }
        }
        SessionCommand::List => {
            let sessions = control.list_sessions(pb::ListSessionsRequest {}).await?.into_inner().sessions;
            if cli.json {
                print_json(&json!({ "sessions": sessions.iter().map(session_json).collect::<Vec<_>>() }));
            } else {
                let rows: Vec<_> = sessions.iter().map(session_row).collect();
                println!("{}", table(&["NAME", "STATE", "QUEUED", "AGENT", "CHANNELS", "MESSAGES"], &rows));
            }
        }
        SessionCommand::Status { name } => {
            let session = control.get_session(pb::GetSessionRequest { name: name.clone() }).await?.into_inner();
            if cli.json {
                print_json(&session_json(&session));
            } else {
                println!("{}", table(&["FIELD", "VALUE"], &session_fields(&session)));
            }
        }
    }
    Ok(())
}

/// The rows of `gorpctl session status`: always the basics, then usage and the agent's settings where known.
fn session_fields(session: &pb::Session) -> Vec<Vec<String>> {
    let channels: Vec<_> = session.channels.iter().map(channel_text).collect();
    let mut rows = vec![
        ("name", session.name.clone()),
        ("state", session.state.clone()),
        ("queued", session.queued.to_string()),
        ("agent", session.backend.clone()),
        ("workspace", session.workspace_dir.clone()),
        ("channels", channels.join(", ")),
        ("messages", session.message_count.to_string()),
        ("tokens", format!("{} in, {} out", session.input_tokens, session.output_tokens)),
    ];
    if session.last_turn_input_tokens + session.last_turn_output_tokens > 0 {
        let last = format!("{} in, {} out", session.last_turn_input_tokens, session.last_turn_output_tokens);
        rows.push(("last turn", last));
    }
    if !session.cost_currency.is_empty() {
        rows.push(("cost", format!("{:.4} {}", session.cost, session.cost_currency)));
    }
    if session.context_size > 0 {
        rows.push(("context", format!("{} of {} tokens", session.context_used, session.context_size)));
    }
    for (field, value) in [("mode", &session.agent_mode), ("model", &session.agent_model)] {
        if !value.is_empty() {
            rows.push((field, value.clone()));
        }
    }
    rows.push(("created", session.created_at.clone()));
    rows.into_iter().map(|(k, v)| vec![k.to_owned(), v]).collect()
}

fn session_row(s: &pb::Session) -> Vec<String> {
    let channels: Vec<_> = s.channels.iter().map(channel_text).collect();
    vec![
        s.name.clone(),
        s.state.clone(),
        s.queued.to_string(),
        s.backend.clone(),
        channels.join(","),
        s.message_count.to_string(),
    ]
}

fn list_suffix(items: &[String]) -> String {
    if items.is_empty() { String::new() } else { format!(" ({})", items.join(", ")) }
}

async fn token(cli: &Cli, command: &TokenCommand, control: &mut Control) -> Result<(), Failure> {
    match command {
        TokenCommand::Create { name, admin: _, gateway } => {
            let (kind, platform) = match gateway {
                Some(platform) => (pb::TokenKind::Gateway, platform.clone()),
                None => (pb::TokenKind::Admin, String::new()),
            };
            let request = pb::CreateTokenRequest { name: name.clone(), kind: kind as i32, platform };
            let created = control.create_token(request).await?.into_inner();
            let info = created.token.ok_or_else(|| Failure::Cli(CliError::Failed("gorpd returned no token".into())))?;
            if cli.json {
                print_json(&json!({ "token": token_json(&info), "secret": created.secret }));
            } else {
                let scope = if info.platform.is_empty() {
                    "admin".to_owned()
                } else {
                    format!("gateway for {}", info.platform)
                };
                println!(
                    "created token {} ({}, {scope}); its secret is shown only now:\n{}",
                    info.id, info.name, created.secret
                );
            }
        }
        TokenCommand::List => {
            let tokens = control.list_tokens(pb::ListTokensRequest {}).await?.into_inner().tokens;
            if cli.json {
                print_json(&json!({ "tokens": tokens.iter().map(token_json).collect::<Vec<_>>() }));
            } else {
                let rows: Vec<_> = tokens
                    .iter()
                    .map(|t| {
                        let state = if t.revoked_at.is_empty() {
                            "valid".to_owned()
                        } else {
                            format!("revoked {}", t.revoked_at)
                        };
                        vec![
                            t.id.to_string(),
                            t.name.clone(),
                            token_kind(t.kind).into(),
                            t.platform.clone(),
                            t.created_at.clone(),
                            state,
                        ]
                    })
                    .collect();
                println!("{}", table(&["ID", "NAME", "KIND", "PLATFORM", "CREATED", "STATE"], &rows));
            }
        }
        TokenCommand::Revoke { id } => {
            control.revoke_token(pb::RevokeTokenRequest { id: *id }).await?;
            if cli.json {
                print_json(&json!({ "revoked": id }));
            } else {
                println!("revoked token {id}");
            }
        }
    }
    Ok(())
}

async fn watch(cli: &Cli, mut control: Control) -> CommandResult {
    let server = cli.server.as_str();
    let mut events =
        control.watch(pb::WatchRequest {}).await.map_err(|s| CliError::from_status(s, server))?.into_inner();
    loop {
        let event = tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(()),
            event = events.message() => event.map_err(|s| CliError::from_status(s, server))?,
        };
        let Some(event) = event else {
            return Err(CliError::Unreachable(format!("gorpd at {server} closed the watch stream")));
        };
        if cli.json {
            println!("{}", watch_json(&event));
        } else {
            println!("{}", watch_line(&event));
        }
    }
}

async fn health(cli: &Cli) -> CommandResult {
    use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient};
    let mut client = HealthClient::new(connect::channel(cli).await?);
    let mut statuses = Vec::new();
    for service in ["gorp.v1.Bus", "gorp.v1.Control"] {
        let request = HealthCheckRequest { service: service.into() };
        let response = client.check(request).await.map_err(|s| CliError::from_status(s, &cli.server))?.into_inner();
        let status = ServingStatus::try_from(response.status).unwrap_or(ServingStatus::Unknown);
        statuses.push((service, status));
    }
    let serving = statuses.iter().all(|(_, s)| *s == ServingStatus::Serving);
    if cli.json {
        let services: serde_json::Map<_, _> =
            statuses.iter().map(|(name, s)| (name.to_string(), json!(s.as_str_name()))).collect();
        print_json(&json!({ "server": cli.server, "serving": serving, "services": services }));
    } else {
        for (name, status) in &statuses {
            println!("{name}: {}", status.as_str_name());
        }
    }
    if serving { Ok(()) } else { Err(CliError::Failed(format!("gorpd at {} is not serving", cli.server))) }
}
