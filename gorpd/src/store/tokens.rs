//! API tokens. Only the SHA-256 of a secret is stored.

use super::{Store, StoreError, StoreResult, now_text, parse_time};
use chrono::{DateTime, Utc};
use sqlx::Row;

/// What a token may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenKind {
    /// Everything.
    Admin,
    /// The Bus, for one platform.
    Gateway {
        /// The platform it acts for.
        platform: String,
    },
}

/// A stored token, without its secret.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenRow {
    /// Store id.
    pub id: i64,
    /// Label.
    pub name: String,
    /// What it may do.
    pub kind: TokenKind,
    /// SHA-256 of the secret, hex.
    pub secret_sha256: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Revocation time.
    pub revoked_at: Option<DateTime<Utc>>,
}

fn token_from_row(row: &sqlx::sqlite::SqliteRow) -> TokenRow {
    let platform: Option<String> = row.get("platform_id");
    let kind = match (row.get::<&str, _>("kind"), platform) {
        ("gateway", Some(platform)) => TokenKind::Gateway { platform },
        _ => TokenKind::Admin,
    };
    TokenRow {
        id: row.get("id"),
        name: row.get("name"),
        kind,
        secret_sha256: row.get("secret_sha256"),
        created_at: parse_time(row.get::<&str, _>("created_at")),
        revoked_at: row.get::<Option<&str>, _>("revoked_at").map(parse_time),
    }
}

impl Store {
    /// Stores a token by the hash of its secret.
    pub async fn insert_token(&self, name: &str, kind: &TokenKind, secret_sha256: &str) -> StoreResult<TokenRow> {
        let (kind_text, platform) = match kind {
            TokenKind::Admin => ("admin", None),
            TokenKind::Gateway { platform } => ("gateway", Some(platform.clone())),
        };
        let (name, secret_sha256) = (name.to_owned(), secret_sha256.to_owned());
        self.write(move |connection| {
            Box::pin(async move {
                let row = sqlx::query(
                    "INSERT INTO tokens (name, kind, platform_id, secret_sha256, created_at) VALUES (?, ?, ?, ?, ?) RETURNING *",
                )
                .bind(&name)
                .bind(kind_text)
                .bind(&platform)
                .bind(&secret_sha256)
                .bind(now_text())
                .fetch_one(&mut *connection)
                .await?;
                Ok(token_from_row(&row))
            })
        })
        .await
    }

    /// Every token, revoked ones included, by id.
    pub async fn tokens(&self) -> StoreResult<Vec<TokenRow>> {
        let rows = sqlx::query("SELECT * FROM tokens ORDER BY id").fetch_all(&self.pool).await?;
        Ok(rows.iter().map(token_from_row).collect())
    }

    /// The token with this secret hash, if any.
    pub async fn token_by_hash(&self, secret_sha256: &str) -> StoreResult<Option<TokenRow>> {
        let row = sqlx::query("SELECT * FROM tokens WHERE secret_sha256 = ?")
            .bind(secret_sha256)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(token_from_row))
    }

    /// Revokes a token; `NotFound` when unknown or already revoked.
    pub async fn revoke_token(&self, id: i64) -> StoreResult<TokenRow> {
        self.write(move |connection| {
            Box::pin(async move {
                let row =
                    sqlx::query("UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL RETURNING *")
                        .bind(now_text())
                        .bind(id)
                        .fetch_optional(&mut *connection)
                        .await?;
                row.as_ref().map(token_from_row).ok_or(StoreError::NotFound)
            })
        })
        .await
    }
}
