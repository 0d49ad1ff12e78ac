//! Request records, their bodies and feedback. Records are written by one writer (the
//! recorder's thread, on its own connection) and read on another connection, so a long query
//! never holds up admin writes or the recorder.

use std::borrow::Cow;

use rusqlite::params_from_iter;
use serde_json::{Map, Value};

use super::attempts;
use super::db::{self, params, Backend, Db, Param, Row, Value as DbValue};
use super::listen::RECORDS;
use super::log_blocks::{self, Blocks, Summarised, Wanted, SUMMARY_COLUMNS};
use super::packed;
use super::partitions::{day_of, Partitions};
use super::payloads::{self, Parts};
use super::{new_id, StoreError, StoreResult};
use crate::api::logs::{
    parse_time_bound, CreateFeedback, Feedback, LogFilter, LogRecord, UsageGroup,
};
use crate::observe::record::{format_ms, Entry};

/// Every column a record is read from, in [`read_record`]'s order.
const COLUMNS: &str = "seq, id, kind, created_ms, trace_id, span_id, parent_span_id, span_name, \
    api_key_id, api_key_name, integration, provider, model_requested, model, endpoint, status, \
    latency_ms, ttft_ms, input_tokens, output_tokens, cached_tokens, cost, cache_status, \
    retry_count, last_used_option, metadata, stream, outcome, error, attempts, bodies_logged, \
    hook_results, cost_saved";

/// The insert of records, without its values, which are [`record_params`].
const INSERT_INTO: &str = "INSERT INTO logs (id, kind, created_ms, trace_id, span_id, \
    parent_span_id, span_name, api_key_id, api_key_name, integration, provider, \
    model_requested, model, endpoint, status, latency_ms, ttft_ms, input_tokens, \
    output_tokens, cached_tokens, cost, cache_status, retry_count, last_used_option, metadata, \
    \"user\", stream, outcome, error, attempts, bodies_logged, hook_results, cost_saved)";
/// Values per record.
const RECORD_VALUES: usize = 33;
/// The columns of `logs` that SQLite kept packed before payloads (store/packed.rs).
pub(super) const PACKED_COLUMNS: &[&str] = &["hook_results"];

/// A record's columns that are not its fields as they are, made before its values borrow them.
struct Encoded<'a> {
    metadata: String,
    attempts: String,
    /// Postgres keeps the hook results' JSON in the row (and compresses large values itself);
    /// SQLite keeps a mark there, and the JSON in `payload_results`.
    hook_results: Param<'a>,
    payload_results: Option<Cow<'a, str>>,
    user: Option<&'a str>,
}

fn encode(e: &Entry, backend: Backend) -> Encoded<'_> {
    let r = &e.record;
    let results = match &e.hook_results_json {
        Some(encoded) => Some(Cow::Borrowed(encoded.as_str())),
        None => r.hook_results.as_ref().map(|h| Cow::Owned(h.to_json())),
    };
    let (hook_results, payload_results) = match (results, backend) {
        (None, _) => (Param::Null, None),
        (Some(json), Backend::Sqlite) => {
            (Param::Blob(payloads::RESULTS_IN_PAYLOAD.into()), Some(json))
        }
        (Some(json), Backend::Postgres) => (Param::Text(json), None),
    };
    Encoded {
        metadata: serde_json::to_string(&r.metadata).unwrap_or_default(),
        attempts: attempts::encode(r),
        hook_results,
        payload_results,
        user: r.metadata.get("_user").and_then(Value::as_str),
    }
}

/// The values of [`INSERT_INTO`].
fn record_params<'a>(e: &'a Entry, enc: &'a Encoded) -> [Param<'a>; RECORD_VALUES] {
    let r = &e.record;
    params![
        r.id,
        r.kind,
        e.created_ms,
        r.trace_id,
        r.span_id,
        r.parent_span_id,
        r.span_name,
        r.api_key_id,
        r.api_key_name,
        r.integration,
        r.provider,
        r.model_requested,
        r.model,
        r.endpoint,
        r.status,
        r.latency_ms,
        r.ttft_ms,
        r.input_tokens,
        r.output_tokens,
        r.cached_tokens,
        r.cost,
        r.cache_status,
        r.retry_count,
        r.last_used_option,
        enc.metadata,
        enc.user,
        r.stream,
        r.outcome,
        r.error,
        enc.attempts,
        r.bodies_logged,
        enc.hook_results,
        r.cost_saved,
    ]
}

/// The recorder's connection: the only one that inserts records.
pub struct LogWriter {
    db: Db,
    index: Index,
}

/// What the writer keeps up beside the records so that lists find them fast.
enum Index {
    /// SQLite: summaries of blocks of records (store/log_blocks.rs).
    Blocks(Blocks),
    /// Postgres: the days that have partitions.
    Partitions(Partitions),
}

impl LogWriter {
    pub(super) fn new(mut db: Db) -> StoreResult<LogWriter> {
        let index = match &mut db {
            Db::Sqlite(conn) => {
                // The last pages of the table and indexes change in every commit;
                // checkpointing less often copies each of them into the database file once
                // instead of many times.
                conn.pragma_update(None, "wal_autocheckpoint", 10_000)?;
                // A write lock held longer than this elsewhere means the store cannot take
                // records now: the recorder holds them and retries, and says so sooner.
                conn.busy_timeout(std::time::Duration::from_secs(1))?;
                let tx = conn.transaction()?;
                let blocks = Blocks::cover(&tx)?;
                tx.commit()?;
                Index::Blocks(blocks)
            }
            Db::Pg(_) => {
                let mut partitions = Partitions::default();
                let today = day_of(crate::observe::record::now_ms());
                partitions.ensure(&mut db, [today, today + 1])?;
                Index::Partitions(partitions)
            }
        };
        Ok(LogWriter { db, index })
    }

    /// Inserts a batch in one transaction; returns each entry's `seq` (its cursor).
    pub fn insert(&mut self, entries: &[Entry]) -> StoreResult<Vec<i64>> {
        match (&mut self.db, &mut self.index) {
            (Db::Sqlite(conn), Index::Blocks(blocks)) => insert_sqlite(conn, blocks, entries),
            (db, Index::Partitions(partitions)) => {
                let inserted = insert_partitioned(db, partitions, entries);
                if inserted.is_err() {
                    // Another node may have dropped a partition this one knew of.
                    partitions.forget();
                }
                inserted
            }
            (_, Index::Blocks(_)) => unreachable!("block summaries are SQLite's"),
        }
    }

