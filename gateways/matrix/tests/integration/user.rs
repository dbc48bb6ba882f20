//! The user's side: a real matrix-sdk client (its own device, in-memory
//! crypto store) that syncs in the background and records every room
//! message it sees, decrypted, with whether it arrived encrypted.

use matrix_sdk::config::SyncSettings;
use matrix_sdk::deserialized_responses::EncryptionInfo;
use matrix_sdk::ruma::events::room::message::{OriginalSyncRoomMessageEvent, RoomMessageEventContent};
use matrix_sdk::ruma::{OwnedEventId, OwnedRoomId, OwnedUserId};
use matrix_sdk::{Client, Room};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long a test waits for something on Matrix (key exchange included).
pub(crate) const MATRIX_WAIT: Duration = Duration::from_secs(60);

/// A message the user's client saw.
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    pub(crate) room: OwnedRoomId,
    pub(crate) event_id: OwnedEventId,
    pub(crate) sender: OwnedUserId,
    /// The decrypted content as JSON.
    pub(crate) content: serde_json::Value,
    pub(crate) encrypted: bool,
    /// The homeserver's timestamp of the event, in milliseconds.
    pub(crate) server_ts: u64,
}

impl Seen {
    pub(crate) fn body(&self) -> &str {
        self.content["body"].as_str().unwrap_or_default()
    }

    /// The event this one replaces (an edit), if any.
    pub(crate) fn replaces(&self) -> Option<&str> {
        let relates = &self.content["m.relates_to"];
        (relates["rel_type"] == "m.replace").then(|| relates["event_id"].as_str().unwrap_or_default())
    }
}

/// A logged-in user with a syncing client.
pub(crate) struct Account {
    pub(crate) client: Client,
    pub(crate) id: OwnedUserId,
    seen: Arc<Mutex<Vec<Seen>>>,
    sync: tokio::task::JoinHandle<()>,
}

impl Account {
    pub(crate) async fn login(homeserver: &str, user_id: &str, password: &str) -> Self {
        let client = Client::builder().homeserver_url(homeserver).build().await.expect("client");
        client
            .matrix_auth()
            .login_username(user_id, password)
            .initial_device_display_name("test user")
            .send()
            .await
            .expect("user login");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        client.add_event_handler(
            move |event: OriginalSyncRoomMessageEvent, room: Room, info: Option<EncryptionInfo>| {
                let record = record.clone();
                async move {
                    let content = serde_json::to_value(&event.content).unwrap();
                    let seen = Seen {
                        room: room.room_id().to_owned(),
                        event_id: event.event_id.clone(),
                        sender: event.sender.clone(),
                        content,
                        encrypted: info.is_some(),
                        server_ts: event.origin_server_ts.0.into(),
                    };
                    record.lock().unwrap().push(seen);
                }
            },
        );
        client.sync_once(SyncSettings::default()).await.expect("first sync");
        let syncing = client.clone();
        let sync = tokio::spawn(async move {
            let _ = syncing.sync(SyncSettings::default().timeout(Duration::from_millis(500))).await;
        });
        let id = client.user_id().unwrap().to_owned();
        Self { client, id, seen, sync }
    }

    /// Opens an encrypted DM with `bot` and waits until the bot joined.
    pub(crate) async fn dm(&self, bot: &str) -> Room {
        let bot = OwnedUserId::try_from(bot).unwrap();
        let room = self.client.create_dm(&bot).await.expect("create dm");
        assert!(room.latest_encryption_state().await.unwrap().is_encrypted(), "the DM is encrypted");
        self.wait_joined(&room, &bot).await;
        room
    }

    /// Opens an encrypted group room (not a DM), invites `bot` and waits
    /// until the bot joined.
    pub(crate) async fn group(&self, bot: &str) -> Room {
        use matrix_sdk::ruma::api::client::room::create_room::v3::{Request, RoomPreset};
        use matrix_sdk::ruma::events::InitialStateEvent;
        use matrix_sdk::ruma::events::room::encryption::RoomEncryptionEventContent;
        let bot = OwnedUserId::try_from(bot).unwrap();
        let encryption = RoomEncryptionEventContent::with_recommended_defaults();
        let mut request = Request::new();
        request.invite = vec![bot.clone()];
        request.name = Some("a group".to_owned());
        request.preset = Some(RoomPreset::PrivateChat);
        request.initial_state = vec![InitialStateEvent::with_empty_state_key(encryption).to_raw_any()];
        let room = self.client.create_room(request).await.expect("create a group room");
        self.wait_joined(&room, &bot).await;
        room
    }

