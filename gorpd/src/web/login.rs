//! Login: the one-time link printed at start, the optional password form,
//! login sessions (an HttpOnly, SameSite=Strict cookie naming a random id kept
//! in memory), per-session CSRF tokens and the failed-login rate limit.
//!
//! Sessions live only in memory: a restart of gorpd logs everyone out (a new
//! one-time link is printed). A link secret works once. At most
//! [`MAX_FAILURES`] failed logins per client address are allowed within
//! [`FAILURE_WINDOW`]; further attempts get 429 with `Retry-After`, even with
//! the right secret, until the oldest failure leaves the window.

use super::templates::{self, Frame};
use super::{WebError, WebState};
use crate::store::{Store, StoreError, WebLoginRow};
use axum::extract::{ConnectInfo, FromRequestParts, Query, State};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use axum::response::{Html, IntoResponse, Redirect, Response};
use chrono::Utc;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Name of the session cookie.
pub const COOKIE: &str = "gorp_session";
/// How long a login session lasts.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);
/// Failed logins allowed per client address within [`FAILURE_WINDOW`].
pub const MAX_FAILURES: usize = 5;
/// The window of the failed-login limit.
pub const FAILURE_WINDOW: Duration = Duration::from_secs(60);

/// One logged-in browser.
#[derive(Debug, Clone)]
struct LoginSession {
    csrf: String,
    expires: Instant,
    /// A message for the next page (e.g. a new token's secret, shown once).
    flash: Option<String>,
}

#[derive(Debug, Default)]
struct Inner {
    sessions: HashMap<String, LoginSession>,
    link_secrets: HashSet<String>,
    failures: HashMap<IpAddr, VecDeque<Instant>>,
}

/// Login sessions, one-time link secrets and the failure limiter. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Logins {
    inner: Arc<Mutex<Inner>>,
    password_hash: Option<Arc<str>>,
    /// Where sessions are kept across restarts (none in unit tests).
    store: Option<Store>,
}

/// Sessions are found by the SHA-256 of their cookie, as the store keeps them.
fn key(id: &str) -> String {
    hex::encode(Sha256::digest(id.as_bytes()))
}

