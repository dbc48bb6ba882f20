//! Helpers shared by the integration tests: the client helpers of
//! `gorpd::testing`, and a scripted agent backend.

pub use gorpd::testing::clients::*;
/// Starts gorpd on `dir` with [`HangOrEcho`](gorpd::testing::HangOrEcho) as the default backend.
pub async fn start_with_hang(dir: &std::path::Path) -> gorpd::testing::TestServer {
    start_with_hang_and(dir, |_| {}).await
}

/// Like [`start_with_hang`], with a chance to change the config first.
pub async fn start_with_hang_and(
    dir: &std::path::Path,
    change: impl FnOnce(&mut gorpd::config::Config),
) -> gorpd::testing::TestServer {
    let mut config = gorpd::testing::test_config(dir);
    change(&mut config);
    config.default_agent = "hang-or-echo".into();
    let backends = gorpd::agent_backends(&config).with("hang-or-echo", gorpd::testing::HangOrEcho);
    gorpd::testing::TestServer::start_with(config, backends).await
}
