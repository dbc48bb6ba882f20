//! gorpd's configuration: command-line flags, `GORP_*` environment
//! variables and a TOML file, merged as defaults < file < environment < flags,
//! and validated before anything is bound or opened.

use crate::agent::PromptTemplate;
use crate::orchestrator::{DispatchScope, DispatchScopes};
use clap::Parser;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Default gRPC address (loopback only).
pub const DEFAULT_GRPC_ADDR: &str = "127.0.0.1:7730";
/// Default HTTP address of the built-in web adapter (loopback only).
pub const DEFAULT_HTTP_ADDR: &str = "127.0.0.1:7731";
/// Default largest message text: 64 KiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;
/// Upper bound for `max_attachment_bytes`: 4 GiB.
pub const MAX_ATTACHMENT_BYTES: u64 = 4 << 30;

/// Smallest `max_database_bytes`: 1 MiB.
pub const MIN_DATABASE_BYTES: u64 = 1024 * 1024;

/// Default seconds a replica's registration holds without renewal.
pub const DEFAULT_LEASE_SECS: u64 = 15;
/// The allowed `lease_secs`: renewals come every third of it, so below 2 s
/// a busy database could expire a live replica; above 10 minutes a dead
/// replica's sessions wait too long.
pub const LEASE_SECS: std::ops::RangeInclusive<u64> = 2..=600;

/// The host name as a replica name (lower case, other characters as '-'), or "gorpd".
fn default_replica_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let name: String = host
        .trim()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c.to_ascii_lowercase() } else { '-' })
        .take(64)
        .collect();
    let name = name.trim_start_matches(['-', '_']).to_owned();
    if name.is_empty() { "gorpd".to_owned() } else { name }
}
/// Upper bound for `max_body_bytes`: 4 MiB.
pub const MAX_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// gorpd: the gorp message bus and agent orchestrator.
///
/// Every flag can also be set as an environment variable (shown in brackets)
/// or as a key of the same name (with '_' for '-') in the TOML config file.
#[derive(Debug, Default, Parser)]
#[command(name = "gorpd", version, about, long_about = None)]
pub struct Flags {
    /// TOML config file.
    #[arg(long, env = "GORP_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Directory for the database and the admin token [default: $XDG_DATA_HOME/gorp or ~/.local/share/gorp].
    #[arg(long, env = "GORP_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// The store: a Postgres URL (`postgres://user:password@host/database`) [default: SQLite's gorp.db in the data directory].
    #[arg(long, env = "GORP_STORE_URL", value_name = "URL", hide_env_values = true)]
    pub store_url: Option<String>,
    /// This replica's name among several gorpd on one Postgres store [default: the host name].
    #[arg(long, env = "GORP_REPLICA_NAME", value_name = "NAME")]
    pub replica_name: Option<String>,
    /// Seconds a replica's registration holds without renewal: a dead replica's sessions are taken over 2/3 to 4/3 of this long after it died [default: 15].
    #[arg(long, env = "GORP_LEASE_SECS", value_name = "SECONDS")]
    pub lease_secs: Option<u64>,
    /// Directory of stored attachments; replicas share one [default: <data-dir>/files].
    #[arg(long, env = "GORP_FILES_DIR", value_name = "DIR")]
    pub files_dir: Option<PathBuf>,
    /// gRPC listen address [default: 127.0.0.1:7730].
    #[arg(long, env = "GORP_GRPC_ADDR", value_name = "HOST:PORT")]
    pub grpc_addr: Option<SocketAddr>,
    /// HTTP listen address of the web adapter [default: 127.0.0.1:7731].
    #[arg(long, env = "GORP_HTTP_ADDR", value_name = "HOST:PORT")]
    pub http_addr: Option<SocketAddr>,
    /// Directory under which session workspaces are created [default: <data-dir>/workspaces].
    #[arg(long, env = "GORP_WORKSPACE_ROOT", value_name = "DIR")]
    pub workspace_root: Option<PathBuf>,
    /// Directory copied into every new workspace.
    #[arg(long, env = "GORP_WORKSPACE_TEMPLATE", value_name = "DIR")]
    pub workspace_template: Option<PathBuf>,
    /// Largest message text in bytes [default: 65536; at most 4194304].
    #[arg(long, env = "GORP_MAX_BODY_BYTES", value_name = "BYTES")]
    pub max_body_bytes: Option<usize>,
    /// PEM certificate chain for gRPC TLS.
    #[arg(long, env = "GORP_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for gRPC TLS.
    #[arg(long, env = "GORP_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// Time zone of schedules made without one, an IANA name [default: UTC].
    #[arg(long, env = "GORP_TIMEZONE", value_name = "ZONE")]
    pub timezone: Option<String>,
    /// Restore a backup (made by `gorpctl backup`) into the data directory, which must hold no database, then exit.
    #[arg(long, value_name = "FILE", conflicts_with = "migrate_from")]
    pub restore: Option<PathBuf>,
    /// Copy a SQLite database (a stopped gorpd's gorp.db, or a `gorpctl backup` file) into the empty Postgres store named by --store-url, then exit.
    #[arg(long, value_name = "FILE")]
    pub migrate_from: Option<PathBuf>,
    /// OTLP/gRPC endpoint to export traces to, e.g. http://127.0.0.1:4317 [default: OTEL_EXPORTER_OTLP_ENDPOINT; unset: no export].
    #[arg(long, value_name = "URL")]
    pub otlp_endpoint: Option<String>,
    /// Allow a non-loopback listener without TLS (e.g. behind a TLS-terminating proxy).
    #[arg(
        long, env = "GORP_INSECURE_LISTEN", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub insecure_listen: Option<bool>,
}

