//! The outbound half: final responses and streaming previews to the platform.
//!
//! Owned by the subscription loop and kept across reconnects. A final response
//! is split at the platform's limit and delivered piece by piece (waiting out
//! rate limits) before its seq is acked; steps already done and seqs already
//! delivered are remembered, so a replay after a reconnect repeats nothing.
//! Text chunks become one preview message per channel, edited in place at most
//! once per `edit_interval` and only when the channel's pacing has room now;
//! the final text always replaces it. Every call goes through [`Paced`].
//! With a state directory, previews are also recorded in [`SavedPreviews`],
//! so after a restart of the gateway the replayed final (or, after a restart
//! of gorpd, the interruption notice for the same question) replaces the
//! preview left behind instead of adding a second message.

use super::convert;
use super::paced::Paced;
use super::retry::{Outcome, retry, retry_at_most};
use super::saved::{SavedPreviews, question_key};
use crate::backoff::BackoffConfig;
use crate::chunking::split_message;
use crate::files::{FetchedFiles, FileLink, human_size};
use crate::platform::{Edit, Limits, Outbound, OutboundKind, Platform, PlatformError};
use gorp_proto::v1 as pb;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// Transient failures after which the final edit of a preview is given up
/// and the answer sent as a new message instead.
const EDIT_ATTEMPTS: u32 = 5;
use tokio_util::sync::CancellationToken;

/// A preview nobody has touched for this long is forgotten (its final never came).
const PREVIEW_IDLE: Duration = Duration::from_secs(15 * 60);

/// The streaming preview of one response.
#[derive(Debug)]
struct Preview {
    text: String,
    session: String,
    targets: Vec<String>,
    /// The message the answer is for (a reply only in its own channel).
    reply_to: Option<pb::MessageRef>,
    /// Platform message id of the preview, per channel.
    messages: HashMap<String, String>,
    /// Channels where previews failed; their final is sent as new messages.
    failed: HashSet<String>,
    dirty: bool,
    last_flush: Option<Instant>,
    not_before: Instant,
    touched: Instant,
}

impl Preview {
    fn due(&self, interval: Duration) -> Option<Instant> {
        let earliest = self.last_flush.map_or(self.not_before, |t| (t + interval).max(self.not_before));
        self.dirty.then_some(earliest)
    }
}

/// Outbound state of one runner.
pub(crate) struct Outbox<P> {
    platform: Arc<Paced<P>>,
    limits: Limits,
    edit_interval: Duration,
    backoff: BackoffConfig,
    previews: HashMap<String, Preview>,
    /// Highest seq this process delivered; replays up to it are only acked.
    delivered_through: u64,
    /// Steps (response/channel/piece) of an unfinished final that are done.
    done_steps: HashSet<String>,
    /// Previews on disk, when the gateway has a state directory.
    saved: Option<SavedPreviews>,
    /// gorpd's files, to send a response's attachments (none: sent as links).
    files: Option<FileLink>,
    /// The current response's files, fetched once for all its channels.
    fetched: FetchedFiles,
}

impl<P: Platform> Outbox<P> {
    pub(crate) fn new(platform: Arc<Paced<P>>, edit_interval: Duration, backoff: BackoffConfig) -> Self {
        let limits = platform.platform().limits();
        Self {
            platform,
            limits,
            edit_interval,
            backoff,
            previews: HashMap::new(),
            delivered_through: 0,
            done_steps: HashSet::new(),
            saved: None,
            files: None,
            fetched: FetchedFiles::default(),
        }
    }

    /// Sends responses' files through `files`.
    pub(crate) fn with_files(mut self, files: FileLink) -> Self {
        self.files = Some(files);
        self
    }

    /// Keeps previews in `saved` too, so they survive restarts.
    pub(crate) fn with_saved(mut self, saved: SavedPreviews) -> Self {
        self.saved = Some(saved);
        self
    }

    /// Highest seq this process delivered.
    pub(crate) fn delivered_through(&self) -> u64 {
        self.delivered_through
    }

