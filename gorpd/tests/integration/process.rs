//! The real `gorpd` binary: zero-config start, the admin token, `/healthz`,
//! a clean stop on SIGTERM, and exit code 64 for a broken config.

use crate::support::within;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};

fn gorpd(home: &std::path::Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_gorpd"));
    command.args(args).env_clear().env("HOME", home).env("GORP_LOG", "info");
    // tests/run.sh finds processes that outlive the suite by this variable.
    command.envs(std::env::var_os("GORP_TEST_RUN").map(|run| ("GORP_TEST_RUN", run)));
    command.stdout(Stdio::null()).stderr(Stdio::piped());
    command
}

/// Reads the log until "gorpd is serving" and returns the gRPC and HTTP addresses.
pub(crate) fn serving_addresses(child: &mut Child) -> (String, String) {
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let field = |line: &str, key: &str| {
        let start = line.find(&format!(" {key}=")).unwrap() + key.len() + 2;
        line[start..].split(' ').next().unwrap().to_owned()
    };
    loop {
        let line = lines.next().expect("gorpd logs a serving line").unwrap();
        if line.contains("gorpd is serving") {
            assert!(line.contains("admin_token="), "{line}");
            // Keep draining the log so gorpd never writes into a closed pipe.
            std::thread::spawn(move || lines.for_each(drop));
            return (field(&line, "grpc"), field(&line, "http"));
        }
    }
}

/// Kills a spawned gorpd when the test fails before it stopped it.
struct KillOnPanic(Option<u32>);

impl KillOnPanic {
    /// The process exited and was reaped: its pid may belong to another process now.
    fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for KillOnPanic {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
        }
    }
}

fn http_get(addr: &str, path: &str) -> String {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut body = String::new();
    stream.read_to_string(&mut body).unwrap();
    body
}

#[tokio::test]
async fn the_binary_starts_with_zero_config_and_stops_cleanly_on_sigterm() {
    let home = tempfile::tempdir().unwrap();
    let mut child = gorpd(home.path(), &["--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"]).spawn().unwrap();
    let mut guard = KillOnPanic(Some(child.id()));
    let (grpc, http) = serving_addresses(&mut child);
    let data_dir = home.path().join(".local/share/gorp");
    assert!(data_dir.join("gorp.db").is_file() && data_dir.join("admin.token").is_file());
    assert!(http_get(&http, "/healthz").ends_with("ok\n"));

    let token = std::fs::read_to_string(data_dir.join("admin.token")).unwrap();
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{grpc}")).unwrap().connect().await.unwrap();
    let mut control =
        gorp_proto::v1::control_client::ControlClient::with_interceptor(channel, gorpd::testing::bearer(token.trim()));
    let request =
        gorp_proto::v1::CreateSessionRequest { name: "proc".into(), workspace: String::new(), agent: String::new() };
    control.create_session(request).await.unwrap();
    assert!(data_dir.join("workspaces/proc").is_dir());
    // Private whatever the umask: the database, its WAL and every workspace.
    use std::os::unix::fs::PermissionsExt;
    for (path, mode) in
        [("gorp.db", 0o600), ("gorp.db-wal", 0o600), ("workspaces", 0o700), ("workspaces/proc", 0o700), (".", 0o700)]
    {
        let actual = std::fs::metadata(data_dir.join(path)).unwrap().permissions().mode() & 0o777;
        assert_eq!(actual, mode, "{path} is {actual:o}");
    }

    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = within(tokio::task::spawn_blocking(move || child.wait())).await.unwrap().unwrap();
    guard.disarm();
    assert!(status.success(), "{status:?}");
}

#[test]
fn a_broken_config_exits_64_with_one_line() {
    let home = tempfile::tempdir().unwrap();
    let config = home.path().join("gorp.toml");
    std::fs::write(&config, "grpc_adr = \"127.0.0.1:1\"\n").unwrap();
    let cases: [&[&str]; 5] = [
        &["--config", config.to_str().unwrap()],
        &["--grpc-addr", "0.0.0.0:0"],
        &["--grpc-addr", "localhost:7730"],
        &["--max-body-bytes", "0"],
        &["--no-such-flag"],
    ];
    for args in cases {
        let output = gorpd(home.path(), args).output().unwrap();
        assert_eq!(output.status.code(), Some(64), "{args:?}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.starts_with("gorpd: "), "{stderr}");
    }
}

#[test]
fn a_malformed_admin_token_file_stops_the_start_with_a_reason() {
    let home = tempfile::tempdir().unwrap();
    let data_dir = home.path().join("data");
    std::fs::create_dir_all(&data_dir).unwrap();
    std::fs::write(data_dir.join("admin.token"), "\n").unwrap();
    let output = gorpd(
        home.path(),
        &["--data-dir", data_dir.to_str().unwrap(), "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"],
    )
    .output()
    .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("does not hold a gorp token"), "{stderr}");
}

