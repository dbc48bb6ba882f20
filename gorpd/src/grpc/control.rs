//! The `Control` service: every DISPATCH operation as a typed RPC, plus
//! gateways, tokens and `Watch`. Admin tokens only, except `GetServerInfo`
//! (the limits, for every client). Each RPC calls the same
//! orchestrator function as the matching DISPATCH command.

use super::convert::{
    activity_to_pb, channel_from_pb, history_to_pb, hook_secret_to_pb, hook_to_pb, run_to_pb, schedule_to_pb,
    session_to_pb, time, token_kind_from_pb, token_to_pb,
};
use super::status::{principal, require_admin, revocation};
use super::{GrpcState, spawn_stream};
use crate::auth::Principal;
use crate::bus::ChannelRef;
use crate::orchestrator::ScheduleRequest;
use crate::store::CatchUp;
use gorp_proto::v1 as pb;
use pb::control_server::Control;
use tokio::sync::broadcast::error::RecvError;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

/// The origin recorded for messages queued through the Control API.
fn control_origin() -> ChannelRef {
    ChannelRef::new("control", "grpc")
}

/// Implementation of `gorp.v1.Control`.
#[derive(Debug)]
pub(crate) struct ControlService {
    state: GrpcState,
}

impl ControlService {
    pub(crate) fn new(state: GrpcState) -> Self {
        Self { state }
    }
}

/// Checks the admin token and unwraps the request.
fn admin<T>(request: Request<T>) -> Result<T, Status> {
    require_admin(&request)?;
    Ok(request.into_inner())
}

#[tonic::async_trait]
impl Control for ControlService {
    type WatchStream = ReceiverStream<Result<pb::WatchEvent, Status>>;
    type BackupStream = ReceiverStream<Result<pb::BackupChunk, Status>>;

    async fn create_session(
        &self,
        request: Request<pb::CreateSessionRequest>,
    ) -> Result<Response<pb::Session>, Status> {
        let request = admin(request)?;
        let workspace = Some(request.workspace.as_str()).filter(|w| !w.is_empty());
        let agent = Some(request.agent.as_str()).filter(|a| !a.is_empty());
        let info = self.state.orchestrator.create_session(&request.name, workspace, agent, None).await?;
        Ok(Response::new(session_to_pb(&info)))
    }

    async fn delete_session(
        &self,
        request: Request<pb::DeleteSessionRequest>,
    ) -> Result<Response<pb::DeleteSessionResponse>, Status> {
        let request = admin(request)?;
        let unbound = self.state.orchestrator.delete_session(&request.name, None).await?;
        Ok(Response::new(pb::DeleteSessionResponse {
            unbound: unbound.iter().map(super::convert::channel_to_pb).collect(),
        }))
    }

    async fn list_sessions(
        &self,
        request: Request<pb::ListSessionsRequest>,
    ) -> Result<Response<pb::ListSessionsResponse>, Status> {
        admin(request)?;
        let sessions = self.state.orchestrator.list_sessions().await?;
        Ok(Response::new(pb::ListSessionsResponse { sessions: sessions.iter().map(session_to_pb).collect() }))
    }

    async fn get_session(&self, request: Request<pb::GetSessionRequest>) -> Result<Response<pb::Session>, Status> {
        let request = admin(request)?;
        let info = self.state.orchestrator.session_info(&request.name).await?;
        Ok(Response::new(session_to_pb(&info)))
    }

    async fn bind_session(
        &self,
        request: Request<pb::BindSessionRequest>,
    ) -> Result<Response<pb::BindSessionResponse>, Status> {
        let request = admin(request)?;
        let channel = channel_from_pb(request.channel)?;
        let previous = self.state.orchestrator.bind(&channel, &request.session).await?;
        Ok(Response::new(pb::BindSessionResponse { previous_session: previous.unwrap_or_default() }))
    }

    async fn unbind_channel(
        &self,
        request: Request<pb::UnbindChannelRequest>,
    ) -> Result<Response<pb::UnbindChannelResponse>, Status> {
        let request = admin(request)?;
        let channel = channel_from_pb(request.channel)?;
        let session = self.state.orchestrator.unbind(&channel).await?;
        Ok(Response::new(pb::UnbindChannelResponse { session }))
    }

