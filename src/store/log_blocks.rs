//! Block summaries of the request log. For each run of [`BLOCK_RECORDS`] consecutive records
//! (by `seq`), `log_blocks` keeps the range of their times, the ranges of the costs of the answered
//! (2xx) and of the other records, their highest latency and a Bloom filter of the values that list filters compare for equality. A filter that no index serves
//! in time order (model, API key, provider, cache status, kind, metadata, cost and latency
//! bounds) then reads only the blocks that may hold a match, newest first: a value that matches
//! nothing reads no records at all, a rare one reads only the blocks it is in.
//!
//! This costs the recorder a few hashes per record and one summary row per commit, where an
//! index per filter would cost a B-tree insert per record each (and, for cost and latency, a
//! page written at a random place of the index).
//!
//! The writer keeps the open block in memory and writes its summary in the same transaction
//! as its records, so summaries never lag. Records past the last block (written by a version
//! without summaries, until the writer covers them at start) are always read.
//!
//! The tags below are stored in the Bloom filters: changing how a tag is made requires a
//! migration that empties `log_blocks`, which the writer then rebuilds.

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde_json::{Map, Value};

use super::logs::KEY_NAMED;
use super::StoreResult;
use crate::api::logs::{LogFilter, LogRecord};

/// Records per block: smaller blocks skip more precisely, and each costs a summary to read.
pub const BLOCK_RECORDS: usize = 1024;
/// Bits set per value; with at least [`BITS_PER_VALUE`] bits per distinct value, a Bloom
/// filter answers "maybe" for an absent value about 1 % of the time.
const HASHES: u64 = 6;
const BITS_PER_VALUE: usize = 10;

/// FNV-1a over the parts with a separator byte no UTF-8 text contains, then a 64-bit mix
/// (FNV's high bits are weak). Stable across builds: the hashes are stored.
fn tag(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &b in part.as_bytes().iter().chain([0xff].iter()) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

fn metadata_tag(key: &str, value: &str) -> u64 {
    tag(&["metadata", key, value])
}

fn key_tag(api_key_id: &str) -> u64 {
    tag(&["api_key", api_key_id])
}

/// What a summary needs of a record: its own struct so the writer can summarise records it
/// reads back from the table as well as those it inserts.
pub struct Summarised<'a> {
    pub created_ms: i64,
    pub trace_id: &'a str,
    pub api_key_id: Option<&'a str>,
    pub model: Option<&'a str>,
    pub provider: Option<&'a str>,
    pub kind: &'a str,
    pub cache_status: &'a str,
    pub metadata: &'a Map<String, Value>,
    pub cost: Option<f64>,
    pub status: u16,
    pub latency_ms: f64,
}

/// Tags are already mixed 64-bit hashes, so their set uses them as they are instead of hashing
/// them again (SipHash took about 4 % of the recorder thread's time).
#[derive(Default)]
struct AsIs(u64);

impl Hasher for AsIs {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type Tags = HashSet<u64, BuildHasherDefault<AsIs>>;

/// A range of costs, or none when no record has one.
type CostRange = Option<(f64, f64)>;

fn widen(range: CostRange, cost: f64) -> CostRange {
    Some(range.map_or((cost, cost), |(lo, hi)| (lo.min(cost), hi.max(cost))))
}

fn union(a: CostRange, b: CostRange) -> CostRange {
    match (a, b) {
        (Some((lo, hi)), other) | (other, Some((lo, hi))) => widen(widen(other, lo), hi),
        (None, None) => None,
    }
}

/// Whether a status is an answer's (2xx), whose costs are summarised apart.
fn answered(status: u16) -> bool {
    (200..300).contains(&status)
}

impl<'a> Summarised<'a> {
    pub fn of(created_ms: i64, r: &'a LogRecord) -> Summarised<'a> {
        Summarised {
            created_ms,
            trace_id: &r.trace_id,
            api_key_id: r.api_key_id.as_deref(),
            model: r.model.as_deref(),
            provider: r.provider.as_deref(),
            kind: &r.kind,
            cache_status: &r.cache_status,
            metadata: &r.metadata,
            cost: r.cost,
            status: r.status,
            latency_ms: r.latency_ms,
        }
    }
}

/// The summary of one block, as the writer builds it.
#[derive(Clone)]
pub struct Block {
    first_seq: i64,
    last_seq: i64,
    records: usize,
    min_created_ms: i64,
    max_created_ms: i64,
    /// Over the answered (2xx) records with a cost, and over the other records with one.
    answered_cost: CostRange,
    failed_cost: CostRange,
    max_latency_ms: f64,
    tags: Tags,
    /// A metadata value that is not a string (the gateway and custom records store only
    /// strings): `json_extract` would compare its JSON text, which is not tagged, so every
    /// filter reads this block.
    opaque: bool,
}

impl Block {
    fn new(seq: i64, r: &Summarised) -> Block {
        let mut block = Block {
            first_seq: seq,
            last_seq: seq,
            records: 0,
            min_created_ms: r.created_ms,
            max_created_ms: r.created_ms,
            answered_cost: None,
            failed_cost: None,
            max_latency_ms: r.latency_ms,
            tags: Tags::default(),
            opaque: false,
        };
        block.add(seq, r);
        block
    }