    /// Delivers a final response everywhere it goes. `Ok(true)` when it is
    /// handled and may be acked; `Ok(false)` when `stop` interrupted it.
    pub(crate) async fn deliver_final(
        &mut self,
        response: &pb::Response,
        stop: &CancellationToken,
    ) -> Result<bool, PlatformError> {
        if response.seq <= self.delivered_through {
            tracing::debug!(seq = response.seq, "replayed response already delivered; acking only");
            return Ok(true);
        }
        let question = ends_its_question(response).then(|| question_key(response.reply_to.as_ref())).flatten();
        let preview = self.take_preview(&response.response_id, question.as_deref());
        let text = if response.text.trim().is_empty() { "(empty response)" } else { response.text.as_str() };
        // A response of only files needs no "(empty response)" before them.
        let pieces = match response.text.trim().is_empty() && !response.attachments.is_empty() {
            true => Vec::new(),
            false => split_message(text, self.limits.max_chars),
        };
        for channel in convert::channel_ids(P::NAME, &response.targets) {
            let shown = preview.as_ref().and_then(|p| p.messages.get(&channel)).cloned();
            let saved = self.saved.as_ref().and_then(|s| s.find(&response.response_id, question.as_deref(), &channel));
            let preview_id = shown.or(saved);
            for (i, piece) in pieces.iter().enumerate() {
                let step = format!("{}/{channel}/{i}", response.response_id);
                if self.done_steps.contains(&step) {
                    continue;
                }
                let outbound = self.outbound(response, &channel, piece, (i, pieces.len()), step.clone());
                let replace = if i == 0 { preview_id.clone() } else { None };
                if !self.send_step(outbound, replace, stop).await? {
                    return Ok(false);
                }
                self.done_steps.insert(step);
            }
            if !self.deliver_files(response, &channel, stop).await? {
                return Ok(false);
            }
            self.forget_saved(&response.response_id, question.as_deref(), &channel).await;
        }
        self.done_steps.clear();
        self.delivered_through = response.seq;
        tracing::debug!(seq = response.seq, pieces = pieces.len(), "response delivered");
        Ok(true)
    }

    /// Sends each file of `response` to `channel` after its text: the file
    /// itself when the platform takes it, else a link. `false` if stopped.
    async fn deliver_files(
        &mut self,
        response: &pb::Response,
        channel: &str,
        stop: &CancellationToken,
    ) -> Result<bool, PlatformError> {
        let max_file_bytes = self.platform.platform().max_file_bytes();
        for (i, attachment) in response.attachments.iter().enumerate() {
            let step = format!("{}/{channel}/file/{i}", response.response_id);
            if self.done_steps.contains(&step) {
                continue;
            }
            let mut outbound = self.outbound(response, channel, &attachment.name, (0, 1), step.clone());
            outbound.permission = None;
            match &self.files {
                Some(files) if attachment.size <= max_file_bytes => {
                    let file = self.fetched.get(files, &response.response_id, attachment).await;
                    match file {
                        Ok(file) => outbound.file = Some(file),
                        Err(error) if error.code() == Some(tonic::Code::NotFound) => {
                            outbound.text = format!("📎 {} is no longer stored in gorp", attachment.name);
                        }
                        Err(error) => {
                            return Err(PlatformError::Transient(format!("fetching a file from gorpd: {error}")));
                        }
                    }
                }
                Some(files) => outbound.text = files.link_text(attachment, P::NAME),
                None => outbound.text = format!("📎 {} ({})", attachment.name, human_size(attachment.size)),
            }
            if !self.send_step(outbound, None, stop).await? {
                return Ok(false);
            }
            self.done_steps.insert(step);
        }
        Ok(true)
    }

    /// The live preview of `response_id`, or of the turn that asked `question`.
    fn take_preview(&mut self, response_id: &str, question: Option<&str>) -> Option<Preview> {
        if let Some(preview) = self.previews.remove(response_id) {
            return Some(preview);
        }
        let question = question?;
        let earlier =
            self.previews.iter().find(|(_, p)| question_key(p.reply_to.as_ref()).as_deref() == Some(question));
        let earlier = earlier.map(|(id, _)| id.clone())?;
        self.previews.remove(&earlier)
    }

    async fn forget_saved(&mut self, response_id: &str, question: Option<&str>, channel: &str) {
        let Some(saved) = &mut self.saved else { return };
        if let Err(error) = saved.forget(response_id, question, channel).await {
            tracing::warn!(%error, %channel, "cannot forget a streaming preview on disk");
        }
    }

    async fn save_preview(
        &mut self,
        response_id: &str,
        channel: &str,
        message_id: &str,
        reply_to: Option<&pb::MessageRef>,
    ) {
        let Some(saved) = &mut self.saved else { return };
        if let Err(error) = saved.record(response_id, channel, message_id, question_key(reply_to)).await {
            tracing::warn!(%error, %channel, "cannot record a streaming preview on disk; a restart would leave it behind");
        }
    }