    async fn tell(&self, request: Request<pb::TellRequest>) -> Result<Response<pb::TellResponse>, Status> {
        let request = admin(request)?;
        let attachments = super::files::accept(&self.state, request.attachments).await?;
        let orchestrator = &self.state.orchestrator;
        let inbound =
            orchestrator.tell(&request.session, &request.text, attachments, &control_origin(), "operator").await?;
        Ok(Response::new(pb::TellResponse { message_id: inbound.id }))
    }

    async fn read_history(
        &self,
        request: Request<pb::ReadHistoryRequest>,
    ) -> Result<Response<pb::ReadHistoryResponse>, Status> {
        let request = admin(request)?;
        let count = Some(request.count).filter(|c| *c > 0);
        let rows = self.state.orchestrator.read(&request.session, count).await?;
        Ok(Response::new(pb::ReadHistoryResponse { entries: rows.iter().map(history_to_pb).collect() }))
    }

    async fn broadcast(
        &self,
        request: Request<pb::BroadcastRequest>,
    ) -> Result<Response<pb::BroadcastResponse>, Status> {
        let request = admin(request)?;
        let sessions = self.state.orchestrator.broadcast(&request.text, &control_origin(), "operator").await?;
        Ok(Response::new(pb::BroadcastResponse { sessions }))
    }

    async fn list_gateways(
        &self,
        request: Request<pb::ListGatewaysRequest>,
    ) -> Result<Response<pb::ListGatewaysResponse>, Status> {
        admin(request)?;
        let store = self.state.orchestrator.store();
        let mut gateways = Vec::new();
        for row in store.gateways().await? {
            let health = self.state.presence.health(&row.gateway_id).map(pb::GatewayHealth::from);
            gateways.push(pb::Gateway {
                connected: self.state.presence.is_connected(&row.gateway_id),
                health,
                last_seen: time(&row.last_seen),
                acked_seq: row.acked_seq,
                pending: store.responses_pending(&row.platform, row.acked_seq).await?,
                gateway_id: row.gateway_id,
                platform: row.platform,
            });
        }
        Ok(Response::new(pb::ListGatewaysResponse { gateways }))
    }

    async fn create_token(
        &self,
        request: Request<pb::CreateTokenRequest>,
    ) -> Result<Response<pb::CreateTokenResponse>, Status> {
        let request = admin(request)?;
        let kind = token_kind_from_pb(request.kind, request.platform)?;
        let (row, secret) = self.state.auth.create(&request.name, kind).await?;
        Ok(Response::new(pb::CreateTokenResponse { token: Some(token_to_pb(&row)), secret }))
    }

    async fn list_tokens(
        &self,
        request: Request<pb::ListTokensRequest>,
    ) -> Result<Response<pb::ListTokensResponse>, Status> {
        admin(request)?;
        let tokens = self.state.auth.list().await?;
        Ok(Response::new(pb::ListTokensResponse { tokens: tokens.iter().map(token_to_pb).collect() }))
    }

    async fn revoke_token(
        &self,
        request: Request<pb::RevokeTokenRequest>,
    ) -> Result<Response<pb::RevokeTokenResponse>, Status> {
        let request = admin(request)?;
        self.state.auth.revoke(request.id).await?;
        Ok(Response::new(pb::RevokeTokenResponse {}))
    }

    async fn watch(&self, request: Request<pb::WatchRequest>) -> Result<Response<Self::WatchStream>, Status> {
        let revoked = revocation(&request);
        admin(request)?;
        let mut activity = self.state.orchestrator.bus().watch();
        Ok(Response::new(spawn_stream(&self.state, revoked, move |tx| async move {
            loop {
                match activity.recv().await {
                    Ok(event) => {
                        if tx.send(Ok(activity_to_pb(&event))).await.is_err() {
                            return Ok(());
                        }
                    }
                    // Watch is a best-effort view; the durable record is the history and response log.
                    Err(RecvError::Lagged(missed)) => tracing::warn!(missed, "watcher lagged"),
                    Err(RecvError::Closed) => return Err(Status::unavailable("gorpd is shutting down")),
                }
            }
        })))
    }

