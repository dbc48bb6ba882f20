//! The OpenAI-compatible backend: one streaming `POST {base_url}/chat/completions`
//! per prompt, against OpenAI itself or any server speaking its protocol
//! (llama.cpp's `llama-server`, vLLM, Ollama, LiteLLM, ...).
//!
//! The backend keeps no state: the conversation is the history gorp stores
//! and passes in with every prompt, trimmed to the profile's context budget,
//! so it survives restarts. Every failure (unreachable endpoint, HTTP error,
//! rate limit, silence longer than the timeout, a stream cut short) ends the
//! turn with one readable [`AgentEvent::Error`]; dropping the event stream
//! closes the connection.

mod messages;
mod parts;
mod sse;
mod wire;

use super::{AgentBackend, AgentEvent, HistoryTurn, PromptRequest, PromptTemplate};
use futures::stream::{self, BoxStream, StreamExt};
use reqwest::StatusCode;
use reqwest::header::RETRY_AFTER;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

/// Largest error body read from the endpoint; the message is near the start.
const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;

/// How to reach one OpenAI-compatible endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenAiConfig {
    /// Base URL up to `/v1`, e.g. `http://127.0.0.1:8080/v1`.
    pub base_url: String,
    /// Model name sent with every request.
    pub model: String,
    /// Environment variable holding the API key, read for every request.
    pub api_key_env: Option<String>,
    /// System prompt sent first.
    pub system_prompt: Option<String>,
    /// Context budget in estimated tokens.
    pub context_tokens: u32,
    /// Longest wait for the response to start and between two reads of it.
    pub timeout: Duration,
    /// Most tokens of one answer, when set.
    pub max_tokens: Option<u32>,
    /// Sampling temperature, when set.
    pub temperature: Option<f32>,
    /// How user messages (the new one and those in the history) are framed.
    pub prompt_template: PromptTemplate,
    /// What its tokens cost.
    pub prices: Option<crate::config::PriceTable>,
    /// The endpoint takes images (`image_url` parts); otherwise a prompt's images are named in text.
    pub images: bool,
}

impl OpenAiConfig {
    /// Default context budget, in estimated tokens.
    pub const DEFAULT_CONTEXT_TOKENS: u32 = 8192;
    /// Default longest silence from the endpoint, in seconds.
    pub const DEFAULT_TIMEOUT_SECS: u64 = 120;
}

/// Why a turn failed; the text is what the user reads.
#[derive(Debug, thiserror::Error)]
enum OpenAiError {
    #[error("environment variable {0} (api_key_env of this agent profile) is not set or is empty")]
    MissingKey(String),
    #[error("cannot reach {base_url}: {cause}")]
    Unreachable { base_url: String, cause: String },
    #[error("cannot send a request to {base_url}: {cause}")]
    Request { base_url: String, cause: String },
    #[error("no answer from {base_url} within {secs} s")]
    Timeout { base_url: String, secs: u64 },
    #[error("rate limited by {base_url}; {}{}", retry_hint(*retry_after), aside(message))]
    RateLimited { base_url: String, retry_after: Option<u64>, message: Option<String> },
    #[error("{base_url} answered HTTP {status}{}", detail(message))]
    Status { base_url: String, status: StatusCode, message: Option<String> },
    #[error("{base_url} reported an error: {message}")]
    Endpoint { base_url: String, message: String },
    #[error("the connection to {base_url} broke: {cause}")]
    Broken { base_url: String, cause: String },
    #[error("{base_url} ended the stream before the answer was complete")]
    Truncated { base_url: String },
    #[error("{base_url} sent something that is not a chat completion stream: {cause}")]
    Malformed { base_url: String, cause: String },
}

fn retry_hint(retry_after: Option<u64>) -> String {
    retry_after.map_or_else(|| "retry later".to_owned(), |secs| format!("retry after {secs} s"))
}

fn aside(message: &Option<String>) -> String {
    message.as_ref().map(|m| format!(" ({m})")).unwrap_or_default()
}

fn detail(message: &Option<String>) -> String {
    message.as_ref().map(|m| format!(": {m}")).unwrap_or_default()
}

/// A stateless client of one OpenAI-compatible endpoint.
#[derive(Debug, Clone)]
pub struct OpenAiBackend {
    config: Arc<OpenAiConfig>,
    endpoint: String,
    client: reqwest::Client,
}

