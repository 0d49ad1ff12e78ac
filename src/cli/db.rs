//! `tollgate db`: the store itself, without a server: migrate, status, and copy into Postgres.

use std::path::PathBuf;
use std::time::Instant;

use clap::{Args, Subcommand};
use indicatif::ProgressBar;
use serde::Serialize;

use super::args::StoreArgs;
use super::ctx::Ctx;
use crate::error::{CliError, ExitKind, Result};
use crate::output::{cell, progress, Fields, Format, Printer};
use crate::store::copy::{CopyError, Counted};
use crate::store::schema::{Migrated, Status};
use crate::store::{db::redacted, secrets::MASTER_KEY_FILE, Location, StoreError, DB_FILE};

const EXAMPLES: &str = "\
Examples:
  tollgate db status
  tollgate db migrate --database-url postgres://tollgate@db.internal/tollgate
  tollgate db copy --from sqlite:/var/lib/tollgate --to postgres://tollgate@db.internal/tollgate
  tollgate db status -o json | jq .pending_migrations";

#[derive(Debug, Subcommand)]
#[command(after_help = EXAMPLES)]
pub enum DbCommand {
    /// Apply the store's pending schema migrations (`serve` also does on start)
    Migrate(StoreArgs),
    /// Show the store's backend, schema version, rows per table and, on Postgres, the request
    /// records' partitions; migrates nothing
    Status(StoreArgs),
    /// Copy a SQLite store into a new Postgres database, in one transaction, with the row
    /// counts checked at the end
    Copy(CopyArgs),
}

#[derive(Debug, Args)]
#[command(
    after_help = "Stop the server first: rows written during the copy are not copied. The copy is one \
Postgres transaction: interrupted or failed, it leaves the target empty, and running it again \
starts over. Servers on the new database need the source's master key (its data dir's \
master.key, or the same TOLLGATE_MASTER_KEY): provider keys are copied sealed with it.\n\n\
Example:\n  tollgate db copy --from sqlite:/var/lib/tollgate --to postgres://tollgate@db.internal/tollgate"
)]
pub struct CopyArgs {
    /// The SQLite store: sqlite:PATH, PATH being a data dir or its tollgate.db
    #[arg(long, value_name = "sqlite:PATH")]
    from: String,
    /// The Postgres database to fill, new or empty (its schema is made first), e.g.
    /// postgres://tollgate:PASSWORD@db.internal/tollgate
    #[arg(long, value_name = "URL")]
    to: String,
}

pub fn run(ctx: &Ctx, cmd: DbCommand) -> Result<()> {
    match cmd {
        DbCommand::Migrate(args) => migrate(ctx, &args),
        DbCommand::Status(args) => status(ctx, &args),
        DbCommand::Copy(args) => copy(ctx, &args),
    }
}

fn migrate(ctx: &Ctx, args: &StoreArgs) -> Result<()> {
    let done = crate::store::schema::migrate(&args.location()).map_err(store_error)?;
    ctx.printer.note(&if done.from == done.to {
        format!(
            "The schema is at the latest version ({}): nothing to do.",
            done.to
        )
    } else {
        format!(
            "Migrated the schema from version {} to {}.",
            done.from, done.to
        )
    });
    ctx.printer.one(&done)
}

impl Fields for Migrated {
    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("backend", self.backend.to_string()),
            ("location", self.location.clone()),
            ("from version", self.from.to_string()),
            ("to version", self.to.to_string()),
        ]
    }
}

fn status(ctx: &Ctx, args: &StoreArgs) -> Result<()> {
    let status = crate::store::schema::status(&args.location()).map_err(store_error)?;
    if ctx.printer.format != Format::Table {
        return ctx.printer.document(&status);
    }
    ctx.printer.one(&status)?;
    let rows = status
        .tables
        .iter()
        .map(|t| vec![t.table.clone(), t.rows.to_string()])
        .collect();
    ctx.printer.table(&["table", "rows"], rows)?;
    if status.pending_migrations > 0 {
        ctx.printer.note(&format!(
            "{} migrations are pending: `tollgate db migrate` (or starting `serve`) applies them.",
            status.pending_migrations
        ));
    }
    Ok(())
}

impl Fields for Status {
    fn fields(&self) -> Vec<(&'static str, String)> {
        let mut fields = vec![
            ("backend", self.backend.to_string()),
            ("location", self.location.clone()),
            (
                "schema version",
                format!(
                    "{} (this tollgate's: {})",
                    self.schema_version, self.latest_version
                ),
            ),
            ("pending migrations", self.pending_migrations.to_string()),
            ("size", megabytes(self.bytes)),
        ];
        if let Some(p) = &self.record_partitions {
            fields.extend([
                ("record partitions", format!("{} days", p.days)),
                ("oldest day", cell(p.oldest.as_deref())),
                ("newest day", cell(p.newest.as_deref())),
                ("partitions' size", megabytes(p.bytes as u64)),
            ]);
        }
        fields
    }
}

fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// What `db copy` did.
#[derive(Serialize)]
struct Copied {
    from: String,
    to: String,
    tables: Vec<Counted>,
    rows: u64,
    /// Request records (the `logs` table).
    records: u64,
    seconds: f64,
    records_per_second: f64,
    /// The master key file the target's servers need, if the source's data dir has one.
    master_key: Option<PathBuf>,
}