    /// One round trip to the database, to learn whether it answers.
    pub fn ping(&mut self) -> StoreResult<()> {
        self.db.query_row("SELECT 1", &[], |r| r.get::<i64>(0))?;
        Ok(())
    }

    /// Deletes up to `max` of the oldest records made before `before_ms`; returns how many.
    /// Small batches keep each write transaction short, so the recorder is never held up long.
    /// On Postgres, the partitions of whole days before `before_ms` are dropped first.
    pub fn prune(&mut self, before_ms: i64, max: usize) -> StoreResult<usize> {
        if let Index::Partitions(partitions) = &mut self.index {
            partitions.drop_before(&mut self.db, before_ms)?;
        }
        let mut tx = self.db.transaction()?;
        let last: Option<i64> = tx.query_row(
            "SELECT MAX(seq) FROM (SELECT seq FROM logs WHERE created_ms < ?1 \
             ORDER BY created_ms LIMIT ?2) AS due",
            &params![before_ms, max],
            |r| r.get(0),
        )?;
        let Some(last) = last else {
            return Ok(0);
        };
        // Records are made in time order, so those due are (nearly all) the oldest seqs; a
        // custom record backdated past the cutoff waits for a later round.
        tx.execute(
            "DELETE FROM log_bodies WHERE seq IN \
             (SELECT seq FROM logs WHERE seq <= ?1 AND created_ms < ?2)",
            &params![last, before_ms],
        )?;
        let n = tx.execute(
            "DELETE FROM logs WHERE seq <= ?1 AND created_ms < ?2",
            &params![last, before_ms],
        )?;
        if let Db::Sqlite(conn) = &*tx {
            log_blocks::prune(conn, last, before_ms)?;
            payloads::prune(conn, last)?;
        }
        tx.commit()?;
        Ok(n)
    }
}

/// SQLite's hot path: statements prepared once, the rowid as the seq, the payloads and the
/// block summaries written in the same transaction.
fn insert_sqlite(
    conn: &mut rusqlite::Connection,
    current: &mut Blocks,
    entries: &[Entry],
) -> StoreResult<Vec<i64>> {
    let tx = conn.transaction()?;
    let mut seqs = Vec::with_capacity(entries.len());
    let mut results = Vec::with_capacity(entries.len());
    // Changed only once the transaction commits.
    let mut blocks = current.clone();
    {
        let mut insert = tx.prepare_cached(&format!(
            "{INSERT_INTO} VALUES ({})",
            super::placeholders(1, RECORD_VALUES)
        ))?;
        for e in entries {
            let encoded = encode(e, Backend::Sqlite);
            insert.execute(params_from_iter(record_params(e, &encoded).iter()))?;
            let seq = tx.last_insert_rowid();
            blocks.add(seq, &Summarised::of(e.created_ms, &e.record));
            seqs.push(seq);
            results.push(encoded.payload_results);
        }
    }
    let parts = entries.iter().zip(&results).map(|(e, results)| Parts {
        request: e.request_body.as_deref(),
        response: e.response_body.as_deref(),
        results: results.as_deref().map(str::as_bytes),
    });
    payloads::save(&tx, seqs.iter().copied().zip(parts))?;
    blocks.save(&tx)?;
    tx.commit()?;
    *current = blocks;
    Ok(seqs)
}

/// Held by the transaction that inserts records on Postgres.
const RECORDS_LOCK: i64 = 0x746f_6c6c_6c6f_6773;

/// The most rows per insert on Postgres (one round trip each).
const PG_CHUNK: usize = 128;

/// Postgres: the partitions of the batch's days made first, then the records and their bodies.
fn insert_partitioned<'a>(
    db: &mut Db,
    partitions: &mut Partitions,
    entries: &'a [Entry],
) -> StoreResult<Vec<i64>> {
    partitions.ensure(db, entries.iter().map(|e| day_of(e.created_ms)))?;
    let encoded: Vec<Encoded> = entries
        .iter()
        .map(|e| encode(e, Backend::Postgres))
        .collect();
    let values: Vec<Param> = entries
        .iter()
        .zip(&encoded)
        .flat_map(|(e, enc)| record_params(e, enc))
        .collect();
    let mut tx = db.transaction()?;
    // Nodes take turns, so seqs are committed in the order they are handed out: a reader
    // that sees a seq sees every committed record below it, and a tail that resumes after a
    // seq misses nothing (a node's seqs would otherwise commit between another's).
    tx.execute("SELECT pg_advisory_xact_lock(?1)", &params![RECORDS_LOCK])?;
    let seqs = insert_rows(
        &mut tx,
        INSERT_INTO,
        RECORD_VALUES,
        &values,
        " RETURNING seq",
    )?;
    let body = |b: &'a Option<axum::body::Bytes>| {
        b.as_deref().map_or(Param::Null, |b| Param::Blob(b.into()))
    };
    let bodies: Vec<Param> = entries
        .iter()
        .zip(&seqs)
        .filter(|(e, _)| e.request_body.is_some() || e.response_body.is_some())
        .flat_map(|(e, seq)| {
            [
                Param::Int(*seq),
                Param::Int(e.created_ms),
                body(&e.request_body),
                body(&e.response_body),
            ]
        })
        .collect();
    let into = "INSERT INTO log_bodies (seq, created_ms, request, response)";
    insert_rows(&mut tx, into, 4, &bodies, "")?;
    if let Some(last) = seqs.iter().max() {
        // Delivered to the listeners only once the transaction commits.
        tx.execute(
            &format!("SELECT pg_notify('{RECORDS}', ?1)"),
            &params![last.to_string()],
        )?;
    }
    tx.commit()?;
    Ok(seqs)
}

/// Inserts rows of `columns` values each, up to [`PG_CHUNK`] rows per statement, in chunks of
/// a power of two rows so that a connection prepares few different statements. Returns what
/// `returning` gives, in the order of the rows.
pub(super) fn insert_rows(
    tx: &mut Db,
    into: &str,
    columns: usize,
    values: &[Param],
    returning: &str,
) -> StoreResult<Vec<i64>> {
    let mut out = Vec::with_capacity(values.len() / columns);
    let mut rest = values;
    while !rest.is_empty() {
        let rows = PG_CHUNK.min(1 << (rest.len() / columns).ilog2());
        let (chunk, after) = rest.split_at(rows * columns);
        rest = after;
        let placeholders = (0..rows)
            .map(|i| format!("({})", super::placeholders(1 + i * columns, columns)))
            .collect::<Vec<_>>()
            .join(", ");
        out.extend(tx.query_map(
            &format!("{into} VALUES {placeholders}{returning}"),
            chunk,
            |r| r.get::<i64>(0),
        )?);
    }
    Ok(out)
}

