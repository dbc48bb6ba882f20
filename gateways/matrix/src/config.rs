//! `gorp-matrix`'s settings: the shared gateway flags plus the Matrix ones
//! (homeserver, bot account, state directory, store passphrase, recovery
//! key), each with a `GORP_*` env var and a key in the `--config` file.
//!
//! Secrets can come from a flag/env var or from a file (`*-file`), never
//! show in `Debug`, and are checked before anything connects:
//! [`Args::matrix`] builds the [`MatrixSettings`] the platform runs with.

use clap::Parser;
use gorp_gateway::cli::CommonArgs;
use gorp_gateway::{GatewayConfig, Secret};
use std::fmt;
use std::path::{Path, PathBuf};
use url::Url;

/// The Matrix gateway for gorp: relays the rooms and DMs of a Matrix bot
/// account (end-to-end encrypted or not) to gorpd and the answers back.
/// Every setting also reads a GORP_* environment variable and a key in the
/// --config file. Allow-list entries are Matrix user ids (`@alice:example.org`)
/// or whole homeservers (`example.org`); invites from anyone else are refused.
#[derive(Parser)]
#[command(name = "gorp-matrix", version)]
pub(crate) struct Args {
    #[command(flatten)]
    pub(crate) common: CommonArgs,

    /// The homeserver's client-server API URL (e.g. `https://matrix.example.org`).
    #[arg(long, env = "GORP_MATRIX_HOMESERVER", value_name = "URL")]
    pub(crate) matrix_homeserver: Url,

    /// The bot's user id (`@gorp:example.org`).
    #[arg(long, env = "GORP_MATRIX_USER", value_name = "USER_ID")]
    pub(crate) matrix_user: String,

    /// The bot account's password (used for the first login only; later starts reuse the saved device).
    #[arg(long, env = "GORP_MATRIX_PASSWORD", value_name = "PASSWORD", hide_env_values = true)]
    pub(crate) matrix_password: Option<String>,

    /// A file holding the password.
    #[arg(long, env = "GORP_MATRIX_PASSWORD_FILE", value_name = "FILE")]
    pub(crate) matrix_password_file: Option<PathBuf>,

    /// An access token for the bot account instead of a password.
    #[arg(long, env = "GORP_MATRIX_ACCESS_TOKEN", value_name = "TOKEN", hide_env_values = true)]
    pub(crate) matrix_access_token: Option<String>,

    /// A file holding the access token.
    #[arg(long, env = "GORP_MATRIX_ACCESS_TOKEN_FILE", value_name = "FILE")]
    pub(crate) matrix_access_token_file: Option<PathBuf>,

    /// Where the device (session), the encrypted crypto store and the sync
    /// position live; keep it across restarts and upgrades.
    #[arg(long, env = "GORP_MATRIX_STATE_DIR", default_value = "gorp-matrix-state", value_name = "DIR")]
    pub(crate) matrix_state_dir: PathBuf,

    /// The passphrase the crypto store is encrypted with.
    #[arg(long, env = "GORP_MATRIX_STORE_PASSPHRASE", value_name = "PASSPHRASE", hide_env_values = true)]
    pub(crate) matrix_store_passphrase: Option<String>,

    /// A file holding the store passphrase.
    #[arg(long, env = "GORP_MATRIX_STORE_PASSPHRASE_FILE", value_name = "FILE")]
    pub(crate) matrix_store_passphrase_file: Option<PathBuf>,

    /// A recovery key (Element: "Security key") to restore cross-signing and the key backup.
    #[arg(long, env = "GORP_MATRIX_RECOVERY_KEY", value_name = "KEY", hide_env_values = true)]
    pub(crate) matrix_recovery_key: Option<String>,

    /// A file holding the recovery key.
    #[arg(long, env = "GORP_MATRIX_RECOVERY_KEY_FILE", value_name = "FILE")]
    pub(crate) matrix_recovery_key_file: Option<PathBuf>,

    /// How long a message that cannot be decrypted waits for its keys (key
    /// forwarding, the key backup) before its room is told it never could be.
    #[arg(long, env = "GORP_MATRIX_KEY_WAIT_SECS", default_value_t = DEFAULT_KEY_WAIT_SECS, value_name = "SECONDS",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) matrix_key_wait_secs: u64,

    /// The largest file of an answer sent as Matrix media, in bytes; larger
    /// ones (and any above the homeserver's own upload limit) are sent as a
    /// link to the web chat (`--web-url`). Default: the homeserver's limit.
    #[arg(long, env = "GORP_MATRIX_MAX_FILE_BYTES", value_name = "BYTES")]
    pub(crate) matrix_max_file_bytes: Option<u64>,
}

/// One day: keys sent late by a user's other device or restored from a
/// backup usually arrive within minutes, rarely after a day.
const DEFAULT_KEY_WAIT_SECS: u64 = 24 * 60 * 60;

