//! What gorp knows about one session's ACP agent besides its turns: its
//! modes, models and slash commands, how one logs in to it, and a link to
//! the live connection so `!mode`, `!model` and `!login` act at once.
//!
//! One state per gorp session, kept by the pool across process restarts (a
//! new process re-reports everything, and the mode or model a user chose is
//! applied to it again). The connection writes it; DISPATCH reads and
//! changes it through the backend. Settings chosen in chat live in memory:
//! after a gorpd restart the profile's `mode` and `model` apply again.

use crate::agent::{AgentCommand, AgentView, Choice, Setting};
use agent_client_protocol::v1::ConnectionTo;
use agent_client_protocol::v1::schema::{
    AuthMethod, AuthenticateRequest, AvailableCommandInput, SessionConfigKind, SessionConfigOption,
    SessionConfigOptionCategory, SessionConfigSelectOptions, SessionId, SessionModeState, SessionUpdate,
    SetSessionConfigOptionRequest, SetSessionModeRequest,
};
use agent_client_protocol::{Agent, ErrorCode};
use std::sync::Mutex;
use std::time::Duration;

/// Longest wait for the agent to confirm a mode or model change.
const CHANGE_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest wait for an agent's own login flow.
const LOGIN_TIMEOUT: Duration = Duration::from_secs(300);

/// The state of one session's agent.
#[derive(Default)]
pub(super) struct AgentState {
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for AgentState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentState").field("view", &self.lock().view).finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Inner {
    view: AgentView,
    auth: Vec<AuthMethod>,
    connection: Option<ConnectionTo<Agent>>,
    session: Option<SessionId>,
    /// The config option that holds the model, when the agent has one.
    model_option: Option<agent_client_protocol::v1::schema::SessionConfigId>,
    /// Chosen in chat; wins over the profile's default.
    chosen_mode: Option<String>,
    chosen_model: Option<String>,
}

impl AgentState {
    /// A snapshot for `!status` and `!help`.
    pub(super) fn view(&self) -> AgentView {
        self.lock().view.clone()
    }

    /// A process initialized: its connection and ways to log in.
    pub(super) fn connected(&self, connection: ConnectionTo<Agent>, auth: Vec<AuthMethod>) {
        let mut inner = self.lock();
        inner.view.auth_methods = auth
            .iter()
            .map(|m| Choice {
                id: m.id().to_string(),
                name: m.name().to_owned(),
                description: m.description().map(str::to_owned),
            })
            .collect();
        inner.auth = auth;
        inner.connection = Some(connection);
    }

    /// The process is gone.
    pub(super) fn disconnected(&self) {
        let mut inner = self.lock();
        inner.connection = None;
        inner.session = None;
    }

    /// An ACP session opened (new or loaded) with these modes and options.
    pub(super) fn opened(
        &self,
        session: SessionId,
        modes: Option<SessionModeState>,
        options: Option<Vec<SessionConfigOption>>,
    ) {
        let mut inner = self.lock();
        inner.session = Some(session);
        inner.view.needs_login = false;
        if let Some(modes) = modes {
            inner.set_modes(modes);
        }
        if let Some(options) = options {
            inner.set_options(&options);
        }
    }

    /// The agent said it needs a login first.
    pub(super) fn login_required(&self) {
        self.lock().view.needs_login = true;
    }

    /// Takes in a session update about modes, options or commands; false for any other update.
    pub(super) fn apply(&self, update: &SessionUpdate) -> bool {
        let mut inner = self.lock();
        match update {
            SessionUpdate::CurrentModeUpdate(mode) => inner.view.mode = Some(mode.current_mode_id.to_string()),
            SessionUpdate::ConfigOptionUpdate(options) => inner.set_options(&options.config_options),
            SessionUpdate::AvailableCommandsUpdate(commands) => {
                inner.view.commands = commands
                    .available_commands
                    .iter()
                    .map(|c| AgentCommand {
                        name: c.name.clone(),
                        description: c.description.clone(),
                        hint: match &c.input {
                            Some(AvailableCommandInput::Unstructured(input)) => Some(input.hint.clone()),
                            _ => None,
                        },
                    })
                    .collect();
            }
            SessionUpdate::UsageUpdate(usage) => {
                inner.view.context = Some((usage.used, usage.size));
                if let Some(cost) = &usage.cost {
                    inner.view.cost = Some((cost.amount, cost.currency.clone()));
                }
            }
            _ => return false,
        }
        true
    }

    /// The mode or model to ask for after a session opens, if it differs from the current one.
    pub(super) fn wanted(&self, setting: Setting, profile_default: Option<&str>) -> Option<String> {
        let inner = self.lock();
        let (chosen, current) = match setting {
            Setting::Mode => (&inner.chosen_mode, &inner.view.mode),
            Setting::Model => (&inner.chosen_model, &inner.view.model),
        };
        let wanted = chosen.as_deref().or(profile_default)?;
        (current.as_deref() != Some(wanted)).then(|| wanted.to_owned())
    }

    /// Changes the mode or model: at once when a session is open, else remembered for the next start.
    pub(super) async fn change(&self, setting: Setting, value: &str) -> Result<String, String> {
        let (link, choices) = {
            let inner = self.lock();
            let choices = match setting {
                Setting::Mode => inner.view.modes.clone(),
                Setting::Model => inner.view.models.clone(),
            };
            (inner.connection.clone().zip(inner.session.clone()), choices)
        };
        if !choices.is_empty() && !choices.iter().any(|c| c.id == value) {
            let known: Vec<_> = choices.iter().map(|c| c.id.as_str()).collect();
            return Err(format!("the agent has no {} \"{value}\" (it offers: {})", setting.name(), known.join(", ")));
        }
        self.remember(setting, value);
        let Some((connection, session)) = link else {
            return Ok(format!("The {} will be {value} when the agent next starts.", setting.name()));
        };
        self.send(&connection, &session, setting, value).await?;
        Ok(format!("The agent's {} is now {value}.", setting.name()))
    }

