//! The Subscription and the bind feed against a real gorpd: replay, then
//! live with `CaughtUp`; across a crash and restart the subscription resumes
//! after its last ack.

use crate::gorpd::Gorpd;
use crate::within;
use gorp_client::{Channel, Client, Delivery, Event, Message, Subscribe, Subscription};
use std::time::Duration;
use tonic::Code;

/// The next final response, skipping chunks; `caught_up` counts the CaughtUp events passed.
async fn next_response(subscription: &mut Subscription, caught_up: &mut usize) -> Delivery {
    within(async {
        loop {
            match subscription.next().await.expect("the subscription is open").unwrap() {
                Event::Response(delivery) => return delivery,
                Event::CaughtUp => *caught_up += 1,
                Event::Chunk(_) => {}
            }
        }
    })
    .await
}

/// Subscribes once gorpd has noticed that the gateway id's previous stream ended.
async fn subscribe_when_free(client: &Client, subscribe: Subscribe) -> Subscription {
    within(async {
        loop {
            match client.subscribe(subscribe.clone()).await {
                Ok(subscription) => return subscription,
                Err(error) if error.code() == Some(Code::AlreadyExists) => {
                    tokio::time::sleep(Duration::from_millis(20)).await
                }
                Err(error) => panic!("{error}"),
            }
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_survives_a_gorpd_crash_and_resumes_after_its_last_ack() {
    let mut gorpd = Gorpd::start();
    let client = gorpd.client().await;
    client.create_session("s").await.unwrap();
    let room = Channel::new("app", "room");
    client.bind(room.clone(), "s").await.unwrap();
    let subscribe = Subscribe::new("app").gateway_id("app-1").max_backoff(Duration::from_millis(200));
    let mut subscription = client.subscribe(subscribe).await.unwrap();
    let publisher = client.publisher();
    let mut caught_up = 0;

    publisher.publish(&Message::new(room.clone(), "m1", "one")).await.unwrap();
    let one = next_response(&mut subscription, &mut caught_up).await;
    assert_eq!((one.text.as_str(), one.session.as_str()), ("echo: one", "s"));
    assert_eq!(one.targets, vec![room.clone()]);
    assert_eq!(caught_up, 1, "the empty replay ended before the live response");
    one.ack();
    publisher.publish(&Message::new(room.clone(), "m2", "two")).await.unwrap();
    let two = next_response(&mut subscription, &mut caught_up).await;
    assert_eq!(two.text, "echo: two");
    assert!(two.seq > one.seq);
    // Not acknowledged: it must come again after the crash.

    gorpd.kill();
    gorpd.restart();
    let again = next_response(&mut subscription, &mut caught_up).await;
    assert_eq!((again.seq, again.text.as_str()), (two.seq, "echo: two"), "resumed after the last ack, not before");
    again.ack();
    publisher.publish(&Message::new(room.clone(), "m3", "three")).await.unwrap();
    let three = next_response(&mut subscription, &mut caught_up).await;
    assert_eq!(three.text, "echo: three");
    assert!(caught_up >= 2, "the replay after the reconnect ended with CaughtUp");
    three.ack();
    within(subscription.close()).await;

    // gorpd stored the cursor: a new subscription under the same id replays nothing.
    let mut resumed = subscribe_when_free(&client, Subscribe::new("app").gateway_id("app-1")).await;
    match within(resumed.next()).await.unwrap().unwrap() {
        Event::CaughtUp => {}
        other => panic!("nothing to replay after the last ack: {other:?}"),
    }
    // An explicit cursor replays from there.
    drop(resumed);
    let mut replay = subscribe_when_free(&client, Subscribe::new("app").gateway_id("app-1").cursor(one.seq)).await;
    let mut ignored = 0;
    assert_eq!(next_response(&mut replay, &mut ignored).await.seq, two.seq);
}

#[tokio::test]
async fn a_refused_subscription_fails_when_opened() {
    let gorpd = Gorpd::start();
    let client = gorpd.client().await;
    let secret = client.create_gateway_token("tg", "telegram").await.unwrap();
    let gateway = gorp_client::Client::builder(gorpd.url()).token(secret).connect().await.unwrap();
    let error = gateway.subscribe(Subscribe::new("slack")).await.unwrap_err();
    assert_eq!(error.code(), Some(Code::PermissionDenied), "{error}");
    let error = gateway.subscribe(Subscribe::new("telegram").cursor(1_000_000)).await.unwrap_err();
    assert_eq!(error.code(), Some(Code::OutOfRange), "{error}");
    // The token's own platform is fine.
    let mut subscription = gateway.subscribe(Subscribe::new("telegram")).await.unwrap();
    assert!(matches!(within(subscription.next()).await.unwrap().unwrap(), Event::CaughtUp));
}

#[tokio::test]
async fn the_bind_feed_binds_reports_changes_and_keeps_the_status_of_a_failure() {
    let gorpd = Gorpd::start();
    let client = gorpd.client().await;
    client.create_session("s").await.unwrap();
    let mut feed = client.bind_feed().await.unwrap();
    let room = Channel::new("app", "room");
    within(feed.bind(room.clone(), "s")).await.unwrap();
    let change = within(feed.next_change()).await.unwrap();
    assert_eq!((change.channel, change.session.as_deref(), change.initial), (room.clone(), Some("s"), false));
    let error = within(feed.bind(room.clone(), "missing")).await.unwrap_err();
    assert_eq!(error.code(), Some(Code::NotFound), "{error}");
    within(feed.unbind(room.clone())).await.unwrap();
    let change = within(feed.next_change()).await.unwrap();
    assert_eq!((change.channel, change.session), (room, None));
    assert!(client.session("s").await.unwrap().channels.is_empty());
}
