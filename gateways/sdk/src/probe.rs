//! `--health`: the probe a container runtime or a supervisor runs to ask a
//! running gateway whether it is healthy.
//!
//! It reads only `--health-addr` (flag, env var or `--config` file), so it
//! works with none of the gateway's other settings, sends `GET /healthz` to
//! that address (an unspecified address such as `0.0.0.0` means this
//! host), prints the answer's JSON and exits 0 when the gateway answered
//! 200, 1 when it answered anything else or did not answer, and
//! [`EXIT_CONFIG`] when no health address is set. Plain HTTP/1.0 over a
//! socket: the images the probe runs in have no curl.

use crate::cli::{EXIT_CONFIG, config_file_args};
use clap::CommandFactory;
use std::ffi::OsString;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::process::ExitCode;
use std::time::Duration;

/// How long the probe waits to connect, and then for the answer.
const TIMEOUT: Duration = Duration::from_secs(5);
/// The most of the answer the probe reads (the health JSON is a few hundred bytes).
const MAX_ANSWER: u64 = 64 * 1024;

/// What the probe found out.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Health {
    /// The gateway answered 200: messages are safe.
    Healthy(String),
    /// The gateway answered with another status (503: messages are not safe).
    Unhealthy { status: u16, body: String },
    /// Nothing answered at the address, or not in HTTP.
    Unreachable(String),
}

/// The probe's exit code when `argv` asks for `--health`, `None` otherwise
/// (the gateway runs as usual).
pub(crate) fn run_if_requested<A: CommandFactory>(binary: &str, argv: &[OsString]) -> Option<ExitCode> {
    let matches = A::command().ignore_errors(true).try_get_matches_from(argv).ok()?;
    if !matches.try_get_one::<bool>("health").ok().flatten().copied().unwrap_or(false) {
        return None;
    }
    let addr = match health_addr::<A>(argv, &matches) {
        Ok(Some(addr)) => addr,
        Ok(None) => {
            eprintln!(
                "{binary}: --health needs the address the gateway serves it on (--health-addr or GORP_HEALTH_ADDR)"
            );
            return Some(ExitCode::from(EXIT_CONFIG));
        }
        Err(why) => {
            eprintln!("{binary}: {why}");
            return Some(ExitCode::from(EXIT_CONFIG));
        }
    };
    Some(match check(addr) {
        Health::Healthy(body) => {
            println!("{body}");
            ExitCode::SUCCESS
        }
        Health::Unhealthy { status, body } => {
            println!("{body}");
            eprintln!("{binary}: unhealthy (HTTP {status} from {addr})");
            ExitCode::FAILURE
        }
        Health::Unreachable(why) => {
            eprintln!("{binary}: no health answer from {addr}: {why}");
            ExitCode::FAILURE
        }
    })
}

/// `--health-addr` from the flag or env var, else from the `--config` file.
fn health_addr<A: CommandFactory>(argv: &[OsString], matches: &clap::ArgMatches) -> Result<Option<SocketAddr>, String> {
    if let Some(addr) = matches.try_get_one::<SocketAddr>("health_addr").ok().flatten() {
        return Ok(Some(*addr));
    }
    let Some(path) = matches.try_get_one::<std::path::PathBuf>("config").ok().flatten() else { return Ok(None) };
    let from_file = config_file_args::<A>(path, matches).map_err(|e| e.to_string())?;
    let with_file = argv.iter().cloned().chain(from_file);
    let matches = A::command().ignore_errors(true).try_get_matches_from(with_file).map_err(|e| e.to_string())?;
    Ok(matches.try_get_one::<SocketAddr>("health_addr").ok().flatten().copied())
}

/// Asks the gateway at `addr` for `/healthz`.
pub(crate) fn check(addr: SocketAddr) -> Health {
    match ask(reachable(addr)) {
        Ok((200, body)) => Health::Healthy(body),
        Ok((status, body)) => Health::Unhealthy { status, body },
        Err(why) => Health::Unreachable(why),
    }
}

/// The address to connect to: a gateway listening on every interface is reached on loopback.
fn reachable(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V4(v4) if v4.ip().is_unspecified() => (Ipv4Addr::LOCALHOST, v4.port()).into(),
        SocketAddr::V6(v6) if v6.ip().is_unspecified() => (Ipv6Addr::LOCALHOST, v6.port()).into(),
        other => other,
    }
}

