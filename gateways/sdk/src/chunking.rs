//! Splitting long answers at a platform's message limit.
//!
//! Used by the runner for every final response before it reaches a platform.
//! Limits count characters (never bytes), and a cut is always on a character
//! boundary. Cuts prefer a paragraph break, then a line break, then a space.
//! A cut inside a Markdown code fence closes the fence at the end of the piece
//! and reopens it, with the same info string, at the start of the next, so
//! every piece renders on its own. Without those added fence lines the pieces
//! concatenate to the original text.

const FENCE: &str = "```";

/// Characters a closing fence may add to a piece (`"\n```"`).
const CLOSE_CHARS: usize = 4;

/// One piece of a split message: the original `body`, plus the fence lines
/// added so the piece renders on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Piece<'a> {
    /// Info string of a code fence reopened at the start of this piece.
    pub(crate) reopen: Option<&'a str>,
    /// A slice of the original text.
    pub(crate) body: &'a str,
    /// Whether a fence is closed at the end of this piece.
    pub(crate) close: bool,
}

impl Piece<'_> {
    /// The text to send.
    pub(crate) fn render(&self) -> String {
        let mut out = String::with_capacity(self.body.len() + 16);
        if let Some(info) = self.reopen {
            out.push_str(FENCE);
            out.push_str(info);
            out.push('\n');
        }
        out.push_str(self.body);
        if self.close {
            if !self.body.ends_with('\n') {
                out.push('\n');
            }
            out.push_str(FENCE);
        }
        out
    }
}

/// Splits `text` into pieces of at most `limit` characters each (a `limit` of
/// 0 is treated as 1). Text that fits is returned as one piece; empty text as
/// no piece.
pub fn split_message(text: &str, limit: usize) -> Vec<String> {
    split_pieces(text, limit).iter().map(Piece::render).collect()
}

/// One line of the text and the fence state after it.
struct Line<'a> {
    start: usize,
    end: usize,
    fence: bool,
    /// Info string of the fence open after this line, if one is.
    open_after: Option<&'a str>,
}

/// Every line of `text` (ends include the newline) with its fence state.
fn scan_lines(text: &str) -> Vec<Line<'_>> {
    let mut lines = Vec::new();
    let mut open: Option<&str> = None;
    let mut start = 0;
    for line in text.split_inclusive('\n') {
        let marker = line.trim_start().strip_prefix(FENCE).map(str::trim);
        let fence = match (marker, open) {
            (Some(info), None) => {
                open = Some(info);
                true
            }
            (Some(""), Some(_)) => {
                open = None;
                true
            }
            _ => false,
        };
        lines.push(Line { start, end: start + line.len(), fence, open_after: open });
        start += line.len();
    }
    lines
}

/// The fence open just before byte `pos` (a line counts once it is complete).
fn open_at<'a>(lines: &[Line<'a>], pos: usize) -> Option<&'a str> {
    let complete = lines.partition_point(|line| line.end <= pos);
    complete.checked_sub(1).and_then(|i| lines[i].open_after)
}

/// Byte offset in `text` after its first `chars` characters (or its length).
fn byte_after_chars(text: &str, chars: usize) -> usize {
    text.char_indices().nth(chars).map_or(text.len(), |(i, _)| i)
}

/// Where to cut `window` (which starts at `start` in the text): the last
/// paragraph break, line break or space past a third of it, else its end.
fn choose_cut(window: &str, start: usize) -> usize {
    let min = window.len() / 3;
    let after = |found: Option<usize>, len: usize| found.map(|i| i + len).filter(|&i| i > min && i > 0);
    after(window.rfind("\n\n"), 2)
        .or_else(|| after(window.rfind('\n'), 1))
        .or_else(|| after(window.rfind(' '), 1))
        .map_or(start + window.len(), |i| start + i)
}