/// A record filter as SQL: the WHERE clause and its parameters.
struct Clause {
    sql: String,
    params: Vec<Param<'static>>,
    /// The bounds of `created_ms` the conditions set: since (inclusive), until (exclusive).
    since_ms: i64,
    until_ms: i64,
}

impl Clause {
    fn new() -> Clause {
        Clause {
            sql: String::from("WHERE TRUE"),
            params: Vec::new(),
            since_ms: i64::MIN,
            until_ms: i64::MAX,
        }
    }

    fn push(&mut self, condition: &str, values: impl IntoIterator<Item = Param<'static>>) {
        self.sql.push_str(" AND ");
        self.sql.push_str(condition);
        self.params.extend(values);
    }

    /// Restricts the records to `ranges` of `seq` (first, last) that hold every match, read by
    /// seq: an index the planner might choose for another condition (the time's or a user's)
    /// could lead through far more records. More than [`MAX_RANGES`] are left out: the query
    /// then reads as if there were no ranges.
    fn within(&mut self, ranges: Vec<(i64, i64)>) {
        if ranges.len() > MAX_RANGES {
            return;
        }
        let condition = vec!["seq BETWEEN ? AND ?"; ranges.len()].join(" OR ");
        self.push(
            &format!("({condition})"),
            ranges
                .into_iter()
                .flat_map(|(first, last)| [Param::Int(first), Param::Int(last)]),
        );
        // `FROM logs {sql}` takes the hint.
        self.sql.insert_str(0, "NOT INDEXED ");
    }
}

/// The most ranges of `seq` a query reads by: each range nests the condition one level deeper,
/// and SQLite refuses an expression nested more than 1,000 levels.
const MAX_RANGES: usize = 500;

/// The key an `api_key` filter's value names when it is a name rather than an id: the oldest
/// key of that name.
pub(super) const KEY_NAMED: &str =
    "SELECT id FROM api_keys WHERE name = ? ORDER BY created_at, id LIMIT 1";

fn text(s: &str) -> Param<'static> {
    Param::Text(s.to_string().into())
}

/// Turns a filter into SQL for `backend`; times may be relative to `now`.
fn clause(f: &LogFilter, now: time::OffsetDateTime, backend: Backend) -> StoreResult<Clause> {
    let mut c = Clause::new();
    let bound = |v: &str| -> StoreResult<i64> {
        let t = parse_time_bound(v, now).map_err(StoreError::Invalid)?;
        Ok((t.unix_timestamp_nanos() / 1_000_000) as i64)
    };
    if let Some(v) = &f.since {
        c.since_ms = bound(v)?;
        c.push("created_ms >= ?", [Param::Int(c.since_ms)]);
    }
    if let Some(v) = &f.until {
        c.until_ms = bound(v)?;
        c.push("created_ms < ?", [Param::Int(c.until_ms)]);
    }
    if let Some(v) = &f.model {
        c.push("model = ?", [text(v)]);
    }
    if let Some(v) = &f.provider {
        c.push("provider = ?", [text(v)]);
    }
    let status = f.status.map(|s| s.range());
    if let Some((lo, hi)) = status {
        if lo == hi {
            c.push("status = ?", [Param::Int(lo.into())]);
        } else {
            c.push(
                "status BETWEEN ? AND ?",
                [Param::Int(lo.into()), Param::Int(hi.into())],
            );
        }
        // The status index holds only the records other than 200 (migration 11); the planner
        // uses it only when the query says so in these words.
        if !(lo..=hi).contains(&200) {
            c.push("status <> 200", []);
        }
    }
    if let Some(v) = &f.api_key {
        c.push(
            &format!("api_key_id IN (?, ({KEY_NAMED}))"),
            [text(v), text(v)],
        );
    }
    if let Some(v) = &f.trace_id {
        c.push("trace_id = ?", [text(v)]);
    }
    if let Some(v) = &f.user {
        c.push("\"user\" = ?", [text(v)]);
    }
    for (k, v) in &f.metadata {
        match backend {
            _ if k == "_user" => c.push("\"user\" = ?", [text(v)]),
            Backend::Sqlite => c.push(
                "json_extract(metadata, ?) = ?",
                [text(&json_path(k)), text(v)],
            ),
            // Served by the GIN index on metadata.
            Backend::Postgres => c.push(
                "metadata::jsonb @> jsonb_build_object(?::text, ?::text)",
                [text(k), text(v)],
            ),
        }
    }
    // Failed requests cost nothing, so "answered and free" matches few records where each
    // condition alone matches many; Postgres's planner, which takes conditions as independent,
    // then reads every partition. Its `ok_cost` (migration 12) is the cost of 2xx records only,
    // with statistics of its own.
    let answered = status.is_some_and(|(lo, hi)| lo >= 200 && hi < 300);
    let cost = match backend {
        Backend::Postgres if answered => "ok_cost",
        _ => "cost",
    };
    if let Some(v) = f.min_cost {
        c.push(&format!("{cost} >= ?"), [Param::Real(v)]);
    }
    if let Some(v) = f.max_cost {
        c.push(&format!("{cost} <= ?"), [Param::Real(v)]);
    }
    if let Some(v) = f.min_latency_ms {
        c.push("latency_ms >= ?", [Param::Real(v)]);
    }
    if let Some(v) = &f.cache_status {
        let status = v.to_ascii_uppercase();
        // Postgres's cache-status index leaves out uncached records (migration 12).
        if status != "DISABLED" {
            c.push("cache_status <> 'DISABLED'", []);
        }
        c.push("cache_status = ?", [text(&status)]);
    }
    if let Some(v) = &f.kind {
        c.push("kind = ?", [text(v)]);
    }
    Ok(c)
}

/// [`clause`] for a query on `conn` (`FROM logs {sql}`): a trace's records are found through
/// the blocks that may hold them, as there is no index on `trace_id`.
fn clause_on(db: &Db, f: &LogFilter) -> StoreResult<Clause> {
    let mut c = clause(f, time::OffsetDateTime::now_utc(), db.backend())?;
    if let (Db::Sqlite(conn), Some(trace_id)) = (db, &f.trace_id) {
        c.within(log_blocks::trace_ranges(
            conn, trace_id, c.since_ms, c.until_ms,
        )?);
    }
    Ok(c)
}

