//! The real gorpctl binary against a real gorpd (in-process on port 0):
//! every command in table and JSON form, exit codes, revoked tokens, watch,
//! completions and the README's fleet script.

use gorp_proto::v1 as pb;
use gorpd::testing::TestServer;
use gorpd::testing::clients::eventually;
use serde_json::Value;
use std::process::Output;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_gorpctl");

fn command(server: &str, token: Option<&str>, args: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    command.args(args).env_clear().env("HOME", "/nonexistent").env("GORP_SERVER", server);
    // tests/run.sh finds processes that outlive the suite by this variable.
    command.envs(std::env::var_os("GORP_TEST_RUN").map(|run| ("GORP_TEST_RUN", run)));
    if let Some(token) = token {
        command.env("GORP_TOKEN", token);
    }
    command.kill_on_drop(true);
    command
}

async fn run(server: &TestServer, args: &[&str]) -> Output {
    let url = format!("http://{}", server.grpc_addr);
    tokio::time::timeout(Duration::from_secs(30), command(&url, Some(&server.admin_token), args).output())
        .await
        .expect("gorpctl finished")
        .expect("gorpctl runs")
}

/// Runs gorpctl, expects success, returns stdout.
async fn ok(server: &TestServer, args: &[&str]) -> String {
    let output = run(server, args).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "gorpctl {args:?} failed: {stderr}");
    String::from_utf8(output.stdout).unwrap()
}

/// Runs gorpctl with `--json`, expects success, returns the parsed document.
async fn json(server: &TestServer, args: &[&str]) -> Value {
    let args: Vec<&str> = std::iter::once("--json").chain(args.iter().copied()).collect();
    serde_json::from_str(&ok(server, &args).await).expect("valid JSON")
}

fn code(output: &Output) -> i32 {
    output.status.code().expect("exited")
}

#[tokio::test]
async fn session_commands_in_table_and_json_form() {
    let server = TestServer::start().await;
    let created = json(&server, &["session", "create", "alpha", "--workspace", "team/alpha"]).await;
    assert_eq!(created["name"], "alpha");
    assert_eq!(created["state"], "idle");
    assert!(created["workspace_dir"].as_str().unwrap().ends_with("workspaces/team/alpha"));
    assert!(ok(&server, &["session", "create", "beta"]).await.starts_with("created session beta (agent echo"));

    let list = ok(&server, &["session", "list"]).await;
    let lines: Vec<_> = list.lines().collect();
    assert_eq!(lines[0], "NAME   STATE  QUEUED  AGENT  CHANNELS  MESSAGES");
    assert_eq!(lines[1], "alpha  idle   0       echo             0");
    assert_eq!(json(&server, &["session", "list"]).await["sessions"].as_array().unwrap().len(), 2);

    assert!(ok(&server, &["bind", "web", "tab-1", "alpha"]).await.contains("bound web:tab-1 to alpha"));
    let moved = json(&server, &["bind", "web", "tab-1", "beta"]).await;
    assert_eq!(
        moved,
        serde_json::json!({"channel": {"platform": "web", "channel_id": "tab-1"}, "session": "beta", "previous_session": "alpha"})
    );
    let status = ok(&server, &["session", "status", "beta"]).await;
    assert!(status.contains("channels   web:tab-1"), "{status}");
    assert!(status.contains("tokens     0 in, 0 out"), "{status}");
    let status = json(&server, &["session", "status", "beta"]).await;
    assert_eq!(status["channels"][0]["channel_id"], "tab-1");
    assert!(status["cost"].is_null() && status["agent_mode"].is_null(), "echo reports no usage: {status}");
    let unbound = json(&server, &["unbind", "web", "tab-1"]).await;
    assert_eq!(unbound["session"], "beta");
    assert!(ok(&server, &["bind", "telegram", "42", "alpha"]).await.contains("bound telegram:42"));
    assert!(ok(&server, &["unbind", "telegram", "42"]).await.contains("unbound telegram:42 (was bound to alpha)"));

    let gamma = json(&server, &["session", "create", "gamma", "--agent", "echo"]).await;
    assert_eq!((gamma["backend"].as_str(), gamma["agent_running"].as_bool()), (Some("echo"), Some(false)));
    let unknown = run(&server, &["session", "create", "delta", "--agent", "nope"]).await;
    assert_eq!(code(&unknown), 1);
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("unknown agent profile \"nope\""));

    let deleted = json(&server, &["session", "delete", "beta"]).await;
    assert_eq!(deleted, serde_json::json!({"deleted": "beta", "unbound": []}));
    assert!(ok(&server, &["session", "delete", "alpha"]).await.contains("deleted session alpha; unbound 0 channel(s)"));
}

