//! Webhooks: the operations behind `gorpctl hook …`, the Control API and the
//! admin page (create, rotate, delete, list), accepting a call into a
//! session's queue, and rendering JSON bodies through a hook's template.
//!
//! A call's message goes straight to the session's queue (never to
//! DISPATCH, so a body starting with `!` is only text). Its platform is
//! `webhook` and its message id the caller's delivery id, so a replayed
//! delivery is a duplicate and changes nothing.

use super::{Orchestrator, OrchestratorError, OrchestratorResult};
use crate::bus::{Activity, Inbound};
use crate::store::{HookCall, HookRow, StoreError};

/// Longest template, in bytes.
pub const MAX_TEMPLATE_BYTES: usize = 16 * 1024;
/// Most calls per minute a hook may allow.
pub const MAX_PER_MINUTE: u32 = 10_000;
/// Template work allowed per call (minijinja fuel), so a template cannot loop for long.
const TEMPLATE_FUEL: u64 = 100_000;

fn invalid(reason: String) -> OrchestratorError {
    OrchestratorError::Invalid(reason)
}

fn no_hook(session: &str) -> impl FnOnce(StoreError) -> OrchestratorError + '_ {
    move |error| match error {
        StoreError::NotFound => OrchestratorError::NoHook(session.to_owned()),
        other => other.into(),
    }
}

fn template_environment() -> minijinja::Environment<'static> {
    let mut environment = minijinja::Environment::new();
    environment.set_fuel(Some(TEMPLATE_FUEL));
    environment
}

/// Checks that `template` is a valid template of acceptable size.
pub fn check_template(template: &str) -> Result<(), String> {
    if template.len() > MAX_TEMPLATE_BYTES {
        return Err(format!("the template is longer than {MAX_TEMPLATE_BYTES} bytes"));
    }
    template_environment()
        .template_from_str(template)
        .map(drop)
        .map_err(|error| format!("the template does not parse: {error}"))
}

/// Renders a JSON body through a hook's template.
pub fn render_template(template: &str, body: &serde_json::Value) -> Result<String, String> {
    template_environment()
        .render_str(template, body)
        .map_err(|error| format!("the template failed on this body: {error}"))
}

impl Orchestrator {
    /// Creates `session`'s webhook; returns it with its secret (shown only now).
    pub async fn create_hook(
        &self,
        session: &str,
        template: Option<String>,
        per_minute: Option<u32>,
    ) -> OrchestratorResult<(HookRow, String)> {
        self.inner.store.session(session).await.map_err(super::fleet::not_found_as_unknown(session))?;
        let template = template.filter(|t| !t.trim().is_empty());
        if let Some(template) = &template {
            check_template(template).map_err(invalid)?;
        }
        let per_minute = per_minute.unwrap_or(self.inner.config.hook_per_minute);
        if !(1..=MAX_PER_MINUTE).contains(&per_minute) {
            return Err(invalid(format!("per-minute limit must be from 1 to {MAX_PER_MINUTE}, not {per_minute}")));
        }
        let secret = crate::auth::generate_secret();
        let hook = self.inner.store.create_hook(session, &secret, template, per_minute).await.map_err(|e| match e {
            StoreError::Conflict => invalid(format!("{session} has a webhook already; rotate its secret or delete it")),
            StoreError::NotFound => OrchestratorError::UnknownSession(session.to_owned()),
            other => other.into(),
        })?;
        tracing::info!(session, "webhook created");
        Ok((hook, secret))
    }

    /// Gives `session`'s webhook a new secret; the old one stops working at once.
    pub async fn rotate_hook(&self, session: &str) -> OrchestratorResult<(HookRow, String)> {
        let secret = crate::auth::generate_secret();
        let hook = self.inner.store.rotate_hook(session, &secret).await.map_err(no_hook(session))?;
        tracing::info!(session, "webhook secret rotated");
        Ok((hook, secret))
    }

    /// Deletes `session`'s webhook.
    pub async fn delete_hook(&self, session: &str) -> OrchestratorResult<()> {
        self.inner.store.delete_hook(session).await.map_err(no_hook(session))?;
        tracing::info!(session, "webhook deleted");
        Ok(())
    }

    /// Every webhook, by session.
    pub async fn hooks(&self) -> OrchestratorResult<Vec<HookRow>> {
        Ok(self.inner.store.hooks().await?)
    }

    /// `session`'s webhook with its secret (for checking a call).
    pub async fn hook_with_secret(&self, session: &str) -> OrchestratorResult<(HookRow, String)> {
        self.inner.store.hook(session).await.map_err(no_hook(session))
    }

    /// Queues a call's text for `session`; `None` when `delivery` was accepted before.
    pub async fn accept_hook_call(
        &self,
        session: &str,
        delivery: &str,
        sender: &str,
        text: &str,
    ) -> OrchestratorResult<Option<Inbound>> {
        if self.inner.shutdown.is_cancelled() {
            return Err(OrchestratorError::ShuttingDown);
        }
        crate::names::check_text(text, self.inner.config.max_text_bytes).map_err(invalid)?;
        crate::names::check_external_id("delivery id", delivery).map_err(invalid)?;
        let Some(inbound) = self.inner.store.accept_hook_call(session, delivery, sender, text).await? else {
            return Ok(None);
        };
        tracing::info!(session, message_id = inbound.id, delivery, "webhook call accepted");
        self.inner.bus.report(Activity::Message(inbound.clone()));
        self.enqueue_turn(session, inbound.clone()).await;
        Ok(Some(inbound))
    }

    /// The id of the earlier call that delivered `delivery`.
    pub async fn hook_call_id(&self, session: &str, delivery: &str) -> OrchestratorResult<i64> {
        Ok(self.inner.store.hook_call_id(session, delivery).await?)
    }

    /// Where call `id` to `session`'s webhook stands.
    pub async fn hook_call(&self, session: &str, id: i64) -> OrchestratorResult<Option<HookCall>> {
        match self.inner.store.hook_call(session, id).await {
            Ok(call) => Ok(Some(call)),
            Err(StoreError::NotFound) => Ok(None),
            Err(error) => Err(error.into()),
        }
    }

    /// The longest a caller may wait for an answer.
    pub fn hook_wait_max(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.inner.config.hook_wait_max_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_render_json_and_bad_ones_are_refused() {
        let body = serde_json::json!({"action": "opened", "pull_request": {"title": "Fix it", "number": 7}});
        let text = render_template("PR #{{ pull_request.number }} {{ action }}: {{ pull_request.title }}", &body);
        assert_eq!(text.unwrap(), "PR #7 opened: Fix it");
        assert!(check_template("{{ unclosed").unwrap_err().contains("does not parse"));
        assert!(check_template(&"x".repeat(MAX_TEMPLATE_BYTES + 1)).unwrap_err().contains("longer than"));
        let endless = "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}";
        assert!(render_template(endless, &body).is_err(), "fuel ends runaway templates");
    }
}
