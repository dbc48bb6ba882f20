//! The built-in `echo` backend: answers `echo: <prompt>`, streamed as several
//! chunks, deterministic (a prompt's files are named after the text, one
//! [`describe`] line each). For demos, the zero-config start and tests.

use super::{AgentBackend, AgentEvent, PromptRequest, describe};
use futures::stream::{self, BoxStream, StreamExt};
use std::time::Duration;

/// Streams `echo: <text>` in word-sized chunks with a pause between them.
#[derive(Debug, Clone)]
pub struct EchoBackend {
    chunk_delay: Duration,
}

impl EchoBackend {
    /// An echo backend pausing `chunk_delay` between chunks.
    pub fn new(chunk_delay: Duration) -> Self {
        Self { chunk_delay }
    }
}

/// Splits `echo: <text>` into at least three chunks that concatenate back to it.
pub(crate) fn echo_chunks(text: &str) -> Vec<String> {
    let answer = format!("echo: {text}");
    let mut chunks: Vec<String> = answer.split_inclusive(' ').map(str::to_owned).collect();
    while chunks.len() < 3 {
        let longest = (0..chunks.len()).max_by_key(|&i| chunks[i].chars().count()).unwrap_or(0);
        let piece = &chunks[longest];
        let chars = piece.chars().count();
        if chars < 2 {
            break;
        }
        let split_at = piece.char_indices().nth(chars / 2).map(|(i, _)| i).unwrap_or(0);
        let tail = piece[split_at..].to_owned();
        chunks[longest].truncate(split_at);
        chunks.insert(longest + 1, tail);
    }
    chunks
}

impl AgentBackend for EchoBackend {
    fn prompt(&self, request: PromptRequest) -> BoxStream<'static, AgentEvent> {
        let delay = self.chunk_delay;
        let mut text = request.text.clone();
        for file in &request.files {
            text.push('\n');
            text.push_str(&describe(file));
        }
        let chunks = stream::iter(echo_chunks(&text)).then(move |chunk| async move {
            // A zero sleep still waits for the timer's next tick (up to a millisecond).
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            AgentEvent::Chunk(chunk)
        });
        chunks.chain(stream::once(async { AgentEvent::Done })).boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_concatenate_to_the_answer() {
        for text in ["hi", "hello world", "a much longer message with many words", "ünïcödé"] {
            let chunks = echo_chunks(text);
            assert!(chunks.len() >= 3, "{chunks:?}");
            assert_eq!(chunks.concat(), format!("echo: {text}"));
        }
    }

    #[tokio::test]
    async fn streams_chunks_then_done() {
        let events: Vec<_> = EchoBackend::new(Duration::ZERO)
            .prompt(PromptRequest { session: "s".into(), text: "hi there".into(), ..Default::default() })
            .collect()
            .await;
        assert!(matches!(events.last(), Some(AgentEvent::Done)));
        let text: String = events
            .iter()
            .filter_map(|e| match e {
                AgentEvent::Chunk(c) => Some(c.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(text, "echo: hi there");
    }
}
