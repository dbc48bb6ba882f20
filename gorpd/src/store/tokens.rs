//! API tokens. Only the SHA-256 of a secret is stored.

use super::sql::params;
use super::{Announcement, Store, StoreResult, StoredRow, now_text, parse_time};
use chrono::{DateTime, Utc};

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

fn token_from_row(row: &dyn StoredRow) -> TokenRow {
    let kind = match (row.text("kind").as_str(), row.optional_text("platform_id")) {
        ("gateway", Some(platform)) => TokenKind::Gateway { platform },
        _ => TokenKind::Admin,
    };
    TokenRow {
        id: row.integer("id"),
        name: row.text("name"),
        kind,
        secret_sha256: row.text("secret_sha256"),
        created_at: parse_time(&row.text("created_at")),
        revoked_at: row.optional_text("revoked_at").as_deref().map(parse_time),
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
            connection.announce(Announcement::tokens());
            connection.query_one(
                "INSERT INTO tokens (name, kind, platform_id, secret_sha256, created_at) VALUES (?, ?, ?, ?, ?) RETURNING *",
                params![name, kind_text, platform, secret_sha256, now_text()],
                token_from_row,
            )
        })
        .await
    }

    /// Every token, revoked ones included, by id.
    pub async fn tokens(&self) -> StoreResult<Vec<TokenRow>> {
        self.reads.rows("SELECT * FROM tokens ORDER BY id", &[], token_from_row).await
    }

    /// The token with this secret hash, if any.
    pub async fn token_by_hash(&self, secret_sha256: &str) -> StoreResult<Option<TokenRow>> {
        self.reads
            .optional("SELECT * FROM tokens WHERE secret_sha256 = ?", params![secret_sha256], token_from_row)
            .await
    }

    /// Revokes a token; `NotFound` when unknown or already revoked.
    pub async fn revoke_token(&self, id: i64) -> StoreResult<TokenRow> {
        self.write(move |connection| {
            connection.announce(Announcement::tokens());
            connection.query_one(
                "UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL RETURNING *",
                params![now_text(), id],
                token_from_row,
            )
        })
        .await
    }
}
