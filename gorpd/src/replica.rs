//! The replica driver (gorpd on Postgres): keeps this replica's
//! registration alive, hears the other replicas, and takes over what dead
//! ones left.
//!
//! - Every third of the lease it renews the registration. A registration
//!   that expired anyway (the database was unreachable, or the process
//!   stalled, for a whole lease) may have had its sessions taken over: this
//!   gorpd then stops with an error instead of running turns it no longer owns.
//! - As often, in a task of its own (handing work to actors may wait for
//!   queue room, and renewals must never wait for that), it claims the
//!   pending messages and the sessions with work that no live replica owns
//!   (see `orchestrator::replicas`).
//! - A `LISTEN` connection hears the other replicas' commits and requests
//!   (`store::Notice`) and hands each to whoever acts on it. After it
//!   (re)connects, everything is read again, since notifications sent while
//!   it was away are lost: they only ever say "look at the store".

use crate::auth::Authenticator;
use crate::orchestrator::Orchestrator;
use crate::store::Notice;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long dead replicas stay listed before they are forgotten.
const FORGET_DEAD_AFTER: Duration = Duration::from_secs(3600);
/// Wait before listening again after the listening connection failed.
const RELISTEN_AFTER: Duration = Duration::from_secs(1);

/// The file in the data directory that holds the replica id.
pub const ID_FILE: &str = "replica.id";

/// This data directory's replica id, and whether it had one already (then
/// this gorpd is that replica restarted, and picks up what it left).
pub fn identity(data_dir: &std::path::Path) -> std::io::Result<(String, bool)> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = data_dir.join(ID_FILE);
    match std::fs::read_to_string(&path) {
        Ok(id) if is_replica_id(id.trim()) => return Ok((id.trim().to_owned(), true)),
        Ok(_) => tracing::warn!(path = %path.display(), "the replica id file is not an id; starting as a new replica"),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(error),
    }
    let id = uuid::Uuid::new_v4().simple().to_string();
    let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&path)?;
    file.write_all(format!("{id}\n").as_bytes())?;
    file.sync_all()?;
    Ok((id, false))
}

fn is_replica_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Why this replica had to stop, once it did.
#[derive(Debug, Clone, Default)]
pub struct Stopped(Arc<OnceLock<String>>);

impl Stopped {
    /// The reason, if the replica had to stop.
    pub fn reason(&self) -> Option<String> {
        self.0.get().cloned()
    }
}

/// What acts on the other replicas' notices.
#[derive(Debug, Clone)]
pub struct Edges {
    /// Sessions, bindings, turns, the bus.
    pub orchestrator: Orchestrator,
    /// Tokens.
    pub auth: Authenticator,
    /// Web login sessions.
    pub logins: crate::web::Logins,
}

/// Starts the driver's tasks, which run until `shutdown`.
pub fn spawn(edges: Edges, shutdown: CancellationToken, tasks: &TaskTracker) -> Stopped {
    let stopped = Stopped::default();
    let orchestrator = edges.orchestrator.clone();
    let lease = orchestrator.config().replica.as_ref().expect("a replica has replica settings").lease;
    tasks.spawn(keep_registration(orchestrator.clone(), lease, stopped.clone(), shutdown.clone()));
    tasks.spawn(take_over_periodically(orchestrator, lease, shutdown.clone()));
    tasks.spawn(listen(edges, shutdown));
    stopped
}

/// Ticks every third of the lease (the first at once).
fn every_third_of(lease: Duration) -> tokio::time::Interval {
    let mut ticks = tokio::time::interval(lease / 3);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks
}