    async fn add_schedule(&self, request: Request<pb::AddScheduleRequest>) -> Result<Response<pb::Schedule>, Status> {
        let request = admin(request)?;
        let catch_up = match request.catch_up.as_str() {
            "" => CatchUp::Once,
            other => CatchUp::parse(other).map_err(Status::invalid_argument)?,
        };
        let schedule = ScheduleRequest {
            session: request.session,
            when: request.when,
            prompt: request.prompt,
            timezone: Some(request.timezone).filter(|zone| !zone.is_empty()),
            catch_up,
            created_by: control_origin().to_string(),
        };
        let info = self.state.orchestrator.add_schedule(schedule).await?;
        Ok(Response::new(schedule_to_pb(&info)))
    }

    async fn list_schedules(
        &self,
        request: Request<pb::ListSchedulesRequest>,
    ) -> Result<Response<pb::ListSchedulesResponse>, Status> {
        let request = admin(request)?;
        let session = Some(request.session.as_str()).filter(|s| !s.is_empty());
        let schedules = self.state.orchestrator.schedules(session).await?;
        Ok(Response::new(pb::ListSchedulesResponse { schedules: schedules.iter().map(schedule_to_pb).collect() }))
    }

    async fn set_schedule_paused(
        &self,
        request: Request<pb::SetSchedulePausedRequest>,
    ) -> Result<Response<pb::Schedule>, Status> {
        let request = admin(request)?;
        let orchestrator = &self.state.orchestrator;
        let info = if request.paused {
            orchestrator.pause_schedule(request.id).await?
        } else {
            orchestrator.resume_schedule(request.id).await?
        };
        Ok(Response::new(schedule_to_pb(&info)))
    }

    async fn delete_schedule(
        &self,
        request: Request<pb::DeleteScheduleRequest>,
    ) -> Result<Response<pb::DeleteScheduleResponse>, Status> {
        let request = admin(request)?;
        self.state.orchestrator.delete_schedule(request.id).await?;
        Ok(Response::new(pb::DeleteScheduleResponse {}))
    }

    async fn run_schedule(
        &self,
        request: Request<pb::RunScheduleRequest>,
    ) -> Result<Response<pb::ScheduleRun>, Status> {
        let request = admin(request)?;
        let run = self.state.orchestrator.run_schedule(request.id).await?;
        Ok(Response::new(run_to_pb(&run)))
    }

    async fn list_schedule_runs(
        &self,
        request: Request<pb::ListScheduleRunsRequest>,
    ) -> Result<Response<pb::ListScheduleRunsResponse>, Status> {
        let request = admin(request)?;
        let count = match request.count {
            0 => 20,
            n => n.min(1000),
        };
        let runs = self.state.orchestrator.schedule_runs(request.id, count).await?;
        Ok(Response::new(pb::ListScheduleRunsResponse { runs: runs.iter().map(run_to_pb).collect() }))
    }

    async fn create_hook(&self, request: Request<pb::CreateHookRequest>) -> Result<Response<pb::HookSecret>, Status> {
        let request = admin(request)?;
        let template = Some(request.template).filter(|t| !t.is_empty());
        let per_minute = Some(request.per_minute).filter(|n| *n > 0);
        let created = self.state.orchestrator.create_hook(&request.session, template, per_minute).await?;
        Ok(Response::new(hook_secret_to_pb(&created)))
    }

    async fn list_hooks(
        &self,
        request: Request<pb::ListHooksRequest>,
    ) -> Result<Response<pb::ListHooksResponse>, Status> {
        admin(request)?;
        let hooks = self.state.orchestrator.hooks().await?;
        Ok(Response::new(pb::ListHooksResponse { hooks: hooks.iter().map(hook_to_pb).collect() }))
    }

    async fn rotate_hook_secret(
        &self,
        request: Request<pb::RotateHookSecretRequest>,
    ) -> Result<Response<pb::HookSecret>, Status> {
        let request = admin(request)?;
        let rotated = self.state.orchestrator.rotate_hook(&request.session).await?;
        Ok(Response::new(hook_secret_to_pb(&rotated)))
    }

