//! The command line: every flag, subcommand and its help text.

pub(crate) use crate::automation::{HookCommand, ScheduleCommand};
use clap::{ArgGroup, Args, Parser, Subcommand};
use std::path::PathBuf;

/// gorpctl: manage a gorp fleet (sessions, channels, schedules, webhooks, gateways, tokens) over gRPC.
///
/// On the gorpd machine it works with no flags: it connects to 127.0.0.1:7730
/// and reads the admin token from gorpd's data directory.
#[derive(Debug, Parser)]
#[command(name = "gorpctl", version, about, after_help = EXIT_CODES)]
pub(crate) struct Cli {
    /// gorpd's gRPC address; https:// uses TLS. For several replicas, their
    /// addresses separated by commas: the first that answers is used.
    #[arg(long, env = "GORP_SERVER", global = true, default_value = "http://127.0.0.1:7730", value_name = "URL")]
    pub(crate) server: String,
    /// Bearer token [default: the admin token in gorpd's data directory].
    #[arg(long, env = "GORP_TOKEN", global = true, hide_env_values = true, value_name = "TOKEN")]
    pub(crate) token: Option<String>,
    /// gorpd's data directory, where the admin token is [default: $XDG_DATA_HOME/gorp or ~/.local/share/gorp].
    #[arg(long, env = "GORP_DATA_DIR", global = true, value_name = "DIR")]
    pub(crate) data_dir: Option<PathBuf>,
    /// PEM CA certificate to trust for https (in addition to the system roots).
    #[arg(long, env = "GORP_CA_CERT", global = true, value_name = "FILE")]
    pub(crate) ca_cert: Option<PathBuf>,
    /// Print JSON (one document; `watch` prints one JSON object per line).
    #[arg(long, global = true)]
    pub(crate) json: bool,
    #[command(subcommand)]
    pub(crate) command: Command,
}

const EXIT_CODES: &str = "Exit codes: 0 success, 1 other failure (e.g. invalid input, name taken), \
2 usage error, 3 not found, 4 unauthorized (missing, invalid or revoked token), 5 gorpd unreachable.";

/// What to do.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Create, delete, list and inspect sessions.
    #[command(subcommand)]
    Session(SessionCommand),
    /// Send a message to a session; its answer goes to the session's bound channels.
    Tell {
        /// Session name.
        session: String,
        /// The message (the words are joined with spaces); may be left out with --attach.
        #[arg(required_unless_present = "attach", num_args = 0..)]
        message: Vec<String>,
        /// A file to send with it (repeat for several; up to 10, each within gorpd's
        /// max_attachment_bytes, 25 MiB by default).
        #[arg(long, value_name = "FILE")]
        attach: Vec<PathBuf>,
    },
    /// Download a stored file (as listed by `read`) by its SHA-256.
    Download {
        /// The file's SHA-256, as `read` shows it.
        sha256: String,
        /// Where to write it (replaced atomically if it exists).
        file: PathBuf,
    },
    /// Show a session's last messages, oldest first.
    Read {
        /// Session name.
        session: String,
        /// How many [default: gorpd's read_default, 10]; capped by gorpd's read_max (100).
        #[arg(long, short = 'n')]
        count: Option<u32>,
    },
    /// Send a message to every session.
    Broadcast {
        /// The message (the words are joined with spaces).
        #[arg(required = true, num_args = 1..)]
        message: Vec<String>,
    },
    /// Bind a platform channel to a session (replacing its earlier binding).
    Bind(ChannelArgs),
    /// Unbind a platform channel.
    Unbind {
        /// Platform id, e.g. telegram, slack, matrix, web.
        platform: String,
        /// The platform's channel id.
        channel: String,
    },
    /// Connected gateways with their cursors and delivery lag.
    #[command(subcommand)]
    Gateway(GatewayCommand),
    /// Create, list and revoke API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Scheduled prompts: add, list, pause, resume, delete, run, runs.
    #[command(subcommand)]
    Schedule(ScheduleCommand),
    /// Webhooks (POST /hooks/<session>): create, list, rotate, delete.
    #[command(subcommand)]
    Hook(HookCommand),
    /// Download a consistent copy of gorpd's database, taken while it runs.
    ///
    /// Restore it on a stopped gorpd with an empty data directory: gorpd --restore FILE.
    Backup {
        /// Where to write it (replaced atomically if it exists).
        file: PathBuf,
    },
    /// Follow live bus activity until interrupted (Ctrl-C).
    Watch,
    /// Check that gorpd is up and serving.
    Health,
    /// Check the whole deployment and say what is wrong, with the fix: gorpd serving, the token,
    /// clocks, every gateway connected and how far behind, every agent profile usable, disk space.
    ///
    /// Exit codes: 0 nothing wrong (warnings may be printed), 1 problems found, 4 token refused,
    /// 5 gorpd unreachable.
    Doctor {
        /// A gateway's health address (its --health-addr), e.g. http://127.0.0.1:9731, to check its
        /// /healthz and its clock against gorpd's; repeat for each gateway.
        #[arg(long = "gateway-health", value_name = "URL")]
        gateway_health: Vec<String>,
    },
    /// gorpd's version, its limits (message size, counts, zone, retention) and the database's size.
    Info,
    /// Print a shell completion script.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
}