/// [`clause_on`] for a query that reads every match (a count, usage totals): on SQLite, a
/// filter that the block summaries serve reads only the blocks that may hold a match, unless
/// it names a user with few records (read through the user index).
fn clause_of_all(db: &Db, f: &LogFilter) -> StoreResult<Clause> {
    let mut c = clause_on(db, f)?;
    if let Db::Sqlite(conn) = db {
        if log_blocks::serves(f) && !few_of_user(conn, f)? {
            c.within(Wanted::new(conn, f)?.ranges(conn, c.since_ms, c.until_ms)?);
        }
    }
    Ok(c)
}

/// `$."key"`: a JSON path naming one top-level key, whatever characters it has.
fn json_path(key: &str) -> String {
    format!("$.{}", Value::String(key.to_string()))
}

/// A page ends at a record; the next page starts after it: `CREATED_MS-SEQ`.
fn cursor(value: &str) -> StoreResult<(i64, i64)> {
    value
        .split_once('-')
        .and_then(|(ms, seq)| Some((ms.parse().ok()?, seq.parse().ok()?)))
        .ok_or_else(|| {
            StoreError::Invalid(format!(
                "cursor {value:?} is not one this server gave out; pass next_cursor from a previous page"
            ))
        })
}

/// A record as its row gives it; [`complete`] adds what the row does not hold.
struct Stored {
    seq: i64,
    record: LogRecord,
    /// SQLite: the hook results are in the record's payload (store/payloads.rs).
    results_in_payload: bool,
}

fn read_record(row: &Row) -> db::Result<Stored> {
    let json_map = |i: usize| -> db::Result<Map<String, Value>> {
        let text: String = row.get(i)?;
        Ok(serde_json::from_str(&text).unwrap_or_default())
    };
    let stored_attempts: String = row.get(29)?;
    let results = row.value(31)?;
    let results_in_payload =
        matches!(results, DbValue::Blob(b) if b == payloads::RESULTS_IN_PAYLOAD);
    let mut record = LogRecord {
        id: row.get(1)?,
        kind: row.get(2)?,
        created_at: format_ms(row.get(3)?),
        trace_id: row.get(4)?,
        span_id: row.get(5)?,
        parent_span_id: row.get(6)?,
        span_name: row.get(7)?,
        api_key_id: row.get(8)?,
        api_key_name: row.get(9)?,
        integration: row.get(10)?,
        provider: row.get(11)?,
        model_requested: row.get(12)?,
        model: row.get(13)?,
        endpoint: row.get(14)?,
        status: row.get(15)?,
        latency_ms: row.get(16)?,
        ttft_ms: row.get(17)?,
        input_tokens: row.get(18)?,
        output_tokens: row.get(19)?,
        cached_tokens: row.get(20)?,
        cost: row.get(21)?,
        cache_status: row.get(22)?,
        retry_count: row.get(23)?,
        last_used_option: row.get(24)?,
        metadata: json_map(25)?,
        stream: row.get(26)?,
        outcome: row.get(27)?,
        error: row.get(28)?,
        attempts: Vec::new(),
        bodies_logged: row.get(30)?,
        // Unreadable results (damaged in storage) leave the rest of the record readable.
        hook_results: (!results_in_payload)
            .then(|| packed::text(results).ok().flatten())
            .flatten()
            .and_then(|text| serde_json::from_str(&text).ok()),
        cost_saved: row.get(32)?,
        request_body: None,
        response_body: None,
    };
    record.attempts = attempts::decode(&stored_attempts, &record);
    Ok(Stored {
        seq: row.get(0)?,
        results_in_payload,
        record,
    })
}

/// The records of `rows` with their hook results from their payloads and, if asked, their
/// bodies.
fn complete(
    db: &mut Db,
    rows: Vec<Stored>,
    with_bodies: bool,
) -> StoreResult<Vec<(i64, LogRecord)>> {
    let mut out = Vec::with_capacity(rows.len());
    let mut reader = payloads::Reader::default();
    for Stored {
        seq,
        mut record,
        results_in_payload,
    } in rows
    {
        let mut bodies_found = false;
        if let Db::Sqlite(conn) = &*db {
            if results_in_payload || with_bodies {
                let parts = reader.parts(conn, seq)?.unwrap_or_default();
                if results_in_payload {
                    record.hook_results = parts
                        .results
                        .and_then(|json| serde_json::from_slice(json).ok());
                }
                if with_bodies && (parts.request.is_some() || parts.response.is_some()) {
                    record.request_body = body_value(parts.request);
                    record.response_body = body_value(parts.response);
                    bodies_found = true;
                }
            }
        }
        if with_bodies && !bodies_found {
            add_bodies(db, seq, &mut record)?;
        }
        out.push((seq, record));
    }
    Ok(out)
}

/// Records an index may lead to before reading them that way stops beating the blocks.
const FEW: i64 = 5000;

/// Whether the filter names a user with fewer than [`FEW`] records: reading them through the
/// user index (already newest first) beats reading the blocks they are in.
fn few_of_user(conn: &rusqlite::Connection, f: &LogFilter) -> StoreResult<bool> {
    let user = f.user.as_deref().or_else(|| {
        f.metadata
            .iter()
            .find_map(|(k, v)| (k == "_user").then_some(v.as_str()))
    });
    let Some(user) = user else {
        return Ok(false);
    };
    let n: i64 = conn
        .prepare_cached(&format!(
            "SELECT COUNT(*) FROM (SELECT 1 FROM logs INDEXED BY logs_user \
             WHERE user = ?1 LIMIT {FEW})"
        ))?
        .query_row([user], |r| r.get(0))?;
    Ok(n < FEW)
}

