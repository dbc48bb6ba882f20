//! The Web API calls the gateway makes, over slack-morphism's hyper client.
//!
//! Calls go to `{api_url}/{method}` with `Authorization: Bearer <token>`:
//! `auth.test` (GET) with the bot token, `apps.connections.open` (POST) with
//! the app-level token, `chat.postMessage` / `chat.update` (POST, JSON body)
//! with the bot token. The base URL is configurable so tests point it at a
//! fake server; the connector accepts `http://` for that. TLS uses rustls
//! with the ring provider passed explicitly (a workspace build links a second
//! provider, and rustls refuses to guess). Errors come back as slack-morphism's
//! `SlackClientError` for [`crate::error`] to classify; a call that takes
//! longer than [`REQUEST_TIMEOUT`] fails like a network error (hyper's client
//! has no deadline of its own).

use slack_morphism::errors::{SlackClientError, SlackClientSystemError};
use slack_morphism::prelude::*;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use url::Url;

/// The longest a Web API call may take.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The HTTP connector: rustls (ring) over hyper, `https://` or `http://`.
type Connector =
    SlackClientHyperConnector<hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>>;

/// The plain HTTP client that fetches users' files (`url_private_download`).
type Downloads = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    http_body_util::Empty<bytes::Bytes>,
>;

/// One Slack app's Web API client.
#[derive(Clone)]
pub(crate) struct Api {
    client: Arc<SlackClient<Connector>>,
    downloads: Downloads,
    bot: SlackApiToken,
    app: SlackApiToken,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api").finish_non_exhaustive()
    }
}

/// Who the bot is, from `auth.test`.
#[derive(Debug, Clone)]
pub(crate) struct Identity {
    /// The bot user's id (`U…`).
    pub(crate) user_id: String,
    /// The workspace name.
    pub(crate) team: String,
}

/// A new message to post.
#[derive(Debug)]
pub(crate) struct NewMessage<'a> {
    pub(crate) channel: &'a str,
    pub(crate) text: &'a str,
    /// The thread to post in; `None` posts top-level.
    pub(crate) thread_ts: Option<&'a str>,
    pub(crate) blocks: Option<Vec<SlackBlock>>,
}