    fn add(&mut self, seq: i64, r: &Summarised) {
        self.last_seq = seq;
        self.records += 1;
        self.min_created_ms = self.min_created_ms.min(r.created_ms);
        self.max_created_ms = self.max_created_ms.max(r.created_ms);
        if let Some(c) = r.cost {
            if answered(r.status) {
                self.answered_cost = widen(self.answered_cost, c);
            } else {
                self.failed_cost = widen(self.failed_cost, c);
            }
        }
        self.max_latency_ms = self.max_latency_ms.max(r.latency_ms);
        self.tags.insert(tag(&["trace", r.trace_id]));
        self.tags.insert(tag(&["kind", r.kind]));
        self.tags.insert(tag(&["cache_status", r.cache_status]));
        if let Some(k) = r.api_key_id {
            self.tags.insert(key_tag(k));
        }
        if let Some(m) = r.model {
            self.tags.insert(tag(&["model", m]));
        }
        if let Some(p) = r.provider {
            self.tags.insert(tag(&["provider", p]));
        }
        for (k, v) in r.metadata {
            match v {
                Value::String(s) => {
                    self.tags.insert(metadata_tag(k, s));
                }
                _ => self.opaque = true,
            }
        }
    }

    /// The Bloom filter of the tags; empty when the block is opaque (it may hold anything).
    fn bloom(&self) -> Vec<u8> {
        if self.opaque {
            return Vec::new();
        }
        let bits = (self.tags.len() * BITS_PER_VALUE)
            .next_power_of_two()
            .max(64);
        let mut bloom = vec![0u8; bits / 8];
        for &t in &self.tags {
            for bit in positions(t, bits) {
                bloom[bit / 8] |= 1 << (bit % 8);
            }
        }
        bloom
    }

    fn save(&self, conn: &Connection) -> rusqlite::Result<()> {
        let all_cost = union(self.answered_cost, self.failed_cost);
        conn.prepare_cached(
            "INSERT OR REPLACE INTO log_blocks (first_seq, last_seq, min_created_ms, \
             max_created_ms, min_cost, max_cost, max_latency_ms, bloom, ok_min_cost, ok_max_cost, \
             failed_min_cost, failed_max_cost) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        )?
        .execute(params![
            self.first_seq,
            self.last_seq,
            self.min_created_ms,
            self.max_created_ms,
            all_cost.map(|c| c.0),
            all_cost.map(|c| c.1),
            self.max_latency_ms,
            self.bloom(),
            self.answered_cost.map(|c| c.0),
            self.answered_cost.map(|c| c.1),
            self.failed_cost.map(|c| c.0),
            self.failed_cost.map(|c| c.1),
        ])?;
        Ok(())
    }
}

/// The bits of a tag in a filter of `bits` bits (a power of two): double hashing.
fn positions(tag: u64, bits: usize) -> impl Iterator<Item = usize> {
    let (h1, h2) = (tag & 0xffff_ffff, (tag >> 32) | 1);
    (0..HASHES).map(move |i| (h1.wrapping_add(i.wrapping_mul(h2)) as usize) & (bits - 1))
}

/// The writer's side: the open block, extended record by record.
#[derive(Clone, Default)]
pub struct Blocks {
    open: Option<Block>,
    /// Blocks filled since the last [`Blocks::save`].
    closed: Vec<Block>,
}

impl Blocks {
    pub fn add(&mut self, seq: i64, r: &Summarised) {
        match &mut self.open {
            Some(b) if b.records < BLOCK_RECORDS => b.add(seq, r),
            open => {
                if let Some(full) = open.replace(Block::new(seq, r)) {
                    self.closed.push(full);
                }
            }
        }
    }

