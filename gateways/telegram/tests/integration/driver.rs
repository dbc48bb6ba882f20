//! The conformance driver for Telegram: the fake Bot API, users as
//! Telegram ids and usernames, answers read from what the bot sent.

use gorp_fakes::FakeTelegram;
use gorp_gateway::conformance::{self, Driver, InjectFaults, Posted, User, wait_for};
use std::net::SocketAddr;
use tokio::process::Command;

/// The bot token the fake accepts.
pub(crate) const BOT_TOKEN: &str = "123456:test-bot-token";

/// A group chat id (Telegram's groups are negative).
const GROUP: i64 = -100_123;

/// The fake Bot API and the gateway's state directory. With `REPEATS`, the
/// driver reports every bot message twice: a gateway that repeats answers,
/// for the tests that show the suite fails one.
pub(crate) struct Telegram<const REPEATS: bool = false> {
    pub(crate) fake: FakeTelegram,
    state: tempfile::TempDir,
}

/// A chat: private chats have the user's id.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Chat {
    pub(crate) id: i64,
    group: bool,
}

/// A user's Telegram id and username.
pub(crate) fn telegram_user(user: User) -> (i64, &'static str) {
    match user {
        User::Alice => (42, "alice"),
        User::Bob => (8, "bob"),
        User::Carol => (7, "carol"),
    }
}

impl<const REPEATS: bool> Driver for Telegram<REPEATS> {
    const PLATFORM: &'static str = "telegram";
    const BINARY: &'static str = "gorp-telegram";
    const MAX_CHARS: usize = 4096;
    const QUOTES_THE_QUESTION: bool = true;
    const SPOOLS_WHILE_GORPD_IS_AWAY: bool = false;
    type Channel = Chat;

    async fn start() -> Self {
        Self { fake: FakeTelegram::start(BOT_TOKEN).await, state: tempfile::tempdir().expect("state dir") }
    }

    fn command(&self, gorpd: SocketAddr, token: &str) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_gorp-telegram"));
        command
            .env("GORP_GORPD", format!("http://{gorpd}"))
            .env("GORP_TOKEN", token)
            .env("GORP_TELEGRAM_TOKEN", BOT_TOKEN)
            .env("GORP_TELEGRAM_API_URL", self.fake.url())
            .env("GORP_TELEGRAM_STATE_DIR", self.state.path())
            .env("RUST_LOG", "info")
            .kill_on_drop(true);
        command
    }

    fn secrets(&self) -> Vec<String> {
        vec![BOT_TOKEN.to_owned()]
    }

    async fn dm(&self, user: User) -> Chat {
        Chat { id: telegram_user(user).0, group: false }
    }

    async fn group(&self, _user: User) -> Chat {
        Chat { id: GROUP, group: true }
    }

    fn channel_id(&self, chat: &Chat) -> String {
        chat.id.to_string()
    }

    async fn say(&self, chat: &Chat, user: User, text: &str) -> String {
        let (id, name) = telegram_user(user);
        let message =
            if chat.group { self.fake.group_message(chat.id, id, name, text) } else { self.fake.dm(id, name, text) };
        message.to_string()
    }

    fn posted(&self, chat: &Chat) -> Vec<Posted> {
        let sent = self.fake.sent().into_iter().filter(|m| m.chat_id == chat.id);
        let posted = sent.map(|m| Posted {
            id: m.message_id.to_string(),
            text: m.text,
            edits: m.edits,
            reply_to: m.reply_to.map(|id| id.to_string()),
        });
        posted.flat_map(|p| std::iter::repeat_n(p, if REPEATS { 2 } else { 1 })).collect()
    }

    fn allow_entry(&self, user: User) -> String {
        // Bob by his username (any case), Carol by her numeric id.
        match user {
            User::Bob => "@Bob".to_owned(),
            other => telegram_user(other).0.to_string(),
        }
    }

    async fn expect_refused(&self, user: User) {
        let chat = self.dm(user).await;
        self.say(&chat, user, "!help").await;
        let texts = || self.fake.texts(chat.id);
        wait_for(Self::PATIENCE, "the not-allowed notice", || (!texts().is_empty()).then_some(())).await;
        conformance::assert_refused_by_notice(&texts());
    }

    async fn approve(&self, chat: &Chat, user: User, prompt: &Posted) {
        let sent = self.fake.sent().into_iter().find(|m| m.chat_id == chat.id && m.message_id.to_string() == prompt.id);
        let markup = sent.and_then(|m| m.reply_markup).expect("the prompt has buttons");
        let buttons = &markup["inline_keyboard"][0];
        assert_eq!((&buttons[0]["text"], &buttons[1]["text"]), (&"Approve".into(), &"Deny".into()), "{markup}");
        let approve = buttons[0]["callback_data"].as_str().expect("callback data");
        assert!(approve.starts_with("a:") && approve.len() <= 64, "{approve}");
        assert!(buttons[1]["callback_data"].as_str().is_some_and(|d| d.starts_with("d:")), "{markup}");
        let (id, name) = telegram_user(user);
        let query = self.fake.press(id, name, prompt.id.parse().expect("a message id"), approve);
        let answered = || self.fake.answered_callbacks().contains(&query).then_some(());
        wait_for(Self::PATIENCE, "the button press is answered", answered).await;
    }

    fn acknowledged(&self) -> Option<usize> {
        // The confirmed offset is the next update id wanted; ids start at 1.
        Some(usize::try_from(self.fake.confirmed_offset() - 1).unwrap_or(0))
    }
}

impl InjectFaults for Telegram {
    fn rate_limit_next_sends(&self, times: usize) {
        self.fake.fail_next("sendMessage", times, FakeTelegram::too_many_requests(1));
    }

    fn send_calls(&self) -> usize {
        self.fake.calls().iter().filter(|c| *c == "sendmessage").count()
    }
}
