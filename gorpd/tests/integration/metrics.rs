//! `/metrics` after known traffic: the histograms count exactly what
//! happened (publishes, commits, turns, first chunks, permission waits),
//! reconnects are counted, and an unacknowledged answer shows as delivery lag.

use crate::support::*;
use crate::web::Browser;
use gorpd::testing::TestServer;

/// The value of the sample `name` (with its labels, as written) in `text`.
fn sample(text: &str, name: &str) -> f64 {
    let line = text.lines().find(|line| line.split(' ').next() == Some(name));
    let line = line.unwrap_or_else(|| panic!("no sample {name} in\n{text}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

#[tokio::test]
async fn histograms_count_publishes_commits_turns_and_first_chunks() {
    let server = TestServer::start().await;
    server.control().create_session(create("research")).await.unwrap();
    server.control().bind_session(bind("telegram", "1", "research")).await.unwrap();
    let mut chat = Chat::open(&mut server.admin_bus(), "telegram").await;
    for text in ["one", "two", "three"] {
        assert_eq!(chat.ask("1", text).await, format!("echo: {text}"));
    }
    chat.ask("2", "!help").await;
    let browser = Browser::login(&server).await;
    let text = browser.page("/metrics").await;

    assert_eq!(sample(&text, "gorp_publish_ack_seconds_count"), 4.0, "one observation per acked publish");
    assert_eq!(sample(&text, "gorp_publish_ack_seconds_bucket{le=\"+Inf\"}"), 4.0);
    assert_eq!(sample(&text, "gorp_turn_seconds_count{agent=\"echo\"}"), 3.0, "DISPATCH is no turn");
    assert_eq!(sample(&text, "gorp_turn_first_chunk_seconds_count{agent=\"echo\"}"), 3.0);
    assert!(sample(&text, "gorp_turn_seconds_sum{agent=\"echo\"}") > 0.0);
    let commits = sample(&text, "gorp_commit_seconds_count");
    assert!(commits >= 4.0, "at least one commit per message: {commits}");
    assert_eq!(sample(&text, "gorp_commit_batch_writes_count"), commits, "one batch size per commit");
    assert!(sample(&text, "gorp_commit_batch_writes_sum") >= commits);
    assert_eq!(sample(&text, "gorp_intake_queue"), 0.0);
    assert_eq!(sample(&text, "gorp_router_queue"), 0.0);
    assert_eq!(sample(&text, "gorp_gateway_subscribes_total{gateway=\"telegram\",platform=\"telegram\"}"), 1.0);
    assert!(text.ends_with("# EOF\n"), "OpenMetrics text");

    // The dashboard draws the same traffic: this minute's point is the peak of each chart.
    let dashboard = browser.page("/admin").await;
    for id in ["published", "turns", "ack-latency", "turn-latency", "lag-telegram"] {
        assert!(dashboard.contains(&format!("<figure class=\"chart\" id=\"chart-{id}\">")), "{id}: {dashboard}");
    }
    assert!(dashboard.contains("· 4 in the hour</small>"), "four messages published: {dashboard}");
    assert!(dashboard.contains("· 3 in the hour</small>"), "three turns: {dashboard}");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn reconnects_and_unacknowledged_answers_show_as_gateway_lag() {
    let server = TestServer::start().await;
    server.control().create_session(create("ops")).await.unwrap();
    server.control().bind_session(bind("slack", "c1", "ops")).await.unwrap();
    let mut bus = server.admin_bus();
    drop(Subscriber::open_live(&mut bus, "slack", "slack-main").await);
    let mut gateway = Subscriber::open(&mut bus, "slack", "slack-main", None).await.unwrap();
    let mut publisher = Publisher::open(&mut bus).await.unwrap();
    publisher.publish(message("slack", "c1", "m1", "hello")).await;
    let answer = gateway.response().await;
    assert_eq!(answer.text, "echo: hello");
    let browser = Browser::login(&server).await;
    let text = browser.page("/metrics").await;
    let gateway_labels = "{gateway=\"slack-main\",platform=\"slack\"}";
    assert_eq!(sample(&text, &format!("gorp_gateway_subscribes_total{gateway_labels}")), 2.0, "a reconnect");
    assert_eq!(sample(&text, &format!("gorp_deliveries_pending{gateway_labels}")), 1.0);
    let age = sample(&text, &format!("gorp_delivery_oldest_pending_seconds{gateway_labels}"));
    assert!(age > 0.0, "the unacknowledged answer has an age: {age}");

    gateway.ack(answer.seq).await;
    let acked = eventually(|| async {
        let text = browser.page("/metrics").await;
        (sample(&text, &format!("gorp_deliveries_pending{gateway_labels}")) == 0.0).then_some(text)
    })
    .await;
    assert_eq!(sample(&acked, &format!("gorp_delivery_oldest_pending_seconds{gateway_labels}")), 0.0);
    server.stop().await.unwrap();
}
