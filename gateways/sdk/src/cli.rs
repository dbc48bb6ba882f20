//! The command line every gateway binary shares: the common flags
//! ([`CommonArgs`]), settings from a TOML file under flags and `GORP_*` env
//! vars ([`parse_args`]), and the life of the process ([`run_binary`]: logs,
//! signals, the runner, exit codes).
//!
//! Precedence, highest first: a flag, its `GORP_*` env var, the `--config`
//! file, the default. File keys are the long flags without `--`
//! (`telegram-token` or `telegram_token`); an unknown key is an error, so a
//! typo never passes silently.

use crate::allow::AllowList;
use crate::config::GatewayConfig;
use crate::error::GatewayError;
use crate::platform::Platform;
use crate::runner::Runner;
use crate::spool::SpoolConfig;
use clap::parser::ValueSource;
use clap::{ArgAction, CommandFactory, Parser};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Exit code for a usage or configuration error (EX_USAGE), as gorpd uses.
pub const EXIT_CONFIG: u8 = 64;

/// The settings every gateway has; `#[command(flatten)]` it into a binary's
/// own `Parser`.
#[derive(Clone, clap::Args)]
pub struct CommonArgs {
    /// A TOML file with any of these settings, named like the long flags
    /// without `--` (e.g. `gorpd = "http://10.0.0.5:7730"`, lists as arrays).
    /// Flags and GORP_* env vars win over it.
    #[arg(long, env = "GORP_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// gorpd's gRPC URL (http:// or https://). For several replicas, their
    /// URLs separated by commas: each reconnect tries the next in turn.
    #[arg(long, env = "GORP_GORPD", default_value = "http://127.0.0.1:7730", value_name = "URL")]
    pub gorpd: String,

    /// The gateway token for gorpd, made with `gorpctl token create NAME --gateway PLATFORM`.
    #[arg(long, env = "GORP_TOKEN", value_name = "TOKEN", hide_env_values = true)]
    pub token: String,

    /// Extra CA certificate (PEM) to trust for an https:// gorpd, besides the system roots.
    #[arg(long, env = "GORP_CA_CERT", value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,

    /// The id gorpd keeps a delivery cursor for; give each instance its own
    /// when several run for one platform [default: the platform name].
    #[arg(long, env = "GORP_GATEWAY_ID", value_name = "ID")]
    pub gateway_id: Option<String>,

    /// Who may use the gateway: comma-separated platform user ids (see the
    /// platform's notes). Empty lets everyone in; others are told they are
    /// not allowed and nothing reaches gorpd.
    #[arg(long, env = "GORP_ALLOW", value_name = "USERS", value_delimiter = ',')]
    pub allow: Vec<String>,

    /// Shortest time between two edits of a streaming answer, in milliseconds.
    #[arg(long, env = "GORP_EDIT_INTERVAL_MS", default_value_t = 1000, value_name = "MS")]
    pub edit_interval_ms: u64,

    /// Serve the gateway's health (`/healthz`, JSON) and metrics
    /// (`/metrics`, Prometheus) on this address, e.g. 127.0.0.1:9731.
    #[arg(long, env = "GORP_HEALTH_ADDR", value_name = "ADDR")]
    pub health_addr: Option<std::net::SocketAddr>,

    /// Do not run: ask the gateway running with this `--health-addr` for its
    /// health and exit 0 when it is healthy, 1 when not (for container
    /// health checks and supervisors). Needs no other setting.
    #[arg(long)]
    pub health: bool,

    /// gorpd's web chat address as users reach it, e.g. https://gorp.example.org;
    /// a file too large for the platform is sent as a link there.
    #[arg(long, env = "GORP_WEB_URL", value_name = "URL")]
    pub web_url: Option<String>,

    /// Export traces over OTLP/gRPC to this collector, e.g. http://127.0.0.1:4317
    /// [default: OTEL_EXPORTER_OTLP_ENDPOINT; unset: no export].
    #[arg(long, env = "GORP_OTLP_ENDPOINT", value_name = "URL")]
    pub otlp_endpoint: Option<String>,
}

impl std::fmt::Debug for CommonArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommonArgs")
            .field("config", &self.config)
            .field("gorpd", &self.gorpd)
            .field("token", &crate::Secret::new(""))
            .field("ca_cert", &self.ca_cert)
            .field("gateway_id", &self.gateway_id)
            .field("allow", &self.allow)
            .field("edit_interval_ms", &self.edit_interval_ms)
            .field("health_addr", &self.health_addr)
            .field("health", &self.health)
            .field("web_url", &self.web_url)
            .field("otlp_endpoint", &self.otlp_endpoint)
            .finish()
    }
}

