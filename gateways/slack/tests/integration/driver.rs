//! The conformance driver for Slack: the fake Web API + Socket Mode, users
//! as Slack user ids, answers read from what the bot posted (Slack's own
//! escaping kept, as the API carries it).

use super::{APP_TOKEN, BOT_TOKEN, gateway_command};
use gorp_fakes::FakeSlack;
use gorp_fakes::slack::FailureKind;
use gorp_gateway::conformance::{self, Driver, InjectFaults, Posted, User, wait_for};
use std::net::SocketAddr;
use tokio::process::Command;

/// The channel the group scenarios use.
const GROUP: &str = "C0RESEARCH";

/// The fake Slack and the gateway's state directory.
pub(crate) struct Slack {
    fake: FakeSlack,
    state: tempfile::TempDir,
}

fn slack_user(user: User) -> &'static str {
    match user {
        User::Alice => "U0ALICE",
        User::Bob => "U0BOB",
        User::Carol => "U0CAROL",
    }
}

impl Driver for Slack {
    const PLATFORM: &'static str = "slack";
    const BINARY: &'static str = "gorp-slack";
    const MAX_CHARS: usize = 4000;
    const QUOTES_THE_QUESTION: bool = false;
    const SPOOLS_WHILE_GORPD_IS_AWAY: bool = true;
    type Channel = String;

    async fn start() -> Self {
        let fake = FakeSlack::start(BOT_TOKEN, APP_TOKEN).await;
        Self { fake, state: tempfile::tempdir().expect("state dir") }
    }

    fn command(&self, gorpd: SocketAddr, token: &str) -> Command {
        gateway_command(gorpd, token, &self.fake, self.state.path())
    }

    fn secrets(&self) -> Vec<String> {
        vec![BOT_TOKEN.to_owned(), APP_TOKEN.to_owned()]
    }

    async fn dm(&self, user: User) -> String {
        FakeSlack::dm_channel(slack_user(user))
    }

    async fn group(&self, _user: User) -> String {
        GROUP.to_owned()
    }

    fn channel_id(&self, channel: &String) -> String {
        channel.clone()
    }

    async fn say(&self, channel: &String, user: User, text: &str) -> String {
        let user = slack_user(user);
        if *channel == FakeSlack::dm_channel(user) {
            self.fake.dm(user, text)
        } else {
            self.fake.channel_message(channel, user, text, None)
        }
    }

    fn posted(&self, channel: &String) -> Vec<Posted> {
        let posted = self.fake.posted().into_iter().filter(|p| p.channel == *channel);
        posted.map(|p| Posted { id: p.ts, text: p.text, edits: p.edits, reply_to: p.thread_ts }).collect()
    }

    fn allow_entry(&self, user: User) -> String {
        slack_user(user).to_owned()
    }

    async fn expect_refused(&self, user: User) {
        let dm = self.dm(user).await;
        self.say(&dm, user, "!help").await;
        let texts = || self.fake.texts(&dm);
        wait_for(Self::PATIENCE, "the not-allowed notice", || (!texts().is_empty()).then_some(())).await;
        conformance::assert_refused_by_notice(&texts());
    }

    async fn approve(&self, channel: &String, user: User, prompt: &Posted) {
        let posted = self.fake.posted().into_iter().find(|p| p.ts == prompt.id).expect("the prompt");
        let blocks = posted.blocks.expect("the prompt has blocks");
        assert_eq!(blocks[0]["type"], "section");
        assert!(blocks[0]["text"]["text"].as_str().unwrap_or_default().contains("write notes.txt"), "{blocks}");
        let buttons = &blocks[1]["elements"];
        let shown = |i: usize| (buttons[i]["text"]["text"].as_str(), buttons[i]["style"].as_str());
        assert_eq!((shown(0), shown(1)), ((Some("Approve"), Some("primary")), (Some("Deny"), Some("danger"))));
        assert_eq!((&buttons[0]["action_id"], &buttons[1]["action_id"]), (&"gorp_approve".into(), &"gorp_deny".into()));
        let id = buttons[0]["value"].as_str().expect("a request id");
        assert_eq!(buttons[1]["value"].as_str(), Some(id));
        self.fake.click(slack_user(user), channel, &prompt.id, "gorp_approve", id);
    }

    fn acknowledged(&self) -> Option<usize> {
        Some(self.fake.acked().len())
    }
}

impl InjectFaults for Slack {
    fn rate_limit_next_sends(&self, times: usize) {
        self.fake.fail_next("chat.postMessage", times, FailureKind::RateLimited { retry_after: 1 });
    }

    fn send_calls(&self) -> usize {
        self.fake.calls().iter().filter(|c| *c == "chat.postMessage").count()
    }
}
