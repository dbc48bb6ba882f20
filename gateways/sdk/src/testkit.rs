//! An in-memory platform for tests (feature `testkit`).
//!
//! [`MemoryPlatform`] behaves like a chat service with an update log and an
//! offset, the way Telegram's long polling works: `listen` submits every
//! update after the offset and advances the offset only once the runner says
//! gorpd acknowledged it, so stopping either side loses nothing. It records
//! every message and edit, is idempotent on [`Outbound::id`] (counting
//! repeats), and can be told to fail the next calls, e.g. with rate limits.

use crate::listen::{Ack, ListenContext};
use crate::platform::{Delivered, Edit, Inbound, Limits, Outbound, Platform, PlatformError};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::Notify;

/// A message as the platform shows it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The platform's id for it.
    pub id: String,
    /// Its channel.
    pub channel_id: String,
    /// Its current text (after edits).
    pub text: String,
    /// How often it was edited.
    pub edits: usize,
    /// The outbound that created it.
    pub outbound: Outbound,
}

#[derive(Debug, Default)]
struct State {
    updates: Vec<Inbound>,
    offset: usize,
    acks: Vec<(String, Ack)>,
    messages: Vec<Message>,
    by_outbound: HashMap<String, String>,
    repeated: usize,
    failures: VecDeque<PlatformError>,
    failed_calls: usize,
    listen_error: Option<PlatformError>,
}

/// An in-memory chat platform named `memory`.
#[derive(Debug)]
pub struct MemoryPlatform {
    limits: Limits,
    state: Mutex<State>,
    updated: Notify,
}

impl MemoryPlatform {
    /// A platform with these limits.
    pub fn new(limits: Limits) -> Arc<Self> {
        Arc::new(Self { limits, state: Mutex::default(), updated: Notify::new() })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A user writes `text` in `channel_id`; returns the message id.
    pub fn user_says(&self, channel_id: &str, sender_id: &str, text: &str) -> String {
        let mut state = self.state();
        let message_id = format!("m{}", state.updates.len() + 1);
        state.updates.push(Inbound {
            channel_id: channel_id.to_owned(),
            message_id: message_id.clone(),
            sender_id: sender_id.to_owned(),
            sender_name: format!("user {sender_id}"),
            text: text.to_owned(),
            files: Vec::new(),
        });
        drop(state);
        self.updated.notify_one();
        message_id
    }

    /// Makes the next platform calls (deliver or edit) fail with `error`, once each.
    pub fn fail_next(&self, error: PlatformError, times: usize) {
        self.state().failures.extend(std::iter::repeat_n(error, times));
    }

    /// Makes the next `listen` fail with `error` (e.g. a revoked bot token).
    pub fn fail_listen(&self, error: PlatformError) {
        self.state().listen_error = Some(error);
    }

    /// Calls failed on purpose so far.
    pub fn failed_calls(&self) -> usize {
        self.state().failed_calls
    }

    /// Updates acknowledged so far (the offset).
    pub fn offset(&self) -> usize {
        self.state().offset
    }

    /// How each update was settled, in order.
    pub fn acks(&self) -> Vec<(String, Ack)> {
        self.state().acks.clone()
    }

    /// Every message sent, in order.
    pub fn messages(&self) -> Vec<Message> {
        self.state().messages.clone()
    }

    /// The current texts of the messages in `channel_id`, in order.
    pub fn texts(&self, channel_id: &str) -> Vec<String> {
        self.state().messages.iter().filter(|m| m.channel_id == channel_id).map(|m| m.text.clone()).collect()
    }

    /// Deliveries repeated with an id already delivered (should stay 0).
    pub fn repeated_deliveries(&self) -> usize {
        self.state().repeated
    }

    fn injected_failure(&self) -> Result<(), PlatformError> {
        let mut state = self.state();
        match state.failures.pop_front() {
            Some(error) => {
                state.failed_calls += 1;
                Err(error)
            }
            None => Ok(()),
        }
    }

    /// Submits every update after the offset, advancing it as acks arrive.
    async fn submit_pending(&self, cx: &ListenContext) -> Result<(), ()> {
        let (from, batch) = {
            let state = self.state();
            (state.offset, state.updates[state.offset..].to_vec())
        };
        let mut handles = Vec::new();
        for update in batch {
            let id = update.message_id.clone();
            handles.push((id, cx.submit(update).await.map_err(|_| ())?));
        }
        for (i, (id, handle)) in handles.into_iter().enumerate() {
            let ack = tokio::select! {
                ack = handle => ack.map_err(|_| ())?,
                _ = cx.shutdown().cancelled() => return Err(()),
            };
            let mut state = self.state();
            state.acks.push((id, ack));
            state.offset = from + i + 1;
        }
        Ok(())
    }
}

impl Platform for MemoryPlatform {
    const NAME: &'static str = "memory";

    fn limits(&self) -> Limits {
        self.limits
    }

    async fn listen(&self, cx: ListenContext) -> Result<(), PlatformError> {
        if let Some(error) = self.state().listen_error.take() {
            return Err(error);
        }
        loop {
            let updated = self.updated.notified();
            if self.submit_pending(&cx).await.is_err() {
                return Ok(());
            }
            tokio::select! {
                _ = updated => {}
                _ = cx.shutdown().cancelled() => return Ok(()),
            }
        }
    }

    async fn deliver(&self, msg: Outbound) -> Result<Delivered, PlatformError> {
        self.injected_failure()?;
        let mut state = self.state();
        if let Some(id) = state.by_outbound.get(&msg.id).cloned() {
            state.repeated += 1;
            return Ok(Delivered { message_id: id });
        }
        let id = format!("out{}", state.messages.len() + 1);
        state.by_outbound.insert(msg.id.clone(), id.clone());
        let message = Message {
            id: id.clone(),
            channel_id: msg.channel_id.clone(),
            text: msg.text.clone(),
            edits: 0,
            outbound: msg,
        };
        state.messages.push(message);
        Ok(Delivered { message_id: id })
    }

    async fn edit(&self, edit: Edit) -> Result<(), PlatformError> {
        self.injected_failure()?;
        let mut state = self.state();
        let message = state.messages.iter_mut().find(|m| m.id == edit.message_id && m.channel_id == edit.channel_id);
        let message = message.ok_or_else(|| PlatformError::Rejected(format!("no message {}", edit.message_id)))?;
        message.text = edit.text;
        message.edits += 1;
        Ok(())
    }
}