/// The TOML config file; every key is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<PathBuf>,
    store_url: Option<String>,
    replica_name: Option<String>,
    lease_secs: Option<u64>,
    files_dir: Option<PathBuf>,
    grpc_addr: Option<SocketAddr>,
    http_addr: Option<SocketAddr>,
    workspace_root: Option<PathBuf>,
    workspace_template: Option<PathBuf>,
    max_body_bytes: Option<usize>,
    read_default: Option<u32>,
    read_max: Option<u32>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    insecure_listen: Option<bool>,
    default_agent: Option<String>,
    echo_chunk_delay_ms: Option<u64>,
    #[serde(default)]
    agents: BTreeMap<String, AgentProfile>,
    live_buffer: Option<usize>,
    max_queued_messages: Option<usize>,
    permission_timeout_secs: Option<u64>,
    agent_idle_secs: Option<u64>,
    max_agents: Option<usize>,
    turn_timeout_secs: Option<u64>,
    web_password_hash: Option<String>,
    timezone: Option<String>,
    max_database_bytes: Option<u64>,
    history_keep_days: Option<u32>,
    dedup_window_days: Option<u32>,
    gateway_stale_days: Option<u32>,
    retention_every_secs: Option<u64>,
    hook_wait_max_secs: Option<u64>,
    hook_per_minute: Option<u32>,
    prompt_template: Option<String>,
    http_max_connections: Option<usize>,
    grpc_max_connections: Option<usize>,
    header_read_timeout_secs: Option<u64>,
    dispatch_scope: Option<DispatchScope>,
    #[serde(default)]
    dispatch_scopes: BTreeMap<String, DispatchScope>,
    max_attachment_bytes: Option<u64>,
    max_message_attachment_bytes: Option<u64>,
    otlp_endpoint: Option<String>,
}

/// How to run one kind of agent; sessions name a profile (`!create x --agent <profile>`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum AgentProfile {
    /// The built-in echo agent.
    Echo {
        /// Pause between chunks, in milliseconds [default: echo_chunk_delay_ms].
        chunk_delay_ms: Option<u64>,
    },
    /// An Agent Client Protocol agent spawned as a subprocess (JSON-RPC over stdio).
    Acp(AcpProfile),
    /// An OpenAI-compatible chat completions endpoint.
    Openai {
        /// Base URL up to `/v1`, e.g. `http://127.0.0.1:8080/v1`.
        base_url: String,
        /// Model name.
        model: String,
        /// Environment variable holding the API key (none: no Authorization header).
        api_key_env: Option<String>,
        /// System prompt sent first.
        system_prompt: Option<String>,
        /// Context budget in tokens (estimated as bytes / 4); older turns are dropped to fit [default: 8192].
        context_tokens: Option<u32>,
        /// Longest wait, in seconds, for the answer to start and between two of its pieces [default: 120].
        timeout_secs: Option<u64>,
        /// Most tokens of one answer (`max_tokens`) [default: the endpoint's].
        max_tokens: Option<u32>,
        /// Sampling temperature, 0 to 2 [default: the endpoint's].
        temperature: Option<f32>,
        /// How a user's message is framed [default: prompt_template].
        prompt_template: Option<String>,
        /// Prices per million tokens, for the cost shown in `!status` [default: none].
        prices: Option<PriceTable>,
        /// The endpoint takes images in prompts (`image_url` parts) [default: false: images are named in text].
        images: Option<bool>,
    },
}

/// What an agent's tokens cost, per million.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceTable {
    /// Price of a million prompt tokens.
    pub input_per_million: f64,
    /// Price of a million completion tokens.
    pub output_per_million: f64,
    /// Currency code shown with the cost [default: "USD"].
    #[serde(default = "default_currency")]
    pub currency: String,
}

fn default_currency() -> String {
    "USD".to_owned()
}

impl PriceTable {
    /// The cost of these tokens.
    pub fn cost(&self, input_tokens: u64, output_tokens: u64) -> f64 {
        (input_tokens as f64 * self.input_per_million + output_tokens as f64 * self.output_per_million) / 1e6
    }

    fn check(&self) -> Result<(), String> {
        let valid = |price: f64| price.is_finite() && price >= 0.0;
        if !valid(self.input_per_million) || !valid(self.output_per_million) {
            return Err("prices must be numbers of at least 0".to_owned());
        }
        if self.currency.trim().is_empty() || self.currency.len() > 16 {
            return Err("prices.currency must be 1 to 16 characters".to_owned());
        }
        Ok(())
    }
}

/// An Agent Client Protocol agent profile (`kind = "acp"`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcpProfile {
    /// Program to run, e.g. `claude-code-acp`.
    pub command: String,
    /// Its arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// Extra environment variables.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Approve every permission request without asking (default false).
    #[serde(default)]
    pub auto_approve: bool,
    /// How a user's message is framed [default: prompt_template].
    pub prompt_template: Option<String>,
    /// MCP servers passed to the agent with every `session/new` and `session/load`.
    #[serde(default)]
    pub mcp_servers: Vec<McpServerConfig>,
    /// Session mode set when a session opens (e.g. `"plan"`) [default: the agent's].
    pub mode: Option<String>,
    /// Model set when a session opens [default: the agent's].
    pub model: Option<String>,
    /// Programs the agent may run in terminals (`"*"`: any) [default: none, no terminals].
    #[serde(default)]
    pub terminal_commands: Vec<String>,
    /// A terminal command still running after this many seconds is killed [default: 600].
    pub terminal_timeout_secs: Option<u64>,
    /// Prices per million tokens, for the cost shown in `!status` [default: none].
    pub prices: Option<PriceTable>,
}

