//! An incremental server-sent events decoder: bytes in, the `data` of each
//! complete event out.
//!
//! Follows the EventSource line rules (LF, CRLF or CR end a line, `:` starts a
//! comment, a blank line ends an event, several `data` lines join with `\n`)
//! and keeps any partial line for the next read, so an event may be split
//! across reads at any byte, including between a CR and its LF.

/// The longest line accepted; a longer one means the peer is not speaking SSE.
const MAX_LINE_BYTES: usize = 8 * 1024 * 1024;

/// A line longer than [`MAX_LINE_BYTES`].
#[derive(Debug, thiserror::Error)]
#[error("an event line is longer than {MAX_LINE_BYTES} bytes")]
pub(super) struct LineTooLong;

/// Decoder state carried between reads.
#[derive(Debug, Default)]
pub(super) struct SseDecoder {
    line: Vec<u8>,
    data: Option<String>,
    /// The previous read ended a line with CR, so a leading LF belongs to it.
    after_cr: bool,
}

impl SseDecoder {
    /// Feeds one read; returns the data of every event it completed, in order.
    pub(super) fn push(&mut self, mut bytes: &[u8]) -> Result<Vec<String>, LineTooLong> {
        let mut events = Vec::new();
        if bytes.is_empty() {
            return Ok(events);
        }
        if self.after_cr && bytes.first() == Some(&b'\n') {
            bytes = &bytes[1..];
        }
        self.after_cr = false;
        while let Some(end) = bytes.iter().position(|&b| b == b'\n' || b == b'\r') {
            self.line.extend_from_slice(&bytes[..end]);
            let crlf = bytes[end] == b'\r' && bytes.get(end + 1) == Some(&b'\n');
            self.after_cr = bytes[end] == b'\r' && end + 1 == bytes.len();
            bytes = &bytes[end + if crlf { 2 } else { 1 }..];
            let line = std::mem::take(&mut self.line);
            events.extend(self.line_done(&line));
        }
        if self.line.len() + bytes.len() > MAX_LINE_BYTES {
            return Err(LineTooLong);
        }
        self.line.extend_from_slice(bytes);
        Ok(events)
    }

    /// The end of the stream: an event the peer did not close with a blank line.
    pub(super) fn finish(&mut self) -> Option<String> {
        let line = std::mem::take(&mut self.line);
        if let Some(event) = self.line_done(&line) {
            return Some(event);
        }
        self.data.take()
    }

    /// Handles one complete line; a blank line hands back the event's data.
    fn line_done(&mut self, line: &[u8]) -> Option<String> {
        if line.is_empty() {
            return self.data.take();
        }
        let line = String::from_utf8_lossy(line);
        let (field, value) = match line.split_once(':') {
            Some(("", _)) => return None,
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line.as_ref(), ""),
        };
        if field == "data" {
            match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_owned()),
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_in_pieces(pieces: &[&[u8]]) -> Vec<String> {
        let mut decoder = SseDecoder::default();
        let mut events = Vec::new();
        for piece in pieces {
            events.extend(decoder.push(piece).unwrap());
        }
        events.extend(decoder.finish());
        events
    }

    #[test]
    fn several_events_in_one_read_come_out_in_order() {
        let events = decode_in_pieces(&[b"data: {\"a\":1}\n\ndata: {\"a\":2}\n\ndata: [DONE]\n\n"]);
        assert_eq!(events, ["{\"a\":1}", "{\"a\":2}", "[DONE]"]);
    }

    #[test]
    fn an_event_split_at_every_byte_is_decoded_once() {
        let stream = b"data: {\"content\":\"h\xc3\xa9llo\"}\r\n\r\ndata: [DONE]\r\n\r\n";
        let pieces: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(decode_in_pieces(&pieces), ["{\"content\":\"héllo\"}", "[DONE]"]);
    }

    #[test]
    fn crlf_split_between_cr_and_lf_is_one_line_end() {
        let events = decode_in_pieces(&[b"data: one\r", b"\n\r", b"\ndata: two\r\n", b"\r\n"]);
        assert_eq!(events, ["one", "two"]);
    }

    #[test]
    fn lone_cr_ends_lines_too() {
        assert_eq!(decode_in_pieces(&[b"data: one\r\rdata: two\r\r"]), ["one", "two"]);
    }

    #[test]
    fn comments_keep_alives_and_other_fields_are_ignored() {
        let stream = b": keep-alive\n\n:\nevent: message\nid: 7\nretry: 1000\ndata: x\n\n: ping\n\n";
        assert_eq!(decode_in_pieces(&[stream]), ["x"]);
    }

    #[test]
    fn data_lines_of_one_event_join_with_newlines_and_the_space_is_optional() {
        assert_eq!(decode_in_pieces(&[b"data:a\ndata:  b\ndata\n\n"]), ["a\n b\n"]);
    }

    #[test]
    fn an_unterminated_last_event_is_kept_at_the_end() {
        assert_eq!(decode_in_pieces(&[b"data: x\n\ndata: [DO", b"NE]"]), ["x", "[DONE]"]);
    }

    #[test]
    fn an_endless_line_is_refused() {
        let mut decoder = SseDecoder::default();
        let chunk = vec![b'a'; 1024 * 1024];
        let outcome = (0..9).try_for_each(|_| decoder.push(&chunk).map(drop));
        assert!(outcome.is_err());
    }
}
