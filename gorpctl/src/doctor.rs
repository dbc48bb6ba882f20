//! `gorpctl doctor`: checks a running deployment from the outside and says
//! what is wrong, in words, with the fix.
//!
//! The checks run in order, each on what the one before established: gorpd
//! reachable and serving, the token accepted and its scope, gorpd's clock
//! against this machine's, every gateway connected and how far behind, every
//! agent profile usable (gorpd starts each ACP agent and asks `initialize`,
//! and asks each OpenAI-compatible endpoint), the disk and the database, and
//! each gateway health address given (its `/healthz` and its clock).
//! Over https the certificates gorpd presents are read too (also when the
//! connection refuses them), and with the token those gorpd says it serves
//! from its tls_cert (behind a TLS proxy the two differ): expired is a
//! problem, expiring within [`CERT_WARN_DAYS`] days a warning.
//! When gorpd cannot be reached or refuses the token, the later checks are
//! skipped. The exit code is gorpctl's: 5 unreachable, 4 token refused, 1
//! any other problem, 0 when only warnings (or nothing) were found.

use crate::certs::Presented;
use crate::cli::Cli;
use crate::connect;
use crate::error::CliError;
use gorp_proto::v1 as pb;
use serde_json::json;

/// Clock differences beyond this are reported.
const MAX_CLOCK_SKEW_SECS: f64 = 2.0;
/// Free disk below this is a warning, and below a tenth of it a problem.
const LOW_DISK_BYTES: u64 = 1 << 30;
/// A connected gateway this many answers behind is reported.
const LAGGING_ANSWERS: u64 = 100;
/// A certificate that expires within this many days is a warning.
const CERT_WARN_DAYS: u64 = 14;
/// What to do about a certificate that expired or soon will.
const RENEW: &str = "renew it (your CA, `certbot renew`, ...), put the new files where gorpd's tls_cert and \
                     tls_key point and restart gorpd";

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Ok,
    Warn,
    Fail,
}

impl Level {
    fn name(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Warn => "warn",
            Self::Fail => "fail",
        }
    }

    fn mark(self) -> &'static str {
        match self {
            Self::Ok => "ok  ",
            Self::Warn => "WARN",
            Self::Fail => "FAIL",
        }
    }
}

/// One finding: which check, how it went, and what to do.
#[derive(Debug)]
struct Finding {
    check: &'static str,
    level: Level,
    message: String,
    fix: Option<String>,
}

/// Everything found, in check order.
#[derive(Debug, Default)]
struct Report {
    findings: Vec<Finding>,
    /// The error that stopped the checks early (its exit code wins).
    stopped: Option<CliError>,
}

impl Report {
    fn ok(&mut self, check: &'static str, message: String) {
        self.findings.push(Finding { check, level: Level::Ok, message, fix: None });
    }

    fn warn(&mut self, check: &'static str, message: String, fix: impl Into<String>) {
        self.findings.push(Finding { check, level: Level::Warn, message, fix: Some(fix.into()) });
    }

    fn fail(&mut self, check: &'static str, message: String, fix: impl Into<String>) {
        self.findings.push(Finding { check, level: Level::Fail, message, fix: Some(fix.into()) });
    }

    /// Records a problem that leaves nothing else to check.
    fn stop(&mut self, check: &'static str, error: CliError, fix: &str) {
        self.fail(check, error.to_string(), fix);
        self.stopped = Some(error);
    }

    fn print(&self, json_output: bool) {
        if json_output {
            let checks: Vec<_> = self
                .findings
                .iter()
                .map(|f| json!({ "check": f.check, "status": f.level.name(), "message": f.message, "fix": f.fix }))
                .collect();
            let ok = !self.findings.iter().any(|f| f.level == Level::Fail);
            crate::output::print_json(&json!({ "ok": ok, "checks": checks }));
            return;
        }
        for finding in &self.findings {
            println!("{} {:<9} {}", finding.level.mark(), finding.check, finding.message);
            if let Some(fix) = &finding.fix {
                println!("               fix: {fix}");
            }
        }
    }

