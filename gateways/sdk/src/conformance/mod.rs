//! The conformance suite every gateway binary passes (feature `conformance`).
//!
//! Each scenario is written once, against a [`Driver`]: a small per-platform
//! adapter that starts the platform side (a fake from `gorp-fakes`, or a real
//! homeserver), makes a user write in a conversation, reads what the bot
//! posted there (edits applied) and presses the platform's own controls. The
//! [`World`] around it is a real in-process gorpd plus the real gateway
//! binary, started, stopped and restarted the way an operator would.
//!
//! A platform's integration tests run the suite with [`conformance_suite!`]
//! (and [`conformance_faults!`] when its driver can inject platform errors),
//! keeping only the tests that are truly about that platform. Every scenario
//! asserts what a user would see, so a gateway that loses, repeats, misroutes
//! or mis-splits an answer fails it (the drivers' own crates show that with
//! deliberately broken drivers).

mod conversation;
mod restarts;
mod world;

pub use conversation::*;
pub use restarts::*;
pub use world::World;

use std::net::SocketAddr;
use std::time::Duration;
use tokio::process::Command;

/// The people a scenario writes as. Alice is the usual user; Bob and Carol
/// appear where a scenario needs more than one (allow-lists, fan-out).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum User {
    /// The usual user.
    Alice,
    /// A second user.
    Bob,
    /// A third user.
    Carol,
}

/// A message the bot posted, as a user sees it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posted {
    /// The platform's id for it.
    pub id: String,
    /// Its current text (edits applied; the plain text where it has markup).
    pub text: String,
    /// How often it was edited.
    pub edits: usize,
    /// The user message it answers (a quote, a reply or a thread), if any.
    pub reply_to: Option<String>,
}

/// What a scenario needs from one platform. Async methods run on the test's
/// own (single-threaded) runtime, so they need not be `Send`.
#[allow(async_fn_in_trait)]
pub trait Driver: Sized {
    /// The platform id the gateway publishes as (`telegram`).
    const PLATFORM: &'static str;
    /// The binary's name, as its error lines start (`gorp-telegram`).
    const BINARY: &'static str;
    /// The longest message the platform takes, in characters.
    const MAX_CHARS: usize;
    /// Whether an answer to a top-level message points at the question
    /// (Telegram and Matrix quote it; Slack answers top-level at top level).
    const QUOTES_THE_QUESTION: bool;
    /// Whether the gateway tells the platform a message is handled once it
    /// is in the gateway's spool, while gorpd is away (else only after gorpd
    /// acknowledged it).
    const SPOOLS_WHILE_GORPD_IS_AWAY: bool;
    /// How long a scenario waits for something on this platform.
    const PATIENCE: Duration = Duration::from_secs(15);

    /// A conversation the bot is in.
    type Channel: Clone + std::fmt::Debug;

    /// Starts the platform side (its fake, or a real server with accounts).
    async fn start() -> Self;

    /// The gateway binary, configured for this platform and for the gorpd at
    /// `gorpd` with gateway token `token` (its state directory kept by the
    /// driver, so restarts share it). Callers add flags.
    fn command(&self, gorpd: SocketAddr, token: &str) -> Command;

    /// The platform secrets the command carries: never to be logged.
    fn secrets(&self) -> Vec<String>;

    /// The direct conversation between `user` and the bot (opened if the
    /// platform needs that; the gateway is running).
    async fn dm(&self, user: User) -> Self::Channel;

    /// A group conversation `user` shares with the bot.
    async fn group(&self, user: User) -> Self::Channel;

    /// The channel id gorpd knows `channel` by.
    fn channel_id(&self, channel: &Self::Channel) -> String;

    /// `user` writes `text` in `channel`; returns the message's platform id.
    async fn say(&self, channel: &Self::Channel, user: User, text: &str) -> String;

    /// The bot's messages in `channel`, in order, as a user sees them now.
    fn posted(&self, channel: &Self::Channel) -> Vec<Posted>;

    /// The allow-list entry (`--allow`) that admits `user`.
    fn allow_entry(&self, user: User) -> String;

    /// `user`, not on the allow-list, tries to talk to the bot in their DM;
    /// returns once the platform shows the refusal (a notice, or a refused
    /// invite), having checked the refusal is all the bot did.
    async fn expect_refused(&self, user: User);

    /// `user` approves the permission request `prompt` in `channel` with the
    /// platform's own control (a button, a reaction), checking it is offered
    /// the way the platform shows such a choice.
    async fn approve(&self, channel: &Self::Channel, user: User, prompt: &Posted);

    /// How many inbound messages the platform has been told are handled
    /// (Telegram's confirmed offset, Slack's acknowledged envelopes), or
    /// `None` where a test cannot see that.
    fn acknowledged(&self) -> Option<usize>;
}

/// A driver whose platform can be made to refuse calls (a fake).
pub trait InjectFaults: Driver {
    /// The next `times` sends of a new message are refused with the
    /// platform's rate-limit answer, asking to wait one second.
    fn rate_limit_next_sends(&self, times: usize);

    /// How many times the gateway called the platform to send a new message
    /// (refused calls included).
    fn send_calls(&self) -> usize;
}

/// Polls `check` every 20 ms until it returns `Some`; panics with `what`
/// (and the last state `check` saw, if the caller prints it) after `patience`.
pub async fn wait_for<T>(patience: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        if let Some(found) = check() {
            return found;
        }
        assert!(tokio::time::Instant::now() < deadline, "not in {patience:?}: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Generates one `#[tokio::test]` per core scenario for `driver`: put it in
/// a module of the platform's integration tests.
#[macro_export]
macro_rules! conformance_suite {
    ($driver:ty) => {
        $crate::conformance_suite!(@tests $driver;
            a_dm_lands_in_dispatch_and_help_is_answered,
            create_and_join_in_a_group_then_the_agent_answers,
            an_answer_reaches_every_bound_channel_and_quotes_only_where_asked,
            a_long_answer_arrives_whole_split_at_the_limit_with_fences_closed,
            a_streamed_answer_is_one_message_edited_until_it_reads_the_final_text,
            a_permission_request_is_approved_with_the_platforms_control,
            a_user_not_on_the_allow_list_reaches_nothing,
            a_rejected_gateway_token_exits_non_zero_with_a_clear_message,
            bad_settings_exit_64_with_one_line,
            messages_sent_while_gorpd_restarts_are_answered_once,
            a_gateway_started_before_gorpd_says_so_and_keeps_retrying,
            a_restarted_gateway_reads_what_it_missed_and_repeats_nothing,
            a_gateway_stopped_while_answers_stream_delivers_each_final_once,
            a_gateway_killed_mid_answer_finishes_it_in_its_preview_after_a_restart,
        );
    };
    (@tests $driver:ty; $($scenario:ident),* $(,)?) => {
        $(
            #[::tokio::test]
            async fn $scenario() {
                $crate::conformance::$scenario::<$driver>().await;
            }
        )*
    };
}

/// Generates the scenarios that need injected platform errors, for a driver
/// implementing [`InjectFaults`].
#[macro_export]
macro_rules! conformance_faults {
    ($driver:ty) => {
        $crate::conformance_suite!(@tests $driver; a_rate_limited_send_is_delayed_not_dropped);
    };
}