impl fmt::Debug for Args {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hidden = |s: &Option<String>| s.as_ref().map(|_| Secret::new(""));
        f.debug_struct("Args")
            .field("common", &self.common)
            .field("matrix_homeserver", &self.matrix_homeserver.as_str())
            .field("matrix_user", &self.matrix_user)
            .field("matrix_password", &hidden(&self.matrix_password))
            .field("matrix_access_token", &hidden(&self.matrix_access_token))
            .field("matrix_state_dir", &self.matrix_state_dir)
            .field("matrix_store_passphrase", &hidden(&self.matrix_store_passphrase))
            .field("matrix_recovery_key", &hidden(&self.matrix_recovery_key))
            .field("matrix_key_wait_secs", &self.matrix_key_wait_secs)
            .field("matrix_max_file_bytes", &self.matrix_max_file_bytes)
            .finish_non_exhaustive()
    }
}

/// How the bot account logs in the first time.
#[derive(Debug, Clone)]
pub(crate) enum Login {
    /// With the account's password (a new device is made once).
    Password(Secret),
    /// With an access token (its device is the one the token belongs to).
    AccessToken(Secret),
}

/// Everything the Matrix platform needs, checked.
#[derive(Debug, Clone)]
pub(crate) struct MatrixSettings {
    /// The homeserver's URL.
    pub(crate) homeserver: Url,
    /// The bot's user id.
    pub(crate) user: String,
    /// How to log in when the state directory has no session yet.
    pub(crate) login: Login,
    /// The state directory.
    pub(crate) state_dir: PathBuf,
    /// The crypto store's passphrase.
    pub(crate) store_passphrase: Secret,
    /// The recovery key, when given.
    pub(crate) recovery_key: Option<Secret>,
    /// How long an undecryptable message waits for its keys.
    pub(crate) key_wait: std::time::Duration,
    /// The configured limit on files sent as media, below the homeserver's.
    pub(crate) max_file_bytes: Option<u64>,
}

impl Args {
    /// The `--allow` entries: user ids as given, a bare homeserver name
    /// (`example.org`) as `*:example.org` (every user of that server).
    pub(crate) fn allowed(&self) -> Vec<String> {
        let entries = self.common.allowed().into_iter();
        entries.map(|e| if e.starts_with('@') || e.starts_with('*') { e } else { format!("*:{e}") }).collect()
    }

    /// The shared runner's settings.
    pub(crate) fn gateway(&self) -> Result<GatewayConfig, String> {
        self.common.gateway_config(self.allowed())
    }

    /// The Matrix settings, with secrets read from their files.
    pub(crate) fn matrix(&self) -> Result<MatrixSettings, String> {
        let password = secret("password", &self.matrix_password, &self.matrix_password_file)?;
        let token = secret("access token", &self.matrix_access_token, &self.matrix_access_token_file)?;
        let login = match (password, token) {
            (Some(password), None) => Login::Password(password),
            (None, Some(token)) => Login::AccessToken(token),
            (Some(_), Some(_)) => return Err("give a Matrix password or an access token, not both".to_owned()),
            (None, None) => {
                return Err("a Matrix password or access token is required (--matrix-password or --matrix-access-token, or their *-file)".to_owned());
            }
        };
        let store_passphrase =
            secret("store passphrase", &self.matrix_store_passphrase, &self.matrix_store_passphrase_file)?.ok_or(
                "a store passphrase is required (--matrix-store-passphrase or --matrix-store-passphrase-file)",
            )?;
        let recovery_key = secret("recovery key", &self.matrix_recovery_key, &self.matrix_recovery_key_file)?;
        if !valid_user_id(&self.matrix_user) {
            return Err(format!("--matrix-user {:?} is not a Matrix user id like @gorp:example.org", self.matrix_user));
        }
        if !matches!(self.matrix_homeserver.scheme(), "http" | "https") {
            return Err(format!("--matrix-homeserver {} must be an http:// or https:// URL", self.matrix_homeserver));
        }
        Ok(MatrixSettings {
            homeserver: self.matrix_homeserver.clone(),
            user: self.matrix_user.clone(),
            login,
            state_dir: self.matrix_state_dir.clone(),
            store_passphrase,
            recovery_key,
            key_wait: std::time::Duration::from_secs(self.matrix_key_wait_secs),
            max_file_bytes: self.matrix_max_file_bytes,
        })
    }
}

/// `@localpart:server`, both parts non-empty.
fn valid_user_id(user: &str) -> bool {
    user.strip_prefix('@').and_then(|rest| rest.split_once(':')).is_some_and(|(l, s)| !l.is_empty() && !s.is_empty())
}