fn copy(ctx: &Ctx, args: &CopyArgs) -> Result<()> {
    let source = source(&args.from)?;
    if !(args.to.starts_with("postgres://") || args.to.starts_with("postgresql://")) {
        return Err(CliError::usage(
            "--to takes the URL of a Postgres database (postgres://…)",
        )
        .hint("e.g. --to postgres://tollgate:PASSWORD@db.internal:5432/tollgate; create the database first (createdb tollgate)"));
    }
    let (from, to) = (source.shown(), redacted(&args.to));
    ctx.printer.note(&format!("Copying {from} into {to}"));
    let started = Instant::now();
    let mut bar = Bar {
        printer: &ctx.printer,
        bar: ProgressBar::hidden(),
    };
    let copied = crate::store::copy::copy(&source, &args.to, &mut bar);
    bar.bar.finish_and_clear();
    let tables = copied.map_err(|e| copy_error(e, &source))?;
    let seconds = started.elapsed().as_secs_f64();
    let records = tables
        .iter()
        .find(|t| t.table == "logs")
        .map_or(0, |t| t.target);
    let master_key = data_dir_of(&source)
        .map(|dir| dir.join(MASTER_KEY_FILE))
        .filter(|key| key.is_file());
    let copied = Copied {
        from,
        to,
        rows: tables.iter().map(|t| t.target).sum(),
        records,
        seconds,
        records_per_second: records as f64 / seconds.max(1e-3),
        master_key,
        tables,
    };
    if ctx.printer.format != Format::Table {
        ctx.printer.document(&copied)?;
    } else {
        let rows = copied
            .tables
            .iter()
            .map(|t| {
                vec![
                    t.table.to_string(),
                    t.source.to_string(),
                    t.target.to_string(),
                ]
            })
            .collect();
        ctx.printer
            .table(&["table", "source rows", "copied rows"], rows)?;
    }
    ctx.printer.note(&format!(
        "Copied {} rows ({} request records) in {:.1} s ({:.0} records/s); the counts match.",
        copied.rows, copied.records, copied.seconds, copied.records_per_second
    ));
    let key = match &copied.master_key {
        Some(path) => format!("{} (put it in their --data-dir)", path.display()),
        None => "the TOLLGATE_MASTER_KEY the source's server used".into(),
    };
    ctx.printer.note(&format!(
        "Provider keys were copied sealed with the source's master key: servers on {} need the \
         same key, {key}. Start one with `tollgate serve --database-url URL`.",
        copied.to
    ));
    Ok(())
}

/// `sqlite:PATH`: a data dir, or the database file in one.
fn source(from: &str) -> Result<Location> {
    let Some(path) = from.strip_prefix("sqlite:").filter(|p| !p.is_empty()) else {
        return Err(
            CliError::usage(format!("--from takes sqlite:PATH, not {from:?}")).hint(
                "name the SQLite store to copy: sqlite:DIR (a data dir holding tollgate.db) or sqlite:FILE",
            ),
        );
    };
    let path = PathBuf::from(path);
    Ok(Location::Sqlite(if path.is_dir() {
        path.join(DB_FILE)
    } else {
        path
    }))
}

fn data_dir_of(location: &Location) -> Option<PathBuf> {
    match location {
        Location::Sqlite(file) => file.parent().map(PathBuf::from),
        Location::Postgres(_) => None,
    }
}

fn copy_error(e: CopyError, source: &Location) -> CliError {
    let dir = data_dir_of(source).unwrap_or_default();
    match e {
        CopyError::SourceSchema { found, latest } if found < latest => CliError::failed(e.to_string())
            .hint(format!(
                "migrate it first: tollgate db migrate --data-dir {}",
                dir.display()
            )),
        CopyError::SourceSchema { .. } | CopyError::TargetSchema { .. } => {
            CliError::failed(e.to_string()).hint("copy it with the newer tollgate that made it")
        }
        CopyError::TargetNotEmpty(_) => CliError::new(ExitKind::Conflict, e.to_string()).hint(
            "copy into a new database (createdb NAME, or CREATE DATABASE NAME) and pass its URL as --to; \
             to start over, drop this one and create it again",
        ),
        CopyError::TargetBusy => CliError::new(ExitKind::Conflict, e.to_string())
            .hint("wait for it to finish; then this database is no longer empty"),
        CopyError::Mismatch(ref counts) => {
            let details = counts
                .iter()
                .filter(|c| c.source != c.target)
                .map(|c| format!("{}: {} rows in the source, {} copied", c.table, c.source, c.target))
                .collect();
            CliError::failed(e.to_string()).details(details).hint(
                "the target is as it was before the copy; check that no server uses the source \
                 (stop it), then run the copy again",
            )
        }
        CopyError::Store(StoreError::NotFound(m)) => CliError::new(ExitKind::NotFound, m)
            .hint("--from takes sqlite:DIR (a data dir holding tollgate.db) or sqlite:FILE"),
        CopyError::Store(e) => store_error(e),
    }
}

fn store_error(e: StoreError) -> CliError {
    match e {
        StoreError::NotFound(m) => CliError::new(ExitKind::NotFound, m).hint(
            "pass --data-dir (TOLLGATE_DATA_DIR) of an existing store, or --database-url; \
             `tollgate serve` makes a new store",
        ),
        StoreError::Other(m) if m.contains("Postgres") => CliError::failed(m).hint(
            "check the database URL: the server's address, port, user, password and database \
             name, and that the server is running",
        ),
        e => CliError::failed(e.to_string()),
    }
}

/// The copy's progress bar, on a terminal only.
struct Bar<'a> {
    printer: &'a Printer,
    bar: ProgressBar,
}

impl crate::store::copy::Progress for Bar<'_> {
    fn start(&mut self, rows: u64) {
        self.bar = progress::bar(self.printer, rows, "copying");
    }

    fn table(&mut self, name: &str) {
        self.bar.set_message(name.to_string());
    }

    fn copied(&mut self, rows: u64) {
        self.bar.inc(rows);
    }
}
