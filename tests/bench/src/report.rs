//! Results: rows of (workload, metric, gorp, nats), problems, the machine;
//! printed as a table and written as JSON.
//!
//! Each workload fills a `Section` for one side; `Report::add` merges the
//! NATS side into the gorp rows with the same workload and metric, so the
//! two columns always describe the same measurement.

use serde::Serialize;
use std::fmt::Write as _;

/// Which column a section fills.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    /// gorpd.
    Gorp,
    /// NATS JetStream.
    Nats,
}

/// One measured value.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Row {
    /// Workload name (`serial`, `e2e`, ...).
    pub(crate) workload: String,
    /// What was measured.
    pub(crate) metric: String,
    /// Unit of both values.
    pub(crate) unit: String,
    /// gorpd's value.
    pub(crate) gorp: Option<f64>,
    /// NATS JetStream's value, for the workloads both run.
    pub(crate) nats: Option<f64>,
    /// gorp / NATS.
    pub(crate) ratio: Option<f64>,
}

/// The results of one workload on one side.
#[derive(Debug)]
pub(crate) struct Section {
    workload: String,
    side: Side,
    metrics: Vec<(String, String, Option<f64>)>,
    problems: Vec<String>,
    notes: Vec<String>,
}

impl Section {
    /// An empty section.
    pub(crate) fn new(workload: &str, side: Side) -> Self {
        Self { workload: workload.to_owned(), side, metrics: Vec::new(), problems: Vec::new(), notes: Vec::new() }
    }

    /// Records a metric; `None` when it could not be measured.
    pub(crate) fn metric(&mut self, metric: &str, unit: &str, value: impl Into<Option<f64>>) {
        self.metrics.push((metric.to_owned(), unit.to_owned(), value.into()));
    }

    /// Records something that went wrong (lost, duplicated, rejected, failed); the run fails.
    pub(crate) fn problem(&mut self, message: impl Into<String>) {
        self.problems.push(message.into());
    }

    /// Records something worth a look that does not fail the run.
    pub(crate) fn note(&mut self, message: impl Into<String>) {
        self.notes.push(message.into());
    }

    /// Records a problem when `count` is not zero.
    pub(crate) fn expect_zero(&mut self, count: usize, what: &str) {
        if count > 0 {
            self.problem(format!("{count} {what}"));
        }
    }
}

/// Where the numbers were measured.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Machine {
    /// CPU model from /proc/cpuinfo.
    pub(crate) cpu: String,
    /// Logical cores available to this process.
    pub(crate) cores: usize,
    /// Total memory in MiB.
    pub(crate) memory_mib: u64,
    /// Kernel release.
    pub(crate) kernel: String,
    /// When the run started, RFC 3339 (UTC).
    pub(crate) date: String,
}

impl Machine {
    /// Reads /proc for the machine description.
    pub(crate) fn describe() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find(|line| line.starts_with("model name"))
            .and_then(|line| line.split_once(':'))
            .map_or_else(|| "unknown".to_owned(), |(_, model)| model.trim().to_owned());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory_kib: u64 = meminfo
            .lines()
            .find(|line| line.starts_with("MemTotal:"))
            .and_then(|line| line.split_whitespace().nth(1))
            .and_then(|kib| kib.parse().ok())
            .unwrap_or(0);
        Self {
            cpu,
            cores: std::thread::available_parallelism().map_or(1, usize::from),
            memory_mib: memory_kib / 1024,
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim().to_owned(),
            date: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        }
    }
}

/// A problem (or a note) from one workload.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Problem {
    /// Workload name.
    pub(crate) workload: String,
    /// gorp or nats.
    pub(crate) side: &'static str,
    /// What went wrong.
    pub(crate) message: String,
}

/// Everything a run measured.
#[derive(Debug, Serialize)]
pub(crate) struct Report {
    /// Where it ran.
    pub(crate) machine: Machine,
    /// The settings of the run (sizes, rates, binaries).
    pub(crate) settings: serde_json::Value,
    /// Measured values.
    pub(crate) rows: Vec<Row>,
    /// What went wrong; the run fails when this is not empty.
    pub(crate) problems: Vec<Problem>,
    /// Things worth a look that do not fail the run.
    pub(crate) notes: Vec<Problem>,
}

