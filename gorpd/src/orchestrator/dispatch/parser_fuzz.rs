//! Property test: DISPATCH's parsers (the command word, schedule arguments,
//! ages, names, cron expressions and "when" phrases) take any text without
//! panicking. `GORP_FUZZ_CASES` sets the count (2 000 by default; the long
//! run in the README uses 1 000 000). The end-to-end DISPATCH property test
//! (`tests/integration/fuzz.rs`) sends such texts through a real gorpd.

use super::{COMMANDS, is_command, prune, schedule, split_command};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

/// Words DISPATCH's arguments are made of, to reach deep into the parsers.
const VOCABULARY: &[&str] = &[
    "keep",
    "older-than",
    "--tz",
    "--catch-up",
    "once",
    "skip",
    "\"",
    "“",
    "”",
    "30d",
    "12h",
    "90m",
    "0d",
    "é",
    "every",
    "weekday",
    "monday",
    "at",
    "9am",
    "17:45",
    "in",
    "20",
    "minutes",
    "tomorrow",
    "today",
    "*/5",
    "*",
    "@daily",
    "2026-12-01T09:00:00+01:00",
    "Europe/Paris",
    "--agent",
    "on",
    "off",
    "-1",
    "99999999999999999999",
];

fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => proptest::sample::select(VOCABULARY).prop_map(str::to_owned),
        2 => "\\PC{0,12}",
        1 => any::<String>(),
    ]
}

fn text() -> impl Strategy<Value = String> {
    let command = proptest::sample::select(&COMMANDS[..]);
    let spaces = prop_oneof![Just(" "), Just("  "), Just("\t"), Just("\n"), Just("\u{a0}")];
    prop_oneof![
        4 => (command, proptest::collection::vec((word(), spaces), 0..8)).prop_map(|(command, words)| {
            let args: String = words.into_iter().map(|(word, space)| format!("{space}{word}")).collect();
            format!("!{command}{args}")
        }),
        1 => any::<String>(),
    ]
}

fn cases() -> u32 {
    std::env::var("GORP_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(2000)
}

#[test]
fn dispatch_parsers_take_any_text_without_panicking() {
    let now = chrono::Utc::now();
    let mut runner = TestRunner::new(Config { cases: cases(), failure_persistence: None, ..Config::default() });
    runner
        .run(&text(), |text| {
            let _ = is_command(&text);
            let Some((_, rest)) = split_command(&text) else { return Ok(()) };
            let _ = schedule::parse_add(rest);
            let _ = crate::scheduling::parse_when(rest, chrono_tz::Tz::UTC, now);
            let _ = crate::scheduling::CronSpec::parse(rest);
            for word in rest.split_whitespace() {
                let _ = prune::parse_age(word);
                let _ = crate::names::check_session_name(word);
                let _ = crate::scheduling::parse_zone(word);
            }
            Ok(())
        })
        .unwrap();
}
