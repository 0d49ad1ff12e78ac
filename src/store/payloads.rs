//! SQLite: what a record carries beside its row (its request and response bodies and its hook
//! results), kept in `log_payloads` rows of several records each, compressed together
//! (store/packed.rs).
//!
//! A row per record cost the writer a B-tree insert and about a page of WAL per 4 KB; one row
//! per commit (or per [`CHUNK`] bytes of it) costs one insert, and the records of a commit
//! compress well together, since the same prompts, tools and checks recur across requests. A
//! payload is read by decompressing its chunk; [`Reader`] keeps the last chunk it read, so the
//! records of one list are mostly served from one chunk.
//!
//! Records written before payloads existed keep their bodies in `log_bodies`, and their hook
//! results in their row.

use std::ops::Range;

use rusqlite::{params, Connection, OptionalExtension};

use super::packed;

/// A chunk closes once its records' payloads reach this many bytes (before compression), so
/// that reading one record decompresses little more than this.
const CHUNK: usize = 256 * 1024;

/// The `hook_results` of a record's row when the results are in its payload.
pub const RESULTS_IN_PAYLOAD: &[u8] = &[];

/// A part's length when it is absent.
const ABSENT: u32 = u32::MAX;

/// One record's payload. A part is at most 4 GiB less a byte (bodies are cut at 1 MiB).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Parts<'a> {
    pub request: Option<&'a [u8]>,
    pub response: Option<&'a [u8]>,
    pub results: Option<&'a [u8]>,
}

impl Parts<'_> {
    fn is_empty(&self) -> bool {
        self.request.is_none() && self.response.is_none() && self.results.is_none()
    }
}

/// Writes the payloads of a commit's records, given with their seqs in ascending order; records
/// with nothing to keep are left out.
pub fn save<'a>(
    tx: &Connection,
    payloads: impl IntoIterator<Item = (i64, Parts<'a>)>,
) -> rusqlite::Result<()> {
    let mut insert = tx.prepare_cached(
        "INSERT INTO log_payloads (first_seq, last_seq, data) VALUES (?1, ?2, ?3)",
    )?;
    let mut raw = Vec::new();
    let mut seqs: Option<(i64, i64)> = None;
    for (seq, parts) in payloads {
        if parts.is_empty() {
            continue;
        }
        let first = seqs.map_or(seq, |(first, _)| first);
        seqs = Some((first, seq));
        // Seqs are handed out in order, so a chunk's records span far fewer than 2^32 seqs.
        raw.extend_from_slice(&((seq - first) as u32).to_le_bytes());
        let parts = [parts.request, parts.response, parts.results];
        for part in parts {
            let len = part.map_or(ABSENT, |p| p.len() as u32);
            raw.extend_from_slice(&len.to_le_bytes());
        }
        for part in parts.into_iter().flatten() {
            raw.extend_from_slice(part);
        }
        if raw.len() >= CHUNK {
            let (first, last) = seqs.take().expect("a part was just added");
            insert.execute(params![first, last, packed::pack_bytes(&raw)])?;
            raw.clear();
        }
    }
    if let Some((first, last)) = seqs {
        insert.execute(params![first, last, packed::pack_bytes(&raw)])?;
    }
    Ok(())
}

/// Deletes the chunks up to `last_seq` whose records are all gone.
pub fn prune(conn: &Connection, last_seq: i64) -> rusqlite::Result<()> {
    conn.execute(
        "DELETE FROM log_payloads WHERE first_seq <= ?1 AND last_seq <= ?1 \
         AND NOT EXISTS (SELECT 1 FROM logs WHERE seq BETWEEN first_seq AND last_seq)",
        params![last_seq],
    )?;
    Ok(())
}

/// A chunk decompressed: its bytes, and where each record's parts are in them.
pub struct Chunk {
    first_seq: i64,
    last_seq: i64,
    raw: Vec<u8>,
    /// By seq, ascending: the ranges of the request, the response and the results.
    entries: Vec<(i64, [Option<Range<usize>>; 3])>,
}

impl Chunk {
    /// `None` for a chunk damaged in storage: its records read as if they had no payload.
    pub fn decode(first_seq: i64, last_seq: i64, data: &[u8]) -> Option<Chunk> {
        let raw = packed::unpack_bytes(data).ok()?;
        let mut entries = Vec::new();
        let mut at = 0;
        let word = |at: &mut usize| -> Option<u32> {
            let bytes = raw.get(*at..*at + 4)?;
            *at += 4;
            Some(u32::from_le_bytes(bytes.try_into().ok()?))
        };
        while at < raw.len() {
            let seq = first_seq + i64::from(word(&mut at)?);
            let lens = [word(&mut at)?, word(&mut at)?, word(&mut at)?];
            let ranges = lens.map(|len| {
                (len != ABSENT).then(|| {
                    let range = at..at + len as usize;
                    at = range.end;
                    range
                })
            });
            if at > raw.len() {
                return None;
            }
            entries.push((seq, ranges));
        }
        Some(Chunk {
            first_seq,
            last_seq,
            raw,
            entries,
        })
    }

    /// The payload of the record `seq`, if this chunk holds one.
    pub fn parts(&self, seq: i64) -> Option<Parts<'_>> {
        let i = self.entries.binary_search_by_key(&seq, |e| e.0).ok()?;
        Some(self.parts_at(i))
    }

    fn parts_at(&self, i: usize) -> Parts<'_> {
        let [request, response, results] =
            self.entries[i].1.clone().map(|r| r.map(|r| &self.raw[r]));
        Parts {
            request,
            response,
            results,
        }
    }

    /// Every record's payload, by seq.
    pub fn each(&self) -> impl Iterator<Item = (i64, Parts<'_>)> {
        (0..self.entries.len()).map(|i| (self.entries[i].0, self.parts_at(i)))
    }
}