/// One MCP server of an ACP profile: a program (`command`) or an HTTP endpoint (`url`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpServerConfig {
    /// Name the agent knows it by.
    pub name: String,
    /// Program of a stdio server.
    pub command: Option<String>,
    /// Its arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// Its environment.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// URL of an HTTP server.
    pub url: Option<String>,
    /// HTTP headers sent to it.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

/// Default of `terminal_timeout_secs`.
pub const DEFAULT_TERMINAL_TIMEOUT_SECS: u64 = 600;

impl AcpProfile {
    /// A profile running `command` with every other setting at its default.
    pub fn new(command: impl Into<String>) -> Self {
        Self { command: command.into(), ..Self::default() }
    }
}

/// A broken configuration; the message says what and how to fix it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(String);

/// PEM files for TLS.
#[derive(Debug, Clone, PartialEq)]
pub struct TlsFiles {
    /// Certificate chain.
    pub cert: PathBuf,
    /// Private key.
    pub key: PathBuf,
}

/// The validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Database (SQLite), files, admin token and default workspace root.
    pub data_dir: PathBuf,
    /// A Postgres URL for the store (`None`: SQLite in `data_dir`).
    pub store_url: Option<String>,
    /// This replica's name (Postgres only; shown to operators).
    pub replica_name: String,
    /// Seconds a replica's registration holds without renewal (Postgres only).
    pub lease_secs: u64,
    /// Where attachments' bytes are stored (replicas share one).
    pub files_dir: PathBuf,
    /// gRPC listen address.
    pub grpc_addr: SocketAddr,
    /// Web adapter listen address.
    pub http_addr: SocketAddr,
    /// Where session workspaces live.
    pub workspace_root: PathBuf,
    /// Copied into new workspaces.
    pub workspace_template: Option<PathBuf>,
    /// Largest message text, in bytes.
    pub max_body_bytes: usize,
    /// `!read` default count.
    pub read_default: u32,
    /// `!read` largest count.
    pub read_max: u32,
    /// gRPC TLS.
    pub tls: Option<TlsFiles>,
    /// Allow non-loopback listeners without TLS.
    pub insecure_listen: bool,
    /// Agent profile of new sessions.
    pub default_agent: String,
    /// Agent profiles by name; `echo` is always there.
    pub agents: BTreeMap<String, AgentProfile>,
    /// Pause between chunks of the echo backend, in milliseconds.
    pub echo_chunk_delay_ms: u64,
    /// Live events a subscriber may fall behind before it replays from the log.
    pub live_buffer: usize,
    /// Most accepted messages waiting for their session's agent at once; beyond it acks wait.
    pub max_queued_messages: usize,
    /// Seconds a permission request waits for `!approve` / `!deny` before it is denied.
    pub permission_timeout_secs: u64,
    /// Seconds an agent process stays alive without a prompt.
    pub agent_idle_secs: u64,
    /// Most agent processes running at once.
    pub max_agents: usize,
    /// Seconds one turn may take before it is cancelled.
    pub turn_timeout_secs: u64,
    /// Argon2 PHC hash of the web login password; enables the `/login` form [default: none, one-time link only].
    pub web_password_hash: Option<String>,
    /// Time zone of schedules made without one.
    pub timezone: chrono_tz::Tz,
    /// Largest database size; beyond it gorpd refuses new writes (`None`: the disk is the limit).
    pub max_database_bytes: Option<u64>,
    /// History entries older than this many days are removed hourly (`None`: kept for ever).
    pub history_keep_days: Option<u32>,
    /// Days a finished message (and so its platform message id, the de-duplication key) is kept.
    pub dedup_window_days: u32,
    /// Days after which a gateway that has not connected or acknowledged stops
    /// holding back delivery-log compaction (it is reported); also how long
    /// deliveries to platforms without a gateway (the web chat) are kept.
    pub gateway_stale_days: u32,
    /// Seconds between retention passes (forgetting, pruning, compaction).
    pub retention_every_secs: u64,
    /// Longest a webhook caller may wait for the answer, in seconds.
    pub hook_wait_max_secs: u64,
    /// Webhook calls each session's hook accepts per minute, unless the hook sets its own.
    pub hook_per_minute: u32,
    /// How a user's message is framed for agents whose profile sets no template.
    pub prompt_template: String,
    /// How far each platform's channels reach through DISPATCH [default: full for every platform].
    pub dispatch_scopes: DispatchScopes,
    /// Most connections the HTTP listener serves at once; more wait to be accepted.
    pub http_max_connections: usize,
    /// Most connections the gRPC listener serves at once; more wait to be accepted.
    pub grpc_max_connections: usize,
    /// Seconds a client has to send a request's headers (HTTP), or its first bytes (gRPC).
    pub header_read_timeout_secs: u64,
    /// Largest attachment, and largest total of one message's attachments [default: 25 MiB, 100 MiB].
    pub file_limits: crate::files::FileLimits,
    /// OTLP/gRPC endpoint traces are exported to (`None`: the standard
    /// `OTEL_EXPORTER_OTLP_*ENDPOINT` variables decide; unset too, no export).
    pub otlp_endpoint: Option<String>,
}

