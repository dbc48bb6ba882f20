//! `gorp-bench`: benchmarks a real gorpd process through its public gRPC API
//! (the generated `gorp.v1` clients only), side by side with NATS JetStream.
//!
//! # Method
//!
//! Every workload starts its own gorpd (`--gorpd`, default: the `gorpd`
//! next to this binary) on a fresh temporary data directory, with free
//! loopback ports and an echo agent that answers without pauses, waits for
//! `grpc.health.v1` to answer SERVING, and kills it afterwards (also on
//! errors and panics). Clients use TCP_NODELAY and gateway tokens.
//!
//! 1. `serial`: one Publish stream, one message at a time: msg/s, ack latency.
//! 2. `pipelined`: one stream, at most `--window` messages unacknowledged.
//! 3. `streams`: `--streams` such streams at once, each on its own connection.
//!    In 1-3 every message goes to a channel bound to one of `--sessions`
//!    echo sessions, so it is a real turn for an agent too.
//! 4. `e2e`: publish to final delivery at a fixed offered rate (`--rate` for
//!    `--duration` s) over `--platforms` platforms with one acking subscriber
//!    each; latency runs from the time a message was due (open loop), so a
//!    late publisher or a queue in gorpd cannot hide. Missing, duplicated and
//!    late answers (after `--grace`) are reported.
//! 5. `replay`: time for a new gateway (cursor 0) to receive a backlog of
//!    `--replay-count` responses and the CaughtUp marker.
//! 6. `restart`: `--restart-sessions` sessions and `--restart-bindings`
//!    bindings, SIGTERM, start again: time from spawn to SERVING, RSS.
//! 7. `memory`: RSS of the idle gorpd before and after creating the sessions.
//!
//! With `--compare-nats URL` or `--start-nats PATH` workloads 1-3 also run
//! against NATS JetStream (file storage, the same sizes, window and message
//! ids) and the table shows both sides and gorp/NATS. The two do not promise
//! the same durability: gorp acks after an fsync'd commit, NATS 2.9 after a
//! write to the page cache.
//!
//! # Usage
//!
//! ```sh
//! cargo build --release -p gorpd -p gorp-bench
//! target/release/gorp-bench --start-nats /usr/sbin/nats-server --json bench.json
//! target/release/gorp-bench --short            # every code path in well under a minute
//! target/release/gorp-bench --only serial,e2e --rate 500
//! ```
//!
//! The table goes to stdout, progress to stderr. The exit code is 1 when any
//! message was lost, duplicated, rejected or late, or a server failed.

mod client;
mod gorpd;
mod nats;
mod process;
mod report;
mod stats;
mod workloads;

use anyhow::{Context, Result, ensure};
use clap::Parser;
use report::{Machine, Report, Section, Side};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;
use workloads::{Plan, Workload};

