//! `tollgate logs export`: every matching record, page by page, as NDJSON or CSV, to stdout or
//! to a file that appears only once it is complete.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};

use super::csv::Layout;
use super::filter::{with_query, FilterArgs};
use crate::api::logs::{LogCount, LogFilter, LogPage, MAX_LOG_LIMIT};
use crate::cli::ctx::Ctx;
use crate::client::ApiClient;
use crate::error::{CliError, ExitKind, Result};
use crate::output::progress;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ExportFormat {
    /// One JSON record per line
    Ndjson,
    /// A fixed column list with a header row; metadata and bodies as JSON text
    Csv,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    filter: FilterArgs,
    #[arg(long, value_enum, default_value_t = ExportFormat::Ndjson)]
    format: ExportFormat,
    /// Write to this file, which appears only when the export is complete [default: stdout]
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Include each record's request and response bodies
    #[arg(long)]
    include_bodies: bool,
}

pub async fn run(ctx: &Ctx, args: ExportArgs) -> Result<()> {
    let client = ctx.client()?;
    let mut filter = args.filter.to_filter();
    filter.include_bodies = args.include_bodies;
    let export = async {
        let written = match &args.out {
            Some(target) => {
                let mut file = PendingFile::create(target)?;
                let written = copy(ctx, &client, filter, &args, &mut file.writer).await?;
                file.commit()?;
                written
            }
            None => {
                let mut stdout = BufWriter::new(std::io::stdout().lock());
                copy(ctx, &client, filter, &args, &mut stdout).await?
            }
        };
        let to = args
            .out
            .as_ref()
            .map(|p| format!(" to {}", p.display()))
            .unwrap_or_default();
        ctx.printer.note(&format!("exported {written} records{to}"));
        Ok(())
    };
    tokio::select! {
        result = export => result,
        _ = tokio::signal::ctrl_c() => Err(CliError::new(ExitKind::Interrupted, "interrupted")),
    }
}

/// Pages through `/v1/logs` with the largest page and the cursor; returns how many records
/// were written.
async fn copy(
    ctx: &Ctx,
    client: &ApiClient,
    mut filter: LogFilter,
    args: &ExportArgs,
    out: &mut dyn Write,
) -> Result<u64> {
    let bar = progress::bar(&ctx.printer, 0, "exporting");
    if !bar.is_hidden() {
        let count_filter = LogFilter {
            include_bodies: false,
            ..filter.clone()
        };
        let count: LogCount = client
            .get(&with_query("/v1/logs/count", &count_filter))
            .await?;
        bar.set_length(count.total);
    }
    let csv = matches!(args.format, ExportFormat::Csv).then(|| Layout::new(args.include_bodies));
    if let Some(csv) = &csv {
        out.write_all(csv.header().as_bytes())
            .map_err(write_error)?;
    }
    filter.limit = Some(MAX_LOG_LIMIT);
    let mut written = 0;
    loop {
        let page: LogPage = client.get(&with_query("/v1/logs", &filter)).await?;
        for record in &page.data {
            match &csv {
                Some(csv) => out.write_all(csv.row(record).as_bytes()),
                None => serde_json::to_writer(&mut *out, record)
                    .map_err(std::io::Error::from)
                    .and_then(|_| out.write_all(b"\n")),
            }
            .map_err(write_error)?;
        }
        out.flush().map_err(write_error)?;
        written += page.data.len() as u64;
        bar.inc(page.data.len() as u64);
        match page.next_cursor {
            Some(cursor) if !page.data.is_empty() => filter.cursor = Some(cursor),
            _ => break,
        }
    }
    bar.finish_and_clear();
    Ok(written)
}

fn write_error(e: std::io::Error) -> CliError {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        CliError::new(ExitKind::BrokenPipe, "")
    } else {
        CliError::failed(format!("cannot write the export: {e}"))
    }
}

/// A temp file beside the target, renamed over it by `commit`; dropped uncommitted (an error,
/// Ctrl-C), it is removed, so a failed export never leaves half a file.
struct PendingFile {
    temp: PathBuf,
    target: PathBuf,
    writer: BufWriter<File>,
}

impl PendingFile {
    fn create(target: &Path) -> Result<PendingFile> {
        let name = target
            .file_name()
            .ok_or_else(|| CliError::usage(format!("--out {} is not a file", target.display())))?;
        let temp = target.with_file_name(format!(
            ".{}.{}.partial",
            name.to_string_lossy(),
            std::process::id()
        ));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)
            .map_err(|e| CliError::failed(format!("cannot write {}: {e}", target.display())))?;
        Ok(PendingFile {
            temp,
            target: target.to_path_buf(),
            writer: BufWriter::new(file),
        })
    }

    fn commit(mut self) -> Result<()> {
        self.writer
            .flush()
            .and_then(|_| self.writer.get_ref().sync_all())
            .map_err(write_error)?;
        std::fs::rename(&self.temp, &self.target).map_err(|e| {
            CliError::failed(format!(
                "cannot move the export to {}: {e}",
                self.target.display()
            ))
        })
    }
}

impl Drop for PendingFile {
    fn drop(&mut self) {
        // After a commit the temp name no longer exists and this does nothing.
        let _ = std::fs::remove_file(&self.temp);
    }
}