    /// Asks the live agent to switch its mode or model.
    pub(super) async fn send(
        &self,
        connection: &ConnectionTo<Agent>,
        session: &SessionId,
        setting: Setting,
        value: &str,
    ) -> Result<(), String> {
        let failed =
            |e: agent_client_protocol::Error| format!("the agent refused the {}: {}", setting.name(), e.message);
        let timed_out =
            |_| format!("the agent did not confirm the {} within {} s", setting.name(), CHANGE_TIMEOUT.as_secs());
        match setting {
            Setting::Mode => {
                let request = SetSessionModeRequest::new(session.clone(), value.to_owned());
                tokio::time::timeout(CHANGE_TIMEOUT, connection.send_request(request).block_task())
                    .await
                    .map_err(timed_out)?
                    .map_err(failed)?;
                self.lock().view.mode = Some(value.to_owned());
            }
            Setting::Model => {
                let Some(option) = self.lock().model_option.clone() else {
                    return Err("the agent offers no model choice".to_owned());
                };
                let request = SetSessionConfigOptionRequest::new(session.clone(), option, value);
                let response = tokio::time::timeout(CHANGE_TIMEOUT, connection.send_request(request).block_task())
                    .await
                    .map_err(timed_out)?
                    .map_err(failed)?;
                let mut inner = self.lock();
                inner.view.model = Some(value.to_owned());
                inner.set_options(&response.config_options);
            }
        }
        Ok(())
    }

    fn remember(&self, setting: Setting, value: &str) {
        let mut inner = self.lock();
        match setting {
            Setting::Mode => inner.chosen_mode = Some(value.to_owned()),
            Setting::Model => inner.chosen_model = Some(value.to_owned()),
        }
    }

    /// `!login`: lists the ways to log in, or runs the agent's own flow for `method`.
    pub(super) async fn login(&self, method: Option<&str>) -> Result<String, String> {
        let (connection, methods) = {
            let inner = self.lock();
            (inner.connection.clone(), inner.auth.clone())
        };
        if methods.is_empty() {
            return Err(
                "the agent offers no login through gorp (send it a message first if it is not running)".to_owned()
            );
        }
        let Some(id) = method else { return Ok(login_help(&methods)) };
        let Some(chosen) = methods.iter().find(|m| m.id().0.as_ref() == id) else {
            return Err(format!("no login method \"{id}\"\n{}", login_help(&methods)));
        };
        if let AuthMethod::Terminal(terminal) = chosen {
            return Ok(format!(
                "{} runs in a terminal: on the machine running gorpd, run the agent's command with `{}` and follow it; then send your message again.",
                terminal.name,
                terminal.args.join(" ")
            ));
        }
        let Some(connection) = connection else {
            return Err("the agent is not running; send it a message first".to_owned());
        };
        let request = AuthenticateRequest::new(chosen.id().clone());
        match tokio::time::timeout(LOGIN_TIMEOUT, connection.send_request(request).block_task()).await {
            Err(_) => Err(format!("the login did not finish within {} s", LOGIN_TIMEOUT.as_secs())),
            Ok(Err(error)) => Err(format!("the login failed: {}", error.message)),
            Ok(Ok(_)) => {
                self.lock().view.needs_login = false;
                Ok(format!("Logged in with {}. Send your message again.", chosen.name()))
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("agent state lock")
    }
}

impl Inner {
    fn set_modes(&mut self, modes: SessionModeState) {
        self.view.mode = Some(modes.current_mode_id.to_string());
        self.view.modes = modes
            .available_modes
            .into_iter()
            .map(|m| Choice { id: m.id.to_string(), name: m.name, description: m.description })
            .collect();
    }

    /// Reads the model (and a mode offered as an option) from the session's config options.
    fn set_options(&mut self, options: &[SessionConfigOption]) {
        for option in options {
            let SessionConfigKind::Select(select) = &option.kind else { continue };
            let choices: Vec<Choice> = match &select.options {
                SessionConfigSelectOptions::Ungrouped(options) => options.iter().collect::<Vec<_>>(),
                SessionConfigSelectOptions::Grouped(groups) => groups.iter().flat_map(|g| &g.options).collect(),
                _ => Vec::new(),
            }
            .into_iter()
            .map(|o| Choice { id: o.value.to_string(), name: o.name.clone(), description: o.description.clone() })
            .collect();
            if option.category == Some(SessionConfigOptionCategory::Model) {
                self.model_option = Some(option.id.clone());
                self.view.model = Some(select.current_value.to_string());
                self.view.models = choices;
            }
        }
    }
}

/// The ways to log in, for a chat message.
pub(super) fn login_help(methods: &[AuthMethod]) -> String {
    let mut text = "The agent needs a login. Ways to log in (!login <id>):".to_owned();
    for method in methods {
        text.push_str(&format!("\n• {} — {}", method.id(), method.name()));
        if let Some(description) = method.description() {
            text.push_str(&format!(": {description}"));
        }
    }
    text
}

/// Whether an agent error means "log in first".
pub(super) fn is_auth_required(error: &agent_client_protocol::Error) -> bool {
    error.code == ErrorCode::AUTH_REQUIRED
}

impl AgentState {
    /// The error a turn reports when the agent needs a login.
    pub(super) fn login_error(&self) -> String {
        self.login_required();
        let methods = self.lock().auth.clone();
        if methods.is_empty() {
            return "the agent needs a login, and offers no way to log in through gorp; log in on the gorpd host"
                .to_owned();
        }
        login_help(&methods)
    }
}
