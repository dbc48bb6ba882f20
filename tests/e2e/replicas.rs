//! Several gorpd replicas on one Postgres (README "Scaling out"): the real
//! `gorpd` binary started twice on one database, each replica with its own
//! data directory and ports, with the real gateway binaries and the fake
//! platforms. Every message is answered exactly once on every bound platform
//! whichever replica received it and whichever owns the session; a replica
//! SIGKILLed mid-turn is taken over within its lease (the turn reported
//! interrupted, never run again, the queue behind it answered); a gateway
//! fails over to a live replica without losing or repeating a delivery.
//!
//! They need a Postgres server (`GORP_TEST_POSTGRES`, see tests/postgres.sh):
//! tests/run.sh runs them in its Postgres pass; without one they are skipped.

use crate::chat_gateways::{ChatGateways, TELEGRAM_BOT, Upstream, telegram_gateway};
use crate::gorpd_process::{self, Gorpd};
use gorp_fakes::{FakeSlack, FakeTelegram, GatewayProcess, profile_binary};
use gorp_proto::v1 as pb;
use gorpd::testing::Control;
use gorpd::testing::clients::{Publisher, bind, create, message, tell};
use std::future::Future;
use std::path::Path;
use std::time::{Duration, Instant};

/// The replicas' lease: short, so a takeover comes quickly.
const LEASE_SECS: u64 = 2;
/// How long answers may take to arrive, polling and NOTIFY across replicas included.
const ANSWERS_WITHIN: Duration = Duration::from_secs(30);
/// How long a test watches for a repeat after everything arrived.
const QUIET: Duration = Duration::from_secs(2);

/// The replicas of one test: one Postgres database (a fresh one per test,
/// which gorpd creates) and a directory with each replica's data and config.
struct Cluster {
    dir: tempfile::TempDir,
    store_url: String,
}

impl Cluster {
    /// A fresh database on `GORP_TEST_POSTGRES`'s server; `None` (the test
    /// skipped, and says so) when no server is given.
    fn new(test: &str) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let Some(store_url) = gorpd::store::test_store_url(dir.path()) else {
            eprintln!("{test}: skipped, it needs a Postgres server: set GORP_TEST_POSTGRES (tests/postgres.sh)");
            return None;
        };
        Some(Self { dir, store_url })
    }

    fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Starts replica `name` (its replica_name too) with `settings` (TOML
    /// lines) besides what replicas share, as README "Scaling out" sets them
    /// up: the store, the lease, and the files and workspaces directories.
    async fn replica(&self, name: &str, settings: &str) -> Gorpd {
        let shared = self.dir().join("shared");
        let config = format!(
            "store_url = \"{}\"\nlease_secs = {LEASE_SECS}\nreplica_name = \"{name}\"\n\
             files_dir = {:?}\nworkspace_root = {:?}\n{settings}\n",
            self.store_url,
            shared.join("files").display().to_string(),
            shared.join("workspaces").display().to_string(),
        );
        Gorpd::spawn(name, gorpd_process::command(self.dir(), name, &config)).await
    }
}

