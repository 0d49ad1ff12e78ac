//! AWS event-stream framing (`application/vnd.amazon.eventstream`, providers.md section 5.4):
//! big-endian binary messages `[total len][headers len][prelude CRC][headers][payload][CRC]`,
//! decoded from reads split or joined anywhere.

/// One decoded message. Only string-valued headers are kept (the ones AWS uses to describe
/// an event); the others are checked for length and skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub headers: Vec<(String, String)>,
    pub payload: Vec<u8>,
}

impl Message {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A frame larger than this is an upstream fault, not something to buffer.
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;
const PRELUDE: usize = 12;
const MIN_MESSAGE: usize = PRELUDE + 4;

#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
}

impl Decoder {
    /// Feeds bytes; appends every message they complete. A bad frame is unrecoverable: the
    /// framing is lost, so the error ends the stream.
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<Message>) -> Result<(), String> {
        self.buf.extend_from_slice(bytes);
        let mut start = 0;
        while self.buf.len() - start >= PRELUDE {
            let frame = &self.buf[start..];
            let total = be_u32(&frame[0..4]) as usize;
            let headers_len = be_u32(&frame[4..8]) as usize;
            if crc32(&frame[0..8]) != be_u32(&frame[8..12]) {
                return Err("event-stream prelude checksum mismatch".into());
            }
            if !(MIN_MESSAGE..=MAX_MESSAGE_BYTES).contains(&total)
                || headers_len > total - MIN_MESSAGE
            {
                return Err(format!(
                    "event-stream frame of {total} bytes with {headers_len} bytes of headers"
                ));
            }
            if frame.len() < total {
                break;
            }
            let frame = &frame[..total];
            if crc32(&frame[..total - 4]) != be_u32(&frame[total - 4..]) {
                return Err("event-stream message checksum mismatch".into());
            }
            out.push(Message {
                headers: parse_headers(&frame[PRELUDE..PRELUDE + headers_len])?,
                payload: frame[PRELUDE + headers_len..total - 4].to_vec(),
            });
            start += total;
        }
        self.buf.drain(..start);
        Ok(())
    }

    /// Bytes of an incomplete frame still waiting for the rest.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }
}

fn be_u32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn take<'a>(b: &mut &'a [u8], n: usize) -> Result<&'a [u8], String> {
    if b.len() < n {
        return Err("malformed event-stream header".into());
    }
    let (head, rest) = b.split_at(n);
    *b = rest;
    Ok(head)
}

fn parse_headers(mut b: &[u8]) -> Result<Vec<(String, String)>, String> {
    let bad = |_| "malformed event-stream header".to_string();
    let mut headers = Vec::new();
    while !b.is_empty() {
        let name_len = take(&mut b, 1)?[0] as usize;
        let name = String::from_utf8(take(&mut b, name_len)?.to_vec()).map_err(bad)?;
        let value_type = take(&mut b, 1)?[0];
        let fixed = match value_type {
            0 | 1 => 0,
            2 => 1,
            3 => 2,
            4 => 4,
            5 | 8 => 8,
            9 => 16,
            6 | 7 => {
                let len = take(&mut b, 2)?;
                let value = take(&mut b, u16::from_be_bytes([len[0], len[1]]) as usize)?;
                if value_type == 7 {
                    headers.push((name, String::from_utf8(value.to_vec()).map_err(bad)?));
                }
                continue;
            }
            _ => return Err("malformed event-stream header".into()),
        };
        take(&mut b, fixed)?;
    }
    Ok(headers)
}

const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

/// CRC-32/IEEE (the zlib/PNG one), as event-stream uses for both checksums.
pub fn crc32(data: &[u8]) -> u32 {
    !data.iter().fold(!0u32, |c, &b| {
        CRC_TABLE[((c ^ b as u32) & 0xFF) as usize] ^ (c >> 8)
    })
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// Encodes one message with string headers and correct checksums.
    pub fn encode(headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
        let mut h = Vec::new();
        for (name, value) in headers {
            h.push(name.len() as u8);
            h.extend_from_slice(name.as_bytes());
            h.push(7);
            h.extend_from_slice(&(value.len() as u16).to_be_bytes());
            h.extend_from_slice(value.as_bytes());
        }
        let total = (PRELUDE + h.len() + payload.len() + 4) as u32;
        let mut m = Vec::new();
        m.extend_from_slice(&total.to_be_bytes());
        m.extend_from_slice(&(h.len() as u32).to_be_bytes());
        let prelude_crc = crc32(&m);
        m.extend_from_slice(&prelude_crc.to_be_bytes());
        m.extend_from_slice(&h);
        m.extend_from_slice(payload);
        let crc = crc32(&m);
        m.extend_from_slice(&crc.to_be_bytes());
        m
    }

    #[test]
    fn crc32_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn decodes_split_frames_and_skips_non_string_headers() {
        let mut bytes = encode(&[(":event-type", "a")], b"{\"x\":1}");
        bytes.extend(encode(
            &[(":event-type", "b"), (":content-type", "application/json")],
            b"",
        ));
        for size in [1, 5, 13, 1000] {
            let mut d = Decoder::default();
            let mut out = Vec::new();
            for chunk in bytes.chunks(size) {
                d.feed(chunk, &mut out).unwrap();
            }
            assert_eq!(out.len(), 2);
            assert_eq!(out[0].header(":event-type"), Some("a"));
            assert_eq!(out[0].payload, b"{\"x\":1}");
            assert_eq!(out[1].header(":content-type"), Some("application/json"));
            assert_eq!(d.pending(), 0);
        }
        // A bool (type 0) and an i32 (type 4) header before a string one.
        let mut h = vec![1, b'f', 0, 1, b'n', 4, 0, 0, 0, 9];
        h.extend([2, b'k', b'k', 7, 0, 1, b'v']);
        assert_eq!(
            parse_headers(&h).unwrap(),
            vec![("kk".to_string(), "v".to_string())]
        );
        assert!(parse_headers(&[3, b'a']).is_err());
    }

    #[test]
    fn bad_checksums_and_lengths_are_errors() {
        let good = encode(&[(":event-type", "a")], b"{}");
        let mut body = good.clone();
        let n = body.len();
        body[n - 6] ^= 1;
        assert!(Decoder::default()
            .feed(&body, &mut Vec::new())
            .unwrap_err()
            .contains("message checksum"));
        let mut prelude = good.clone();
        prelude[3] ^= 1;
        assert!(Decoder::default()
            .feed(&prelude, &mut Vec::new())
            .unwrap_err()
            .contains("prelude checksum"));
        let mut huge = (MAX_MESSAGE_BYTES as u32 + 1).to_be_bytes().to_vec();
        huge.extend([0, 0, 0, 0]);
        let crc = crc32(&huge);
        huge.extend(crc.to_be_bytes());
        assert!(Decoder::default().feed(&huge, &mut Vec::new()).is_err());
    }
}