    /// The outcome as gorpctl's exit code.
    fn outcome(self) -> Result<(), CliError> {
        if let Some(error) = self.stopped {
            return Err(error);
        }
        let problems = self.findings.iter().filter(|f| f.level == Level::Fail).count();
        match problems {
            0 => Ok(()),
            n => Err(CliError::Failed(format!("doctor found {n} problem(s)"))),
        }
    }
}

/// `gorpctl doctor`, with the gateways' health addresses to check.
pub(crate) async fn run(cli: &Cli, gateway_health: &[String]) -> Result<(), CliError> {
    let mut report = Report::default();
    check_all(cli, gateway_health, &mut report).await;
    report.print(cli.json);
    report.outcome()
}

async fn check_all(cli: &Cli, gateway_health: &[String], report: &mut Report) {
    let serving = check_serving(cli, report).await;
    // Also when gorpd was not reached: an expired certificate is a reason why.
    let presented = check_certificates(cli, report).await;
    if !serving {
        return;
    }
    let Some((mut control, info)) = check_token(cli, report).await else { return };
    check_served_certificates(&info, &presented, report);
    let gorpd_skew = check_clock(&info, report);
    check_gateways(cli, &mut control, report).await;
    for url in gateway_health {
        check_gateway_health(url, gorpd_skew, report).await;
    }
    check_agents(&mut control, report).await;
    check_storage(&info, report);
    check_replicas(&info, report);
}

async fn check_serving(cli: &Cli, report: &mut Report) -> bool {
    use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient};
    let start = "start gorpd, or point --server (GORP_SERVER) at its gRPC address";
    let channel = match connect::channel(cli).await {
        Ok(channel) => channel,
        Err(error) => {
            report.stop("gorpd", error, start);
            return false;
        }
    };
    let request = HealthCheckRequest { service: "gorp.v1.Control".into() };
    match HealthClient::new(channel).check(request).await {
        Ok(answer) if answer.get_ref().status == ServingStatus::Serving as i32 => {
            report.ok("gorpd", format!("serving at {}", cli.server));
            true
        }
        Ok(_) => {
            let error = CliError::Failed(format!("gorpd at {} answers but is not serving", cli.server));
            report.stop("gorpd", error, "gorpd is starting or stopping; look at its log");
            false
        }
        Err(status) => {
            report.stop("gorpd", CliError::from_status(status, &cli.server), start);
            false
        }
    }
}

/// The expiry of every certificate each https:// gorpd presents; returns them.
async fn check_certificates(cli: &Cli, report: &mut Report) -> Vec<Presented> {
    let mut presented = Vec::new();
    for url in cli.server.split(',').map(str::trim).filter(|url| url.starts_with("https://")) {
        match crate::certs::presented(url).await {
            Ok(chain) => {
                for (position, certificate) in chain.iter().enumerate() {
                    let whose = match position {
                        0 => format!("gorpd's certificate at {url} ({})", certificate.subject),
                        _ => format!("the certificate {} in gorpd's chain", certificate.subject),
                    };
                    check_expiry(&whose, position == 0, certificate.not_after, report);
                }
                presented.extend(chain);
            }
            // Not reached: the gorpd check says so.
            Err(reason) => report.warn("tls", format!("cannot read the certificate: {reason}"), "see the gorpd check"),
        }
    }
    presented
}

/// The expiry of the certificates gorpd serves from its tls_cert file, as it
/// reports them, unless they were presented here already (behind a TLS
/// proxy, or reached over http:// on its own machine, they were not).
fn check_served_certificates(info: &pb::ServerInfo, presented: &[Presented], report: &mut Report) {
    for (position, served) in info.tls_certificates.iter().enumerate() {
        let Ok(not_after) = chrono::DateTime::parse_from_rfc3339(&served.not_after) else { continue };
        let not_after = std::time::SystemTime::from(not_after);
        if presented.iter().any(|p| p.subject == served.subject && p.not_after == not_after) {
            continue;
        }
        let whose = format!("the certificate {} in gorpd's tls_cert", served.subject);
        check_expiry(&whose, position == 0, not_after, report);
    }
}