/// A secret from its flag/env var or its file (not both); empty is an error.
fn secret(what: &str, value: &Option<String>, file: &Option<PathBuf>) -> Result<Option<Secret>, String> {
    let text = match (value, file) {
        (Some(_), Some(_)) => return Err(format!("give the Matrix {what} or its file, not both")),
        (Some(value), None) => value.clone(),
        (None, Some(path)) => read_secret(what, path)?,
        (None, None) => return Ok(None),
    };
    if text.trim().is_empty() {
        return Err(format!("the Matrix {what} is empty"));
    }
    Ok(Some(Secret::new(text.trim())))
}

fn read_secret(what: &str, path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read the Matrix {what} file {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Args {
        let base = [
            "gorp-matrix",
            "--token",
            "gw-secret",
            "--matrix-homeserver",
            "http://127.0.0.1:8008",
            "--matrix-user",
            "@gorp:localhost",
        ];
        Args::try_parse_from(base.iter().chain(args)).expect("valid flags")
    }

    #[test]
    fn allow_entries_take_users_and_homeservers() {
        let args = parse(&["--allow", "@alice:example.org, other.org,,"]);
        assert_eq!(args.allowed(), vec!["@alice:example.org".to_owned(), "*:other.org".to_owned()]);
        let allow = args.gateway().unwrap().allow;
        assert!(allow.allows("@alice:example.org") && allow.allows("@bob:other.org"));
        assert!(!allow.allows("@bob:example.org") && !allow.allows("@eve:notother.org"));
    }

    #[test]
    fn settings_need_one_login_and_a_passphrase() {
        let with = |extra: &[&str]| parse(extra).matrix();
        let error = with(&["--matrix-store-passphrase", "p"]).unwrap_err();
        assert!(error.contains("password or access token"), "{error}");
        let error = with(&["--matrix-password", "pw"]).unwrap_err();
        assert!(error.contains("store passphrase"), "{error}");
        let both = with(&["--matrix-password", "pw", "--matrix-access-token", "t", "--matrix-store-passphrase", "p"]);
        assert!(both.unwrap_err().contains("not both"));
        let ok = with(&["--matrix-password", "pw", "--matrix-store-passphrase", "p"]).unwrap();
        assert!(matches!(ok.login, Login::Password(_)) && ok.recovery_key.is_none());
        let empty = with(&["--matrix-password", " ", "--matrix-store-passphrase", "p"]);
        assert!(empty.unwrap_err().contains("empty"));
    }

    #[test]
    fn secrets_come_from_files_and_bad_ids_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "syt_secret\n").unwrap();
        let file = file.display().to_string();
        let settings =
            parse(&["--matrix-access-token-file", &file, "--matrix-store-passphrase", "p"]).matrix().unwrap();
        assert!(matches!(&settings.login, Login::AccessToken(t) if t.expose() == "syt_secret"));
        let missing = parse(&["--matrix-password-file", "/nonexistent", "--matrix-store-passphrase", "p"]).matrix();
        assert!(missing.unwrap_err().contains("cannot read"));
        let mut args = parse(&["--matrix-password", "pw", "--matrix-store-passphrase", "p"]);
        args.matrix_user = "gorp".to_owned();
        assert!(args.matrix().unwrap_err().contains("not a Matrix user id"));
    }

    #[test]
    fn the_key_wait_is_a_day_unless_set_and_never_zero() {
        let login = ["--matrix-password", "pw", "--matrix-store-passphrase", "p"];
        assert_eq!(parse(&login).matrix().unwrap().key_wait, std::time::Duration::from_secs(86_400));
        let short = parse(&[&login[..], &["--matrix-key-wait-secs", "90"]].concat()).matrix().unwrap();
        assert_eq!(short.key_wait, std::time::Duration::from_secs(90));
        let base = ["gorp-matrix", "--matrix-homeserver", "http://h", "--matrix-user", "@g:h"];
        let zero = Args::try_parse_from(base.iter().chain(&["--matrix-key-wait-secs", "0"]));
        assert!(zero.is_err(), "a zero wait would give up on every message at once");
    }

    #[test]
    fn the_file_limit_is_the_homeservers_unless_set() {
        let login = ["--matrix-password", "pw", "--matrix-store-passphrase", "p"];
        assert_eq!(parse(&login).matrix().unwrap().max_file_bytes, None);
        let set = parse(&[&login[..], &["--matrix-max-file-bytes", "1048576"]].concat()).matrix().unwrap();
        assert_eq!(set.max_file_bytes, Some(1_048_576));
        let base = ["gorp-matrix", "--matrix-homeserver", "http://h", "--matrix-user", "@g:h"];
        let bad = Args::try_parse_from(base.iter().chain(&["--matrix-max-file-bytes", "-1"]));
        assert!(bad.is_err(), "not a byte count");
    }

    #[test]
    fn debug_never_shows_secrets() {
        let args = parse(&["--matrix-password", "pw-secret", "--matrix-store-passphrase", "pass-secret"]);
        let shown = format!("{args:?}");
        assert!(
            !shown.contains("gw-secret") && !shown.contains("pw-secret") && !shown.contains("pass-secret"),
            "{shown}"
        );
    }
}
