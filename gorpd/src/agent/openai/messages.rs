//! The chat messages of one request: the system prompt, as much of the
//! conversation as fits the context budget, and the new user message.
//!
//! Tokens are estimated, not counted: a quarter of the UTF-8 bytes, rounded
//! up, plus [`MESSAGE_OVERHEAD_TOKENS`] per message. The system prompt and the
//! new message are always sent, even when they alone exceed the budget (the
//! endpoint then refuses and its error is reported).

use crate::agent::HistoryTurn;
use serde::Serialize;

/// Tokens counted per message on top of its text, for the role and framing.
pub(super) const MESSAGE_OVERHEAD_TOKENS: u64 = 4;

/// Who said a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum Role {
    System,
    User,
    Assistant,
}

/// One chat message as the endpoint expects it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(super) struct Message {
    pub(super) role: Role,
    pub(super) content: String,
}

/// The messages to send and how many history entries were left out.
#[derive(Debug)]
pub(super) struct Conversation {
    pub(super) messages: Vec<Message>,
    pub(super) dropped: usize,
}

/// The estimated tokens of a message with `text`.
pub(super) fn estimate_tokens(text: &str) -> u64 {
    (text.len() as u64).div_ceil(4) + MESSAGE_OVERHEAD_TOKENS
}

/// Builds the messages for `text`, dropping the oldest history until the estimate fits `budget`.
pub(super) fn build(system_prompt: Option<&str>, history: &[HistoryTurn], text: &str, budget: u64) -> Conversation {
    let fixed = system_prompt.map_or(0, estimate_tokens) + estimate_tokens(text);
    let mut kept = fitting_suffix(history, budget.saturating_sub(fixed));
    // Strict chat templates (llama.cpp with --jinja, for one) refuse a conversation that opens with the assistant.
    if let Some((first, rest)) = kept.split_first()
        && !first.from_user
    {
        kept = rest;
    }
    let mut messages = Vec::with_capacity(kept.len() + 2);
    if let Some(prompt) = system_prompt {
        messages.push(Message { role: Role::System, content: prompt.to_owned() });
    }
    for turn in kept {
        push_merged(&mut messages, if turn.from_user { Role::User } else { Role::Assistant }, &turn.text);
    }
    push_merged(&mut messages, Role::User, text);
    Conversation { messages, dropped: history.len() - kept.len() }
}

/// The longest tail of `history` whose estimate fits `budget`.
fn fitting_suffix(history: &[HistoryTurn], budget: u64) -> &[HistoryTurn] {
    let mut used = 0;
    let mut start = history.len();
    for (index, turn) in history.iter().enumerate().rev() {
        used += estimate_tokens(&turn.text);
        if used > budget {
            break;
        }
        start = index;
    }
    &history[start..]
}

/// Appends a message, joining it to the previous one when the role repeats.
///
/// A question whose turn failed or was interrupted has no answer in the
/// history, and strict chat templates refuse two user messages in a row.
fn push_merged(messages: &mut Vec<Message>, role: Role, text: &str) {
    match messages.last_mut() {
        Some(last) if last.role == role && role != Role::System => {
            last.content.push_str("\n\n");
            last.content.push_str(text);
        }
        _ => messages.push(Message { role, content: text.to_owned() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turn(from_user: bool, text: &str) -> HistoryTurn {
        HistoryTurn { from_user, text: text.to_owned(), sender: None }
    }

    /// Alternating questions and answers of 40 bytes each (14 estimated tokens apiece).
    fn history(pairs: usize) -> Vec<HistoryTurn> {
        (0..pairs)
            .flat_map(|i| {
                [turn(true, &format!("{:<40}", format!("q{i}"))), turn(false, &format!("{:<40}", format!("a{i}")))]
            })
            .collect()
    }

    fn texts(conversation: &Conversation) -> Vec<&str> {
        conversation.messages.iter().map(|m| m.content.trim_end()).collect()
    }

    #[test]
    fn estimates_a_quarter_of_the_bytes_rounded_up_plus_overhead() {
        assert_eq!(estimate_tokens(""), MESSAGE_OVERHEAD_TOKENS);
        assert_eq!(estimate_tokens("abcd"), 1 + MESSAGE_OVERHEAD_TOKENS);
        assert_eq!(estimate_tokens("abcde"), 2 + MESSAGE_OVERHEAD_TOKENS);
        assert_eq!(estimate_tokens("é"), 1 + MESSAGE_OVERHEAD_TOKENS, "bytes, not characters");
    }

    #[test]
    fn everything_is_sent_when_it_fits() {
        let conversation = build(Some("be brief"), &history(2), "now", 8192);
        assert_eq!(texts(&conversation), ["be brief", "q0", "a0", "q1", "a1", "now"]);
        let roles: Vec<_> = conversation.messages.iter().map(|m| m.role).collect();
        assert_eq!(roles[..3], [Role::System, Role::User, Role::Assistant]);
        assert_eq!(roles.last(), Some(&Role::User));
        assert_eq!(conversation.dropped, 0);
    }

    #[test]
    fn the_oldest_turns_are_dropped_until_the_estimate_fits() {
        // System 6 + new 5 + two pairs of 28 = 67; one more answer would make 81.
        let conversation = build(Some("be brief"), &history(3), "now", 70);
        assert_eq!(texts(&conversation), ["be brief", "q1", "a1", "q2", "a2", "now"]);
        assert_eq!(conversation.dropped, 2);
        let total: u64 = conversation.messages.iter().map(|m| estimate_tokens(&m.content)).sum();
        assert!(total <= 70, "{total}");
    }

    #[test]
    fn a_kept_history_never_starts_with_an_answer() {
        // Room for a2 and q2 and a1, but a1 alone without q1 is left out too.
        let conversation = build(None, &history(3), "now", 5 + 14 * 3);
        assert_eq!(texts(&conversation), ["q2", "a2", "now"]);
        assert_eq!(conversation.dropped, 4);
    }

    #[test]
    fn system_prompt_and_new_message_are_sent_even_over_budget() {
        let conversation = build(Some("be brief"), &history(3), &"x".repeat(1000), 10);
        assert_eq!(conversation.messages.len(), 2);
        assert_eq!(conversation.messages[0].role, Role::System);
        assert_eq!(conversation.dropped, 6);
    }

    #[test]
    fn unanswered_questions_are_joined_with_the_next_one() {
        let history = [turn(true, "first"), turn(false, "answer"), turn(true, "lost in a restart")];
        let conversation = build(None, &history, "again", 8192);
        assert_eq!(texts(&conversation), ["first", "answer", "lost in a restart\n\nagain"]);
    }
}
