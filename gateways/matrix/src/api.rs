//! The bot's Matrix client: built on the state directory, logged in once,
//! restored on every later start.
//!
//! The first start logs in (password, or an access token whose device
//! `whoami` names) and saves the session; every later start restores it, so
//! the device id and its keys in the encrypted crypto store stay the same
//! and users need not verify a new device. A recovery key, when given,
//! restores cross-signing and the key backup after the first sync.

use crate::config::{Login, MatrixSettings};
use crate::error::{StartError, classify};
use crate::state::StateDir;
use gorp_gateway::PlatformError;
use matrix_sdk::authentication::matrix::MatrixSession;
use matrix_sdk::encryption::{BackupDownloadStrategy, EncryptionSettings};
use matrix_sdk::ruma::{OwnedDeviceId, OwnedUserId};
use matrix_sdk::store::RoomLoadSettings;
use matrix_sdk::{Client, SessionMeta, SessionTokens, SqliteStoreConfig};

/// The device name users see in their device lists.
const DEVICE_NAME: &str = "gorp";

/// A logged-in client on the state directory's stores.
pub(crate) async fn connect(settings: &MatrixSettings, state: &StateDir) -> Result<Client, StartError> {
    let client = Client::builder()
        .homeserver_url(settings.homeserver.as_str())
        .sqlite_store_with_config_and_cache_path(store_config(state, settings), None::<&std::path::Path>)
        .with_encryption_settings(EncryptionSettings {
            auto_enable_cross_signing: matches!(settings.login, Login::Password(_)),
            backup_download_strategy: BackupDownloadStrategy::AfterDecryptionFailure,
            auto_enable_backups: false,
        })
        .build()
        .await
        .map_err(|e| StartError::State { path: state.store_path().display().to_string(), why: e.to_string() })?;
    let device = match state.session::<MatrixSession>()? {
        Some(saved) => {
            if saved.meta.user_id.as_str() != settings.user {
                return Err(StartError::OtherAccount {
                    saved: saved.meta.user_id.to_string(),
                    configured: settings.user.clone(),
                });
            }
            restore(&client, saved).await?
        }
        None => {
            let session = first_login(&client, settings).await?;
            state.save_session(&session)?;
            tracing::info!(user = %session.meta.user_id, device = %session.meta.device_id, "logged in as a new device");
            session.meta.device_id
        }
    };
    tracing::info!(user = %settings.user, %device, "matrix session ready");
    Ok(client)
}

/// Restores a saved session; returns its device id.
async fn restore(client: &Client, session: MatrixSession) -> Result<OwnedDeviceId, StartError> {
    let device = session.meta.device_id.clone();
    let restored = client.matrix_auth().restore_session(session, RoomLoadSettings::default()).await;
    restored.map_err(|e| StartError::Matrix(classify(e)))?;
    Ok(device)
}

/// matrix-sdk's SQLite stores, encrypted with the passphrase, sized for a
/// bot: one connection per core and small page caches (the defaults are
/// four connections per core with 2 MB of cache each).
fn store_config(state: &StateDir, settings: &MatrixSettings) -> SqliteStoreConfig {
    SqliteStoreConfig::with_low_memory_config(state.store_path()).passphrase(Some(settings.store_passphrase.expose()))
}

/// Logs in for the first time (the client then has the session) and
/// returns the session to save.
async fn first_login(client: &Client, settings: &MatrixSettings) -> Result<MatrixSession, StartError> {
    match &settings.login {
        Login::Password(password) => {
            let response = client
                .matrix_auth()
                .login_username(&settings.user, password.expose())
                .initial_device_display_name(DEVICE_NAME)
                .send()
                .await
                .map_err(|e| StartError::Matrix(login_error(classify(e))))?;
            Ok((&response).into())
        }
        Login::AccessToken(token) => {
            let (user_id, device_id) = whoami(settings, token.expose()).await?;
            let tokens = SessionTokens { access_token: token.expose().to_owned(), refresh_token: None };
            let session = MatrixSession { meta: SessionMeta { user_id, device_id }, tokens };
            restore(client, session.clone()).await?;
            Ok(session)
        }
    }
}

/// A refused login is fatal (a wrong password does not get right by retrying).
fn login_error(error: PlatformError) -> PlatformError {
    match error {
        PlatformError::Rejected(why) => PlatformError::Fatal(format!("the homeserver refused the login: {why}")),
        other => other,
    }
}

/// Whose access token this is, and which device it belongs to.
async fn whoami(settings: &MatrixSettings, token: &str) -> Result<(OwnedUserId, OwnedDeviceId), StartError> {
    #[derive(serde::Deserialize)]
    struct WhoAmI {
        user_id: OwnedUserId,
        device_id: Option<OwnedDeviceId>,
    }
    let url = settings.homeserver.join("_matrix/client/v3/account/whoami").expect("a fixed path joins");
    let transient = |e: matrix_sdk::reqwest::Error| StartError::Matrix(PlatformError::Transient(e.to_string()));
    let response = matrix_sdk::reqwest::Client::new().get(url).bearer_auth(token).send().await.map_err(transient)?;
    let status = response.status();
    let body = response.text().await.map_err(transient)?;
    if status.is_client_error() {
        return Err(StartError::Matrix(PlatformError::Fatal(format!(
            "the homeserver refused the access token: {body}"
        ))));
    }
    if !status.is_success() {
        return Err(StartError::Matrix(PlatformError::Transient(format!("whoami answered {status}: {body}"))));
    }
    let who: WhoAmI = serde_json::from_str(&body)
        .map_err(|e| StartError::Matrix(PlatformError::Transient(format!("whoami answer: {e}"))))?;
    if who.user_id.as_str() != settings.user {
        return Err(StartError::Matrix(PlatformError::Fatal(format!(
            "the access token belongs to {}, not {}",
            who.user_id, settings.user
        ))));
    }
    let device_id = who.device_id.ok_or_else(|| {
        StartError::Matrix(PlatformError::Fatal("the access token has no device; log in with a password".to_owned()))
    })?;
    Ok((who.user_id, device_id))
}

/// Restores cross-signing and the key backup from the recovery key (best
/// effort: the gateway works without them, it only logs why not).
pub(crate) async fn recover(client: &Client, recovery_key: &str) {
    match client.encryption().recovery().recover(recovery_key).await {
        Ok(()) => tracing::info!("recovered cross-signing and key backup from the recovery key"),
        Err(error) => tracing::warn!(%error, "could not recover with the recovery key"),
    }
}
