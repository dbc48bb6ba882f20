//! Where a local gorpd keeps its data, shared by gorpd (its default) and
//! clients (which read the admin token from there): one definition, so the
//! two can never disagree.

use std::path::PathBuf;

/// The admin token's file name inside the data directory.
pub const ADMIN_TOKEN_FILE: &str = "admin.token";

/// gorpd's default data directory: `$XDG_DATA_HOME/gorp`, else
/// `~/.local/share/gorp`, else `./gorp-data`.
pub fn default_data_dir() -> PathBuf {
    if let Some(xdg) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(xdg).join("gorp");
    }
    match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        Some(home) => PathBuf::from(home).join(".local/share/gorp"),
        None => PathBuf::from("gorp-data"),
    }
}

/// `30d`, `12h` or `90m` in seconds: the age format of history pruning, as
/// DISPATCH's `!prune` and `gorpctl session prune` read it.
pub fn parse_age_secs(text: &str) -> Option<u64> {
    // The unit is the last character, which may be more than one byte.
    let (number, unit) = text.split_at(text.char_indices().last()?.0);
    let number: u64 = number.parse().ok().filter(|n| (1..=MAX_AGE_NUMBER).contains(n))?;
    let unit = match unit {
        "d" => 86_400,
        "h" => 3_600,
        "m" => 60,
        _ => return None,
    };
    Some(number * unit)
}

/// The largest number an age may have (100000 days is about 274 years).
pub const MAX_AGE_NUMBER: u64 = 100_000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_parse_and_bad_ones_are_none() {
        assert_eq!(parse_age_secs("30d"), Some(30 * 86_400));
        assert_eq!(parse_age_secs("12h"), Some(12 * 3_600));
        assert_eq!(parse_age_secs("90m"), Some(90 * 60));
        for bad in ["", "d", "0d", "3", "3s", "3é", "-1d", "100001d", "1.5h"] {
            assert_eq!(parse_age_secs(bad), None, "{bad:?}");
        }
        assert_eq!(parse_age_secs("100000d"), Some(100_000 * 86_400));
    }
}