/// The TLS settings for the Web API and the Socket Mode WebSocket: the
/// system's roots, the ring provider.
pub(crate) fn tls_config() -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    let (added, _) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        tracing::warn!(errors = ?found.errors, "no system root certificates found; https:// will fail");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| format!("TLS setup failed: {error}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}

impl Api {
    /// A client at `api_url` (`https://slack.com/api` in production) with the
    /// bot token (`xoxb-`) and the app-level token (`xapp-`).
    pub(crate) fn new(bot_token: &str, app_token: &str, api_url: &Url, tls: rustls::ClientConfig) -> Self {
        let https =
            hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls).https_or_http().enable_http1().build();
        let downloads =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build(https.clone());
        // slack-morphism appends `/{method}` itself.
        let base = api_url.as_str().trim_end_matches('/');
        let connector = SlackClientHyperConnector::with_connector(https).with_slack_api_url(base);
        Self {
            client: Arc::new(SlackClient::new(connector)),
            downloads,
            bot: SlackApiToken::new(bot_token.into()),
            app: SlackApiToken::new(app_token.into()),
        }
    }

    /// `auth.test` with the bot token: who the bot is.
    pub(crate) async fn auth_test(&self) -> Result<Identity, SlackClientError> {
        let me = timed(self.client.open_session(&self.bot).auth_test()).await?;
        Ok(Identity { user_id: me.user_id.to_string(), team: me.team })
    }

    /// `apps.connections.open` with the app-level token: a fresh Socket Mode URL.
    pub(crate) async fn open_connection(&self) -> Result<Url, SlackClientError> {
        let request = SlackApiAppsConnectionOpenRequest::new();
        let opened = timed(self.client.open_session(&self.app).apps_connections_open(&request)).await?;
        Ok(opened.url.0)
    }

    /// `chat.postMessage`; returns the new message's `ts`.
    pub(crate) async fn post(&self, message: NewMessage<'_>) -> Result<String, SlackClientError> {
        let content = SlackMessageContent::new().with_text(message.text.to_owned());
        let content = match message.blocks {
            Some(blocks) => content.with_blocks(blocks),
            None => content,
        };
        let request = SlackApiChatPostMessageRequest::new(message.channel.into(), content)
            .opt_thread_ts(message.thread_ts.map(|ts| SlackTs::new(ts.to_owned())));
        let posted = timed(self.client.open_session(&self.bot).chat_post_message(&request)).await?;
        Ok(posted.ts.to_string())
    }

    /// The bytes of a user's file at its `url_private_download`, fetched with
    /// the bot token (Slack requires it); at most `max_bytes`.
    pub(crate) async fn download(&self, url: &str, max_bytes: u64) -> Result<Vec<u8>, String> {
        use http_body_util::BodyExt;
        let request = hyper::Request::get(url)
            .header("authorization", format!("Bearer {}", self.bot.token_value.0))
            .body(http_body_util::Empty::new())
            .map_err(|error| error.to_string())?;
        let fetch = async {
            let response = self.downloads.request(request).await.map_err(|error| error.to_string())?;
            if !response.status().is_success() {
                return Err(format!("slack answered {}", response.status()));
            }
            let body = http_body_util::Limited::new(response.into_body(), max_bytes as usize);
            let bytes = body.collect().await.map_err(|error| error.to_string())?.to_bytes();
            Ok(bytes.to_vec())
        };
        tokio::time::timeout(REQUEST_TIMEOUT, fetch).await.unwrap_or_else(|_| Err("no answer from slack".to_owned()))
    }

    /// Shares `file` in `channel` (in `thread_ts`, if given) through Slack's
    /// upload flow: `files.getUploadURLExternal`, the bytes to its upload URL,
    /// `files.completeUploadExternal`. Returns the file's id.
    pub(crate) async fn upload(
        &self,
        channel: &str,
        thread_ts: Option<&str>,
        file: &gorp_gateway::OutboundFile,
    ) -> Result<String, SlackClientError> {
        let session = self.client.open_session(&self.bot);
        let request = SlackApiFilesGetUploadUrlExternalRequest::new(file.name.clone(), file.bytes.len());
        let target = timed(session.get_upload_url_external(&request)).await?;
        let bytes =
            SlackApiFilesUploadViaUrlRequest::new(target.upload_url, file.bytes.to_vec(), file.media_type.clone());
        timed(session.files_upload_via_url(&bytes)).await?;
        let shared = SlackApiFilesComplete::new(target.file_id.clone()).with_title(file.name.clone());
        let complete = SlackApiFilesCompleteUploadExternalRequest::new(vec![shared])
            .with_channel_id(channel.into())
            .opt_thread_ts(thread_ts.map(|ts| SlackTs::new(ts.to_owned())));
        timed(session.files_complete_upload_external(&complete)).await?;
        Ok(target.file_id.to_string())
    }

    /// `chat.update`: replaces the text of the bot's message `ts` (and drops
    /// any blocks, which only pending permission prompts carry).
    pub(crate) async fn update(&self, channel: &str, ts: &str, text: &str) -> Result<(), SlackClientError> {
        let content = SlackMessageContent::new().with_text(text.to_owned());
        let request = SlackApiChatUpdateRequest::new(channel.into(), content, SlackTs::new(ts.to_owned()));
        timed(self.client.open_session(&self.bot).chat_update(&request)).await.map(drop)
    }
}

/// `call`, failing as a system error after [`REQUEST_TIMEOUT`].
async fn timed<T>(call: impl Future<Output = Result<T, SlackClientError>>) -> Result<T, SlackClientError> {
    tokio::time::timeout(REQUEST_TIMEOUT, call).await.unwrap_or_else(|_| {
        let message = format!("no answer from slack within {REQUEST_TIMEOUT:?}");
        Err(SlackClientError::SystemError(SlackClientSystemError::new().with_message(message)))
    })
}