/// Polls `check` every 20 ms until it returns `Some`; panics with `what` after `limit`.
async fn within_limit<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(started.elapsed() < limit, "not within {limit:?}: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until `condition` holds, for at most `limit`.
async fn until_within(limit: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    within_limit(limit, what, || std::future::ready(condition().then_some(()))).await
}

/// Waits until `session`, as `control`'s replica reports it, satisfies
/// `done`; panics with `what` and the session's last state.
async fn session_until(control: &Control, session: &str, what: &str, done: impl Fn(&pb::Session) -> bool) {
    let started = Instant::now();
    loop {
        let request = pb::GetSessionRequest { name: session.into() };
        let session = control.clone().get_session(request).await.unwrap().into_inner();
        if done(&session) {
            return;
        }
        assert!(started.elapsed() < ANSWERS_WITHIN, "not within {ANSWERS_WITHIN:?}: {what}; now {session:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The agents' answers among a chat's `texts` (echo answers `echo: <text>`), in order.
fn answers(texts: Vec<String>) -> Vec<String> {
    texts.into_iter().filter(|text| text.starts_with("echo: ")).collect()
}

/// The answer echo gives to `text`.
fn echo(text: &str) -> String {
    format!("echo: {text}")
}

/// The texts of `session`'s history entries of `role` (of its last 100), oldest first, read through `control`.
async fn history(control: &Control, session: &str, role: &str) -> Vec<String> {
    let request = pb::ReadHistoryRequest { session: session.into(), count: 100 };
    let entries = control.clone().read_history(request).await.unwrap().into_inner().entries;
    entries.into_iter().filter(|entry| entry.role == role).map(|entry| entry.text).collect()
}

/// Runs `gorpctl ARGS` against `url` with `token`; returns its output, expecting success.
async fn gorpctl(url: &str, token: &str, args: &[&str]) -> String {
    let output = tokio::process::Command::new(profile_binary("gorpctl"))
        .args(args)
        .env("GORP_SERVER", url)
        .env("GORP_TOKEN", token)
        .output()
        .await
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "gorpctl {args:?}: {stdout}{stderr}");
    stdout.into_owned()
}

/// `gorpctl --json info` through `urls` (one, or several separated by
/// commas): which replica answered, and each registered replica's name with
/// whether it is alive.
async fn replicas_info(urls: &str, token: &str) -> (String, Vec<(String, bool)>) {
    let info: serde_json::Value = serde_json::from_str(&gorpctl(urls, token, &["--json", "info"]).await).unwrap();
    let replicas = info["replicas"].as_array().unwrap_or_else(|| panic!("no replicas in {info}"));
    let mut replicas: Vec<(String, bool)> =
        replicas.iter().map(|r| (r["name"].as_str().unwrap().to_owned(), r["alive"].as_bool().unwrap())).collect();
    replicas.sort();
    (info["replica"].as_str().unwrap_or_default().to_owned(), replicas)
}

/// One session's chats in the first test: a Telegram DM and a Slack DM.
struct Chats {
    session: String,
    telegram_user: i64,
    slack_user: String,
}

impl Chats {
    fn new(i: usize) -> Self {
        Self { session: format!("s{i}"), telegram_user: 100 + i as i64, slack_user: format!("U{i}REPLICA") }
    }

    fn slack_channel(&self) -> String {
        FakeSlack::dm_channel(&self.slack_user)
    }
}

/// Replicas A and B; the Telegram gateway on A, the Slack gateway on B, each
/// with a token made on the other replica. Three sessions, made through A's
/// Control, B's Control and gorpctl against B; each bound to a Telegram and
/// a Slack DM through DISPATCH on either replica, either Control API and
/// gorpctl. Messages from both platforms interleaved: each answered once on
/// both platforms, in the session's order. Then DISPATCH (`!list`,
/// `!status`, `!tell`) and gorpctl through either replica.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_answer_every_message_exactly_once() {
    let Some(cluster) = Cluster::new("two_replicas_answer_every_message_exactly_once") else { return };
    let a = cluster.replica("a", "echo_chunk_delay_ms = 5").await;
    let b = cluster.replica("b", "echo_chunk_delay_ms = 5").await;
    // Tokens work on any replica: each gateway's made on the other one.
    let telegram_on_a = Upstream { url: a.url.clone(), token: b.gateway_token("telegram").await };
    let slack_on_b = Upstream { url: b.url.clone(), token: a.gateway_token("slack").await };
    let gateways = ChatGateways::start_on(&telegram_on_a, &slack_on_b, cluster.dir()).await;
    let (telegram, slack) = (&gateways.telegram, &gateways.slack);
    let (control_a, control_b) = (a.control().await, b.control().await);
    let chats: Vec<Chats> = (0..3).map(Chats::new).collect();

    // s0 through A's Control, s1 through B's, s2 with gorpctl against B and A's admin token.
    control_a.clone().create_session(create("s0")).await.unwrap();
    control_b.clone().create_session(create("s1")).await.unwrap();
    gorpctl(&b.url, &a.admin_token, &["session", "create", "s2"]).await;
    // s0's chats join through DISPATCH (Telegram's on A, Slack's on B), s1's
    // are bound through the other replica's Control, s2's with gorpctl and `!join`.
    let joined = |texts: Vec<String>| texts.iter().any(|t| t.contains("now bound to"));
    telegram.dm(chats[0].telegram_user, "tina", "!join s0");
    slack.dm(&chats[0].slack_user, "!join s0");
    control_b.clone().bind_session(bind("telegram", &chats[1].telegram_user.to_string(), "s1")).await.unwrap();
    control_a.clone().bind_session(bind("slack", &chats[1].slack_channel(), "s1")).await.unwrap();
    gorpctl(&a.url, &b.admin_token, &["bind", "telegram", &chats[2].telegram_user.to_string(), "s2"]).await;
    slack.dm(&chats[2].slack_user, "!join s2");
    until_within(ANSWERS_WITHIN, "the !join replies", || {
        joined(telegram.texts(chats[0].telegram_user))
            && joined(slack.texts(&chats[0].slack_channel()))
            && joined(slack.texts(&chats[2].slack_channel()))
    })
    .await;

    // Interleaved: every session's Telegram user (through A) and Slack user (through B), three rounds.
    let mut sent = Vec::new();
    for round in 0..3 {
        for chat in &chats {
            let (on_telegram, on_slack) = (format!("t{}.{round}", chat.session), format!("l{}.{round}", chat.session));
            telegram.dm(chat.telegram_user, "tina", &on_telegram);
            slack.dm(&chat.slack_user, &on_slack);
            sent.push((chat.session.clone(), on_telegram, on_slack));
        }
    }
    let all_answered = || {
        chats.iter().all(|chat| {
            answers(telegram.texts(chat.telegram_user)).len() >= 6
                && answers(slack.texts(&chat.slack_channel())).len() >= 6
        })
    };
    until_within(ANSWERS_WITHIN, "every message answered on both platforms", all_answered).await;
    tokio::time::sleep(QUIET).await;

    for chat in &chats {
        let on_telegram = answers(telegram.texts(chat.telegram_user));
        let on_slack = answers(slack.texts(&chat.slack_channel()));
        let mut expected: Vec<String> = sent
            .iter()
            .filter(|(session, ..)| *session == chat.session)
            .flat_map(|(_, t, l)| [echo(t), echo(l)])
            .collect();
        let mut got = on_telegram.clone();
        got.sort();
        expected.sort();
        assert_eq!(got, expected, "{}: every message answered once on Telegram", chat.session);
        assert_eq!(on_slack, on_telegram, "{}: the same answers in the same order on Slack", chat.session);
        // In the session's order: as its history has the messages, and each platform's in the order sent.
        let order: Vec<String> = history(&control_b, &chat.session, "user").await.iter().map(|t| echo(t)).collect();
        assert_eq!(on_telegram, order, "{}: answers in the session's order", chat.session);
        for platform in ["t", "l"] {
            let own: Vec<&String> =
                on_telegram.iter().filter(|a| a.starts_with(&format!("echo: {platform}"))).collect();
            let mut sorted = own.clone();
            sorted.sort();
            assert_eq!(own, sorted, "{}: {platform} messages answered in the order sent", chat.session);
        }
    }
    // DISPATCH answered each !join only where it was asked.
    assert_eq!(telegram.texts(chats[0].telegram_user).len(), 1 + 6, "{:?}", telegram.texts(chats[0].telegram_user));
    assert_eq!(slack.texts(&chats[1].slack_channel()).len(), 6, "{:?}", slack.texts(&chats[1].slack_channel()));

    dispatch_and_gorpctl_work_on_either_replica(&a, &b, &gateways, &chats).await;
    gateways.stop().await;
    a.stop().await;
    b.stop().await;
}

/// The first test's second half: `!list` on A, `!status` and `!tell` on B (for a
/// session A may own), `gorpctl tell` and `session list` on either.
async fn dispatch_and_gorpctl_work_on_either_replica(a: &Gorpd, b: &Gorpd, gateways: &ChatGateways, chats: &[Chats]) {
    let (telegram, slack) = (&gateways.telegram, &gateways.slack);
    let (tina, ulla) = (chats[0].telegram_user, &chats[0].slack_user);
    let reply_to = |texts: Vec<String>, start: &str| texts.into_iter().find(|t| t.starts_with(start));

    telegram.dm(tina, "tina", "!list");
    let list = within_limit(ANSWERS_WITHIN, "the !list reply on Telegram (A)", || {
        std::future::ready(reply_to(telegram.texts(tina), "Sessions ("))
    })
    .await;
    assert!(list.starts_with("Sessions (3):") && ["s0", "s1", "s2"].iter().all(|s| list.contains(s)), "{list}");

    slack.dm(ulla, "!status s1");
    let status = within_limit(ANSWERS_WITHIN, "the !status reply on Slack (B)", || {
        std::future::ready(reply_to(slack.texts(&chats[0].slack_channel()), "Session s1"))
    })
    .await;
    assert!(status.contains("telegram") && status.contains("slack"), "both channels: {status}");

    // `!tell` from Slack (B) to s1, `gorpctl tell` through A to s2, with B's admin token.
    slack.dm(ulla, "!tell s1 told from slack");
    gorpctl(&a.url, &b.admin_token, &["tell", "s2", "told by gorpctl"]).await;
    let told = [(&chats[1], "told from slack"), (&chats[2], "told by gorpctl")];
    until_within(ANSWERS_WITHIN, "the told texts answered on both platforms", || {
        told.iter().all(|(chat, text)| {
            answers(telegram.texts(chat.telegram_user)).contains(&echo(text))
                && answers(slack.texts(&chat.slack_channel())).contains(&echo(text))
        })
    })
    .await;
    tokio::time::sleep(QUIET).await;
    for (chat, text) in told {
        for texts in [telegram.texts(chat.telegram_user), slack.texts(&chat.slack_channel())] {
            assert_eq!(texts.iter().filter(|t| **t == echo(text)).count(), 1, "{}: once: {texts:?}", chat.session);
        }
    }
    let asked = slack.texts(&chats[0].slack_channel());
    assert!(asked.iter().any(|t| t.starts_with("Sent to s1")), "the !tell answered where it was asked: {asked:?}");

    for gorpd in [a, b] {
        let listed = gorpctl(&gorpd.url, &gorpd.admin_token, &["session", "list"]).await;
        assert!(["s0", "s1", "s2"].iter().all(|s| listed.contains(s)), "{listed}");
    }
    // Given both URLs, gorpctl uses the first; either lists both replicas alive.
    let alive = vec![("a".to_owned(), true), ("b".to_owned(), true)];
    let (answering, replicas) = replicas_info(&format!("{},{}", a.url, b.url), &b.admin_token).await;
    assert_eq!((answering.as_str(), &replicas), ("a", &alive));
    assert_eq!(replicas_info(&b.url, &a.admin_token).await, ("b".to_owned(), alive));
}

/// Replicas A and B (lease 2 s, echo slowed to a 10 s turn); the session's
/// first message goes to A, so A owns it; more queued behind it through both
/// replicas; the Telegram gateway on B. A's process group SIGKILLed mid-turn:
/// B reports the turn interrupted once, within the lease and a margin, and
/// answers the queued messages once each, in order; the interrupted turn is
/// never run again. Prints the takeover time (kill to the notice on Telegram).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_mid_turn_is_taken_over_within_the_lease() {
    let Some(cluster) = Cluster::new("a_replica_killed_mid_turn_is_taken_over_within_the_lease") else { return };
    let slow = "echo_chunk_delay_ms = 250";
    let (a, b) = (cluster.replica("a", slow).await, cluster.replica("b", slow).await);
    let control_a = a.control().await;
    control_a.clone().create_session(create("slow")).await.unwrap();
    control_a.clone().bind_session(bind("telegram", "42", "slow")).await.unwrap();
    control_a.clone().bind_session(bind("web", "desk", "slow")).await.unwrap();
    let telegram = FakeTelegram::start(TELEGRAM_BOT).await;
    let upstream = Upstream { url: b.url.clone(), token: b.gateway_token("telegram").await };
    let gateway = GatewayProcess::spawn(telegram_gateway(&telegram, &upstream, cluster.dir()));

    // A 40-word message: its answer streams for about ten seconds.
    let long: String = (1..=40).map(|i| format!("w{i}")).collect::<Vec<_>>().join(" ");
    let mut to_a = Publisher::open(&mut a.bus().await).await.unwrap();
    let accepted = pb::PublishStatus::Accepted as i32;
    assert_eq!(to_a.publish(message("web", "desk", "long", &long)).await.status, accepted);
    session_until(&control_a, "slow", "A runs the long turn", |s| s.state == "busy").await;
    for id in ["q1", "q2"] {
        assert_eq!(to_a.publish(message("web", "desk", id, id)).await.status, accepted);
    }
    let mut to_b = Publisher::open(&mut b.bus().await).await.unwrap();
    assert_eq!(to_b.publish(message("web", "desk", "q3", "q3")).await.status, accepted);
    let queued_on_a = "three messages queued on A behind the long turn (q3 came through B)";
    session_until(&control_a, "slow", queued_on_a, |s| s.state == "busy" && s.queued == 3).await;

    a.kill().await;
    let killed = Instant::now();
    let interrupted = |texts: &[String]| texts.iter().filter(|t| t.contains("was answering")).count();
    let limit = Duration::from_secs(LEASE_SECS + 30);
    until_within(limit, "B reports the interrupted turn", || interrupted(&telegram.texts(42)) > 0).await;
    let takeover = killed.elapsed();
    let taken_over = b.log.find("session taken over");
    assert!(taken_over.as_ref().is_some_and(|line| line.contains("slow")), "B logs the takeover: {taken_over:?}");
    eprintln!(
        "takeover: {:.2} s from SIGKILL to the interrupted notice on Telegram (lease {LEASE_SECS} s)",
        takeover.as_secs_f64()
    );

    let queued = ["q1", "q2", "q3"].map(echo);
    until_within(ANSWERS_WITHIN, "the queued messages answered", || {
        queued.iter().all(|q| answers(telegram.texts(42)).contains(q))
    })
    .await;
    tokio::time::sleep(QUIET).await;
    let texts = telegram.texts(42);
    assert_eq!(interrupted(&texts), 1, "one interrupted notice: {texts:?}");
    let notice = texts.iter().find(|t| t.contains("was answering")).unwrap();
    assert!(notice.contains("slow") && notice.contains("interrupted"), "{notice}");
    assert_eq!(answers(texts.clone()), queued, "each queued message answered once, in order, the long one never");

    // The history (through B): every acknowledged message once, the long one's turn never run again.
    let control_b = b.control().await;
    let users = history(&control_b, "slow", "user").await;
    assert_eq!(users, [long.as_str(), "q1", "q2", "q3"], "every acknowledged message once, in order");
    let assistant = history(&control_b, "slow", "assistant").await;
    assert_eq!(assistant, queued, "no answer to the interrupted turn: {assistant:?}");
    gateway.stop().await;
    b.stop().await;
}

/// Replicas A and B; the session owned by B (its first work came through
/// B's Control); the Telegram gateway given both URLs, connected to A. User
/// messages flow before, while and after A's process group is SIGKILLed:
/// the gateway moves to B and every answer reaches Telegram once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_fails_over_to_a_live_replica_without_losing_or_repeating_a_delivery() {
    let Some(cluster) = Cluster::new("a_gateway_fails_over_to_a_live_replica_without_losing_or_repeating_a_delivery")
    else {
        return;
    };
    let (a, b) =
        (cluster.replica("a", "echo_chunk_delay_ms = 5").await, cluster.replica("b", "echo_chunk_delay_ms = 5").await);
    let control_b = b.control().await;
    control_b.clone().create_session(create("feed")).await.unwrap();
    control_b.clone().bind_session(bind("telegram", "42", "feed")).await.unwrap();
    let telegram = FakeTelegram::start(TELEGRAM_BOT).await;
    let both = Upstream { url: format!("{},{}", a.url, b.url), token: a.gateway_token("telegram").await };
    let gateway = GatewayProcess::spawn(telegram_gateway(&telegram, &both, cluster.dir()));
    let subscribed = "gateway subscribed";
    until_within(ANSWERS_WITHIN, "the gateway connects to A, its first URL", || a.log.contains(subscribed)).await;
    // B owns the session: its first turn runs on B.
    control_b.clone().tell(tell("feed", "owner")).await.unwrap();
    let delivered = |n: usize| answers(telegram.texts(42)).len() >= n;
    until_within(ANSWERS_WITHIN, "the first answer", || delivered(1)).await;

    // Telegram lets a bot send about one message a second to a chat (the
    // gateway paces to that): 16 messages, 4 before, 8 while and 4 after the kill.
    let say = |i: usize| {
        telegram.dm(42, "alice", &format!("m{i}"));
    };
    (0..4).for_each(say);
    until_within(ANSWERS_WITHIN, "the answers before the kill", || delivered(5)).await;
    // While answers flow: A dies once m6's answer is on Telegram, with more on their way.
    let sender = {
        let telegram = telegram.clone();
        tokio::spawn(async move {
            for i in 4..12 {
                telegram.dm(42, "alice", &format!("m{i}"));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    until_within(ANSWERS_WITHIN, "m6's answer", || answers(telegram.texts(42)).contains(&echo("m6"))).await;
    a.kill().await;
    sender.await.unwrap();
    until_within(ANSWERS_WITHIN, "the gateway connects to B", || b.log.contains(subscribed)).await;
    (12..16).for_each(say);
    // gorpctl given both URLs moves on to B too, which shows A stopped once its lease ran out.
    let both_urls = both.url.clone();
    let (answering, replicas) = within_limit(ANSWERS_WITHIN, "gorpctl info shows A stopped", || async {
        let (answering, replicas) = replicas_info(&both_urls, &b.admin_token).await;
        replicas.contains(&("a".to_owned(), false)).then_some((answering, replicas))
    })
    .await;
    assert_eq!((answering.as_str(), replicas), ("b", vec![("a".to_owned(), false), ("b".to_owned(), true)]));

    let expected: Vec<String> = std::iter::once(echo("owner")).chain((0..16).map(|i| echo(&format!("m{i}")))).collect();
    until_within(ANSWERS_WITHIN, "every answer", || delivered(expected.len())).await;
    tokio::time::sleep(QUIET).await;
    // Nothing else either: no interrupted turn, no leftover preview.
    assert_eq!(telegram.texts(42), expected, "every answer once, in order");
    gateway.stop().await;
    b.stop().await;
}