impl OpenAiBackend {
    /// A backend for `config`; nothing is contacted until the first prompt.
    pub fn new(mut config: OpenAiConfig) -> Self {
        config.base_url = config.base_url.trim_end_matches('/').to_owned();
        config.system_prompt = config.system_prompt.filter(|prompt| !prompt.trim().is_empty());
        let client = reqwest::Client::builder()
            .connect_timeout(config.timeout)
            .user_agent(concat!("gorpd/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("an HTTP client with static settings builds");
        let endpoint = format!("{}/chat/completions", config.base_url);
        Self { config: Arc::new(config), endpoint, client }
    }

    /// The API key from `api_key_env`, if the profile names one.
    fn api_key(&self) -> Result<Option<String>, OpenAiError> {
        let Some(variable) = &self.config.api_key_env else {
            return Ok(None);
        };
        match std::env::var(variable) {
            Ok(key) if !key.trim().is_empty() => Ok(Some(key.trim().to_owned())),
            _ => Err(OpenAiError::MissingKey(variable.clone())),
        }
    }

    /// Whether the endpoint answers `GET {base_url}/models` with the key (`gorpctl doctor`).
    /// Any answer but 401/403 shows it reachable: not every server lists models.
    async fn check_reachable(&self) -> Result<String, String> {
        let base_url = &self.config.base_url;
        let mut request = self.client.get(format!("{base_url}/models"));
        if let Some(key) = self.api_key().map_err(|error| error.to_string())? {
            request = request.bearer_auth(key);
        }
        let answer = self.within(request.send()).await.map_err(|error| error.to_string())?;
        match answer.map_err(|error| self.send_error(&error).to_string())?.status() {
            status @ (StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) => {
                Err(format!("{base_url} refused the API key ({status})"))
            }
            status => Ok(format!("{base_url} answers (GET /models: {status})")),
        }
    }

    /// Awaits `future`, giving up after the profile's timeout.
    async fn within<T>(&self, future: impl Future<Output = T>) -> Result<T, OpenAiError> {
        tokio::time::timeout(self.config.timeout, future).await.map_err(|_| OpenAiError::Timeout {
            base_url: self.config.base_url.clone(),
            secs: self.config.timeout.as_secs(),
        })
    }

    /// Sends the request and returns the body of a successful response.
    async fn start(&self, request: &PromptRequest) -> Result<reqwest::Response, OpenAiError> {
        let key = self.api_key()?;
        let config = &self.config;
        let history = self.framed_history(&request.history);
        let text = config.prompt_template.render(&request.sender, &request.text);
        let conversation =
            messages::build(config.system_prompt.as_deref(), &history, &text, u64::from(config.context_tokens));
        tracing::debug!(
            base_url = %config.base_url,
            model = %config.model,
            messages = conversation.messages.len(),
            dropped = conversation.dropped,
            "chat completion request"
        );
        let messages = parts::wire_messages(&conversation.messages, &request.files, config.images).await;
        let body = wire::ChatRequest {
            model: &config.model,
            messages: &messages,
            stream: true,
            stream_options: wire::StreamOptions { include_usage: true },
            max_tokens: config.max_tokens,
            temperature: config.temperature,
        };
        let mut http = self.client.post(&self.endpoint).json(&body);
        if let Some(key) = key {
            http = http.bearer_auth(key);
        }
        let response = self.within(http.send()).await?.map_err(|error| self.send_error(&error))?;
        if !response.status().is_success() {
            return Err(self.status_error(response).await);
        }
        Ok(response)
    }

    /// The history with every user message framed as it was when it was new.
    fn framed_history(&self, history: &[HistoryTurn]) -> Vec<HistoryTurn> {
        let template = &self.config.prompt_template;
        history
            .iter()
            .map(|turn| match &turn.sender {
                Some(sender) if turn.from_user => {
                    HistoryTurn { text: template.render(sender, &turn.text), ..turn.clone() }
                }
                _ => turn.clone(),
            })
            .collect()
    }

    fn send_error(&self, error: &reqwest::Error) -> OpenAiError {
        let (base_url, cause) = (self.config.base_url.clone(), root_cause(error));
        if error.is_builder() {
            OpenAiError::Request { base_url, cause }
        } else {
            OpenAiError::Unreachable { base_url, cause }
        }
    }

    /// The error for a non-2xx response, with the endpoint's own message when it sent one.
    async fn status_error(&self, response: reqwest::Response) -> OpenAiError {
        let base_url = self.config.base_url.clone();
        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse::<u64>().ok());
        let body = self.within(read_capped(response)).await.unwrap_or_default();
        let message = wire::endpoint_message(&body);
        if status == StatusCode::TOO_MANY_REQUESTS {
            return OpenAiError::RateLimited { base_url, retry_after, message };
        }
        OpenAiError::Status { base_url, status, message }
    }
}

impl AgentBackend for OpenAiBackend {
    fn needs_history(&self) -> bool {
        true
    }

