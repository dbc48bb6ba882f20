//! The sessions this process knows, each mirrored in `<cwd>/.gorp-test-agent.json`.
//!
//! Only the connection's handlers call in here, and the SDK runs handlers one at a time,
//! so every read-modify-write of a state file happens in message order. A turn's
//! cancellation is a generation counter per session: a turn subscribes when it begins and
//! counts as cancelled once the counter moves, so a `session/cancel` that arrives while no
//! turn is running cancels nothing.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use agent_client_protocol::v1::schema::SessionId;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

/// Name of the state file kept in each session's working directory.
pub(crate) const STATE_FILE: &str = ".gorp-test-agent.json";

/// What went wrong with a session lookup or its state file.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SessionError {
    /// The session is neither live in this process nor recorded in the given directory.
    #[error("unknown session \"{0}\"")]
    NotFound(SessionId),
    /// The state file could not be read or written.
    #[error("state file {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    /// The state file exists but is not ours.
    #[error("state file {path} is not valid: {source}")]
    Corrupt { path: PathBuf, source: serde_json::Error },
}

/// The on-disk record: every session ever created in this directory and its turn count.
#[derive(Debug, Default, Serialize, Deserialize)]
struct StateFile {
    sessions: BTreeMap<String, SessionRecord>,
}

#[derive(Debug, Serialize, Deserialize)]
struct SessionRecord {
    turns: u64,
}

struct Session {
    cwd: PathBuf,
    turns: u64,
    cancel: watch::Sender<u64>,
    settings: Settings,
}

/// A session's mode, model and MCP servers, kept in memory only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Settings {
    /// Current mode id.
    pub(crate) mode: String,
    /// Current model id.
    pub(crate) model: String,
    /// Names of the MCP servers the client passed, with their transport.
    pub(crate) mcp: Vec<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self { mode: "ask".to_owned(), model: "small".to_owned(), mcp: Vec::new() }
    }
}

/// One prompt turn that has been counted and may now run.
#[derive(Debug)]
pub(crate) struct Turn {
    /// 1-based turn number within the session, across processes.
    pub(crate) number: u64,
    /// The session's working directory.
    pub(crate) cwd: PathBuf,
    /// The session's settings when the turn began.
    pub(crate) settings: Settings,
    /// The session's cancel generation; `session/cancel` moves it past `started`.
    cancel: watch::Receiver<u64>,
    started: u64,
}

impl Turn {
    /// Whether `session/cancel` arrived for this session since the turn began.
    pub(crate) fn is_cancelled(&self) -> bool {
        *self.cancel.borrow() != self.started
    }

    /// Waits until `session/cancel` arrives for this session.
    pub(crate) async fn cancelled(&mut self) {
        let started = self.started;
        // Err means the session is gone, which only happens when the process is exiting.
        let _ = self.cancel.wait_for(|generation| *generation != started).await;
    }
}

/// The live sessions of this process.
#[derive(Default)]
pub(crate) struct Sessions {
    live: Mutex<HashMap<SessionId, Session>>,
}

impl Sessions {
    /// Creates a session in `cwd` and records it there with zero turns.
    pub(crate) fn create(&self, cwd: &Path) -> Result<SessionId, SessionError> {
        let id = SessionId::new(format!("s-{}", uuid::Uuid::new_v4().simple()));
        persist(cwd, &id, 0)?;
        self.lock().insert(id.clone(), Session::new(cwd.to_path_buf(), 0));
        Ok(id)
    }

    /// Makes a session recorded in `cwd` live again, keeping its turn count.
    pub(crate) fn load(&self, id: &SessionId, cwd: &Path) -> Result<(), SessionError> {
        let state = read_state(cwd)?;
        let record = state.sessions.get(id.0.as_ref()).ok_or_else(|| SessionError::NotFound(id.clone()))?;
        let mut live = self.lock();
        match live.get_mut(id) {
            Some(session) => {
                session.cwd = cwd.to_path_buf();
                session.turns = record.turns;
            }
            None => {
                live.insert(id.clone(), Session::new(cwd.to_path_buf(), record.turns));
            }
        }
        Ok(())
    }