/// Reads records' payloads, keeping the chunk it read last.
#[derive(Default)]
pub struct Reader {
    last: Option<Chunk>,
}

impl Reader {
    /// The payload of the record `seq`; `None` when it has none (or its chunk is damaged).
    pub fn parts(&mut self, conn: &Connection, seq: i64) -> rusqlite::Result<Option<Parts<'_>>> {
        let held = (self.last.as_ref()).is_some_and(|c| c.first_seq <= seq && seq <= c.last_seq);
        if !held {
            let row: Option<(i64, i64, Vec<u8>)> = conn
                .prepare_cached(
                    "SELECT first_seq, last_seq, data FROM log_payloads WHERE first_seq <= ?1 \
                     ORDER BY first_seq DESC LIMIT 1",
                )?
                .query_row(params![seq], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()?;
            self.last = match row {
                Some((first, last, data)) if seq <= last => Chunk::decode(first, last, &data),
                _ => return Ok(None),
            };
        }
        Ok(self.last.as_ref().and_then(|chunk| chunk.parts(seq)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE logs (seq INTEGER PRIMARY KEY);
             CREATE TABLE log_payloads (first_seq INTEGER PRIMARY KEY, last_seq INTEGER NOT NULL,
                 data BLOB NOT NULL);",
        )
        .unwrap();
        conn
    }

    fn body(seq: i64) -> Vec<u8> {
        format!(r#"{{"messages":[{{"role":"user","content":"question {seq}"}}]}}"#).into_bytes()
    }

    #[test]
    fn each_record_reads_back_its_own_parts_across_chunks() {
        let conn = table();
        let big = vec![b'x'; CHUNK / 3];
        let bodies: Vec<Vec<u8>> = (0..10).map(body).collect();
        let payloads = (0..10i64).map(|seq| {
            let parts = match seq {
                // Nothing to keep: left out.
                3 => Parts::default(),
                // Large enough that chunks close after a few records.
                5..=8 => Parts {
                    request: Some(&big[..]),
                    ..Parts::default()
                },
                _ => Parts {
                    request: Some(&bodies[seq as usize][..]),
                    response: Some(b""),
                    results: (seq % 2 == 0).then_some(&b"{\"before_request_hooks\":[]}"[..]),
                },
            };
            (100 + seq, parts)
        });
        save(&conn, payloads).unwrap();
        let chunks: i64 = conn
            .query_row("SELECT COUNT(*) FROM log_payloads", [], |r| r.get(0))
            .unwrap();
        assert!(chunks >= 2, "{chunks} chunks");

        let mut reader = Reader::default();
        for seq in 0..10i64 {
            let parts = reader.parts(&conn, 100 + seq).unwrap();
            match seq {
                3 => assert_eq!(parts, None),
                5..=8 => assert_eq!(parts.unwrap().request, Some(&big[..])),
                _ => {
                    let parts = parts.unwrap();
                    assert_eq!(parts.request, Some(&bodies[seq as usize][..]));
                    assert_eq!(parts.response, Some(&b""[..]));
                    assert_eq!(parts.results.is_some(), seq % 2 == 0);
                }
            }
        }
        assert_eq!(reader.parts(&conn, 99).unwrap(), None);
        assert_eq!(reader.parts(&conn, 110).unwrap(), None);
    }

    #[test]
    fn a_chunk_goes_once_none_of_its_records_is_left() {
        let conn = table();
        let bodies: Vec<Vec<u8>> = (1..=4).map(body).collect();
        for seq in 1..=4i64 {
            conn.execute("INSERT INTO logs (seq) VALUES (?1)", [seq])
                .unwrap();
        }
        let parts = |seq: i64| Parts {
            request: Some(&bodies[seq as usize - 1][..]),
            ..Parts::default()
        };
        save(&conn, [(1, parts(1)), (2, parts(2))]).unwrap();
        save(&conn, [(3, parts(3)), (4, parts(4))]).unwrap();
        let chunks = || -> i64 {
            conn.query_row("SELECT COUNT(*) FROM log_payloads", [], |r| r.get(0))
                .unwrap()
        };
        // Record 2 is left: its chunk stays.
        conn.execute("DELETE FROM logs WHERE seq = 1", []).unwrap();
        prune(&conn, 4).unwrap();
        assert_eq!(chunks(), 2);
        conn.execute("DELETE FROM logs WHERE seq <= 3", []).unwrap();
        prune(&conn, 3).unwrap();
        assert_eq!(chunks(), 1);
        assert!(Reader::default().parts(&conn, 4).unwrap().is_some());
    }

    #[test]
    fn a_damaged_chunk_reads_as_no_payload() {
        let conn = table();
        save(
            &conn,
            [(
                1,
                Parts {
                    request: Some(b"{}"),
                    ..Parts::default()
                },
            )],
        )
        .unwrap();
        conn.execute(
            "UPDATE log_payloads SET data = substr(data, 1, length(data) - 1)",
            [],
        )
        .unwrap();
        assert_eq!(Reader::default().parts(&conn, 1).unwrap(), None);
        assert!(Chunk::decode(1, 1, &packed::pack_bytes(&[1, 0, 0])).is_none());
    }
}
