//! When a schedule fires: parsing what a user writes (a five-field cron
//! expression, a one-time instant, or a phrase such as "every weekday at
//! 8:30") into a [`When`], and the slots it gives in a time zone.
//!
//! Cron expressions are parsed and evaluated by `croner` (names such as
//! `MON-FRI`, ranges, steps; DST handled in the schedule's zone); zones come
//! from `chrono-tz`. Phrases are translated to cron expressions, and one-time
//! forms ("in 20 minutes", "tomorrow 9am", ISO 8601) to an instant.

use chrono::{DateTime, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

/// When a schedule fires.
#[derive(Debug, Clone, PartialEq)]
pub enum When {
    /// Every slot of a cron expression, in the schedule's time zone.
    Cron(CronSpec),
    /// Once, at this instant.
    Once(DateTime<Utc>),
}

/// A parsed cron expression with the text it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct CronSpec {
    /// The five-field expression (phrases are stored translated).
    pub expression: String,
    /// Boxed: a parsed pattern is a few hundred bytes.
    cron: Box<Cron>,
}

impl CronSpec {
    /// Parses a five-field cron expression.
    pub fn parse(expression: &str) -> Result<Self, String> {
        let expression = expression.split_whitespace().collect::<Vec<_>>().join(" ");
        if expression.split(' ').count() != 5 {
            return Err(format!(
                "\"{expression}\" is not a five-field cron expression (minute hour day-of-month month day-of-week)"
            ));
        }
        let cron = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .build()
            .parse(&expression)
            .map_err(|error| format!("\"{expression}\" is not a valid cron expression: {error}"))?;
        Ok(Self { expression, cron: Box::new(cron) })
    }

    /// A plain-English description ("At 08:30 on Monday through Friday").
    pub fn describe(&self) -> String {
        self.cron.describe()
    }
}

impl When {
    /// The first slot strictly after `after`, if any.
    pub fn next_after(&self, after: DateTime<Utc>, zone: Tz) -> Option<DateTime<Utc>> {
        match self {
            When::Cron(spec) => {
                spec.cron.find_next_occurrence(&after.with_timezone(&zone), false).ok().map(|t| t.with_timezone(&Utc))
            }
            When::Once(at) => (*at > after).then_some(*at),
        }
    }

    /// The latest slot at or before `at` (the one a catch-up fires for).
    pub fn latest_at_or_before(&self, at: DateTime<Utc>, zone: Tz) -> Option<DateTime<Utc>> {
        match self {
            When::Cron(spec) => {
                spec.cron.find_previous_occurrence(&at.with_timezone(&zone), true).ok().map(|t| t.with_timezone(&Utc))
            }
            When::Once(once) => (*once <= at).then_some(*once),
        }
    }

    /// Rebuilds a stored schedule's `When` (`cron` or `once_at`).
    pub fn from_stored(cron: Option<&str>, once_at: Option<DateTime<Utc>>) -> Result<Self, String> {
        match (cron, once_at) {
            (Some(expression), _) => CronSpec::parse(expression).map(When::Cron),
            (None, Some(at)) => Ok(When::Once(at)),
            (None, None) => Err("a schedule has neither a cron expression nor a time".to_owned()),
        }
    }
}

/// Parses a time zone name such as `Europe/Berlin` or `UTC`.
pub fn parse_zone(name: &str) -> Result<Tz, String> {
    name.parse::<Tz>().map_err(|_| format!("unknown time zone \"{name}\" (use an IANA name such as Europe/Berlin)"))
}

/// Parses what a user wrote for "when", relative to `now` in `zone`.
///
/// Accepted: five-field cron (`30 8 * * MON-FRI`), `@hourly`/`@daily`/
/// `@weekly`/`@monthly`, phrases (`every 15 minutes`, `every hour`,
/// `every day at 9am`, `every weekday at 8:30`, `every monday at 10:00`,
/// `every weekend at noon`), and one time: ISO 8601 (`2026-12-01T09:00`,
/// local to `zone` unless it has an offset), `in 20 minutes`, `in 2 hours`,
/// `tomorrow 9am`, `today at 17:30`, `at 18:00`. A one-time slot must be in
/// the future.
pub fn parse_when(text: &str, zone: Tz, now: DateTime<Utc>) -> Result<When, String> {
    let lower = text.trim().to_lowercase();
    let lower = lower.split_whitespace().collect::<Vec<_>>().join(" ");
    if lower.is_empty() {
        return Err("say when: a cron expression, a time, or a phrase such as \"every weekday at 8:30\"".to_owned());
    }
    if let Some(expression) = nickname(&lower) {
        return CronSpec::parse(expression).map(When::Cron);
    }
    if let Some(rest) = lower.strip_prefix("every ") {
        return every(rest).and_then(|expression| CronSpec::parse(&expression)).map(When::Cron);
    }
    if looks_like_cron(&lower) {
        return CronSpec::parse(text).map(When::Cron);
    }
    let at = once(&lower, zone, now)?;
    if at <= now {
        return Err(format!("{} has already passed", at.with_timezone(&zone).format("%Y-%m-%d %H:%M %Z")));
    }
    Ok(When::Once(at))
}