#[tokio::test]
async fn tell_read_and_broadcast() {
    let server = TestServer::start().await;
    ok(&server, &["session", "create", "a"]).await;
    ok(&server, &["session", "create", "b"]).await;
    let told = json(&server, &["tell", "a", "hello", "there"]).await;
    assert_eq!(told["session"], "a");
    assert!(told["message_id"].as_i64().unwrap() > 0);
    assert!(ok(&server, &["tell", "b", "hi"]).await.starts_with("sent to b"));
    let broadcast = json(&server, &["broadcast", "all", "of", "you"]).await;
    assert_eq!(broadcast["sessions"], serde_json::json!(["a", "b"]));
    assert!(ok(&server, &["broadcast", "again"]).await.contains("sent to 2 session(s): a, b"));

    let read = wait_for_history(&server, "a", 6).await;
    // Questions enter the history when queued, answers when done: check each in order.
    let texts = |role: &str| -> Vec<String> {
        let entries = read["entries"].as_array().unwrap().iter().filter(|e| e["role"] == role);
        entries.map(|e| e["text"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(texts("user"), ["hello there", "all of you", "again"]);
    assert_eq!(texts("assistant"), ["echo: hello there", "echo: all of you", "echo: again"]);
    assert_eq!(read["entries"][0]["role"], "user");
    assert_eq!(read["entries"][0]["author"], "operator");
    let limited = json(&server, &["read", "a", "-n", "2"]).await;
    assert_eq!(limited["entries"].as_array().unwrap().len(), 2);
    let table = ok(&server, &["read", "a", "--count", "1"]).await;
    assert!(table.starts_with("TIME") && table.contains("assistant  a       echo: again"), "{table}");
}

async fn wait_for_history(server: &TestServer, session: &str, entries: usize) -> Value {
    for _ in 0..300 {
        let read = json(server, &["read", session]).await;
        if read["entries"].as_array().unwrap().len() >= entries {
            return read;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{session} never reached {entries} history entries");
}

#[tokio::test]
async fn tokens_gateways_and_health() {
    let server = TestServer::start().await;
    let created = json(&server, &["token", "create", "tg", "--gateway", "telegram"]).await;
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert_eq!(created["token"]["kind"], "gateway");
    assert_eq!(created["token"]["platform"], "telegram");
    assert!(ok(&server, &["token", "create", "ops", "--admin"]).await.contains("its secret is shown only now:\ngorp_"));
    let list = json(&server, &["token", "list"]).await;
    let tokens = list["tokens"].as_array().unwrap();
    assert_eq!(tokens.len(), 3);
    assert!(tokens.iter().all(|t| t.get("secret").is_none()), "secrets are never listed");
    assert!(ok(&server, &["token", "list"]).await.lines().next().unwrap().starts_with("ID  NAME"));

    // A gateway that subscribed shows up with its lag.
    let mut bus = server.bus(&secret);
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let hello = pb::SubscribeHello { gateway_id: "tg-1".into(), platform: "telegram".into(), cursor: None };
    tx.send(pb::SubscribeRequest { kind: Some(pb::subscribe_request::Kind::Hello(hello)) }).await.unwrap();
    let _stream = bus.subscribe_responses(tokio_stream::wrappers::ReceiverStream::new(rx)).await.unwrap();
    let mut gateways = Value::Null;
    for _ in 0..200 {
        gateways = json(&server, &["gateway", "list"]).await;
        if gateways["gateways"][0]["connected"] == true {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(gateways["gateways"][0]["gateway_id"], "tg-1");
    assert_eq!(gateways["gateways"][0]["pending"], 0);
    assert_eq!(gateways["gateways"][0]["health"], Value::Null, "nothing reported");
    let table = ok(&server, &["gateway", "list"]).await;
    assert!(table.contains("tg-1     telegram  yes"), "{table}");
    // Its health report (undecryptable messages) shows in both forms.
    let health = pb::GatewayHealth { undecryptable_since_start: 2, waiting_for_keys: 1 };
    tx.send(pb::SubscribeRequest { kind: Some(pb::subscribe_request::Kind::Health(health)) }).await.unwrap();
    for _ in 0..200 {
        gateways = json(&server, &["gateway", "list"]).await;
        if !gateways["gateways"][0]["health"].is_null() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let reported = &gateways["gateways"][0]["health"];
    assert_eq!((&reported["undecryptable_since_start"], &reported["waiting_for_keys"]), (&2.into(), &1.into()));
    let table = ok(&server, &["gateway", "list"]).await;
    assert!(table.contains("UNDECRYPTABLE") && table.contains("2 (1 waiting)"), "{table}");

    let id = created["token"]["id"].to_string();
    assert_eq!(json(&server, &["token", "revoke", &id]).await["revoked"].to_string(), id);
    let admin_id = json(&server, &["token", "list"]).await["tokens"][2]["id"].to_string();
    assert_eq!(ok(&server, &["token", "revoke", &admin_id]).await, format!("revoked token {admin_id}\n"));
    // The revoked gateway token is refused by gorpd, and so by gorpctl.
    let url = format!("http://{}", server.grpc_addr);
    let refused = command(&url, Some(&secret), &["session", "list"]).output().await.unwrap();
    assert_eq!(code(&refused), 4);
    assert!(String::from_utf8_lossy(&refused.stderr).contains("invalid or revoked token"));

    assert_eq!(ok(&server, &["health"]).await, "gorp.v1.Bus: SERVING\ngorp.v1.Control: SERVING\n");
    assert_eq!(json(&server, &["health"]).await["serving"], true);
}

#[tokio::test]
async fn exit_codes_and_error_messages() {
    let server = TestServer::start().await;
    let url = format!("http://{}", server.grpc_addr);

    let missing = run(&server, &["session", "status", "ghost"]).await;
    assert_eq!(code(&missing), 3);
    let stderr = String::from_utf8(missing.stderr).unwrap();
    assert_eq!(stderr, "gorpctl: unknown session \"ghost\"\nhint: `gorpctl session list` shows the sessions\n");

    let usage = run(&server, &["session", "frobnicate"]).await;
    assert_eq!(code(&usage), 2);
    let token_kind = run(&server, &["token", "create", "x"]).await;
    assert_eq!(code(&token_kind), 2, "a token needs --admin or --gateway");

    let invalid = run(&server, &["session", "create", "Not Valid"]).await;
    assert_eq!(code(&invalid), 1);
    assert!(String::from_utf8_lossy(&invalid.stderr).contains("is invalid: use 1-64 characters"));
    ok(&server, &["session", "create", "dup"]).await;
    assert_eq!(code(&run(&server, &["session", "create", "dup"]).await), 1);

    let bad_token = command(&url, Some("gorp_wrong"), &["session", "list"]).output().await.unwrap();
    assert_eq!(code(&bad_token), 4);
    let no_token = command(&url, None, &["session", "list"]).output().await.unwrap();
    assert_eq!(code(&no_token), 4);
    assert!(String::from_utf8_lossy(&no_token.stderr).contains("no token given"));

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let unreachable = command(&format!("http://{closed}"), Some("x"), &["session", "list"]).output().await.unwrap();
    assert_eq!(code(&unreachable), 5);
    let stderr = String::from_utf8(unreachable.stderr).unwrap();
    assert!(stderr.starts_with(&format!("gorpctl: cannot reach gorpd at http://{closed}")), "{stderr}");
    assert!(stderr.contains("hint: is gorpd running?"));
    let json_error = command(&format!("http://{closed}"), Some("x"), &["--json", "health"]).output().await.unwrap();
    let error: Value = serde_json::from_slice(&json_error.stderr).unwrap();
    assert_eq!(error["error"]["kind"], "unreachable");
    assert_eq!(code(&command("ftp://x", Some("x"), &["health"]).output().await.unwrap()), 2);

    // Several servers (replicas): the first that answers is used; when none does, each is named.
    let replicas = format!("http://{closed},{url}");
    let listed = command(&replicas, Some(&server.admin_token), &["session", "list"]).output().await.unwrap();
    assert_eq!(code(&listed), 0, "{}", String::from_utf8_lossy(&listed.stderr));
    assert!(String::from_utf8_lossy(&listed.stdout).contains("dup"));
    let healthy = command(&replicas, None, &["health"]).output().await.unwrap();
    assert_eq!(code(&healthy), 0, "{}", String::from_utf8_lossy(&healthy.stderr));
    let other = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let none =
        command(&format!("http://{closed},http://{other}"), Some("x"), &["session", "list"]).output().await.unwrap();
    assert_eq!(code(&none), 5);
    let stderr = String::from_utf8(none.stderr).unwrap();
    assert!(
        stderr.starts_with(&format!("gorpctl: cannot reach gorpd at http://{closed}, http://{other}: ")),
        "{stderr}"
    );
}

#[tokio::test]
async fn the_admin_token_is_found_in_the_local_data_dir() {
    let home = tempfile::tempdir().unwrap();
    let data_dir = home.path().join(".local/share/gorp");
    let server = TestServer::start_in(&data_dir).await;
    let url = format!("http://{}", server.grpc_addr);
    let mut by_home = command(&url, None, &["session", "list"]);
    by_home.env("HOME", home.path());
    assert!(by_home.output().await.unwrap().status.success());
    let mut by_flag = command(&url, None, &["--data-dir", data_dir.to_str().unwrap(), "health"]);
    assert!(by_flag.output().await.unwrap().status.success());
    server.stop().await.unwrap();
}

/// The message the watch test publishes, from bob on slack:C7.
fn watched(message_id: String) -> pb::PublishRequest {
    pb::PublishRequest {
        channel: Some(pb::Channel { platform: "slack".into(), channel_id: "C7".into() }),
        message_id,
        sender_id: String::new(),
        sender_name: "bob".into(),
        text: "watch this".into(),
        attachments: Vec::new(),
        traceparent: String::new(),
    }
}

#[tokio::test]
async fn watch_prints_activity_from_other_clients() {
    let server = TestServer::start().await;
    let url = format!("http://{}", server.grpc_addr);
    let mut watcher = command(&url, Some(&server.admin_token), &["--json", "watch"]);
    let mut child = watcher.stdout(std::process::Stdio::piped()).spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut plain =
        command(&url, Some(&server.admin_token), &["watch"]).stdout(std::process::Stdio::piped()).spawn().unwrap();
    let mut plain_lines = BufReader::new(plain.stdout.take().unwrap()).lines();

    // Publish until the watchers are surely subscribed, as a gateway would.
    let mut bus = server.admin_bus();
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    let mut acks = bus.publish(tokio_stream::wrappers::ReceiverStream::new(rx)).await.unwrap().into_inner();
    let seen = tokio::time::timeout(Duration::from_secs(20), async {
        let mut i = 0;
        loop {
            i += 1;
            tx.send(watched(format!("w{i}"))).await.unwrap();
            acks.message().await.unwrap();
            // The first event seen may be the reply to a message published before the watcher was subscribed.
            while let Ok(Ok(Some(line))) = tokio::time::timeout(Duration::from_millis(300), lines.next_line()).await {
                if line.contains(r#""type":"message""#) {
                    return line;
                }
            }
        }
    })
    .await
    .expect("watch printed the message");
    let event: Value = serde_json::from_str(&seen).unwrap();
    assert_eq!(event["type"], "message");
    assert_eq!((event["sender"].as_str(), event["text"].as_str()), (Some("bob"), Some("watch this")));
    assert_eq!(event["channel"]["platform"], "slack");
    // The plain watcher may have subscribed later: publish until it prints a message too.
    let line = tokio::time::timeout(Duration::from_secs(20), async {
        let mut i = 0;
        loop {
            i += 1;
            tx.send(watched(format!("plain{i}"))).await.unwrap();
            acks.message().await.unwrap();
            while let Ok(Ok(Some(line))) =
                tokio::time::timeout(Duration::from_millis(300), plain_lines.next_line()).await
            {
                if line.contains("message ") {
                    return line;
                }
            }
        }
    })
    .await
    .expect("plain watch printed the message");
    assert!(line.contains("message   slack:C7 bob: watch this"), "{line}");
    child.kill().await.unwrap();
    plain.kill().await.unwrap();
}

#[tokio::test]
async fn completions_for_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let output = command("http://127.0.0.1:1", None, &["completions", shell]).output().await.unwrap();
        assert!(output.status.success());
        let script = String::from_utf8(output.stdout).unwrap();
        assert!(script.contains("gorpctl") && script.contains("broadcast"), "{shell}");
    }
}

/// The fleet script in the README, run as a user would run it.
#[tokio::test]
async fn the_readme_fleet_script_runs() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let start = readme.find("<!-- fleet-script:start -->").expect("README has the fleet script");
    let end = readme.find("<!-- fleet-script:end -->").unwrap();
    let block = &readme[start..end];
    let script: String = block
        .lines()
        .skip_while(|l| !l.starts_with("```"))
        .skip(1)
        .take_while(|l| !l.starts_with("```"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(script.contains("gorpctl session create"), "{script}");

    let server = TestServer::start().await;
    let bin_dir = std::path::Path::new(BIN).parent().unwrap();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let output = Command::new("bash")
        .args(["-c", &format!("set -euo pipefail\n{script}")])
        .env("PATH", path)
        .env("GORP_SERVER", format!("http://{}", server.grpc_addr))
        .env("GORP_TOKEN", &server.admin_token)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(120), output).await.unwrap().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "script failed:\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("worker-10"), "{stdout}");
    assert!(stdout.contains("assistant: echo: summarise your workspace in one line"), "{stdout}");
    let sessions = json(&server, &["session", "list"]).await;
    assert_eq!(sessions["sessions"].as_array().unwrap().len(), 10);
}

#[tokio::test]
async fn https_servers_are_reached_over_tls_with_a_given_ca() {
    let dir = tempfile::tempdir().unwrap();
    let (server, url) = tls_server(dir.path(), gorpd::testing::tls_certificates(dir.path()).0).await;
    let ca = dir.path().join("ca.pem");
    let mut trusted = command(&url, Some(&server.admin_token), &["--ca-cert", ca.to_str().unwrap(), "session", "list"]);
    let output = trusted.output().await.unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let untrusted = command(&url, Some(&server.admin_token), &["session", "list"]).output().await.unwrap();
    assert_eq!(code(&untrusted), 5, "an unknown CA is refused: {}", String::from_utf8_lossy(&untrusted.stderr));
    let mut plain = command(&format!("http://{}", server.grpc_addr), Some(&server.admin_token), &["session", "list"]);
    assert_ne!(code(&plain.output().await.unwrap()), 0);
}

/// gorpd serving gRPC over TLS with `tls`, and its https:// URL.
async fn tls_server(dir: &std::path::Path, tls: gorpd::config::TlsFiles) -> (TestServer, String) {
    let mut config = gorpd::testing::test_config(dir);
    config.tls = Some(tls);
    let backends = gorpd::agent_backends(&config);
    let server = TestServer::start_with(config, backends).await;
    let url = format!("https://localhost:{}", server.grpc_addr.port());
    (server, url)
}

#[tokio::test]
async fn doctor_warns_of_a_certificate_about_to_expire_and_fails_on_an_expired_one() {
    // The test CA's certificate for localhost is valid for one day: inside the 14-day warning.
    let dir = tempfile::tempdir().unwrap();
    let (server, url) = tls_server(dir.path(), gorpd::testing::tls_certificates(dir.path()).0).await;
    let ca = dir.path().join("ca.pem");
    let doctor = ["--ca-cert", ca.to_str().unwrap(), "--json", "doctor"];
    let output = command(&url, Some(&server.admin_token), &doctor).output().await.unwrap();
    assert_eq!(code(&output), 0, "only a warning: {}", String::from_utf8_lossy(&output.stderr));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(finding(&report, "gorpd", "serving")["status"], "ok");
    let soon =
        finding(&report, "tls", &format!("gorpd's certificate at {url} (CN=localhost) expires in less than a day"));
    assert_eq!(soon["status"], "warn");
    assert!(soon["fix"].as_str().unwrap().contains("renew it"), "{soon}");
    let text = command(&url, Some(&server.admin_token), &doctor[..2]).arg("doctor").output().await.unwrap();
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.contains("WARN tls       gorpd's certificate at"), "{text}");
    assert!(text.contains("               fix: renew it"), "{text}");
    server.stop().await.unwrap();

    // An expired certificate: the connection refuses it, and the doctor says why.
    let dir = tempfile::tempdir().unwrap();
    let (files, _) = gorpd::testing::expired_tls_certificate(dir.path());
    let (server, url) = tls_server(dir.path(), files).await;
    let old = dir.path().join("old.pem");
    let output = command(&url, Some(&server.admin_token), &["--ca-cert", old.to_str().unwrap(), "--json", "doctor"])
        .output()
        .await
        .unwrap();
    assert_eq!(code(&output), 5, "gorpd cannot be used: {}", String::from_utf8_lossy(&output.stderr));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["ok"], false);
    let expired = finding(&report, "tls", "(CN=localhost) expired on 2025-02-01 00:00 UTC: clients refuse it");
    assert_eq!(expired["status"], "fail");
    assert_eq!(finding(&report, "gorpd", "")["status"], "fail");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn schedules_hooks_and_session_documents() {
    let server = TestServer::start().await;
    ok(&server, &["session", "create", "ops"]).await;
    let added = json(
        &server,
        &["schedule", "add", "ops", "every weekday at 8:30", "Summarise", "the", "night", "--tz", "Europe/Berlin"],
    )
    .await;
    assert_eq!((added["cron"].as_str(), added["timezone"].as_str()), (Some("30 8 * * MON-FRI"), Some("Europe/Berlin")));
    assert_eq!(added["prompt"], "Summarise the night");
    let id = added["id"].as_i64().unwrap().to_string();
    let text = ok(&server, &["schedule", "add", "ops", "in 20 minutes", "one-off", "--catch-up", "skip"]).await;
    assert!(text.starts_with("added schedule 2 of ops: Once at"), "{text}");

    let table = ok(&server, &["schedule", "list", "ops"]).await;
    assert!(table.lines().next().unwrap().starts_with("ID  SESSION  WHEN"), "{table}");
    assert!(table.contains("every weekday at 8:30"), "{table}");
    let paused = json(&server, &["schedule", "pause", &id]).await;
    assert_eq!((paused["paused"].as_bool(), paused["next_slot"].as_str()), (Some(true), None));
    assert_eq!(json(&server, &["schedule", "resume", &id]).await["paused"], false);
    let fired = json(&server, &["schedule", "run", &id]).await;
    assert_eq!(fired["manual"], true);
    let runs = json(&server, &["schedule", "runs", &id]).await;
    assert_eq!(runs["runs"].as_array().unwrap().len(), 1);

    let bad = run(&server, &["schedule", "add", "ops", "every blue moon", "x"]).await;
    assert_eq!(code(&bad), 1);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("every blue moon"));
    assert_eq!(code(&run(&server, &["schedule", "pause", "999"]).await), 3, "unknown schedule: not found");

    let created = json(&server, &["hook", "create", "ops", "--per-minute", "5"]).await;
    assert!(created["secret"].as_str().unwrap().starts_with("gorp_"));
    assert_eq!(created["url_path"], "/hooks/ops");
    let listed = ok(&server, &["hook", "list"]).await;
    assert!(listed.contains("/hooks/ops") && !listed.contains(created["secret"].as_str().unwrap()), "{listed}");
    let rotated = ok(&server, &["hook", "rotate", "ops"]).await;
    assert!(rotated.contains("secret (shown once): gorp_"), "{rotated}");

    let yaml = ok(&server, &["session", "export", "ops"]).await;
    assert!(yaml.contains("when: every weekday at 8:30") && yaml.contains("per_minute: 5"), "{yaml}");
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &yaml).unwrap();
    ok(&server, &["session", "create", "copy"]).await;
    let imported = json(&server, &["session", "import", "copy", file.path().to_str().unwrap()]).await;
    assert_eq!(imported["schedules"].as_array().unwrap().len(), 2);
    assert!(imported["hook_secret"].as_str().unwrap().starts_with("gorp_"));
    assert_eq!(ok(&server, &["session", "export", "copy"]).await, yaml, "round trip");

    assert!(ok(&server, &["hook", "delete", "ops"]).await.contains("deleted the webhook of ops"));
    assert!(ok(&server, &["schedule", "delete", &id]).await.contains("deleted schedule"));
    server.stop().await.unwrap();
}

#[tokio::test]
async fn backup_downloads_a_verified_consistent_copy() {
    let server = TestServer::start().await;
    ok(&server, &["session", "create", "kept"]).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gorp.backup");
    std::fs::write(&file, b"an older backup").unwrap();
    let done = json(&server, &["backup", file.to_str().unwrap()]).await;
    let bytes = std::fs::read(&file).unwrap();
    assert_eq!(done["bytes"].as_u64(), Some(bytes.len() as u64));
    assert!(bytes.starts_with(b"SQLite format 3\0"), "a SQLite database replaced the old file");
    assert!(!dir.path().join("gorp.backup.partial").exists());
    let restored = tempfile::tempdir().unwrap();
    assert_eq!(gorpd::store::restore(&file, restored.path()).await.unwrap().sessions, 1);
    let nowhere = run(&server, &["backup", "/nonexistent-dir/x.db"]).await;
    assert_eq!(code(&nowhere), 1);
    assert!(String::from_utf8_lossy(&nowhere.stderr).contains("cannot write"));
    server.stop().await.unwrap();
}

#[tokio::test]
async fn session_prune_keeps_the_newest_entries() {
    let server = TestServer::start().await;
    ok(&server, &["session", "create", "s"]).await;
    for i in 0..3 {
        ok(&server, &["tell", "s", &format!("note {i}")]).await;
    }
    wait_for_history(&server, "s", 6).await;
    let pruned = json(&server, &["session", "prune", "s", "--keep", "2"]).await;
    assert_eq!(pruned, serde_json::json!({"session": "s", "removed": 4}));
    assert!(ok(&server, &["session", "prune", "s", "--older-than", "30d"]).await.contains("removed 0 history entries"));
    let bad = run(&server, &["session", "prune", "s", "--older-than", "soon"]).await;
    assert_eq!(code(&bad), 2);
    assert_eq!(code(&run(&server, &["session", "prune", "s", "--older-than", "3é"]).await), 2, "a multi-byte unit");
    assert_eq!(code(&run(&server, &["session", "prune", "s"]).await), 2, "a rule is required");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn info_shows_limits_and_the_database_size() {
    let server = TestServer::start().await;
    let info = json(&server, &["info"]).await;
    assert_eq!(info["max_body_bytes"], 65536);
    assert_eq!((info["read_default"].as_u64(), info["read_max"].as_u64()), (Some(10), Some(100)));
    assert_eq!(info["timezone"], "UTC");
    assert!(info["database_bytes"].as_u64().unwrap() > 0);
    assert_eq!(info["table_rows"]["messages"], 0);
    assert!(info["history_keep_days"].is_null() && info["max_database_bytes"].is_null());
    assert_eq!((info["dedup_window_days"].as_u64(), info["gateway_stale_days"].as_u64()), (Some(7), Some(7)));
    // Compaction runs at start.
    let compacted = eventually(|| {
        let server = &server;
        async move {
            let info = json(server, &["info"]).await;
            info["compacted_at"].is_string().then_some(info)
        }
    })
    .await;
    assert_eq!(compacted["stale_gateways"], serde_json::json!([]));
    assert_eq!((info["max_sender_bytes"].as_u64(), info["max_id_bytes"].as_u64()), (Some(256), Some(256)));
    assert_eq!(info["max_frame_bytes"], 4 * 1024 * 1024 + 1024 * 1024 + 64 * 1024);
    assert_eq!(
        (info["max_attachment_bytes"].as_u64(), info["max_message_attachment_bytes"].as_u64()),
        (Some(25 << 20), Some(100 << 20))
    );
    assert_eq!(
        (info["grpc_max_connections"].as_u64(), info["header_read_timeout_secs"].as_u64()),
        (Some(512), Some(10))
    );
    let text = ok(&server, &["info"]).await;
    assert!(text.contains("max message bytes") && text.contains("rows: messages"), "{text}");
    assert!(text.contains("compacted: other platforms") && text.contains("stale gateways"), "{text}");
    server.stop().await.unwrap();
}

/// The statuses of the doctor's findings for `check` whose message contains `text`.
fn finding<'a>(report: &'a Value, check: &str, text: &str) -> &'a Value {
    let checks = report["checks"].as_array().expect("checks");
    checks
        .iter()
        .find(|c| c["check"] == check && c["message"].as_str().unwrap().contains(text))
        .unwrap_or_else(|| panic!("no {check} finding with \"{text}\" in {report:#}"))
}

#[tokio::test]
async fn doctor_finds_a_stopped_gateway_a_missing_agent_and_an_unreachable_endpoint() {
    use gorpd::config::{AcpProfile, AgentProfile};
    // The scripted ACP agent of tests/acp-agent, built next to gorpctl by the workspace build.
    let test_agent = std::path::Path::new(BIN).with_file_name("gorp-test-agent");
    assert!(test_agent.exists(), "build the workspace first: {} is missing", test_agent.display());
    let server = TestServer::start_configured(|config| {
        config.agents.insert("test".into(), AgentProfile::Acp(AcpProfile::new(test_agent.to_str().unwrap())));
        config.agents.insert("missing".into(), AgentProfile::Acp(AcpProfile::new("gorp-no-such-agent")));
        let gone: AgentProfile =
            toml::from_str("kind = \"openai\"\nbase_url = \"http://127.0.0.1:1/v1\"\nmodel = \"m\"\ntimeout_secs = 5")
                .unwrap();
        config.agents.insert("gone".into(), gone);
    })
    .await;
    let gateway = gorpd::testing::clients::Subscriber::open_live(&mut server.admin_bus(), "telegram", "tg-main").await;
    drop(gateway);
    gorpd::testing::clients::wait_for_gateway(&server.control(), "tg-main", |g| !g.connected).await;

    let output = run(&server, &["--json", "doctor"]).await;
    assert_eq!(code(&output), 1, "problems found: {}", String::from_utf8_lossy(&output.stderr));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["ok"], false);
    assert_eq!(finding(&report, "gorpd", "serving")["status"], "ok");
    assert_eq!(finding(&report, "token", "admin token")["status"], "ok");
    let stopped = finding(&report, "gateway", "tg-main (telegram) is not connected");
    assert_eq!(stopped["status"], "fail");
    assert!(stopped["fix"].as_str().unwrap().contains("start gorp-telegram with --gateway-id tg-main"), "{stopped}");
    let missing = finding(&report, "agent", "missing: command \"gorp-no-such-agent\" not found on gorpd's PATH");
    assert_eq!(missing["status"], "fail");
    assert!(missing["fix"].as_str().unwrap().contains("[agents.missing]"), "{missing}");
    let gone = finding(&report, "agent", "gone: cannot reach http://127.0.0.1:1/v1");
    assert_eq!(gone["status"], "fail");
    assert_eq!(finding(&report, "agent", "test: ")["status"], "ok");
    assert!(finding(&report, "agent", "answers initialize as gorp-test-agent")["status"] == "ok");
    assert_eq!(finding(&report, "agent", "echo: built in")["status"], "ok");
    assert_eq!(finding(&report, "clock", "agrees")["status"], "ok");
    assert_eq!(finding(&report, "disk", "free on gorpd's disk")["status"], "ok");

    let text = run(&server, &["doctor"]).await;
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.contains("FAIL gateway   tg-main (telegram) is not connected"), "{text}");
    assert!(text.contains("               fix: start gorp-telegram"), "{text}");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn doctor_exits_0_on_a_healthy_deployment_4_on_a_bad_token_and_5_when_gorpd_is_away() {
    let server = TestServer::start().await;
    let healthy = ok(&server, &["doctor"]).await;
    assert!(healthy.lines().all(|line| line.starts_with("ok   ")), "{healthy}");
    assert!(healthy.contains("ok   agent     echo: built in"), "{healthy}");

    let url = format!("http://{}", server.grpc_addr);
    let bad = command(
        &url,
        Some("gorp_0000000000000000000000000000000000000000000000000000000000000000"),
        &["--json", "doctor"],
    )
    .output()
    .await
    .unwrap();
    assert_eq!(code(&bad), 4, "{}", String::from_utf8_lossy(&bad.stderr));
    let report: Value = serde_json::from_slice(&bad.stdout).unwrap();
    assert_eq!(finding(&report, "token", "refused the token")["status"], "fail");
    assert_eq!(report["checks"].as_array().unwrap().len(), 2, "nothing more is checked: {report:#}");

    let gateway_token = server.gateway_token("slack").await;
    let scoped = command(&url, Some(&gateway_token), &["doctor"]).output().await.unwrap();
    assert_eq!(code(&scoped), 4);
    assert!(String::from_utf8_lossy(&scoped.stdout).contains("a gateway token"), "{scoped:?}");
    server.stop().await.unwrap();

    let away = command("http://127.0.0.1:1", Some("x"), &["doctor"]).output().await.unwrap();
    assert_eq!(code(&away), 5);
    let text = String::from_utf8(away.stdout).unwrap();
    assert!(text.starts_with("FAIL gorpd     cannot reach gorpd at http://127.0.0.1:1"), "{text}");
    assert!(text.contains("fix: start gorpd, or point --server"), "{text}");
}

/// Answers every `GET /healthz` like a gateway's health address would: `status` with `body`,
/// and a `Date` header `skew` seconds off this machine's clock. A stand-in for a gateway on
/// another machine, whose clock the test cannot move.
async fn health_address(status: &'static str, body: &'static str, skew: i64) -> String {
    use tokio::io::AsyncWriteExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut request = Vec::new();
            let mut reader = BufReader::new(&mut stream);
            while reader.read_until(b'\n', &mut request).await.unwrap_or(0) > 2 && !request.ends_with(b"\r\n\r\n") {}
            let date = (chrono::Utc::now() + chrono::Duration::seconds(skew)).format("%a, %d %b %Y %H:%M:%S GMT");
            let reply = format!(
                "HTTP/1.1 {status}\r\ndate: {date}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(reply.as_bytes()).await;
        }
    });
    address
}