impl CommonArgs {
    /// The `--allow` entries, trimmed, without empties.
    pub fn allowed(&self) -> Vec<String> {
        self.allow.iter().map(|e| e.trim()).filter(|e| !e.is_empty()).map(str::to_owned).collect()
    }

    /// The runner's settings; `allowed` are the allow-list entries as the
    /// platform normalises them. Fails when the CA file cannot be read.
    pub fn gateway_config(&self, allowed: Vec<String>) -> Result<GatewayConfig, String> {
        let mut config = GatewayConfig::new(self.token.clone()).gorpd(self.gorpd.clone());
        config.gateway_id = self.gateway_id.clone();
        config.edit_interval = Duration::from_millis(self.edit_interval_ms);
        config.health_addr = self.health_addr;
        config.web_url = self.web_url.clone();
        config.otlp_endpoint = self.otlp_endpoint.clone();
        if !allowed.is_empty() {
            config.allow = AllowList::only(allowed);
        }
        if let Some(path) = &self.ca_cert {
            let pem = std::fs::read(path).map_err(|e| format!("cannot read --ca-cert {}: {e}", path.display()))?;
            config.ca_cert = Some(pem);
        }
        Ok(config)
    }
}

/// The spool's bounds, for a gateway that spools inbound messages;
/// `#[command(flatten)]` it next to [`CommonArgs`].
#[derive(Debug, Clone, clap::Args)]
pub struct SpoolArgs {
    /// Most messages the spool holds while gorpd is away; beyond it new
    /// messages are not acknowledged to the platform (which keeps them and
    /// retries) until gorpd has taken some.
    #[arg(long, env = "GORP_SPOOL_MAX_MESSAGES", default_value_t = 10_000, value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub spool_max_messages: u64,

    /// Most bytes (message text, ids and names) the spool holds.
    #[arg(long, env = "GORP_SPOOL_MAX_BYTES", default_value_t = 64 << 20, value_name = "BYTES",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub spool_max_bytes: u64,

    /// Once the oldest spooled message has waited this long for gorpd, no
    /// new message is taken.
    #[arg(long, env = "GORP_SPOOL_MAX_AGE_SECS", default_value_t = 24 * 3600, value_name = "SECS",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub spool_max_age_secs: u64,
}

impl SpoolArgs {
    /// A spool in `state_dir` with these bounds.
    pub fn config(&self, state_dir: PathBuf) -> SpoolConfig {
        SpoolConfig {
            dir: state_dir,
            max_entries: usize::try_from(self.spool_max_messages).unwrap_or(usize::MAX),
            max_bytes: self.spool_max_bytes,
            max_age: Duration::from_secs(self.spool_max_age_secs),
        }
    }
}

/// Why the command line could not be turned into settings.
#[derive(Debug, thiserror::Error)]
pub enum ArgsError {
    /// Bad flags or env vars, or `--help` / `--version` (clap prints those).
    #[error(transparent)]
    Clap(#[from] clap::Error),
    /// The config file is missing, unreadable or not valid TOML, or has a
    /// key or value that fits no setting.
    #[error("config file {path}: {why}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
}

impl ArgsError {
    /// Prints the error the way a user wants it (help and version in full,
    /// anything else as one line) and gives the exit code: 0 for help, else
    /// [`EXIT_CONFIG`].
    pub fn report(&self, binary: &str) -> ExitCode {
        match self {
            Self::Clap(error) if !error.use_stderr() => {
                let _ = error.print();
                ExitCode::SUCCESS
            }
            Self::Clap(error) => {
                let message = error.to_string();
                let first = message.lines().next().unwrap_or_default().trim_start_matches("error: ");
                eprintln!("{binary}: {first} (see {binary} --help)");
                ExitCode::from(EXIT_CONFIG)
            }
            Self::File { .. } => {
                eprintln!("{binary}: {self}");
                ExitCode::from(EXIT_CONFIG)
            }
        }
    }
}

/// Parses `argv` into `A`, filling every setting not given as a flag or env
/// var from the `--config` file when there is one.
pub fn parse_args<A, I, T>(argv: I) -> Result<A, ArgsError>
where
    A: Parser,
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let argv: Vec<OsString> = argv.into_iter().map(Into::into).collect();
    // A first pass that tolerates missing settings, to find the file and
    // learn which settings flags and env vars already gave.
    let probe = A::command().ignore_errors(true).try_get_matches_from(&argv);
    let Ok(probe) = probe else { return Ok(A::try_parse_from(&argv)?) };
    let Some(path) = probe.get_one::<PathBuf>("config").cloned() else { return Ok(A::try_parse_from(&argv)?) };
    let from_file = config_file_args::<A>(&path, &probe)?;
    Ok(A::try_parse_from(argv.into_iter().chain(from_file))?)
}