/// Moves a cut that falls inside a fence line to that line's start, so a
/// fence marker is never split.
fn avoid_fence_line(lines: &[Line<'_>], piece_start: usize, cut: usize) -> usize {
    let i = lines.partition_point(|line| line.end <= cut);
    match lines.get(i) {
        Some(line) if line.fence && line.start < cut && line.start > piece_start => line.start,
        _ => cut,
    }
}

/// The pieces of `text`; see [`split_message`].
pub(crate) fn split_pieces(text: &str, limit: usize) -> Vec<Piece<'_>> {
    let limit = limit.max(1);
    let lines = scan_lines(text);
    let longest_info = lines.iter().filter_map(|l| l.open_after).map(|i| i.chars().count()).max().unwrap_or(0);
    // Too small a limit to afford reopening fences: split plainly.
    let fences = limit > 2 * (FENCE.len() + longest_info + 1 + CLOSE_CHARS);
    let mut pieces = Vec::new();
    let (mut start, mut reopen) = (0, None);
    while start < text.len() {
        let prefix = reopen.map_or(0, |info: &str| FENCE.len() + info.chars().count() + 1);
        let rest = &text[start..];
        if prefix + rest.chars().count() <= limit {
            pieces.push(Piece { reopen, body: rest, close: false });
            break;
        }
        let budget = if fences { limit - prefix - CLOSE_CHARS } else { limit };
        let window = &rest[..byte_after_chars(rest, budget)];
        let mut cut = choose_cut(window, start);
        if fences {
            cut = avoid_fence_line(&lines, start, cut);
        }
        let open = if fences { open_at(&lines, cut) } else { None };
        pieces.push(Piece { reopen, body: &text[start..cut], close: open.is_some() });
        (start, reopen) = (cut, open);
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bodies(pieces: &[Piece<'_>]) -> String {
        pieces.iter().map(|p| p.body).collect()
    }

    /// Every property the splitter promises, for one text and limit.
    fn check(text: &str, limit: usize) {
        let pieces = split_pieces(text, limit);
        assert_eq!(bodies(&pieces), text, "limit {limit}");
        for piece in &pieces {
            let rendered = piece.render();
            assert!(rendered.chars().count() <= limit.max(1), "piece over {limit}: {rendered:?}");
            assert!(!piece.body.is_empty(), "empty piece at limit {limit}");
        }
        let fenced = scan_lines(text).iter().any(|l| l.fence);
        if fenced && limit > 40 {
            for piece in &pieces[..pieces.len() - 1] {
                let rendered = piece.render();
                assert!(
                    scan_lines(&rendered).last().is_none_or(|l| l.open_after.is_none()),
                    "open fence: {rendered:?}"
                );
            }
        }
        assert_eq!(split_message(text, limit), pieces.iter().map(Piece::render).collect::<Vec<_>>());
    }

    /// A deterministic pseudo-random text of words, lines, paragraphs,
    /// multi-byte characters and code fences.
    fn sample(seed: u64, words: usize) -> String {
        let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let mut next = move |n: u64| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 33) % n
        };
        let vocabulary =
            ["gorp", "héllo", "日本語", "🦀", "session", "a", "averyveryverylongwordwithoutspaces", "x=1;"];
        let mut text = String::new();
        let mut in_fence = false;
        for _ in 0..words {
            match next(20) {
                0 => text.push_str("\n\n"),
                1 | 2 => text.push('\n'),
                3 => {
                    text.push_str(if in_fence { "\n```\n" } else { "\n```rust\n" });
                    in_fence = !in_fence;
                }
                _ => text.push(' '),
            }
            text.push_str(vocabulary[next(vocabulary.len() as u64) as usize]);
        }
        text
    }

    #[test]
    fn short_text_is_one_piece() {
        assert_eq!(split_message("hello", 10), vec!["hello"]);
        assert_eq!(split_message("hello", 5), vec!["hello"]);
        assert!(split_message("", 5).is_empty());
    }

    #[test]
    fn prefers_paragraph_then_line_then_word() {
        assert_eq!(split_message("aaaa bbbb\ncccc\n\ndddd", 16), vec!["aaaa bbbb\ncccc\n\n", "dddd"]);
        assert_eq!(split_message("aaaa bbbb\ncccc dddd", 16), vec!["aaaa bbbb\n", "cccc dddd"]);
        assert_eq!(split_message("aaaa bbbb cccc dddd", 16), vec!["aaaa bbbb cccc ", "dddd"]);
    }

    #[test]
    fn hard_cut_is_on_a_character_boundary() {
        let text = "日本語".repeat(10);
        let pieces = split_message(&text, 7);
        assert!(pieces.iter().all(|p| p.chars().count() <= 7));
        assert_eq!(pieces.concat(), text);
    }

    #[test]
    fn a_cut_inside_a_code_fence_closes_and_reopens_it() {
        let code: String = (0..20).map(|i| format!("let x{i} = {i};\n")).collect();
        let text = format!("Here:\n\n```rust\n{code}```\nDone.");
        let pieces = split_message(&text, 120);
        assert!(pieces.len() > 2, "{pieces:?}");
        assert!(pieces[0].ends_with("\n```"), "{:?}", pieces[0]);
        assert!(pieces[1].starts_with("```rust\n"), "{:?}", pieces[1]);
        for piece in &pieces {
            assert_eq!(piece.matches("```").count() % 2, 0, "{piece:?}");
        }
    }

    #[test]
    fn an_unclosed_fence_in_the_original_stays_unclosed_at_the_end() {
        let text = format!("```\n{}", "line\n".repeat(30));
        let pieces = split_pieces(&text, 50);
        assert!(pieces.last().is_some_and(|p| !p.close && p.reopen == Some("")));
        check(&text, 50);
    }

    #[test]
    fn fence_markers_are_never_split() {
        let text = format!("{}\n```python\nprint(1)\n```\n", "word ".repeat(9));
        for limit in 20..80 {
            for piece in split_message(&text, limit) {
                for line in piece.lines().filter(|l| l.starts_with('`') || l.ends_with('`')) {
                    assert!(line.starts_with("```"), "split fence in {piece:?}");
                }
            }
            check(&text, limit);
        }
    }

    #[test]
    fn tiny_limits_still_make_progress() {
        for limit in 0..12 {
            check("```rust\nfn main() {}\n```\nand some words after it", limit);
        }
    }

    #[test]
    fn property_every_length_and_limit() {
        for seed in 0..40 {
            let text = sample(seed, 20 + seed as usize * 7);
            for limit in (1..60).chain((60..400).step_by(13)) {
                check(&text, limit);
            }
        }
    }

    #[test]
    fn property_every_prefix_of_a_fenced_text() {
        let text = sample(7, 120);
        let ends: Vec<usize> = text.char_indices().map(|(i, _)| i).step_by(5).collect();
        for end in ends {
            for limit in [30, 45, 64, 100] {
                check(&text[..end], limit);
            }
        }
    }
}
