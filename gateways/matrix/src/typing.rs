//! Typing notices while a turn runs: started when gorpd accepted a
//! message, refreshed before the homeserver lets them lapse, stopped when
//! the room gets an answer (or after [`TYPING_AT_MOST`], whichever is first).

use matrix_sdk::{Client, Room};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Refresh interval (matrix-sdk sends notices that last 4 s).
const REFRESH: Duration = Duration::from_secs(3);

/// A turn that answers nothing for this long stops showing as typing.
const TYPING_AT_MOST: Duration = Duration::from_secs(120);

/// The rooms the bot shows as typing in.
#[derive(Debug, Default)]
pub(crate) struct Typing {
    rooms: Mutex<HashMap<String, CancellationToken>>,
}

impl Typing {
    fn rooms(&self) -> std::sync::MutexGuard<'_, HashMap<String, CancellationToken>> {
        self.rooms.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Shows the bot as typing in `room` until [`Typing::stop`].
    pub(crate) fn start(&self, room: &Room) {
        let stop = CancellationToken::new();
        if let Some(old) = self.rooms().insert(room.room_id().to_string(), stop.clone()) {
            old.cancel();
        }
        let room = room.clone();
        tokio::spawn(async move {
            let until = tokio::time::Instant::now() + TYPING_AT_MOST;
            while tokio::time::Instant::now() < until {
                if let Err(error) = room.typing_notice(true).await {
                    tracing::debug!(room = %room.room_id(), %error, "typing notice failed");
                }
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(REFRESH) => {}
                }
            }
            let _ = room.typing_notice(false).await;
        });
    }

    /// Stops the typing notice in `room`, if one runs.
    pub(crate) async fn stop(&self, room: &Room) {
        let Some(stop) = self.rooms().remove(room.room_id().as_str()) else { return };
        stop.cancel();
        if let Err(error) = room.typing_notice(false).await {
            tracing::debug!(room = %room.room_id(), %error, "could not end a typing notice");
        }
    }

    /// Stops every typing notice (on shutdown).
    pub(crate) async fn stop_all(&self, client: &Client) {
        let rooms: Vec<(String, CancellationToken)> = self.rooms().drain().collect();
        for (room_id, stop) in rooms {
            stop.cancel();
            let room = matrix_sdk::ruma::OwnedRoomId::try_from(room_id).ok().and_then(|id| client.get_room(&id));
            if let Some(room) = room {
                let _ = room.typing_notice(false).await;
            }
        }
    }
}