/// 32 random bytes, hex.
fn random_id() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Compares without stopping at the first difference.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Logins {
    /// No sessions yet; `password_hash` (argon2 PHC) enables the password form.
    pub fn new(password_hash: Option<String>) -> Self {
        Self { inner: Arc::default(), password_hash: password_hash.map(Into::into), store: None }
    }

    /// Like [`Logins::new`], keeping sessions in `store` and restoring the live ones,
    /// so a restart of gorpd logs nobody out.
    pub async fn restore(password_hash: Option<String>, store: Store) -> Result<Self, StoreError> {
        let logins = Self { store: Some(store.clone()), ..Self::new(password_hash) };
        let rows = store.live_web_logins().await?;
        let (now_wall, now) = (Utc::now(), Instant::now());
        let mut inner = logins.lock();
        for row in rows {
            let left = (row.expires_at - now_wall).to_std().unwrap_or_default();
            inner.sessions.insert(row.id_sha256, LoginSession { csrf: row.csrf, expires: now + left, flash: None });
        }
        drop(inner);
        Ok(logins)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A new one-time link secret (for the start-up link and tests).
    pub fn new_link_secret(&self) -> String {
        let secret = random_id();
        self.lock().link_secrets.insert(secret.clone());
        secret
    }

    /// Starts a session with a fresh id and CSRF token; returns the id.
    async fn start_session(&self) -> String {
        let id = random_id();
        let session = LoginSession { csrf: random_id(), expires: Instant::now() + SESSION_LIFETIME, flash: None };
        let row = WebLoginRow {
            id_sha256: key(&id),
            csrf: session.csrf.clone(),
            expires_at: Utc::now() + chrono::Duration::from_std(SESSION_LIFETIME).unwrap_or_default(),
        };
        {
            let mut inner = self.lock();
            let now = Instant::now();
            inner.sessions.retain(|_, s| s.expires > now);
            inner.sessions.insert(key(&id), session);
        }
        if let Some(store) = &self.store
            && let Err(error) = store.save_web_login(&row).await
        {
            tracing::warn!(%error, "could not store a web login; it lasts until gorpd stops");
        }
        id
    }

    /// Uses up a link secret; `false` if it is unknown or was used.
    fn redeem(&self, secret: &str) -> bool {
        self.lock().link_secrets.remove(secret)
    }

    /// The CSRF token of a live session; one this gorpd does not know is
    /// looked up in the store (another replica may have started it).
    async fn csrf_of(&self, id: &str) -> Option<String> {
        let known = self.lock().sessions.get(&key(id)).filter(|s| s.expires > Instant::now()).map(|s| s.csrf.clone());
        if known.is_some() {
            return known;
        }
        let row = self.store.as_ref()?.web_login(&key(id)).await.ok()??;
        let left = (row.expires_at - Utc::now()).to_std().unwrap_or_default();
        let session = LoginSession { csrf: row.csrf.clone(), expires: Instant::now() + left, flash: None };
        self.lock().sessions.insert(row.id_sha256, session);
        Some(row.csrf)
    }

    /// Forgets a session another replica ended (by its cookie's SHA-256).
    pub fn forget(&self, id_sha256: &str) {
        self.lock().sessions.remove(id_sha256);
    }

    async fn end_session(&self, id: &str) {
        self.lock().sessions.remove(&key(id));
        if let Some(store) = &self.store
            && let Err(error) = store.delete_web_login(&key(id)).await
        {
            tracing::warn!(%error, "could not forget a web login");
        }
    }

    /// Leaves a message for the session's next page.
    pub(super) fn set_flash(&self, id: &str, text: String) {
        if let Some(session) = self.lock().sessions.get_mut(&key(id)) {
            session.flash = Some(text);
        }
    }

    /// Takes the session's pending message.
    pub(super) fn take_flash(&self, id: &str) -> Option<String> {
        self.lock().sessions.get_mut(&key(id)).and_then(|s| s.flash.take())
    }

    /// Refuses with 429 while `ip` is over the failure limit.
    fn check_rate(&self, ip: IpAddr) -> Result<(), WebError> {
        let mut inner = self.lock();
        let Some(failures) = inner.failures.get_mut(&ip) else { return Ok(()) };
        let now = Instant::now();
        while failures.front().is_some_and(|t| now.duration_since(*t) >= FAILURE_WINDOW) {
            failures.pop_front();
        }
        match failures.front() {
            Some(oldest) if failures.len() >= MAX_FAILURES => {
                let wait = FAILURE_WINDOW.saturating_sub(now.duration_since(*oldest));
                Err(WebError::TooManyAttempts(wait.as_secs().max(1)))
            }
            _ => Ok(()),
        }
    }

    fn record_failure(&self, ip: IpAddr) {
        tracing::warn!(%ip, "failed web login");
        self.lock().failures.entry(ip).or_default().push_back(Instant::now());
    }
}

/// A request with a valid login session. Rejects with 401.
#[derive(Debug, Clone)]
pub struct ApiSession {
    /// The session id (the cookie value).
    pub id: String,
    /// Its CSRF token.
    pub csrf: String,
}

impl ApiSession {
    /// Refuses with 403 unless `given` is this session's CSRF token.
    pub fn check_csrf(&self, given: &str) -> Result<(), WebError> {
        if same(&self.csrf, given) { Ok(()) } else { Err(WebError::Forbidden) }
    }
}

/// The session id in the request's cookie, if any.
fn cookie_value(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_owned())
}

/// The login session of a request, if it has a live one.
pub(super) async fn session_of(state: &WebState, headers: &HeaderMap) -> Option<ApiSession> {
    let id = cookie_value(headers)?;
    let csrf = state.logins.csrf_of(&id).await?;
    Some(ApiSession { id, csrf })
}

impl FromRequestParts<WebState> for ApiSession {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &WebState) -> Result<Self, Self::Rejection> {
        session_of(state, &parts.headers).await.ok_or(WebError::Unauthorized)
    }
}

/// A page request with a valid login session. Redirects to `/login` otherwise.
#[derive(Debug, Clone)]
pub struct PageSession(pub ApiSession);

impl FromRequestParts<WebState> for PageSession {
    type Rejection = Redirect;

    async fn from_request_parts(parts: &mut Parts, state: &WebState) -> Result<Self, Self::Rejection> {
        session_of(state, &parts.headers).await.map(PageSession).ok_or_else(|| Redirect::to("/login"))
    }
}

/// `Set-Cookie` for a new session.
fn session_cookie(id: &str) -> String {
    format!("{COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}", SESSION_LIFETIME.as_secs())
}

/// Starts a session and sends the browser to the chat.
async fn logged_in(logins: &Logins) -> Response {
    let id = logins.start_session().await;
    ([(axum::http::header::SET_COOKIE, session_cookie(&id))], Redirect::to("/")).into_response()
}