    async fn delete_hook(
        &self,
        request: Request<pb::DeleteHookRequest>,
    ) -> Result<Response<pb::DeleteHookResponse>, Status> {
        let request = admin(request)?;
        self.state.orchestrator.delete_hook(&request.session).await?;
        Ok(Response::new(pb::DeleteHookResponse {}))
    }

    async fn export_session_config(
        &self,
        request: Request<pb::ExportSessionConfigRequest>,
    ) -> Result<Response<pb::ExportSessionConfigResponse>, Status> {
        let request = admin(request)?;
        let yaml = self.state.orchestrator.export_session_config(&request.session).await?;
        Ok(Response::new(pb::ExportSessionConfigResponse { yaml }))
    }

    async fn import_session_config(
        &self,
        request: Request<pb::ImportSessionConfigRequest>,
    ) -> Result<Response<pb::ImportSessionConfigResponse>, Status> {
        let request = admin(request)?;
        let origin = control_origin().to_string();
        let (schedules, hook) =
            self.state.orchestrator.import_session_config(&request.session, &request.yaml, &origin).await?;
        Ok(Response::new(pb::ImportSessionConfigResponse {
            schedules: schedules.iter().map(schedule_to_pb).collect(),
            hook: hook.as_ref().map(hook_secret_to_pb),
        }))
    }

    async fn get_server_info(
        &self,
        request: Request<pb::GetServerInfoRequest>,
    ) -> Result<Response<pb::ServerInfo>, Status> {
        let orchestrator = &self.state.orchestrator;
        // Limits are for every client; the database and compaction figures only for operators.
        let is_admin = matches!(principal(&request)?, Principal::Admin);
        let (size, compaction, dispatch_scope, disk_free_bytes, tls_certificates) = match principal(&request)? {
            Principal::Admin => {
                let disk_free = orchestrator.store().disk_free_bytes().map_err(|e| super::status::internal(&e))?;
                (
                    orchestrator.store().database_size().await?,
                    orchestrator.compaction_report(),
                    String::new(),
                    disk_free,
                    self.state.tls_certificates.to_vec(),
                )
            }
            Principal::Gateway { platform } => {
                let scope = orchestrator.dispatch_scope(&platform).as_str().to_owned();
                (Default::default(), Default::default(), scope, 0, Vec::new())
            }
        };
        let replica = orchestrator.config().replica.as_ref();
        let replicas = match (replica, is_admin) {
            (Some(_), true) => orchestrator.store().replicas().await?.into_iter().map(replica_info).collect(),
            _ => Vec::new(),
        };
        let config = orchestrator.config();
        let (grpc, http) = (&self.state.limits, &self.state.http_limits);
        Ok(Response::new(pb::ServerInfo {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            max_body_bytes: config.max_text_bytes as u64,
            read_default: config.read_default,
            read_max: config.read_max,
            max_queued_messages: config.max_queued_messages as u64,
            timezone: config.timezone.name().to_owned(),
            history_keep_days: config.history_keep.map_or(0, |keep| keep.num_days() as u32),
            database_bytes: size.bytes,
            database_free_bytes: size.free_bytes,
            max_database_bytes: config.max_database_bytes.unwrap_or(0),
            table_rows: size.rows.iter().map(|(table, rows)| ((*table).to_owned(), *rows)).collect(),
            dedup_window_days: config.dedup_window.num_days() as u32,
            gateway_stale_days: config.gateway_stale.num_days() as u32,
            compacted_through: compaction.points.platforms.into_iter().collect(),
            compacted_through_others: compaction.points.others,
            stale_gateways: compaction.stale_gateways.into_iter().map(|gateway| gateway.gateway_id).collect(),
            compacted_at: compaction.at.map(|at| at.to_rfc3339()).unwrap_or_default(),
            max_sender_bytes: crate::names::MAX_SENDER as u32,
            max_id_bytes: crate::names::MAX_EXTERNAL_ID as u32,
            max_frame_bytes: grpc.max_message_bytes as u64,
            grpc_max_connections: grpc.max_connections as u32,
            http_max_connections: http.max_connections as u32,
            header_read_timeout_secs: http.header_read_timeout.as_secs() as u32,
            dispatch_scope,
            server_time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            disk_free_bytes,
            max_attachment_bytes: config.file_limits.max_file_bytes,
            max_message_attachment_bytes: config.file_limits.max_message_bytes,
            tls_certificates,
            replica: replica.map(|replica| replica.name.clone()).unwrap_or_default(),
            replicas,
            lease_secs: replica.map_or(0, |replica| replica.lease.as_secs() as u32),
        }))
    }

