//! Pacing as the fake Slack measures it: many answers to one channel go out
//! at about one call per second (bursts of three) and none is dropped; a
//! preview edit and the final answer inside one `Retry-After` draw one 429.

use super::*;
use gorp_fakes::slack::FailureKind;
use gorpd::testing::clients::{bind, create};
use std::time::Duration;

/// Calls Slack allows back to back in one channel (the gateway's burst).
const BURST: usize = 3;

/// The most calls in any window of `window` starting at a call.
fn most_in_window(times: &[Duration], window: Duration) -> usize {
    times
        .iter()
        .enumerate()
        .map(|(i, start)| times[i..].iter().take_while(|t| **t < *start + window).count())
        .max()
        .unwrap_or(0)
}

#[tokio::test]
async fn thirty_answers_to_one_channel_go_out_paced_and_none_is_dropped() {
    let world = World::start().await;
    world.server.control().create_session(create("busy")).await.unwrap();
    world.server.control().bind_session(bind("slack", "C0BUSY", "busy")).await.unwrap();
    let gateway = world.gateway(&[]);
    world.connected().await;
    let texts: Vec<String> = (1..=30).map(|i| format!("question {i}")).collect();
    for text in &texts {
        world.slack.channel_message("C0BUSY", ALICE, text, None);
    }
    for text in &texts {
        world.answer("C0BUSY", &format!("echo: {text}")).await;
    }
    let answers = world.slack.texts("C0BUSY");
    for text in &texts {
        assert_eq!(answers.iter().filter(|a| **a == format!("echo: {text}")).count(), 1, "{text}: {answers:?}");
    }
    let times = world.slack.call_times("C0BUSY");
    let per_second = most_in_window(&times, Duration::from_secs(1));
    let per_ten = most_in_window(&times, Duration::from_secs(10));
    let span = times.last().copied().unwrap_or_default() - times[0];
    eprintln!("{} calls over {span:?}; most in 1 s: {per_second}, in 10 s: {per_ten}", times.len());
    assert!(per_second <= BURST + 1, "at most {} calls in any second: {per_second} ({times:?})", BURST + 1);
    assert!(per_ten <= BURST + 10, "about one call per second: {per_ten} in 10 s ({times:?})");
    assert_eq!(world.slack.rate_limited("C0BUSY"), 0);
    gateway.stop().await;
    world.stop().await;
}

#[tokio::test]
async fn a_preview_edit_and_the_final_inside_one_retry_after_draw_one_429() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = gorpd::testing::test_config(dir.path());
    config.echo_chunk_delay_ms = 150;
    let backends = gorpd::agent_backends(&config);
    let world = World::with_server(TestServer::start_with(config, backends).await).await;
    world.server.control().create_session(create("limited")).await.unwrap();
    world.server.control().bind_session(bind("slack", "C0LIMITED", "limited")).await.unwrap();
    let gateway = world.gateway(&["--edit-interval-ms=200"]);
    world.connected().await;
    // The first preview update draws a 429 holding the channel for 3 s; the
    // answer is complete well inside that window.
    world.slack.fail_next("chat.update", 1, FailureKind::RateLimited { retry_after: 3 });
    world.slack.channel_message("C0LIMITED", ALICE, "one two three four five six", None);
    let answer = world.answer("C0LIMITED", "echo: one two three four five six").await;
    assert_eq!(answer, "echo: one two three four five six");
    assert_eq!(world.slack.texts("C0LIMITED").len(), 1, "the final replaced the preview");
    assert_eq!(world.slack.rate_limited("C0LIMITED"), 1, "one 429 only: {:?}", world.slack.calls());
    gateway.stop().await;
    world.stop().await;
}
