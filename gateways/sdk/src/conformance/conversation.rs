//! Conversation scenarios: DISPATCH in a DM and a group, fan-out to every
//! bound channel, long and streamed answers, permission requests, the
//! allow-list, refused tokens and bad settings, and platform rate limits.

use super::{Driver, InjectFaults, User, World, wait_for};
use crate::{NOT_ALLOWED_TEXT, split_message};
use std::process::Stdio;

/// A DM lands in DISPATCH; `!help` is answered (quoting the question where
/// the platform quotes); the platform is told the message is handled; gorpd
/// stored it once.
pub async fn a_dm_lands_in_dispatch_and_help_is_answered<D: Driver>() {
    let world = World::<D>::start().await;
    let gateway = world.gateway(&[]);
    let dm = world.platform.dm(User::Alice).await;
    let asked = world.platform.say(&dm, User::Alice, "!help").await;
    let help = world.answer(&dm, "!join").await;
    assert!(help.text.contains("!create"), "{help:?}");
    let quoted = D::QUOTES_THE_QUESTION.then_some(asked);
    assert_eq!(help.reply_to, quoted, "the answer's relation to the question: {help:?}");
    if world.platform.acknowledged().is_some() {
        let handled = || (world.platform.acknowledged() >= Some(1)).then_some(());
        wait_for(D::PATIENCE, "the platform is told the message is handled", handled).await;
    }
    assert_eq!(world.inbound().await, 1);
    gateway.stop().await;
    world.stop().await;
}

/// `!create` and `!join` in a group bind it; the agent then answers there.
pub async fn create_and_join_in_a_group_then_the_agent_answers<D: Driver>() {
    let world = World::<D>::start().await;
    let gateway = world.gateway(&[]);
    let group = world.platform.group(User::Alice).await;
    world.platform.say(&group, User::Alice, "!create research").await;
    world.answer(&group, "research").await;
    world.platform.say(&group, User::Alice, "!join research").await;
    world.answer(&group, "now bound to research").await;
    world.platform.say(&group, User::Alice, "hello agent").await;
    world.answer(&group, "echo: hello agent").await;
    gateway.stop().await;
    world.stop().await;
}

/// Two DMs bound to one session: a question in one is answered in both,
/// pointing at the question only in the DM that asked.
pub async fn an_answer_reaches_every_bound_channel_and_quotes_only_where_asked<D: Driver>() {
    let world = World::<D>::start().await;
    let gateway = world.gateway(&[]);
    let alice = world.platform.dm(User::Alice).await;
    let bob = world.platform.dm(User::Bob).await;
    world.bind("shared", &alice).await;
    world.bind_more("shared", &bob).await;
    let asked = world.platform.say(&alice, User::Alice, "question").await;
    let in_alice = world.answer(&alice, "echo: question").await;
    let in_bob = world.answer(&bob, "echo: question").await;
    assert_eq!(in_alice.reply_to, D::QUOTES_THE_QUESTION.then_some(asked), "{in_alice:?}");
    assert_eq!(in_bob.reply_to, None, "bob's DM did not ask: {in_bob:?}");
    assert_eq!(world.texts(&alice).len(), 1, "{:?}", world.texts(&alice));
    assert_eq!(world.texts(&bob).len(), 1, "{:?}", world.texts(&bob));
    gateway.stop().await;
    world.stop().await;
}

/// A question as long as the platform takes, whose echo is longer: a code
/// block that ends near the limit, then padding.
fn longest_question(max_chars: usize) -> String {
    let mut text = "intro words ".repeat(max_chars * 6 / 10 / 12);
    text.push_str("\n\n```rust\n");
    let mut line = 0;
    while text.chars().count() + 40 < max_chars {
        text.push_str(&format!("let value_{line} = {line};\n"));
        line += 1;
    }
    text.push_str("```\n");
    while text.chars().count() < max_chars {
        text.push('.');
    }
    text
}

/// An answer over the platform's limit arrives whole, as the pieces
/// `split_message` makes: none over the limit, none with an open fence.
pub async fn a_long_answer_arrives_whole_split_at_the_limit_with_fences_closed<D: Driver>() {
    let world = World::<D>::start().await;
    let gateway = world.gateway(&[]);
    let dm = world.platform.dm(User::Alice).await;
    world.bind("long", &dm).await;
    let question = longest_question(D::MAX_CHARS);
    world.platform.say(&dm, User::Alice, &question).await;
    let expected = split_message(&format!("echo: {question}"), D::MAX_CHARS);
    assert!(expected.len() >= 2, "the answer is over the limit");
    world.texts_become(&dm, &expected).await;
    let texts = world.texts(&dm);
    assert!(texts.iter().all(|t| t.chars().count() <= D::MAX_CHARS), "a piece over the limit");
    assert!(texts.iter().all(|t| t.matches("```").count() % 2 == 0), "every piece closes its fences");
    gateway.stop().await;
    world.stop().await;
}

