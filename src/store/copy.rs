//! `tollgate db copy`: a SQLite store into a new Postgres database, each row as it is (ids,
//! seqs, times, and provider keys sealed with the master key, byte for byte). The rows are
//! written in one Postgres transaction, so an interrupted or failed copy leaves the target as
//! it found it: migrated and empty, ready for another try.

use rusqlite::OptionalExtension;
use serde::Serialize;

use super::db::{self, params, Db, Param, Value};
use super::partitions::Partitions;
use super::payloads::{self, Chunk, Parts};
use super::{logs, migrations, packed, Location, StoreError, StoreResult};
use crate::api::prompts::DEFAULT_LABELS;
use crate::api::workspaces::DEFAULT_WORKSPACE_ID;
use crate::observe::record::DAY_MS;

/// A table copied as it is.
struct Table {
    name: &'static str,
    /// Where the source rows come from, when not from the table alone.
    from: &'static str,
    /// Target columns the source table lacks, and how the source gives them.
    derived: &'static [(&'static str, &'static str)],
    /// The rows a new database gets from its migrations (a column and its values), which an
    /// empty target may hold and the copy replaces with the source's.
    seeded: Option<(&'static str, &'static [&'static str])>,
    /// Text columns SQLite may hold packed (store/packed.rs), copied unpacked.
    packed: &'static [&'static str],
}

const fn plain(name: &'static str) -> Table {
    Table {
        name,
        from: name,
        derived: &[],
        seeded: None,
        packed: &[],
    }
}

/// In an order where what a row refers to is copied before it.
const TABLES: &[Table] = &[
    plain("integrations"),
    plain("configs"),
    plain("config_versions"),
    Table {
        seeded: Some(("id", &[DEFAULT_WORKSPACE_ID])),
        ..plain("workspaces")
    },
    plain("api_keys"),
    plain("policies"),
    plain("usage_resets"),
    plain("budget_events"),
    plain("prompt_collections"),
    Table {
        seeded: Some(("name", &DEFAULT_LABELS)),
        ..plain("prompt_labels")
    },
    plain("prompts"),
    plain("prompt_versions"),
    plain("prompt_version_labels"),
    plain("guardrails"),
    plain("cache_entries"),
    plain("audit_logs"),
    plain("feedback"),
    Table {
        packed: logs::PACKED_COLUMNS,
        ..plain("logs")
    },
    // Postgres partitions bodies by their record's time, which SQLite keeps in the record.
    Table {
        from: "log_bodies JOIN logs ON logs.seq = log_bodies.seq",
        derived: &[("created_ms", "logs.created_ms")],
        ..plain("log_bodies")
    },
];

/// SQLite's summaries of blocks of records (store/log_blocks.rs), which Postgres does without
/// (it indexes its partitions), and its payloads (store/payloads.rs), which the copy turns into
/// `log_bodies` rows and `hook_results` values.
const SQLITE_ONLY: &[&str] = &["log_blocks", "log_payloads"];

/// Set by the target's own migrations; and the counters nodes share (store/counters.rs), which
/// the first node to need one starts from the copied request log.
const POSTGRES_ONLY: &[&str] = &[
    "schema_version",
    "governance_counters",
    "governance_holds",
    "governance_nodes",
];

/// Held by a copy until it commits or rolls back (any number nothing else takes).
const COPY_LOCK: i64 = 0x746f_6c6c_636f_7079;

/// Source rows read at a time.
const BATCH: i64 = 1024;

/// Told how far the copy is.
pub trait Progress {
    /// Before the first row: how many there are in all.
    fn start(&mut self, rows: u64);
    fn table(&mut self, name: &str);
    fn copied(&mut self, rows: u64);
}

/// A table's rows in the source and, after the copy, in the target.
#[derive(Debug, Clone, Serialize)]
pub struct Counted {
    pub table: &'static str,
    pub source: u64,
    pub target: u64,
}

#[derive(Debug)]
pub enum CopyError {
    /// The source's schema version is not this binary's.
    SourceSchema {
        found: usize,
        latest: usize,
    },
    /// The target holds rows (how many, in which tables).
    TargetNotEmpty(Vec<(&'static str, u64)>),
    /// Another copy into the target is running.
    TargetBusy,
    /// The target's schema is newer than this binary's.
    TargetSchema {
        found: usize,
        latest: usize,
    },
    /// Counts that differ after the copy (which was then rolled back).
    Mismatch(Vec<Counted>),
    Store(StoreError),
}

impl std::fmt::Display for CopyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CopyError::SourceSchema { found, latest } => write!(
                f,
                "the source store's schema is at version {found}, this tollgate's is {latest}"
            ),
            CopyError::TargetNotEmpty(tables) => {
                let held: Vec<String> = tables.iter().map(|(t, n)| format!("{t} ({n})")).collect();
                write!(
                    f,
                    "the target database is not empty: it holds rows in {}",
                    held.join(", ")
                )
            }
            CopyError::TargetBusy => {
                f.write_str("another `tollgate db copy` into the target database is running")
            }
            CopyError::TargetSchema { found, latest } => write!(
                f,
                "the target database's schema is at version {found}, newer than this tollgate's \
                 ({latest})"
            ),
            CopyError::Mismatch(_) => f.write_str(
                "the copied row counts differ from the source's; nothing was kept in the target",
            ),
            CopyError::Store(e) => e.fmt(f),
        }
    }
}

