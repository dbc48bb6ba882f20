//! Login sessions of the web adapter, by the SHA-256 of their cookie.

use super::sql::params;
use super::{Store, StoreResult, parse_time};
use chrono::{DateTime, SecondsFormat, Utc};

/// A stored login session.
#[derive(Debug, Clone, PartialEq)]
pub struct WebLoginRow {
    /// SHA-256 of the cookie value, hex.
    pub id_sha256: String,
    /// Its CSRF token.
    pub csrf: String,
    /// When it stops being valid.
    pub expires_at: DateTime<Utc>,
}

impl Store {
    /// Stores (or replaces) a login session.
    pub async fn save_web_login(&self, login: &WebLoginRow) -> StoreResult<()> {
        let login = login.clone();
        self.write(move |connection| {
            connection.execute(
                "INSERT INTO web_logins (id_sha256, csrf, expires_at) VALUES (?, ?, ?)
                 ON CONFLICT (id_sha256) DO UPDATE SET csrf = excluded.csrf, expires_at = excluded.expires_at",
                params![login.id_sha256, login.csrf, login.expires_at.to_rfc3339_opts(SecondsFormat::Micros, true)],
            )?;
            Ok(())
        })
        .await
    }

    /// Forgets a login session.
    pub async fn delete_web_login(&self, id_sha256: &str) -> StoreResult<()> {
        let id_sha256 = id_sha256.to_owned();
        self.write(move |connection| {
            connection.execute("DELETE FROM web_logins WHERE id_sha256 = ?", params![id_sha256])?;
            connection.announce(super::Announcement::logout(&id_sha256));
            Ok(())
        })
        .await
    }

    /// The live login session with this cookie hash, if any (another replica may have started it).
    pub async fn web_login(&self, id_sha256: &str) -> StoreResult<Option<WebLoginRow>> {
        let now = Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true);
        self.reads
            .optional(
                "SELECT * FROM web_logins WHERE id_sha256 = ? AND expires_at > ?",
                params![id_sha256, now],
                |row| WebLoginRow {
                    id_sha256: row.text("id_sha256"),
                    csrf: row.text("csrf"),
                    expires_at: parse_time(&row.text("expires_at")),
                },
            )
            .await
    }

    /// Drops expired login sessions and returns the others.
    pub async fn live_web_logins(&self) -> StoreResult<Vec<WebLoginRow>> {
        self.write(|connection| {
            let now = Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true);
            connection.execute("DELETE FROM web_logins WHERE expires_at <= ?", params![now])?;
            connection.query_rows("SELECT * FROM web_logins", &[], |row| WebLoginRow {
                id_sha256: row.text("id_sha256"),
                csrf: row.text("csrf"),
                expires_at: parse_time(&row.text("expires_at")),
            })
        })
        .await
    }
}