/// The `n` newest records matching `c`, read block by block (see [`log_blocks`]): the blocks
/// that may hold a match, from the newest, until no block left can hold a newer record than
/// the `n`th found.
fn newest_by_blocks(
    conn: &rusqlite::Connection,
    f: &LogFilter,
    c: Clause,
    n: usize,
) -> StoreResult<Vec<Stored>> {
    // One snapshot: a commit between reading the records past the last block and reading the
    // summaries could save a block over some of them, which would then be read twice.
    let tx = conn.unchecked_transaction()?;
    let mut scan = tx.prepare(&format!(
        "SELECT {COLUMNS} FROM logs NOT INDEXED {} AND seq BETWEEN ? AND ? \
         ORDER BY created_ms DESC, seq DESC LIMIT {n}",
        c.sql
    ))?;
    // With each record's created_ms: newest first, at most n.
    type Found = Vec<(i64, Stored)>;
    let mut found = Vec::new();
    // Adds the matches among the records from `first` to `last` (by seq).
    let mut read = |found: &mut Found, first: i64, last: i64| -> StoreResult<()> {
        let range = [Param::Int(first), Param::Int(last)];
        let params = c.params.iter().chain(&range);
        let mut rows = scan.query(params_from_iter(params))?;
        while let Some(row) = rows.next()? {
            let row = Row::Sqlite(row);
            found.push((row.get(3)?, read_record(&row)?));
        }
        found.sort_unstable_by_key(|(ms, stored)| std::cmp::Reverse((*ms, stored.seq)));
        found.truncate(n);
        Ok(())
    };
    read(&mut found, log_blocks::covered(&tx)? + 1, i64::MAX)?;
    let wanted = Wanted::new(&tx, f)?;
    let mut blocks = tx.prepare(&format!(
        "SELECT {SUMMARY_COLUMNS} FROM log_blocks WHERE max_created_ms >= ?1 \
         AND min_created_ms < ?2 ORDER BY max_created_ms DESC"
    ))?;
    let mut summaries = blocks.query(params![c.since_ms, c.until_ms])?;
    while let Some(block) = summaries.next()? {
        let newest: i64 = block.get(2)?;
        if found.len() == n && found[n - 1].0 > newest {
            break;
        }
        if wanted.may_hold(block)? {
            read(&mut found, block.get(0)?, block.get(1)?)?;
        }
    }
    Ok(found.into_iter().map(|(_, stored)| stored).collect())
}

/// A stored body: JSON when it parses, else the text as a string.
fn body_value(bytes: Option<&[u8]>) -> Option<Value> {
    let bytes = bytes?;
    Some(
        serde_json::from_slice(bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned())),
    )
}

/// Fills in a record's bodies from its `log_bodies` row, if it has one (on SQLite, only
/// records written before payloads do).
fn add_bodies(conn: &mut Db, seq: i64, record: &mut LogRecord) -> StoreResult<()> {
    let bodies = conn.query_opt(
        "SELECT request, response FROM log_bodies WHERE seq = ?1",
        &params![seq],
        |r| Ok((r.get::<Option<Vec<u8>>>(0)?, r.get::<Option<Vec<u8>>>(1)?)),
    )?;
    if let Some((req, resp)) = bodies {
        record.request_body = body_value(req.as_deref());
        record.response_body = body_value(resp.as_deref());
    }
    Ok(())
}

/// The nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// What a usage breakdown groups by.
pub enum GroupBy {
    Model,
    Provider,
    User,
    ApiKey,
    Metadata(String),
    /// Time buckets of this many milliseconds, named by their start.
    Time(i64),
}

impl super::Store {
    pub fn log_writer(&self) -> StoreResult<LogWriter> {
        LogWriter::new(super::connect(&self.location)?)
    }

    pub(super) fn logs_conn(&self) -> std::sync::MutexGuard<'_, Db> {
        self.logs_conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A page of records matching `f`, newest first, and the cursor of the next page.
    pub fn logs(&self, f: &LogFilter) -> StoreResult<(Vec<LogRecord>, Option<String>)> {
        let mut conn = self.logs_conn();
        let mut c = clause_on(&conn, f)?;
        if let Some(v) = &f.cursor {
            let (ms, seq) = cursor(v)?;
            c.push(
                "(created_ms, seq) < (?, ?)",
                [Param::Int(ms), Param::Int(seq)],
            );
            c.until_ms = c.until_ms.min(ms.saturating_add(1));
        }
        let limit = f.limit();
        // On SQLite, a filter no index serves in time order is read through the block
        // summaries, unless its user has few records.
        let (by_blocks, by_user) = match &*conn {
            Db::Sqlite(sqlite) if log_blocks::serves(f) => {
                let few = few_of_user(sqlite, f)?;
                (!few, few)
            }
            _ => (false, false),
        };
        let mut rows = match &mut *conn {
            Db::Sqlite(sqlite) if by_blocks => newest_by_blocks(sqlite, f, c, limit as usize + 1)?,
            db => {
                let from = if by_user {
                    "logs INDEXED BY logs_user"
                } else {
                    "logs"
                };
                db.query_map(
                    &format!(
                        "SELECT {COLUMNS} FROM {from} {} ORDER BY created_ms DESC, seq DESC LIMIT {}",
                        c.sql,
                        limit + 1
                    ),
                    &c.params,
                    read_record,
                )?
            }
        };
        let next = (rows.len() > limit as usize).then(|| {
            rows.truncate(limit as usize);
            rows.last().and_then(|last| {
                let t = super::parse_time(&last.record.created_at)?;
                Some(format!(
                    "{}-{}",
                    t.unix_timestamp_nanos() / 1_000_000,
                    last.seq
                ))
            })
        });
        let records = complete(&mut conn, rows, f.include_bodies)?
            .into_iter()
            .map(|(_, r)| r)
            .collect();
        Ok((records, next.flatten()))
    }

    pub fn log_count(&self, f: &LogFilter) -> StoreResult<u64> {
        let mut conn = self.logs_conn();
        let c = clause_of_all(&conn, f)?;
        super::total(&mut conn, "logs", &c.sql, &c.params)
    }

    /// Records after `seq` (oldest first) that match `f`: what a tail missed while away.
    pub fn logs_after(
        &self,
        seq: i64,
        f: &LogFilter,
        limit: u32,
    ) -> StoreResult<Vec<(i64, LogRecord)>> {
        let mut conn = self.logs_conn();
        let mut c = clause_on(&conn, f)?;
        c.push("seq > ?", [Param::Int(seq)]);
        let rows = conn.query_map(
            &format!(
                "SELECT {COLUMNS} FROM logs {} ORDER BY seq LIMIT {limit}",
                c.sql
            ),
            &c.params,
            read_record,
        )?;
        complete(&mut conn, rows, false)
    }

    /// One record with its bodies.
    pub fn log(&self, id: &str) -> StoreResult<LogRecord> {
        let missing = || StoreError::NotFound(format!("no log with id {id:?}"));
        let created_ms = super::id_time(id).ok_or_else(missing)?;
        let mut conn = self.logs_conn();
        let stored = conn
            .query_opt(
                &format!("SELECT {COLUMNS} FROM logs WHERE created_ms = ?1 AND id = ?2"),
                &params![created_ms, id],
                read_record,
            )?
            .ok_or_else(missing)?;
        let (_, record) = complete(&mut conn, vec![stored], true)?
            .pop()
            .expect("one record in, one out");
        Ok(record)
    }

