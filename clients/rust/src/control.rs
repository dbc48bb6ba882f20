//! Typed Control calls: the common fleet operations with plain arguments and
//! the client's own types. Everything else is on [`Client::control_api`].

use crate::connect::Client;
use crate::error::Error;
use crate::types::Channel;
use gorp_proto::v1 as pb;

/// A session as gorpd reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// Its name.
    pub name: String,
    /// The absolute path of its workspace.
    pub workspace_dir: String,
    /// Its agent profile (e.g. `echo`).
    pub backend: String,
    /// The channels bound to it.
    pub channels: Vec<Channel>,
    /// `idle` or `busy`.
    pub state: String,
    /// Entries in its history (inbound messages and final responses).
    pub message_count: u64,
}

impl From<pb::Session> for SessionInfo {
    fn from(s: pb::Session) -> Self {
        Self {
            name: s.name,
            workspace_dir: s.workspace_dir,
            backend: s.backend,
            channels: s.channels.into_iter().map(Channel::from).collect(),
            state: s.state,
            message_count: s.message_count,
        }
    }
}

/// One entry of a session's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    /// Store id; increases with time.
    pub id: i64,
    /// `user` for inbound messages; `assistant`, `error` or `notice` for responses.
    pub role: String,
    /// The author (sender name or id), or the session for responses.
    pub author: String,
    /// The text.
    pub text: String,
    /// Where an inbound message came from.
    pub channel: Option<Channel>,
    /// Files it carries (by reference: download them with [`Client::download`]).
    pub attachments: Vec<crate::Attachment>,
}

impl From<pb::HistoryEntry> for HistoryEntry {
    fn from(e: pb::HistoryEntry) -> Self {
        Self {
            id: e.id,
            role: e.role,
            author: e.author,
            text: e.text,
            channel: e.channel.map(Channel::from),
            attachments: e.attachments.into_iter().map(crate::Attachment::from).collect(),
        }
    }
}

impl Client {
    /// Creates session `name` with gorpd's default agent profile and workspace.
    pub async fn create_session(&self, name: &str) -> Result<SessionInfo, Error> {
        self.create_session_with(name, "", "").await
    }

    /// Creates session `name` with agent profile `agent` in `workspace`
    /// (relative to gorpd's workspace root); empty strings mean the defaults.
    pub async fn create_session_with(&self, name: &str, agent: &str, workspace: &str) -> Result<SessionInfo, Error> {
        let request = pb::CreateSessionRequest {
            name: name.to_owned(),
            workspace: workspace.to_owned(),
            agent: agent.to_owned(),
        };
        Ok(self.control_api().create_session(request).await?.into_inner().into())
    }

    /// Session `name`.
    pub async fn session(&self, name: &str) -> Result<SessionInfo, Error> {
        let request = pb::GetSessionRequest { name: name.to_owned() };
        Ok(self.control_api().get_session(request).await?.into_inner().into())
    }

    /// Every session, by name.
    pub async fn sessions(&self) -> Result<Vec<SessionInfo>, Error> {
        let sessions = self.control_api().list_sessions(pb::ListSessionsRequest {}).await?.into_inner().sessions;
        Ok(sessions.into_iter().map(SessionInfo::from).collect())
    }

    /// Deletes session `name` (its history and bindings; not its workspace).
    pub async fn delete_session(&self, name: &str) -> Result<(), Error> {
        self.control_api().delete_session(pb::DeleteSessionRequest { name: name.to_owned() }).await?;
        Ok(())
    }

    /// Binds `channel` to `session`; returns the session it was bound to before.
    pub async fn bind(&self, channel: Channel, session: &str) -> Result<Option<String>, Error> {
        let request = pb::BindSessionRequest { channel: Some(channel.into()), session: session.to_owned() };
        let previous = self.control_api().bind_session(request).await?.into_inner().previous_session;
        Ok(Some(previous).filter(|p| !p.is_empty()))
    }

    /// Unbinds `channel`; returns the session it was bound to.
    pub async fn unbind(&self, channel: Channel) -> Result<String, Error> {
        let request = pb::UnbindChannelRequest { channel: Some(channel.into()) };
        Ok(self.control_api().unbind_channel(request).await?.into_inner().session)
    }

    /// Sends `text` to `session` as a message from the control API; returns its history id.
    pub async fn tell(&self, session: &str, text: &str) -> Result<i64, Error> {
        self.tell_with(session, text, Vec::new()).await
    }

    /// The last `count` entries of `session`'s history, oldest first (0: gorpd's default).
    pub async fn history(&self, session: &str, count: u32) -> Result<Vec<HistoryEntry>, Error> {
        let request = pb::ReadHistoryRequest { session: session.to_owned(), count };
        let entries = self.control_api().read_history(request).await?.into_inner().entries;
        Ok(entries.into_iter().map(HistoryEntry::from).collect())
    }

    /// Creates a gateway token named `name` that may act only for `platform`;
    /// returns its secret (shown only here).
    pub async fn create_gateway_token(&self, name: &str, platform: &str) -> Result<String, Error> {
        let request = pb::CreateTokenRequest {
            name: name.to_owned(),
            kind: pb::TokenKind::Gateway as i32,
            platform: platform.to_owned(),
        };
        Ok(self.control_api().create_token(request).await?.into_inner().secret)
    }
}