/// One certificate's finding: expired is a problem, expiring within
/// [`CERT_WARN_DAYS`] a warning; a fine one is reported only if `report_fine`.
fn check_expiry(whose: &str, report_fine: bool, not_after: std::time::SystemTime, report: &mut Report) {
    let until = chrono::DateTime::<chrono::Utc>::from(not_after).format("%Y-%m-%d %H:%M UTC");
    match not_after.duration_since(std::time::SystemTime::now()) {
        Err(_) => report.fail("tls", format!("{whose} expired on {until}: clients refuse it"), RENEW),
        Ok(left) if left.as_secs() < CERT_WARN_DAYS * 86_400 => {
            let days = left.as_secs() / 86_400;
            let within = if days == 0 { "less than a day".to_owned() } else { format!("{days} day(s)") };
            report.warn("tls", format!("{whose} expires in {within}, on {until}"), RENEW);
        }
        Ok(left) if report_fine => {
            report.ok("tls", format!("{whose} is valid until {until} ({} days)", left.as_secs() / 86_400))
        }
        Ok(_) => {}
    }
}

/// The token's check; `None` when nothing more can be checked with it.
async fn check_token(cli: &Cli, report: &mut Report) -> Option<(connect::Control, pb::ServerInfo)> {
    let fix = "use an admin token: --token or GORP_TOKEN (make one on the gorpd machine with \
               `gorpctl token create NAME`; the first is in <data-dir>/admin.token)";
    let mut control = match connect::control(cli).await {
        Ok(control) => control,
        Err(error) => {
            report.stop("token", error, fix);
            return None;
        }
    };
    let info = match control.get_server_info(pb::GetServerInfoRequest {}).await {
        Ok(info) => info.into_inner(),
        Err(status) => {
            report.stop("token", CliError::from_status(status, &cli.server), fix);
            return None;
        }
    };
    if !info.dispatch_scope.is_empty() {
        let message = format!(
            "a gateway token (Bus only, one platform; DISPATCH scope \"{}\"): the fleet cannot be checked with it",
            info.dispatch_scope
        );
        report.stop("token", CliError::Unauthorized(message), fix);
        return None;
    }
    report.ok("token", format!("an admin token (every RPC); gorpd {}", info.version));
    Some((control, info))
}