impl Config {
    /// The zero-config defaults with `data_dir` as data directory.
    pub fn with_data_dir(data_dir: impl Into<PathBuf>) -> Self {
        let data_dir = data_dir.into();
        Self {
            workspace_root: data_dir.join("workspaces"),
            files_dir: data_dir.join(crate::files::FILES_DIR),
            data_dir,
            store_url: None,
            replica_name: default_replica_name(),
            lease_secs: DEFAULT_LEASE_SECS,
            grpc_addr: DEFAULT_GRPC_ADDR.parse().expect("valid default"),
            http_addr: DEFAULT_HTTP_ADDR.parse().expect("valid default"),
            workspace_template: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            read_default: 10,
            read_max: 100,
            tls: None,
            insecure_listen: false,
            default_agent: "echo".to_owned(),
            agents: BTreeMap::from([("echo".to_owned(), AgentProfile::Echo { chunk_delay_ms: None })]),
            echo_chunk_delay_ms: 15,
            live_buffer: 1024,
            max_queued_messages: 10_000,
            permission_timeout_secs: 300,
            agent_idle_secs: 600,
            max_agents: 4,
            turn_timeout_secs: 1800,
            web_password_hash: None,
            timezone: chrono_tz::Tz::UTC,
            max_database_bytes: None,
            history_keep_days: None,
            dedup_window_days: 7,
            gateway_stale_days: 7,
            retention_every_secs: 3600,
            hook_wait_max_secs: 300,
            hook_per_minute: 60,
            prompt_template: crate::agent::DEFAULT_PROMPT_TEMPLATE.to_owned(),
            dispatch_scopes: DispatchScopes::default(),
            http_max_connections: 512,
            grpc_max_connections: 512,
            header_read_timeout_secs: 10,
            file_limits: crate::files::FileLimits::default(),
            otlp_endpoint: None,
        }
    }