/// Renews the registration every third of the lease, and keeps the list of live replicas current.
async fn keep_registration(orchestrator: Orchestrator, lease: Duration, stopped: Stopped, shutdown: CancellationToken) {
    let store = orchestrator.store().clone();
    let mut ticks = every_third_of(lease);
    let mut renewed = Instant::now();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let expired = match store.renew_registration(lease).await {
            Ok(true) => {
                renewed = Instant::now();
                false
            }
            Ok(false) => true,
            Err(error) => {
                tracing::warn!(%error, "could not renew this replica's registration; retrying");
                renewed.elapsed() >= lease
            }
        };
        if expired {
            let reason = format!(
                "this replica's registration expired (not renewed for {} s), so others may own its sessions now; \
                 restart it",
                lease.as_secs()
            );
            tracing::error!(%reason, "stopping");
            let _ = stopped.0.set(reason);
            shutdown.cancel();
            return;
        }
        match store.replicas().await {
            Ok(replicas) => orchestrator.bus().set_peers(replicas.iter().filter(|r| r.alive).count() > 1),
            Err(error) => tracing::warn!(%error, "could not list the replicas"),
        }
        if let Err(error) = store.forget_dead_replicas(FORGET_DEAD_AFTER).await {
            tracing::warn!(%error, "could not forget dead replicas");
        }
    }
}

/// Takes over the work of stopped replicas every third of the lease.
async fn take_over_periodically(orchestrator: Orchestrator, lease: Duration, shutdown: CancellationToken) {
    let mut ticks = every_third_of(lease);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        if let Err(error) = orchestrator.take_over_orphans().await {
            tracing::warn!(%error, "taking over the work of stopped replicas failed; retrying");
        }
    }
}

/// Hears the other replicas until `shutdown`, listening again whenever the connection fails.
async fn listen(edges: Edges, shutdown: CancellationToken) {
    let store = edges.orchestrator.store().clone();
    let me = store.replica().expect("joined before listening").to_owned();
    let mut announced = false;
    loop {
        let mut listener = match store.listen().await {
            Ok(listener) => listener,
            Err(error) => {
                tracing::warn!(%error, "cannot listen to the other replicas; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(RELISTEN_AFTER) => continue,
                }
            }
        };
        catch_up(&edges).await;
        if !announced {
            // The others start passing chunks on to this replica now, not at their next renewal.
            announced = store.notify(&crate::store::Announcement::joined()).await.is_ok();
        }
        loop {
            let received = tokio::select! {
                _ = shutdown.cancelled() => return,
                received = listener.try_recv() => received,
            };
            match received {
                Ok(Some(notification)) => {
                    if let Some(notice) = Notice::parse(notification.channel(), notification.payload(), &me) {
                        tracing::debug!(?notice, "notice from another replica");
                        act_on(&edges, notice).await;
                    }
                }
                Ok(None) => {
                    // The connection dropped; the next `try_recv` reconnects. What was sent meanwhile is lost.
                    tracing::warn!("the connection listening to the other replicas dropped; reading the store again");
                    catch_up(&edges).await;
                }
                Err(error) => {
                    tracing::warn!(%error, "listening to the other replicas failed; listening again");
                    break;
                }
            }
        }
    }
}

/// Hands one notice to whoever acts on it.
async fn act_on(edges: &Edges, notice: Notice) {
    match notice {
        Notice::Tokens => reload_tokens(&edges.auth).await,
        Notice::Logout(id_sha256) => edges.logins.forget(&id_sha256),
        other => edges.orchestrator.on_replica_notice(other).await,
    }
}

/// Reads everything notifications would have announced (a logout missed
/// meanwhile is not: that session lasts here until it expires).
async fn catch_up(edges: &Edges) {
    let orchestrator = &edges.orchestrator;
    orchestrator.bus().log_changed();
    if let Err(error) = orchestrator.reload_bindings().await {
        tracing::warn!(%error, "could not reload the bindings");
    }
    reload_tokens(&edges.auth).await;
    if let Err(error) = orchestrator.take_over_orphans().await {
        tracing::warn!(%error, "taking over the work of stopped replicas failed; the next renewal retries");
    }
}

async fn reload_tokens(auth: &Authenticator) {
    if let Err(error) = auth.reload().await {
        tracing::warn!(%error, "could not reload the tokens");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_data_directory_keeps_its_replica_id_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let (id, rejoined) = identity(dir.path()).unwrap();
        assert!(is_replica_id(&id) && !rejoined, "{id}");
        assert_eq!(identity(dir.path()).unwrap(), (id.clone(), true), "the same replica restarted");
        std::fs::write(dir.path().join(ID_FILE), "not an id").unwrap();
        let (fresh, rejoined) = identity(dir.path()).unwrap();
        assert!(fresh != id && !rejoined, "a damaged file gives a new id");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(ID_FILE)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