fn nickname(text: &str) -> Option<&'static str> {
    Some(match text {
        "@hourly" => "0 * * * *",
        "@daily" | "@midnight" => "0 0 * * *",
        "@weekly" => "0 0 * * SUN",
        "@monthly" => "0 0 1 * *",
        "@yearly" | "@annually" => "0 0 1 1 *",
        _ => return None,
    })
}

/// Five space-separated fields made only of cron characters.
fn looks_like_cron(text: &str) -> bool {
    let fields: Vec<&str> = text.split(' ').collect();
    fields.len() == 5
        && fields.iter().all(|field| field.chars().all(|c| c.is_ascii_alphanumeric() || ",-*/?#".contains(c)))
        && fields[0].chars().next().is_some_and(|c| c.is_ascii_digit() || c == '*')
}

/// `every …` phrases as cron expressions.
fn every(rest: &str) -> Result<String, String> {
    let unknown = || {
        format!(
            "I don't understand \"every {rest}\"; try \"every 15 minutes\", \"every hour\", \"every day at 9:00\", \
             \"every weekday at 8:30\", \"every monday at 10am\" or a cron expression"
        )
    };
    match rest {
        "minute" => return Ok("* * * * *".to_owned()),
        "hour" => return Ok("0 * * * *".to_owned()),
        _ => {}
    }
    if let Some((count, unit)) = rest.split_once(' ')
        && let Ok(count) = count.parse::<u32>()
    {
        return match unit {
            "minutes" | "mins" | "min" if (1..60).contains(&count) => Ok(format!("*/{count} * * * *")),
            "hours" | "h" if (1..24).contains(&count) => Ok(format!("0 */{count} * * *")),
            "minutes" | "mins" | "min" => Err("every N minutes takes N from 1 to 59".to_owned()),
            "hours" | "h" => Err("every N hours takes N from 1 to 23".to_owned()),
            _ => Err(unknown()),
        };
    }
    let (days, time) = match rest.split_once(" at ") {
        Some((days, time)) => (days, parse_clock(time)?),
        None => return Err(unknown()),
    };
    let days = match days {
        "day" => "*".to_owned(),
        "weekday" => "MON-FRI".to_owned(),
        "weekend" | "weekend day" => "SAT,SUN".to_owned(),
        days => day_list(days).ok_or_else(unknown)?,
    };
    Ok(format!("{} {} * * {days}", time.format("%-M"), time.format("%-H")))
}

/// "monday", "mon and thu", "tuesday, friday" as a cron day-of-week list.
fn day_list(text: &str) -> Option<String> {
    const DAYS: [(&str, &str); 7] = [
        ("mon", "MON"),
        ("tue", "TUE"),
        ("wed", "WED"),
        ("thu", "THU"),
        ("fri", "FRI"),
        ("sat", "SAT"),
        ("sun", "SUN"),
    ];
    let words = text.split([' ', ',']).filter(|w| !w.is_empty() && *w != "and");
    let mut days = Vec::new();
    for word in words {
        let day = DAYS.iter().find(|(prefix, _)| word.starts_with(prefix) && word.len() <= 9)?;
        days.push(day.1);
    }
    (!days.is_empty()).then(|| days.join(","))
}

/// A time of day: `8:30`, `08:30`, `17`, `9am`, `9:15pm`, `noon`, `midnight`.
fn parse_clock(text: &str) -> Result<NaiveTime, String> {
    let invalid = || format!("\"{text}\" is not a time of day (e.g. 8:30, 17:00, 9am)");
    let text = text.trim();
    match text {
        "noon" => return Ok(NaiveTime::from_hms_opt(12, 0, 0).expect("valid")),
        "midnight" => return Ok(NaiveTime::MIN),
        _ => {}
    }
    let (digits, offset) = if let Some(digits) = text.strip_suffix("am") {
        (digits.trim(), Some(0))
    } else if let Some(digits) = text.strip_suffix("pm") {
        (digits.trim(), Some(12))
    } else {
        (text, None)
    };
    let (hour, minute) = match digits.split_once(':') {
        Some((hour, minute)) if minute.len() == 2 => (hour, minute),
        Some(_) => return Err(invalid()),
        None => (digits, "0"),
    };
    let mut hour: u32 = hour.parse().map_err(|_| invalid())?;
    let minute: u32 = minute.parse().map_err(|_| invalid())?;
    if let Some(offset) = offset {
        if !(1..=12).contains(&hour) {
            return Err(invalid());
        }
        hour = hour % 12 + offset;
    }
    NaiveTime::from_hms_opt(hour, minute, 0).ok_or_else(invalid)
}

