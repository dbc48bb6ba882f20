//! Drives the real `gorp-test-agent` binary over its stdin/stdout as an ACP v1 client.
//!
//! Each test spawns the agent in a fresh directory and connects with `Client.v1()` over
//! `ByteStreams` on the child's pipes. The client's handlers forward every
//! `session/update` and `session/request_permission` into channels that the test body
//! reads; the SDK handles messages in arrival order, so every update of a turn is in the
//! channel by the time that turn's prompt response is returned. Timeouts are upper bounds
//! only: nothing here sleeps.

use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use agent_client_protocol::schema::ProtocolVersion;
use agent_client_protocol::v1::schema::{
    self, CancelNotification, ClientCapabilities, ContentBlock, ContentChunk, FileSystemCapabilities,
    InitializeRequest, LoadSessionRequest, NewSessionRequest, PermissionOptionKind, PromptRequest, ReadTextFileRequest,
    ReadTextFileResponse, RequestPermissionOutcome, RequestPermissionRequest, RequestPermissionResponse,
    SelectedPermissionOutcome, SessionId, SessionNotification, SessionUpdate, StopReason, ToolCallStatus,
};
use agent_client_protocol::v1::{ConnectionTo, Responder};
use agent_client_protocol::{Agent, ByteStreams, Client, Error, ErrorCode};
use tokio::process::Command;
use tokio::sync::mpsc;
use tokio::time::timeout;
use tokio_util::compat::{TokioAsyncReadCompatExt, TokioAsyncWriteCompatExt};

/// Upper bound for anything the agent is expected to do; never a wait.
const LIMIT: Duration = Duration::from_secs(30);

type PermissionAsk = (RequestPermissionRequest, Responder<RequestPermissionResponse>);

/// The test's side of one agent connection.
struct Peer {
    cx: ConnectionTo<Agent>,
    updates: mpsc::UnboundedReceiver<SessionNotification>,
    permissions: mpsc::UnboundedReceiver<PermissionAsk>,
}