    /// Every record of a trace, oldest first.
    pub fn trace_records(&self, trace_id: &str) -> StoreResult<Vec<LogRecord>> {
        let mut conn = self.logs_conn();
        let f = LogFilter {
            trace_id: Some(trace_id.to_string()),
            ..LogFilter::default()
        };
        let c = clause_on(&conn, &f)?;
        let rows = conn.query_map(
            &format!(
                "SELECT {COLUMNS} FROM logs {} ORDER BY created_ms, seq",
                c.sql
            ),
            &c.params,
            read_record,
        )?;
        let records = complete(&mut conn, rows, false)?;
        Ok(records.into_iter().map(|(_, record)| record).collect())
    }

    pub fn add_feedback(&self, f: &CreateFeedback, created_ms: i64) -> StoreResult<Feedback> {
        let feedback = Feedback {
            id: new_id(),
            trace_id: f.trace_id.clone(),
            value: f.value,
            weight: f.weight.unwrap_or(1.0),
            metadata: f.metadata.clone(),
            created_at: format_ms(created_ms),
        };
        self.logs_conn().execute(
            "INSERT INTO feedback (id, trace_id, value, weight, metadata, created_ms) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            &params![
                feedback.id,
                feedback.trace_id,
                feedback.value,
                feedback.weight,
                serde_json::to_string(&feedback.metadata).unwrap_or_default(),
                created_ms
            ],
        )?;
        Ok(feedback)
    }

    /// Changes a feedback's value, weight and metadata.
    pub fn update_feedback(&self, id: &str, f: &CreateFeedback) -> StoreResult<()> {
        let n = self.logs_conn().execute(
            "UPDATE feedback SET trace_id = ?2, value = ?3, weight = ?4, metadata = ?5 \
             WHERE id = ?1",
            &params![
                id,
                f.trace_id,
                f.value,
                f.weight.unwrap_or(1.0),
                serde_json::to_string(&f.metadata).unwrap_or_default()
            ],
        )?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("no feedback with id {id:?}")));
        }
        Ok(())
    }

    pub fn feedback_for(&self, trace_id: &str) -> StoreResult<Vec<Feedback>> {
        let rows = self.logs_conn().query_map(
            "SELECT id, trace_id, value, weight, metadata, created_ms FROM feedback \
             WHERE trace_id = ?1 ORDER BY created_ms",
            &params![trace_id],
            |r| {
                let metadata: String = r.get(4)?;
                Ok(Feedback {
                    id: r.get(0)?,
                    trace_id: r.get(1)?,
                    value: r.get(2)?,
                    weight: r.get(3)?,
                    metadata: serde_json::from_str(&metadata).unwrap_or_default(),
                    created_at: format_ms(r.get(5)?),
                })
            },
        )?;
        Ok(rows)
    }

    /// Totals per group over the records matching `f` (gateway requests and custom records),
    /// in the order of the groups' keys.
    pub fn usage_groups(&self, by: &GroupBy, f: &LogFilter) -> StoreResult<Vec<UsageGroup>> {
        let mut conn = self.logs_conn();
        let backend = conn.backend();
        let c = clause_of_all(&conn, f)?;
        let mut params = c.params;
        let key = match by {
            GroupBy::Model => "model".to_string(),
            GroupBy::Provider => "provider".to_string(),
            GroupBy::User => "\"user\"".to_string(),
            GroupBy::ApiKey => "COALESCE(api_key_name, api_key_id)".to_string(),
            GroupBy::Metadata(k) if backend == Backend::Sqlite => {
                params.insert(0, text(&json_path(k)));
                "json_extract(metadata, ?)".to_string()
            }
            GroupBy::Metadata(k) => {
                params.insert(0, text(k));
                "((metadata::jsonb) ->> ?) COLLATE \"C\"".to_string()
            }
            GroupBy::Time(ms) => format!("(created_ms / {ms}) * {ms}"),
        };
        // Rows, not totals, because of the percentiles: one group after another.
        let rows = conn.query_map(
            &format!(
                "SELECT {key} AS g, status, input_tokens, output_tokens, cost, latency_ms \
                 FROM logs {} ORDER BY g NULLS FIRST, latency_ms",
                c.sql
            ),
            &params,
            |row| {
                let group = match row.value(0)? {
                    DbValue::Null | DbValue::Blob(_) => None,
                    DbValue::Text(t) => Some(t.to_string()),
                    DbValue::Int(i) if matches!(by, GroupBy::Time(_)) => Some(format_ms(i)),
                    DbValue::Int(i) => Some(i.to_string()),
                    DbValue::Real(x) => Some(x.to_string()),
                };
                Ok((
                    group,
                    row.get::<u16>(1)?,
                    row.get::<u64>(2)?,
                    row.get::<u64>(3)?,
                    row.get::<Option<f64>>(4)?,
                    row.get::<f64>(5)?,
                ))
            },
        )?;
        let mut groups: Vec<(UsageGroup, Vec<f64>)> = Vec::new();
        for (group, status, input_tokens, output_tokens, cost, latency) in rows {
            if groups.last().is_none_or(|(g, _)| g.group != group) {
                let empty = UsageGroup {
                    group,
                    requests: 0,
                    errors: 0,
                    input_tokens: 0,
                    output_tokens: 0,
                    cost: 0.0,
                    cost_unknown: 0,
                    latency_p50_ms: 0.0,
                    latency_p90_ms: 0.0,
                    latency_p99_ms: 0.0,
                };
                groups.push((empty, Vec::new()));
            }
            let (g, latencies) = groups.last_mut().expect("pushed above");
            g.requests += 1;
            g.errors += u64::from(!(200..300).contains(&status));
            g.input_tokens += input_tokens;
            g.output_tokens += output_tokens;
            match cost {
                Some(x) => g.cost += x,
                None => g.cost_unknown += 1,
            }
            latencies.push(latency);
        }
        Ok(groups
            .into_iter()
            .map(|(mut g, latencies)| {
                g.latency_p50_ms = percentile(&latencies, 50.0);
                g.latency_p90_ms = percentile(&latencies, 90.0);
                g.latency_p99_ms = percentile(&latencies, 99.0);
                g
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::test_support;

    /// What a tail on another node relies on: reading after the last seq it saw, it misses
    /// none of the records that writers on other connections commit meanwhile.
    #[test]
    fn a_reader_following_seqs_misses_no_record_of_concurrent_writers() {
        let base = crate::observe::record::now_ms();
        for (_dir, store) in crate::store::tests::stores() {
            let (mut seen, mut written) = (Vec::new(), Vec::new());
            let follow = |seen: &mut Vec<i64>| {
                let after = seen.last().copied().unwrap_or(0);
                let rows = store
                    .logs_after(after, &LogFilter::default(), 1000)
                    .unwrap();
                seen.extend(rows.into_iter().map(|(seq, _)| seq));
            };
            std::thread::scope(|s| {
                let writers: Vec<_> = (0..2)
                    .map(|_| {
                        let mut writer = store.log_writer().unwrap();
                        s.spawn(move || {
                            let mut seqs = Vec::new();
                            for batch in 0..40 {
                                let entries: Vec<Entry> = (0..5)
                                    .map(|i| test_support::entry_at(base + batch * 5 + i, "t"))
                                    .collect();
                                seqs.extend(writer.insert(&entries).unwrap());
                            }
                            seqs
                        })
                    })
                    .collect();
                while !writers.iter().all(|w| w.is_finished()) {
                    follow(&mut seen);
                }
                for w in writers {
                    written.extend(w.join().unwrap());
                }
            });
            follow(&mut seen);
            written.sort_unstable();
            assert_eq!(seen, written, "read in order, once each, none missed");
        }
    }

    #[test]
    fn records_are_listed_by_filter_and_pruned_by_day_on_each_backend() {
        const DAY: i64 = 86_400_000;
        // 2025-12-01T00:00Z, then every half day.
        let base = 1_764_547_200_000;
        let entries: Vec<Entry> = (0..6)
            .map(|i| {
                let mut e = test_support::entry_at(base + i * DAY / 2, &format!("t{}", i % 3));
                e.record.provider = Some(if i % 2 == 1 { "odd" } else { "even" }.into());
                e.request_body = Some(format!("{{\"n\":{i}}}").into());
                e
            })
            .collect();
        let id = |i: usize| entries[i].record.id.clone();
        for (_dir, store) in crate::store::tests::stores() {
            let ids = |query: &[(&str, &str)]| crate::store::tests::log_ids(&store, query);
            let mut writer = store.log_writer().unwrap();
            let seqs = writer.insert(&entries).unwrap();
            assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
            assert_eq!(ids(&[("provider", "odd")]), [id(5), id(3), id(1)]);
            assert_eq!(ids(&[("metadata.team", "t1")]), [id(4), id(1)]);
            assert_eq!(ids(&[("limit", "2")]), [id(5), id(4)]);
            let record = store.log(&id(2)).unwrap();
            assert_eq!(record.request_body, Some(serde_json::json!({"n": 2})));

            // The cutoff falls in the second day: the first goes whole, then the second's
            // records before the cutoff.
            writer.prune(base + 3 * DAY / 2, 5000).unwrap();
            assert_eq!(ids(&[]), [id(5), id(4), id(3)]);
            assert!(store.log(&id(2)).is_err());
            let mut conn = store.logs_conn();
            if conn.backend() == Backend::Postgres {
                let partitions: Vec<String> = conn
                    .query_map(
                        "SELECT relname::text FROM pg_class WHERE relkind = 'r' \
                         AND relname LIKE 'log%_p2025%' \
                         ORDER BY relname",
                        &[],
                        |r| r.get(0),
                    )
                    .unwrap();
                assert_eq!(
                    partitions,
                    [
                        "log_bodies_p20251202",
                        "log_bodies_p20251203",
                        "logs_p20251202",
                        "logs_p20251203"
                    ]
                );
            }
            drop(conn);
            // A record of a day whose partition was dropped is stored all the same.
            writer.insert(&entries[..1]).unwrap();
            assert_eq!(store.log(&id(0)).unwrap().id, id(0));
        }
    }

    /// In a large batch with and without bodies, every record gets its own seq and, when it
    /// has any, its own bodies.
    #[test]
    fn a_large_batch_keeps_each_record_with_its_bodies() {
        let base = 1_764_547_200_000;
        let entries: Vec<Entry> = (0..300)
            .map(|i| {
                let mut e = test_support::entry_at(base + i, "t");
                e.record.input_tokens = i as u64;
                if i % 3 != 0 {
                    e.request_body = Some(format!("{{\"n\":{i}}}").into());
                }
                if i % 5 == 0 {
                    e.response_body = Some(format!("{{\"answer\":{i}}}").into());
                }
                if i % 7 == 0 {
                    e.hook_results_json = Some(results_json(i));
                }
                e
            })
            .collect();
        for (_dir, store) in crate::store::tests::stores() {
            let mut writer = store.log_writer().unwrap();
            writer.insert(&entries[..1]).unwrap();
            let seqs = writer.insert(&entries[1..]).unwrap();
            assert_eq!(seqs.len(), 299);
            let read = store
                .logs_after(seqs[0] - 1, &LogFilter::default(), 1000)
                .unwrap();
            let read_seqs: Vec<i64> = read.iter().map(|(seq, _)| *seq).collect();
            assert_eq!(read_seqs, seqs);
            for (i, e) in entries.iter().enumerate().skip(1) {
                let record = store.log(&e.record.id).unwrap();
                assert_eq!(record.input_tokens, i as u64);
                let want = |kept: bool, body: serde_json::Value| kept.then_some(body);
                assert_eq!(
                    record.request_body,
                    want(i % 3 != 0, serde_json::json!({"n": i}))
                );
                assert_eq!(
                    record.response_body,
                    want(i % 5 == 0, serde_json::json!({"answer": i}))
                );
                let results = (i % 7 == 0).then(|| serde_json::from_str(&results_json(i)).unwrap());
                assert_eq!(record.hook_results, results);
            }
        }
    }

    /// Hook results that name the record they belong to.
    fn results_json(i: impl std::fmt::Display) -> String {
        format!(
            r#"{{"before_request_hooks":[{{"id":"hook-{i}","type":"guardrail","verdict":true,"deny":false,"async":false,"transformed":false,"checks":[],"feedback":null,"execution_time":1,"created_at":"2025-12-01T00:00:00.000Z"}}],"after_request_hooks":[]}}"#
        )
    }

    /// Records written before payloads keep their bodies in `log_bodies` and their hook
    /// results (packed) in their row; both read back from there.
    #[test]
    fn records_written_before_payloads_read_back_from_where_they_were_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(dir.path(), crate::store::tests::cipher()).unwrap();
        let entries: Vec<Entry> = (0..3)
            .map(|i| {
                let mut e = test_support::entry_at(1_764_547_200_000 + i as i64, "t");
                e.request_body = Some(format!("{{\"n\":{i}}}").into());
                e.hook_results_json = Some(results_json(i));
                e
            })
            .collect();
        let mut writer = store.log_writer().unwrap();
        let seqs: Vec<i64> = entries
            .chunks(1)
            .map(|e| writer.insert(e).unwrap()[0])
            .collect();
        // Record 1 as an earlier version wrote it: no payload.
        let conn = rusqlite::Connection::open(dir.path().join(crate::store::DB_FILE)).unwrap();
        conn.execute("DELETE FROM log_payloads WHERE first_seq = ?1", [seqs[1]])
            .unwrap();
        conn.execute(
            "INSERT INTO log_bodies (seq, request, response) VALUES (?1, ?2, NULL)",
            rusqlite::params![seqs[1], br#"{"old":1}"#],
        )
        .unwrap();
        conn.execute(
            "UPDATE logs SET hook_results = ?2 WHERE seq = ?1",
            rusqlite::params![seqs[1], packed::pack_bytes(results_json(7).as_bytes())],
        )
        .unwrap();
        for (i, want) in [(0, 0), (1, 7), (2, 2)] {
            let record = store.log(&entries[i].record.id).unwrap();
            let results = serde_json::from_str(&results_json(want)).unwrap();
            assert_eq!(record.hook_results, Some(results), "record {i}");
            let body = match i {
                1 => serde_json::json!({"old": 1}),
                _ => serde_json::json!({"n": i}),
            };
            assert_eq!(record.request_body, Some(body), "record {i}");
        }
        let payloads: i64 = conn
            .query_row("SELECT COUNT(*) FROM log_payloads", [], |r| r.get(0))
            .unwrap();
        assert_eq!(payloads, 2);
    }

    #[test]
    fn sparse_filters_match_exactly_on_each_backend() {
        // Failed requests cost nothing and answers something: "answered and free" matches
        // nothing although each half matches many (Postgres reads `ok_cost` for it).
        let entries: Vec<Entry> = (0..40)
            .map(|i| {
                let mut e = test_support::entry_at(1_764_547_200_000 + i * 1000, "t");
                e.record.cost = Some(0.001 * (i + 1) as f64);
                e.record.latency_ms = 100.0 + i as f64;
                if i % 4 == 1 {
                    e.record.status = 500;
                    e.record.cost = Some(0.0);
                }
                if i == 7 {
                    e.record.cache_status = "HIT".into();
                    e.record.kind = crate::api::logs::KIND_CUSTOM.into();
                }
                e
            })
            .collect();
        let newest_first = |pick: &dyn Fn(i64) -> bool| -> Vec<String> {
            (0..40)
                .rev()
                .filter(|&i| pick(i))
                .map(|i| entries[i as usize].record.id.clone())
                .collect()
        };
        for (_dir, store) in crate::store::tests::stores() {
            let ids = |query: &[(&str, &str)]| crate::store::tests::log_ids(&store, query);
            store.log_writer().unwrap().insert(&entries).unwrap();
            assert!(ids(&[("status", "200"), ("max_cost", "0")]).is_empty());
            assert_eq!(
                ids(&[("status", "2xx"), ("min_cost", "0.0345")]),
                newest_first(&|i| i >= 34 && i % 4 != 1)
            );
            assert_eq!(
                ids(&[("status", "5xx"), ("max_cost", "0")]),
                newest_first(&|i| i % 4 == 1)
            );
            assert_eq!(
                ids(&[("max_cost", "0.0035")]),
                newest_first(&|i| i < 3 || i % 4 == 1)
            );
            assert_eq!(
                ids(&[("min_latency_ms", "137")]),
                newest_first(&|i| i >= 37)
            );
            assert_eq!(ids(&[("cache_status", "hit")]), newest_first(&|i| i == 7));
            assert_eq!(ids(&[("cache_status", "MISS")]), newest_first(&|i| i != 7));
            assert!(ids(&[("cache_status", "DISABLED")]).is_empty());
            assert_eq!(ids(&[("kind", "custom")]), newest_first(&|i| i == 7));
        }
    }

    #[test]
    fn percentiles_take_the_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&[7.0], 99.0), 7.0);
        assert_eq!(percentile(&[], 50.0), 0.0);
    }

    #[test]
    fn metadata_keys_become_quoted_json_paths() {
        assert_eq!(json_path("team"), "$.\"team\"");
        assert_eq!(json_path("a.b\"c"), "$.\"a.b\\\"c\"");
    }

    #[test]
    fn too_many_ranges_of_seq_are_left_out_rather_than_refused() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE logs (seq INTEGER PRIMARY KEY)")
            .unwrap();
        let ranges = |n: i64| (0..n).map(|i| (3 * i, 3 * i + 1)).collect::<Vec<_>>();
        let mut most = Clause::new();
        most.within(ranges(MAX_RANGES as i64));
        assert!(most
            .sql
            .starts_with("NOT INDEXED WHERE TRUE AND (seq BETWEEN ? AND ? OR"));
        let count = format!("SELECT COUNT(*) FROM logs {}", most.sql);
        let n: i64 = conn
            .query_row(&count, params_from_iter(most.params.iter()), |r| r.get(0))
            .unwrap();
        assert_eq!(n, 0);
        let mut too_many = Clause::new();
        too_many.within(ranges(MAX_RANGES as i64 + 1));
        assert_eq!(too_many.sql, "WHERE TRUE");
        assert!(too_many.params.is_empty());
    }

    #[test]
    fn filters_become_parameterised_sql() {
        let f = LogFilter::from_pairs([
            ("model", "gpt-4o"),
            ("status", "5xx"),
            ("metadata.team", "x'); DROP TABLE logs; --"),
        ])
        .unwrap();
        let c = clause(&f, time::OffsetDateTime::now_utc(), Backend::Sqlite).unwrap();
        assert_eq!(
            c.sql,
            "WHERE TRUE AND model = ? AND status BETWEEN ? AND ? AND status <> 200 \
             AND json_extract(metadata, ?) = ?"
        );
        assert_eq!(c.params.len(), 5);
        let bad = LogFilter {
            since: Some("last tuesday".into()),
            ..LogFilter::default()
        };
        assert!(matches!(
            clause(&bad, time::OffsetDateTime::now_utc(), Backend::Sqlite),
            Err(StoreError::Invalid(_))
        ));
    }
}