/// The settings in the file at `path` that `probe` lacks, as `--flag=value` args.
pub(crate) fn config_file_args<A: CommandFactory>(
    path: &Path,
    probe: &clap::ArgMatches,
) -> Result<Vec<OsString>, ArgsError> {
    let fail = |why: String| ArgsError::File { path: path.to_owned(), why };
    let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| fail(e.message().to_owned()))?;
    let command = A::command();
    let mut args = Vec::new();
    for (key, value) in table {
        let id = key.replace('-', "_");
        let arg = command
            .get_arguments()
            .find(|arg| arg.get_id() == id.as_str() && arg.get_long().is_some() && id != "config")
            .ok_or_else(|| fail(format!("unknown setting `{key}` (settings are the long flags without --)")))?;
        if matches!(probe.value_source(&id), Some(ValueSource::CommandLine | ValueSource::EnvVariable)) {
            continue;
        }
        let long = arg.get_long().unwrap_or_default();
        let switch = matches!(arg.get_action(), ArgAction::SetTrue);
        for value in setting_values(&key, value).map_err(fail)? {
            match (switch, value.as_str()) {
                (true, "true") => args.push(format!("--{long}").into()),
                (true, "false") => {}
                (true, _) => return Err(fail(format!("`{key}` must be true or false"))),
                (false, _) => args.push(format!("--{long}={value}").into()),
            }
        }
    }
    Ok(args)
}

/// A TOML value as the strings clap would get on a command line.
fn setting_values(key: &str, value: toml::Value) -> Result<Vec<String>, String> {
    match value {
        toml::Value::Array(items) => items.into_iter().map(|item| scalar(key, item)).collect(),
        scalar_value => Ok(vec![scalar(key, scalar_value)?]),
    }
}

fn scalar(key: &str, value: toml::Value) -> Result<String, String> {
    match value {
        toml::Value::String(s) => Ok(s),
        toml::Value::Integer(i) => Ok(i.to_string()),
        toml::Value::Float(f) => Ok(f.to_string()),
        toml::Value::Boolean(b) => Ok(b.to_string()),
        other => Err(format!("`{key}` must be a string, number, boolean or a list of them, not {}", other.type_str())),
    }
}