/// The `token` query parameter of the login link.
#[derive(Debug, serde::Deserialize)]
pub struct LinkQuery {
    token: Option<String>,
}

/// `GET /login`: redeems a one-time link, or shows the password form.
pub async fn login_page(
    State(state): State<WebState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(query): Query<LinkQuery>,
) -> Result<Response, WebError> {
    let Some(token) = query.token else { return Ok(login_form(&state.logins, None)?.into_response()) };
    state.logins.check_rate(peer.ip())?;
    if state.logins.redeem(&token) {
        tracing::info!(peer = %peer, "web login with the one-time link");
        return Ok(logged_in(&state.logins).await);
    }
    state.logins.record_failure(peer.ip());
    let page = login_form(&state.logins, Some("This login link is not valid (each link works once)."))?;
    Ok((axum::http::StatusCode::UNAUTHORIZED, page).into_response())
}

fn login_form(logins: &Logins, error: Option<&str>) -> Result<Html<String>, WebError> {
    let frame = Frame { title: "Log in", csrf: None, flash: None };
    let fields = minijinja::context! { error, password_login => logins.password_hash.is_some() };
    templates::render("login.html", frame, fields)
}

/// The password form's fields.
#[derive(Debug, serde::Deserialize)]
pub struct PasswordForm {
    password: String,
}

/// `POST /login`: checks the password against `web_password_hash`.
pub async fn login_password(
    State(state): State<WebState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    axum::Form(form): axum::Form<PasswordForm>,
) -> Result<Response, WebError> {
    let Some(hash) = state.logins.password_hash.clone() else {
        return Err(WebError::NotFound("password login is not configured (web_password_hash)".to_owned()));
    };
    state.logins.check_rate(peer.ip())?;
    // Argon2 is deliberately slow: keep it off the async workers.
    let ok = tokio::task::spawn_blocking(move || verify_password(&hash, &form.password))
        .await
        .map_err(WebError::internal)?;
    if ok {
        tracing::info!(peer = %peer, "web login with the password");
        return Ok(logged_in(&state.logins).await);
    }
    state.logins.record_failure(peer.ip());
    Ok((axum::http::StatusCode::UNAUTHORIZED, login_form(&state.logins, Some("Wrong password."))?).into_response())
}

/// Whether `password` matches the argon2 PHC string `hash`.
pub fn verify_password(hash: &str, password: &str) -> bool {
    use argon2::PasswordVerifier;
    argon2::PasswordHash::new(hash)
        .is_ok_and(|parsed| argon2::Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
}

/// The CSRF field of a form.
#[derive(Debug, serde::Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

/// `POST /logout`: ends the session.
pub async fn logout(
    State(state): State<WebState>,
    session: ApiSession,
    axum::Form(form): axum::Form<CsrfForm>,
) -> Result<Response, WebError> {
    session.check_csrf(&form.csrf)?;
    state.logins.end_session(&session.id).await;
    let clear = format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0");
    Ok(([(axum::http::header::SET_COOKIE, clear)], Redirect::to("/login")).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_secret_works_once() {
        let logins = Logins::new(None);
        let secret = logins.new_link_secret();
        assert!(logins.redeem(&secret));
        assert!(!logins.redeem(&secret));
        assert!(!logins.redeem("nope"));
    }

    #[test]
    fn the_sixth_failure_within_a_minute_is_refused() {
        let logins = Logins::new(None);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        for _ in 0..MAX_FAILURES {
            logins.check_rate(ip).unwrap();
            logins.record_failure(ip);
        }
        assert!(matches!(logins.check_rate(ip), Err(WebError::TooManyAttempts(s)) if (1..=60).contains(&s)));
        assert!(logins.check_rate("10.0.0.1".parse().unwrap()).is_ok(), "other addresses are not affected");
    }

    #[test]
    fn passwords_are_checked_against_the_phc_hash() {
        use argon2::PasswordHasher;
        use argon2::password_hash::SaltString;
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        let hash = argon2::Argon2::default().hash_password(b"hunter2", &salt).unwrap().to_string();
        assert!(verify_password(&hash, "hunter2"));
        assert!(!verify_password(&hash, "hunter3"));
        assert!(!verify_password("not a hash", "hunter2"));
    }

    #[test]
    fn cookies_are_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert("cookie", "a=1; gorp_session=abc; b=2".parse().unwrap());
        assert_eq!(cookie_value(&headers).as_deref(), Some("abc"));
    }
}
