//! A fake OpenAI-compatible endpoint: a real HTTP server on 127.0.0.1:0 that
//! speaks the documented streaming chat completions format, records every
//! request, and answers each with the next scripted [`Reply`] (by default a
//! streamed "answer to: <last user message>").

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use axum::routing::post;
use futures::stream::{self, BoxStream, StreamExt};
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// Token counts every streamed reply reports.
pub const USAGE: (u64, u64) = (11, 3);

/// How the fake answers one request.
pub enum Reply {
    /// `data:` chunks with these texts, a finish chunk, a usage chunk, then `[DONE]`.
    Stream(Vec<String>),
    /// Like `Stream`, but waits after the first text chunk until `release` is notified.
    StreamHeld { chunks: Vec<String>, release: Arc<Notify> },
    /// Like `Stream`, but the connection closes where `[DONE]` should come.
    Cut(Vec<String>),
    /// 429 with `Retry-After: 7` and an OpenAI error body.
    RateLimited,
    /// 500 with an OpenAI error body.
    ServerError,
    /// 200 with event-stream headers, then nothing, ever.
    Hang,
}

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub body: Value,
    pub authorization: Option<String>,
}

impl Recorded {
    /// `(role, content)` of every message sent.
    pub fn messages(&self) -> Vec<(String, String)> {
        self.body["messages"]
            .as_array()
            .expect("messages is an array")
            .iter()
            .map(|m| (m["role"].as_str().unwrap().to_owned(), m["content"].as_str().unwrap().to_owned()))
            .collect()
    }
}

#[derive(Default)]
struct Script {
    replies: Mutex<VecDeque<Reply>>,
    requests: Mutex<Vec<Recorded>>,
}

/// The running fake; stops when dropped.
pub struct FakeOpenAi {
    /// What a profile's `base_url` should be.
    pub base_url: String,
    script: Arc<Script>,
    server: tokio::task::JoinHandle<()>,
}

impl FakeOpenAi {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the fake");
        let base_url = format!("http://{}/v1", listener.local_addr().unwrap());
        let script = Arc::new(Script::default());
        let app = Router::new().route("/v1/chat/completions", post(completions)).with_state(script.clone());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("fake serves");
        });
        Self { base_url, script, server }
    }

    /// Answers the next request that has no scripted reply yet with `reply`.
    pub fn push(&self, reply: Reply) {
        self.script.replies.lock().unwrap().push_back(reply);
    }

    /// Every request so far, oldest first.
    pub fn requests(&self) -> Vec<Recorded> {
        self.script.requests.lock().unwrap().clone()
    }

    /// The latest request.
    pub fn last_request(&self) -> Recorded {
        self.requests().pop().expect("a request was made")
    }
}

impl Drop for FakeOpenAi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn completions(State(script): State<Arc<Script>>, headers: HeaderMap, body: Bytes) -> Response {
    let body: Value = serde_json::from_slice(&body).expect("the request body is JSON");
    let authorization = headers.get(header::AUTHORIZATION).map(|v| v.to_str().unwrap().to_owned());
    let last_user = body["messages"]
        .as_array()
        .and_then(|messages| messages.iter().rev().find(|m| m["role"] == "user"))
        .and_then(|m| m["content"].as_str())
        .unwrap_or_default()
        .to_owned();
    script.requests.lock().unwrap().push(Recorded { body, authorization });
    let reply = script.replies.lock().unwrap().pop_front();
    match reply.unwrap_or_else(|| Reply::Stream(default_answer(&last_user))) {
        Reply::Stream(chunks) => event_stream(stream::iter(sse_events(&chunks)).boxed()),
        Reply::StreamHeld { chunks, release } => {
            let mut events = sse_events(&chunks);
            let rest = events.split_off(1);
            let held = stream::once(async move {
                release.notified().await;
                stream::iter(rest)
            })
            .flatten();
            event_stream(stream::iter(events).chain(held).boxed())
        }
        Reply::Cut(chunks) => {
            let mut events = sse_events(&chunks);
            events.pop();
            event_stream(stream::iter(events).boxed())
        }
        Reply::RateLimited => error_response(
            StatusCode::TOO_MANY_REQUESTS,
            Some("7"),
            "Rate limit reached for requests",
            "rate_limit_exceeded",
        ),
        Reply::ServerError => error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            None,
            "The server had an error while processing your request",
            "server_error",
        ),
        Reply::Hang => event_stream(stream::pending().boxed()),
    }
}

/// "answer to: <question>" in three pieces.
fn default_answer(question: &str) -> Vec<String> {
    vec!["answer ".to_owned(), "to: ".to_owned(), question.to_owned()]
}

/// The documented event sequence: a role chunk with the first text, one chunk per
/// further text, a finish chunk, a usage chunk with no choices, `[DONE]`.
fn sse_events(chunks: &[String]) -> Vec<String> {
    let chunk = |delta: Value, finish: Value| {
        json!({
            "id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0, "model": "fake",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], "usage": null,
        })
    };
    let mut events: Vec<Value> = chunks
        .iter()
        .enumerate()
        .map(|(i, text)| {
            let delta = if i == 0 { json!({"role": "assistant", "content": text}) } else { json!({"content": text}) };
            chunk(delta, Value::Null)
        })
        .collect();
    events.push(chunk(json!({}), json!("stop")));
    events.push(json!({
        "id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0, "model": "fake", "choices": [],
        "usage": {"prompt_tokens": USAGE.0, "completion_tokens": USAGE.1, "total_tokens": USAGE.0 + USAGE.1},
    }));
    events.iter().map(|event| format!("data: {event}\n\n")).chain(["data: [DONE]\n\n".to_owned()]).collect()
}

fn event_stream(events: BoxStream<'static, String>) -> Response {
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(events.map(Ok::<_, Infallible>)))
        .unwrap()
}

fn error_response(status: StatusCode, retry_after: Option<&str>, message: &str, code: &str) -> Response {
    let body = json!({"error": {"message": message, "type": "requests", "param": null, "code": code}});
    let mut response = Response::builder().status(status).header(header::CONTENT_TYPE, "application/json");
    if let Some(secs) = retry_after {
        response = response.header(header::RETRY_AFTER, secs);
    }
    response.body(Body::from(body.to_string())).unwrap()
}
