//! `gorp-telegram`'s settings: the shared gateway flags plus the bot's own,
//! each with a `GORP_*` env var and a key in the `--config` file.
//!
//! Tokens are kept out of `Debug` output. [`Args::gateway`] builds the shared
//! runner's [`GatewayConfig`].

use clap::Parser;
use gorp_gateway::cli::CommonArgs;
use gorp_gateway::{GatewayConfig, Secret};
use std::fmt;
use std::path::PathBuf;
use url::Url;

/// The Telegram gateway for gorp: relays a Telegram bot's chats to gorpd and
/// the answers back. Every setting also reads a GORP_* environment variable
/// and a key in the --config file. Allow-list entries are Telegram user ids
/// (`12345`) or usernames (`@alice`).
#[derive(Parser)]
#[command(name = "gorp-telegram", version)]
pub(crate) struct Args {
    #[command(flatten)]
    pub(crate) common: CommonArgs,

    /// The bot token from @BotFather (looks like `123456:ABC-DEF...`).
    #[arg(long, env = "GORP_TELEGRAM_TOKEN", value_name = "TOKEN", hide_env_values = true)]
    pub(crate) telegram_token: String,

    /// The Bot API base URL; change it only for a local Bot API server or tests.
    #[arg(long, env = "GORP_TELEGRAM_API_URL", default_value = "https://api.telegram.org", value_name = "URL")]
    pub(crate) telegram_api_url: Url,

    /// The gateway's state directory: the streaming previews shown
    /// (`previews.db`), so that after a restart the answer replaces its
    /// preview. Keep it across restarts.
    #[arg(long, env = "GORP_TELEGRAM_STATE_DIR", default_value = "gorp-telegram-state", value_name = "DIR")]
    pub(crate) telegram_state_dir: PathBuf,
}

impl fmt::Debug for Args {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Args")
            .field("common", &self.common)
            .field("telegram_token", &Secret::new(""))
            .field("telegram_api_url", &self.telegram_api_url.as_str())
            .field("telegram_state_dir", &self.telegram_state_dir)
            .finish()
    }
}

impl Args {
    /// The `--allow` entries with `@names` lowercased (Telegram usernames
    /// compare case-insensitively).
    pub(crate) fn allowed(&self) -> Vec<String> {
        let entries = self.common.allowed().into_iter();
        entries.map(|e| if e.starts_with('@') { e.to_lowercase() } else { e }).collect()
    }

    /// The shared runner's settings.
    pub(crate) fn gateway(&self) -> Result<GatewayConfig, String> {
        let mut config = self.common.gateway_config(self.allowed())?;
        config.state_dir = Some(self.telegram_state_dir.clone());
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Args {
        let base = ["gorp-telegram", "--token", "gw-secret", "--telegram-token", "123:bot-secret"];
        Args::try_parse_from(base.iter().chain(args)).expect("valid flags")
    }

    #[test]
    fn defaults_and_allow_entries() {
        let args = parse(&["--allow", "42, @Alice,,"]);
        assert_eq!(args.common.gorpd, "http://127.0.0.1:7730");
        assert_eq!(args.telegram_api_url.as_str(), "https://api.telegram.org/");
        assert_eq!(args.allowed(), vec!["42".to_owned(), "@alice".to_owned()]);
        let config = args.gateway().unwrap();
        assert!(config.allow.allows("42") && config.allow.allows("@alice") && !config.allow.allows("7"));
        assert!(parse(&[]).gateway().unwrap().allow.allows("7"));
    }

    #[test]
    fn debug_never_shows_tokens() {
        let shown = format!("{:?}", parse(&[]));
        assert!(!shown.contains("gw-secret") && !shown.contains("bot-secret"), "{shown}");
    }
}