    fn outbound(&self, r: &pb::Response, channel: &str, text: &str, piece: (usize, usize), id: String) -> Outbound {
        Outbound {
            id,
            channel_id: channel.to_owned(),
            text: text.to_owned(),
            kind: convert::kind(r.kind),
            session: r.session.clone(),
            in_reply_to: convert::reply_in(P::NAME, channel, r.reply_to.as_ref()),
            piece,
            permission: if piece.0 == 0 { convert::permission(r.permission.as_ref()) } else { None },
            file: None,
        }
    }

    /// Sends one piece, as an edit of the preview `replace` when there is one
    /// (falling back to a new message if the edit is refused). `false` if stopped.
    async fn send_step(
        &self,
        outbound: Outbound,
        replace: Option<String>,
        stop: &CancellationToken,
    ) -> Result<bool, PlatformError> {
        if let Some(message_id) = replace {
            let edit = Edit { channel_id: outbound.channel_id.clone(), message_id, text: outbound.text.clone() };
            let editing = retry_at_most("edit", self.backoff, stop, EDIT_ATTEMPTS, || self.platform.edit(edit.clone()));
            match editing.await? {
                Outcome::Done(()) => return Ok(true),
                Outcome::Stopped => return Ok(false),
                Outcome::Rejected(reason) => tracing::info!(%reason, "final edit failed; sending a new message"),
            }
        }
        match retry("deliver", self.backoff, stop, || self.platform.deliver(outbound.clone())).await? {
            Outcome::Done(_) => Ok(true),
            Outcome::Stopped => Ok(false),
            Outcome::Rejected(reason) => {
                tracing::warn!(channel = %outbound.channel_id, id = %outbound.id, %reason, "the platform refused a message; skipping it");
                Ok(true)
            }
        }
    }

    /// Adds a streamed chunk to its preview (shown at the next due flush).
    pub(crate) fn chunk(&mut self, chunk: pb::Chunk) {
        if !self.limits.edits || !convert::is_text(&chunk) || chunk.text.is_empty() {
            return;
        }
        let now = Instant::now();
        self.previews.retain(|_, p| now.duration_since(p.touched) < PREVIEW_IDLE);
        let targets = convert::channel_ids(P::NAME, &chunk.targets);
        // A preview this gateway showed before a restart goes on being edited.
        let shown: HashMap<String, String> = match &self.saved {
            Some(saved) => {
                targets.iter().filter_map(|c| Some((c.clone(), saved.find(&chunk.response_id, None, c)?))).collect()
            }
            None => HashMap::new(),
        };
        let preview = self.previews.entry(chunk.response_id).or_insert_with(|| Preview {
            text: String::new(),
            session: chunk.session,
            targets,
            reply_to: chunk.reply_to,
            messages: shown,
            failed: HashSet::new(),
            dirty: false,
            last_flush: None,
            not_before: now,
            touched: now,
        });
        preview.text.push_str(&chunk.text);
        preview.dirty = true;
        preview.touched = now;
    }

    /// When the next preview flush is due, if any is.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        self.previews.values().filter_map(|p| p.due(self.edit_interval)).min()
    }

    /// Flushes every preview that is due.
    pub(crate) async fn flush_due(&mut self) {
        let now = Instant::now();
        let due: Vec<String> = self
            .previews
            .iter()
            .filter(|(_, p)| p.due(self.edit_interval).is_some_and(|t| t <= now))
            .map(|(id, _)| id.clone())
            .collect();
        for response_id in due {
            self.flush(&response_id).await;
        }
    }

    /// Shows a preview's current text in each of its channels (best effort).
    async fn flush(&mut self, response_id: &str) {
        let Some(mut preview) = self.previews.remove(response_id) else { return };
        let text = preview_text(&preview.text, self.limits.max_chars);
        let now = Instant::now();
        preview.dirty = false;
        preview.last_flush = Some(now);
        for channel in preview.targets.clone() {
            if preview.failed.contains(&channel) {
                continue;
            }
            let result = match preview.messages.get(&channel) {
                Some(message_id) => {
                    let edit = Edit { channel_id: channel.clone(), message_id: message_id.clone(), text: text.clone() };
                    self.platform.edit_now(edit).await.map(|()| None)
                }
                None => {
                    let id = format!("{response_id}/{channel}/preview");
                    let outbound = Outbound {
                        id,
                        channel_id: channel.clone(),
                        text: text.clone(),
                        kind: OutboundKind::Complete,
                        session: preview.session.clone(),
                        in_reply_to: convert::reply_in(P::NAME, &channel, preview.reply_to.as_ref()),
                        piece: (0, 1),
                        permission: None,
                        file: None,
                    };
                    self.platform.deliver_now(outbound).await.map(|d| Some(d.message_id))
                }
            };
            match result {
                Ok(Some(message_id)) => {
                    self.save_preview(response_id, &channel, &message_id, preview.reply_to.as_ref()).await;
                    preview.messages.insert(channel, message_id);
                }
                Ok(None) => {}
                Err(PlatformError::RateLimited(after)) => {
                    preview.dirty = true;
                    preview.not_before = preview.not_before.max(now + after);
                }
                Err(error) => {
                    tracing::debug!(%channel, %error, "streaming preview failed; the final will be sent as a new message");
                    preview.failed.insert(channel);
                }
            }
        }
        self.previews.insert(response_id.to_owned(), preview);
    }
}