/// Command-line flags.
#[derive(Debug, Parser)]
#[command(name = "gorp-bench", version, about = "Benchmarks gorpd through its gRPC API, optionally against NATS")]
struct Args {
    /// The gorpd binary [default: `gorpd` next to this executable].
    #[arg(long, value_name = "PATH")]
    gorpd: Option<PathBuf>,
    /// Run only these workloads (comma-separated) [default: all].
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<Workload>,
    /// Message text size in bytes.
    #[arg(long, default_value_t = 256)]
    size: usize,
    /// Messages for serial, pipelined and (in total) streams.
    #[arg(long, default_value_t = 20_000)]
    messages: usize,
    /// Run serial, pipelined and streams for this many seconds each instead of --messages.
    #[arg(long)]
    seconds: Option<f64>,
    /// Unacknowledged messages per stream in pipelined and streams.
    #[arg(long, default_value_t = 256)]
    window: usize,
    /// Concurrent Publish streams in streams.
    #[arg(long, default_value_t = 4)]
    streams: usize,
    /// Echo sessions the messages are spread over (serial to replay).
    #[arg(long, default_value_t = 100)]
    sessions: usize,
    /// Offered rate of e2e in messages per second.
    #[arg(long, default_value_t = 1000.0)]
    rate: f64,
    /// Length of e2e's load in seconds.
    #[arg(long, default_value_t = 30.0)]
    duration: f64,
    /// Platforms in e2e, each with its own subscriber.
    #[arg(long, default_value_t = 3)]
    platforms: usize,
    /// Seconds e2e waits for outstanding answers after the load.
    #[arg(long, default_value_t = 15.0)]
    grace: f64,
    /// Responses in replay's backlog.
    #[arg(long, default_value_t = 20_000)]
    replay_count: usize,
    /// Sessions for restart and memory.
    #[arg(long, default_value_t = 10_000)]
    restart_sessions: usize,
    /// Bindings for restart, spread over its sessions.
    #[arg(long, default_value_t = 100_000)]
    restart_bindings: usize,
    /// Control calls in flight during setup.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Compare with the NATS server at this URL (e.g. nats://127.0.0.1:4222).
    #[arg(long, value_name = "URL", conflicts_with = "start_nats")]
    compare_nats: Option<String>,
    /// Start this nats-server binary (with JetStream on a temporary store) and compare with it.
    #[arg(long, value_name = "PATH")]
    start_nats: Option<PathBuf>,
    /// A line added to the benchmarked gorpd's config file, e.g. `retention_every_secs = 30` (repeatable).
    #[arg(long = "gorpd-setting", value_name = "TOML")]
    gorpd_settings: Vec<String>,
    /// Put gorpd's store on this Postgres server (`postgres://user@host:port`): every gorpd
    /// started gets a fresh database of its own there [default: SQLite in its data directory].
    #[arg(long, value_name = "URL")]
    postgres: Option<String>,
    /// Small sizes for CI: every code path, well under a minute, no speed thresholds.
    #[arg(long)]
    short: bool,
    /// Also write the results as JSON to this file.
    #[arg(long, value_name = "PATH")]
    json: Option<PathBuf>,
}

impl Args {
    /// The sizes of this run; `--short` replaces the size flags.
    fn plan(&self) -> Result<Plan> {
        ensure!(
            self.size > 0 && self.window > 0 && self.streams > 0,
            "--size, --window and --streams must be positive"
        );
        ensure!(self.sessions > 0 && self.platforms > 0, "--sessions and --platforms must be positive");
        ensure!(self.rate > 0.0 && self.duration > 0.0 && self.grace >= 0.0, "--rate and --duration must be positive");
        ensure!(self.restart_sessions > 0, "--restart-sessions must be positive");
        let mut plan = Plan {
            gorpd: self.gorpd.clone().unwrap_or_else(gorpd::default_binary),
            gorpd_settings: self.gorpd_settings.clone(),
            postgres: self.postgres.clone(),
            run_id: run_id(),
            size: self.size,
            serial_messages: self.messages,
            messages: self.messages,
            seconds: self.seconds,
            window: self.window,
            streams: self.streams,
            sessions: self.sessions,
            rate: self.rate,
            duration: self.duration,
            platforms: self.platforms,
            grace_secs: self.grace,
            replay_count: self.replay_count,
            restart_sessions: self.restart_sessions,
            restart_bindings: self.restart_bindings,
            setup_concurrency: self.concurrency,
        };
        if self.short {
            plan.serial_messages = 200;
            plan.messages = 2_000;
            plan.seconds = None;
            plan.rate = 200.0;
            plan.duration = 2.0;
            plan.sessions = 10;
            plan.replay_count = 500;
            plan.restart_sessions = 200;
            plan.restart_bindings = 2_000;
        }
        ensure!(plan.gorpd.exists(), "no gorpd at {} (use --gorpd PATH)", plan.gorpd.display());
        Ok(plan)
    }

    fn workloads(&self) -> Vec<Workload> {
        if self.only.is_empty() { Workload::ALL.to_vec() } else { self.only.clone() }
    }
}