    /// Counts a new turn for a live session, persisting the count before the turn runs.
    pub(crate) fn begin_turn(&self, id: &SessionId) -> Result<Turn, SessionError> {
        let mut live = self.lock();
        let session = live.get_mut(id).ok_or_else(|| SessionError::NotFound(id.clone()))?;
        let number = session.turns + 1;
        persist(&session.cwd, id, number)?;
        session.turns = number;
        let cancel = session.cancel.subscribe();
        let started = *cancel.borrow();
        Ok(Turn { number, cwd: session.cwd.clone(), settings: session.settings.clone(), cancel, started })
    }

    /// Changes a live session's settings; false for an unknown session.
    pub(crate) fn update(&self, id: &SessionId, change: impl FnOnce(&mut Settings)) -> bool {
        match self.lock().get_mut(id) {
            Some(session) => {
                change(&mut session.settings);
                true
            }
            None => false,
        }
    }

    /// Cancels the turns running in a session; unknown sessions are ignored.
    pub(crate) fn cancel(&self, id: &SessionId) {
        if let Some(session) = self.lock().get(id) {
            session.cancel.send_modify(|generation| *generation += 1);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SessionId, Session>> {
        // A panic while holding the lock leaves the map itself consistent.
        self.live.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Session {
    fn new(cwd: PathBuf, turns: u64) -> Self {
        Self { cwd, turns, cancel: watch::Sender::new(0), settings: Settings::default() }
    }
}

fn read_state(cwd: &Path) -> Result<StateFile, SessionError> {
    let path = cwd.join(STATE_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(StateFile::default()),
        Err(source) => return Err(SessionError::Io { path, source }),
    };
    serde_json::from_slice(&bytes).map_err(|source| SessionError::Corrupt { path, source })
}

/// Sets one session's turn count in the directory's state file, keeping the others.
///
/// Blocking file I/O on purpose: the file is tiny, and finishing the write before the
/// handler returns is what orders it before the next message.
fn persist(cwd: &Path, id: &SessionId, turns: u64) -> Result<(), SessionError> {
    let mut state = read_state(cwd)?;
    state.sessions.insert(id.0.to_string(), SessionRecord { turns });
    let path = cwd.join(STATE_FILE);
    let json =
        serde_json::to_vec_pretty(&state).map_err(|source| SessionError::Corrupt { path: path.clone(), source })?;
    // Write-then-rename so a crash never leaves a half-written file for the next process.
    let tmp = cwd.join(format!("{STATE_FILE}.tmp"));
    std::fs::write(&tmp, json)
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(|source| SessionError::Io { path, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loaded_session_continues_its_turn_count() {
        let dir = tempfile::tempdir().unwrap();
        let first = Sessions::default();
        let id = first.create(dir.path()).unwrap();
        assert_eq!(first.begin_turn(&id).unwrap().number, 1);
        assert_eq!(first.begin_turn(&id).unwrap().number, 2);

        let second = Sessions::default();
        assert!(matches!(second.begin_turn(&id), Err(SessionError::NotFound(_))));
        second.load(&id, dir.path()).unwrap();
        assert_eq!(second.begin_turn(&id).unwrap().number, 3);
    }

    #[test]
    fn sessions_in_one_directory_keep_separate_counts() {
        let dir = tempfile::tempdir().unwrap();
        let sessions = Sessions::default();
        let a = sessions.create(dir.path()).unwrap();
        let b = sessions.create(dir.path()).unwrap();
        sessions.begin_turn(&a).unwrap();
        sessions.begin_turn(&a).unwrap();
        assert_eq!(sessions.begin_turn(&b).unwrap().number, 1);

        let state = read_state(dir.path()).unwrap();
        assert_eq!(state.sessions[a.0.as_ref()].turns, 2);
        assert_eq!(state.sessions[b.0.as_ref()].turns, 1);
    }

    #[test]
    fn loading_from_another_directory_is_not_found() {
        let (home, elsewhere) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let id = Sessions::default().create(home.path()).unwrap();
        let err = Sessions::default().load(&id, elsewhere.path()).unwrap_err();
        assert!(matches!(err, SessionError::NotFound(_)));
    }

    #[tokio::test]
    async fn cancel_reaches_only_turns_already_running() {
        let dir = tempfile::tempdir().unwrap();
        let sessions = Sessions::default();
        let id = sessions.create(dir.path()).unwrap();
        let mut running = sessions.begin_turn(&id).unwrap();
        sessions.cancel(&id);
        running.cancelled().await;
        assert!(running.is_cancelled(), "still cancelled after waiting");
        assert!(!sessions.begin_turn(&id).unwrap().is_cancelled());
    }
}
