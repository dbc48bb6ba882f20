//! The in-memory map of channel bindings, both ways: channel → session for
//! routing, session → channels for the targets of every chunk and answer.
//!
//! A write-through cache of `channel_bindings`, loaded at start; the fleet
//! operations change it only after the store committed the change. Both
//! directions are updated together, so they always agree.

use crate::domain::ChannelRef;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

/// Channel → session and session → channels.
#[derive(Debug, Default)]
pub(super) struct Bindings {
    by_channel: HashMap<ChannelRef, Arc<str>>,
    by_session: HashMap<Arc<str>, BTreeSet<ChannelRef>>,
}

impl Bindings {
    /// The map of `pairs` (channel, session).
    pub(super) fn from_pairs(pairs: impl IntoIterator<Item = (ChannelRef, String)>) -> Self {
        let mut bindings = Self::default();
        for (channel, session) in pairs {
            bindings.insert(channel, &session);
        }
        bindings
    }

    /// The session `channel` is bound to.
    pub(super) fn session_of(&self, channel: &ChannelRef) -> Option<String> {
        self.by_channel.get(channel).map(|session| session.to_string())
    }

    /// The channels bound to `session`, sorted.
    pub(super) fn channels_of(&self, session: &str) -> Vec<ChannelRef> {
        self.by_session.get(session).map(|channels| channels.iter().cloned().collect()).unwrap_or_default()
    }

    /// Every binding, sorted by channel.
    pub(super) fn all(&self) -> Vec<(ChannelRef, String)> {
        let mut all: Vec<_> = self.by_channel.iter().map(|(c, s)| (c.clone(), s.to_string())).collect();
        all.sort();
        all
    }

    /// Binds `channel` to `session`; returns the session it was bound to before.
    pub(super) fn insert(&mut self, channel: ChannelRef, session: &str) -> Option<String> {
        let previous = self.remove(&channel);
        let session: Arc<str> = match self.by_session.get_key_value(session) {
            Some((shared, _)) => shared.clone(),
            None => Arc::from(session),
        };
        self.by_session.entry(session.clone()).or_default().insert(channel.clone());
        self.by_channel.insert(channel, session);
        previous
    }

    /// Unbinds `channel`; returns the session it was bound to.
    pub(super) fn remove(&mut self, channel: &ChannelRef) -> Option<String> {
        let session = self.by_channel.remove(channel)?;
        if let Some(channels) = self.by_session.get_mut(&session) {
            channels.remove(channel);
            if channels.is_empty() {
                self.by_session.remove(&session);
            }
        }
        Some(session.to_string())
    }

    /// Unbinds every channel of `session`.
    pub(super) fn remove_session(&mut self, session: &str) {
        for channel in self.by_session.remove(session).unwrap_or_default() {
            self.by_channel.remove(&channel);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_directions_agree_through_rebinds_and_deletes() {
        let web = ChannelRef::new("web", "1");
        let tg = ChannelRef::new("telegram", "2");
        let mut bindings = Bindings::from_pairs([(web.clone(), "a".to_owned()), (tg.clone(), "a".to_owned())]);
        assert_eq!(bindings.channels_of("a"), vec![tg.clone(), web.clone()]);
        assert_eq!(bindings.insert(web.clone(), "b"), Some("a".to_owned()));
        assert_eq!(bindings.channels_of("a"), vec![tg.clone()]);
        assert_eq!(bindings.channels_of("b"), vec![web.clone()]);
        bindings.remove_session("a");
        assert_eq!(bindings.session_of(&tg), None);
        assert_eq!(bindings.remove(&web), Some("b".to_owned()));
        assert!(bindings.all().is_empty());
        assert!(bindings.channels_of("b").is_empty());
    }
}
