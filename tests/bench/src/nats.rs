//! The NATS JetStream side of workloads 1-3, and a throwaway nats-server.
//!
//! Each workload gets its own file-storage stream (`GORPBENCH_<WORKLOAD>`,
//! subjects `gorpbench.<workload>.c<i>`, mirroring gorp's channels), deleted
//! afterwards. Messages carry a `Nats-Msg-Id` so JetStream de-duplicates them
//! like gorp does, and each stream publishes on its own connection with the
//! same window as gorp, awaiting the ack futures in order.

use crate::process::{ChildGuard, free_port};
use crate::report::{Section, Side};
use crate::workloads::publish::{self, Ack, AckedPublisher, Limit};
use crate::workloads::{Plan, Workload, text};
use anyhow::{Context, Result};
use async_nats::jetstream::{self, context::PublishAckFuture, message::PublishMessage, stream};
use std::collections::VecDeque;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Longest wait for a started nats-server to accept connections.
const START_LIMIT: Duration = Duration::from_secs(30);

/// A nats-server with JetStream on a temporary store, killed when dropped.
#[derive(Debug)]
pub(crate) struct NatsServer {
    /// `nats://127.0.0.1:<port>`.
    pub(crate) url: String,
    _process: ChildGuard,
    _dir: tempfile::TempDir,
}

impl NatsServer {
    /// Starts `binary -js -sd <tmp> -p <free port> -a 127.0.0.1` and waits until it accepts connections.
    pub(crate) async fn start(binary: &Path) -> Result<Self> {
        let dir = tempfile::Builder::new().prefix("gorp-bench-nats-").tempdir()?;
        let port = free_port()?;
        let mut command = Command::new(binary);
        command.arg("-js").arg("-sd").arg(dir.path().join("store")).args(["-p", &port.to_string(), "-a", "127.0.0.1"]);
        let mut process = ChildGuard::spawn("nats-server", command, &dir.path().join("nats-server.log"))?;
        let url = format!("nats://127.0.0.1:{port}");
        let deadline = Instant::now() + START_LIMIT;
        loop {
            if let Err(error) = process.check_alive() {
                return Err(process.with_log(error));
            }
            let error = match jetstream_ready(&url).await {
                Ok(()) => return Ok(Self { url, _process: process, _dir: dir }),
                Err(error) => error,
            };
            if Instant::now() > deadline {
                return Err(process.with_log(error.context("nats-server did not accept connections")));
            }
            // Refused connections come back at once; a short pause keeps this from spinning.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// nats-server starts JetStream before it listens, so a connection means JetStream is up.
/// (async-nats 0.51 cannot parse 2.9's account info, so that is no probe.)
async fn jetstream_ready(url: &str) -> Result<()> {
    connect(url).await.map(drop)
}

async fn connect(url: &str) -> Result<async_nats::Client> {
    let options = async_nats::ConnectOptions::new().connection_timeout(Duration::from_secs(5));
    options.connect(url).await.with_context(|| format!("cannot connect to NATS at {url}"))
}

/// The server's version, as it announces itself.
pub(crate) async fn server_version(url: &str) -> Result<String> {
    Ok(connect(url).await?.server_info().version)
}

/// Runs workload 1, 2 or 3 against JetStream at `url`.
pub(crate) async fn workload(plan: &Plan, url: &str, workload: Workload) -> Result<Section> {
    let (streams, window, total) = publish::shape(plan, workload);
    let name = format!("GORPBENCH_{}", workload.name().to_uppercase());
    let root = format!("gorpbench.{}", workload.name());
    let admin = jetstream::new(connect(url).await?);
    // A leftover stream from an interrupted run would make every id a duplicate.
    let _ = admin.delete_stream(&name).await;
    let config = stream::Config {
        name: name.clone(),
        subjects: vec![format!("{root}.>")],
        storage: stream::StorageType::File,
        ..Default::default()
    };
    admin.create_stream(config).await.with_context(|| format!("cannot create stream {name}"))?;
    let subjects: Arc<[String]> = (0..plan.sessions.max(1)).map(|i| format!("{root}.c{i}")).collect();
    let payload = Arc::new(text("bench", plan.size));
    let prefix = format!("{}-{}", plan.run_id, workload.name());
    let open = |stream| {
        let (subjects, payload, prefix) = (subjects.clone(), payload.clone(), prefix.clone());
        async move {
            let js = jetstream::new(connect(url).await?);
            Ok(NatsPublisher { js, in_flight: VecDeque::new(), stream, streams, subjects, payload, prefix })
        }
    };
    let outcome = publish::run_streams(streams, || Limit::for_stream(plan, total, streams), window, open).await;
    let _ = admin.delete_stream(&name).await;
    let (run, elapsed) = outcome?;
    Ok(run.section(workload, Side::Nats, elapsed))
}

/// One publisher on its own NATS connection.
struct NatsPublisher {
    js: jetstream::Context,
    in_flight: VecDeque<PublishAckFuture>,
    stream: usize,
    streams: usize,
    subjects: Arc<[String]>,
    payload: Arc<String>,
    prefix: String,
}

impl AckedPublisher for NatsPublisher {
    async fn send(&mut self, index: u64) -> Result<()> {
        let global = index as usize * self.streams + self.stream;
        let subject = self.subjects[global % self.subjects.len()].clone();
        let message = PublishMessage::build()
            .payload(self.payload.as_str().to_owned().into())
            .message_id(format!("{}-{}.{index}", self.prefix, self.stream));
        let ack = self.js.send_publish(subject, message).await.context("JetStream publish")?;
        self.in_flight.push_back(ack);
        Ok(())
    }

    async fn ack(&mut self) -> Result<Ack> {
        let future = self.in_flight.pop_front().context("an ack for nothing in flight")?;
        match future.await {
            Ok(ack) if ack.duplicate => Ok(Ack::Duplicate),
            Ok(_) => Ok(Ack::Accepted),
            Err(error) => Ok(Ack::Rejected(error.to_string())),
        }
    }
}