    /// Writes the blocks filled since the last call and the open one.
    pub fn save(&mut self, conn: &Connection) -> rusqlite::Result<()> {
        for b in self.closed.drain(..).chain(self.open.clone()) {
            b.save(conn)?;
        }
        Ok(())
    }

    /// Summarises the records past the last block (for a store written before the
    /// summaries existed), in blocks of their own.
    pub fn cover(conn: &Connection) -> StoreResult<Blocks> {
        let mut blocks = Blocks::default();
        let mut stmt = conn.prepare(
            "SELECT seq, created_ms, model, provider, kind, cache_status, metadata, cost, \
             latency_ms, status, trace_id, api_key_id FROM logs \
             WHERE seq > (SELECT COALESCE(MAX(last_seq), 0) FROM log_blocks) ORDER BY seq",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let text = |i: usize| -> rusqlite::Result<Option<String>> { row.get(i) };
            let (model, provider) = (text(2)?, text(3)?);
            let (kind, cache_status): (String, String) = (row.get(4)?, row.get(5)?);
            let (trace_id, api_key_id): (String, Option<String>) = (row.get(10)?, row.get(11)?);
            let metadata: Map<String, Value> =
                serde_json::from_str(&row.get::<_, String>(6)?).unwrap_or_default();
            let summarised = Summarised {
                created_ms: row.get(1)?,
                trace_id: &trace_id,
                api_key_id: api_key_id.as_deref(),
                model: model.as_deref(),
                provider: provider.as_deref(),
                kind: &kind,
                cache_status: &cache_status,
                metadata: &metadata,
                cost: row.get(7)?,
                status: row.get(9)?,
                latency_ms: row.get(8)?,
            };
            blocks.add(row.get(0)?, &summarised);
            if blocks.closed.len() >= 64 {
                blocks.save(conn)?;
            }
        }
        blocks.save(conn)?;
        Ok(blocks)
    }
}

/// Deletes the summaries of blocks whose records were all deleted: those up to `last_seq`
/// made before `before_ms`, as the pruning deletes them.
pub fn prune(conn: &Connection, last_seq: i64, before_ms: i64) -> rusqlite::Result<()> {
    conn.execute(
        "DELETE FROM log_blocks WHERE last_seq <= ?1 AND max_created_ms < ?2",
        params![last_seq, before_ms],
    )?;
    Ok(())
}

/// Whether a filter has a condition that no index serves in time order, which the summaries
/// can. A trace has few records: they are read through [`trace_ranges`] instead.
pub fn serves(f: &LogFilter) -> bool {
    f.trace_id.is_none()
        && (f.model.is_some()
            || f.api_key.is_some()
            || f.provider.is_some()
            || f.cache_status.is_some()
            || f.kind.is_some()
            || f.metadata.iter().any(|(k, _)| k != "_user")
            || f.min_cost.is_some()
            || f.max_cost.is_some()
            || f.min_latency_ms.is_some())
}

/// What a filter asks of a block's summary.
pub struct Wanted {
    /// For each condition, the tags of the values it accepts: a block may hold a match when its
    /// filter may hold one tag of each.
    tags: Vec<Vec<u64>>,
    min_cost: Option<f64>,
    max_cost: Option<f64>,
    min_latency_ms: Option<f64>,
    /// Where in [`SUMMARY_COLUMNS`] the cost range a cost bound is checked against starts: 5
    /// for all records', 7 for the answered records', 9 for the others'.
    cost_columns: usize,
}

/// The columns of `log_blocks` that [`Wanted::may_hold`] reads, in its order.
pub const SUMMARY_COLUMNS: &str = "first_seq, last_seq, max_created_ms, max_latency_ms, bloom, \
    min_cost, max_cost, ok_min_cost, ok_max_cost, failed_min_cost, failed_max_cost";

impl Wanted {
    /// What `f` asks, its API key resolved on `conn` as the list's SQL resolves it.
    pub fn new(conn: &Connection, f: &LogFilter) -> rusqlite::Result<Wanted> {
        let mut tags: Vec<Vec<u64>> = Vec::new();
        if let Some(v) = &f.api_key {
            tags.push(key_tags(conn, v)?);
        }
        if let Some(v) = &f.model {
            tags.push(vec![tag(&["model", v])]);
        }
        if let Some(v) = &f.provider {
            tags.push(vec![tag(&["provider", v])]);
        }
        if let Some(v) = &f.kind {
            tags.push(vec![tag(&["kind", v])]);
        }
        if let Some(v) = &f.cache_status {
            tags.push(vec![tag(&["cache_status", &v.to_ascii_uppercase()])]);
        }
        if let Some(v) = &f.user {
            tags.push(vec![metadata_tag("_user", v)]);
        }
        for (k, v) in &f.metadata {
            tags.push(vec![metadata_tag(k, v)]);
        }
        let cost_columns = match f.status.map(|s| s.range()) {
            Some((lo, hi)) if answered(lo) && answered(hi) => 7,
            Some((lo, hi)) if hi < 200 || lo >= 300 => 9,
            _ => 5,
        };
        Ok(Wanted {
            tags,
            min_cost: f.min_cost,
            max_cost: f.max_cost,
            min_latency_ms: f.min_latency_ms,
            cost_columns,
        })
    }