impl From<StoreError> for CopyError {
    fn from(e: StoreError) -> Self {
        CopyError::Store(e)
    }
}

impl From<super::db::Error> for CopyError {
    fn from(e: super::db::Error) -> Self {
        CopyError::Store(e.into())
    }
}

/// Copies the SQLite store at `source` into the Postgres database at `target_url`, which is
/// migrated first and must hold nothing but what its migrations made. Returns the counts.
pub fn copy(
    source: &Location,
    target_url: &str,
    progress: &mut dyn Progress,
) -> Result<Vec<Counted>, CopyError> {
    let mut from = source.connect_existing()?;
    let latest = migrations::latest(from.backend());
    let found = migrations::version(&mut from)?;
    if found != latest {
        return Err(CopyError::SourceSchema { found, latest });
    }
    let mut to = Location::Postgres(target_url.to_string()).connect_existing()?;
    migrations::run(&mut to)?;
    let (found, latest) = (
        migrations::version(&mut to)?,
        migrations::latest(to.backend()),
    );
    if found != latest {
        return Err(CopyError::TargetSchema { found, latest });
    }
    check_tables(&mut from, &mut to)?;

    // One snapshot of the source, however long the copy takes.
    let mut from = from.transaction()?;
    let mut counts = Vec::with_capacity(TABLES.len());
    for table in TABLES {
        let mut source = super::total(&mut from, table.name, "", &[])?;
        if table.name == "log_bodies" {
            each_payload_body(&mut from, |_, _, _| {
                source += 1;
                Ok(())
            })?;
        }
        counts.push(Counted {
            table: table.name,
            source,
            target: 0,
        });
    }
    // Partitions are made in transactions of their own; left behind empty, they do no harm.
    let days: Vec<i64> = from.query_map(
        &format!("SELECT DISTINCT created_ms / {DAY_MS} FROM logs"),
        &[],
        |r| r.get(0),
    )?;
    Partitions::default().ensure(&mut to, days)?;

    let mut to = to.transaction()?;
    let alone = to.query_row(
        "SELECT pg_try_advisory_xact_lock(?1)",
        &params![COPY_LOCK],
        |r| r.get::<bool>(0),
    )?;
    if !alone {
        return Err(CopyError::TargetBusy);
    }
    refuse_rows(&mut to)?;
    progress.start(counts.iter().map(|c| c.source).sum());
    for (table, count) in TABLES.iter().zip(&mut counts) {
        progress.table(table.name);
        copy_table(&mut from, &mut to, table, progress)?;
        if table.name == "log_bodies" {
            copy_payload_bodies(&mut from, &mut to, progress)?;
        }
        count.target = super::total(&mut to, table.name, "", &[])?;
    }
    if counts.iter().any(|c| c.source != c.target) {
        return Err(CopyError::Mismatch(counts));
    }
    set_sequences(&mut to)?;
    to.commit()?;
    Ok(counts)
}

/// Every table of each schema is copied or known not to need it.
fn check_tables(from: &mut Db, to: &mut Db) -> Result<(), CopyError> {
    let copied: Vec<&str> = TABLES.iter().map(|t| t.name).collect();
    for (db, own) in [(from, SQLITE_ONLY), (to, POSTGRES_ONLY)] {
        let backend = super::schema::backend_name(db.backend());
        for table in super::schema::tables_of(db)? {
            if !copied.contains(&table.as_str()) && !own.contains(&table.as_str()) {
                return Err(StoreError::Other(format!(
                    "this tollgate does not know how to copy the table {table} of the {backend} store"
                ))
                .into());
            }
        }
    }
    Ok(())
}

