//! The conformance driver for Matrix: a real Synapse with the bot and three
//! users registered, each user a real matrix-sdk client with its own device
//! in end-to-end encrypted rooms; answers read from what the user's client
//! decrypted, edits applied.

use super::synapse::{SERVER_NAME, Synapse};
use super::user::{Account, MATRIX_WAIT};
use gorp_gateway::conformance::{Driver, Posted, User};
use matrix_sdk::Room;
use matrix_sdk::ruma::OwnedEventId;
use matrix_sdk::ruma::events::reaction::ReactionEventContent;
use matrix_sdk::ruma::events::relation::Annotation;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::process::Command;
use tokio::sync::{Semaphore, SemaphorePermit};

/// Each test runs its own Synapse; two at a time keep a 2-core machine responsive.
static SYNAPSES: Semaphore = Semaphore::const_new(2);

pub(crate) const BOT_PASSWORD: &str = "bot-password";
pub(crate) const USER_PASSWORD: &str = "user-password";
pub(crate) const STORE_PASSPHRASE: &str = "store-passphrase";

/// Synapse with the bot and the users registered, the users' clients (logged
/// in on first use) and the gateway's state directory.
pub(crate) struct Matrix {
    pub(crate) synapse: Synapse,
    /// The bot's user id.
    pub(crate) bot: String,
    /// The gateway's state directory (kept across gateway restarts).
    pub(crate) state: tempfile::TempDir,
    accounts: Mutex<HashMap<User, Arc<Account>>>,
    _permit: SemaphorePermit<'static>,
}

/// A room, seen through the client of the user who opened it.
#[derive(Debug, Clone)]
pub(crate) struct Channel {
    pub(crate) user: User,
    pub(crate) room: Room,
}

fn localpart(user: User) -> &'static str {
    match user {
        User::Alice => "alice",
        User::Bob => "bob",
        User::Carol => "carol",
    }
}

/// `user`'s Matrix id.
pub(crate) fn matrix_id(user: User) -> String {
    format!("@{}:{SERVER_NAME}", localpart(user))
}

impl Matrix {
    /// `user`'s client, logged in (with a new device) on first use.
    pub(crate) async fn account(&self, user: User) -> Arc<Account> {
        if let Some(account) = self.accounts.lock().unwrap().get(&user) {
            return account.clone();
        }
        let account = Arc::new(Account::login(&self.synapse.url, &matrix_id(user), USER_PASSWORD).await);
        self.accounts.lock().unwrap().entry(user).or_insert(account).clone()
    }

    fn logged_in(&self, user: User) -> Arc<Account> {
        self.accounts.lock().unwrap().get(&user).cloned().expect("the user opened the room")
    }

    /// The gateway binary for `gorpd`, every test user allowed (flags add to or override this).
    fn base_command(&self, gorpd: SocketAddr, token: &str) -> Command {
        // GORP_MATRIX_BIN runs the tests (or the measurement) against another build, e.g. release.
        let binary = std::env::var("GORP_MATRIX_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_gorp-matrix").to_owned());
        let allowed = [User::Alice, User::Bob, User::Carol].map(matrix_id).join(",");
        let mut command = Command::new(binary);
        command
            .env("GORP_GORPD", format!("http://{gorpd}"))
            .env("GORP_TOKEN", token)
            .env("GORP_ALLOW", allowed)
            .env("GORP_MATRIX_HOMESERVER", &self.synapse.url)
            .env("GORP_MATRIX_USER", &self.bot)
            .env("GORP_MATRIX_PASSWORD", BOT_PASSWORD)
            .env("GORP_MATRIX_STATE_DIR", self.state.path())
            .env("GORP_MATRIX_STORE_PASSPHRASE", STORE_PASSPHRASE)
            .env(
                "RUST_LOG",
                std::env::var("GORP_TEST_LOG").unwrap_or_else(|_| "info,matrix_sdk=off,matrix_sdk_crypto=off".into()),
            )
            .kill_on_drop(true);
        command
    }
}

impl Driver for Matrix {
    const PLATFORM: &'static str = "matrix";
    const BINARY: &'static str = "gorp-matrix";
    const MAX_CHARS: usize = 12_000;
    const QUOTES_THE_QUESTION: bool = true;
    const SPOOLS_WHILE_GORPD_IS_AWAY: bool = false;
    const PATIENCE: Duration = MATRIX_WAIT;
    type Channel = Channel;

    async fn start() -> Self {
        let permit = SYNAPSES.acquire().await.unwrap();
        let synapse = Synapse::start().await;
        let bot = synapse.register("gorp", BOT_PASSWORD).await;
        for user in [User::Alice, User::Bob, User::Carol] {
            synapse.register(localpart(user), USER_PASSWORD).await;
        }
        let state = tempfile::tempdir().unwrap();
        Self { synapse, bot, state, accounts: Mutex::default(), _permit: permit }
    }

    fn command(&self, gorpd: SocketAddr, token: &str) -> Command {
        self.base_command(gorpd, token)
    }

    fn secrets(&self) -> Vec<String> {
        vec![BOT_PASSWORD.to_owned(), STORE_PASSPHRASE.to_owned()]
    }

    async fn dm(&self, user: User) -> Channel {
        let room = self.account(user).await.dm(&self.bot).await;
        Channel { user, room }
    }

    async fn group(&self, user: User) -> Channel {
        let room = self.account(user).await.group(&self.bot).await;
        Channel { user, room }
    }

    fn channel_id(&self, channel: &Channel) -> String {
        channel.room.room_id().to_string()
    }

    async fn say(&self, channel: &Channel, user: User, text: &str) -> String {
        let account = self.account(user).await;
        let room = account.client.get_room(channel.room.room_id()).expect("the user is in the room");
        account.say(&room, text).await.to_string()
    }

    fn posted(&self, channel: &Channel) -> Vec<Posted> {
        let account = self.logged_in(channel.user);
        let seen = account.seen(&channel.room);
        let edits = |id: &OwnedEventId| seen.iter().filter(|s| s.replaces() == Some(id.as_str())).count();
        let posted = account.shown(&channel.room).into_iter().map(|shown| Posted {
            id: shown.event_id.to_string(),
            text: shown.body().to_owned(),
            edits: edits(&shown.event_id),
            reply_to: shown.content["m.relates_to"]["m.in_reply_to"]["event_id"].as_str().map(str::to_owned),
        });
        posted.collect()
    }

    fn allow_entry(&self, user: User) -> String {
        matrix_id(user)
    }

    async fn expect_refused(&self, user: User) {
        let account = self.account(user).await;
        let room = account.refused_by(&self.bot).await;
        account.say(&room, "!help").await;
    }

    async fn approve(&self, channel: &Channel, user: User, prompt: &Posted) {
        assert!(prompt.text.contains("React with ✅"), "{prompt:?}");
        let account = self.account(user).await;
        let room = account.client.get_room(channel.room.room_id()).expect("the user is in the room");
        let prompt = OwnedEventId::try_from(prompt.id.as_str()).expect("an event id");
        room.send(ReactionEventContent::new(Annotation::new(prompt, "✅".to_owned()))).await.expect("react");
    }

    fn acknowledged(&self) -> Option<usize> {
        None
    }
}
