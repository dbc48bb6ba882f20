//! Helpers shared by the integration tests: the client helpers of
//! `gorpd::testing`, and a scripted agent backend.

pub use gorpd::testing::clients::*;
use std::time::Duration;
/// A backend for tests: never answers a prompt starting with "hang"; for one
/// starting with "ask", asks for permission and answers with the decision;
/// echoes anything else.
pub struct HangOrEcho;

impl gorpd::agent::AgentBackend for HangOrEcho {
    fn prompt(
        &self,
        request: gorpd::agent::PromptRequest,
    ) -> futures::stream::BoxStream<'static, gorpd::agent::AgentEvent> {
        use futures::StreamExt;
        use gorpd::agent::{AgentEvent, PermissionAsk, PermissionDecision, PermissionOption};
        if request.text.starts_with("hang") {
            return futures::stream::pending().boxed();
        }
        if request.text.starts_with("ask") {
            let (reply, decision) = tokio::sync::oneshot::channel();
            let option = |id: &str, kind: &str| PermissionOption { id: id.into(), label: id.into(), kind: kind.into() };
            let options =
                vec![option("yes", "allow_once"), option("yes-always", "allow_always"), option("no", "reject_once")];
            let ask = AgentEvent::Permission(PermissionAsk { title: "write notes.txt".into(), options, reply });
            let answer = async move {
                let text = match decision.await {
                    Ok(PermissionDecision::Selected(id)) => format!("decision: {id}"),
                    _ => "decision: cancelled".to_owned(),
                };
                futures::stream::iter([AgentEvent::Chunk(text), AgentEvent::Done])
            };
            return futures::stream::once(async { ask }).chain(futures::stream::once(answer).flatten()).boxed();
        }
        gorpd::agent::EchoBackend::new(Duration::ZERO).prompt(request)
    }
}

/// Starts gorpd on `dir` with [`HangOrEcho`] as the default backend.
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
    let backends = gorpd::agent_backends(&config).with("hang-or-echo", HangOrEcho);
    gorpd::testing::TestServer::start_with(config, backends).await
}