#[tokio::test]
async fn restore_puts_a_backup_in_place_once_and_refuses_anything_else() {
    if gorpd::testing::runs_on_postgres() {
        // Restoring puts a SQLite backup file in place: the Postgres run checks the refusal to back up instead.
        return;
    }
    let home = tempfile::tempdir().unwrap();
    let source = tempfile::tempdir().unwrap();
    let server = gorpd::testing::TestServer::start_in(source.path()).await;
    server.control().create_session(crate::support::create("kept")).await.unwrap();
    let backup = home.path().join("backup.db");
    server.store.backup_into(&backup).await.unwrap();
    server.stop().await.unwrap();

    let target = home.path().join("restored");
    let data_dir = target.to_str().unwrap();
    let backup_path = backup.to_str().unwrap();
    let run = |args: &[&str]| gorpd(home.path(), args).stdout(Stdio::piped()).output().unwrap();
    let restored = run(&["--data-dir", data_dir, "--restore", backup_path]);
    assert!(restored.status.success(), "{}", String::from_utf8_lossy(&restored.stderr));
    let said = String::from_utf8_lossy(&restored.stdout);
    assert!(said.contains("1 sessions") && said.contains("start gorpd to serve it"), "{said}");
    let store = gorpd::store::Store::open(&target).await.unwrap();
    assert!(store.session("kept").await.is_ok());
    store.close().await;

    let again = run(&["--data-dir", data_dir, "--restore", backup_path]);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("restore into an empty data directory"));
    let junk = home.path().join("junk.db");
    std::fs::write(&junk, vec![b'j'; 4096]).unwrap();
    let empty = home.path().join("empty");
    let refused = run(&["--data-dir", empty.to_str().unwrap(), "--restore", junk.to_str().unwrap()]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("not a gorp database"));
    assert!(!empty.join("gorp.db").exists(), "nothing was written");
}

/// A SQLite store with a bit of everything: a session with history and a
/// binding, a delivered and an undelivered answer, a gateway's cursor, a
/// gateway token and a schedule.
async fn a_used_sqlite_store(data_dir: &std::path::Path) -> (u64, String) {
    use gorpd::domain::{ChannelRef, NewResponse, ResponseKind};
    use gorpd::store::{Commit, InboundState, NewInbound, Store, TokenKind};
    std::fs::create_dir_all(data_dir).unwrap();
    let store = Store::open(data_dir).await.unwrap();
    store.create_session("kept", "/tmp/kept", "echo").await.unwrap();
    let channel = ChannelRef::new("telegram", "42");
    store.bind(&channel, "kept").await.unwrap();
    let mut last_seq = 0;
    for text in ["first", "second"] {
        let new = NewInbound {
            channel: channel.clone(),
            message_id: Some(format!("m-{text}")),
            sender: "ann".into(),
            text: text.into(),
            attachments: Vec::new(),
            trace_context: None,
        };
        let inbound = store.accept_inbound(&new).await.unwrap().unwrap();
        store.route_to_sessions(vec![(inbound.id, "kept".into())]).await.unwrap();
        store.start_turn(inbound.id).await.unwrap();
        let answer = NewResponse {
            response_id: format!("r-{text}"),
            session: Some("kept".into()),
            kind: ResponseKind::Complete,
            text: format!("echo: {text}"),
            targets: vec![channel.clone()],
            reply_to: None,
            permission: None,
            attachments: Vec::new(),
            trace_context: None,
        };
        let commit = Commit { in_history: true, finish: Some((inbound.id, InboundState::Done)), only_if_running: true };
        last_seq = store.append_response(answer, commit, |response| response.seq).await.unwrap().unwrap();
    }
    store.touch_gateway("tg-1", "telegram", 0).await.unwrap();
    store.ack_gateway("tg-1", last_seq - 1);
    let hash = "ab".repeat(32);
    store.insert_token("telegram", &TokenKind::Gateway { platform: "telegram".into() }, &hash).await.unwrap();
    store.close().await;
    (last_seq, hash)
}