    fn prices(&self) -> Option<&crate::config::PriceTable> {
        self.config.prices.as_ref()
    }

    fn check(&self) -> futures::future::BoxFuture<'static, Result<String, String>> {
        let backend = self.clone();
        Box::pin(async move { backend.check_reachable().await })
    }

    fn prompt(&self, request: PromptRequest) -> BoxStream<'static, AgentEvent> {
        let turn = Turn {
            backend: self.clone(),
            request,
            response: None,
            decoder: sse::SseDecoder::default(),
            pending: VecDeque::new(),
            finished: false,
            answered: false,
        };
        stream::unfold(turn, |mut turn| async move {
            let event = turn.next_event().await?;
            Some((event, turn))
        })
        .boxed()
    }
}

/// One prompt in flight: the response body and the events decoded from it but not yet handed out.
struct Turn {
    backend: OpenAiBackend,
    request: PromptRequest,
    response: Option<reqwest::Response>,
    decoder: sse::SseDecoder,
    pending: VecDeque<AgentEvent>,
    /// `Done` or `Error` is queued; nothing is read after it.
    finished: bool,
    /// Some of the answer was handed out already.
    answered: bool,
}

impl Turn {
    async fn next_event(&mut self) -> Option<AgentEvent> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                self.answered |= matches!(event, AgentEvent::Chunk(_));
                return Some(event);
            }
            if self.finished {
                return None;
            }
            if let Err(error) = self.advance().await {
                tracing::warn!(base_url = %self.backend.config.base_url, %error, "chat completion failed");
                self.pending.extend(self.failure(&error));
                self.finished = true;
            }
        }
    }

    /// Starts the request, or reads the next piece of the response.
    async fn advance(&mut self) -> Result<(), OpenAiError> {
        let Some(response) = &mut self.response else {
            self.response = Some(self.backend.start(&self.request).await?);
            return Ok(());
        };
        match self.backend.within(response.chunk()).await? {
            Ok(Some(bytes)) => {
                let events = self
                    .decoder
                    .push(&bytes)
                    .map_err(|e| OpenAiError::Malformed { base_url: self.base_url(), cause: e.to_string() })?;
                events.iter().try_for_each(|data| self.on_data(data))
            }
            Err(error) => Err(OpenAiError::Broken { base_url: self.base_url(), cause: root_cause(&error) }),
            Ok(None) => {
                if let Some(data) = self.decoder.finish() {
                    self.on_data(&data)?;
                }
                if self.finished { Ok(()) } else { Err(OpenAiError::Truncated { base_url: self.base_url() }) }
            }
        }
    }

    /// How a failure ends the turn: an error before any text; after some,
    /// the partial answer is kept and closed with a notice saying why it stops.
    fn failure(&self, error: &OpenAiError) -> Vec<AgentEvent> {
        if self.answered {
            vec![AgentEvent::Chunk(format!("\n\n⚠ The answer stops here: {error}.")), AgentEvent::Done]
        } else {
            vec![AgentEvent::Error(error.to_string())]
        }
    }

    fn base_url(&self) -> String {
        self.backend.config.base_url.clone()
    }

    /// Turns one event's data into agent events.
    fn on_data(&mut self, data: &str) -> Result<(), OpenAiError> {
        let data = data.trim();
        if self.finished || data.is_empty() {
            return Ok(());
        }
        if data == "[DONE]" {
            self.pending.push_back(AgentEvent::Done);
            self.finished = true;
            return Ok(());
        }
        let chunk: wire::StreamChunk = serde_json::from_str(data)
            .map_err(|error| OpenAiError::Malformed { base_url: self.base_url(), cause: error.to_string() })?;
        if let Some(error) = chunk.error {
            return Err(OpenAiError::Endpoint { base_url: self.base_url(), message: error.into_message() });
        }
        let content = chunk.choices.into_iter().flatten().next().and_then(|choice| choice.delta?.content);
        if let Some(content) = content.filter(|c| !c.is_empty()) {
            self.pending.push_back(AgentEvent::Chunk(content));
        }
        if let Some(usage) = chunk.usage {
            self.pending.push_back(AgentEvent::Usage {
                input_tokens: usage.prompt_tokens.unwrap_or(0),
                output_tokens: usage.completion_tokens.unwrap_or(0),
            });
        }
        Ok(())
    }
}

