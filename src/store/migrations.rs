//! Schema migrations, applied in order at start; `PRAGMA user_version` records how many ran.

use rusqlite::Connection;

use super::StoreResult;

const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE integrations (
    id TEXT PRIMARY KEY,
    slug TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    provider TEXT NOT NULL,
    description TEXT,
    configurations TEXT NOT NULL DEFAULT '{}',
    secret BLOB,
    masked_key TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE configs (
    id TEXT PRIMARY KEY,
    slug TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL UNIQUE,
    is_default INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL DEFAULT 'active',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE config_versions (
    version_id TEXT PRIMARY KEY,
    config_id TEXT NOT NULL REFERENCES configs(id) ON DELETE CASCADE,
    version INTEGER NOT NULL,
    config TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (config_id, version)
);
CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    description TEXT,
    key_type TEXT NOT NULL,
    workspace_id TEXT,
    hash TEXT NOT NULL UNIQUE,
    masked TEXT NOT NULL,
    scopes TEXT NOT NULL,
    defaults TEXT NOT NULL DEFAULT '{}',
    status TEXT NOT NULL DEFAULT 'active',
    creation_mode TEXT NOT NULL,
    expires_at TEXT,
    previous_hash TEXT,
    previous_expires_at TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
"#,
    r#"
CREATE TABLE logs (
    seq INTEGER PRIMARY KEY,
    -- A UUID v7 whose time is created_ms: found through logs_created, with no index of its own.
    id TEXT NOT NULL,
    kind TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    trace_id TEXT NOT NULL,
    span_id TEXT NOT NULL,
    parent_span_id TEXT,
    span_name TEXT,
    api_key_id TEXT,
    api_key_name TEXT,
    integration TEXT,
    provider TEXT,
    model_requested TEXT,
    model TEXT,
    endpoint TEXT NOT NULL,
    status INTEGER NOT NULL,
    latency_ms REAL NOT NULL,
    ttft_ms REAL,
    input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    cached_tokens INTEGER NOT NULL,
    cost REAL,
    cache_status TEXT NOT NULL,
    retry_count INTEGER NOT NULL,
    last_used_option TEXT,
    metadata TEXT NOT NULL,
    user TEXT,
    stream INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    error TEXT,
    attempts TEXT NOT NULL,
    bodies_logged INTEGER NOT NULL
);
-- Lists are newest first by (created_ms, seq): each filter's index ends in created_ms (and,
-- implicitly, seq), so a filtered page is read in order without a sort.
CREATE INDEX logs_created ON logs (created_ms);
CREATE INDEX logs_trace ON logs (trace_id, created_ms);
CREATE INDEX logs_model ON logs (model, created_ms);
CREATE INDEX logs_user ON logs (user, created_ms);
CREATE INDEX logs_status ON logs (status, created_ms);
CREATE INDEX logs_api_key ON logs (api_key_id, created_ms);
CREATE TABLE log_bodies (
    -- The record's seq; deleted with it by the pruning, which does both.
    seq INTEGER PRIMARY KEY,
    request BLOB,
    response BLOB
);
CREATE TABLE feedback (
    id TEXT PRIMARY KEY,
    trace_id TEXT NOT NULL,
    value INTEGER NOT NULL,
    weight REAL NOT NULL,
    metadata TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE INDEX feedback_trace ON feedback (trace_id);
"#,
    // Summaries of runs of consecutive records (store/log_blocks.rs), which the recorder's
    // writer fills in for the records already stored when it starts.
    r#"
CREATE TABLE log_blocks (
    first_seq INTEGER PRIMARY KEY,
    last_seq INTEGER NOT NULL,
    min_created_ms INTEGER NOT NULL,
    max_created_ms INTEGER NOT NULL,
    min_cost REAL,
    max_cost REAL,
    max_latency_ms REAL NOT NULL,
    bloom BLOB NOT NULL
);
CREATE INDEX log_blocks_newest ON log_blocks (max_created_ms);
"#,
];

pub fn run(conn: &mut Connection) -> StoreResult<()> {
    let done: usize = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(done) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i + 1)?;
        tx.commit()?;
    }
    Ok(())
}