#[tokio::test]
async fn migrate_from_copies_a_sqlite_store_into_postgres_once_with_its_history_cursors_and_tokens() {
    let home = tempfile::tempdir().unwrap();
    let source = home.path().join("sqlite");
    let (last_seq, token_hash) = a_used_sqlite_store(&source).await;
    let gorp_db = source.join("gorp.db");
    let run = |args: &[&str]| gorpd(home.path(), args).stdout(Stdio::piped()).output().unwrap();
    let without_url = run(&["--data-dir", source.to_str().unwrap(), "--migrate-from", gorp_db.to_str().unwrap()]);
    assert_eq!(without_url.status.code(), Some(64), "--migrate-from needs --store-url");
    assert!(String::from_utf8_lossy(&without_url.stderr).contains("set --store-url"));
    if !gorpd::testing::runs_on_postgres() {
        return; // The rest needs a Postgres server: tests/run.sh's second pass has one.
    }
    let target = home.path().join("postgres");
    let url = gorpd::store::test_store_url(&target).unwrap();
    let args =
        ["--data-dir", target.to_str().unwrap(), "--store-url", &url, "--migrate-from", gorp_db.to_str().unwrap()];
    let migrated = run(&args);
    assert!(migrated.status.success(), "{}", String::from_utf8_lossy(&migrated.stderr));
    let said = String::from_utf8_lossy(&migrated.stdout);
    assert!(said.contains("sessions 1") && said.contains("responses 2"), "{said}");

    let store = gorpd::store::Store::open_postgres(&url, &target).await.unwrap();
    assert_eq!(store.session("kept").await.unwrap().workspace_dir, "/tmp/kept");
    assert_eq!(store.bindings().await.unwrap().len(), 1);
    let history: Vec<String> = store.last_messages("kept", 10).await.unwrap().into_iter().map(|h| h.text).collect();
    assert_eq!(history, ["first", "echo: first", "second", "echo: second"]);
    assert_eq!(store.resume_cursor("tg-1", "telegram").await.unwrap(), last_seq - 1, "the cursor came along");
    let undelivered = store.responses_after("telegram", last_seq - 1, 10).await.unwrap();
    assert_eq!((undelivered.len(), undelivered[0].seq), (1, last_seq), "the same seq, still to deliver");
    assert!(store.token_by_hash(&token_hash).await.unwrap().is_some(), "the gateway token still works");
    assert_eq!(store.last_seq().await.unwrap(), last_seq);
    let next = gorpd::domain::NewResponse {
        response_id: "after".into(),
        session: None,
        kind: gorpd::domain::ResponseKind::Notice,
        text: "after the move".into(),
        targets: vec![gorpd::domain::ChannelRef::new("telegram", "42")],
        reply_to: None,
        permission: None,
        attachments: Vec::new(),
        trace_context: None,
    };
    let seq = store.append_response(next, Default::default(), |r| r.seq).await.unwrap().unwrap();
    assert_eq!(seq, last_seq + 1, "no seq a gateway has seen is given again");
    store.close().await;

    let again = run(&args);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already holds gorp data"));
}

#[tokio::test]
async fn gorp_log_format_json_writes_one_json_object_per_line_and_a_bad_format_exits_64() {
    let home = tempfile::tempdir().unwrap();
    let addrs = ["--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"];
    let mut child = gorpd(home.path(), &addrs).env("GORP_LOG_FORMAT", "json").spawn().unwrap();
    let mut guard = KillOnPanic(Some(child.id()));
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let serving = loop {
        let line = lines.next().expect("gorpd logs a serving line").unwrap();
        let event: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        if event["fields"]["message"] == "gorpd is serving" {
            break event;
        }
    };
    std::thread::spawn(move || lines.for_each(drop));
    assert_eq!(serving["level"], "INFO", "{serving}");
    assert!(serving["fields"]["http"].as_str().is_some_and(|a| a.starts_with("127.0.0.1:")), "{serving}");
    assert!(serving["timestamp"].is_string() && serving["target"] == "gorpd", "{serving}");
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = within(tokio::task::spawn_blocking(move || child.wait())).await.unwrap().unwrap();
    guard.disarm();
    assert!(status.success(), "{status:?}");

    let output = gorpd(home.path(), &addrs).env("GORP_LOG_FORMAT", "yaml").output().unwrap();
    assert_eq!(output.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr, "gorpd: GORP_LOG_FORMAT must be \"text\" or \"json\", not \"yaml\"\n");
}
