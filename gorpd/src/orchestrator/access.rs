//! DISPATCH permissions per platform: which sessions a channel may reach
//! through DISPATCH (and through `Bus.BindChannel` with a gateway token).
//!
//! Every platform has a [`DispatchScope`] from gorpd's config (`dispatch_scope`
//! for all, `[dispatch_scopes]` per platform; default `full`). A channel
//! always reaches the session it is bound to. `own-platform` adds the
//! sessions bound to any channel of the same platform or created from one
//! (`sessions.created_on`); `full` reaches every session; `off` reaches no
//! other session and refuses the whole-fleet commands. Admin tokens (the
//! Control API, gorpctl, the web admin) are not limited by scopes.

use super::{Orchestrator, OrchestratorError, OrchestratorResult};
use crate::bus::ChannelRef;
use crate::store::{SessionRow, StoreError};
use serde::Deserialize;
use std::collections::BTreeMap;

/// How far a platform's channels reach through DISPATCH.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DispatchScope {
    /// Every session and every command (one operator: the default).
    #[default]
    Full,
    /// Sessions bound to a channel of the same platform or created from one.
    OwnPlatform,
    /// Only the session the channel is bound to; no fleet commands.
    Off,
}

impl DispatchScope {
    /// The name used in the config: `full`, `own-platform` or `off`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::OwnPlatform => "own-platform",
            Self::Off => "off",
        }
    }
}

/// Each platform's scope: `default` for platforms not listed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DispatchScopes {
    /// Scope of platforms without their own entry.
    pub default: DispatchScope,
    /// Scopes by platform id.
    pub platforms: BTreeMap<String, DispatchScope>,
}

impl DispatchScopes {
    /// The scope of `platform`'s channels.
    pub fn of(&self, platform: &str) -> DispatchScope {
        self.platforms.get(platform).copied().unwrap_or(self.default)
    }
}

/// Commands that act on the whole fleet rather than on one named session.
const FLEET_COMMANDS: [&str; 4] = ["create", "delete", "list", "broadcast"];

fn refused(reason: String) -> OrchestratorError {
    OrchestratorError::NotPermitted(reason)
}

impl Orchestrator {
    /// The DISPATCH scope of `platform`'s channels.
    pub fn dispatch_scope(&self, platform: &str) -> DispatchScope {
        self.inner.config.dispatch_scopes.of(platform)
    }

    /// Whether `asker` may reach `row` (its own session, or within its platform's scope).
    pub(super) fn reaches(&self, asker: &ChannelRef, row: &SessionRow) -> bool {
        let platform = asker.platform.as_str();
        match self.dispatch_scope(platform) {
            DispatchScope::Full => true,
            DispatchScope::Off => self.session_of(asker).as_deref() == Some(row.name.as_str()),
            DispatchScope::OwnPlatform => {
                row.created_on.as_deref() == Some(platform)
                    || self.channels_of(&row.name).iter().any(|channel| channel.platform == platform)
            }
        }
    }

    /// Checks that `asker` may use `session`; an unknown session passes (the operation says so).
    pub async fn check_reach(&self, asker: &ChannelRef, session: &str) -> OrchestratorResult<()> {
        let row = match self.inner.store.session(session).await {
            Ok(row) => row,
            Err(StoreError::NotFound) => return Ok(()),
            Err(other) => return Err(other.into()),
        };
        if self.reaches(asker, &row) {
            return Ok(());
        }
        let platform = &asker.platform;
        Err(refused(match self.dispatch_scope(platform) {
            DispatchScope::Off => format!(
                "session \"{session}\" is out of reach of {platform} channels: DISPATCH is off for {platform} (dispatch scope off), \
                 so a channel controls only the session an operator bound it to"
            ),
            _ => format!(
                "session \"{session}\" is out of reach of {platform} channels: their dispatch scope is own-platform, \
                 which reaches only sessions bound to a {platform} channel or created from one"
            ),
        }))
    }

    /// Checks that `asker`'s platform may run the DISPATCH command `word` at all.
    pub(super) fn check_command(&self, asker: &ChannelRef, word: &str) -> OrchestratorResult<()> {
        let platform = &asker.platform;
        if self.dispatch_scope(platform) == DispatchScope::Off && FLEET_COMMANDS.contains(&word) {
            return Err(refused(format!(
                "!{word} is not available in {platform} channels: DISPATCH is off for {platform} (dispatch scope off); \
                 an operator manages sessions with gorpctl or the web admin"
            )));
        }
        Ok(())
    }

    /// The names of the sessions `asker` reaches, in name order.
    pub(super) async fn reachable_sessions(&self, asker: &ChannelRef) -> OrchestratorResult<Vec<String>> {
        let rows = self.inner.store.sessions().await?;
        Ok(rows.into_iter().filter(|row| self.reaches(asker, row)).map(|row| row.name).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_platform_without_its_own_entry_has_the_default_scope() {
        let scopes = DispatchScopes {
            default: DispatchScope::OwnPlatform,
            platforms: BTreeMap::from([("web".to_owned(), DispatchScope::Full)]),
        };
        assert_eq!(scopes.of("web"), DispatchScope::Full);
        assert_eq!(scopes.of("telegram"), DispatchScope::OwnPlatform);
        assert_eq!(DispatchScopes::default().of("slack"), DispatchScope::Full);
    }
}
