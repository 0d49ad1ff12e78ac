//! `tollgate db migrate` and `tollgate db status`: a store's schema version and what it holds,
//! read without a server.

use serde::Serialize;

use super::db::{Backend, Db};
use super::{migrations, partitions, Location, StoreError, StoreResult};

/// What `db migrate` did.
#[derive(Debug, Serialize)]
pub struct Migrated {
    pub backend: &'static str,
    pub location: String,
    /// The schema version before and after.
    pub from: usize,
    pub to: usize,
}

/// Applies the store's pending migrations; running it again changes nothing.
pub fn migrate(location: &Location) -> StoreResult<Migrated> {
    let mut db = location.connect_existing()?;
    let from = migrations::version(&mut db)?;
    not_newer(&db, from)?;
    migrations::run(&mut db)?;
    Ok(Migrated {
        backend: backend_name(db.backend()),
        location: location.shown(),
        from,
        to: migrations::version(&mut db)?,
    })
}

/// A schema this binary does not know is left alone.
fn not_newer(db: &Db, version: usize) -> StoreResult<()> {
    let latest = migrations::latest(db.backend());
    if version > latest {
        return Err(StoreError::Invalid(format!(
            "the store's schema is at version {version}, newer than this tollgate's ({latest}): \
             it was made by a newer tollgate"
        )));
    }
    Ok(())
}

#[derive(Debug, Serialize)]
pub struct Status {
    pub backend: &'static str,
    pub location: String,
    pub schema_version: usize,
    /// The version this binary migrates to.
    pub latest_version: usize,
    pub pending_migrations: usize,
    /// The database file and its write-ahead log, or the Postgres database.
    pub bytes: u64,
    pub tables: Vec<TableRows>,
    /// Postgres: the days the request records are partitioned into.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record_partitions: Option<partitions::Summary>,
}

#[derive(Debug, Serialize)]
pub struct TableRows {
    pub table: String,
    pub rows: u64,
}

/// The store's schema version and rows per table; migrates nothing.
pub fn status(location: &Location) -> StoreResult<Status> {
    let mut db = location.connect_existing()?;
    let backend = db.backend();
    let schema_version = migrations::version(&mut db)?;
    let latest_version = migrations::latest(backend);
    let mut tables = Vec::new();
    for table in tables_of(&mut db)? {
        let rows = super::total(&mut db, &format!("\"{table}\""), "", &[])?;
        tables.push(TableRows { table, rows });
    }
    let (bytes, record_partitions) = match location {
        Location::Sqlite(path) => {
            let size = |p: &std::path::Path| std::fs::metadata(p).map_or(0, |m| m.len());
            let mut wal = path.as_os_str().to_owned();
            wal.push("-wal");
            (size(path) + size(wal.as_ref()), None)
        }
        Location::Postgres(_) => {
            let bytes = db.query_row("SELECT pg_database_size(current_database())", &[], |r| {
                r.get(0)
            })?;
            let partitioned = tables.iter().any(|t| t.table == "logs");
            (
                bytes,
                partitioned
                    .then(|| partitions::summary(&mut db))
                    .transpose()?,
            )
        }
    };
    Ok(Status {
        backend: backend_name(backend),
        location: location.shown(),
        schema_version,
        latest_version,
        pending_migrations: latest_version.saturating_sub(schema_version),
        bytes,
        tables,
        record_partitions,
    })
}

pub fn backend_name(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    }
}

/// The store's tables by name (on Postgres, partitioned tables without their partitions).
pub(super) fn tables_of(db: &mut Db) -> StoreResult<Vec<String>> {
    let sql = match db.backend() {
        Backend::Sqlite => {
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' \
             ESCAPE '\\' ORDER BY name"
        }
        Backend::Postgres => {
            "SELECT c.relname::TEXT FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') \
             AND NOT c.relispartition ORDER BY c.relname"
        }
    };
    Ok(db.query_map(sql, &[], |r| r.get(0))?)
}
