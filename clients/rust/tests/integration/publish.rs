//! The Publisher against a real gorpd: through a crash and restart nothing
//! is lost or repeated; a refused message settles alone; a bad token stops
//! it; with several URLs the client moves on from one that does not answer.

use crate::gorpd::Gorpd;
use crate::within;
use gorp_client::{Channel, Client, Error, Message, Published, PublisherOptions};
use std::collections::HashMap;
use std::time::Duration;
use tonic::Code;

const MESSAGES: usize = 300;

fn options() -> PublisherOptions {
    PublisherOptions { max_backoff: Duration::from_millis(200), ..PublisherOptions::default() }
}

/// How often each user text appears in `session`'s history.
async fn user_texts(client: &Client, session: &str) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for entry in client.history(session, 1000).await.unwrap() {
        if entry.role == "user" {
            *counts.entry(entry.text).or_default() += 1;
        }
    }
    counts
}

/// [`user_texts`] once `session`'s history holds `distinct` different user
/// texts (a message enters it when its turn starts).
async fn user_texts_once(client: &Client, session: &str, distinct: usize) -> HashMap<String, usize> {
    within(async {
        loop {
            let counts = user_texts(client, session).await;
            if counts.len() >= distinct {
                return counts;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishing_through_a_gorpd_crash_and_restart_loses_and_repeats_nothing() {
    let mut gorpd = Gorpd::start();
    let client = gorpd.client().await;
    client.create_session("s").await.unwrap();
    let room = Channel::new("app", "room");
    client.bind(room.clone(), "s").await.unwrap();
    let message = |i: usize| Message::new(room.clone(), format!("m{i}"), format!("n {i}"));

    let publisher = client.publisher_with(options());
    let mut pending = Vec::new();
    for i in 0..MESSAGES / 2 {
        pending.push(publisher.send(&message(i)).await.unwrap());
    }
    // A third is acknowledged (so committed); the rest may be in flight when gorpd dies.
    let mut outcomes: Vec<_> = Vec::new();
    for ack in pending.drain(..MESSAGES / 3) {
        outcomes.push(within(ack).await.unwrap());
    }
    gorpd.kill();
    // Published while gorpd is down: queued, sent after the reconnect.
    for i in MESSAGES / 2..MESSAGES {
        pending.push(publisher.send(&message(i)).await.unwrap());
    }
    gorpd.restart();
    for ack in pending {
        outcomes.push(within(ack).await.expect("every message is acknowledged after the restart"));
    }
    within(publisher.close()).await.unwrap();
    assert_eq!(outcomes.len(), MESSAGES);
    assert!(outcomes[..MESSAGES / 3].iter().all(|o| *o == Published::Accepted));

    // Each message reached the session exactly once.
    let counts = user_texts_once(&gorpd.client().await, "s", MESSAGES).await;
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "messages stored twice: {twice:?}");
    assert!((0..MESSAGES).all(|i| counts.contains_key(&format!("n {i}"))));
}

#[tokio::test]
async fn a_rejected_message_settles_alone_and_the_publisher_goes_on() {
    let gorpd = Gorpd::start();
    let client = gorpd.client().await;
    let room = Channel::new("app", "lobby");
    let publisher = client.publisher_with(options());
    let first = publisher.send(&Message::new(room.clone(), "m1", "!help")).await.unwrap();
    let blank = publisher.send(&Message::new(room.clone(), "m2", "   ")).await.unwrap();
    let bad_channel = publisher.send(&Message::new(Channel::new("Not A Platform", "x"), "m3", "hi")).await.unwrap();
    let last = publisher.send(&Message::new(room.clone(), "m4", "!list")).await.unwrap();
    assert_eq!(within(first).await.unwrap(), Published::Accepted);
    match within(blank).await {
        Err(Error::Rejected { message_id, code, reason }) => {
            assert_eq!((message_id.as_str(), code), ("m2", Code::InvalidArgument));
            assert!(!reason.is_empty());
        }
        other => panic!("a blank message is refused: {other:?}"),
    }
    assert_eq!(within(bad_channel).await.unwrap_err().code(), Some(Code::InvalidArgument));
    assert_eq!(within(last).await.unwrap(), Published::Accepted);
    // The same id again is a duplicate, which is success.
    let again = publisher.publish(&Message::new(room, "m1", "!help")).await.unwrap();
    assert_eq!(again, Published::Duplicate);
    within(publisher.close()).await.unwrap();
}

#[tokio::test]
async fn a_refused_token_stops_the_publisher_and_fails_its_messages() {
    let gorpd = Gorpd::start();
    let client = Client::builder(gorpd.url()).token("gorp_not_a_token").build().unwrap();
    let publisher = client.publisher_with(options());
    let error = within(publisher.publish(&Message::new(Channel::new("app", "c"), "m1", "hi"))).await.unwrap_err();
    assert_eq!(error.code(), Some(Code::Unauthenticated), "{error}");
    let error = within(publisher.close()).await.unwrap_err();
    assert_eq!(error.code(), Some(Code::Unauthenticated), "{error}");
}

#[tokio::test]
async fn connecting_finds_the_local_admin_token_and_reports_an_unreachable_gorpd() {
    let gorpd = Gorpd::start();
    if std::env::var_os(gorp_client::TOKEN_ENV).is_none() {
        let client = Client::builder(gorpd.url()).data_dir(gorpd.data_dir()).connect().await.unwrap();
        assert!(client.sessions().await.unwrap().is_empty());
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}");
    let error = Client::builder(&url).token("t").connect().await.unwrap_err();
    assert!(matches!(error, Error::Unreachable { .. }), "{error}");
    assert!(error.to_string().starts_with(&format!("cannot reach gorpd at {url}")), "{error}");
    // A typed Control call keeps gorpd's status.
    let error = gorpd.client().await.session("nope").await.unwrap_err();
    assert_eq!(error.code(), Some(Code::NotFound), "{error}");
}

/// A URL where nothing listens.
fn dead_url() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    format!("http://127.0.0.1:{port}")
}

#[tokio::test]
async fn with_several_urls_the_client_moves_on_from_one_that_does_not_answer() {
    let gorpd = Gorpd::start();
    let admin = gorpd.client().await;
    admin.create_session("s").await.unwrap();
    let room = Channel::new("app", "room");
    admin.bind(room.clone(), "s").await.unwrap();
    let token = std::fs::read_to_string(gorpd.data_dir().join("admin.token")).unwrap();
    let (dead, live) = (dead_url(), gorpd.url());
    let urls = format!("{dead}, {live}");

    // connect: the first URL that answers, in order.
    let client = Client::builder(&urls).token(token.trim()).connect().await.unwrap();
    assert_eq!(client.url(), live);
    assert_eq!(client.sessions().await.unwrap().len(), 1);

    // A lazily built client starts with the dead URL; its publisher's next
    // connection goes to the live one, and the message is stored once.
    let lazy = Client::builder(&urls).token(token.trim()).build().unwrap();
    let publisher = lazy.publisher_with(options());
    let published = within(publisher.publish(&Message::new(room, "failover-1", "after the dead one"))).await;
    assert_eq!(published.unwrap(), Published::Accepted);
    within(publisher.close()).await.unwrap();
    let counts = user_texts_once(&admin, "s", 1).await;
    assert_eq!(counts.get("after the dead one"), Some(&1), "{counts:?}");

    // None answers: every URL is named, each with its reason.
    let other_dead = dead_url();
    let error = Client::builder(format!("{dead},{other_dead}")).token("t").connect().await.unwrap_err();
    assert!(matches!(error, Error::Unreachable { .. }), "{error}");
    let text = error.to_string();
    assert!(text.starts_with(&format!("cannot reach gorpd at {dead}, {other_dead}: {dead}: ")), "{text}");
    assert!(text.contains(&format!("; {other_dead}: ")), "{text}");
}