    async fn check_agents(
        &self,
        request: Request<pb::CheckAgentsRequest>,
    ) -> Result<Response<pb::CheckAgentsResponse>, Status> {
        admin(request)?;
        let checks = self.state.orchestrator.check_agents().await;
        let agents = checks
            .into_iter()
            .map(|(agent, outcome)| {
                let (ok, detail) = match outcome {
                    Ok(found) => (true, found),
                    Err(problem) => (false, problem),
                };
                pb::AgentCheck { agent, ok, detail }
            })
            .collect();
        Ok(Response::new(pb::CheckAgentsResponse { agents }))
    }

    async fn prune_history(
        &self,
        request: Request<pb::PruneHistoryRequest>,
    ) -> Result<Response<pb::PruneHistoryResponse>, Status> {
        let request = admin(request)?;
        let orchestrator = &self.state.orchestrator;
        let older_than = i64::try_from(request.older_than_secs)
            .ok()
            .and_then(chrono::Duration::try_seconds)
            .ok_or_else(|| Status::invalid_argument("older_than_secs is too large"))?;
        let rule = crate::store::PruneRule {
            keep_last: request.keep_last,
            before: (request.older_than_secs > 0).then(|| orchestrator.now() - older_than),
        };
        if rule == crate::store::PruneRule::default() {
            return Err(Status::invalid_argument("say what to keep: keep_last, older_than_secs, or both"));
        }
        let removed = orchestrator.prune_history(&request.session, rule).await?;
        Ok(Response::new(pb::PruneHistoryResponse { removed }))
    }

    async fn backup(&self, request: Request<pb::BackupRequest>) -> Result<Response<Self::BackupStream>, Status> {
        let revoked = revocation(&request);
        admin(request)?;
        let store = self.state.orchestrator.store().clone();
        Ok(Response::new(spawn_stream(&self.state, revoked, move |tx| async move {
            let snapshot = store.snapshot().await?;
            tracing::info!(bytes = snapshot.bytes(), "streaming a backup");
            stream_file(&snapshot, &tx).await
        })))
    }
}

/// Bytes per backup chunk.
const BACKUP_CHUNK: usize = 1024 * 1024;

/// Sends a snapshot in chunks, the SHA-256 of the whole in the last one.
async fn stream_file(
    snapshot: &crate::store::Snapshot,
    tx: &tokio::sync::mpsc::Sender<Result<pb::BackupChunk, Status>>,
) -> Result<(), Status> {
    use sha2::Digest;
    use tokio::io::AsyncReadExt;
    let unreadable = |error: std::io::Error| Status::internal(format!("reading the backup failed: {error}"));
    let mut file = tokio::fs::File::open(snapshot.path()).await.map_err(unreadable)?;
    let total_bytes = snapshot.bytes();
    let mut hash = sha2::Sha256::new();
    let mut sent = 0u64;
    loop {
        let mut data = vec![0u8; BACKUP_CHUNK];
        let mut filled = 0;
        while filled < BACKUP_CHUNK {
            match file.read(&mut data[filled..]).await.map_err(unreadable)? {
                0 => break,
                n => filled += n,
            }
        }
        data.truncate(filled);
        hash.update(&data);
        sent += filled as u64;
        let last = sent >= total_bytes || filled < BACKUP_CHUNK;
        let sha256 = if last { hex::encode(hash.clone().finalize()) } else { String::new() };
        if tx.send(Ok(pb::BackupChunk { data, total_bytes, sha256 })).await.is_err() || last {
            return Ok(());
        }
    }
}

fn replica_info(row: crate::store::ReplicaRow) -> pb::ReplicaInfo {
    pb::ReplicaInfo { id: row.id, name: row.name, started_at: row.started_at, alive: row.alive, sessions: row.sessions }
}