/// The whole life of a gateway binary: answer `--health` as a probe (see
/// the `probe` module) without running, or parse `A` (see [`parse_args`]),
/// build the runner's settings and the platform with `build` (an `Err` is a
/// configuration error), log to stderr (`GORP_LOG` as for gorpd, else
/// `RUST_LOG`, default info; text coloured only on a terminal, or JSON lines
/// with `GORP_LOG_FORMAT=json`: see `gorp-telemetry`), run until
/// SIGINT/SIGTERM, and turn the outcome into an exit code: 0 after a signal,
/// [`EXIT_CONFIG`] for bad settings (an empty token, a bad URL), 1 when
/// gorpd rejects the token or the platform cannot be used.
pub async fn run_binary<A, P, F>(binary: &str, build: F) -> ExitCode
where
    A: Parser,
    P: Platform,
    F: FnOnce(&A) -> Result<(GatewayConfig, P), String>,
{
    let argv: Vec<OsString> = std::env::args_os().collect();
    if let Some(exit) = crate::probe::run_if_requested::<A>(binary, &argv) {
        return exit;
    }
    let args = match parse_args::<A, _, _>(argv) {
        Ok(args) => args,
        Err(error) => return error.report(binary),
    };
    let (config, platform) = match build(&args) {
        Ok(built) => built,
        Err(why) => {
            eprintln!("{binary}: {why}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    // A workspace build links two rustls providers; pick ring explicitly.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let telemetry = match gorp_telemetry::init(binary, config.otlp_endpoint.as_deref()) {
        Ok(telemetry) => telemetry,
        Err(error) => {
            eprintln!("{binary}: {error}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let shutdown = CancellationToken::new();
    tokio::spawn(stop_on_signal(shutdown.clone()));
    let result = Runner::new(config, Arc::new(platform)).run(shutdown).await;
    telemetry.shutdown().await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(GatewayError::Config(why)) => {
            eprintln!("{binary}: {why}");
            ExitCode::from(EXIT_CONFIG)
        }
        Err(GatewayError::Unauthorized(why)) => {
            eprintln!("Error: gorpd rejected the gateway token ({why}); check --token / GORP_TOKEN");
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("Error: the {} gateway stopped: {error}", P::NAME);
            ExitCode::FAILURE
        }
    }
}

/// Cancels `shutdown` on SIGINT or SIGTERM.
async fn stop_on_signal(shutdown: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => drop(term.recv().await),
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("stopping");
    shutdown.cancel();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A binary's settings: the common ones plus two of its own.
    #[derive(Debug, Parser)]
    #[command(name = "gorp-test")]
    struct Args {
        #[command(flatten)]
        common: CommonArgs,
        #[arg(long, env = "GORP_TEST_BOT_TOKEN")]
        bot_token: String,
        #[arg(long)]
        verbose_api: bool,
    }

    fn write(dir: &Path, text: &str) -> String {
        let path = dir.join("gateway.toml");
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    }

    fn parse(argv: &[&str]) -> Result<Args, ArgsError> {
        parse_args::<Args, _, _>(std::iter::once("gorp-test").chain(argv.iter().copied()))
    }

    #[test]
    fn a_file_fills_what_flags_do_not_give() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(
            dir.path(),
            "gorpd = \"http://10.0.0.5:7730\"\ntoken = \"from-file\"\nbot-token = \"bot\"\n\
             allow = [\"1\", \"2\"]\nedit_interval_ms = 250\nverbose_api = true\n",
        );
        let args = parse(&["--config", &file, "--token", "from-flag"]).unwrap();
        assert_eq!(args.common.gorpd, "http://10.0.0.5:7730");
        assert_eq!(args.common.token, "from-flag", "a flag wins over the file");
        assert_eq!(args.bot_token, "bot");
        assert_eq!(args.common.allowed(), ["1", "2"]);
        assert_eq!(args.common.edit_interval_ms, 250);
        assert!(args.verbose_api);
    }

    #[test]
    fn without_a_file_defaults_and_required_settings_apply() {
        let args = parse(&["--token", "t", "--bot-token", "b"]).unwrap();
        assert_eq!(args.common.gorpd, "http://127.0.0.1:7730");
        assert_eq!(args.common.edit_interval_ms, 1000);
        assert!(matches!(parse(&["--token", "t"]), Err(ArgsError::Clap(_))), "bot token missing");
    }

    #[test]
    fn bad_files_are_errors_naming_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let unknown = write(dir.path(), "token = \"t\"\nbot_token = \"b\"\ntelegram_tokn = \"x\"\n");
        let error = parse(&["--config", &unknown]).unwrap_err().to_string();
        assert!(error.contains("unknown setting `telegram_tokn`"), "{error}");
        let nested = write(dir.path(), "token = \"t\"\nbot_token = \"b\"\n[gorpd]\nurl = \"x\"\n");
        assert!(parse(&["--config", &nested]).unwrap_err().to_string().contains("`gorpd` must be"));
        let broken = write(dir.path(), "token = \n");
        assert!(matches!(parse(&["--config", &broken]), Err(ArgsError::File { .. })));
        let missing = dir.path().join("nope.toml").display().to_string();
        assert!(matches!(parse(&["--config", &missing]), Err(ArgsError::File { .. })));
        let bad_value = write(dir.path(), "token = \"t\"\nbot_token = \"b\"\nedit_interval_ms = \"soon\"\n");
        assert!(matches!(parse(&["--config", &bad_value]), Err(ArgsError::Clap(_))));
    }

    #[test]
    fn the_ca_file_must_be_readable() {
        let args = parse(&["--token", "t", "--bot-token", "b", "--ca-cert", "/nonexistent/ca.pem"]).unwrap();
        let error = args.common.gateway_config(Vec::new()).unwrap_err();
        assert!(error.contains("--ca-cert"), "{error}");
    }

    #[test]
    fn debug_never_shows_the_token() {
        let args = parse(&["--token", "gw-secret", "--bot-token", "b"]).unwrap();
        assert!(!format!("{:?}", args.common).contains("gw-secret"));
    }
}
