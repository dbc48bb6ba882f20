//! The gateway's state directory: what must survive a restart.
//!
//! `session.json` is the bot's device (user id, device id, access token);
//! `store/` is matrix-sdk's SQLite state and crypto store, encrypted with
//! the store passphrase; `sync-token` is the sync position up to which
//! gorpd has acknowledged every message; `sent.json` maps outbound ids to
//! the events sent for them (so a replay after a restart edits or skips
//! instead of repeating); `pending.json` holds messages that could not be
//! decrypted yet, and `health.json` how many could not be decrypted since
//! start and how many wait for their keys now. Files are written to a temporary name and renamed, so a
//! crash leaves the old or the new version, never half of one; the
//! directory is private to the user (0700).

use crate::error::StartError;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// How many sent outbound ids are remembered on disk.
const SENT_REMEMBERED: usize = 2048;

/// A message that could not be decrypted yet, kept until its keys arrive.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct Undecrypted {
    /// The room.
    pub(crate) room_id: String,
    /// The event id.
    pub(crate) event_id: String,
    /// The encrypted event as received.
    pub(crate) event: serde_json::Value,
    /// When it was first seen (seconds since the epoch).
    pub(crate) first_seen: u64,
}

/// What an operator checks about decryption (`health.json`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct Health {
    /// Messages that could not be decrypted when they arrived, since the gateway started.
    pub(crate) undecryptable_since_start: u64,
    /// Messages kept now, waiting for their keys.
    pub(crate) waiting_for_keys: usize,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct SentFile {
    sent: VecDeque<(String, String)>,
}

/// The state directory, opened.
#[derive(Debug)]
pub(crate) struct StateDir {
    dir: PathBuf,
    sent: Mutex<SentFile>,
}

impl StateDir {
    /// Opens (creating) `dir`, private to this user.
    pub(crate) fn open(dir: &Path) -> Result<Self, StartError> {
        let fail = |e: std::io::Error| StartError::State { path: dir.display().to_string(), why: e.to_string() };
        std::fs::create_dir_all(dir).map_err(fail)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(fail)?;
        }
        let state = Self { dir: dir.to_owned(), sent: Mutex::default() };
        let sent = state.read_json::<SentFile>("sent.json")?.unwrap_or_default();
        *state.sent.lock().unwrap_or_else(|p| p.into_inner()) = sent;
        Ok(state)
    }

    /// Where matrix-sdk keeps its SQLite stores.
    pub(crate) fn store_path(&self) -> PathBuf {
        self.dir.join("store")
    }

    /// The saved session, if any.
    pub(crate) fn session<T: for<'de> Deserialize<'de>>(&self) -> Result<Option<T>, StartError> {
        self.read_json("session.json")
    }

    /// Saves the session.
    pub(crate) fn save_session<T: Serialize>(&self, session: &T) -> Result<(), StartError> {
        self.write_json("session.json", session)
    }

    /// The last acknowledged sync position.
    pub(crate) fn sync_token(&self) -> Option<String> {
        let text = std::fs::read_to_string(self.dir.join("sync-token")).ok()?;
        Some(text.trim().to_owned()).filter(|t| !t.is_empty())
    }

    /// Records that everything up to `token` is acknowledged.
    pub(crate) fn save_sync_token(&self, token: &str) -> Result<(), StartError> {
        self.write("sync-token", token.as_bytes())
    }

    /// The event sent for `outbound_id`, if one was.
    pub(crate) fn sent(&self, outbound_id: &str) -> Option<String> {
        let sent = self.sent.lock().unwrap_or_else(|p| p.into_inner());
        sent.sent.iter().rev().find(|(id, _)| id == outbound_id).map(|(_, event)| event.clone())
    }

    /// Records that `outbound_id` was sent as `event_id` (saved before returning).
    pub(crate) fn record_sent(&self, outbound_id: &str, event_id: &str) -> Result<(), StartError> {
        let mut sent = self.sent.lock().unwrap_or_else(|p| p.into_inner());
        sent.sent.push_back((outbound_id.to_owned(), event_id.to_owned()));
        while sent.sent.len() > SENT_REMEMBERED {
            sent.sent.pop_front();
        }
        self.write_json("sent.json", &*sent)
    }

    /// Messages still waiting for their keys.
    pub(crate) fn undecrypted(&self) -> Vec<Undecrypted> {
        self.read_json("pending.json").ok().flatten().unwrap_or_default()
    }

    /// Replaces the list of messages waiting for their keys.
    pub(crate) fn save_undecrypted(&self, pending: &[Undecrypted]) -> Result<(), StartError> {
        self.write_json("pending.json", &pending)
    }

    /// Records the decryption health for operators.
    pub(crate) fn save_health(&self, health: &Health) -> Result<(), StartError> {
        self.write_json("health.json", health)
    }

    fn read_json<T: for<'de> Deserialize<'de>>(&self, name: &str) -> Result<Option<T>, StartError> {
        let path = self.dir.join(name);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StartError::State { path: path.display().to_string(), why: e.to_string() }),
        };
        let value = serde_json::from_str(&text)
            .map_err(|e| StartError::State { path: path.display().to_string(), why: e.to_string() })?;
        Ok(Some(value))
    }

    fn write_json<T: Serialize>(&self, name: &str, value: &T) -> Result<(), StartError> {
        let bytes = serde_json::to_vec(value).expect("state serialises");
        self.write(name, &bytes)
    }

    fn write(&self, name: &str, bytes: &[u8]) -> Result<(), StartError> {
        let path = self.dir.join(name);
        let temp = self.dir.join(format!(".{name}.tmp"));
        let fail = |e: std::io::Error| StartError::State { path: path.display().to_string(), why: e.to_string() };
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&temp).map_err(fail)?;
        std::io::Write::write_all(&mut file, bytes).map_err(fail)?;
        file.sync_all().map_err(fail)?;
        std::fs::rename(&temp, &path).map_err(fail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn everything_survives_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(dir.path()).unwrap();
        assert_eq!(state.sync_token(), None);
        state.save_sync_token("s72_1").unwrap();
        state.record_sent("r1/!room/0", "$e1").unwrap();
        let pending = Undecrypted {
            room_id: "!r:x".into(),
            event_id: "$e".into(),
            event: serde_json::json!({"type": "m.room.encrypted"}),
            first_seen: 7,
        };
        state.save_undecrypted(std::slice::from_ref(&pending)).unwrap();
        state.save_session(&serde_json::json!({"user_id": "@gorp:x"})).unwrap();
        let reopened = StateDir::open(dir.path()).unwrap();
        assert_eq!(reopened.sync_token().as_deref(), Some("s72_1"));
        assert_eq!(reopened.sent("r1/!room/0").as_deref(), Some("$e1"));
        assert_eq!(reopened.sent("r2/!room/0"), None);
        assert_eq!(reopened.undecrypted(), vec![pending]);
        let session: serde_json::Value = reopened.session().unwrap().unwrap();
        assert_eq!(session["user_id"], "@gorp:x");
    }

    #[test]
    fn a_corrupt_session_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("session.json"), "{not json").unwrap();
        let state = StateDir::open(dir.path()).unwrap();
        let error = state.session::<serde_json::Value>().unwrap_err().to_string();
        assert!(error.contains("session.json"), "{error}");
    }
}