/// Whether `response` ends the turn of its question even under another
/// response id: a notice (the turn was interrupted by a restart of gorpd, or
/// its session deleted), but not a permission request made during the turn.
fn ends_its_question(response: &pb::Response) -> bool {
    response.kind == pb::ResponseKind::Notice as i32 && response.permission.is_none()
}

/// A preview's text, cut to the limit with an ellipsis when longer.
fn preview_text(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max_chars.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preview_text_fits_the_limit() {
        assert_eq!(preview_text("hello", 10), "hello");
        assert_eq!(preview_text("hello world", 6), "hello…");
        assert_eq!(preview_text("日本語日本語", 4).chars().count(), 4);
    }

    #[test]
    fn a_preview_is_due_after_the_interval_and_after_a_rate_limit() {
        let now = Instant::now();
        let interval = Duration::from_secs(1);
        let mut preview = Preview {
            text: String::new(),
            session: String::new(),
            targets: vec![],
            reply_to: None,
            messages: HashMap::new(),
            failed: HashSet::new(),
            dirty: true,
            last_flush: None,
            not_before: now,
            touched: now,
        };
        assert_eq!(preview.due(interval), Some(now));
        preview.last_flush = Some(now);
        assert_eq!(preview.due(interval), Some(now + interval));
        preview.not_before = now + Duration::from_secs(5);
        assert_eq!(preview.due(interval), Some(now + Duration::from_secs(5)));
        preview.dirty = false;
        assert_eq!(preview.due(interval), None);
    }

    #[cfg(feature = "testkit")]
    mod streaming {
        use super::super::*;
        use crate::testkit::MemoryPlatform;

        fn chunk(text: &str) -> pb::Chunk {
            let target = pb::Channel { platform: "memory".into(), channel_id: "c1".into() };
            pb::Chunk { response_id: "r1".into(), text: text.into(), targets: vec![target], ..Default::default() }
        }

        fn response(seq: u64, text: &str) -> pb::Response {
            let target = pb::Channel { platform: "memory".into(), channel_id: "c1".into() };
            pb::Response {
                seq,
                response_id: "r1".into(),
                text: text.into(),
                targets: vec![target],
                ..Default::default()
            }
        }

        fn outbox(max_chars: usize) -> (Arc<MemoryPlatform>, Outbox<MemoryPlatform>) {
            let platform = MemoryPlatform::new(Limits { max_chars, edits: true });
            let paced = Arc::new(Paced::new(
                platform.clone(),
                CancellationToken::new(),
                crate::metrics::GatewayMetrics::new("test"),
            ));
            let outbox = Outbox::new(paced, Duration::from_secs(1), BackoffConfig::default());
            (platform, outbox)
        }

        #[tokio::test(start_paused = true)]
        async fn edits_are_throttled_and_the_final_text_wins() {
            let (platform, mut outbox) = outbox(100);
            outbox.chunk(chunk("a"));
            outbox.flush_due().await;
            assert_eq!(platform.texts("c1"), vec!["a"]);
            outbox.chunk(chunk("b"));
            outbox.chunk(chunk("c"));
            outbox.flush_due().await;
            assert_eq!(platform.texts("c1"), vec!["a"], "edited before the interval");
            tokio::time::advance(Duration::from_secs(1)).await;
            outbox.flush_due().await;
            assert_eq!(platform.texts("c1"), vec!["abc"]);
            outbox.chunk(chunk("d"));
            assert!(outbox.deliver_final(&response(1, "abcde"), &CancellationToken::new()).await.unwrap());
            let messages = platform.messages();
            assert_eq!((messages.len(), messages[0].edits, messages[0].text.as_str()), (1, 2, "abcde"));
            assert_eq!(outbox.next_due(), None);
        }

        #[tokio::test(start_paused = true)]
        async fn a_rate_limited_edit_waits_and_the_final_still_arrives() {
            let (platform, mut outbox) = outbox(100);
            outbox.chunk(chunk("a"));
            outbox.flush_due().await;
            platform.fail_next(PlatformError::RateLimited(Duration::from_secs(5)), 2);
            tokio::time::advance(Duration::from_secs(1)).await;
            outbox.chunk(chunk("b"));
            outbox.flush_due().await;
            let due = outbox.next_due().unwrap();
            assert!(due >= Instant::now() + Duration::from_secs(4), "waits out the rate limit");
            assert!(outbox.deliver_final(&response(1, "ab!"), &CancellationToken::new()).await.unwrap());
            assert_eq!(platform.texts("c1"), vec!["ab!"]);
            assert_eq!(platform.failed_calls(), 2);
        }

        /// An edit the platform keeps failing (an answer the gateway cannot
        /// parse) is given up after its attempts: the final goes out as a new
        /// message instead of blocking the chat forever.
        #[tokio::test(start_paused = true)]
        async fn a_final_edit_that_keeps_failing_falls_back_to_a_new_message() {
            let (platform, mut outbox) = outbox(100);
            outbox.chunk(chunk("a"));
            outbox.flush_due().await;
            platform.fail_next(PlatformError::Transient("unparsable answer".into()), EDIT_ATTEMPTS as usize);
            assert!(outbox.deliver_final(&response(1, "abc"), &CancellationToken::new()).await.unwrap());
            assert_eq!(platform.texts("c1"), vec!["a", "abc"], "the preview stays, the answer follows it");
            assert_eq!(platform.failed_calls(), EDIT_ATTEMPTS as usize);
        }

        fn asked(response_id: &str, kind: pb::ResponseKind) -> (pb::Chunk, pb::Response) {
            let question = pb::MessageRef {
                channel: Some(pb::Channel { platform: "memory".into(), channel_id: "c1".into() }),
                message_id: "c1/m1".into(),
            };
            let mut first = chunk("half an answer");
            first.reply_to = Some(question.clone());
            let mut last = response(2, "interrupted");
            (last.response_id, last.kind, last.reply_to) = (response_id.into(), kind as i32, Some(question));
            (first, last)
        }

        #[tokio::test(start_paused = true)]
        async fn a_notice_ending_the_same_question_replaces_its_preview_and_a_permission_request_does_not() {
            let (platform, mut outbox) = outbox(100);
            let (first, notice) = asked("other-response", pb::ResponseKind::Notice);
            outbox.chunk(first);
            outbox.flush_due().await;
            let mut permission = notice.clone();
            permission.permission = Some(pb::Permission::default());
            permission.seq = 1;
            assert!(outbox.deliver_final(&permission, &CancellationToken::new()).await.unwrap());
            assert_eq!(
                platform.texts("c1"),
                vec!["half an answer", "interrupted"],
                "a permission request is its own message"
            );
            assert!(outbox.deliver_final(&notice, &CancellationToken::new()).await.unwrap());
            assert_eq!(platform.texts("c1"), vec!["interrupted", "interrupted"], "the notice replaced the preview");
            assert_eq!(outbox.next_due(), None, "the old preview is not shown again");
        }

        #[tokio::test(start_paused = true)]
        async fn a_long_final_replaces_the_preview_then_adds_pieces_and_replays_are_skipped() {
            let (platform, mut outbox) = outbox(20);
            outbox.chunk(chunk("word "));
            outbox.flush_due().await;
            let text = "word ".repeat(10);
            let stop = CancellationToken::new();
            assert!(outbox.deliver_final(&response(3, &text), &stop).await.unwrap());
            assert_eq!(platform.texts("c1"), split_message(&text, 20));
            assert!(outbox.deliver_final(&response(3, &text), &stop).await.unwrap());
            assert_eq!(platform.texts("c1"), split_message(&text, 20), "a replayed seq is not sent again");
            assert_eq!(platform.repeated_deliveries(), 0);
        }
    }
}
