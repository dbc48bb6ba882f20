//! A real gorpd process on a fixed port and data directory, so it can be
//! killed and started again where its clients expect it. Its whole process
//! group is killed when the test ends, also on panic.

use gorp_client::Client;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// gorpd, next to the test binary's folder (target/debug/gorpd).
fn binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let debug = exe.parent().and_then(Path::parent).unwrap();
    let binary = debug.join("gorpd");
    assert!(binary.is_file(), "{} is missing: run `cargo build --workspace` first", binary.display());
    binary
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A gorpd process; restartable on the same address and data.
pub(crate) struct Gorpd {
    child: Option<Child>,
    dir: tempfile::TempDir,
    port: u16,
}

impl Gorpd {
    pub(crate) fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("gorpd.toml"), "echo_chunk_delay_ms = 1\nread_max = 1000\n").unwrap();
        let mut gorpd = Self { child: None, dir, port: free_port() };
        gorpd.spawn();
        gorpd
    }

    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub(crate) fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// An admin client.
    pub(crate) async fn client(&self) -> Client {
        let token = std::fs::read_to_string(self.data_dir().join("admin.token")).unwrap();
        Client::builder(self.url()).token(token.trim()).connect().await.unwrap()
    }

    /// SIGKILL: no clean shutdown, like a crash or a power cut.
    pub(crate) fn kill(&mut self) {
        let mut child = self.child.take().expect("gorpd is running");
        let _ = Command::new("kill").args(["-s", "KILL", "--", &format!("-{}", child.id())]).status();
        child.wait().unwrap();
    }

    /// Starts gorpd again on the same port and data directory.
    pub(crate) fn restart(&mut self) {
        assert!(self.child.is_none(), "kill it first");
        self.spawn();
    }

    fn spawn(&mut self) {
        let mut command = Command::new(binary());
        command
            .arg("--config")
            .arg(self.dir.path().join("gorpd.toml"))
            .arg("--data-dir")
            .arg(self.data_dir())
            .args(["--grpc-addr", &format!("127.0.0.1:{}", self.port), "--http-addr", "127.0.0.1:0"])
            .env_clear()
            .env("GORP_LOG", "info")
            // tests/run.sh finds processes that outlive the suite by this variable.
            .envs(std::env::var_os("GORP_TEST_RUN").map(|run| ("GORP_TEST_RUN", run)))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = command.spawn().unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        self.child = Some(child);
        // The port was just freed by the killed process: a bind may need a moment.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let line = lines.next().expect("gorpd logs until it serves").unwrap();
            if line.contains("gorpd is serving") {
                // Keep draining the log so gorpd never writes into a closed pipe.
                std::thread::spawn(move || lines.for_each(drop));
                return;
            }
            assert!(std::time::Instant::now() < deadline, "gorpd did not serve in time");
        }
    }
}

impl Drop for Gorpd {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").args(["-s", "KILL", "--", &format!("-{}", child.id())]).status();
            let _ = child.wait();
        }
    }
}
