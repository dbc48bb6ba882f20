//! Fleet setup through Control: many sessions and bindings, created with
//! bounded concurrency on one connection (HTTP/2 multiplexes the calls).

use super::session_name;
use crate::client::{Control, bounded};
use anyhow::Result;
use futures::{StreamExt, TryStreamExt};
use gorp_proto::v1 as pb;
use std::time::{Duration, Instant};

/// Creates sessions `bench-0 .. bench-(count-1)`; returns how long it took.
pub(crate) async fn create_sessions(control: &Control, count: usize, concurrency: usize) -> Result<Duration> {
    let started = Instant::now();
    futures::stream::iter(0..count)
        .map(|index| {
            let mut control = control.clone();
            async move {
                let request = pb::CreateSessionRequest { name: session_name(index), ..Default::default() };
                bounded(&format!("CreateSession {}", request.name), control.create_session(request)).await
            }
        })
        .buffer_unordered(concurrency.max(1))
        .try_for_each(|_| async { Ok(()) })
        .await?;
    Ok(started.elapsed())
}

/// Binds each channel to its session; returns how long it took.
pub(crate) async fn bind(
    control: &Control,
    bindings: Vec<(pb::Channel, String)>,
    concurrency: usize,
) -> Result<Duration> {
    let started = Instant::now();
    futures::stream::iter(bindings)
        .map(|(channel, session)| {
            let mut control = control.clone();
            async move {
                let what = format!("BindSession {}:{} -> {session}", channel.platform, channel.channel_id);
                let request = pb::BindSessionRequest { channel: Some(channel), session };
                bounded(&what, control.bind_session(request)).await
            }
        })
        .buffer_unordered(concurrency.max(1))
        .try_for_each(|_| async { Ok(()) })
        .await?;
    Ok(started.elapsed())
}

/// Channel `c<i>` of `platform` for every session `i < sessions`, bound to `bench-<i>`.
pub(crate) fn one_channel_per_session(platform: &str, sessions: usize) -> Vec<(pb::Channel, String)> {
    (0..sessions).map(|i| (crate::client::channel(platform, &format!("c{i}")), session_name(i))).collect()
}