/// One-time forms, as an instant.
fn once(text: &str, zone: Tz, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    if let Some(rest) = text.strip_prefix("in ") {
        return relative(rest).map(|by| now + by);
    }
    let local_now = now.with_timezone(&zone);
    let today = local_now.date_naive();
    if let Some(rest) = text.strip_prefix("tomorrow") {
        let time = parse_clock(rest.trim().trim_start_matches("at ").trim())?;
        return local(zone, today.succ_opt().expect("not the end of time").and_time(time));
    }
    if let Some(rest) = text.strip_prefix("today") {
        let time = parse_clock(rest.trim().trim_start_matches("at ").trim())?;
        return local(zone, today.and_time(time));
    }
    if let Some(rest) = text.strip_prefix("at ") {
        let time = parse_clock(rest)?;
        let today_at = local(zone, today.and_time(time))?;
        return if today_at > now {
            Ok(today_at)
        } else {
            local(zone, today.succ_opt().expect("not the end of time").and_time(time))
        };
    }
    iso(text, zone).ok_or_else(|| {
        format!(
            "I don't understand \"{text}\" as a time; try \"in 20 minutes\", \"tomorrow 9am\", \
             \"2026-12-01 09:00\", a cron expression or \"every weekday at 8:30\""
        )
    })?
}

/// `20 minutes`, `2 hours`, `1 day`, `90 min`, `45s` is not accepted (minutes are the finest unit).
fn relative(text: &str) -> Result<Duration, String> {
    let invalid = || format!("\"in {text}\": say \"in N minutes\", \"in N hours\" or \"in N days\"");
    let (count, unit) = text.split_once(' ').ok_or_else(invalid)?;
    let count: i64 = count.parse().map_err(|_| invalid())?;
    if !(1..=10_000).contains(&count) {
        return Err(invalid());
    }
    match unit {
        "minute" | "minutes" | "min" | "mins" => Ok(Duration::minutes(count)),
        "hour" | "hours" | "h" => Ok(Duration::hours(count)),
        "day" | "days" => Ok(Duration::days(count)),
        _ => Err(invalid()),
    }
}

/// ISO 8601 with an offset, or a local date and time in `zone`.
fn iso(text: &str, zone: Tz) -> Option<Result<DateTime<Utc>, String>> {
    let upper = text.to_uppercase();
    if let Ok(at) = DateTime::parse_from_rfc3339(&upper) {
        return Some(Ok(at.with_timezone(&Utc)));
    }
    for format in ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(&upper, format) {
            return Some(local(zone, naive));
        }
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok().map(|date| local(zone, date.and_time(NaiveTime::MIN)))
}

