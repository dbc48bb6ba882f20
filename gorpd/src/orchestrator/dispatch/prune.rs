//! `!prune [session] keep <N>` / `!prune [session] older-than <N>d|h|m`:
//! removes old entries of a session's history (the session defaults to the
//! channel's own when it is bound).

use super::{CommandResult, Reply, usage};
use crate::bus::ChannelRef;
use crate::orchestrator::Orchestrator;
use crate::store::PruneRule;

const USAGE: &str = "!prune [session] keep <N> | older-than <N>d|h|m";

/// Parses `30d`, `12h` or `90m` (gorp-client's reading, which gorpctl shares).
pub fn parse_age(text: &str) -> Option<chrono::Duration> {
    chrono::Duration::try_seconds(i64::try_from(gorp_client::parse_age_secs(text)?).ok()?)
}

pub(super) async fn handle(o: &Orchestrator, rest: &str, bound: Option<&str>, asker: &ChannelRef) -> CommandResult {
    let words: Vec<&str> = rest.split_whitespace().collect();
    let (session, rule_words) = match words.as_slice() {
        [first, rule @ ..] if !matches!(*first, "keep" | "older-than") => (Some(*first), rule),
        rule => (bound, rule),
    };
    let Some(session) = session else { return usage(USAGE) };
    o.check_reach(asker, session).await?;
    let rule = match rule_words {
        ["keep", count] => match count.parse::<u32>() {
            Ok(count) => PruneRule { keep_last: Some(count), before: None },
            Err(_) => return Ok(Reply::error(format!("\"{count}\" is not a count. Usage: {USAGE}"))),
        },
        ["older-than", age] => match parse_age(age) {
            Some(age) => PruneRule { keep_last: None, before: Some(o.now() - age) },
            None => return Ok(Reply::error(format!("\"{age}\" is not an age such as 30d, 12h or 90m"))),
        },
        _ => return usage(USAGE),
    };
    let removed = o.prune_history(session, rule).await?;
    Ok(Reply::ok(format!("Removed {removed} history entr{} of {session}.", if removed == 1 { "y" } else { "ies" })))
}

#[cfg(test)]
mod tests {
    use super::parse_age;

    /// Found by the parser property test: a unit of more than one byte panicked.
    #[test]
    fn an_age_ends_in_d_h_or_m_and_anything_else_is_refused() {
        assert_eq!(parse_age("30d"), Some(chrono::Duration::days(30)));
        assert_eq!(parse_age("90m"), Some(chrono::Duration::minutes(90)));
        for bad in ["3é", "é", "", "d", "0d", "30", "30dd", "100001d"] {
            assert_eq!(parse_age(bad), None, "{bad}");
        }
    }
}
