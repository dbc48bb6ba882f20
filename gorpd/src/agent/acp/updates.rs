//! Session updates of the running turn turned into agent events: answer
//! text, thinking (collected and shown as one folded progress block when the
//! agent moves on), tool calls with their diffs and output, and plans.
//!
//! Tool call updates often carry only an id and a status; the title of the
//! call they belong to is remembered so progress always names the tool.
//! Long diffs and outputs are cut to [`MAX_LINES`] lines and
//! [`MAX_CHARS`] characters, which every chat platform can show.

use crate::agent::AgentEvent;
use agent_client_protocol::v1::schema::{ContentBlock, Diff, SessionUpdate, ToolCallContent, ToolCallStatus};
use std::collections::HashMap;
use std::sync::Mutex;
use tokio::sync::mpsc;

/// Most lines of one diff or tool output shown.
pub(super) const MAX_LINES: usize = 30;
/// Most characters of one diff or tool output shown.
pub(super) const MAX_CHARS: usize = 2000;
/// The first line of a thinking block; the web chat folds progress that starts with it.
pub(super) const THINKING: &str = "💭 thinking";

/// The running turn's sink and what its updates need remembered.
#[derive(Default)]
pub(super) struct TurnUpdates {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    events: Option<mpsc::UnboundedSender<AgentEvent>>,
    titles: HashMap<String, String>,
    thinking: String,
    /// Files the turn's answer carried so far (numbers unnamed ones).
    files: usize,
}

impl TurnUpdates {
    /// Starts forwarding to a new turn.
    pub(super) fn begin(&self, events: mpsc::UnboundedSender<AgentEvent>) {
        let mut inner = self.lock();
        inner.events = Some(events);
        inner.titles.clear();
        inner.thinking.clear();
        inner.files = 0;
    }

    /// Stops forwarding; returns the turn's sink (with its last thinking shown).
    pub(super) fn end(&self) -> Option<mpsc::UnboundedSender<AgentEvent>> {
        let mut inner = self.lock();
        inner.flush_thinking();
        inner.events.take()
    }

    /// Puts a sink back (the process died and `run` reports to it).
    pub(super) fn restore(&self, events: Option<mpsc::UnboundedSender<AgentEvent>>) {
        self.lock().events = events;
    }

    /// Sends `event` to the running turn, if any; false when none listens.
    pub(super) fn send(&self, event: AgentEvent) -> bool {
        self.lock().events.as_ref().is_some_and(|events| events.send(event).is_ok())
    }

    /// The running turn's sink.
    pub(super) fn sink(&self) -> Option<mpsc::UnboundedSender<AgentEvent>> {
        self.lock().events.clone()
    }

    /// Turns one session update into events of the running turn.
    pub(super) fn forward(&self, update: SessionUpdate) {
        let mut inner = self.lock();
        if inner.events.is_none() {
            // Replayed history of session/load, or an update between turns.
            return;
        }
        if let SessionUpdate::AgentThoughtChunk(chunk) = &update {
            if let ContentBlock::Text(text) = &chunk.content {
                inner.thinking.push_str(&text.text);
            }
            return;
        }
        inner.flush_thinking();
        if let Some(event) = inner.render(update) {
            inner.emit(event);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("turn lock")
    }
}

impl Inner {
    fn emit(&self, event: AgentEvent) {
        if let Some(events) = &self.events {
            let _ = events.send(event);
        }
    }

    fn flush_thinking(&mut self) {
        let thought = std::mem::take(&mut self.thinking);
        if !thought.trim().is_empty() {
            self.emit(AgentEvent::Progress(format!("{THINKING}\n{}", cut(thought.trim()))));
        }
    }

    fn render(&mut self, update: SessionUpdate) -> Option<AgentEvent> {
        Some(match update {
            SessionUpdate::AgentMessageChunk(chunk) => match chunk.content {
                ContentBlock::Text(text) => AgentEvent::Chunk(text.text),
                other => {
                    self.files += 1;
                    AgentEvent::File(super::content::produced_file(other, self.files)?)
                }
            },
            SessionUpdate::ToolCall(call) => {
                self.titles.insert(call.tool_call_id.to_string(), call.title.clone());
                let mut line = format!("🔧 {} ({})", call.title, status_name(call.status));
                append_content(&mut line, &call.content);
                AgentEvent::Progress(line)
            }
            SessionUpdate::ToolCallUpdate(update) => {
                let id = update.tool_call_id.to_string();
                if let Some(title) = &update.fields.title {
                    self.titles.insert(id.clone(), title.clone());
                }
                let content = update.fields.content.unwrap_or_default();
                if update.fields.status.is_none() && content.is_empty() {
                    return None;
                }
                let title = self.titles.get(&id).cloned().unwrap_or_else(|| format!("tool call {id}"));
                let mut line = match update.fields.status {
                    Some(status) => format!("🔧 {title}: {}", status_name(status)),
                    None => format!("🔧 {title}"),
                };
                append_content(&mut line, &content);
                AgentEvent::Progress(line)
            }
            SessionUpdate::Plan(plan) => {
                let steps: Vec<_> = plan.entries.iter().map(|e| format!("{:?}: {}", e.status, e.content)).collect();
                AgentEvent::Progress(format!("📋 plan\n{}", steps.join("\n")))
            }
            _ => return None,
        })
    }
}

fn status_name(status: ToolCallStatus) -> &'static str {
    match status {
        ToolCallStatus::Pending => "pending",
        ToolCallStatus::InProgress => "running",
        ToolCallStatus::Completed => "done",
        ToolCallStatus::Failed => "failed",
        _ => "updated",
    }
}