    /// Whether the block in `row` (of [`SUMMARY_COLUMNS`]) may hold a matching record.
    pub fn may_hold(&self, row: &Row) -> rusqlite::Result<bool> {
        let max_latency: f64 = row.get(3)?;
        let (min_cost, max_cost): (Option<f64>, Option<f64>) =
            (row.get(self.cost_columns)?, row.get(self.cost_columns + 1)?);
        if self
            .min_cost
            .is_some_and(|m| max_cost.is_none_or(|c| c < m))
            || self
                .max_cost
                .is_some_and(|m| min_cost.is_none_or(|c| c > m))
            || self.min_latency_ms.is_some_and(|m| max_latency < m)
        {
            return Ok(false);
        }
        let bloom = bloom(row)?;
        Ok(self.tags.iter().all(|any| may_hold_any(bloom, any)))
    }

    /// The ranges of `seq` (first, last) that may hold a match made between `since_ms`
    /// (inclusive) and `until_ms` (exclusive).
    pub fn ranges(
        &self,
        conn: &Connection,
        since_ms: i64,
        until_ms: i64,
    ) -> rusqlite::Result<Vec<(i64, i64)>> {
        ranges(conn, since_ms, until_ms, |row| self.may_hold(row))
    }
}

/// The tags of the keys an `api_key` filter's value stands for: the key with that id and the
/// key with that name ([`KEY_NAMED`]), as records store key ids.
fn key_tags(conn: &Connection, value: &str) -> rusqlite::Result<Vec<u64>> {
    let named: Option<String> = conn
        .prepare_cached(KEY_NAMED)?
        .query_row([value], |r| r.get(0))
        .optional()?;
    Ok(std::iter::once(value)
        .chain(named.as_deref())
        .map(key_tag)
        .collect())
}

/// Whether a block's Bloom filter may hold `tag` (an empty filter may hold anything).
fn may_hold(bloom: &[u8], tag: u64) -> bool {
    let bits = bloom.len() * 8;
    bloom.is_empty() || positions(tag, bits).all(|bit| bloom[bit / 8] & (1 << (bit % 8)) != 0)
}

/// The ranges of `seq` (first, last) that may hold records of a trace made between `since_ms`
/// (inclusive) and `until_ms` (exclusive). A trace's records are few and close in time, so this
/// replaces an index on `trace_id`, which would cost the recorder a B-tree insert per record at
/// a random place (trace ids from clients are random).
pub fn trace_ranges(
    conn: &Connection,
    trace_id: &str,
    since_ms: i64,
    until_ms: i64,
) -> rusqlite::Result<Vec<(i64, i64)>> {
    let tags = [tag(&["trace", trace_id])];
    ranges(conn, since_ms, until_ms, |row| holds_any(row, &tags))
}

/// The ranges of `seq` (first, last) that may hold records of any of the API keys `ids` made
/// since `since_ms`.
pub fn key_ranges(
    conn: &Connection,
    ids: &[String],
    since_ms: i64,
) -> rusqlite::Result<Vec<(i64, i64)>> {
    let tags: Vec<u64> = ids.iter().map(|id| key_tag(id)).collect();
    ranges(conn, since_ms, i64::MAX, |row| holds_any(row, &tags))
}

/// Whether the filter of the block in `row` (of [`SUMMARY_COLUMNS`]) may hold any of `tags`.
fn holds_any(row: &Row, tags: &[u64]) -> rusqlite::Result<bool> {
    Ok(may_hold_any(bloom(row)?, tags))
}

/// The Bloom filter of the block in `row` (of [`SUMMARY_COLUMNS`]).
fn bloom<'r>(row: &'r Row) -> rusqlite::Result<&'r [u8]> {
    Ok(row.get_ref(4)?.as_blob()?)
}

/// Whether a block's Bloom filter may hold any of `tags`.
fn may_hold_any(bloom: &[u8], tags: &[u64]) -> bool {
    tags.iter().any(|&t| may_hold(bloom, t))
}

/// The ranges of `seq` (first, last) that may hold records made between `since_ms`
/// (inclusive) and `until_ms` (exclusive) that `wanted` (given a row of [`SUMMARY_COLUMNS`])
/// looks for: the blocks it may be in, then every record past the last block.
fn ranges(
    conn: &Connection,
    since_ms: i64,
    until_ms: i64,
    wanted: impl Fn(&Row) -> rusqlite::Result<bool>,
) -> rusqlite::Result<Vec<(i64, i64)>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {SUMMARY_COLUMNS} FROM log_blocks \
         WHERE max_created_ms >= ?1 AND min_created_ms < ?2 ORDER BY first_seq"
    ))?;
    let mut rows = stmt.query(params![since_ms, until_ms])?;
    let mut ranges: Vec<(i64, i64)> = Vec::new();
    while let Some(row) = rows.next()? {
        if !wanted(row)? {
            continue;
        }
        let (first, last): (i64, i64) = (row.get(0)?, row.get(1)?);
        match ranges.last_mut() {
            Some(r) if r.1 + 1 == first => r.1 = last,
            _ => ranges.push((first, last)),
        }
    }
    ranges.push((covered(conn)? + 1, i64::MAX));
    Ok(ranges)
}

