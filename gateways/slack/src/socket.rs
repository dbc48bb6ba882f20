//! Socket Mode: the inbound half, one WebSocket to Slack at a time.
//!
//! [`SocketMode::run`] asks `apps.connections.open` (app-level token) for a
//! URL, connects, and reads envelopes until the socket closes, Slack sends a
//! `disconnect` (refresh_requested, warning, link_disabled: reconnect at
//! once) or the socket goes silent, then starts over with a fresh URL (with
//! [`Backoff`] after failures). A message envelope is acknowledged
//! (`{"envelope_id":…}`) only once the message is safe: on disk in the
//! gateway's spool (or, without one, acknowledged by gorpd); a task per
//! envelope awaits the [`gorp_gateway::AckHandle`] so the reader never
//! blocks on the disk or gorpd, and a message the spool refuses (full) is not
//! acknowledged, so Slack keeps it and retries; the ack goes out on the envelope's own connection if it
//! is still open (otherwise Slack redelivers it, and gorpd drops the
//! duplicate). A WebSocket ping goes out every `ping_interval`; when no frame
//! at all (pong, event, hello) arrived for three intervals the connection is
//! dropped as dead. slack-morphism's `SlackClientSocketModeListener` is not
//! used: it acks when the event callback returns and awaits that callback
//! inside the socket's reader, so waiting there for gorpd would stop the
//! reader (pongs unread, so its own pong-age check reconnects in a loop while
//! gorpd is down); its callbacks are plain `fn`s with state in a type map;
//! and a refused app-level token goes to an error handler rather than ending
//! the gateway with a clear message.

use crate::api::Api;
use crate::convert::{self, Envelope};
use crate::error::{Token, classify};
use futures::{SinkExt, StreamExt};
use gorp_gateway::{AckHandle, Backoff, BackoffConfig, ListenContext, PlatformError, SubmitError};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::Connector;
use tokio_tungstenite::tungstenite::Message;
use url::Url;

/// Missed ping intervals after which a silent socket counts as dead.
const SILENT_INTERVALS: u32 = 3;

/// The longest a WebSocket connect (TCP, TLS, upgrade) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// What ended one connection.
#[derive(Debug)]
enum End {
    /// The gateway is stopping.
    Stopped,
    /// Slack asked for a new connection, or the socket went silent: reconnect now.
    Reconnect(String),
    /// The connection failed or closed; reconnect after a backoff.
    Failed(String),
}

/// What one frame means for the connection.
enum Step {
    Continue,
    Hello,
    End(End),
}

/// Largest user file the gateway fetches from Slack (gorpd refuses more than its own limit anyway).
const FETCH_MAX_BYTES: u64 = 1024 * 1024 * 1024;

/// The Socket Mode reader of one running gateway.
pub(crate) struct SocketMode<'a> {
    pub(crate) api: &'a Api,
    pub(crate) cx: &'a ListenContext,
    pub(crate) tls: Arc<rustls::ClientConfig>,
    /// Our bot's user id: its own messages are skipped.
    pub(crate) bot_user: &'a str,
    pub(crate) ping_interval: Duration,
}

