//! [`Slack`]: the gateway's [`Platform`], Socket Mode in, Web API calls out.
//!
//! `listen` checks the bot token with `auth.test` (learning the bot's user
//! id), then runs [`SocketMode`] until shutdown. Each Slack channel, private
//! channel, group DM or DM (`C…`, `G…`, `D…`) is one gorp channel; the sender
//! is the Slack user id. `deliver` posts with `chat.postMessage`, in the
//! thread named by `in_reply_to` (see [`convert::reply_thread`]), with Approve
//! / Deny buttons on a pending permission request; `edit` uses `chat.update`.
//! Text is escaped for Slack (`&`, `<`, `>`). Messages are capped at 4000 characters: Slack truncates `text` past 40 000
//! but recommends at most 4000, and longer messages render poorly. Calls to
//! one channel are paced at Slack's documented rate for `chat.postMessage`
//! (about one per second per channel, short bursts allowed), which the
//! runner applies to posts and updates alike.

use crate::api::{Api, Identity, NewMessage};
use crate::convert;
use crate::error::{Token, classify};
use crate::socket::SocketMode;
use gorp_gateway::{
    Backoff, BackoffConfig, Delivered, Edit, Limits, ListenContext, Outbound, Platform, PlatformError, Rate,
    SentMessages,
};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Largest file the app shares (Slack takes up to 1 GB; gorpd's own limit is lower).
const MAX_FILE_BYTES: u64 = 1024 * 1024 * 1024;
/// The longest message the gateway sends, in characters (Slack's recommendation).
pub(crate) const MAX_CHARS: usize = 4000;

/// Calls per channel: a burst of 3, then one per second.
const CHANNEL_RATE: Rate = Rate::new(3, Duration::from_secs(1));

/// What `Slack` needs besides the tokens.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) api_url: url::Url,
    pub(crate) ping_interval: Duration,
}

/// The Slack platform.
#[derive(Debug)]
pub(crate) struct Slack {
    api: Api,
    tls: Arc<rustls::ClientConfig>,
    ping_interval: Duration,
    /// Outbound ids already posted: `chat.postMessage` has no idempotency key.
    sent: SentMessages,
}

impl Slack {
    /// An app with the bot token (`xoxb-`) and app-level token (`xapp-`).
    pub(crate) fn new(bot_token: &str, app_token: &str, settings: &Settings) -> Result<Self, String> {
        let tls = crate::api::tls_config()?;
        Ok(Self {
            api: Api::new(bot_token, app_token, &settings.api_url, tls.clone()),
            tls: Arc::new(tls),
            ping_interval: settings.ping_interval,
            sent: SentMessages::default(),
        })
    }

    /// `auth.test` until it answers; a refused bot token is fatal.
    async fn check_token(&self, shutdown: &CancellationToken) -> Result<Option<Identity>, PlatformError> {
        let mut backoff = Backoff::new(BackoffConfig::default());
        loop {
            let error = match self.api.auth_test().await.map_err(|e| classify(e, Token::Bot)) {
                Ok(me) => {
                    tracing::info!(bot_user = %me.user_id, team = %me.team, "slack accepted the bot token");
                    return Ok(Some(me));
                }
                Err(fatal @ PlatformError::Fatal(_)) => return Err(fatal),
                Err(PlatformError::Rejected(why)) => {
                    return Err(PlatformError::Fatal(format!(
                        "slack refused auth.test ({why}); check --slack-api-url"
                    )));
                }
                Err(error) => error,
            };
            tracing::warn!(%error, "cannot reach the Slack Web API; retrying");
            if !backoff.wait_after(&error, shutdown).await {
                return Ok(None);
            }
        }
    }

    /// The thread to post `msg` in: the one of the message it answers, if
    /// that was in a thread (the runner passes `in_reply_to` only in the
    /// channel of that message, for previews as for finals).
    fn thread(&self, msg: &Outbound) -> Option<String> {
        msg.in_reply_to.as_deref().and_then(convert::reply_thread).map(str::to_owned)
    }
}

impl Platform for Slack {
    const NAME: &'static str = "slack";

    fn limits(&self) -> Limits {
        Limits { max_chars: MAX_CHARS, edits: true }
    }

    async fn listen(&self, cx: ListenContext) -> Result<(), PlatformError> {
        let Some(me) = self.check_token(cx.shutdown()).await? else { return Ok(()) };
        let socket = SocketMode {
            api: &self.api,
            cx: &cx,
            tls: self.tls.clone(),
            bot_user: &me.user_id,
            ping_interval: self.ping_interval,
        };
        socket.run().await
    }

    async fn deliver(&self, msg: Outbound) -> Result<Delivered, PlatformError> {
        if let Some(ts) = self.sent.get(&msg.id) {
            return Ok(Delivered { message_id: ts });
        }
        if msg.channel_id.is_empty() {
            return Err(PlatformError::Rejected("empty slack channel id".to_owned()));
        }
        let thread = self.thread(&msg);
        if let Some(file) = &msg.file {
            let id =
                self.api.upload(&msg.channel_id, thread.as_deref(), file).await.map_err(|e| classify(e, Token::Bot))?;
            self.sent.record(&msg.id, &id);
            return Ok(Delivered { message_id: id });
        }
        let text = convert::escape(&msg.text);
        let message = NewMessage {
            channel: &msg.channel_id,
            text: &text,
            thread_ts: thread.as_deref(),
            blocks: msg.permission.as_ref().and_then(|prompt| convert::blocks(&msg.text, prompt)),
        };
        let ts = self.api.post(message).await.map_err(|e| classify(e, Token::Bot))?;
        self.sent.record(&msg.id, &ts);
        Ok(Delivered { message_id: ts })
    }

    async fn edit(&self, edit: Edit) -> Result<(), PlatformError> {
        let text = convert::escape(&edit.text);
        self.api.update(&edit.channel_id, &edit.message_id, &text).await.map_err(|e| classify(e, Token::Bot))
    }

    fn max_file_bytes(&self) -> u64 {
        MAX_FILE_BYTES
    }

    fn channel_rates(&self, _channel_id: &str) -> Vec<Rate> {
        vec![CHANNEL_RATE]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gorp_gateway::OutboundKind;

    fn slack() -> Slack {
        let settings =
            Settings { api_url: "http://127.0.0.1:9/api/".parse().unwrap(), ping_interval: Duration::from_secs(1) };
        Slack::new("xoxb-test", "xapp-test", &settings).expect("tls setup with the ring provider")
    }

    fn outbound(id: &str, in_reply_to: Option<&str>) -> Outbound {
        Outbound {
            id: id.into(),
            channel_id: "C1".into(),
            text: "hi".into(),
            kind: OutboundKind::Complete,
            session: "s".into(),
            in_reply_to: in_reply_to.map(Into::into),
            piece: (0, 1),
            permission: None,
            file: None,
        }
    }

    #[test]
    fn answers_go_where_the_question_was() {
        let slack = slack();
        assert_eq!(slack.thread(&outbound("r/C1/0", Some("2.2@1.1"))).as_deref(), Some("1.1"));
        assert_eq!(slack.thread(&outbound("r/C1/0", Some("2.2"))), None);
        assert_eq!(slack.thread(&outbound("r/C1/0", Some("action-3.3"))), None);
    }
}