    /// Merges defaults, the config file, the environment and flags, then validates.
    pub fn load(flags: &Flags) -> Result<Self, ConfigError> {
        let file = match &flags.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let data_dir = flags.data_dir.clone().or(file.data_dir.clone()).unwrap_or_else(default_data_dir);
        let mut config = Self::with_data_dir(&data_dir);
        config.store_url = flags.store_url.clone().or(file.store_url);
        config.replica_name = flags.replica_name.clone().or(file.replica_name).unwrap_or(config.replica_name);
        config.lease_secs = flags.lease_secs.or(file.lease_secs).unwrap_or(config.lease_secs);
        config.files_dir = flags.files_dir.clone().or(file.files_dir).unwrap_or(config.files_dir);
        config.grpc_addr = flags.grpc_addr.or(file.grpc_addr).unwrap_or(config.grpc_addr);
        config.http_addr = flags.http_addr.or(file.http_addr).unwrap_or(config.http_addr);
        config.workspace_root = flags.workspace_root.clone().or(file.workspace_root).unwrap_or(config.workspace_root);
        config.workspace_template = flags.workspace_template.clone().or(file.workspace_template);
        config.max_body_bytes = flags.max_body_bytes.or(file.max_body_bytes).unwrap_or(config.max_body_bytes);
        config.read_default = file.read_default.unwrap_or(config.read_default);
        config.read_max = file.read_max.unwrap_or(config.read_max);
        config.insecure_listen = flags.insecure_listen.or(file.insecure_listen).unwrap_or(false);
        config.default_agent = file.default_agent.unwrap_or(config.default_agent);
        config.agents.extend(file.agents);
        config.echo_chunk_delay_ms = file.echo_chunk_delay_ms.unwrap_or(config.echo_chunk_delay_ms);
        config.live_buffer = file.live_buffer.unwrap_or(config.live_buffer);
        config.max_queued_messages = file.max_queued_messages.unwrap_or(config.max_queued_messages);
        config.permission_timeout_secs = file.permission_timeout_secs.unwrap_or(config.permission_timeout_secs);
        config.agent_idle_secs = file.agent_idle_secs.unwrap_or(config.agent_idle_secs);
        config.max_agents = file.max_agents.unwrap_or(config.max_agents);
        config.turn_timeout_secs = file.turn_timeout_secs.unwrap_or(config.turn_timeout_secs);
        config.web_password_hash = file.web_password_hash;
        if let Some(zone) = flags.timezone.clone().or(file.timezone) {
            config.timezone = crate::scheduling::parse_zone(&zone).map_err(ConfigError)?;
        }
        config.max_database_bytes = file.max_database_bytes;
        config.history_keep_days = file.history_keep_days;
        config.dedup_window_days = file.dedup_window_days.unwrap_or(config.dedup_window_days);
        config.gateway_stale_days = file.gateway_stale_days.unwrap_or(config.gateway_stale_days);
        config.retention_every_secs = file.retention_every_secs.unwrap_or(config.retention_every_secs);
        config.hook_wait_max_secs = file.hook_wait_max_secs.unwrap_or(config.hook_wait_max_secs);
        config.hook_per_minute = file.hook_per_minute.unwrap_or(config.hook_per_minute);
        config.prompt_template = file.prompt_template.unwrap_or(config.prompt_template);
        config.http_max_connections = file.http_max_connections.unwrap_or(config.http_max_connections);
        config.grpc_max_connections = file.grpc_max_connections.unwrap_or(config.grpc_max_connections);
        config.header_read_timeout_secs = file.header_read_timeout_secs.unwrap_or(config.header_read_timeout_secs);
        config.dispatch_scopes =
            DispatchScopes { default: file.dispatch_scope.unwrap_or_default(), platforms: file.dispatch_scopes };
        let limits = &mut config.file_limits;
        limits.max_file_bytes = file.max_attachment_bytes.unwrap_or(limits.max_file_bytes);
        limits.max_message_bytes = file.max_message_attachment_bytes.unwrap_or(limits.max_message_bytes);
        config.otlp_endpoint = flags.otlp_endpoint.clone().or(file.otlp_endpoint);
        config.tls = match (flags.tls_cert.clone().or(file.tls_cert), flags.tls_key.clone().or(file.tls_key)) {
            (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
            (None, None) => None,
            _ => return Err(ConfigError("tls_cert and tls_key must be set together".to_owned())),
        };
        config.validate()?;
        Ok(config)
    }

    /// Checks limits, files and the loopback rule.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let fail = |message: String| Err(ConfigError(message));
        if !(1..=MAX_MAX_BODY_BYTES).contains(&self.max_body_bytes) {
            return fail(format!("max_body_bytes must be from 1 to {MAX_MAX_BODY_BYTES}, not {}", self.max_body_bytes));
        }
        if !(1..=1000).contains(&self.read_max) || !(1..=self.read_max).contains(&self.read_default) {
            return fail("read_max must be from 1 to 1000 and read_default from 1 to read_max".to_owned());
        }
        if !(1..=1000).contains(&self.max_agents) {
            return fail(format!("max_agents must be from 1 to 1000, not {}", self.max_agents));
        }
        if self.agent_idle_secs == 0 || self.turn_timeout_secs == 0 {
            return fail("agent_idle_secs and turn_timeout_secs must be at least 1".to_owned());
        }
        if !(1..=86_400).contains(&self.permission_timeout_secs) {
            return fail(format!(
                "permission_timeout_secs must be from 1 to 86400, not {}",
                self.permission_timeout_secs
            ));
        }
        if !(1..=1_000_000).contains(&self.live_buffer) {
            return fail(format!("live_buffer must be from 1 to 1000000, not {}", self.live_buffer));
        }
        if !(1..=1_000_000).contains(&self.max_queued_messages) {
            return fail(format!("max_queued_messages must be from 1 to 1000000, not {}", self.max_queued_messages));
        }
        if let Some(url) = &self.store_url {
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                return fail(
                    "store_url must be a postgres:// URL (leave it unset for SQLite's gorp.db in data_dir)".to_owned(),
                );
            }
            if self.max_database_bytes.is_some() {
                return fail("max_database_bytes limits SQLite's gorp.db; it cannot be set with store_url".to_owned());
            }
        }
        crate::names::check_label("replica_name", &self.replica_name).map_err(ConfigError)?;
        if !LEASE_SECS.contains(&self.lease_secs) {
            return fail(format!(
                "lease_secs must be from {} to {}, not {}",
                LEASE_SECS.start(),
                LEASE_SECS.end(),
                self.lease_secs
            ));
        }
        if self.max_database_bytes.is_some_and(|bytes| bytes < MIN_DATABASE_BYTES) {
            return fail(format!("max_database_bytes must be at least {MIN_DATABASE_BYTES} (1 MiB)"));
        }
        if !(1..=3650).contains(&self.dedup_window_days) {
            return fail(format!("dedup_window_days must be from 1 to 3650, not {}", self.dedup_window_days));
        }
        if !(10..=86_400).contains(&self.retention_every_secs) {
            return fail(format!("retention_every_secs must be from 10 to 86400, not {}", self.retention_every_secs));
        }
        if !(1..=3650).contains(&self.gateway_stale_days) {
            return fail(format!("gateway_stale_days must be from 1 to 3650, not {}", self.gateway_stale_days));
        }
        let files = self.file_limits;
        if !(1..=MAX_ATTACHMENT_BYTES).contains(&files.max_file_bytes)
            || !(files.max_file_bytes..=MAX_ATTACHMENT_BYTES * 10).contains(&files.max_message_bytes)
        {
            return fail(format!(
                "max_attachment_bytes must be from 1 to {MAX_ATTACHMENT_BYTES} (4 GiB) and \
                 max_message_attachment_bytes from max_attachment_bytes to ten times that bound"
            ));
        }
        if self.history_keep_days.is_some_and(|days| !(1..=36_500).contains(&days)) {
            return fail("history_keep_days must be from 1 to 36500".to_owned());
        }
        if !(1..=3600).contains(&self.hook_wait_max_secs) {
            return fail(format!("hook_wait_max_secs must be from 1 to 3600, not {}", self.hook_wait_max_secs));
        }
        if !(1..=10_000).contains(&self.hook_per_minute) {
            return fail(format!("hook_per_minute must be from 1 to 10000, not {}", self.hook_per_minute));
        }
        for (key, connections) in
            [("http_max_connections", self.http_max_connections), ("grpc_max_connections", self.grpc_max_connections)]
        {
            if !(1..=100_000).contains(&connections) {
                return fail(format!("{key} must be from 1 to 100000, not {connections}"));
            }
        }
        if !(1..=3600).contains(&self.header_read_timeout_secs) {
            return fail(format!(
                "header_read_timeout_secs must be from 1 to 3600, not {}",
                self.header_read_timeout_secs
            ));
        }
        for platform in self.dispatch_scopes.platforms.keys() {
            crate::names::check_platform(platform).map_err(|e| ConfigError(format!("dispatch_scopes: {e}")))?;
        }
        for name in self.agents.keys() {
            crate::names::check_label("agent profile name", name).map_err(ConfigError)?;
        }
        PromptTemplate::parse(&self.prompt_template).map_err(|e| ConfigError(format!("prompt_template: {e}")))?;
        for (name, profile) in &self.agents {
            check_openai_profile(name, profile)?;
            if let AgentProfile::Acp(acp) = profile {
                check_acp_profile(acp).map_err(|e| ConfigError(format!("agent profile \"{name}\": {e}")))?;
            }
            if let Some(prices) = profile.prices() {
                prices.check().map_err(|e| ConfigError(format!("agent profile \"{name}\": {e}")))?;
            }
            if let Some(template) = profile.prompt_template() {
                PromptTemplate::parse(template)
                    .map_err(|e| ConfigError(format!("agent profile \"{name}\": prompt_template: {e}")))?;
            }
        }
        if !self.agents.contains_key(&self.default_agent) {
            let known: Vec<_> = self.agents.keys().map(String::as_str).collect();
            return fail(format!(
                "default_agent \"{}\" is not a profile in [agents] (known: {})",
                self.default_agent,
                known.join(", ")
            ));
        }
        if let Some(hash) = &self.web_password_hash
            && argon2::PasswordHash::new(hash).is_err()
        {
            return fail("web_password_hash is not an argon2 PHC string (\"$argon2id$v=19$...\")".to_owned());
        }
        if let Some(template) = &self.workspace_template
            && !template.is_dir()
        {
            return fail(format!("workspace_template {} is not a directory", template.display()));
        }
        if let Some(tls) = &self.tls {
            for file in [&tls.cert, &tls.key] {
                if !file.is_file() {
                    return fail(format!("TLS file {} does not exist", file.display()));
                }
            }
        }
        if !self.insecure_listen {
            if self.tls.is_none() && !self.grpc_addr.ip().is_loopback() {
                return fail(format!(
                    "refusing to serve gRPC on {} without TLS: set tls_cert and tls_key, or pass --insecure-listen if a TLS proxy is in front",
                    self.grpc_addr
                ));
            }
            if !self.http_addr.ip().is_loopback() {
                return fail(format!(
                    "refusing to serve HTTP on non-loopback {}: put a TLS proxy in front and pass --insecure-listen",
                    self.http_addr
                ));
            }
        }
        Ok(())
    }
}