impl SocketMode<'_> {
    /// Connects and reconnects until the gateway stops; `Err` only when the
    /// app-level token is refused.
    pub(crate) async fn run(&self) -> Result<(), PlatformError> {
        let shutdown = self.cx.shutdown().clone();
        let mut backoff = Backoff::new(BackoffConfig::default());
        loop {
            let opened = tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                opened = self.api.open_connection() => opened.map_err(|e| classify(e, Token::App)),
            };
            let error = match opened {
                Ok(url) => match self.connection(url, &mut backoff).await {
                    End::Stopped => return Ok(()),
                    End::Reconnect(reason) => {
                        tracing::info!(%reason, "reconnecting to slack socket mode");
                        continue;
                    }
                    End::Failed(reason) => PlatformError::Transient(reason),
                },
                Err(fatal @ PlatformError::Fatal(_)) => return Err(fatal),
                Err(error) => error,
            };
            tracing::warn!(%error, "slack socket mode connection failed; retrying");
            if !backoff.wait_after(&error, &shutdown).await {
                return Ok(());
            }
        }
    }

    /// One WebSocket connection, from connect to its end.
    async fn connection(&self, url: Url, backoff: &mut Backoff) -> End {
        let shutdown = self.cx.shutdown();
        let connector = Some(Connector::Rustls(self.tls.clone()));
        let connect = tokio_tungstenite::connect_async_tls_with_config(url.as_str(), None, false, connector);
        let connected = tokio::select! {
            _ = shutdown.cancelled() => return End::Stopped,
            connected = tokio::time::timeout(CONNECT_TIMEOUT, connect) => connected,
        };
        let (mut sink, mut stream) = match connected {
            Ok(Ok((socket, _))) => socket.split(),
            Ok(Err(error)) => return End::Failed(format!("cannot open the socket mode connection: {error}")),
            Err(_) => return End::Failed(format!("no socket mode connection within {CONNECT_TIMEOUT:?}")),
        };
        let (acks, mut to_ack) = mpsc::unbounded_channel::<String>();
        let mut ping = tokio::time::interval_at(Instant::now() + self.ping_interval, self.ping_interval);
        ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut heard = Instant::now();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => {
                    let _ = sink.send(Message::Close(None)).await;
                    return End::Stopped;
                }
                frame = stream.next() => {
                    let step = match frame {
                        Some(Ok(Message::Text(text))) => self.frame(text.as_str(), &acks).await,
                        Some(Ok(Message::Close(frame))) => End::Failed(format!("slack closed the socket ({frame:?})")).into(),
                        Some(Ok(_)) => Step::Continue,
                        Some(Err(error)) => End::Failed(format!("socket mode connection lost: {error}")).into(),
                        None => End::Failed("socket mode connection closed".to_owned()).into(),
                    };
                    // Time spent handing a message to gorpd is not silence.
                    heard = Instant::now();
                    match step {
                        Step::Continue => {}
                        Step::Hello => backoff.reset(),
                        Step::End(end) => return end,
                    }
                }
                Some(envelope_id) = to_ack.recv() => {
                    let ack = serde_json::json!({ "envelope_id": envelope_id }).to_string();
                    if let Err(error) = sink.send(Message::text(ack)).await {
                        return End::Failed(format!("cannot acknowledge an envelope: {error}"));
                    }
                    tracing::debug!(%envelope_id, "envelope acknowledged");
                }
                _ = ping.tick() => {
                    let silent = heard.elapsed();
                    if silent >= self.ping_interval * SILENT_INTERVALS {
                        tracing::warn!(silent_for = ?silent, "slack socket mode connection went silent; reconnecting");
                        return End::Reconnect("silent socket".to_owned());
                    }
                    if let Err(error) = sink.send(Message::Ping(Default::default())).await {
                        return End::Failed(format!("cannot ping slack: {error}"));
                    }
                }
            }
        }
    }

    /// Handles one text frame; envelopes are acked through `acks`.
    async fn frame(&self, text: &str, acks: &mpsc::UnboundedSender<String>) -> Step {
        let Some(envelope) = convert::envelope(text) else {
            tracing::debug!("unreadable socket mode frame ignored");
            return Step::Continue;
        };
        match envelope.kind.as_str() {
            "hello" => {
                tracing::info!("connected to slack socket mode");
                return Step::Hello;
            }
            "disconnect" => {
                let reason = envelope.reason.unwrap_or_else(|| "unknown".to_owned());
                tracing::info!(%reason, "slack asked the gateway to reconnect");
                return End::Reconnect(format!("disconnect: {reason}")).into();
            }
            _ => {}
        }
        let Some(envelope_id) = envelope.envelope_id.clone() else { return Step::Continue };
        let Some(mut inbound) = self.inbound(&envelope) else {
            // Nothing for gorpd: acknowledge at once so Slack does not retry it.
            let _ = acks.send(envelope_id);
            return Step::Continue;
        };
        if envelope.kind == "events_api" {
            for file in convert::event_files(&envelope.payload) {
                match self.fetch(&inbound, file).await {
                    Ok(Some(uploaded)) => inbound.files.push(uploaded),
                    Ok(None) => {}
                    // Not acknowledged: Slack sends the envelope again, and its files are fetched then.
                    Err(()) => return Step::Continue,
                }
            }
        }
        tracing::debug!(channel = %inbound.channel_id, message = %inbound.message_id, retry = envelope.retry_attempt, "message from slack");
        match self.cx.submit(inbound).await {
            Ok(handle) => {
                tokio::spawn(ack_when_settled(handle, envelope_id, acks.clone()));
                Step::Continue
            }
            Err(_) => End::Stopped.into(),
        }
    }

    /// Fetches one file of a message with the bot token and uploads it to
    /// gorpd; `None` when it cannot be sent (its author is told why), `Err`
    /// when gorpd cannot take it now.
    async fn fetch(
        &self,
        inbound: &gorp_gateway::Inbound,
        file: convert::SlackFile,
    ) -> Result<Option<gorp_gateway::InboundFile>, ()> {
        let bytes = match self.api.download(&file.url, FETCH_MAX_BYTES).await {
            Ok(bytes) => bytes,
            Err(error) => {
                tracing::warn!(%error, file = %file.name, "cannot fetch a file from slack");
                self.cx.tell_file_refused(inbound, &file.name, "Slack did not hand it to the app").await;
                return Ok(None);
            }
        };
        match self.cx.upload(&file.name, &file.media_type, bytes).await {
            Ok(uploaded) => Ok(Some(uploaded)),
            Err(gorp_gateway::UploadError::Refused(reason)) => {
                self.cx.tell_file_refused(inbound, &file.name, &reason).await;
                Ok(None)
            }
            Err(error) => {
                tracing::warn!(%error, file = %file.name, "cannot upload a file to gorpd; slack will send it again");
                Err(())
            }
        }
    }

    /// The message for gorpd in an envelope, if any.
    fn inbound(&self, envelope: &Envelope) -> Option<gorp_gateway::Inbound> {
        match envelope.kind.as_str() {
            "events_api" => convert::event_message(&envelope.payload, self.bot_user),
            "interactive" => convert::click(&envelope.payload),
            _ => None,
        }
    }
}

impl From<End> for Step {
    fn from(end: End) -> Self {
        Self::End(end)
    }
}

/// Acknowledges `envelope_id` once gorpd settled its message; nothing if the
/// gateway stopped first (Slack redelivers it to the next run).
async fn ack_when_settled(handle: AckHandle, envelope_id: String, acks: mpsc::UnboundedSender<String>) {
    match handle.await {
        Ok(ack) => {
            tracing::debug!(%envelope_id, ?ack, "gorpd settled a slack message");
            // The connection may be gone; Slack then redelivers and gorpd de-duplicates.
            let _ = acks.send(envelope_id);
        }
        Err(error @ SubmitError::Spool(_)) => {
            tracing::warn!(%envelope_id, %error, "not acknowledging a slack message; slack will send it again")
        }
        Err(error) => tracing::debug!(%envelope_id, %error, "slack message not settled"),
    }
}
