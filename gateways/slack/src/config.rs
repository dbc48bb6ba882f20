//! `gorp-slack`'s settings: the shared gateway flags plus the app's own,
//! each with a `GORP_*` env var and a key in the `--config` file.
//!
//! Tokens are kept out of `Debug` output. [`Args::gateway`] builds the shared
//! runner's [`GatewayConfig`], [`Args::slack`] the platform's own settings.

use crate::platform::Settings;
use clap::Parser;
use gorp_gateway::cli::{CommonArgs, SpoolArgs};
use gorp_gateway::{GatewayConfig, Secret};
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;
use url::Url;

/// The Slack gateway for gorp: relays a Slack app's channels and DMs (Socket
/// Mode) to gorpd and the answers back. Every setting also reads a GORP_*
/// environment variable and a key in the --config file. Allow-list entries
/// are Slack user ids (`U012ABC`).
#[derive(Parser)]
#[command(name = "gorp-slack", version)]
pub(crate) struct Args {
    #[command(flatten)]
    pub(crate) common: CommonArgs,

    /// The app's bot token (`xoxb-…`, OAuth & Permissions); needs the
    /// chat:write scope and the message / app_mention event subscriptions.
    #[arg(long, env = "GORP_SLACK_BOT_TOKEN", value_name = "TOKEN", hide_env_values = true)]
    pub(crate) slack_bot_token: String,

    /// The app-level token (`xapp-…`, Basic Information) with the
    /// connections:write scope, for Socket Mode.
    #[arg(long, env = "GORP_SLACK_APP_TOKEN", value_name = "TOKEN", hide_env_values = true)]
    pub(crate) slack_app_token: String,

    /// The Web API base URL; change it only for tests.
    #[arg(long, env = "GORP_SLACK_API_URL", default_value = "https://slack.com/api/", value_name = "URL")]
    pub(crate) slack_api_url: Url,

    /// Seconds between WebSocket pings; a socket silent for three intervals is replaced.
    #[arg(long, env = "GORP_SLACK_PING_INTERVAL_SECS", default_value_t = 10, value_name = "SECS",
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub(crate) slack_ping_interval_secs: u64,

    /// The gateway's state directory: the spool of messages acknowledged to
    /// Slack but not yet to gorpd (`spool.db`) and the streaming previews
    /// shown (`previews.db`). Keep it across restarts.
    #[arg(long, env = "GORP_SLACK_STATE_DIR", default_value = "gorp-slack-state", value_name = "DIR")]
    pub(crate) slack_state_dir: PathBuf,

    #[command(flatten)]
    pub(crate) spool: SpoolArgs,
}

impl fmt::Debug for Args {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Args")
            .field("common", &self.common)
            .field("slack_bot_token", &Secret::new(""))
            .field("slack_app_token", &Secret::new(""))
            .field("slack_api_url", &self.slack_api_url.as_str())
            .field("slack_ping_interval_secs", &self.slack_ping_interval_secs)
            .field("slack_state_dir", &self.slack_state_dir)
            .field("spool", &self.spool)
            .finish()
    }
}

impl Args {
    /// The Slack platform's settings.
    pub(crate) fn slack(&self) -> Settings {
        Settings {
            api_url: self.slack_api_url.clone(),
            ping_interval: Duration::from_secs(self.slack_ping_interval_secs),
        }
    }

    /// The shared runner's settings, with the spool in the state directory.
    pub(crate) fn gateway(&self) -> Result<GatewayConfig, String> {
        let mut config = self.common.gateway_config(self.common.allowed())?;
        config.spool = Some(self.spool.config(self.slack_state_dir.clone()));
        config.state_dir = Some(self.slack_state_dir.clone());
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Args {
        let base = [
            "gorp-slack",
            "--token",
            "gw-secret",
            "--slack-bot-token",
            "xoxb-secret",
            "--slack-app-token",
            "xapp-secret",
        ];
        Args::try_parse_from(base.iter().chain(args)).expect("valid flags")
    }

    #[test]
    fn defaults_and_allow_entries() {
        let args = parse(&["--allow", "U1, U2,,"]);
        assert_eq!(args.common.gorpd, "http://127.0.0.1:7730");
        assert_eq!(args.slack_api_url.as_str(), "https://slack.com/api/");
        assert_eq!(args.slack().ping_interval, Duration::from_secs(10));
        assert_eq!(args.common.allowed(), vec!["U1".to_owned(), "U2".to_owned()]);
        let config = args.gateway().unwrap();
        assert!(config.allow.allows("U1") && config.allow.allows("U2") && !config.allow.allows("U3"));
        assert!(parse(&[]).gateway().unwrap().allow.allows("U3"));
        let spool = config.spool.expect("slack spools");
        assert_eq!((spool.dir.to_str(), spool.max_entries), (Some("gorp-slack-state"), 10_000));
    }

    #[test]
    fn spool_bounds_are_settings_and_zero_is_refused() {
        let spool =
            parse(&["--slack-state-dir", "/var/lib/gorp-slack", "--spool-max-messages", "5"]).gateway().unwrap().spool;
        let spool = spool.unwrap();
        assert_eq!((spool.dir.to_str(), spool.max_entries), (Some("/var/lib/gorp-slack"), 5));
        let base = ["gorp-slack", "--token", "t", "--slack-bot-token", "b", "--slack-app-token", "a"];
        assert!(Args::try_parse_from(base.iter().chain(&["--spool-max-messages", "0"])).is_err());
    }

    #[test]
    fn a_zero_ping_interval_is_refused() {
        let base = ["gorp-slack", "--token", "t", "--slack-bot-token", "b", "--slack-app-token", "a"];
        assert!(Args::try_parse_from(base.iter().chain(&["--slack-ping-interval-secs", "0"])).is_err());
    }

    #[test]
    fn debug_never_shows_tokens() {
        let shown = format!("{:?}", parse(&[]));
        assert!(!shown.contains("secret"), "{shown}");
    }
}
