//! Tokens and authentication: the admin token file, token creation and
//! revocation, and the gRPC interceptor that turns `authorization: Bearer`
//! into a [`Principal`].
//!
//! Only SHA-256 hashes of secrets are stored. Valid tokens are cached in
//! memory (the interceptor is synchronous); create and revoke write the
//! store first, then the cache, so a revoked token is refused at once. Each
//! valid token has a [`Revocation`] that the interceptor hands to the
//! request: revoking the token fires it, which ends the streams it opened.

use crate::names;
use crate::store::{Store, StoreError, TokenKind, TokenRow};
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Status};

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// An admin token: everything.
    Admin,
    /// A gateway token: the Bus, for one platform.
    Gateway {
        /// The platform it acts for.
        platform: String,
    },
}

impl Principal {
    /// Whether this caller may act for `platform`.
    pub fn may_act_for(&self, platform: &str) -> bool {
        match self {
            Self::Admin => true,
            Self::Gateway { platform: own } => own == platform,
        }
    }
}

/// Errors of token management.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Bad input.
    #[error("{0}")]
    Invalid(String),
    /// No such token (or already revoked).
    #[error("unknown or already revoked token {0}")]
    UnknownToken(i64),
    /// The admin token file could not be read or written.
    #[error("admin token file {path}: {source}")]
    TokenFile {
        /// The file.
        path: PathBuf,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Name of the admin token file in the data directory.
pub const ADMIN_TOKEN_FILE: &str = "admin.token";

/// Checks tokens and manages them. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Authenticator {
    store: Store,
    valid: Arc<RwLock<HashMap<String, (Principal, Revocation)>>>,
    /// Hashes of tokens known revoked (revocation is for ever): a reload
    /// that read the rows before a revocation never brings one back.
    revoked: Arc<RwLock<std::collections::HashSet<String>>>,
}

/// Fires when the token a request was made with is revoked.
#[derive(Clone, Debug, Default)]
pub struct Revocation(CancellationToken);

impl Revocation {
    /// Completes once the token is revoked.
    pub async fn revoked(&self) {
        self.0.cancelled().await;
    }
}

/// A new random secret: `gorp_` and 64 hex digits.
pub fn generate_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("gorp_{}", hex::encode(bytes))
}

