//! `tollgate logs`: request records, listed, shown, followed live and exported.

mod csv;
mod export;
pub mod filter;
mod record;
mod tail;

use clap::{Args, Subcommand};

use super::ctx::Ctx;
use crate::api::logs::{LogPage, LogRecord, MAX_LOG_LIMIT};
use crate::error::Result;
use crate::output::Format;
use filter::{segment, with_query, FilterArgs};

const EXAMPLES: &str = "\
Examples:
  tollgate logs list --since 1h --status 5xx
  tollgate logs list --model gpt-4o --metadata team=search --limit 200 -o json
  tollgate logs get 0193a1b2-...                       # the record with its bodies
  tollgate logs tail --model gpt-4o --status 5xx -o ndjson | jq .latency_ms
  tollgate logs tail --since 10m                       # the last ten minutes, then live
  tollgate logs export --since 7d --format csv --out last-week.csv";

#[derive(Debug, Subcommand)]
#[command(after_help = EXAMPLES)]
pub enum LogsCommand {
    /// List request records, newest first
    #[command(visible_alias = "ls")]
    List(ListArgs),
    /// Show one record with its request and response bodies
    Get {
        /// The record's id (the ID column of `logs list`)
        id: String,
    },
    /// Print each finished request as it happens, until Ctrl-C; with --since, the earlier
    /// ones first
    Tail(tail::TailArgs),
    /// Write every matching record as NDJSON or CSV
    Export(export::ExportArgs),
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    filter: FilterArgs,
    /// How many records to show (1 to 1000)
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=MAX_LOG_LIMIT as i64))]
    limit: u32,
    /// Continue where an earlier list stopped (it prints the cursor on stderr)
    #[arg(long)]
    cursor: Option<String>,
}

pub async fn run(ctx: &Ctx, cmd: LogsCommand) -> Result<()> {
    match cmd {
        LogsCommand::List(args) => list(ctx, args).await,
        LogsCommand::Get { id } => get(ctx, &id).await,
        LogsCommand::Tail(args) => tail::run(ctx, args).await,
        LogsCommand::Export(args) => export::run(ctx, args).await,
    }
}

async fn list(ctx: &Ctx, args: ListArgs) -> Result<()> {
    let mut filter = args.filter.to_filter();
    filter.limit = Some(args.limit);
    filter.cursor = args.cursor;
    let page: LogPage = ctx.client()?.get(&with_query("/v1/logs", &filter)).await?;
    ctx.printer.list(&page.data)?;
    if let Some(cursor) = page.next_cursor {
        ctx.printer
            .note(&format!("more records: add --cursor {cursor}"));
    }
    Ok(())
}

async fn get(ctx: &Ctx, id: &str) -> Result<()> {
    let record: LogRecord = ctx
        .client()?
        .get(&format!("/v1/logs/{}", segment(id)))
        .await?;
    if ctx.printer.format != Format::Table {
        return ctx.printer.document(&record);
    }
    ctx.printer.one(&record)?;
    for (title, body) in [
        ("Request body", &record.request_body),
        ("Response body", &record.response_body),
    ] {
        let text = match body {
            Some(body) => serde_json::to_string_pretty(body).unwrap_or_default(),
            None if record.bodies_logged => "(none)".into(),
            None => "(not logged)".into(),
        };
        ctx.printer.text(&format!("\n{title}:\n{text}\n"))?;
    }
    Ok(())
}