/// A channel and the session to bind it to.
#[derive(Debug, Args)]
pub(crate) struct ChannelArgs {
    /// Platform id, e.g. telegram, slack, matrix, web.
    pub(crate) platform: String,
    /// The platform's channel id.
    pub(crate) channel: String,
    /// Session name.
    pub(crate) session: String,
}

/// Session subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum SessionCommand {
    /// Create a session and its workspace.
    Create {
        /// 1-64 characters of a-z, 0-9, '_' and '-', starting with a letter or digit.
        name: String,
        /// Workspace directory relative to gorpd's workspace root [default: the name].
        #[arg(long)]
        workspace: Option<String>,
        /// Agent profile from gorpd's config [default: gorpd's default_agent].
        #[arg(long)]
        agent: Option<String>,
    },
    /// Delete a session: unbinds its channels, keeps its workspace files.
    Delete {
        /// Session name.
        name: String,
    },
    /// List every session.
    List,
    /// Show one session.
    Status {
        /// Session name.
        name: String,
    },
    /// Remove old entries of a session's history (entries matching either rule go).
    #[command(group(ArgGroup::new("rule").required(true).multiple(true).args(["keep", "older_than"])))]
    Prune {
        /// Session name.
        name: String,
        /// Keep only the newest N entries.
        #[arg(long, value_name = "N")]
        keep: Option<u32>,
        /// Remove entries older than this: 30d, 12h or 90m.
        #[arg(long, value_name = "AGE")]
        older_than: Option<String>,
    },
    /// Print a session's schedules and webhook settings as YAML (no secrets).
    Export {
        /// Session name.
        name: String,
    },
    /// Add the schedules and webhook of an exported YAML document to a session.
    Import {
        /// Session name.
        name: String,
        /// The YAML file ("-" reads standard input).
        file: PathBuf,
    },
}

/// Gateway subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum GatewayCommand {
    /// List gateways that have subscribed.
    List,
}

/// Token subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum TokenCommand {
    /// Create a token; its secret is printed once.
    #[command(group(ArgGroup::new("kind").required(true).args(["admin", "gateway"])))]
    Create {
        /// A label, 1-64 characters of a-z, 0-9, '_' and '-'.
        name: String,
        /// An admin token (every RPC).
        #[arg(long)]
        admin: bool,
        /// A gateway token for this platform only.
        #[arg(long, value_name = "PLATFORM")]
        gateway: Option<String>,
    },
    /// List tokens (never their secrets).
    List,
    /// Revoke a token by id.
    Revoke {
        /// Token id from `token list`.
        id: i64,
    },
}