#[tokio::test]
async fn doctor_reads_each_gateways_health_address_and_compares_its_clock_with_gorpds() {
    let server = TestServer::start().await;
    let skewed = health_address("200 OK", r#"{"status":"ok","platform":"telegram"}"#, 30).await;
    let full = health_address("503 Service Unavailable", r#"{"status":"spool full","platform":"slack"}"#, 0).await;
    let gone = "http://127.0.0.1:1";
    let args = ["--json", "doctor", "--gateway-health", &skewed, "--gateway-health", &full, "--gateway-health", gone];
    let output = run(&server, &args).await;
    assert_eq!(code(&output), 1, "{}", String::from_utf8_lossy(&output.stderr));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(finding(&report, "gateway", &format!("telegram at {skewed}: ok"))["status"], "ok");
    let clock = finding(&report, "clock", &format!("the clock of telegram at {skewed} is about 30 s ahead of gorpd's"));
    assert_eq!(clock["status"], "warn");
    assert_eq!(finding(&report, "gateway", &format!("slack at {full}: spool full"))["status"], "fail");
    let unreachable = finding(&report, "gateway", "no answer from the gateway health address http://127.0.0.1:1");
    assert!(unreachable["fix"].as_str().unwrap().contains("--health-addr"), "{unreachable}");
    assert!(
        !report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["message"].as_str().unwrap().contains(&format!("slack at {full} is about"))),
        "a clock in step is not reported: {report:#}"
    );
    server.stop().await.unwrap();
}
