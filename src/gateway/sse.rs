//! A server-sent-events decoder for upstream streams: buffers bytes (reads end mid-line and
//! mid-character), accepts `\n`, `\r\n` and `\r` line ends, joins multi-line `data`, skips
//! comments such as `: ping`, keeps the last event id, and caps the size of one event.

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The `event:` field, if any.
    pub event: Option<String>,
    pub data: String,
    /// The last `id:` seen in the stream so far (it carries over to later events, as in the
    /// SSE specification), to send back as `Last-Event-ID` on a reconnect.
    pub id: Option<String>,
}

/// Larger events are an upstream fault, not something to buffer without end.
pub const MAX_EVENT_BYTES: usize = 16 * 1024 * 1024;

#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
    event: Option<String>,
    data: Option<String>,
    last_id: Option<String>,
    /// The previous chunk ended in `\r`: a `\n` starting the next one belongs to it.
    after_cr: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TooLarge;

impl Decoder {
    /// Feeds bytes; appends every event completed by them.
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<Event>) -> Result<(), TooLarge> {
        let mut bytes = bytes;
        if self.after_cr && bytes.first() == Some(&b'\n') {
            bytes = &bytes[1..];
        }
        self.after_cr = false;
        self.buf.extend_from_slice(bytes);
        let mut start = 0;
        let mut i = 0;
        while i < self.buf.len() {
            let b = self.buf[i];
            if b == b'\n' || b == b'\r' {
                let line = String::from_utf8_lossy(&self.buf[start..i]).into_owned();
                let mut next = i + 1;
                if b == b'\r' {
                    if next < self.buf.len() {
                        if self.buf[next] == b'\n' {
                            next += 1;
                        }
                    } else {
                        self.after_cr = true;
                    }
                }
                self.line(&line, out);
                start = next;
                i = next;
            } else {
                i += 1;
            }
        }
        self.buf.drain(..start);
        let pending = self.buf.len() + self.data.as_ref().map_or(0, String::len);
        if pending > MAX_EVENT_BYTES {
            return Err(TooLarge);
        }
        Ok(())
    }

    /// The stream ended: a last event not followed by a blank line is still dispatched.
    pub fn finish(&mut self, out: &mut Vec<Event>) {
        if !self.buf.is_empty() {
            let line = String::from_utf8_lossy(&std::mem::take(&mut self.buf)).into_owned();
            self.line(&line, out);
        }
        self.line("", out);
    }

    fn line(&mut self, line: &str, out: &mut Vec<Event>) {
        if line.is_empty() {
            if let Some(data) = self.data.take() {
                out.push(Event {
                    event: self.event.take(),
                    data,
                    id: self.last_id.clone(),
                });
            }
            self.event = None;
            return;
        }
        if line.starts_with(':') {
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "data" => match &mut self.data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => self.data = Some(value.to_string()),
            },
            "event" => self.event = Some(value.to_string()),
            "id" if !value.contains('\0') => self.last_id = Some(value.to_string()),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(chunks: &[&[u8]]) -> Vec<Event> {
        let mut d = Decoder::default();
        let mut out = Vec::new();
        for c in chunks {
            d.feed(c, &mut out).unwrap();
        }
        d.finish(&mut out);
        out
    }

    fn ev(event: Option<&str>, data: &str) -> Event {
        Event {
            event: event.map(String::from),
            data: data.into(),
            id: None,
        }
    }

    #[test]
    fn splits_events_across_any_chunking() {
        let text =
            "event: a\ndata: {\"x\":1}\n\n: ping\n\ndata: two\ndata: lines\n\ndata: [DONE]\n\n";
        let expected = vec![
            ev(Some("a"), "{\"x\":1}"),
            ev(None, "two\nlines"),
            ev(None, "[DONE]"),
        ];
        for size in 1..text.len() {
            let chunks: Vec<&[u8]> = text.as_bytes().chunks(size).collect();
            assert_eq!(decode(&chunks), expected, "chunk size {size}");
        }
    }

    #[test]
    fn handles_crlf_and_lone_cr_split_between_chunks() {
        assert_eq!(decode(&[b"data: a\r", b"\n\r\n"]), vec![ev(None, "a")]);
        assert_eq!(
            decode(&[b"data: a\r\rdata: b\r\n\r\n"]),
            vec![ev(None, "a"), ev(None, "b")]
        );
    }

    #[test]
    fn keeps_multibyte_characters_split_across_chunks() {
        let text = "data: héllo 🌍\n\n".as_bytes();
        let chunks: Vec<&[u8]> = text.chunks(1).collect();
        assert_eq!(decode(&chunks), vec![ev(None, "héllo 🌍")]);
    }

    #[test]
    fn comments_alone_dispatch_nothing_and_last_event_without_blank_line_counts() {
        assert_eq!(decode(&[b": ping\n\n: ping\n\n"]), vec![]);
        assert_eq!(decode(&[b"data: tail"]), vec![ev(None, "tail")]);
    }

    #[test]
    fn event_ids_carry_over_to_later_events() {
        let events = decode(&[b"id: 7\nevent: log\ndata: a\n\ndata: b\n\nid: 9\ndata: c\n\n"]);
        let ids: Vec<Option<&str>> = events.iter().map(|e| e.id.as_deref()).collect();
        assert_eq!(ids, vec![Some("7"), Some("7"), Some("9")]);
        assert_eq!(events[0].event.as_deref(), Some("log"));
    }

    #[test]
    fn refuses_an_endless_event() {
        let mut d = Decoder::default();
        let mut out = Vec::new();
        let big = vec![b'x'; MAX_EVENT_BYTES + 1];
        assert_eq!(d.feed(&big, &mut out), Err(TooLarge));
    }
}