/// Sends the request and returns the status code and body.
fn ask(addr: SocketAddr) -> Result<(u16, String), String> {
    let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT).map_err(|e| e.to_string())?;
    stream.set_read_timeout(Some(TIMEOUT)).map_err(|e| e.to_string())?;
    stream.set_write_timeout(Some(TIMEOUT)).map_err(|e| e.to_string())?;
    let request = format!("GET /healthz HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    stream.take(MAX_ANSWER).read_to_end(&mut answer).map_err(|e| e.to_string())?;
    parse_answer(&String::from_utf8_lossy(&answer))
}

/// The status code and body of an HTTP/1.x answer.
fn parse_answer(answer: &str) -> Result<(u16, String), String> {
    let (head, body) = answer.split_once("\r\n\r\n").ok_or("the answer is not HTTP (no header end)")?;
    let status_line = head.lines().next().unwrap_or_default();
    let mut parts = status_line.split_whitespace();
    let status = match (parts.next(), parts.next()) {
        (Some(version), Some(code)) if version.starts_with("HTTP/1.") => code.parse::<u16>().ok(),
        _ => None,
    };
    let status = status.ok_or_else(|| format!("the answer is not HTTP: {status_line:?}"))?;
    Ok((status, body.trim_end().to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A server that answers one connection with `answer`, on a thread.
    fn answering(answer: &'static str) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut request = [0u8; 1024];
            let _ = stream.read(&mut request);
            stream.write_all(answer.as_bytes()).unwrap();
        });
        addr
    }

    #[test]
    fn a_200_is_healthy_and_its_body_is_kept() {
        let addr = answering("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n{\"status\":\"ok\"}");
        assert_eq!(check(addr), Health::Healthy(r#"{"status":"ok"}"#.into()));
    }

    #[test]
    fn a_503_is_unhealthy() {
        let addr = answering("HTTP/1.1 503 Service Unavailable\r\n\r\n{\"status\":\"spool full\"}");
        assert_eq!(check(addr), Health::Unhealthy { status: 503, body: r#"{"status":"spool full"}"#.into() });
    }

    #[test]
    fn an_answer_that_is_not_http_is_unreachable() {
        let addr = answering("SSH-2.0-OpenSSH\r\n");
        assert!(matches!(check(addr), Health::Unreachable(why) if why.contains("not HTTP")));
    }

    #[test]
    fn a_closed_port_is_unreachable() {
        let addr = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        assert!(matches!(check(addr), Health::Unreachable(_)));
    }

    /// A gateway's command line: the common settings plus a required one of its own.
    #[derive(clap::Parser)]
    #[allow(dead_code)]
    struct Args {
        #[command(flatten)]
        common: crate::cli::CommonArgs,
        #[arg(long)]
        platform_token: String,
    }

    fn argv(args: &[&str]) -> Vec<OsString> {
        std::iter::once("gorp-test").chain(args.iter().copied()).map(OsString::from).collect()
    }

    #[test]
    fn without_health_the_gateway_runs() {
        assert_eq!(run_if_requested::<Args>("gorp-test", &argv(&["--token", "t"])), None);
    }

    #[test]
    fn health_needs_no_other_setting_and_fails_without_an_address() {
        assert_eq!(run_if_requested::<Args>("gorp-test", &argv(&["--health"])), Some(ExitCode::from(EXIT_CONFIG)));
    }

    #[test]
    fn health_reads_the_address_from_the_flag_or_the_config_file() {
        let healthy = answering("HTTP/1.1 200 OK\r\n\r\n{}");
        let flag = format!("--health-addr={healthy}");
        assert_eq!(run_if_requested::<Args>("gorp-test", &argv(&["--health", &flag])), Some(ExitCode::SUCCESS));

        let unhealthy = answering("HTTP/1.1 503 Service Unavailable\r\n\r\n{}");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("gateway.toml");
        std::fs::write(&file, format!("health-addr = \"{unhealthy}\"\nplatform-token = \"x\"\n")).unwrap();
        let config = format!("--config={}", file.display());
        assert_eq!(run_if_requested::<Args>("gorp-test", &argv(&["--health", &config])), Some(ExitCode::FAILURE));
    }

    #[test]
    fn an_unspecified_address_is_probed_on_loopback() {
        assert_eq!(reachable("0.0.0.0:9731".parse().unwrap()), "127.0.0.1:9731".parse().unwrap());
        assert_eq!(reachable("[::]:9731".parse().unwrap()), "[::1]:9731".parse().unwrap());
        assert_eq!(reachable("10.0.0.5:9731".parse().unwrap()), "10.0.0.5:9731".parse().unwrap());
    }
}