/// Adds a tool call's diffs and output, cut to size, below its line.
fn append_content(line: &mut String, content: &[ToolCallContent]) {
    for item in content {
        let shown = match item {
            ToolCallContent::Diff(diff) => render_diff(diff),
            ToolCallContent::Content(content) => match &content.content {
                ContentBlock::Text(text) if !text.text.trim().is_empty() => cut(text.text.trim_end()),
                _ => continue,
            },
            ToolCallContent::Terminal(terminal) => format!("(output of terminal {})", terminal.terminal_id),
            _ => continue,
        };
        line.push('\n');
        line.push_str(&shown);
    }
}

/// A diff as removed (`-`) and added (`+`) lines around the common start and end.
fn render_diff(diff: &Diff) -> String {
    let old: Vec<&str> = diff.old_text.as_deref().unwrap_or("").lines().collect();
    let new: Vec<&str> = diff.new_text.lines().collect();
    let same_start = old.iter().zip(&new).take_while(|(a, b)| a == b).count();
    let same_end =
        old[same_start..].iter().rev().zip(new[same_start..].iter().rev()).take_while(|(a, b)| a == b).count();
    let mut text = format!("📝 {}", diff.path.display());
    if diff.old_text.is_none() {
        text.push_str(" (new file)");
    }
    for line in &old[same_start..old.len() - same_end] {
        text.push_str(&format!("\n- {line}"));
    }
    for line in &new[same_start..new.len() - same_end] {
        text.push_str(&format!("\n+ {line}"));
    }
    cut(&text)
}

/// `text` cut to [`MAX_LINES`] lines and [`MAX_CHARS`] characters, saying how much was left out.
pub(super) fn cut(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut kept = lines[..lines.len().min(MAX_LINES)].join("\n");
    if kept.chars().count() > MAX_CHARS {
        kept = kept.chars().take(MAX_CHARS).collect();
    }
    let left = text.len().saturating_sub(kept.len());
    if left > 0 {
        kept.push_str(&format!("\n… ({} more lines)", lines.len().saturating_sub(kept.lines().count()).max(1)));
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use agent_client_protocol::v1::schema::{ContentChunk, ToolCall, ToolCallUpdate, ToolCallUpdateFields};

    fn collect(updates: Vec<SessionUpdate>) -> Vec<String> {
        let turn = TurnUpdates::default();
        let (events, mut received) = mpsc::unbounded_channel();
        turn.begin(events);
        for update in updates {
            turn.forward(update);
        }
        drop(turn.end());
        let mut out = Vec::new();
        while let Ok(event) = received.try_recv() {
            out.push(match event {
                AgentEvent::Chunk(text) => format!("chunk {text}"),
                AgentEvent::Progress(text) => format!("progress {text}"),
                other => format!("{other:?}"),
            });
        }
        out
    }

    fn thought(text: &str) -> SessionUpdate {
        SessionUpdate::AgentThoughtChunk(ContentChunk::new(ContentBlock::from(text)))
    }

    #[test]
    fn thinking_is_collected_into_one_block_before_the_next_update() {
        let out = collect(vec![
            thought("Let me "),
            thought("look."),
            SessionUpdate::AgentMessageChunk(ContentChunk::new(ContentBlock::from("Hi"))),
            thought("done?"),
        ]);
        assert_eq!(
            out,
            [format!("progress {THINKING}\nLet me look."), "chunk Hi".into(), format!("progress {THINKING}\ndone?")]
        );
    }

    #[test]
    fn tool_calls_show_their_diff_and_updates_keep_the_title() {
        let diff = Diff::new("src/lib.rs", "fn a() {}\nfn b() {}\nfn c() {}")
            .old_text("fn a() {}\nfn x() {}\nfn c() {}".to_owned());
        let call = ToolCall::new("t1", "edit lib.rs")
            .status(ToolCallStatus::InProgress)
            .content(vec![ToolCallContent::Diff(diff)]);
        let done = ToolCallUpdate::new("t1", ToolCallUpdateFields::new().status(ToolCallStatus::Completed));
        let out = collect(vec![SessionUpdate::ToolCall(call), SessionUpdate::ToolCallUpdate(done)]);
        assert_eq!(
            out,
            [
                "progress 🔧 edit lib.rs (running)\n📝 src/lib.rs\n- fn x() {}\n+ fn b() {}",
                "progress 🔧 edit lib.rs: done"
            ]
        );
    }

    #[test]
    fn long_output_is_cut_with_a_count() {
        let text: Vec<String> = (1..=100).map(|i| format!("line {i}")).collect();
        let shown = cut(&text.join("\n"));
        assert_eq!(shown.lines().count(), MAX_LINES + 1);
        assert!(shown.ends_with("… (70 more lines)"), "{shown}");
        assert_eq!(cut("short"), "short");
    }
}
