//! Login sessions of the web adapter, by the SHA-256 of their cookie.

use super::{Store, StoreResult, parse_time};
use chrono::{DateTime, SecondsFormat, Utc};
use sqlx::Row;

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
            Box::pin(async move {
                sqlx::query("INSERT OR REPLACE INTO web_logins (id_sha256, csrf, expires_at) VALUES (?, ?, ?)")
                    .bind(&login.id_sha256)
                    .bind(&login.csrf)
                    .bind(login.expires_at.to_rfc3339_opts(SecondsFormat::Micros, true))
                    .execute(&mut *connection)
                    .await?;
                Ok(())
            })
        })
        .await
    }

    /// Forgets a login session.
    pub async fn delete_web_login(&self, id_sha256: &str) -> StoreResult<()> {
        let id_sha256 = id_sha256.to_owned();
        self.write(move |connection| {
            Box::pin(async move {
                sqlx::query("DELETE FROM web_logins WHERE id_sha256 = ?")
                    .bind(&id_sha256)
                    .execute(&mut *connection)
                    .await?;
                Ok(())
            })
        })
        .await
    }

    /// Drops expired login sessions and returns the others.
    pub async fn live_web_logins(&self) -> StoreResult<Vec<WebLoginRow>> {
        let rows = self
            .write(|connection| {
                Box::pin(async move {
                    let now = Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true);
                    sqlx::query("DELETE FROM web_logins WHERE expires_at <= ?")
                        .bind(&now)
                        .execute(&mut *connection)
                        .await?;
                    Ok(sqlx::query("SELECT * FROM web_logins").fetch_all(&mut *connection).await?)
                })
            })
            .await?;
        Ok(rows
            .iter()
            .map(|r| WebLoginRow {
                id_sha256: r.get("id_sha256"),
                csrf: r.get("csrf"),
                expires_at: parse_time(r.get::<&str, _>("expires_at")),
            })
            .collect())
    }
}