/// The last record a block summarises; the records after it are in none yet.
pub fn covered(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row(
        "SELECT COALESCE(MAX(last_seq), 0) FROM log_blocks",
        [],
        |r| r.get(0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::record::Entry;
    use crate::observe::test_support;
    use crate::store::tests::log_ids as ids;
    use crate::store::{Cipher, Store, DB_FILE};

    fn entry(i: i64) -> Entry {
        let mut e = test_support::entry_at(1_764_581_400_000 + i * 10, &format!("t{}", i % 3));
        e.record.provider = Some(if i % 1000 == 7 { "rare" } else { "openai" }.into());
        e.record.cost = Some(i as f64 / 1e6);
        e
    }

    /// A store holding 2,500 records made by [`entry`], each changed by `change`.
    fn stored(change: impl Fn(i64, &mut Entry)) -> (tempfile::TempDir, Store, Vec<Entry>) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), Cipher::new(&[7; 32])).unwrap();
        let entries: Vec<Entry> = (0..2500)
            .map(|i| {
                let mut e = entry(i);
                change(i, &mut e);
                e
            })
            .collect();
        store.log_writer().unwrap().insert(&entries).unwrap();
        (dir, store, entries)
    }

    /// Deletes the summaries `filter` (a WHERE clause, or nothing) picks.
    fn forget_blocks(dir: &tempfile::TempDir, filter: &str) {
        Connection::open(dir.path().join(DB_FILE))
            .unwrap()
            .execute(&format!("DELETE FROM log_blocks {filter}"), [])
            .unwrap();
    }

    /// Adds an API key named `name` with the id `id`.
    fn add_key(dir: &tempfile::TempDir, id: &str, name: &str) {
        Connection::open(dir.path().join(DB_FILE))
            .unwrap()
            .execute(
                "INSERT INTO api_keys (id, name, key_type, hash, masked, scopes, creation_mode, \
                 created_at, updated_at) \
                 VALUES (?1, ?2, 'organisation-service', ?1, 'm', '[]', 'api', 't', 't')",
                [id, name],
            )
            .unwrap();
    }

    /// How many stored summaries may hold a record matching `query` (filter pairs).
    fn blocks_that_may_hold(dir: &tempfile::TempDir, query: &[(&str, &str)]) -> usize {
        let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
        let f = LogFilter::from_pairs(query.iter().copied()).unwrap();
        let wanted = Wanted::new(&conn, &f).unwrap();
        let mut stmt = conn
            .prepare(&format!("SELECT {SUMMARY_COLUMNS} FROM log_blocks"))
            .unwrap();
        let mut rows = stmt.query([]).unwrap();
        let mut n = 0;
        while let Some(row) = rows.next().unwrap() {
            n += usize::from(wanted.may_hold(row).unwrap());
        }
        n
    }

    /// Ten records of the middle block have a model and an API key of their own (named
    /// `rare-name`), five of them a user of their own; the others the same model and key.
    fn rare(i: i64) -> bool {
        (1500..1510).contains(&i)
    }

    fn stored_with_rare_models_and_keys() -> (tempfile::TempDir, Store, Vec<Entry>) {
        let (dir, store, entries) = stored(|i, e| {
            if rare(i) {
                e.record.model = Some("rare-model".into());
                e.record.api_key_id = Some("key_rare".into());
            }
            if i % 2 == 0 {
                e.record.metadata.insert("_user".into(), "few".into());
            }
        });
        add_key(&dir, "key_rare", "rare-name");
        (dir, store, entries)
    }

    /// Checks that the model and API key filters list exactly the records of
    /// [`stored_with_rare_models_and_keys`] that match.
    fn check_rare_models_and_keys(store: &Store, entries: &[Entry]) {
        let newest_first = |pick: &dyn Fn(i64) -> bool| -> Vec<String> {
            let mut ids: Vec<String> = (0..2500)
                .rev()
                .filter(|&i| pick(i))
                .map(|i| entries[i as usize].record.id.clone())
                .collect();
            ids.truncate(50);
            ids
        };
        for query in [
            [("model", "rare-model")],
            [("api_key", "key_rare")],
            [("api_key", "rare-name")],
        ] {
            assert_eq!(ids(store, &query), newest_first(&rare), "{query:?}");
        }
        assert_eq!(
            ids(store, &[("user", "few"), ("model", "rare-model")]),
            newest_first(&|i| rare(i) && i % 2 == 0)
        );
        assert_eq!(
            ids(store, &[("api_key", "key_1"), ("provider", "rare")]),
            newest_first(&|i| i % 1000 == 7)
        );
        assert_eq!(
            ids(
                store,
                &[("model", "gpt-4o-2024-08-06"), ("min_cost", "0.0024")]
            ),
            newest_first(&|i| i >= 2400 && !rare(i))
        );
        for query in [[("model", "absent")], [("api_key", "absent")]] {
            assert!(ids(store, &query).is_empty(), "{query:?}");
        }
        let f = LogFilter::from_pairs([("api_key", "rare-name")]).unwrap();
        assert_eq!(store.log_count(&f).unwrap(), 10);
    }

    #[test]
    fn models_and_keys_are_found_through_the_blocks_that_may_hold_them() {
        let (dir, store, entries) = stored_with_rare_models_and_keys();
        check_rare_models_and_keys(&store, &entries);
        for query in [
            [("model", "rare-model")],
            [("api_key", "key_rare")],
            [("api_key", "rare-name")],
        ] {
            assert_eq!(blocks_that_may_hold(&dir, &query), 1, "{query:?}");
        }
        assert_eq!(blocks_that_may_hold(&dir, &[("api_key", "key_1")]), 3);
        assert_eq!(blocks_that_may_hold(&dir, &[("api_key", "absent")]), 0);
        // Records no block summarises yet are read all the same.
        forget_blocks(&dir, "WHERE first_seq > 1");
        check_rare_models_and_keys(&store, &entries);
        // The next writer summarises them with their keys.
        drop(store.log_writer().unwrap());
        assert_eq!(blocks_that_may_hold(&dir, &[("api_key", "rare-name")]), 1);
        check_rare_models_and_keys(&store, &entries);
    }

    #[test]
    fn a_store_with_model_and_key_indexes_loses_them_and_is_summarised_again() {
        let (dir, store, entries) = stored_with_rare_models_and_keys();
        drop(store);
        // As the version before the migration left the store: with both indexes, with
        // summaries whose Bloom filters hold no API key (here, nothing at all), and without
        // the payloads of the migration after it (these records have none).
        let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
        conn.execute_batch(
            "CREATE INDEX logs_model ON logs (model, created_ms);
             CREATE INDEX logs_api_key ON logs (api_key_id, created_ms);
             UPDATE log_blocks SET bloom = zeroblob(8);
             DROP TABLE log_payloads;",
        )
        .unwrap();
        let before = crate::store::migrations::latest(crate::store::db::Backend::Sqlite) - 2;
        conn.pragma_update(None, "user_version", before).unwrap();
        drop(conn);

        let store = Store::open(dir.path(), Cipher::new(&[7; 32])).unwrap();
        let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
        let indexes: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_master WHERE tbl_name = 'logs' ORDER BY name")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            indexes,
            ["logs", "logs_created", "logs_status", "logs_user"]
        );
        check_rare_models_and_keys(&store, &entries);
        drop(store.log_writer().unwrap());
        let blocks: i64 = conn
            .query_row("SELECT COUNT(*) FROM log_blocks", [], |r| r.get(0))
            .unwrap();
        assert_eq!(blocks, 3);
        assert_eq!(blocks_that_may_hold(&dir, &[("api_key", "rare-name")]), 1);
        check_rare_models_and_keys(&store, &entries);
    }

    #[test]
    fn a_keys_spend_is_read_through_the_blocks_that_may_hold_it() {
        let (dir, store, entries) = stored(|i, e| {
            let key = match i {
                _ if i % 1000 == 7 => "key_rare",
                _ if i % 2 == 0 => "key_even",
                _ => "key_odd",
            };
            e.record.api_key_id = Some(key.into());
        });
        let from_ms = entries[600].created_ms;
        let spent = |keys: Option<&[&str]>| -> Vec<(i64, String, Option<f64>)> {
            let keys: Option<Vec<String>> = keys.map(|k| k.iter().map(|k| k.to_string()).collect());
            let mut spent: Vec<_> = store
                .spent_records(from_ms, keys.as_deref())
                .unwrap()
                .into_iter()
                .map(|r| (r.created_ms, r.api_key, r.cost))
                .collect();
            spent.sort_by_key(|r| r.0);
            spent
        };
        let all = spent(None);
        assert_eq!(all.len(), 1900);
        let check = || {
            let key_sets: [&[&str]; 3] = [&["key_rare"], &["key_rare", "key_even"], &["absent"]];
            for keys in key_sets {
                let of_keys: Vec<_> = all
                    .iter()
                    .filter(|r| keys.contains(&r.1.as_str()))
                    .cloned()
                    .collect();
                assert_eq!(spent(Some(keys)), of_keys, "{keys:?}");
            }
        };
        check();
        assert_eq!(spent(Some(&["key_rare"])).len(), 2);
        // Records no block summarises yet are read all the same.
        forget_blocks(&dir, "WHERE first_seq > 1");
        check();
    }

    #[test]
    fn a_trace_is_found_through_the_blocks_that_may_hold_it() {
        let (dir, store, entries) = stored(|i, e| e.record.trace_id = format!("trace-{}", i % 700));
        let of_trace = |n: i64| -> Vec<String> {
            (0..2500)
                .filter(|i| i % 700 == n)
                .map(|i| entries[i as usize].record.id.clone())
                .collect()
        };
        let check = |store: &Store| {
            let found: Vec<String> = store
                .trace_records("trace-5")
                .unwrap()
                .into_iter()
                .map(|r| r.id)
                .collect();
            assert_eq!(found, of_trace(5));
            let mut newest_first = of_trace(699);
            newest_first.reverse();
            assert_eq!(ids(store, &[("trace_id", "trace-699")]), newest_first);
            assert!(store.trace_records("absent").unwrap().is_empty());
            let f = LogFilter::from_pairs([("trace_id", "trace-6"), ("provider", "openai")]);
            assert_eq!(store.log_count(&f.unwrap()).unwrap(), 4);
        };
        check(&store);
        // Records no block summarises yet are read all the same.
        forget_blocks(&dir, "WHERE first_seq > 1");
        check(&store);
    }

    #[test]
    fn a_cost_bound_with_a_status_checks_that_status_class_costs() {
        // Every block holds free errors and paid answers, but no free answer and, but for
        // one, no paid error.
        let (_dir, store, entries) = stored(|i, e| {
            e.record.cost = Some((i + 1) as f64 / 1e6);
            if i % 10 == 3 {
                e.record.status = 500;
                e.record.cost = Some(if i == 1203 { 0.5 } else { 0.0 });
            }
        });
        let newest_first = |pick: &dyn Fn(&Entry) -> bool| -> Vec<String> {
            let mut ids: Vec<String> = entries
                .iter()
                .filter(|e| pick(e))
                .map(|e| e.record.id.clone())
                .collect();
            ids.reverse();
            ids.truncate(50);
            ids
        };
        assert!(ids(&store, &[("status", "200"), ("max_cost", "0")]).is_empty());
        assert_eq!(
            ids(&store, &[("status", "5xx"), ("min_cost", "0.1")]),
            newest_first(&|e| e.record.status == 500 && e.record.cost == Some(0.5))
        );
        assert_eq!(
            ids(&store, &[("status", "5xx"), ("max_cost", "0")]),
            newest_first(&|e| e.record.status == 500 && e.record.cost == Some(0.0))
        );
        assert_eq!(
            ids(&store, &[("max_cost", "0")]),
            newest_first(&|e| e.record.cost == Some(0.0))
        );
        assert_eq!(
            ids(&store, &[("status", "2xx"), ("min_cost", "0.0024")]),
            newest_first(&|e| e.record.status == 200 && e.record.cost >= Some(0.0024))
        );
    }

    #[test]
    fn records_stored_before_the_summaries_are_read_then_covered() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), Cipher::new(&[7; 32])).unwrap();
        let entries: Vec<Entry> = (0..2500).map(entry).collect();
        let newest_first = |pick: &dyn Fn(i64) -> bool| -> Vec<String> {
            (0..2500)
                .rev()
                .filter(|&i| pick(i))
                .map(|i| entries[i as usize].record.id.clone())
                .collect()
        };
        let rare = newest_first(&|i| i % 1000 == 7);
        let costly = newest_first(&|i| i >= 2490 && i % 3 == 1);
        let check = |store: &Store| {
            assert_eq!(ids(store, &[("provider", "rare")]), rare);
            assert_eq!(
                ids(store, &[("min_cost", "0.00249"), ("metadata.team", "t1")]),
                costly
            );
            assert!(ids(store, &[("provider", "absent")]).is_empty());
        };
        store.log_writer().unwrap().insert(&entries).unwrap();
        let blocks = || -> i64 {
            let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
            let n = conn.query_row("SELECT COUNT(*) FROM log_blocks", [], |r| r.get(0));
            n.unwrap()
        };
        assert_eq!(blocks(), 3);
        check(&store);
        // As if a version without summaries had stored them: they are read all the same.
        forget_blocks(&dir, "");
        check(&store);
        // The next writer summarises them.
        drop(store.log_writer().unwrap());
        assert_eq!(blocks(), 3);
        check(&store);
    }
}