/// The innermost cause of an error ("Connection refused (os error 111)"), which says the most.
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}

async fn read_capped(mut response: reqwest::Response) -> Vec<u8> {
    let mut body = Vec::new();
    while body.len() < MAX_ERROR_BODY_BYTES {
        match response.chunk().await {
            Ok(Some(bytes)) => body.extend_from_slice(&bytes),
            _ => break,
        }
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turn() -> Turn {
        let backend = OpenAiBackend::new(OpenAiConfig {
            base_url: "http://127.0.0.1:9/v1/".to_owned(),
            model: "m".to_owned(),
            api_key_env: None,
            system_prompt: None,
            context_tokens: OpenAiConfig::DEFAULT_CONTEXT_TOKENS,
            timeout: Duration::from_secs(1),
            max_tokens: None,
            temperature: None,
            prompt_template: PromptTemplate::default_template(),
            prices: None,
            images: false,
        });
        Turn {
            backend,
            request: PromptRequest::default(),
            response: None,
            decoder: sse::SseDecoder::default(),
            pending: VecDeque::new(),
            finished: false,
            answered: false,
        }
    }

    #[test]
    fn stream_chunks_become_text_usage_and_done() {
        let mut turn = turn();
        for data in [
            r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"content":"Hel"},"finish_reason":null}],"usage":null}"#,
            r#"{"choices":[{"index":0,"delta":{"content":"lo"}}]}"#,
            r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#,
            r#"{"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":2,"total_tokens":14}}"#,
            "[DONE]",
            r#"{"choices":[{"delta":{"content":"after the end"}}]}"#,
        ] {
            turn.on_data(data).unwrap();
        }
        let events: Vec<_> = turn.pending.iter().map(|event| format!("{event:?}")).collect();
        assert_eq!(
            events,
            [r#"Chunk("Hel")"#, r#"Chunk("lo")"#, "Usage { input_tokens: 12, output_tokens: 2 }", "Done"]
        );
    }

    #[test]
    fn an_error_inside_the_stream_is_reported_with_its_message() {
        let error = turn().on_data(r#"{"error":{"message":"model overloaded","type":"server_error"}}"#).unwrap_err();
        assert_eq!(error.to_string(), "http://127.0.0.1:9/v1 reported an error: model overloaded");
        let error = turn().on_data("not json").unwrap_err();
        assert!(error.to_string().contains("not a chat completion stream"), "{error}");
    }

    #[test]
    fn errors_read_well() {
        let base_url = "http://h/v1".to_owned();
        let limited = OpenAiError::RateLimited { base_url: base_url.clone(), retry_after: Some(7), message: None };
        assert_eq!(limited.to_string(), "rate limited by http://h/v1; retry after 7 s");
        let limited = OpenAiError::RateLimited {
            base_url: base_url.clone(),
            retry_after: None,
            message: Some("slow down".into()),
        };
        assert_eq!(limited.to_string(), "rate limited by http://h/v1; retry later (slow down)");
        let status = OpenAiError::Status {
            base_url,
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: Some("it broke".into()),
        };
        assert_eq!(status.to_string(), "http://h/v1 answered HTTP 500 Internal Server Error: it broke");
    }

    #[test]
    fn a_missing_key_variable_is_named() {
        let backend = OpenAiBackend::new(OpenAiConfig {
            api_key_env: Some("GORP_TEST_SURELY_UNSET_KEY".into()),
            ..turn().backend.config.as_ref().clone()
        });
        let error = backend.api_key().unwrap_err().to_string();
        assert!(error.contains("GORP_TEST_SURELY_UNSET_KEY") && error.contains("not set"), "{error}");
    }
}
