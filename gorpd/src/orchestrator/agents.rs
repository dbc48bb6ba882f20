//! What chat can change about a session's agent besides its turns: its mode
//! and model (`!mode`, `!model`) and its login (`!login`). The backend does
//! the work; this module finds the session's backend and turns a refusal into
//! an error the user reads.

use super::fleet::not_found_as_unknown;
use super::{Orchestrator, OrchestratorError, OrchestratorResult};
use crate::agent::{AgentBackend, Setting};
use std::sync::Arc;

impl Orchestrator {
    /// Sets the mode or model of `session`'s agent; the text says what happened.
    pub async fn change_agent(&self, session: &str, setting: Setting, value: &str) -> OrchestratorResult<String> {
        let backend = self.backend_of(session).await?;
        backend.change(session, setting, value).await.map_err(OrchestratorError::Invalid)
    }

    /// Lists the ways to log in to `session`'s agent, or starts one (`method`).
    pub async fn login_agent(&self, session: &str, method: Option<&str>) -> OrchestratorResult<String> {
        let backend = self.backend_of(session).await?;
        backend.login(session, method).await.map_err(OrchestratorError::Invalid)
    }

    async fn backend_of(&self, session: &str) -> OrchestratorResult<Arc<dyn AgentBackend>> {
        let row = self.inner.store.session(session).await.map_err(not_found_as_unknown(session))?;
        self.inner.backends.get(&row.backend).ok_or_else(|| {
            OrchestratorError::Invalid(format!("agent backend \"{}\" is not configured in gorpd", row.backend))
        })
    }
}
