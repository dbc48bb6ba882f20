//! The Python example in `examples/python`, a use of the gorp_client package
//! (clients/python), run against a real gorpd.

use gorp_proto::v1 as pb;
use gorpd::testing::TestServer;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The interpreter with the gorp_client package: `GORP_PYTHON` (set by tests/run.sh), else the
/// venv tests/run.sh makes, else `python3`.
fn python() -> String {
    let venv = std::env::var("HOME").map(|home| format!("{home}/.cache/gorp-venv/bin/python")).ok();
    let python = std::env::var("GORP_PYTHON")
        .ok()
        .or(venv.filter(|p| Path::new(p).exists()))
        .unwrap_or_else(|| "python3".to_owned());
    let check = std::process::Command::new(&python).args(["-c", "import gorp_client"]).output();
    match check {
        Ok(output) if output.status.success() => python,
        _ => panic!(
            "{python} cannot import gorp_client: run `bash tests/run.sh` (it makes a venv), \
             or `pip install ./clients/python` and set GORP_PYTHON"
        ),
    }
}

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/python/hello.py")
}

#[tokio::test]
async fn the_python_client_creates_binds_publishes_and_gets_the_streamed_reply() {
    let server = TestServer::start().await;
    let mut command = tokio::process::Command::new(python());
    command
        .arg(example())
        .args(["--server", &format!("http://{}", server.grpc_addr), "--token", &server.admin_token])
        .args(["--session", "py", "--platform", "pyclient", "--channel", "room-9", "--text", "hi from python"])
        .kill_on_drop(true);
    let output =
        tokio::time::timeout(Duration::from_secs(120), command.output()).await.expect("client finished").unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "client failed:\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("created session py (backend echo"), "{stdout}");
    assert!(stdout.contains("bound pyclient:room-9 to py"), "{stdout}");
    assert!(stdout.contains(": accepted"), "{stdout}");
    assert!(stdout.matches("chunk: ").count() >= 3, "the reply was streamed: {stdout}");
    assert!(stdout.contains("final #") && stdout.contains("from py: echo: hi from python"), "{stdout}");

    // gorpd saw it all: the binding, the history, and the client's acknowledgement.
    let mut control = server.control();
    let session = control.get_session(pb::GetSessionRequest { name: "py".into() }).await.unwrap().into_inner();
    assert_eq!(session.channels, vec![pb::Channel { platform: "pyclient".into(), channel_id: "room-9".into() }]);
    assert_eq!(session.message_count, 2);
    let gateways = control.list_gateways(pb::ListGatewaysRequest {}).await.unwrap().into_inner().gateways;
    let python = gateways.iter().find(|g| g.gateway_id == "python-client").expect("the client subscribed");
    assert_eq!(python.pending, 0, "the final response was acknowledged");
    server.stop().await.unwrap();
}
