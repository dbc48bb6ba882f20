//! gorp-client against the real `gorpd` binary: publishing, subscribing and
//! binding, across gorpd restarts.

mod gorpd;
mod publish;
mod subscribe;

/// Fails a test that waits longer than a minute instead of hanging the suite.
pub(crate) async fn within<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(std::time::Duration::from_secs(60), future).await.expect("finished within a minute")
}