/// Whether `secret` has the shape [`generate_secret`] produces.
fn is_well_formed(secret: &str) -> bool {
    secret.strip_prefix("gorp_").is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Makes an existing token file private to its owner, saying so when it was not.
fn tighten_permissions(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)?.permissions().mode();
    if mode & 0o077 != 0 {
        tracing::warn!(path = %path.display(), mode = format!("{:o}", mode & 0o777), "admin token file was readable by others; set it to 0600");
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

fn principal_of(kind: &TokenKind) -> Principal {
    match kind {
        TokenKind::Admin => Principal::Admin,
        TokenKind::Gateway { platform } => Principal::Gateway { platform: platform.clone() },
    }
}

impl Authenticator {
    /// Loads every valid token from the store.
    pub async fn load(store: Store) -> Result<Self, AuthError> {
        let valid = store
            .tokens()
            .await?
            .into_iter()
            .filter(|t| t.revoked_at.is_none())
            .map(|t| (t.secret_sha256, (principal_of(&t.kind), Revocation::default())))
            .collect();
        Ok(Self { store, valid: Arc::new(RwLock::new(valid)), revoked: Arc::default() })
    }

    /// Reads the tokens again (another replica created or revoked some): new
    /// ones are accepted, revoked ones refused and the streams they opened ended.
    pub async fn reload(&self) -> Result<(), AuthError> {
        // Only what the rows say changes the cache: a token created here
        // after this read is not in them and stays valid.
        let rows = self.store.tokens().await?;
        for row in rows {
            match row.revoked_at {
                Some(_) => self.forget_revoked(&row.secret_sha256),
                None => {
                    let revoked = self.revoked.read().expect("token cache lock");
                    let mut valid = self.valid.write().expect("token cache lock");
                    if !revoked.contains(&row.secret_sha256) {
                        let principal = principal_of(&row.kind);
                        valid.entry(row.secret_sha256).or_insert_with(|| (principal, Revocation::default()));
                    }
                }
            }
        }
        Ok(())
    }

    /// Refuses a revoked token from now on and ends the streams it opened.
    fn forget_revoked(&self, secret_sha256: &str) {
        let mut revoked = self.revoked.write().expect("token cache lock");
        revoked.insert(secret_sha256.to_owned());
        if let Some((_, revocation)) = self.valid.write().expect("token cache lock").remove(secret_sha256) {
            // Streams opened with this token end now, not at their next reconnect.
            revocation.0.cancel();
        }
    }

    /// Makes sure `<data_dir>/admin.token` holds a valid admin token, creating
    /// the file (mode 0600) on first start. Returns its path.
    pub async fn ensure_admin_token(&self, data_dir: &Path) -> Result<PathBuf, AuthError> {
        let path = data_dir.join(ADMIN_TOKEN_FILE);
        let file_error = |source| AuthError::TokenFile { path: path.clone(), source };
        match std::fs::read_to_string(&path) {
            Ok(secret) => {
                let secret = secret.trim();
                if !is_well_formed(secret) {
                    return Err(AuthError::Invalid(format!(
                        "admin token file {} does not hold a gorp token (gorp_ and 64 hex digits); delete it to get a new one",
                        path.display()
                    )));
                }
                tighten_permissions(&path).map_err(file_error)?;
                match self.store.token_by_hash(&hash(secret)).await? {
                    Some(row) if row.revoked_at.is_some() => {
                        tracing::warn!(path = %path.display(), "the admin token in this file was revoked; delete the file and restart to get a new one");
                    }
                    Some(_) => {}
                    None => self.remember(&self.store.insert_token("admin", &TokenKind::Admin, &hash(secret)).await?),
                }
                Ok(path)
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let secret = generate_secret();
                self.remember(&self.store.insert_token("admin", &TokenKind::Admin, &hash(&secret)).await?);
                write_private(&path, &secret).map_err(file_error)?;
                tracing::info!(path = %path.display(), "created the admin token");
                Ok(path)
            }
            Err(error) => Err(file_error(error)),
        }
    }

    fn remember(&self, row: &TokenRow) {
        let entry = (principal_of(&row.kind), Revocation::default());
        self.valid.write().expect("token cache lock").insert(row.secret_sha256.clone(), entry);
    }

    /// Creates a token; returns it and its secret (shown once).
    pub async fn create(&self, name: &str, kind: TokenKind) -> Result<(TokenRow, String), AuthError> {
        names::check_label("token name", name).map_err(AuthError::Invalid)?;
        if let TokenKind::Gateway { platform } = &kind {
            names::check_platform(platform).map_err(AuthError::Invalid)?;
        }
        let secret = generate_secret();
        let row = self.store.insert_token(name, &kind, &hash(&secret)).await?;
        self.remember(&row);
        tracing::info!(token = row.id, name, "token created");
        Ok((row, secret))
    }

    /// Every token, revoked ones included.
    pub async fn list(&self) -> Result<Vec<TokenRow>, AuthError> {
        Ok(self.store.tokens().await?)
    }

    /// Revokes a token; it is refused from now on.
    pub async fn revoke(&self, id: i64) -> Result<TokenRow, AuthError> {
        let row = self.store.revoke_token(id).await.map_err(|e| match e {
            StoreError::NotFound => AuthError::UnknownToken(id),
            other => other.into(),
        })?;
        self.forget_revoked(&row.secret_sha256);
        tracing::info!(token = id, "token revoked");
        Ok(row)
    }

    /// The principal for a bearer secret.
    pub fn check(&self, secret: &str) -> Option<Principal> {
        self.check_with_revocation(secret).map(|(principal, _)| principal)
    }

    fn check_with_revocation(&self, secret: &str) -> Option<(Principal, Revocation)> {
        self.valid.read().expect("token cache lock").get(&hash(secret)).cloned()
    }
}

/// Writes `secret` to a new file readable only by its owner.
fn write_private(path: &Path, secret: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    writeln!(file, "{secret}")
}

impl tonic::service::Interceptor for Authenticator {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let header = request
            .metadata()
            .get("authorization")
            .ok_or_else(|| Status::unauthenticated("missing authorization: send \"authorization: Bearer <token>\""))?;
        let secret = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
            .ok_or_else(|| Status::unauthenticated("malformed authorization header: expected \"Bearer <token>\""))?;
        let (principal, revocation) = self
            .check_with_revocation(secret.trim())
            .ok_or_else(|| Status::unauthenticated("invalid or revoked token"))?;
        request.extensions_mut().insert(principal);
        request.extensions_mut().insert(revocation);
        Ok(request)
    }
}