/// Checks gorpd's clock against this machine's; returns how far it is ahead, in seconds.
fn check_clock(info: &pb::ServerInfo, report: &mut Report) -> Option<f64> {
    let Ok(server) = chrono::DateTime::parse_from_rfc3339(&info.server_time) else {
        report.warn("clock", "gorpd did not say its time (an older gorpd)".to_owned(), "upgrade gorpd");
        return None;
    };
    let skew = (server.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_milliseconds() as f64 / 1000.0;
    if skew.abs() > MAX_CLOCK_SKEW_SECS {
        let direction = if skew > 0.0 { "ahead of" } else { "behind" };
        let message = format!("gorpd's clock is {:.1} s {direction} this machine's", skew.abs());
        report.warn("clock", message, "run NTP on both machines (e.g. systemd-timesyncd or chrony)");
    } else {
        report.ok("clock", format!("gorpd's clock agrees with this machine's (off by {:.1} s)", skew.abs()));
    }
    Some(skew)
}

/// Checks one gateway's `/healthz` (its own view: connected to gorpd, spool room) and its clock
/// (the `Date` of its answer, to the second) against gorpd's, whose offset from ours is `gorpd_skew`.
async fn check_gateway_health(url: &str, gorpd_skew: Option<f64>, report: &mut Report) {
    let address = url.trim_end_matches('/');
    let client = reqwest::Client::builder().timeout(std::time::Duration::from_secs(5)).build();
    let answer = match client.map(|client| client.get(format!("{address}/healthz")).send()) {
        Ok(request) => request.await,
        Err(error) => Err(error),
    };
    let sent_at = chrono::Utc::now();
    let answer = match answer {
        Ok(answer) => answer,
        Err(error) => {
            let message = format!("no answer from the gateway health address {address}: {error}");
            report.fail("gateway", message, "is the gateway running, started with --health-addr at that address?");
            return;
        }
    };
    let date = answer.headers().get("date").and_then(|date| date.to_str().ok()).map(str::to_owned);
    let healthy = answer.status().is_success();
    let body: serde_json::Value = answer.json().await.unwrap_or_default();
    let (status, platform) = (body["status"].as_str().unwrap_or("?"), body["platform"].as_str().unwrap_or("?"));
    if healthy {
        report.ok("gateway", format!("{platform} at {address}: {status}"));
    } else {
        report.fail("gateway", format!("{platform} at {address}: {status}"), "read the gateway's log and /healthz");
    }
    let (Some(date), Some(gorpd_skew)) = (date, gorpd_skew) else { return };
    let Ok(date) = chrono::DateTime::parse_from_rfc2822(&date) else { return };
    // The Date header has whole seconds: up to one second of the difference is its rounding.
    let skew = (date.with_timezone(&chrono::Utc) - sent_at).num_milliseconds() as f64 / 1000.0 + 0.5 - gorpd_skew;
    if skew.abs() > MAX_CLOCK_SKEW_SECS + 0.5 {
        let direction = if skew > 0.0 { "ahead of" } else { "behind" };
        let message = format!("the clock of {platform} at {address} is about {:.0} s {direction} gorpd's", skew.abs());
        report.warn(
            "clock",
            message,
            "run NTP on the gateway's machine and gorpd's (e.g. systemd-timesyncd or chrony)",
        );
    }
}

async fn check_gateways(cli: &Cli, control: &mut connect::Control, report: &mut Report) {
    let gateways = match control.list_gateways(pb::ListGatewaysRequest {}).await {
        Ok(list) => list.into_inner().gateways,
        Err(status) => {
            report.fail("gateways", CliError::from_status(status, &cli.server).to_string(), "see gorpd's log");
            return;
        }
    };
    if gateways.is_empty() {
        report.ok("gateways", "no gateway has connected yet (the web chat needs none)".to_owned());
    }
    for gateway in gateways {
        let name = format!("{} ({})", gateway.gateway_id, gateway.platform);
        let waiting = match gateway.pending {
            0 => "nothing waiting".to_owned(),
            n => format!("{n} answer(s) waiting for it"),
        };
        if !gateway.connected {
            let message = format!("{name} is not connected (last seen {}); {waiting}", gateway.last_seen);
            let fix = format!(
                "start gorp-{} with --gateway-id {} (or remove it if it is gone for good) and read its log",
                gateway.platform, gateway.gateway_id
            );
            report.fail("gateway", message, fix);
        } else if gateway.pending >= LAGGING_ANSWERS {
            let message = format!("{name} is connected but {} answers behind", gateway.pending);
            report.warn("gateway", message, "look in the gateway's log and /metrics for rate limits or failures");
        } else {
            report.ok("gateway", format!("{name} connected; {waiting}"));
        }
    }
}

async fn check_agents(control: &mut connect::Control, report: &mut Report) {
    let checks = match control.check_agents(pb::CheckAgentsRequest {}).await {
        Ok(checks) => checks.into_inner().agents,
        Err(status) => {
            let message = format!("gorpd cannot check its agents: {}", status.message());
            report.warn("agent", message, "upgrade gorpd to one that serves CheckAgents");
            return;
        }
    };
    for check in checks {
        if check.ok {
            report.ok("agent", format!("{}: {}", check.agent, check.detail));
            continue;
        }
        let fix = if check.detail.contains("not found") {
            format!("install it on gorpd's machine, or set the full path as `command` under [agents.{}]", check.agent)
        } else {
            format!("check [agents.{}] in gorpd's config (command, base_url, api_key_env)", check.agent)
        };
        report.fail("agent", format!("{}: {}", check.agent, check.detail), fix);
    }
}

fn check_storage(info: &pb::ServerInfo, report: &mut Report) {
    let free = info.disk_free_bytes;
    let message = format!("{} free on gorpd's disk; database {}", mib(free), mib(info.database_bytes));
    if free < LOW_DISK_BYTES / 10 {
        report.fail("disk", message, "free space on gorpd's data directory's disk: writes stop when it is full");
    } else if free < LOW_DISK_BYTES {
        report.warn("disk", message, "free space on gorpd's data directory's disk soon");
    } else {
        report.ok("disk", message);
    }
    if info.max_database_bytes > 0 && info.database_bytes * 10 >= info.max_database_bytes * 9 {
        let message =
            format!("the database is at {} of its {} limit", mib(info.database_bytes), mib(info.max_database_bytes));
        report.warn("database", message, "prune history (gorpctl session prune) or raise max_database_bytes");
    }
}

/// Among replicas: one that stopped without leaving (a crash) is worth a look.
fn check_replicas(info: &pb::ServerInfo, report: &mut Report) {
    if info.replica.is_empty() {
        return;
    }
    let alive = info.replicas.iter().filter(|r| r.alive).count();
    let stopped: Vec<&str> = info.replicas.iter().filter(|r| !r.alive).map(|r| r.name.as_str()).collect();
    let message = format!("{alive} replica(s) alive, answered by {}", info.replica);
    if stopped.is_empty() {
        report.ok("replicas", message);
    } else {
        let message = format!("{message}; stopped without leaving: {}", stopped.join(", "));
        report.warn(
            "replicas",
            message,
            "its sessions were taken over; restart it or look at its logs for why it died",
        );
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime};

    fn served(subject: &str, not_after: SystemTime) -> pb::TlsCertificate {
        let not_after = chrono::DateTime::<chrono::Utc>::from(not_after).to_rfc3339();
        pb::TlsCertificate { subject: subject.to_owned(), not_after }
    }

    #[test]
    fn served_certificates_not_presented_here_are_checked_by_their_expiry() {
        let day = Duration::from_secs(86_400);
        let now = SystemTime::now();
        // The time as gorpd sends it (RFC 3339), as a presented certificate would match it.
        let soon =
            SystemTime::from(chrono::DateTime::parse_from_rfc3339(&served("", now + 3 * day).not_after).unwrap());
        let info = pb::ServerInfo {
            tls_certificates: vec![
                served("CN=gorp.example.org", now + 90 * day),
                served("CN=Proxy CA", now - day),
                served("CN=presented", soon),
            ],
            ..Default::default()
        };
        let presented = [Presented { subject: "CN=presented".into(), not_after: soon }];
        let mut report = Report::default();
        check_served_certificates(&info, &presented, &mut report);
        let found: Vec<_> = report.findings.iter().map(|f| (f.level, f.message.as_str())).collect();
        assert_eq!(found.len(), 2, "the presented one is not reported twice: {found:?}");
        assert_eq!(found[0].0, Level::Ok);
        assert!(found[0].1.starts_with("the certificate CN=gorp.example.org in gorpd's tls_cert is valid until"));
        assert_eq!(found[1].0, Level::Fail);
        assert!(found[1].1.contains("CN=Proxy CA in gorpd's tls_cert expired on"), "{found:?}");
        assert!(report.findings[1].fix.as_deref().unwrap().starts_with("renew it"));
    }

    #[test]
    fn replicas_that_stopped_without_leaving_are_a_warning() {
        let replica = |name: &str, alive| pb::ReplicaInfo { name: name.into(), alive, ..Default::default() };
        let mut report = Report::default();
        check_replicas(&pb::ServerInfo::default(), &mut report);
        assert!(report.findings.is_empty(), "nothing on SQLite");
        let mut info = pb::ServerInfo { replica: "a".into(), replicas: vec![replica("a", true)], ..Default::default() };
        check_replicas(&info, &mut report);
        info.replicas.push(replica("b", false));
        check_replicas(&info, &mut report);
        let found: Vec<_> = report.findings.iter().map(|f| (f.level, f.message.as_str())).collect();
        assert_eq!(found[0], (Level::Ok, "1 replica(s) alive, answered by a"));
        assert_eq!(found[1], (Level::Warn, "1 replica(s) alive, answered by a; stopped without leaving: b"));
    }
}