/// The target may hold only the rows its migrations made.
fn refuse_rows(to: &mut Db) -> Result<(), CopyError> {
    let mut held = Vec::new();
    for table in TABLES {
        let (filter, values): (String, Vec<Param>) = match table.seeded {
            Some((column, values)) => (
                format!(
                    "WHERE {column} NOT IN ({})",
                    super::placeholders(1, values.len())
                ),
                values.iter().map(|v| Param::Text((*v).into())).collect(),
            ),
            None => (String::new(), Vec::new()),
        };
        let rows = super::total(to, table.name, &filter, &values)?;
        if rows > 0 {
            held.push((table.name, rows));
        }
    }
    if !held.is_empty() {
        return Err(CopyError::TargetNotEmpty(held));
    }
    for table in TABLES.iter().filter(|t| t.seeded.is_some()) {
        to.execute(&format!("DELETE FROM {}", table.name), &[])?;
    }
    Ok(())
}

/// The target's columns (quoted), and for each how the source gives it. Generated columns
/// (such as `logs.ok_cost`) compute themselves.
fn columns(from: &mut Db, to: &mut Db, table: &Table) -> Result<Vec<(String, String)>, CopyError> {
    let target: Vec<String> = to.query_map(
        "SELECT column_name::TEXT FROM information_schema.columns \
         WHERE table_schema = current_schema() AND table_name::TEXT = ?1 \
         AND is_generated::TEXT = 'NEVER' ORDER BY ordinal_position",
        &params![table.name],
        |r| r.get(0),
    )?;
    let mut source: Vec<String> = from.query_map(
        "SELECT name FROM pragma_table_info(?1)",
        &params![table.name],
        |r| r.get(0),
    )?;
    let mut out = Vec::with_capacity(target.len());
    for column in target {
        let read = match table.derived.iter().find(|(c, _)| *c == column) {
            Some((_, read)) => read.to_string(),
            None => {
                let Some(i) = source.iter().position(|c| *c == column) else {
                    return Err(StoreError::Other(format!(
                        "the column {}.{column} of the Postgres store has no counterpart in SQLite",
                        table.name
                    ))
                    .into());
                };
                source.swap_remove(i);
                format!("{}.\"{column}\"", table.name)
            }
        };
        out.push((format!("\"{column}\""), read));
    }
    if let Some(left) = source.first() {
        return Err(StoreError::Other(format!(
            "the column {}.{left} of the SQLite store has no counterpart in Postgres",
            table.name
        ))
        .into());
    }
    Ok(out)
}

fn copy_table(
    from: &mut Db,
    to: &mut Db,
    table: &Table,
    progress: &mut dyn Progress,
) -> Result<(), CopyError> {
    let columns = columns(from, to, table)?;
    let reads: Vec<&str> = columns.iter().map(|(_, read)| read.as_str()).collect();
    let select = format!(
        "SELECT {name}.rowid, {} FROM {} WHERE {name}.rowid > ?1 ORDER BY {name}.rowid LIMIT ?2",
        reads.join(", "),
        table.from,
        name = table.name,
    );
    let names: Vec<&str> = columns.iter().map(|(name, _)| name.as_str()).collect();
    let packed: Vec<bool> = names
        .iter()
        .map(|name| table.packed.contains(&name.trim_matches('"')))
        .collect();
    // Identity columns (the audit log's seq) take the copied values only when told to.
    let into = format!(
        "INSERT INTO {} ({}) OVERRIDING SYSTEM VALUE",
        table.name,
        names.join(", ")
    );
    let mut after = i64::MIN;
    let mut reader = payloads::Reader::default();
    loop {
        let mut values = Vec::with_capacity(BATCH as usize * columns.len());
        // The values that are in the rows' payloads: where they go, and the rows' seqs.
        let mut in_payloads = Vec::new();
        let rowids = from.query_map(&select, &params![after, BATCH], |r| {
            for (i, packed) in (1..=columns.len()).zip(&packed) {
                let value = r.value(i)?;
                values.push(match value {
                    Value::Blob(b) if *packed && b == payloads::RESULTS_IN_PAYLOAD => {
                        in_payloads.push((values.len(), r.get::<i64>(0)?));
                        Param::Null
                    }
                    _ if *packed => {
                        let text = packed::text(value)
                            .map_err(|e| db::Error::Type(format!("{}: {e}", names[i - 1])))?;
                        text.map_or(Param::Null, |t| Param::Text(t.into()))
                    }
                    _ => owned(value),
                });
            }
            r.get::<i64>(0)
        })?;
        let Some(&last) = rowids.last() else {
            return Ok(());
        };
        if let Db::Sqlite(conn) = &*from {
            for (at, seq) in in_payloads {
                let results = reader
                    .parts(conn, seq)
                    .map_err(StoreError::from)?
                    .and_then(|p| p.results);
                let Some(json) = results.and_then(|r| std::str::from_utf8(r).ok()) else {
                    return Err(damaged(table.name, seq).into());
                };
                values[at] = Param::Text(json.to_string().into());
            }
        }
        logs::insert_rows(to, &into, columns.len(), &values, "")
            .map_err(|e| StoreError::Other(format!("copying {}: {e}", table.name)))?;
        progress.copied(rowids.len() as u64);
        after = last;
    }
}

