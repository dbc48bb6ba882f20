//! A real Synapse homeserver for one test: SQLite, 127.0.0.1 on a free
//! port, open registration, rate limits out of the way. Started from the
//! venv tests/run.sh installs (`GORP_SYNAPSE_VENV`, default
//! `~/.cache/gorp-synapse-venv`) in its own process group, which is killed
//! when the guard drops, also when the test panics.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Generous limits: tests send fast and register several users.
const RATE_LIMITS: &str = r#"
rc_message: {per_second: 1000, burst_count: 1000}
rc_registration: {per_second: 1000, burst_count: 1000}
rc_login:
  address: {per_second: 1000, burst_count: 1000}
  account: {per_second: 1000, burst_count: 1000}
  failed_attempts: {per_second: 1000, burst_count: 1000}
rc_joins:
  local: {per_second: 1000, burst_count: 1000}
  remote: {per_second: 1000, burst_count: 1000}
rc_joins_per_room: {per_second: 1000, burst_count: 1000}
rc_invites:
  per_room: {per_second: 1000, burst_count: 1000}
  per_user: {per_second: 1000, burst_count: 1000}
  per_issuer: {per_second: 1000, burst_count: 1000}
rc_key_requests: {per_second: 1000, burst_count: 1000}
rc_3pid_validation: {per_second: 1000, burst_count: 1000}
rc_admin_redaction: {per_second: 1000, burst_count: 1000}
"#;

/// A fixed signing key: this server never federates.
const SIGNING_KEY: &str = "ed25519 a_gorp hQdNws8bhjkyPmmJc1NGQdRSpkzGigfjv7twzXYWRNc\n";

/// The server name users live on.
pub(crate) const SERVER_NAME: &str = "localhost";

/// A running Synapse; killed with its process group on drop.
pub(crate) struct Synapse {
    child: Child,
    /// The client-server API base URL.
    pub(crate) url: String,
    dir: tempfile::TempDir,
}

fn venv() -> PathBuf {
    match std::env::var_os("GORP_SYNAPSE_VENV") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/gorp-synapse-venv"),
    }
}

/// A port nobody listens on right now (Synapse binds it itself).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Synapse {
    /// Starts Synapse and waits until its client API answers.
    pub(crate) async fn start() -> Self {
        let python = venv().join("bin/python");
        assert!(python.exists(), "{} is missing: run tests/run.sh once to install Synapse", python.display());
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let path = |name: &str| dir.path().join(name).display().to_string();
        std::fs::write(path("signing.key"), SIGNING_KEY).unwrap();
        let config = format!(
            "server_name: \"{SERVER_NAME}\"\npid_file: {pid}\nreport_stats: false\n\
             signing_key_path: {key}\nmedia_store_path: {media}\n\
             listeners:\n  - port: {port}\n    bind_addresses: ['127.0.0.1']\n    type: http\n    tls: false\n    x_forwarded: false\n    resources:\n      - names: [client]\n        compress: false\n\
             database:\n  name: sqlite3\n  args:\n    database: {db}\n\
             enable_registration: true\nenable_registration_without_verification: true\n\
             macaroon_secret_key: gorp-test-macaroon\nform_secret: gorp-test-form\n\
             trusted_key_servers: []\nsuppress_key_server_warning: true\n\
             presence:\n  enabled: false\n{RATE_LIMITS}",
            pid = path("homeserver.pid"),
            key = path("signing.key"),
            media = path("media"),
            db = path("homeserver.db"),
        );
        std::fs::write(path("homeserver.yaml"), config).unwrap();
        let log = std::fs::File::create(path("synapse.log")).unwrap();
        let child = Command::new(python)
            .args(["-m", "synapse.app.homeserver", "-c", &path("homeserver.yaml")])
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("start synapse");
        let synapse = Self { child, url: format!("http://127.0.0.1:{port}"), dir };
        synapse.wait_ready().await;
        synapse
    }

    async fn wait_ready(&self) {
        let client = matrix_sdk::reqwest::Client::new();
        let versions = format!("{}/_matrix/client/versions", self.url);
        for _ in 0..600 {
            if let Ok(response) = client.get(&versions).send().await
                && response.status().is_success()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("synapse did not start within 60 s; its log:\n{}", self.log());
    }

    /// Synapse's log so far (for failure messages).
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("synapse.log")).unwrap_or_default()
    }

    /// Registers `name` with `password`; returns the user id.
    pub(crate) async fn register(&self, name: &str, password: &str) -> String {
        let body = serde_json::json!({
            "username": name, "password": password, "inhibit_login": true, "auth": {"type": "m.login.dummy"},
        });
        let response = matrix_sdk::reqwest::Client::new()
            .post(format!("{}/_matrix/client/v3/register", self.url))
            .body(body.to_string())
            .header("content-type", "application/json")
            .send()
            .await
            .expect("register");
        let status = response.status();
        let text = response.text().await.unwrap();
        assert!(status.is_success(), "registering {name}: {status} {text}");
        format!("@{name}:{SERVER_NAME}")
    }
}

impl Drop for Synapse {
    fn drop(&mut self) {
        let group = rustix::process::Pid::from_child(&self.child);
        let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
        let _ = self.child.wait();
    }
}

use std::os::unix::process::CommandExt;
