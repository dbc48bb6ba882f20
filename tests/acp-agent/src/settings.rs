//! What the scripted agent offers besides turns: modes (`ask`, `code`, `plan`),
//! a model option (`small`, `large`), one slash command (`/review`), one way to
//! log in (`device`), and the answers to changing them.

use agent_client_protocol::v1::ConnectionTo;
use agent_client_protocol::v1::schema::{
    AuthMethod, AuthMethodAgent, AvailableCommand, AvailableCommandInput, AvailableCommandsUpdate, CurrentModeUpdate,
    McpServer, SessionConfigOption, SessionConfigOptionCategory, SessionConfigSelectOption, SessionId, SessionMode,
    SessionModeState, SessionNotification, SessionUpdate, UnstructuredCommandInput,
};
use agent_client_protocol::{Client, Error};

use crate::sessions::Settings;

/// Mode ids the agent accepts.
pub(crate) const MODES: [&str; 3] = ["ask", "code", "plan"];
/// Model ids the agent accepts.
pub(crate) const MODELS: [&str; 2] = ["small", "large"];
/// The id of the model config option.
pub(crate) const MODEL_OPTION: &str = "model";

/// The one login method: the agent's own device-code flow.
pub(crate) fn auth_methods() -> Vec<AuthMethod> {
    let device = AuthMethodAgent::new("device", "Device code")
        .description("Open https://login.example.test/device and enter GORP-1234".to_owned());
    vec![AuthMethod::Agent(device)]
}

/// The modes, with `current` selected.
pub(crate) fn modes(current: &str) -> SessionModeState {
    let modes = MODES.iter().map(|id| SessionMode::new(*id, format!("{id} mode"))).collect();
    SessionModeState::new(current.to_owned(), modes)
}

/// The config options (the model), with `current` selected.
pub(crate) fn options(current: &str) -> Vec<SessionConfigOption> {
    let choices: Vec<_> = MODELS.iter().map(|id| SessionConfigSelectOption::new(*id, format!("{id} model"))).collect();
    vec![
        SessionConfigOption::select(MODEL_OPTION, "Model", current.to_owned(), choices)
            .category(SessionConfigOptionCategory::Model),
    ]
}

/// Tells the client the commands the agent offers.
pub(crate) fn announce_commands(cx: &ConnectionTo<Client>, session: &SessionId) -> Result<(), Error> {
    let review = AvailableCommand::new("review", "Review the changes")
        .input(AvailableCommandInput::Unstructured(UnstructuredCommandInput::new("what to review")));
    let update = SessionUpdate::AvailableCommandsUpdate(AvailableCommandsUpdate::new(vec![review]));
    cx.send_notification(SessionNotification::new(session.clone(), update))
}

/// Tells the client the mode changed.
pub(crate) fn announce_mode(cx: &ConnectionTo<Client>, session: &SessionId, mode: &str) -> Result<(), Error> {
    let update = SessionUpdate::CurrentModeUpdate(CurrentModeUpdate::new(mode.to_owned()));
    cx.send_notification(SessionNotification::new(session.clone(), update))
}

/// How the MCP servers the client passed are listed by the `settings` script.
pub(crate) fn describe_mcp(servers: &[McpServer]) -> Vec<String> {
    servers
        .iter()
        .map(|server| match server {
            McpServer::Stdio(stdio) => format!("{} (stdio {})", stdio.name, stdio.command.display()),
            McpServer::Http(http) => format!("{} (http {})", http.name, http.url),
            _ => "other".to_owned(),
        })
        .collect()
}

/// The `settings` script's answer.
pub(crate) fn describe(settings: &Settings) -> String {
    let mcp = if settings.mcp.is_empty() { "none".to_owned() } else { settings.mcp.join(", ") };
    format!("mode={} model={} mcp={mcp}", settings.mode, settings.model)
}