/// A payload the copy needs and cannot read: `seq` is its record's, or its chunk's first.
fn damaged(table: &str, seq: i64) -> StoreError {
    StoreError::Other(format!(
        "copying {table}: the payload of the record with seq {seq} is missing or damaged \
         (log_payloads)"
    ))
}

/// Calls `f` with each body kept in SQLite's payloads (store/payloads.rs) whose record is
/// there: its seq, its record's time and its parts.
fn each_payload_body(
    from: &mut Db,
    mut f: impl FnMut(i64, i64, Parts) -> StoreResult<()>,
) -> StoreResult<()> {
    let Db::Sqlite(conn) = &*from else {
        return Ok(());
    };
    let mut chunks =
        conn.prepare("SELECT first_seq, last_seq, data FROM log_payloads ORDER BY first_seq")?;
    let mut created = conn.prepare_cached("SELECT created_ms FROM logs WHERE seq = ?1")?;
    let mut rows = chunks.query([])?;
    while let Some(row) = rows.next()? {
        let first: i64 = row.get(0)?;
        let data: Vec<u8> = row.get(2)?;
        let chunk =
            Chunk::decode(first, row.get(1)?, &data).ok_or_else(|| damaged("log_bodies", first))?;
        for (seq, parts) in chunk.each() {
            if parts.request.is_none() && parts.response.is_none() {
                continue;
            }
            // A chunk stays while one of its records does: the others' bodies go with them.
            let Some(created_ms) = created.query_row([seq], |r| r.get(0)).optional()? else {
                continue;
            };
            f(seq, created_ms, parts)?;
        }
    }
    Ok(())
}

/// The bodies in SQLite's payloads, as rows of Postgres's `log_bodies`.
fn copy_payload_bodies(
    from: &mut Db,
    to: &mut Db,
    progress: &mut dyn Progress,
) -> Result<(), CopyError> {
    let into = "INSERT INTO log_bodies (seq, created_ms, request, response)";
    let blob = |b: Option<&[u8]>| b.map_or(Param::Null, |b| Param::Blob(b.to_vec().into()));
    let mut values = Vec::new();
    let mut flush = |values: &mut Vec<Param<'static>>| -> StoreResult<()> {
        logs::insert_rows(to, into, 4, values, "")
            .map_err(|e| StoreError::Other(format!("copying log_bodies: {e}")))?;
        progress.copied(values.len() as u64 / 4);
        values.clear();
        Ok(())
    };
    each_payload_body(from, |seq, created_ms, parts| {
        values.extend([
            Param::Int(seq),
            Param::Int(created_ms),
            blob(parts.request),
            blob(parts.response),
        ]);
        if values.len() >= BATCH as usize * 4 {
            flush(&mut values)?;
        }
        Ok(())
    })?;
    flush(&mut values)?;
    Ok(())
}

fn owned(v: Value) -> Param<'static> {
    match v {
        Value::Null => Param::Null,
        Value::Int(i) => Param::Int(i),
        Value::Real(x) => Param::Real(x),
        Value::Text(t) => Param::Text(t.to_string().into()),
        Value::Blob(b) => Param::Blob(b.to_vec().into()),
    }
}

/// Each sequence that numbers a copied table's rows continues after the highest copied value.
fn set_sequences(to: &mut Db) -> Result<(), CopyError> {
    for table in TABLES {
        let numbered: Vec<(String, String)> = to.query_map(
            "SELECT column_name::TEXT, CASE WHEN is_identity::TEXT = 'YES' \
                 THEN format('%L', pg_get_serial_sequence(table_name::TEXT, column_name::TEXT)) \
                 ELSE substring(column_default::TEXT FROM '^nextval\\((.*)\\)$') END \
             FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name::TEXT = ?1 \
             AND (is_identity::TEXT = 'YES' OR column_default::TEXT LIKE 'nextval(%')",
            &params![table.name],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        for (column, sequence) in numbered {
            to.batch(&format!(
                "SELECT setval({sequence}, MAX(\"{column}\")) FROM {} HAVING MAX(\"{column}\") IS NOT NULL",
                table.name
            ))?;
        }
    }
    Ok(())
}
