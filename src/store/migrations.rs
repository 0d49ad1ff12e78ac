//! Schema migrations, applied in order at start: the same numbered list for each backend, in
//! its own DDL. SQLite's `PRAGMA user_version` records how many ran; on Postgres the
//! `schema_version` table does, and an advisory lock makes nodes that start at once take turns.

use super::db::{params, Backend, Db};
use super::StoreResult;

// The tables whose DDL is the same on both backends.
macro_rules! api_keys_table {
    () => {
        r#"
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
"#
    };
}

macro_rules! workspaces_table {
    () => {
        r#"
CREATE TABLE workspaces (
    id TEXT PRIMARY KEY,
    slug TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL UNIQUE,
    description TEXT,
    defaults TEXT NOT NULL DEFAULT '{}',
    -- A JSON array of model patterns; NULL allows every model.
    allowed_models TEXT,
    status TEXT NOT NULL DEFAULT 'active',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
"#
    };
}

macro_rules! prompt_collections_table {
    () => {
        r#"
CREATE TABLE prompt_collections (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    parent_collection_id TEXT REFERENCES prompt_collections(id),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
"#
    };
}

macro_rules! prompt_labels_table {
    () => {
        r#"
CREATE TABLE prompt_labels (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    description TEXT,
    color_code TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
"#
    };
}

macro_rules! guardrails_table {
    () => {
        r#"
CREATE TABLE guardrails (
    id TEXT PRIMARY KEY,
    slug TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    workspace_id TEXT,
    -- [{id, parameters, name?, is_enabled}]
    checks TEXT NOT NULL,
    -- {deny, async, on_success, on_fail}
    actions TEXT NOT NULL,
    version_id TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'active',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
"#
    };
}

const SQLITE: &[&str] = &[
    concat!(
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
"#,
        api_keys_table!()
    ),
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
    r#"
-- Budgets and rate limits. A key's, workspace's or integration's own limits are policies
-- owned by it (owner_type, owner_id), deleted with it.
CREATE TABLE policies (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    conditions TEXT NOT NULL,
    group_by TEXT NOT NULL,
    spec TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'active',
    owner_type TEXT,
    owner_id TEXT,
    -- Anchors budgets that reset every N days.
    created_ms INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX policies_owner ON policies (owner_type, owner_id);
-- Usage counted from the request log starts after a manual reset.
CREATE TABLE usage_resets (
    policy_id TEXT NOT NULL,
    value_key TEXT NOT NULL,
    reset_ms INTEGER NOT NULL,
    PRIMARY KEY (policy_id, value_key)
);
CREATE TABLE budget_events (
    id TEXT PRIMARY KEY,
    policy_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    value_key TEXT NOT NULL,
    usage REAL NOT NULL,
    credit_limit REAL NOT NULL,
    window_start_ms INTEGER NOT NULL,
    created_ms INTEGER NOT NULL,
    delivered INTEGER,
    error TEXT
);
CREATE INDEX budget_events_policy ON budget_events (policy_id, created_ms);
-- Model allow-lists (JSON arrays of patterns); NULL allows every model.
ALTER TABLE api_keys ADD COLUMN allowed_models TEXT;
ALTER TABLE integrations ADD COLUMN allowed_models TEXT;
"#,
    // Workspaces, with the default one every workspace key without a workspace moves to
    // (api::workspaces::DEFAULT_WORKSPACE_ID). Organisation keys belong to no workspace.
    concat!(
        workspaces_table!(),
        r#"
INSERT INTO workspaces (id, slug, name, description, created_at, updated_at)
VALUES ('00000000-0000-7000-8000-000000000000', 'ws-default', 'Default',
    'Workspace keys created without a workspace belong here',
    strftime('%Y-%m-%dT%H:%M:%SZ', 'now'), strftime('%Y-%m-%dT%H:%M:%SZ', 'now'));
UPDATE api_keys SET workspace_id = '00000000-0000-7000-8000-000000000000'
    WHERE key_type = 'workspace-service'
    AND (workspace_id IS NULL OR workspace_id NOT IN (SELECT id FROM workspaces));
UPDATE api_keys SET workspace_id = NULL WHERE key_type = 'organisation-service';
CREATE INDEX api_keys_workspace ON api_keys (workspace_id);
"#
    ),
    // The audit log of admin changes.
    r#"
CREATE TABLE audit_logs (
    seq INTEGER PRIMARY KEY,
    -- A UUID v7 whose time is created_ms.
    id TEXT NOT NULL UNIQUE,
    created_ms INTEGER NOT NULL,
    method TEXT NOT NULL,
    uri TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    resource_id TEXT,
    action TEXT NOT NULL,
    actor_key_id TEXT NOT NULL,
    actor_name TEXT NOT NULL,
    actor_key_type TEXT NOT NULL,
    workspace_id TEXT,
    client_ip TEXT,
    user_agent TEXT,
    request_id TEXT NOT NULL,
    response_status_code INTEGER NOT NULL,
    before TEXT,
    after TEXT
);
-- Lists are newest first by (created_ms, seq): each filter's index ends in created_ms (and,
-- implicitly, seq), so a filtered page is read in order without a sort.
CREATE INDEX audit_logs_created ON audit_logs (created_ms);
CREATE INDEX audit_logs_actor ON audit_logs (actor_key_id, created_ms);
CREATE INDEX audit_logs_resource ON audit_logs (resource_type, resource_id, created_ms);
CREATE INDEX audit_logs_action ON audit_logs (action, created_ms);
CREATE INDEX audit_logs_workspace ON audit_logs (workspace_id, created_ms);
CREATE INDEX audit_logs_client_ip ON audit_logs (client_ip, created_ms);
-- Keys hold the scopes they were created with, so the key `serve` made on first start (which
-- holds every scope) is given the scopes added since: policies, workspaces, the audit log and
-- the prompt library.
-- It can grant them to other keys.
UPDATE api_keys SET scopes = (
    SELECT json_group_array(value) FROM (
        SELECT value FROM json_each(api_keys.scopes)
        UNION
        SELECT value FROM json_each('["policies.create", "policies.read", "policies.update",
            "policies.delete", "policies.list", "workspaces.create", "workspaces.read",
            "workspaces.update", "workspaces.delete", "workspaces.list", "audit_logs.list",
            "prompts.create", "prompts.read", "prompts.update", "prompts.delete", "prompts.list",
            "prompts.publish"]')
    )
) WHERE creation_mode = 'auto';
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
    // Versioned prompts. A version is never changed once written; labels point at versions.
    concat!(
        prompt_collections_table!(),
        prompt_labels_table!(),
        r#"
INSERT INTO prompt_labels (id, name, description, created_at, updated_at)
SELECT lower(hex(randomblob(16))), name, description, strftime('%Y-%m-%dT%H:%M:%SZ', 'now'),
    strftime('%Y-%m-%dT%H:%M:%SZ', 'now')
FROM (SELECT 'production' AS name, 'What production traffic uses' AS description
      UNION ALL SELECT 'staging', 'Being tried before production'
      UNION ALL SELECT 'development', 'Work in progress');
-- Prompts and partials (kind), each with its versions.
CREATE TABLE prompts (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    slug TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    collection_id TEXT REFERENCES prompt_collections(id),
    published_version INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (kind, name)
);
CREATE TABLE prompt_versions (
    id TEXT PRIMARY KEY,
    prompt_id TEXT NOT NULL REFERENCES prompts(id) ON DELETE CASCADE,
    version INTEGER NOT NULL,
    -- A prompt's template (messages, model, parameters, tools) or a partial's {"string"}.
    body TEXT NOT NULL,
    description TEXT,
    created_at TEXT NOT NULL,
    UNIQUE (prompt_id, version)
);
CREATE TABLE prompt_version_labels (
    prompt_id TEXT NOT NULL REFERENCES prompts(id) ON DELETE CASCADE,
    label_id TEXT NOT NULL REFERENCES prompt_labels(id) ON DELETE CASCADE,
    version INTEGER NOT NULL,
    PRIMARY KEY (prompt_id, label_id)
);
"#
    ),
    // Guardrails: saved guardrails, and the hook results and cache savings of each record.
    concat!(
        guardrails_table!(),
        r#"
ALTER TABLE logs ADD COLUMN hook_results TEXT;
ALTER TABLE logs ADD COLUMN cost_saved REAL;
-- The key `serve` made gets the new scopes, as in the fifth migration.
UPDATE api_keys SET scopes = (
    SELECT json_group_array(value) FROM (
        SELECT value FROM json_each(api_keys.scopes)
        UNION
        SELECT value FROM json_each('["guardrails.create", "guardrails.read",
            "guardrails.update", "guardrails.delete", "guardrails.list", "cache.read",
            "cache.delete"]')
    )
) WHERE creation_mode = 'auto';
"#
    ),
    // The response cache's entries, so the cache survives a restart.
    r#"
CREATE TABLE cache_entries (
    -- SHA-256 of the normalised request.
    key BLOB PRIMARY KEY,
    -- Semantic entries: the SHA-256 of the request without its prompt, and the prompt's
    -- embedding (little-endian f32s).
    grp BLOB,
    embedding BLOB,
    -- The caller's workspace id ('' for organisation keys).
    partition TEXT NOT NULL,
    namespace TEXT,
    -- 1: body is a JSON array of the stream's frames; 0: body is the JSON answer.
    stream INTEGER NOT NULL,
    body BLOB NOT NULL,
    integration TEXT,
    model TEXT,
    cost REAL,
    created_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL
);
"#,
    // Block summaries keep the cost range of answered (2xx) records apart from the others', so
    // a cost bound combined with a status reads only blocks that may hold both. Emptied so the
    // writer summarises every record again at start.
    r#"
ALTER TABLE log_blocks ADD COLUMN ok_min_cost REAL;
ALTER TABLE log_blocks ADD COLUMN ok_max_cost REAL;
ALTER TABLE log_blocks ADD COLUMN failed_min_cost REAL;
ALTER TABLE log_blocks ADD COLUMN failed_max_cost REAL;
DELETE FROM log_blocks;
"#,
    // Indexes the recorder updates less often. Most records answer 200 and many name no user:
    // the status and user indexes leave those out (a status filter other than 200 says
    // `status <> 200` so the planner can use the status index). Traces are found through the
    // block summaries' filters instead of an index (store/log_blocks.rs, `trace_ranges`).
    r#"
DROP INDEX logs_trace;
DROP INDEX logs_status;
CREATE INDEX logs_status ON logs (status, created_ms) WHERE status <> 200;
DROP INDEX logs_user;
CREATE INDEX logs_user ON logs (user, created_ms) WHERE user IS NOT NULL;
"#,
    // Postgres's indexes for the filters SQLite serves with block summaries.
    "-- nothing to change on SQLite",
    // Budget and rate-limit counters shared by nodes exist on Postgres only: one SQLite node
    // keeps its counters in memory.
    "-- nothing to change on SQLite",
    // Leases of allowance exist on Postgres only, as the shared counters do.
    "-- nothing to change on SQLite",
    // Two index inserts fewer per record: the model and API key filters are served by the
    // block summaries, whose Bloom filters now hold each record's API key as well
    // (store/log_blocks.rs). Emptied so the writer summarises every record again at start.
    r#"
DROP INDEX logs_model;
DROP INDEX logs_api_key;
DELETE FROM log_blocks;
"#,
    // Records' bodies and hook results, several records per row (store/payloads.rs). The rows
    // of `log_bodies` written before stay where they are and are read from there.
    r#"
CREATE TABLE log_payloads (
    first_seq INTEGER PRIMARY KEY,
    last_seq INTEGER NOT NULL,
    data BLOB NOT NULL
);
"#,
];

/// The Postgres schema, numbered as [`SQLITE`]. Every text column sorts by bytes
/// (`COLLATE "C"`, added by [`run`]), as SQLite's do, so lists come in the same order.
/// Updates of keys stored before a migration are left out: no Postgres store predates them.
const POSTGRES: &[&str] = &[
    concat!(
        r#"
CREATE TABLE integrations (
    id TEXT PRIMARY KEY,
    slug TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    provider TEXT NOT NULL,
    description TEXT,
    configurations TEXT NOT NULL DEFAULT '{}',
    secret BYTEA,
    masked_key TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE configs (
    id TEXT PRIMARY KEY,
    slug TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL UNIQUE,
    is_default BOOLEAN NOT NULL DEFAULT FALSE,
    status TEXT NOT NULL DEFAULT 'active',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE config_versions (
    version_id TEXT PRIMARY KEY,
    config_id TEXT NOT NULL REFERENCES configs(id) ON DELETE CASCADE,
    version BIGINT NOT NULL,
    config TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (config_id, version)
);
"#,
        api_keys_table!()
    ),
    // Records and their bodies are partitioned by day of created_ms (store/partitions.rs
    // makes the partitions); the indexes, made on every partition, serve the list filters.
    r#"
CREATE SEQUENCE logs_seq;
CREATE TABLE logs (
    seq BIGINT NOT NULL DEFAULT nextval('logs_seq'),
    id TEXT NOT NULL,
    kind TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
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
    status BIGINT NOT NULL,
    latency_ms DOUBLE PRECISION NOT NULL,
    ttft_ms DOUBLE PRECISION,
    input_tokens BIGINT NOT NULL,
    output_tokens BIGINT NOT NULL,
    cached_tokens BIGINT NOT NULL,
    cost DOUBLE PRECISION,
    cache_status TEXT NOT NULL,
    retry_count BIGINT NOT NULL,
    last_used_option TEXT,
    metadata TEXT NOT NULL,
    "user" TEXT,
    stream BOOLEAN NOT NULL,
    outcome TEXT NOT NULL,
    error TEXT,
    attempts TEXT NOT NULL,
    bodies_logged BOOLEAN NOT NULL
) PARTITION BY RANGE (created_ms);
CREATE INDEX logs_created ON logs (created_ms, seq);
CREATE INDEX logs_seq_index ON logs (seq);
CREATE INDEX logs_trace ON logs (trace_id, created_ms);
CREATE INDEX logs_model ON logs (model, created_ms);
CREATE INDEX logs_provider ON logs (provider, created_ms);
CREATE INDEX logs_user ON logs ("user", created_ms);
CREATE INDEX logs_status ON logs (status, created_ms);
CREATE INDEX logs_api_key ON logs (api_key_id, created_ms);
CREATE INDEX logs_metadata ON logs USING GIN ((metadata::jsonb) jsonb_path_ops);
CREATE TABLE log_bodies (
    seq BIGINT NOT NULL,
    created_ms BIGINT NOT NULL,
    request BYTEA,
    response BYTEA
) PARTITION BY RANGE (created_ms);
CREATE INDEX log_bodies_seq ON log_bodies (seq);
CREATE TABLE feedback (
    id TEXT PRIMARY KEY,
    trace_id TEXT NOT NULL,
    value BIGINT NOT NULL,
    weight DOUBLE PRECISION NOT NULL,
    metadata TEXT NOT NULL,
    created_ms BIGINT NOT NULL
);
CREATE INDEX feedback_trace ON feedback (trace_id);
"#,
    r#"
CREATE TABLE policies (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    conditions TEXT NOT NULL,
    group_by TEXT NOT NULL,
    spec TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'active',
    owner_type TEXT,
    owner_id TEXT,
    created_ms BIGINT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX policies_owner ON policies (owner_type, owner_id);
CREATE TABLE usage_resets (
    policy_id TEXT NOT NULL,
    value_key TEXT NOT NULL,
    reset_ms BIGINT NOT NULL,
    PRIMARY KEY (policy_id, value_key)
);
CREATE TABLE budget_events (
    id TEXT PRIMARY KEY,
    policy_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    value_key TEXT NOT NULL,
    usage DOUBLE PRECISION NOT NULL,
    credit_limit DOUBLE PRECISION NOT NULL,
    window_start_ms BIGINT NOT NULL,
    created_ms BIGINT NOT NULL,
    delivered BOOLEAN,
    error TEXT
);
CREATE INDEX budget_events_policy ON budget_events (policy_id, created_ms);
ALTER TABLE api_keys ADD COLUMN allowed_models TEXT;
ALTER TABLE integrations ADD COLUMN allowed_models TEXT;
"#,
    concat!(
        workspaces_table!(),
        r#"
INSERT INTO workspaces (id, slug, name, description, created_at, updated_at)
VALUES ('00000000-0000-7000-8000-000000000000', 'ws-default', 'Default',
    'Workspace keys created without a workspace belong here',
    to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
    to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'));
CREATE INDEX api_keys_workspace ON api_keys (workspace_id);
"#
    ),
    r#"
CREATE TABLE audit_logs (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    created_ms BIGINT NOT NULL,
    method TEXT NOT NULL,
    uri TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    resource_id TEXT,
    action TEXT NOT NULL,
    actor_key_id TEXT NOT NULL,
    actor_name TEXT NOT NULL,
    actor_key_type TEXT NOT NULL,
    workspace_id TEXT,
    client_ip TEXT,
    user_agent TEXT,
    request_id TEXT NOT NULL,
    response_status_code BIGINT NOT NULL,
    before TEXT,
    after TEXT
);
CREATE INDEX audit_logs_created ON audit_logs (created_ms, seq);
CREATE INDEX audit_logs_actor ON audit_logs (actor_key_id, created_ms, seq);
CREATE INDEX audit_logs_resource ON audit_logs (resource_type, resource_id, created_ms, seq);
CREATE INDEX audit_logs_action ON audit_logs (action, created_ms, seq);
CREATE INDEX audit_logs_workspace ON audit_logs (workspace_id, created_ms, seq);
CREATE INDEX audit_logs_client_ip ON audit_logs (client_ip, created_ms, seq);
"#,
    // SQLite's block summaries of the request log: Postgres has indexes on its partitions.
    "",
    concat!(
        prompt_collections_table!(),
        prompt_labels_table!(),
        r#"
INSERT INTO prompt_labels (id, name, description, created_at, updated_at)
SELECT md5(random()::text || name), name, description,
    to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
    to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
FROM (VALUES ('production', 'What production traffic uses'),
    ('staging', 'Being tried before production'),
    ('development', 'Work in progress')) AS defaults (name, description);
CREATE TABLE prompts (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    slug TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    collection_id TEXT REFERENCES prompt_collections(id),
    published_version BIGINT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (kind, name)
);
CREATE TABLE prompt_versions (
    id TEXT PRIMARY KEY,
    prompt_id TEXT NOT NULL REFERENCES prompts(id) ON DELETE CASCADE,
    version BIGINT NOT NULL,
    body TEXT NOT NULL,
    description TEXT,
    created_at TEXT NOT NULL,
    UNIQUE (prompt_id, version)
);
CREATE TABLE prompt_version_labels (
    prompt_id TEXT NOT NULL REFERENCES prompts(id) ON DELETE CASCADE,
    label_id TEXT NOT NULL REFERENCES prompt_labels(id) ON DELETE CASCADE,
    version BIGINT NOT NULL,
    PRIMARY KEY (prompt_id, label_id)
);
"#
    ),
    concat!(
        guardrails_table!(),
        r#"
ALTER TABLE logs ADD COLUMN hook_results TEXT;
ALTER TABLE logs ADD COLUMN cost_saved DOUBLE PRECISION;
"#
    ),
    r#"
CREATE TABLE cache_entries (
    key BYTEA PRIMARY KEY,
    grp BYTEA,
    embedding BYTEA,
    partition TEXT NOT NULL,
    namespace TEXT,
    stream BOOLEAN NOT NULL,
    body BYTEA NOT NULL,
    integration TEXT,
    model TEXT,
    cost DOUBLE PRECISION,
    created_ms BIGINT NOT NULL,
    expires_ms BIGINT NOT NULL
);
"#,
    // SQLite's block summaries split their cost ranges; Postgres keeps no summaries.
    "-- nothing to change on Postgres",
    // As on SQLite, 200s stay out of the status index and records without a user out of the
    // user index. Postgres keeps its trace index: it has no block summaries to find traces by.
    r#"
DROP INDEX logs_status;
CREATE INDEX logs_status ON logs (status, created_ms) WHERE status <> 200;
DROP INDEX logs_user;
CREATE INDEX logs_user ON logs ("user", created_ms) WHERE "user" IS NOT NULL;
"#,
    // The filters that matched few records or none read every partition (logs list at
    // 300-450 ms over a million records). Most records are not cached: a cache-status filter
    // says `cache_status <> 'DISABLED'` so the planner can use the partial index. `ok_cost`
    // serves cost bounds on answered records (store/logs.rs, `clause`).
    r#"
ALTER TABLE logs ADD COLUMN ok_cost DOUBLE PRECISION
    GENERATED ALWAYS AS (CASE WHEN status >= 200 AND status < 300 THEN cost END) STORED;
CREATE INDEX logs_ok_cost ON logs (ok_cost);
CREATE INDEX logs_cost ON logs (cost);
CREATE INDEX logs_latency ON logs (latency_ms);
CREATE INDEX logs_cache_status ON logs (cache_status, created_ms) WHERE cache_status <> 'DISABLED';
CREATE INDEX logs_kind ON logs (kind, created_ms);
"#,
    // Counters shared by the nodes (src/store/counters.rs): one row per rule, counting
    // definition, group value and window; what each node holds for its requests in flight, so
    // a node that dies gives its holds back; and when each node was last seen.
    r#"
CREATE TABLE governance_counters (
    rule_id TEXT NOT NULL,
    counting TEXT NOT NULL,
    grp TEXT NOT NULL,
    window_start BIGINT NOT NULL,
    used DOUBLE PRECISION NOT NULL,
    reserved DOUBLE PRECISION NOT NULL,
    updated_ms BIGINT NOT NULL,
    PRIMARY KEY (rule_id, counting, grp, window_start)
);
CREATE TABLE governance_holds (
    node_id TEXT NOT NULL,
    rule_id TEXT NOT NULL,
    counting TEXT NOT NULL,
    grp TEXT NOT NULL,
    window_start BIGINT NOT NULL,
    amount DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (node_id, rule_id, counting, grp, window_start)
);
CREATE TABLE governance_nodes (
    node_id TEXT PRIMARY KEY,
    seen_ms BIGINT NOT NULL
);
"#,
    // Leases of allowance (src/governance/lease.rs): headroom a node took to admit against in
    // memory and has not used yet, in all (the counter) and per node (its holds, given back
    // with them when the node dies).
    r#"
ALTER TABLE governance_counters ADD COLUMN leased DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE governance_holds ADD COLUMN leased DOUBLE PRECISION NOT NULL DEFAULT 0;
"#,
    // SQLite drops its model and API key indexes for its block summaries; Postgres keeps no
    // summaries, so it keeps both indexes.
    "-- nothing to change on Postgres",
    // Postgres keeps a record's bodies in its `log_bodies` row, compressed by TOAST.
    "-- nothing to change on Postgres",
];

/// Any number will do, as long as nothing else in the database takes the same lock.
const MIGRATION_LOCK: i64 = 0x746f_6c6c_6761_7465;

/// How many migrations the given backend has: the schema version this binary makes.
pub fn latest(backend: Backend) -> usize {
    list(backend).len()
}

fn list(backend: Backend) -> &'static [&'static str] {
    match backend {
        Backend::Sqlite => SQLITE,
        Backend::Postgres => POSTGRES,
    }
}

/// How many migrations ran on the database (0 for an empty one); writes nothing.
pub fn version(db: &mut Db) -> StoreResult<usize> {
    let version = match db.backend() {
        Backend::Sqlite => db.query_row("PRAGMA user_version", &[], |r| r.get::<u64>(0))?,
        Backend::Postgres => {
            let made = db.query_row(
                "SELECT to_regclass('schema_version') IS NOT NULL",
                &[],
                |r| r.get::<bool>(0),
            )?;
            if !made {
                return Ok(0);
            }
            db.query_opt("SELECT version FROM schema_version", &[], |r| {
                r.get::<u64>(0)
            })?
            .unwrap_or(0)
        }
    };
    Ok(version as usize)
}

/// Applies the pending migrations, each in a transaction of its own.
pub fn run(db: &mut Db) -> StoreResult<()> {
    let backend = db.backend();
    loop {
        let mut tx = db.transaction()?;
        if backend == Backend::Postgres {
            tx.execute("SELECT pg_advisory_xact_lock(?1)", &params![MIGRATION_LOCK])?;
            tx.batch("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)")?;
        }
        let done = version(&mut tx)?;
        let Some(sql) = list(backend).get(done) else {
            return Ok(());
        };
        match backend {
            Backend::Sqlite => {
                tx.batch(sql)?;
                tx.batch(&format!("PRAGMA user_version = {}", done + 1))?;
            }
            Backend::Postgres => {
                tx.batch(&sql.replace(" TEXT", " TEXT COLLATE \"C\""))?;
                tx.execute("DELETE FROM schema_version", &[])?;
                tx.execute(
                    "INSERT INTO schema_version (version) VALUES (?1)",
                    &params![done + 1],
                )?;
            }
        }
        tx.commit()?;
    }
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use crate::api::workspaces::{DEFAULT_WORKSPACE_ID, DEFAULT_WORKSPACE_SLUG};
    use crate::store::db::Db;

    /// The schema before workspaces, budgets and the audit log.
    const BEFORE_WORKSPACES: usize = 2;

    #[test]
    fn both_backends_number_their_migrations_alike() {
        assert_eq!(super::SQLITE.len(), super::POSTGRES.len());
    }

    #[test]
    fn an_existing_install_gets_the_default_workspace_and_its_keys_move_there() {
        let conn = Connection::open_in_memory().unwrap();
        for sql in &super::SQLITE[..BEFORE_WORKSPACES] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", BEFORE_WORKSPACES)
            .unwrap();
        for (id, key_type, workspace) in [
            ("ws-none", "workspace-service", None),
            ("ws-dangling", "workspace-service", Some("ws-gone")),
            ("admin", "organisation-service", Some("ws-odd")),
            ("first", "organisation-service", None),
        ] {
            let mode = if id == "first" { "auto" } else { "api" };
            conn.execute(
                "INSERT INTO api_keys (id, name, key_type, workspace_id, hash, masked, scopes,
                    creation_mode, created_at, updated_at)
                 VALUES (?1, ?1, ?2, ?3, ?1, 'm', '[\"logs.list\"]', ?4, 't', 't')",
                rusqlite::params![id, key_type, workspace, mode],
            )
            .unwrap();
        }
        let mut db = Db::Sqlite(conn);
        super::run(&mut db).unwrap();
        let Db::Sqlite(conn) = &db else {
            unreachable!()
        };

        let (id, name): (String, String) = conn
            .query_row(
                "SELECT id, name FROM workspaces WHERE slug = ?1",
                [DEFAULT_WORKSPACE_SLUG],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(
            (id.as_str(), name.as_str()),
            (DEFAULT_WORKSPACE_ID, "Default")
        );
        let workspace_of = |key: &str| -> Option<String> {
            conn.query_row(
                "SELECT workspace_id FROM api_keys WHERE id = ?1",
                [key],
                |r| r.get(0),
            )
            .unwrap()
        };
        assert_eq!(
            workspace_of("ws-none").as_deref(),
            Some(DEFAULT_WORKSPACE_ID)
        );
        assert_eq!(
            workspace_of("ws-dangling").as_deref(),
            Some(DEFAULT_WORKSPACE_ID)
        );
        assert_eq!(workspace_of("admin"), None);
        // The first admin key (made by `serve`) holds every scope, the new ones included.
        let scopes_of = |key: &str| -> Vec<String> {
            let text: String = conn
                .query_row("SELECT scopes FROM api_keys WHERE id = ?1", [key], |r| {
                    r.get(0)
                })
                .unwrap();
            let mut scopes: Vec<String> = serde_json::from_str(&text).unwrap();
            scopes.sort();
            scopes
        };
        let mut every: Vec<String> = crate::api::scopes::ALL
            .iter()
            .filter(|s| {
                s.starts_with("policies.")
                    || s.starts_with("workspaces.")
                    || s.starts_with("audit")
                    || (s.starts_with("prompts.") && **s != "prompts.render")
                    || s.starts_with("guardrails.")
                    || s.starts_with("cache.")
            })
            .map(|s| s.to_string())
            .chain(["logs.list".to_string()])
            .collect();
        every.sort();
        assert_eq!(scopes_of("first"), every);
        assert_eq!(scopes_of("admin"), ["logs.list"], "other keys keep theirs");
        let created: String = conn
            .query_row("SELECT created_at FROM workspaces", [], |r| r.get(0))
            .unwrap();
        assert!(crate::store::parse_time(&created).is_some(), "{created}");

        // Running again changes nothing.
        super::run(&mut db).unwrap();
        let Db::Sqlite(conn) = &db else {
            unreachable!()
        };
        let n: i64 = conn
            .query_row("SELECT COUNT(*) FROM workspaces", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 1);
    }

    #[test]
    fn nodes_that_start_together_on_postgres_migrate_once() {
        let Some(url) = crate::store::tests::new_postgres_database() else {
            return;
        };
        let opened: Vec<_> = std::thread::scope(|s| {
            let starts: Vec<_> = (0..3)
                .map(|_| {
                    s.spawn(|| {
                        let mut db = Db::Pg(Box::new(crate::store::db::Pg::connect(&url).unwrap()));
                        super::run(&mut db).map(|()| db)
                    })
                })
                .collect();
            starts.into_iter().map(|t| t.join().unwrap()).collect()
        });
        for db in opened {
            let mut db = db.unwrap();
            let version: u64 = db
                .query_row("SELECT version FROM schema_version", &[], |r| r.get(0))
                .unwrap();
            assert_eq!(version as usize, super::POSTGRES.len());
            let workspaces: u64 = db
                .query_row("SELECT COUNT(*) FROM workspaces", &[], |r| r.get(0))
                .unwrap();
            assert_eq!(workspaces, 1);
        }
    }
}