/// A streamed answer is one message, shown early and edited until it reads
/// the final text.
pub async fn a_streamed_answer_is_one_message_edited_until_it_reads_the_final_text<D: Driver>() {
    let world = World::<D>::slow(300).await;
    let gateway = world.gateway(&["--edit-interval-ms", "100"]);
    let dm = world.platform.dm(User::Alice).await;
    world.bind("slow", &dm).await;
    world.platform.say(&dm, User::Alice, "one two three four five six").await;
    let answer = "echo: one two three four five six";
    let shown = world.answer(&dm, answer).await;
    assert_eq!(shown.text, answer);
    assert!(shown.edits >= 1, "shown while streaming, then edited to the final text: {shown:?}");
    assert_eq!(world.texts(&dm), vec![answer.to_owned()], "one message, no second copy");
    gateway.stop().await;
    world.stop().await;
}

/// A permission request is offered with the platform's control; approving
/// it resolves the request and the agent goes on.
pub async fn a_permission_request_is_approved_with_the_platforms_control<D: Driver>() {
    let world = World::<D>::with_scripted_agent().await;
    let gateway = world.gateway(&[]);
    let dm = world.platform.dm(User::Alice).await;
    world.platform.say(&dm, User::Alice, "!create careful --agent scripted").await;
    world.answer(&dm, "careful").await;
    world.platform.say(&dm, User::Alice, "!join careful").await;
    world.answer(&dm, "now bound to careful").await;
    world.platform.say(&dm, User::Alice, "ask to write").await;
    let prompt = world.answer(&dm, "write notes.txt").await;
    world.platform.approve(&dm, User::Alice, &prompt).await;
    world.answer(&dm, "decision: yes").await;
    gateway.stop().await;
    world.stop().await;
}

/// With an allow-list, a user not on it is refused and reaches nothing;
/// the users on it are answered.
pub async fn a_user_not_on_the_allow_list_reaches_nothing<D: Driver>() {
    let world = World::<D>::start().await;
    let allowed = [User::Bob, User::Carol].map(|u| world.platform.allow_entry(u)).join(",");
    let gateway = world.gateway(&["--allow", &allowed]);
    world.platform.expect_refused(User::Alice).await;
    assert_eq!(world.inbound().await, 0, "nothing from a refused user reaches gorpd");
    for user in [User::Bob, User::Carol] {
        let dm = world.platform.dm(user).await;
        world.platform.say(&dm, user, "!help").await;
        world.answer(&dm, "!join").await;
    }
    assert_eq!(world.inbound().await, 2);
    gateway.stop().await;
    world.stop().await;
}

/// For drivers of platforms that refuse with a notice: `texts`, the bot's
/// messages in the refused user's DM, are that notice and nothing else.
pub fn assert_refused_by_notice(texts: &[String]) {
    assert_eq!(texts, [NOT_ALLOWED_TEXT.to_owned()], "the refused user gets the notice and nothing else");
}

/// Runs the gateway to its exit; returns (success, exit code, stderr).
async fn run_to_exit<D: Driver>(mut command: tokio::process::Command) -> (bool, Option<i32>, String) {
    command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
    let output = tokio::time::timeout(D::PATIENCE, command.output())
        .await
        .expect("the gateway exits in time")
        .expect("run the gateway");
    (output.status.success(), output.status.code(), String::from_utf8_lossy(&output.stderr).into_owned())
}

/// A gateway token gorpd refuses ends the gateway with a clear message
/// that carries none of the platform's secrets.
pub async fn a_rejected_gateway_token_exits_non_zero_with_a_clear_message<D: Driver>() {
    let world = World::<D>::start().await;
    let (success, _, stderr) = run_to_exit::<D>(world.command("not-a-real-token")).await;
    assert!(!success, "{stderr}");
    assert!(stderr.contains("gorpd rejected the gateway token"), "{stderr}");
    for secret in world.platform.secrets() {
        assert!(!stderr.contains(&secret), "a platform secret was logged: {stderr}");
    }
    world.stop().await;
}

/// An unknown flag or an empty gateway token: exit code 64 and one line
/// naming the binary.
pub async fn bad_settings_exit_64_with_one_line<D: Driver>() {
    let world = World::<D>::start().await;
    let mut unknown_flag = world.command(&world.token);
    unknown_flag.arg("--no-such-flag");
    let (_, code, stderr) = run_to_exit::<D>(unknown_flag).await;
    assert_eq!(code, Some(64), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with(&format!("{}: ", D::BINARY)), "{stderr}");

    let (_, code, stderr) = run_to_exit::<D>(world.command("")).await;
    assert_eq!(code, Some(64), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains(&format!("{}: the gateway token is empty", D::BINARY)), "{stderr}");
    world.stop().await;
}

/// A rate-limited send is retried after the wait the platform asked for:
/// delivered late, once, not dropped.
pub async fn a_rate_limited_send_is_delayed_not_dropped<D: InjectFaults>() {
    let world = World::<D>::start().await;
    world.platform.rate_limit_next_sends(2);
    let gateway = world.gateway(&[]);
    let dm = world.platform.dm(User::Alice).await;
    world.platform.say(&dm, User::Alice, "!help").await;
    world.answer(&dm, "!join").await;
    let sends = world.platform.send_calls();
    assert!(sends >= 3, "two refused sends, then the one that worked: {sends}");
    assert_eq!(world.texts(&dm).len(), 1, "delivered exactly once");
    gateway.stop().await;
    world.stop().await;
}
