//! Schema migrations, applied in order at start; `PRAGMA user_version` records how many ran.

use rusqlite::Connection;

use super::StoreResult;

const MIGRATIONS: &[&str] = &[r#"
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
"#];

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