/// A wall-clock time in `zone` as an instant: the earlier one when a DST
/// change repeats it; an error when a DST change skips it.
fn local(zone: Tz, naive: NaiveDateTime) -> Result<DateTime<Utc>, String> {
    match zone.from_local_datetime(&naive) {
        LocalResult::Single(at) | LocalResult::Ambiguous(at, _) => Ok(at.with_timezone(&Utc)),
        LocalResult::None => Err(format!("{naive} does not exist in {zone} (the clocks skip it for daylight saving)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    fn zone(name: &str) -> Tz {
        parse_zone(name).unwrap()
    }

    fn cron_of(text: &str) -> String {
        match parse_when(text, Tz::UTC, utc("2026-03-02T10:00:00Z")).unwrap() {
            When::Cron(spec) => spec.expression,
            other => panic!("{text}: not cron: {other:?}"),
        }
    }

    #[test]
    fn phrases_become_cron_expressions() {
        assert_eq!(cron_of("every weekday at 8:30"), "30 8 * * MON-FRI");
        assert_eq!(cron_of("Every day at 9am"), "0 9 * * *");
        assert_eq!(cron_of("every monday and thursday at 17:45"), "45 17 * * MON,THU");
        assert_eq!(cron_of("every weekend at noon"), "0 12 * * SAT,SUN");
        assert_eq!(cron_of("every 15 minutes"), "*/15 * * * *");
        assert_eq!(cron_of("every 2 hours"), "0 */2 * * *");
        assert_eq!(cron_of("every hour"), "0 * * * *");
        assert_eq!(cron_of("@daily"), "0 0 * * *");
        assert_eq!(cron_of("30 8 * * mon-fri"), "30 8 * * mon-fri");
        assert_eq!(cron_of("every day at 12am"), "0 0 * * *");
        assert_eq!(cron_of("every day at 12:30pm"), "30 12 * * *");
    }

    #[test]
    fn cron_slots_follow_names_and_the_zone() {
        let when = parse_when("30 8 * * MON-FRI", Tz::UTC, utc("2026-03-06T12:00:00Z")).unwrap();
        // Friday noon -> Monday 08:30 in Berlin (UTC+1 in March before the change).
        let next = when.next_after(utc("2026-03-06T12:00:00Z"), zone("Europe/Berlin")).unwrap();
        assert_eq!(next, utc("2026-03-09T07:30:00Z"));
        assert_eq!(when.latest_at_or_before(next, zone("Europe/Berlin")), Some(next), "inclusive");
    }

    #[test]
    fn a_daily_slot_keeps_its_wall_clock_time_across_a_dst_change() {
        let when = parse_when("every day at 9:00", Tz::UTC, utc("2026-03-27T00:00:00Z")).unwrap();
        let berlin = zone("Europe/Berlin");
        // Clocks go forward on 2026-03-29 in Europe: 09:00 is 08:00Z before and 07:00Z after.
        let saturday = when.next_after(utc("2026-03-28T00:00:00Z"), berlin).unwrap();
        let sunday = when.next_after(saturday, berlin).unwrap();
        assert_eq!(saturday, utc("2026-03-28T08:00:00Z"));
        assert_eq!(sunday, utc("2026-03-29T07:00:00Z"));
        // A slot inside the skipped hour (02:30) fires once, after the jump, never twice.
        let night = parse_when("30 2 * * *", Tz::UTC, utc("2026-03-27T00:00:00Z")).unwrap();
        let first = night.next_after(utc("2026-03-28T12:00:00Z"), berlin).unwrap();
        let second = night.next_after(first, berlin).unwrap();
        assert!(first > utc("2026-03-29T00:00:00Z") && first < utc("2026-03-30T00:00:00Z"), "{first}");
        assert!(second > utc("2026-03-30T00:00:00Z"), "{second}");
    }

    #[test]
    fn one_time_forms_are_instants_in_the_zone() {
        let now = utc("2026-03-02T10:00:00Z");
        let berlin = zone("Europe/Berlin");
        assert_eq!(parse_when("in 20 minutes", berlin, now), Ok(When::Once(utc("2026-03-02T10:20:00Z"))));
        assert_eq!(parse_when("in 2 hours", berlin, now), Ok(When::Once(utc("2026-03-02T12:00:00Z"))));
        assert_eq!(parse_when("tomorrow 9am", berlin, now), Ok(When::Once(utc("2026-03-03T08:00:00Z"))));
        assert_eq!(parse_when("tomorrow at 17:30", berlin, now), Ok(When::Once(utc("2026-03-03T16:30:00Z"))));
        assert_eq!(parse_when("today 18:00", berlin, now), Ok(When::Once(utc("2026-03-02T17:00:00Z"))));
        assert_eq!(parse_when("at 10:30", berlin, now), Ok(When::Once(utc("2026-03-03T09:30:00Z"))), "tomorrow");
        assert_eq!(parse_when("2026-12-01T09:00", berlin, now), Ok(When::Once(utc("2026-12-01T08:00:00Z"))));
        assert_eq!(parse_when("2026-12-01 09:00", Tz::UTC, now), Ok(When::Once(utc("2026-12-01T09:00:00Z"))));
        assert_eq!(parse_when("2026-12-01T09:00:00+05:00", berlin, now), Ok(When::Once(utc("2026-12-01T04:00:00Z"))));
    }

    #[test]
    fn bad_input_says_what_is_wrong() {
        let now = utc("2026-03-02T10:00:00Z");
        let error = |text: &str| parse_when(text, Tz::UTC, now).unwrap_err();
        assert!(error("").contains("say when"));
        assert!(error("61 * * * *").contains("not a valid cron expression"));
        assert!(error("every blue moon").contains("don't understand"));
        assert!(error("every 90 minutes").contains("1 to 59"));
        assert!(error("every day at 25:00").contains("not a time of day"));
        assert!(error("2020-01-01 09:00").contains("already passed"));
        assert!(error("in 0 minutes").contains("in N minutes"));
        assert!(error("next full moon").contains("don't understand"));
        let gap = parse_when("2026-03-29 02:30", zone("Europe/Berlin"), now).unwrap_err();
        assert!(gap.contains("does not exist"), "{gap}");
        assert!(parse_zone("Mars/Olympus").unwrap_err().contains("unknown time zone"));
    }
}