/// Unique per run: the start time in microseconds, in hex.
fn run_id() -> String {
    let micros = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_micros();
    format!("r{micros:x}")
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    // Returning from here drops every server guard, which kills the servers.
    let outcome = tokio::select! {
        outcome = run(&args) => outcome,
        signal = interrupted() => Err(anyhow::anyhow!("interrupted by {signal}")),
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("gorp-bench: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Waits for SIGINT or SIGTERM (as sent by Ctrl-C or `timeout`) and names it.
async fn interrupted() -> &'static str {
    let Ok(mut terminate) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "SIGINT",
        _ = terminate.recv() => "SIGTERM",
    }
}

/// Runs the selected workloads, prints the table; `Ok(false)` when there were problems.
async fn run(args: &Args) -> Result<bool> {
    let plan = args.plan()?;
    let machine = Machine::describe();
    let started_nats = match &args.start_nats {
        Some(binary) => Some(nats::NatsServer::start(binary).await.context("cannot start nats-server")?),
        None => None,
    };
    let nats_url = started_nats.as_ref().map(|server| server.url.clone()).or_else(|| args.compare_nats.clone());
    let nats_version = match &nats_url {
        Some(url) => Some(nats::server_version(url).await?),
        None => None,
    };
    let workloads = args.workloads();
    let settings = serde_json::json!({
        "plan": plan,
        "short": args.short,
        "workloads": workloads.iter().map(|w| w.name()).collect::<Vec<_>>(),
        "nats_url": nats_url,
        "nats_version": nats_version,
    });
    let mut report = Report::new(machine, settings);
    for workload in &workloads {
        run_workload(&plan, *workload, &workloads, nats_url.as_deref(), &mut report).await;
    }
    print!("{}", report.table());
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, json + "\n").with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(report.problems.is_empty())
}

/// Runs one workload on gorp (and on NATS for 1-3) and adds the results to `report`.
async fn run_workload(plan: &Plan, workload: Workload, all: &[Workload], nats: Option<&str>, report: &mut Report) {
    let name = workload.name();
    let gorp: Result<Vec<Section>> = match workload {
        Workload::Serial | Workload::Pipelined | Workload::Streams => {
            timed(name, "gorp", workloads::publish::gorp(plan, workload)).await.map(|s| vec![s])
        }
        Workload::E2e => timed(name, "gorp", workloads::e2e::gorp(plan)).await.map(|s| vec![s]),
        Workload::Replay => timed(name, "gorp", workloads::replay::gorp(plan)).await.map(|s| vec![s]),
        // Both share one gorpd; whichever comes first in the list runs both.
        Workload::Restart | Workload::Memory => {
            let first = all.iter().find(|w| matches!(w, Workload::Restart | Workload::Memory));
            if first != Some(&workload) {
                return;
            }
            let (restart, memory) = (all.contains(&Workload::Restart), all.contains(&Workload::Memory));
            timed(name, "gorp", workloads::restart::gorp(plan, restart, memory)).await
        }
    };
    match gorp {
        Ok(sections) => sections.into_iter().for_each(|section| report.add(section)),
        Err(error) => report.failed(name, Side::Gorp, &error),
    }
    let Some(url) = nats else { return };
    if matches!(workload, Workload::Serial | Workload::Pipelined | Workload::Streams) {
        match timed(name, "nats", nats::workload(plan, url, workload)).await {
            Ok(section) => report.add(section),
            Err(error) => report.failed(name, Side::Nats, &error),
        }
    }
}

/// Awaits `work`, logging its start and duration to stderr.
async fn timed<T>(workload: &str, side: &str, work: impl Future<Output = Result<T>>) -> Result<T> {
    eprintln!("gorp-bench: {workload} on {side} ...");
    let started = Instant::now();
    let outcome = work.await;
    let verdict = if outcome.is_ok() { "done" } else { "failed" };
    eprintln!("gorp-bench: {workload} on {side} {verdict} in {:.1} s", started.elapsed().as_secs_f64());
    outcome
}