/// Spawns the agent in `cwd`, runs `body` as its client, then closes stdin and waits for
/// the agent to exit.
async fn with_agent<T>(cwd: &Path, body: impl AsyncFnOnce(Peer) -> Result<T, Error>) -> (T, ExitStatus) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_gorp-test-agent"))
        .current_dir(cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn gorp-test-agent");
    let stdin = child.stdin.take().expect("piped stdin");
    let stdout = child.stdout.take().expect("piped stdout");
    let transport = ByteStreams::new(stdin.compat_write(), stdout.compat());

    let (update_tx, updates) = mpsc::unbounded_channel();
    let (permission_tx, permissions) = mpsc::unbounded_channel();
    let connection = Client
        .v1()
        .name("agent-test")
        .on_receive_notification(
            async move |update: SessionNotification, _cx| {
                // The body may be done reading; late updates are not an error.
                let _ = update_tx.send(update);
                Ok(())
            },
            agent_client_protocol::on_receive_notification!(),
        )
        .on_receive_request(
            // Hand the responder to the body and return at once: answering here would
            // hold the dispatch loop while the body decides.
            async move |request: RequestPermissionRequest, responder, _cx| {
                permission_tx.send((request, responder)).map_err(|_| Error::internal_error().data("test body is gone"))
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            async |request: ReadTextFileRequest, responder, _cx| match tokio::fs::read_to_string(&request.path).await {
                Ok(content) => responder.respond(ReadTextFileResponse::new(content)),
                Err(_) => responder.respond_with_error(
                    schema::Error::resource_not_found(Some(request.path.display().to_string())).into(),
                ),
            },
            agent_client_protocol::on_receive_request!(),
        )
        .connect_with(transport, async |cx| body(Peer { cx, updates, permissions }).await);

    let value = timeout(LIMIT, connection).await.expect("client timed out").expect("client failed");
    // connect_with has returned and dropped the transport, closing the agent's stdin.
    let status = timeout(LIMIT, child.wait()).await.expect("agent did not exit").expect("wait for agent");
    (value, status)
}

impl Peer {
    async fn initialize(&self) -> Result<schema::InitializeResponse, Error> {
        let capabilities = ClientCapabilities::new().fs(FileSystemCapabilities::new().read_text_file(true));
        let request = InitializeRequest::new(ProtocolVersion::V1).client_capabilities(capabilities);
        self.cx.send_request(request).block_task().await
    }

    /// Opens a session, checking its modes and model and the commands announced right after.
    async fn new_session(&mut self, cwd: &Path) -> Result<SessionId, Error> {
        let created = self.cx.send_request(NewSessionRequest::new(cwd)).block_task().await?;
        let modes = created.modes.expect("the agent has modes");
        assert_eq!((modes.current_mode_id.to_string(), modes.available_modes.len()), ("ask".to_owned(), 3));
        assert_eq!(created.config_options.expect("the agent has a model option").len(), 1);
        let announced = self.next_update().await;
        assert_eq!(announced.session_id, created.session_id);
        assert!(
            matches!(&announced.update, SessionUpdate::AvailableCommandsUpdate(c) if c.available_commands[0].name == "review"),
            "{announced:?}"
        );
        Ok(created.session_id)
    }

    /// Sends a prompt and returns its stop reason and the text chunks of the turn.
    async fn prompt(&mut self, session: &SessionId, text: &str) -> Result<(StopReason, Vec<String>), Error> {
        let request = PromptRequest::new(session.clone(), vec![text.into()]);
        let response = self.cx.send_request(request).block_task().await?;
        Ok((response.stop_reason, self.drain_chunks(session)))
    }

    /// The next update the agent sent, waiting for it if needed.
    async fn next_update(&mut self) -> SessionNotification {
        timeout(LIMIT, self.updates.recv()).await.expect("no update from the agent").expect("update channel closed")
    }

    /// Text of the chunks received so far, all of which must belong to `session`.
    fn drain_chunks(&mut self, session: &SessionId) -> Vec<String> {
        let mut chunks = Vec::new();
        while let Ok(update) = self.updates.try_recv() {
            assert_eq!(&update.session_id, session, "update for the wrong session: {update:?}");
            chunks.extend(chunk_text(&update).map(str::to_owned));
        }
        chunks
    }
}

fn chunk_text(update: &SessionNotification) -> Option<&str> {
    match &update.update {
        SessionUpdate::AgentMessageChunk(ContentChunk { content: ContentBlock::Text(text), .. }) => Some(&text.text),
        _ => None,
    }
}

#[tokio::test]
async fn prompts_stream_numbered_chunks_and_a_new_process_loads_the_session() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path().to_path_buf();

    let (session, status) = with_agent(&cwd, async |mut peer| {
        let init = peer.initialize().await?;
        assert_eq!(init.protocol_version, ProtocolVersion::V1);
        assert!(init.agent_capabilities.load_session);
        assert_eq!(init.agent_info.expect("agent info").name, "gorp-test-agent");

        let session = peer.new_session(&cwd).await?;
        assert!(session.0.starts_with("s-"), "{session}");
        let (stop, chunks) = peer.prompt(&session, "hello there").await?;
        assert_eq!(stop, StopReason::EndTurn);
        assert!(chunks.len() >= 3, "{chunks:?}");
        assert_eq!(chunks.concat(), "acp[1]: hello there");
        let (_, chunks) = peer.prompt(&session, "again").await?;
        assert_eq!(chunks.concat(), "acp[2]: again");
        Ok(session)
    })
    .await;
    assert!(status.success(), "agent exit on EOF: {status}");
    assert!(cwd.join(".gorp-test-agent.json").is_file());

    let ((), status) = with_agent(&cwd, async |mut peer| {
        peer.initialize().await?;
        peer.cx.send_request(LoadSessionRequest::new(session.clone(), &cwd)).block_task().await?;
        let (stop, chunks) = peer.prompt(&session, "after load").await?;
        assert_eq!(stop, StopReason::EndTurn);
        assert_eq!(chunks.concat(), "acp[3]: after load");

        let unknown = peer.cx.send_request(LoadSessionRequest::new("s-unknown", &cwd)).block_task().await;
        assert_eq!(unknown.expect_err("unknown session loaded").code, ErrorCode::RESOURCE_NOT_FOUND);
        let elsewhere = tempfile::tempdir().unwrap();
        let moved = peer.cx.send_request(LoadSessionRequest::new(session.clone(), elsewhere.path())).block_task().await;
        assert_eq!(moved.expect_err("loaded from the wrong cwd").code, ErrorCode::RESOURCE_NOT_FOUND);
        let orphan = peer.cx.send_request(PromptRequest::new("s-unknown", vec!["hi".into()])).block_task().await;
        assert_eq!(orphan.expect_err("prompted an unknown session").code, ErrorCode::RESOURCE_NOT_FOUND);
        Ok(())
    })
    .await;
    assert!(status.success(), "agent exit on EOF: {status}");
}

#[tokio::test]
async fn sessions_on_one_connection_count_their_own_turns() {
    let dir = tempfile::tempdir().unwrap();
    let ((), status) = with_agent(dir.path(), async |mut peer| {
        peer.initialize().await?;
        let first = peer.new_session(dir.path()).await?;
        let second = peer.new_session(dir.path()).await?;
        assert_ne!(first, second);
        for turn in 1..=10 {
            let (_, chunks) = peer.prompt(&first, &format!("first {turn}")).await?;
            assert_eq!(chunks.concat(), format!("acp[{turn}]: first {turn}"));
            if turn % 2 == 0 {
                let (_, chunks) = peer.prompt(&second, "second").await?;
                assert_eq!(chunks.concat(), format!("acp[{}]: second", turn / 2));
            }
        }
        Ok(())
    })
    .await;
    assert!(status.success(), "agent exit on EOF: {status}");
}