/// The footer every table ends with: the two sides do not promise the same.
pub(crate) const DURABILITY_NOTE: &str = "durability: gorp acks after an fsync'd SQLite commit (synchronous=FULL); \
     NATS 2.9 JetStream acks after a write to the page cache without fsync";

impl Report {
    /// An empty report.
    pub(crate) fn new(machine: Machine, settings: serde_json::Value) -> Self {
        Self { machine, settings, rows: Vec::new(), problems: Vec::new(), notes: Vec::new() }
    }

    /// Adds a section: new rows for gorp, the `nats` column of matching rows for NATS.
    pub(crate) fn add(&mut self, section: Section) {
        let side_name = if section.side == Side::Gorp { "gorp" } else { "nats" };
        for message in section.problems {
            self.problems.push(Problem { workload: section.workload.clone(), side: side_name, message });
        }
        for message in section.notes {
            self.notes.push(Problem { workload: section.workload.clone(), side: side_name, message });
        }
        for (metric, unit, value) in section.metrics {
            let row = self.row(&section.workload, &metric, &unit);
            match section.side {
                Side::Gorp => row.gorp = value,
                Side::Nats => row.nats = value,
            }
            row.ratio = match (row.gorp, row.nats) {
                (Some(gorp), Some(nats)) if nats != 0.0 => Some(gorp / nats),
                _ => None,
            };
        }
    }

    /// Records a workload that failed as a whole.
    pub(crate) fn failed(&mut self, workload: &str, side: Side, error: &anyhow::Error) {
        let mut section = Section::new(workload, side);
        section.problem(format!("failed: {error:#}"));
        self.add(section);
    }

    fn row(&mut self, workload: &str, metric: &str, unit: &str) -> &mut Row {
        let position = self.rows.iter().position(|row| row.workload == workload && row.metric == metric);
        let index = position.unwrap_or_else(|| {
            self.rows.push(Row {
                workload: workload.to_owned(),
                metric: metric.to_owned(),
                unit: unit.to_owned(),
                gorp: None,
                nats: None,
                ratio: None,
            });
            self.rows.len() - 1
        });
        &mut self.rows[index]
    }

    /// The human-readable table with the machine, the footer and the problems.
    pub(crate) fn table(&self) -> String {
        let m = &self.machine;
        let mut out =
            format!("machine: {} ({} cores, {} MiB), Linux {}, {}\n\n", m.cpu, m.cores, m.memory_mib, m.kernel, m.date);
        let _ = writeln!(out, "{:<10} {:<46} {:>12} {:>12} {:>9}", "workload", "metric", "gorp", "nats", "gorp/nats");
        let _ = writeln!(out, "{}", "-".repeat(93));
        for row in &self.rows {
            let metric = format!("{} ({})", row.metric, row.unit);
            let gorp = format_value(row.gorp, &row.unit);
            let nats = format_value(row.nats, &row.unit);
            let ratio = row.ratio.map_or_else(|| "-".to_owned(), |r| format!("{r:.2}x"));
            let _ = writeln!(out, "{:<10} {:<46} {gorp:>12} {nats:>12} {ratio:>9}", row.workload, metric);
        }
        let _ = writeln!(out, "\n{DURABILITY_NOTE}");
        for note in &self.notes {
            let _ = writeln!(out, "note [{} {}]: {}", note.workload, note.side, note.message);
        }
        if self.problems.is_empty() {
            out.push_str("result: OK (nothing lost, duplicated or rejected)\n");
        } else {
            let _ = writeln!(out, "result: FAILED, {} problem(s):", self.problems.len());
            for problem in &self.problems {
                let _ = writeln!(out, "  [{} {}] {}", problem.workload, problem.side, problem.message);
            }
        }
        out
    }
}

/// Times with three significant-ish digits, sizes with one decimal, counts and rates whole.
fn format_value(value: Option<f64>, unit: &str) -> String {
    match value {
        None => "-".to_owned(),
        Some(v) if (unit == "ms" || unit == "s") && v < 1.0 => format!("{v:.3}"),
        Some(v) if (unit == "ms" || unit == "s") && v < 100.0 => format!("{v:.2}"),
        Some(v) if unit == "ms" || unit == "s" || unit == "MiB" => format!("{v:.1}"),
        Some(v) => format!("{v:.0}"),
    }
}
