//! Persistence behind one type. SQLite (WAL) in the data directory is the embedded default,
//! Postgres the second backend (`--database-url`); all SQL lives under this module, written
//! once through [`db`] where the two dialects agree.

mod attempts;
mod audit;
mod cache;
mod configs;
pub mod copy;
mod counters;
pub mod db;
pub mod governance;
pub mod guardrails;
mod integrations;
mod keys;
pub mod listen;
mod log_blocks;
pub mod logs;
mod migrations;
mod packed;
mod partitions;
mod payloads;
pub mod prompts;
pub mod schema;
pub mod secrets;
mod workspaces;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use serde_json::{Map, Value};

use db::Db;

pub use keys::{KeyRecord, NewKey};
pub use secrets::Cipher;

#[derive(Debug)]
pub enum StoreError {
    NotFound(String),
    Conflict(String),
    Invalid(String),
    /// The database cannot be reached or cannot take writes now: why.
    Unavailable(String),
    Other(String),
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::NotFound(m)
            | StoreError::Conflict(m)
            | StoreError::Invalid(m)
            | StoreError::Unavailable(m)
            | StoreError::Other(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for StoreError {}

impl From<db::Error> for StoreError {
    fn from(e: db::Error) -> Self {
        if e.is_unavailable() {
            StoreError::Unavailable(e.to_string())
        } else {
            StoreError::Other(format!("database error: {e}"))
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        db::Error::from(e).into()
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

pub struct Store {
    conn: Mutex<Db>,
    /// Reads of request records, which may be long, on a connection of their own.
    logs_conn: Mutex<Db>,
    location: Location,
    cipher: Cipher,
}

/// Where a store keeps its data.
#[derive(Debug, Clone)]
pub enum Location {
    /// The database file.
    Sqlite(PathBuf),
    Postgres(String),
}

impl Location {
    /// The Postgres database at `url` if one is given, else the SQLite store in `data_dir`.
    pub fn of(data_dir: &Path, url: Option<&str>) -> Location {
        match url {
            Some(url) => Location::Postgres(url.to_string()),
            None => Location::Sqlite(data_dir.join(DB_FILE)),
        }
    }

    /// The file's path, or the URL without its password.
    pub fn shown(&self) -> String {
        match self {
            Location::Sqlite(path) => path.display().to_string(),
            Location::Postgres(url) => db::redacted(url),
        }
    }

    /// A connection to a store that exists (a SQLite file is not created), not migrated.
    pub fn connect_existing(&self) -> StoreResult<Db> {
        if let Location::Sqlite(path) = self {
            if !path.is_file() {
                return Err(StoreError::NotFound(format!(
                    "there is no tollgate store at {}",
                    path.display()
                )));
            }
        }
        connect(self)
    }
}

pub const DB_FILE: &str = "tollgate.db";

/// The best plan of a record filter depends on its values: a rare cost bound wants the cost
/// index, a common one the time order. After five runs Postgres gives a prepared statement one
/// generic plan, which for a rare value reads every partition (600 ms over a million records),
/// so the connection that reads records plans each query for its values.
const PLAN_EACH_QUERY: &str = "SET plan_cache_mode = force_custom_plan";

impl Store {
    /// Opens (creating if needed) `tollgate.db` in `data_dir` and runs pending migrations.
    pub fn open(data_dir: &Path, cipher: Cipher) -> StoreResult<Store> {
        let path = data_dir.join(DB_FILE);
        create_private_file(&path)
            .map_err(|e| StoreError::Other(format!("creating {}: {e}", path.display())))?;
        Store::at(Location::Sqlite(path), cipher)
    }

    /// Opens the Postgres database at `url` and runs pending migrations.
    pub fn open_postgres(url: &str, cipher: Cipher) -> StoreResult<Store> {
        Store::at(Location::Postgres(url.to_string()), cipher)
    }

    fn at(location: Location, cipher: Cipher) -> StoreResult<Store> {
        let mut conn = connect(&location)?;
        if let Db::Sqlite(c) = &conn {
            c.pragma_update(None, "journal_mode", "WAL")?;
        }
        migrations::run(&mut conn)?;
        let mut logs_conn = connect(&location)?;
        if let Db::Pg(pg) = &mut logs_conn {
            pg.set_session(PLAN_EACH_QUERY)?;
        }
        Ok(Store {
            conn: Mutex::new(conn),
            logs_conn: Mutex::new(logs_conn),
            location,
            cipher,
        })
    }

    pub fn backend(&self) -> db::Backend {
        match self.location {
            Location::Sqlite(_) => db::Backend::Sqlite,
            Location::Postgres(_) => db::Backend::Postgres,
        }
    }

    fn conn(&self) -> MutexGuard<'_, Db> {
        // A panic while holding the lock cannot leave the database half-written (each write is
        // one transaction), so a poisoned lock is safe to keep using.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes SQLite's WAL back into the main file (used before reading the file in tests and
    /// on shutdown); nothing to do on Postgres.
    pub fn checkpoint(&self) -> StoreResult<()> {
        if let Db::Sqlite(c) = &*self.conn() {
            c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")?;
        }
        Ok(())
    }
}

/// A new connection to the store's database.
fn connect(location: &Location) -> StoreResult<Db> {
    match location {
        Location::Sqlite(path) => {
            let conn = rusqlite::Connection::open(path)?;
            conn.pragma_update(None, "synchronous", "NORMAL")?;
            conn.pragma_update(None, "foreign_keys", "ON")?;
            conn.busy_timeout(std::time::Duration::from_secs(5))?;
            Ok(Db::Sqlite(conn))
        }
        Location::Postgres(url) => Ok(Db::Pg(Box::new(
            db::Pg::connect(url).map_err(StoreError::Other)?,
        ))),
    }
}

/// Creates an empty file readable by its owner only, unless it exists. SQLite gives its `-wal`
/// and `-shm` files the database file's permissions.
fn create_private_file(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        other => other.map(drop),
    }
}

/// A new identifier in UUID v7 form: the time in milliseconds, then random bits. Made on every
/// gateway request (so without `format!`); ids made one after another sort in time order, so
/// the request log's indexes on them grow at their ends instead of at random pages.
pub fn new_id() -> String {
    new_id_at(crate::observe::record::now_ms())
}

/// A UUID v7 whose time is `ms` (milliseconds since the Unix epoch).
pub fn new_id_at(ms: i64) -> String {
    let mut b: [u8; 16] = rand::random();
    let ms = ms.to_be_bytes();
    b[..6].copy_from_slice(&ms[2..]);
    b[6] = 0x70 | (b[6] & 0x0f);
    b[8] = 0x80 | (b[8] & 0x3f);
    let mut id = String::with_capacity(36);
    for (i, part) in [&b[..4], &b[4..6], &b[6..8], &b[8..10], &b[10..]]
        .iter()
        .enumerate()
    {
        if i > 0 {
            id.push('-');
        }
        secrets::push_hex(&mut id, part);
    }
    id
}

/// The time in a UUID v7 made by [`new_id_at`].
pub fn id_time(id: &str) -> Option<i64> {
    let hex: String = id.get(..13)?.chars().filter(|c| *c != '-').collect();
    (hex.len() == 12 && id.as_bytes().get(14) == Some(&b'7'))
        .then(|| i64::from_str_radix(&hex, 16).ok())
        .flatten()
}

/// `len` random characters from `[a-z0-9]`.
pub fn random_suffix(len: usize) -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    (0..len)
        .map(|_| CHARS[rng.gen_range(0..CHARS.len())] as char)
        .collect()
}

pub fn now() -> String {
    format_time(time::OffsetDateTime::now_utc())
}

pub fn format_time(t: time::OffsetDateTime) -> String {
    t.replace_nanosecond(0)
        .unwrap_or(t)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

pub fn parse_time(s: &str) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
}

/// `SELECT COUNT(*)` of a table under a filter, for list totals.
fn total(conn: &mut Db, table: &str, filter: &str, values: &[db::Param]) -> StoreResult<u64> {
    let sql = format!("SELECT COUNT(*) FROM {table} {filter}");
    Ok(conn.query_row(&sql, values, |r| r.get(0))?)
}

/// `?FROM, ?FROM+1, ...`: `n` placeholders for a list after `IN` (`NULL`, matching nothing,
/// when `n` is 0).
fn placeholders(from: usize, n: usize) -> String {
    if n == 0 {
        return "NULL".into();
    }
    (from..from + n)
        .map(|i| format!("?{i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `prefix-` + up to five letters of the name + `-` + six random characters, as Portkey's slugs
/// (`stem` when the name has no letters).
fn new_slug(prefix: &str, name: &str, stem: &str) -> String {
    let from_name: String = name
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(5)
        .collect::<String>()
        .to_ascii_lowercase();
    let stem = if from_name.is_empty() {
        stem
    } else {
        &from_name
    };
    format!("{prefix}-{stem}-{}", random_suffix(6))
}

/// How an update changes a key's or a workspace's defaults: a `config_id` replaces the current
/// one (an empty one removes it); `metadata` keys are set, and a null value removes one.
fn merge_defaults(
    config_id: &mut Option<String>,
    metadata: &mut Map<String, Value>,
    change_config_id: Option<&str>,
    change_metadata: &Map<String, Value>,
) {
    match change_config_id {
        Some("") => *config_id = None,
        Some(slug) => *config_id = Some(slug.to_string()),
        None => {}
    }
    for (k, v) in change_metadata {
        if v.is_null() {
            metadata.remove(k);
        } else {
            metadata.insert(k.clone(), v.clone());
        }
    }
}

/// `conflict` when `e` is a unique violation, else the database error.
fn unique_or(e: db::Error, conflict: impl FnOnce() -> StoreError) -> StoreError {
    if e.is_unique_violation() {
        conflict()
    } else {
        e.into()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use serde_json::{json, Map, Value};

    /// A store on SQLite, and one on a database of its own in the Postgres test cluster when
    /// `TOLLGATE_TEST_DATABASE_URL` names one.
    pub fn stores() -> Vec<(tempfile::TempDir, super::Store)> {
        let dir = tempfile::tempdir().unwrap();
        let sqlite = super::Store::open(dir.path(), cipher()).unwrap();
        let mut stores = vec![(dir, sqlite)];
        if let Some(pg) = postgres_store() {
            stores.push((tempfile::tempdir().unwrap(), pg));
        }
        stores
    }

    /// A store on a new database in the Postgres test cluster, if one is given.
    pub fn postgres_store() -> Option<super::Store> {
        let url = new_postgres_database()?;
        Some(super::Store::open_postgres(&url, cipher()).unwrap())
    }

    /// The master key of test stores.
    pub fn cipher() -> super::Cipher {
        super::Cipher::new(&[7; 32])
    }

    /// The ids of the records `store` lists for `query` (filter pairs), newest first.
    pub fn log_ids(store: &super::Store, query: &[(&str, &str)]) -> Vec<String> {
        let f = crate::api::logs::LogFilter::from_pairs(query.iter().copied()).unwrap();
        let (records, _) = store.logs(&f).unwrap();
        records.into_iter().map(|r| r.id).collect()
    }

    /// The URL of a new, empty database in the Postgres test cluster, if one is given.
    pub fn new_postgres_database() -> Option<String> {
        let admin = super::db::tests::test_database_url()?;
        let name = format!("tg_unit_{}", super::random_suffix(12));
        let mut db = super::db::Db::Pg(Box::new(super::db::Pg::connect(&admin).unwrap()));
        db.batch(&format!("CREATE DATABASE {name}")).unwrap();
        let mut url = url::Url::parse(&admin).unwrap();
        url.set_path(&name);
        Some(url.into())
    }

    #[test]
    fn defaults_merge_only_what_the_change_names() {
        let (mut config, mut metadata) = (Some("pc-a".to_string()), Map::new());
        let meta = |v: Value| v.as_object().cloned().unwrap();
        metadata.extend(meta(json!({"team": "search", "env": "ci"})));
        super::merge_defaults(
            &mut config,
            &mut metadata,
            None,
            &meta(json!({"team": "ml"})),
        );
        assert_eq!(config.as_deref(), Some("pc-a"));
        assert_eq!(
            Value::Object(metadata.clone()),
            json!({"team": "ml", "env": "ci"})
        );
        super::merge_defaults(
            &mut config,
            &mut metadata,
            Some("pc-b"),
            &meta(json!({"env": null})),
        );
        assert_eq!(config.as_deref(), Some("pc-b"));
        assert_eq!(Value::Object(metadata.clone()), json!({"team": "ml"}));
        super::merge_defaults(&mut config, &mut metadata, Some(""), &Map::new());
        assert_eq!(config, None);
    }

    #[test]
    fn slugs_carry_the_name() {
        let s = super::new_slug("pc", "Prod Routing", "cfg");
        assert!(s.starts_with("pc-prodr-") && s.len() == 15, "{s}");
        assert!(super::new_slug("ws", "!!", "ws").starts_with("ws-ws-"));
    }

    #[test]
    fn ids_are_uuid_v7_in_time_order() {
        let id = super::new_id();
        assert_eq!(id.len(), 36, "{id}");
        assert_eq!(&id[14..15], "7");
        assert!("89ab".contains(&id[19..20]), "{id}");
        std::thread::sleep(std::time::Duration::from_millis(2));
        let later = super::new_id();
        assert!(later > id, "{later} sorts after {id}");
        let ms = super::id_time(&id).unwrap();
        assert!((crate::observe::record::now_ms() - ms).abs() < 1000);
        assert_eq!(
            super::id_time(&super::new_id_at(1_764_581_400_123)),
            Some(1_764_581_400_123)
        );
        assert_eq!(super::id_time("not-an-id"), None);
    }
}
