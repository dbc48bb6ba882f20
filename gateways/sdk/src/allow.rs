//! Allow-lists: which platform users may talk to gorp through a gateway.
//!
//! Checked by [`crate::ListenContext::submit`] before anything is queued for
//! gorpd; a sender not on the list gets a short notice and nothing else.

use std::collections::HashSet;

/// The notice sent to a user who is not on the allow-list.
pub const NOT_ALLOWED_TEXT: &str = "You are not allowed to use this gorp. Ask its operator to add your user id.";

/// Who may use a gateway: everyone, or the listed platform user ids. An
/// entry `*suffix` allows every id ending in `suffix` (Matrix lists a whole
/// homeserver as `*:example.org`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    users: Option<HashSet<String>>,
}

impl AllowList {
    /// Everyone may use the gateway.
    pub fn everyone() -> Self {
        Self { users: None }
    }

    /// Only these user ids (as the platform reports them in `sender_id`).
    pub fn only<I, S>(users: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self { users: Some(users.into_iter().map(Into::into).map(|u: String| u.trim().to_owned()).collect()) }
    }

    /// Whether `sender_id` may send messages; an empty id never may when a list is set.
    pub fn allows(&self, sender_id: &str) -> bool {
        match &self.users {
            None => true,
            Some(users) => {
                !sender_id.is_empty()
                    && (users.contains(sender_id)
                        || users.iter().any(|entry| {
                            entry
                                .strip_prefix('*')
                                .is_some_and(|suffix| !suffix.is_empty() && sender_id.ends_with(suffix))
                        }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn everyone_allows_anyone() {
        assert!(AllowList::everyone().allows("42"));
        assert!(AllowList::default().allows(""));
    }

    #[test]
    fn a_list_allows_only_its_users() {
        let list = AllowList::only(["42", " 7 "]);
        assert!(list.allows("42") && list.allows("7"));
        assert!(!list.allows("43") && !list.allows(""));
        assert!(!AllowList::only(Vec::<String>::new()).allows("42"));
    }

    #[test]
    fn a_star_entry_allows_ids_with_its_suffix() {
        let list = AllowList::only(["*:example.org", "*"]);
        assert!(list.allows("@alice:example.org"));
        assert!(!list.allows("@mallory:example.org.evil") && !list.allows("@bob:other.org"));
        assert!(!list.allows(""), "an empty id never passes");
    }
}
