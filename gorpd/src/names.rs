//! Name rules for everything a user or client names: sessions, platforms,
//! gateway ids, token labels, channel and message ids. Each check returns a
//! readable reason; callers wrap it in their own error type.

/// Longest session name, in characters.
pub const MAX_SESSION_NAME: usize = 64;
/// Longest platform id, in characters.
pub const MAX_PLATFORM: usize = 32;
/// Longest channel id or platform message id, in bytes.
pub const MAX_EXTERNAL_ID: usize = 256;

/// A name of 1..=`max` characters of `[a-z0-9_-]` starting with a letter or digit.
fn check_slug(what: &str, value: &str, max: usize) -> Result<(), String> {
    if value.is_empty() {
        return Err(format!("{what} is missing"));
    }
    if value.len() > max {
        return Err(format!("{what} \"{}…\" is longer than {max} characters", truncate(value, 16)));
    }
    let first_ok = value.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit());
    let rest_ok = value.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if !first_ok || !rest_ok {
        return Err(format!(
            "{what} \"{}\" is invalid: use 1-{max} characters of a-z, 0-9, '_' and '-', starting with a letter or digit",
            truncate(value, 64)
        ));
    }
    Ok(())
}

/// Checks a session name (`[a-z0-9][a-z0-9_-]{0,63}`).
pub fn check_session_name(name: &str) -> Result<(), String> {
    check_slug("session name", name, MAX_SESSION_NAME)
}

/// Checks a platform id such as `telegram` or `web`.
pub fn check_platform(platform: &str) -> Result<(), String> {
    check_slug("platform", platform, MAX_PLATFORM)
}

/// Checks a gateway id or token label.
pub fn check_label(what: &str, label: &str) -> Result<(), String> {
    check_slug(what, label, MAX_SESSION_NAME)
}

/// Checks an opaque platform id (a channel id or message id): 1..=256 bytes, no control characters.
pub fn check_external_id(what: &str, id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err(format!("{what} is missing"));
    }
    if id.len() > MAX_EXTERNAL_ID {
        return Err(format!("{what} is {} bytes; the limit is {MAX_EXTERNAL_ID}", id.len()));
    }
    if id.chars().any(char::is_control) {
        return Err(format!("{what} contains control characters"));
    }
    Ok(())
}

/// Longest sender name or id, in bytes.
pub const MAX_SENDER: usize = 256;

/// Checks an optional sender name or id: at most [`MAX_SENDER`] bytes, no control characters.
pub fn check_sender(what: &str, value: &str) -> Result<(), String> {
    if value.len() > MAX_SENDER {
        return Err(format!("{what} is {} bytes; the limit is {MAX_SENDER}", value.len()));
    }
    if value.chars().any(char::is_control) {
        return Err(format!("{what} contains control characters"));
    }
    Ok(())
}

/// Checks a message text against the configured size limit.
pub fn check_text(text: &str, max_bytes: usize) -> Result<(), String> {
    if text.trim().is_empty() {
        return Err("message text is empty".to_owned());
    }
    if text.len() > max_bytes {
        return Err(format!("message text is {} bytes; the limit is {max_bytes}", text.len()));
    }
    Ok(())
}

fn truncate(value: &str, max_chars: usize) -> String {
    value.chars().take(max_chars).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_names_follow_the_documented_rule() {
        for ok in ["a", "research", "0day", "a-b_c", &"x".repeat(64)] {
            assert!(check_session_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-a", "_a", "Research", "a b", "a/b", "..", "é", &"x".repeat(65)] {
            assert!(check_session_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn text_limit_is_inclusive() {
        assert!(check_text(&"a".repeat(10), 10).is_ok());
        assert!(check_text(&"a".repeat(11), 10).unwrap_err().contains("limit is 10"));
        assert!(check_text("  ", 10).is_err());
    }

    #[test]
    fn external_ids_reject_control_characters_and_oversize() {
        assert!(check_external_id("channel id", "!room:example.org").is_ok());
        assert!(check_external_id("channel id", "a\nb").is_err());
        assert!(check_external_id("channel id", &"a".repeat(257)).is_err());
    }
}