    /// Invites `bot` to a new DM and waits until the bot refused (left);
    /// returns the room.
    pub(crate) async fn refused_by(&self, bot: &str) -> Room {
        let bot = OwnedUserId::try_from(bot).unwrap();
        let room = self.client.create_dm(&bot).await.expect("create dm");
        let deadline = tokio::time::Instant::now() + MATRIX_WAIT;
        loop {
            let _ = room.sync_members().await;
            let member = room.get_member(&bot).await.unwrap().expect("the bot was invited");
            if *member.membership() == matrix_sdk::ruma::events::room::member::MembershipState::Leave {
                return room;
            }
            assert!(tokio::time::Instant::now() < deadline, "the invite was not refused");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits until `member` has joined `room`.
    pub(crate) async fn wait_joined(&self, room: &Room, member: &OwnedUserId) {
        let deadline = tokio::time::Instant::now() + MATRIX_WAIT;
        loop {
            let _ = room.sync_members().await;
            if let Ok(Some(m)) = room.get_member(member).await
                && *m.membership() == matrix_sdk::ruma::events::room::member::MembershipState::Join
            {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "{member} did not join {}", room.room_id());
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Sends a plain text message; returns its event id.
    pub(crate) async fn say(&self, room: &Room, text: &str) -> OwnedEventId {
        room.send(RoomMessageEventContent::text_plain(text)).await.expect("send").response.event_id
    }

    /// The homeserver's timestamp of one's own event, once it came back in a sync.
    pub(crate) async fn own_server_ts(&self, event_id: &OwnedEventId) -> u64 {
        let deadline = tokio::time::Instant::now() + MATRIX_WAIT;
        loop {
            if let Some(own) = self.seen.lock().unwrap().iter().find(|s| s.event_id == *event_id) {
                return own.server_ts;
            }
            assert!(tokio::time::Instant::now() < deadline, "{event_id} never came back");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Everything seen so far from others in `room`.
    pub(crate) fn seen(&self, room: &Room) -> Vec<Seen> {
        let seen = self.seen.lock().unwrap();
        seen.iter().filter(|s| s.room == room.room_id() && s.sender != self.id).cloned().collect()
    }

    /// Waits for a message from others in `room` whose shown text (edits
    /// applied) contains `needle`; returns it as shown.
    pub(crate) async fn answer(&self, room: &Room, needle: &str) -> Seen {
        self.wait_for(room, |s| s.body().contains(needle)).await
    }

    /// Waits until a message in `room`, as shown (edits applied), satisfies `check`.
    pub(crate) async fn wait_for(&self, room: &Room, check: impl Fn(&Seen) -> bool) -> Seen {
        let deadline = tokio::time::Instant::now() + MATRIX_WAIT;
        loop {
            if let Some(found) = self.shown(room).into_iter().find(|s| check(s)) {
                return found;
            }
            assert!(tokio::time::Instant::now() < deadline, "not seen in time; seen: {:#?}", self.seen(room));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The messages from others in `room` as a client shows them: each
    /// edit's new content replaces its original's (the relation is kept).
    pub(crate) fn shown(&self, room: &Room) -> Vec<Seen> {
        let mut shown: Vec<Seen> = Vec::new();
        for s in self.seen(room) {
            match s.replaces() {
                Some(original) => {
                    if let Some(entry) = shown.iter_mut().find(|e| e.event_id.as_str() == original) {
                        let relates = entry.content["m.relates_to"].clone();
                        entry.content = s.content["m.new_content"].clone();
                        entry.content["m.relates_to"] = relates;
                        entry.encrypted &= s.encrypted;
                    }
                }
                None => shown.push(s),
            }
        }
        shown
    }

    /// The shown text of each message from others, in order.
    pub(crate) fn texts(&self, room: &Room) -> Vec<String> {
        self.shown(room).iter().map(|s| s.body().to_owned()).collect()
    }
}

impl Drop for Account {
    fn drop(&mut self) {
        self.sync.abort();
    }
}