impl AgentProfile {
    /// The profile's price table, if it sets one.
    pub fn prices(&self) -> Option<&PriceTable> {
        match self {
            AgentProfile::Echo { .. } => None,
            AgentProfile::Acp(acp) => acp.prices.as_ref(),
            AgentProfile::Openai { prices, .. } => prices.as_ref(),
        }
    }

    /// The profile's own prompt template, if it sets one.
    pub fn prompt_template(&self) -> Option<&str> {
        match self {
            AgentProfile::Echo { .. } => None,
            AgentProfile::Acp(acp) => acp.prompt_template.as_deref(),
            AgentProfile::Openai { prompt_template, .. } => prompt_template.as_deref(),
        }
    }
}

/// An `acp` profile's MCP servers are each a program or a URL, with unique names; limits are positive.
fn check_acp_profile(profile: &AcpProfile) -> Result<(), String> {
    if profile.command.trim().is_empty() {
        return Err("command must not be empty".to_owned());
    }
    if let Some(secs) = profile.terminal_timeout_secs
        && !(1..=86_400).contains(&secs)
    {
        return Err(format!("terminal_timeout_secs must be from 1 to 86400, not {secs}"));
    }
    let mut names = std::collections::BTreeSet::new();
    for server in &profile.mcp_servers {
        if !names.insert(server.name.as_str()) || server.name.trim().is_empty() {
            return Err(format!("mcp_servers: names must be unique and not empty (\"{}\")", server.name));
        }
        match (&server.command, &server.url) {
            (Some(_), None) if server.headers.is_empty() => {}
            (None, Some(url)) if server.args.is_empty() && server.env.is_empty() => match reqwest::Url::parse(url) {
                Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => {}
                _ => {
                    return Err(format!(
                        "mcp_servers: \"{}\": url \"{url}\" is not an http:// or https:// URL",
                        server.name
                    ));
                }
            },
            _ => {
                return Err(format!(
                    "mcp_servers: \"{}\" needs either command (with args, env) or url (with headers)",
                    server.name
                ));
            }
        }
    }
    Ok(())
}

/// An `openai` profile needs an http(s) base URL and positive limits.
fn check_openai_profile(name: &str, profile: &AgentProfile) -> Result<(), ConfigError> {
    let AgentProfile::Openai { base_url, context_tokens, timeout_secs, max_tokens, temperature, .. } = profile else {
        return Ok(());
    };
    let fail = |message: String| Err(ConfigError(format!("agent profile \"{name}\": {message}")));
    match reqwest::Url::parse(base_url) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => {}
        _ => return fail(format!("base_url \"{base_url}\" is not an http:// or https:// URL")),
    }
    if *context_tokens == Some(0) {
        return fail("context_tokens must be at least 1".to_owned());
    }
    if let Some(secs) = timeout_secs
        && !(1..=86_400).contains(secs)
    {
        return fail(format!("timeout_secs must be from 1 to 86400, not {secs}"));
    }
    if *max_tokens == Some(0) {
        return fail("max_tokens must be at least 1".to_owned());
    }
    if let Some(temperature) = temperature
        && !(0.0..=2.0).contains(temperature)
    {
        return fail(format!("temperature must be from 0 to 2, not {temperature}"));
    }
    Ok(())
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError(format!("cannot read config file {}: {e}", path.display())))?;
    toml::from_str(&text).map_err(|e| ConfigError(format!("config file {}: {}", path.display(), e.message())))
}

