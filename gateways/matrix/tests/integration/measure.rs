//! Measurements, not tests (run with `--ignored measure --nocapture`): the
//! gateway's resident memory idle with its crypto store open (split into
//! anonymous and file-backed pages) and after a burst of encrypted messages,
//! and the time from a user's message to the answer's first appearance and
//! to its final text. Prints; asserts nothing about speed.

use super::*;
use gorp_gateway::conformance::User;
use gorpd::testing::clients::{bind, create};
use std::time::Duration;

/// The resident set of `pid` in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("VmRSS");
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Where the resident memory of `pid` is: anonymous (heap, stacks) and
/// file-backed (the binary's code and the libraries, clean pages the kernel
/// can drop and other processes share), from `/proc/PID/status`, in KiB.
fn rss_breakdown(pid: u32) -> (u64, u64, usize) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let field = |name: &str| -> u64 {
        let line = status.lines().find(|l| l.starts_with(name)).expect("a status field");
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    };
    (field("RssAnon:"), field("RssFile:"), field("Threads:") as usize)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::test]
#[ignore = "a measurement; run explicitly"]
async fn measure_rss_and_answer_latency() {
    let world = World::<Matrix>::start().await;
    let gateway = world.gateway(&[]);
    let pid = gateway.pid().unwrap();
    let alice = world.platform.account(User::Alice).await;
    let dm = alice.dm(&world.platform.bot).await;
    world.server.control().create_session(create("bench")).await.unwrap();
    world.server.control().bind_session(bind("matrix", dm.room_id().as_str(), "bench")).await.unwrap();
    alice.say(&dm, "warm up").await;
    alice.answer(&dm, "echo: warm up").await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let idle = rss_kib(pid);
    let (anon, file, threads) = rss_breakdown(pid);

    // Homeserver timestamps: from the user's message to the answer's first
    // event (the streamed preview) and to the edit that shows the final text.
    let (mut first, mut last) = (Vec::new(), Vec::new());
    for i in 0..30 {
        let text = format!("question {i}");
        let asked = alice.say(&dm, &text).await;
        let asked_at = alice.own_server_ts(&asked).await;
        let answer = alice.wait_for(&dm, |s| s.body() == format!("echo: {text}")).await;
        let finals = alice.seen(&dm);
        let final_edit = finals.iter().rev().find(|s| s.replaces() == Some(answer.event_id.as_str()));
        let original = finals.iter().find(|s| s.event_id == answer.event_id).unwrap();
        first.push(Duration::from_millis(original.server_ts.saturating_sub(asked_at)));
        let shown_at = final_edit.map_or(original.server_ts, |e| e.server_ts);
        last.push(Duration::from_millis(shown_at.saturating_sub(asked_at)));
    }
    let loaded = rss_kib(pid);
    first.sort();
    last.sort();
    println!("gorp-matrix RSS: idle {idle} KiB, after 31 encrypted turns {loaded} KiB");
    println!(
        "idle RSS split: {anon} KiB anonymous (heap, stacks), {file} KiB file-backed (code, libraries); {threads} threads"
    );
    println!(
        "user message -> answer's first event: p50 {:?} p90 {:?}; -> final text (edit): p50 {:?} p90 {:?}",
        percentile(&first, 0.5),
        percentile(&first, 0.9),
        percentile(&last, 0.5),
        percentile(&last, 0.9)
    );
    gateway.stop().await;
    world.stop().await;
}
