//! Workload 5 (`replay`): a new gateway catching up on a backlog.
//!
//! Sessions are bound to one channel on platform `replay` and one on
//! `observer`. K messages are published from the `replay` channels while
//! only the observer is subscribed; once the observer has all K answers,
//! every one of them is also in the log for `replay`. Then a subscriber of
//! `replay` with a fresh gateway id and cursor 0 is timed from its hello
//! until it has received all K responses (acking each) and the CaughtUp.

use super::publish::publish_backlog;
use super::subscriber::{Subscriber, answered_id, message_number};
use super::{Plan, STALL, Workload, fleet};
use crate::client;
use crate::gorpd::Gorpd;
use crate::report::{Section, Side};
use crate::stats::per_second;
use anyhow::{Result, bail};
use gorp_proto::v1 as pb;
use pb::delivery::Kind;
use std::sync::Arc;
use std::time::Instant;

const REPLAY: &str = "replay";
const OBSERVER: &str = "observer";

/// Runs workload 5 against a fresh gorpd.
pub(crate) async fn gorp(plan: &Plan) -> Result<Section> {
    let mut section = Section::new(Workload::Replay.name(), Side::Gorp);
    let gorpd = Gorpd::start(plan).await?;
    let mut control = gorpd.control().await?;
    fleet::create_sessions(&control, plan.sessions, plan.setup_concurrency).await?;
    let replay_bindings = fleet::one_channel_per_session(REPLAY, plan.sessions);
    let channels: Arc<[pb::Channel]> = replay_bindings.iter().map(|(channel, _)| channel.clone()).collect();
    fleet::bind(&control, replay_bindings, plan.setup_concurrency).await?;
    fleet::bind(&control, fleet::one_channel_per_session(OBSERVER, plan.sessions), plan.setup_concurrency).await?;
    let replay_token = client::gateway_token(&mut control, REPLAY).await?;
    let observer_token = client::gateway_token(&mut control, OBSERVER).await?;

    let mut observer_bus = client::bus(gorpd.grpc_addr, &observer_token).await?;
    let mut observer = Subscriber::open(&mut observer_bus, OBSERVER, "observer", None).await?;
    observer.caught_up(STALL).await?;
    let prefix = format!("{}-replay", plan.run_id);
    let count = plan.replay_count;
    let started = Instant::now();
    let ids = format!("{prefix}-0");
    // The observer reads while the backlog is published, as a live gateway would.
    let (published, observed) = tokio::join!(
        publish_backlog(gorpd.grpc_addr, &replay_token, channels, plan, count, &prefix),
        receive(&mut observer, &ids, count, false),
    );
    let (published, observed) = (published?, observed?);
    section.expect_zero(published.duplicates, "backlog messages acked DUPLICATE");
    section.expect_zero(published.rejected, "backlog messages REJECTED");
    section.metric("backlog messages", "count", count as f64);
    section.metric("backlog publish to last answer", "msg/s", per_second(observed.unique, started.elapsed()));

    let mut replay_bus = client::bus(gorpd.grpc_addr, &replay_token).await?;
    let started = Instant::now();
    let mut replayer = Subscriber::open(&mut replay_bus, REPLAY, "replay-gw", Some(0)).await?;
    let replayed = receive(&mut replayer, &ids, count, true).await?;
    let took = started.elapsed();
    section.metric("replay to CaughtUp", "s", took.as_secs_f64());
    section.metric("replay rate", "msg/s", per_second(replayed.unique, took));
    section.expect_zero(count - replayed.unique.min(count), "backlog responses were not replayed");
    section.expect_zero(replayed.duplicates, "responses replayed twice");
    section.expect_zero(replayed.foreign, "replayed responses answered no backlog message");
    section.expect_zero(observed.duplicates, "responses delivered twice to the observer");
    gorpd.report_log(&mut section);
    Ok(section)
}

/// What a subscriber received.
#[derive(Debug, Default)]
struct Received {
    unique: usize,
    duplicates: usize,
    foreign: usize,
}

/// Reads (acking each response) until `count` distinct answers arrived and, if
/// `until_caught_up`, the CaughtUp marker; fails after `STALL` of silence.
async fn receive(subscriber: &mut Subscriber, prefix: &str, count: usize, until_caught_up: bool) -> Result<Received> {
    let mut seen = vec![false; count];
    let mut received = Received::default();
    let mut caught_up = !until_caught_up;
    while received.unique < count || !caught_up {
        let Some(delivery) = subscriber.next(STALL).await? else {
            bail!(
                "{} of {count} answers after {} of silence (caught up: {caught_up})",
                received.unique,
                humantime(STALL)
            );
        };
        match delivery {
            Kind::Response(response) => {
                subscriber.ack(response.seq)?;
                let number = answered_id(&response).and_then(|id| message_number(id, prefix));
                match number.and_then(|n| seen.get_mut(n as usize)) {
                    Some(seen) if *seen => received.duplicates += 1,
                    Some(seen) => {
                        *seen = true;
                        received.unique += 1;
                    }
                    None => received.foreign += 1,
                }
            }
            Kind::CaughtUp(_) => caught_up = true,
            Kind::Chunk(_) => {}
        }
    }
    Ok(received)
}

fn humantime(duration: std::time::Duration) -> String {
    format!("{} s", duration.as_secs())
}