/// gorpd's default data directory, defined once in gorp-client so gorpctl
/// finds the admin token where gorpd put it.
pub use gorp_client::default_data_dir;

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(args: &[&str]) -> Flags {
        Flags::try_parse_from(std::iter::once("gorpd").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn zero_config_is_loopback_and_valid() {
        let config = Config::load(&flags(&["--data-dir", "/tmp/x"])).unwrap();
        assert!(config.grpc_addr.ip().is_loopback());
        assert_eq!(config.workspace_root, Path::new("/tmp/x/workspaces"));
        assert_eq!(config.max_body_bytes, 64 * 1024);
    }

    #[test]
    fn a_web_password_hash_must_be_an_argon2_phc_string() {
        let mut config = Config::with_data_dir("/tmp/x");
        config.web_password_hash = Some("hunter2".to_owned());
        let error = config.validate().unwrap_err();
        assert!(error.to_string().contains("web_password_hash is not an argon2 PHC string"), "{error}");
        config.web_password_hash =
            Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$O5bcD7DL6m4JaVN1PpXGfbsg1UVyqdK4aTAbNL5o1/o".to_owned());
        config.validate().unwrap();
    }

    #[test]
    fn a_store_url_must_be_postgres_and_excludes_the_sqlite_size_limit() {
        let config = Config::load(&flags(&["--data-dir", "/tmp/x", "--store-url", "postgres://gorp@db/gorp"])).unwrap();
        assert_eq!(config.store_url.as_deref(), Some("postgres://gorp@db/gorp"));
        let error = Config::load(&flags(&["--store-url", "mysql://db/gorp"])).unwrap_err();
        assert!(error.to_string().contains("store_url must be a postgres:// URL"), "{error}");
        let mut config = Config::with_data_dir("/tmp/x");
        config.store_url = Some("postgresql://db/gorp".to_owned());
        config.max_database_bytes = Some(1 << 30);
        let error = config.validate().unwrap_err();
        assert!(error.to_string().contains("cannot be set with store_url"), "{error}");
    }

    #[test]
    fn replica_names_and_lease_times_are_checked() {
        let args = ["--data-dir", "/tmp/x", "--replica-name", "eu-1", "--lease-secs", "5"];
        let config = Config::load(&flags(&args)).unwrap();
        assert_eq!((config.replica_name.as_str(), config.lease_secs), ("eu-1", 5));
        let defaults = Config::with_data_dir("/tmp/x");
        assert_eq!(defaults.lease_secs, DEFAULT_LEASE_SECS);
        assert!(crate::names::check_label("replica_name", &defaults.replica_name).is_ok(), "{}", defaults.replica_name);
        for (name, lease, complaint) in
            [("Bad Name", 15, "replica_name"), ("ok", 1, "lease_secs must be from 2 to 600"), ("ok", 601, "not 601")]
        {
            let mut config = Config::with_data_dir("/tmp/x");
            (config.replica_name, config.lease_secs) = (name.to_owned(), lease);
            let error = config.validate().unwrap_err();
            assert!(error.to_string().contains(complaint), "{error}");
        }
    }

    #[test]
    fn non_loopback_without_tls_is_refused_unless_insecure() {
        let error = Config::load(&flags(&["--grpc-addr", "0.0.0.0:7730"])).unwrap_err();
        assert!(error.to_string().contains("without TLS"), "{error}");
        assert!(Config::load(&flags(&["--grpc-addr", "0.0.0.0:7730", "--insecure-listen"])).is_ok());
    }

    #[test]
    fn file_values_are_overridden_by_flags_and_unknown_keys_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gorp.toml");
        std::fs::write(&path, "max_body_bytes = 1000\nread_max = 20\n").unwrap();
        let p = path.to_str().unwrap();
        let config = Config::load(&flags(&["--config", p, "--max-body-bytes", "2000"])).unwrap();
        assert_eq!((config.max_body_bytes, config.read_max), (2000, 20));

        std::fs::write(&path, "max_body_byte = 1000\n").unwrap();
        let error = Config::load(&flags(&["--config", p])).unwrap_err();
        assert!(error.to_string().contains("unknown field"), "{error}");
    }

    #[test]
    fn insecure_listen_accepts_boolish_values() {
        assert_eq!(flags(&["--insecure-listen", "1"]).insecure_listen, Some(true));
        assert_eq!(flags(&["--insecure-listen=no"]).insecure_listen, Some(false));
    }

    #[test]
    fn agent_profiles_are_read_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gorp.toml");
        let p = path.to_str().unwrap();
        std::fs::write(
            &path,
            "default_agent = \"claude\"\n[agents.claude]\nkind = \"acp\"\ncommand = \"claude-code-acp\"\n\
             [agents.local]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:8080/v1\"\nmodel = \"qwen\"\n",
        )
        .unwrap();
        let config = Config::load(&flags(&["--config", p])).unwrap();
        assert_eq!(config.default_agent, "claude");
        assert_eq!(config.agents.len(), 3, "echo stays available");
        assert!(
            matches!(&config.agents["claude"], AgentProfile::Acp(acp) if acp.command == "claude-code-acp" && !acp.auto_approve)
        );

        std::fs::write(&path, "default_agent = \"nope\"\n").unwrap();
        assert!(Config::load(&flags(&["--config", p])).unwrap_err().to_string().contains("not a profile"));
        std::fs::write(&path, "[agents.x]\nkind = \"acp\"\ncommand = \"a\"\ncomand = \"b\"\n").unwrap();
        assert!(Config::load(&flags(&["--config", p])).unwrap_err().to_string().contains("unknown field"));
        std::fs::write(&path, "prompt_template = \"{sender} says\"\n").unwrap();
        let error = Config::load(&flags(&["--config", p])).unwrap_err().to_string();
        assert!(error.starts_with("prompt_template: ") && error.contains("does not use {text}"), "{error}");
        std::fs::write(&path, "[agents.x]\nkind = \"acp\"\ncommand = \"a\"\nprompt_template = \"{x}\"\n").unwrap();
        let error = Config::load(&flags(&["--config", p])).unwrap_err().to_string();
        assert!(error.contains("agent profile \"x\": prompt_template: unknown placeholder {x}"), "{error}");
        for (profile, reason) in [
            ("terminal_timeout_secs = 0", "terminal_timeout_secs must be from 1"),
            ("mcp_servers = [{ name = \"a\" }]", "needs either command"),
            ("mcp_servers = [{ name = \"a\", command = \"x\", url = \"http://h\" }]", "needs either command"),
            ("mcp_servers = [{ name = \"a\", url = \"ftp://h\" }]", "is not an http:// or https:// URL"),
            ("mcp_servers = [{ name = \"a\", command = \"x\" }, { name = \"a\", command = \"y\" }]", "unique"),
            ("mcp_servers = [{ name = \"a\", comand = \"x\" }]", "unknown field"),
        ] {
            std::fs::write(&path, format!("[agents.x]\nkind = \"acp\"\ncommand = \"a\"\n{profile}\n")).unwrap();
            let error = Config::load(&flags(&["--config", p])).unwrap_err().to_string();
            assert!(error.contains(reason), "{profile}: {error}");
        }
        std::fs::write(
            &path,
            "[agents.x]\nkind = \"acp\"\ncommand = \"a\"\nmode = \"plan\"\nterminal_commands = [\"cargo\"]\n\
             mcp_servers = [{ name = \"fs\", command = \"mcp-fs\", args = [\"/tmp\"] }, { name = \"web\", url = \"https://m/\" }]\n",
        )
        .unwrap();
        let config = Config::load(&flags(&["--config", p])).unwrap();
        assert!(
            matches!(&config.agents["x"], AgentProfile::Acp(acp) if acp.mcp_servers.len() == 2 && acp.mode.as_deref() == Some("plan"))
        );
        std::fs::write(&path, "[agents.x]\nkind = \"telepathy\"\n").unwrap();
        assert!(Config::load(&flags(&["--config", p])).is_err());
    }

    #[test]
    fn openai_profiles_are_read_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gorp.toml");
        let p = path.to_str().unwrap();
        let profile = "[agents.local]\nkind = \"openai\"\nmodel = \"qwen\"\n";
        std::fs::write(&path, format!("{profile}base_url = \"http://127.0.0.1:8080/v1\"\ntimeout_secs = 30\n"))
            .unwrap();
        let config = Config::load(&flags(&["--config", p])).unwrap();
        assert!(matches!(
            &config.agents["local"],
            AgentProfile::Openai { timeout_secs: Some(30), context_tokens: None, api_key_env: None, .. }
        ));
        for (extra, error) in [
            ("base_url = \"127.0.0.1:8080/v1\"\n", "not an http:// or https:// URL"),
            ("base_url = \"ftp://example.com/v1\"\n", "not an http:// or https:// URL"),
            ("base_url = \"http://h/v1\"\ntimeout_secs = 0\n", "timeout_secs must be from 1"),
            ("base_url = \"http://h/v1\"\ncontext_tokens = 0\n", "context_tokens must be at least 1"),
            ("base_url = \"http://h/v1\"\ntimeout = 5\n", "unknown field"),
            ("base_url = \"http://h/v1\"\nmax_tokens = 0\n", "max_tokens must be at least 1"),
            (
                "base_url = \"http://h/v1\"\nprices = { input_per_million = -1.0, output_per_million = 1.0 }\n",
                "at least 0",
            ),
            ("base_url = \"http://h/v1\"\nprices = { input_per_million = 1.0 }\n", "missing field"),
            ("base_url = \"http://h/v1\"\ntemperature = 2.5\n", "temperature must be from 0 to 2"),
            ("base_url = \"http://h/v1\"\nprompt_template = \"{who}\"\n", "unknown placeholder {who}"),
        ] {
            std::fs::write(&path, format!("{profile}{extra}")).unwrap();
            let message = Config::load(&flags(&["--config", p])).unwrap_err().to_string();
            assert!(message.contains(error), "{extra}: {message}");
        }
    }

    #[test]
    fn dispatch_scopes_are_read_per_platform_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gorp.toml");
        let p = path.to_str().unwrap();
        assert_eq!(Config::load(&flags(&[])).unwrap().dispatch_scopes.of("telegram"), DispatchScope::Full);
        std::fs::write(
            &path,
            "dispatch_scope = \"own-platform\"\n[dispatch_scopes]\nweb = \"full\"\nslack = \"off\"\n",
        )
        .unwrap();
        let scopes = Config::load(&flags(&["--config", p])).unwrap().dispatch_scopes;
        assert_eq!(
            (scopes.of("web"), scopes.of("slack"), scopes.of("telegram")),
            (DispatchScope::Full, DispatchScope::Off, DispatchScope::OwnPlatform)
        );
        std::fs::write(&path, "[dispatch_scopes]\ntelegram = \"some\"\n").unwrap();
        let error = Config::load(&flags(&["--config", p])).unwrap_err().to_string();
        assert!(error.contains("unknown variant `some`") && error.contains("own-platform"), "{error}");
        std::fs::write(&path, "[dispatch_scopes]\n\"Tele gram\" = \"off\"\n").unwrap();
        let error = Config::load(&flags(&["--config", p])).unwrap_err().to_string();
        assert!(error.starts_with("dispatch_scopes: "), "{error}");
    }

    #[test]
    fn limits_are_checked() {
        let mut config = Config::with_data_dir("/tmp/x");
        config.grpc_max_connections = 0;
        assert!(config.validate().unwrap_err().to_string().contains("grpc_max_connections must be from 1"));
        config.grpc_max_connections = 8;
        config.header_read_timeout_secs = 0;
        assert!(config.validate().unwrap_err().to_string().contains("header_read_timeout_secs must be from 1"));
        assert!(Config::load(&flags(&["--max-body-bytes", "0"])).is_err());
        assert!(Config::load(&flags(&["--max-body-bytes", "99999999"])).is_err());
        assert!(Config::load(&flags(&["--tls-cert", "/nonexistent"])).is_err());
    }
}
