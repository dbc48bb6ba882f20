//! `gorp-telegram`'s settings: flags, each with a `GORP_*` env var.
//!
//! Flags win over env vars. Tokens are kept out of `Debug` output.
//! [`Args::gateway`] builds the shared runner's [`GatewayConfig`].

use clap::Parser;
use gorp_gateway::{AllowList, GatewayConfig, Secret};
use std::fmt;
use url::Url;

/// The Telegram gateway for gorp: relays a Telegram bot's chats to gorpd and
/// the answers back. Every setting also reads a GORP_* environment variable.
#[derive(Parser)]
#[command(name = "gorp-telegram", version)]
pub(crate) struct Args {
    /// gorpd's gRPC URL (http:// or https://).
    #[arg(long, env = "GORP_GORPD", default_value = "http://127.0.0.1:7730", value_name = "URL")]
    pub(crate) gorpd: String,

    /// The gateway token for gorpd, made with `gorpctl token create NAME --gateway telegram`.
    #[arg(long, env = "GORP_TOKEN", value_name = "TOKEN", hide_env_values = true)]
    pub(crate) token: String,

    /// The bot token from @BotFather (looks like `123456:ABC-DEF...`).
    #[arg(long, env = "GORP_TELEGRAM_TOKEN", value_name = "TOKEN", hide_env_values = true)]
    pub(crate) telegram_token: String,

    /// The Bot API base URL; change it only for a local Bot API server or tests.
    #[arg(long, env = "GORP_TELEGRAM_API_URL", default_value = "https://api.telegram.org", value_name = "URL")]
    pub(crate) telegram_api_url: Url,

    /// The id gorpd keeps a delivery cursor for; give each instance its own
    /// when several run for one gorpd [default: telegram].
    #[arg(long, env = "GORP_GATEWAY_ID", value_name = "ID")]
    pub(crate) gateway_id: Option<String>,

    /// Who may use the bot: comma-separated Telegram user ids (`12345`) or
    /// usernames (`@alice`). Empty lets everyone in; others are told they are
    /// not allowed and nothing reaches gorpd.
    #[arg(long, env = "GORP_ALLOW", value_name = "USERS", value_delimiter = ',')]
    pub(crate) allow: Vec<String>,
}

impl fmt::Debug for Args {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Args")
            .field("gorpd", &self.gorpd)
            .field("token", &Secret::new(""))
            .field("telegram_token", &Secret::new(""))
            .field("telegram_api_url", &self.telegram_api_url.as_str())
            .field("gateway_id", &self.gateway_id)
            .field("allow", &self.allow)
            .finish()
    }
}

impl Args {
    /// The `--allow` entries, trimmed, without empties; `@names` lowercased.
    pub(crate) fn allowed(&self) -> Vec<String> {
        let entries = self.allow.iter().map(|e| e.trim()).filter(|e| !e.is_empty());
        entries.map(|e| if e.starts_with('@') { e.to_lowercase() } else { e.to_owned() }).collect()
    }

    /// The shared runner's settings.
    pub(crate) fn gateway(&self) -> GatewayConfig {
        let mut config = GatewayConfig::new(self.token.clone()).gorpd(self.gorpd.clone());
        config.gateway_id = self.gateway_id.clone();
        let allowed = self.allowed();
        if !allowed.is_empty() {
            config.allow = AllowList::only(allowed);
        }
        config
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
        assert_eq!(args.gorpd, "http://127.0.0.1:7730");
        assert_eq!(args.telegram_api_url.as_str(), "https://api.telegram.org/");
        assert_eq!(args.allowed(), vec!["42".to_owned(), "@alice".to_owned()]);
        let config = args.gateway();
        assert!(config.allow.allows("42") && config.allow.allows("@alice") && !config.allow.allows("7"));
        assert!(parse(&[]).gateway().allow.allows("7"));
    }

    #[test]
    fn debug_never_shows_tokens() {
        let shown = format!("{:?}", parse(&[]));
        assert!(!shown.contains("gw-secret") && !shown.contains("bot-secret"), "{shown}");
    }
}
