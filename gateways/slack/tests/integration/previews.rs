//! Restarts end with one message per answer (issue 11, finding 7): the
//! streaming preview a restart left behind is replaced by the final text
//! after the gateway was killed, and by the interruption notice after gorpd
//! was restarted mid-answer; `!retry` then runs the interrupted turn again.

use super::*;
use gorpd::testing::clients::{bind, create};

const CHANNEL: &str = "C0PREVIEW";
const QUESTION: &str = "alpha beta gamma delta epsilon zeta eta theta iota kappa";

/// gorpd in `dir` whose echo agent pauses `delay_ms` between words, with
/// session "slow" bound to [`CHANNEL`].
async fn slow_world(dir: &std::path::Path, delay_ms: u64) -> World {
    let mut config = gorpd::testing::test_config(dir);
    config.echo_chunk_delay_ms = delay_ms;
    let backends = gorpd::agent_backends(&config);
    let world = World::with_server(TestServer::start_with(config, backends).await).await;
    world.server.control().create_session(create("slow")).await.unwrap();
    world.server.control().bind_session(bind("slack", CHANNEL, "slow")).await.unwrap();
    world
}

#[tokio::test]
async fn gorpd_restarted_mid_answer_leaves_one_message_the_interruption_notice_and_retry_reruns_it() {
    let dir = tempfile::tempdir().unwrap();
    let world = slow_world(dir.path(), 500).await;
    let gateway = world.gateway(&["--edit-interval-ms=100"]);
    world.slack.channel_message(CHANNEL, ALICE, QUESTION, None);
    until(|| !world.slack.texts(CHANNEL).is_empty()).await;

    let World { server, slack, token, state } = world;
    let (grpc_addr, http_addr) = (server.grpc_addr, server.http_addr);
    server.stop().await.unwrap();
    let config = gorpd::testing::test_config(dir.path());
    let backends = gorpd::agent_backends(&config);
    let server = TestServer::start_at(config, backends, grpc_addr, http_addr).await;
    let world = World { server, slack, token, state };
    let notice = world.answer(CHANNEL, "that turn was interrupted").await;
    assert!(notice.contains("gorpd restarted while slow was answering"), "{notice}");
    let posted = world.slack.posted();
    assert_eq!(posted.len(), 1, "the notice replaced the half-streamed preview: {posted:?}");
    assert!(posted[0].edits >= 1, "{posted:?}");

    world.slack.channel_message(CHANNEL, ALICE, "!retry", None);
    world.answer(CHANNEL, "Retrying").await;
    world.answer(CHANNEL, &format!("echo: {QUESTION}")).await;
    world.slack.channel_message(CHANNEL, ALICE, "!retry", None);
    world.answer(CHANNEL, "slow has no interrupted turn to retry").await;
    gateway.stop().await;
    world.stop().await;
}