#[tokio::test]
async fn ask_requests_permission_and_reports_the_choice() {
    let dir = tempfile::tempdir().unwrap();
    let ((), status) = with_agent(dir.path(), async |mut peer| {
        peer.initialize().await?;
        let session = peer.new_session(dir.path()).await?;
        let answers = [
            (Some("allow"), "permission granted: allow"),
            (Some("always"), "permission granted: always"),
            (Some("reject"), "permission denied"),
            (None, "permission denied"),
        ];
        for (choice, expected) in answers {
            let pending = peer.cx.send_request(PromptRequest::new(session.clone(), vec!["ask".into()]));
            let (request, responder) =
                timeout(LIMIT, peer.permissions.recv()).await.expect("no permission request").expect("channel closed");
            assert_eq!(request.session_id, session);
            assert_eq!(request.tool_call.fields.title.as_deref(), Some("write notes.txt"));
            let options: Vec<_> = request.options.iter().map(|o| (o.option_id.to_string(), o.kind)).collect();
            assert_eq!(
                options,
                [
                    ("allow".to_owned(), PermissionOptionKind::AllowOnce),
                    ("always".to_owned(), PermissionOptionKind::AllowAlways),
                    ("reject".to_owned(), PermissionOptionKind::RejectOnce),
                ]
            );
            let outcome = match choice {
                Some(id) => RequestPermissionOutcome::Selected(SelectedPermissionOutcome::new(id)),
                None => RequestPermissionOutcome::Cancelled,
            };
            responder.respond(RequestPermissionResponse::new(outcome))?;
            assert_eq!(pending.block_task().await?.stop_reason, StopReason::EndTurn);
            assert_eq!(peer.drain_chunks(&session).concat(), expected);
        }
        Ok(())
    })
    .await;
    assert!(status.success(), "agent exit on EOF: {status}");
}

#[tokio::test]
async fn hang_answers_cancelled_after_session_cancel() {
    let dir = tempfile::tempdir().unwrap();
    let ((), status) = with_agent(dir.path(), async |mut peer| {
        peer.initialize().await?;
        let session = peer.new_session(dir.path()).await?;
        let pending = peer.cx.send_request(PromptRequest::new(session.clone(), vec!["hang on".into()]));
        // The chunk proves the turn is waiting, so the cancel cannot arrive before it.
        assert_eq!(chunk_text(&peer.next_update().await), Some("working"));
        peer.cx.send_notification(CancelNotification::new(session.clone()))?;
        assert_eq!(pending.block_task().await?.stop_reason, StopReason::Cancelled);

        let (stop, chunks) = peer.prompt(&session, "still here").await?;
        assert_eq!(stop, StopReason::EndTurn);
        assert_eq!(chunks.concat(), "acp[2]: still here");
        Ok(())
    })
    .await;
    assert!(status.success(), "agent exit on EOF: {status}");
}

#[tokio::test]
async fn crash_flushes_its_chunk_then_exits_with_status_3() {
    let dir = tempfile::tempdir().unwrap();
    let ((), status) = with_agent(dir.path(), async |mut peer| {
        peer.initialize().await?;
        let session = peer.new_session(dir.path()).await?;
        let pending = peer.cx.send_request(PromptRequest::new(session.clone(), vec!["crash".into()]));
        assert_eq!(chunk_text(&peer.next_update().await), Some("about to crash"));
        let err = pending.block_task().await.expect_err("a crashed agent answered");
        assert!(agent_client_protocol::is_incoming_transport_closed(&err), "{err:?}");
        Ok(())
    })
    .await;
    assert_eq!(status.code(), Some(3), "{status}");
}

#[tokio::test]
async fn read_and_tool_go_through_the_client() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), "remember the milk").unwrap();
    let ((), status) = with_agent(dir.path(), async |mut peer| {
        peer.initialize().await?;
        let session = peer.new_session(dir.path()).await?;
        let (stop, chunks) = peer.prompt(&session, "read notes.txt").await?;
        assert_eq!(stop, StopReason::EndTurn);
        assert_eq!(chunks.concat(), "file: remember the milk");
        let (_, chunks) = peer.prompt(&session, "read missing.txt").await?;
        let text = chunks.concat();
        assert!(text.starts_with("read failed: ") && text.contains("missing.txt"), "{text}");

        let request = PromptRequest::new(session.clone(), vec!["tool".into()]);
        assert_eq!(peer.cx.send_request(request).block_task().await?.stop_reason, StopReason::EndTurn);
        let SessionUpdate::ToolCall(call) = peer.next_update().await.update else { panic!("expected a tool call") };
        assert_eq!((call.tool_call_id.to_string(), call.title.as_str()), ("t1".to_owned(), "list files"));
        assert_eq!(call.status, ToolCallStatus::InProgress);
        let SessionUpdate::ToolCallUpdate(update) = peer.next_update().await.update else {
            panic!("expected a tool call update")
        };
        assert_eq!(update.tool_call_id.to_string(), "t1");
        assert_eq!(update.fields.status, Some(ToolCallStatus::Completed));
        assert_eq!(peer.drain_chunks(&session).concat(), "tool done");
        Ok(())
    })
    .await;
    assert!(status.success(), "agent exit on EOF: {status}");
}
