//! `tollgate logs tail`: follows `/v1/logs/stream`, printing each record as it arrives, and
//! reconnects after a drop or a server restart, resuming after the last event it printed.

use std::time::Duration;

use clap::Args;
use futures_util::StreamExt;

use super::filter::{with_query, FilterArgs};
use super::record::line;
use crate::api::logs::LogRecord;
use crate::cli::ctx::Ctx;
use crate::client::{api_error, root_cause, ApiClient};
use crate::error::{CliError, ExitKind, Result};
use crate::gateway::sse;
use crate::output::{to_yaml, Format};

const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// The server sends a keep-alive comment every 15 s: three missed ones mean a dead connection.
const SILENCE_LIMIT: Duration = Duration::from_secs(45);

#[derive(Debug, Args)]
pub struct TailArgs {
    #[command(flatten)]
    filter: FilterArgs,
}

/// Why a connection could not be opened.
enum Refused {
    /// Unreachable, or a server error (a restart in progress): try again.
    Retry(CliError),
    /// Rejected (bad filter, credential, scope): trying again cannot help.
    Fatal(CliError),
}

pub async fn run(ctx: &Ctx, args: TailArgs) -> Result<()> {
    let client = ctx.client()?;
    let filter = args.filter.to_filter();
    // The stream applies time bounds only when it catches up after an event id; resuming
    // "after event 0" makes it replay the records since --since before following new ones.
    let resume_after = filter.since.as_ref().map(|_| "0".to_string());
    let path = with_query("/v1/logs/stream", &filter);
    tokio::select! {
        result = follow(ctx, &client, &path, resume_after) => result,
        _ = tokio::signal::ctrl_c() => Ok(()),
    }
}

async fn follow(
    ctx: &Ctx,
    client: &ApiClient,
    path: &str,
    mut last_id: Option<String>,
) -> Result<()> {
    let mut backoff = FIRST_BACKOFF;
    let mut connected_before = false;
    loop {
        let trouble = match connect(client, path, last_id.as_deref()).await {
            Ok(response) => {
                if connected_before {
                    ctx.printer.note("reconnected");
                } else {
                    ctx.printer.note("following records (Ctrl-C to stop)");
                }
                connected_before = true;
                backoff = FIRST_BACKOFF;
                format!(
                    "connection lost ({})",
                    read(ctx, response, &mut last_id).await?
                )
            }
            Err(Refused::Fatal(e)) => return Err(e),
            // A server that is not there at the start is a mistake to report, not to wait out.
            Err(Refused::Retry(e)) if !connected_before => return Err(e),
            Err(Refused::Retry(e)) => format!("cannot reconnect ({})", e.message),
        };
        ctx.printer.note(&format!(
            "{trouble}; trying again in {:.1} s",
            backoff.as_secs_f64()
        ));
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

async fn connect(
    client: &ApiClient,
    path: &str,
    last_id: Option<&str>,
) -> Result<reqwest::Response, Refused> {
    let headers: Vec<(&str, String)> = last_id
        .map(|id| ("last-event-id", id.to_string()))
        .into_iter()
        .collect();
    let response = client
        .open_stream(path, &headers)
        .await
        .map_err(|e| match e.kind {
            ExitKind::Unreachable => Refused::Retry(e),
            _ => Refused::Fatal(e),
        })?;
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let error = api_error(status, &response.text().await.unwrap_or_default());
    Err(if status.is_server_error() {
        Refused::Retry(error)
    } else {
        Refused::Fatal(error)
    })
}

/// Prints records until the connection ends; returns why it ended. Errors are only those that
/// end the command (stdout closed, an oversized event).
async fn read(
    ctx: &Ctx,
    response: reqwest::Response,
    last_id: &mut Option<String>,
) -> Result<String> {
    let mut decoder = sse::Decoder::default();
    let mut events = Vec::new();
    let mut bytes = response.bytes_stream();
    loop {
        // An event cut off by the end of the stream is dropped, not finished: the server sends
        // it again after the last id we saw.
        let chunk = match tokio::time::timeout(SILENCE_LIMIT, bytes.next()).await {
            Err(_) => return Ok(format!("silent for {} s", SILENCE_LIMIT.as_secs())),
            Ok(None) => return Ok("the server closed it".into()),
            Ok(Some(Err(e))) => return Ok(root_cause(&e)),
            Ok(Some(Ok(chunk))) => chunk,
        };
        decoder
            .feed(&chunk, &mut events)
            .map_err(|_| CliError::failed("the server sent an event over 16 MiB"))?;
        for event in events.drain(..) {
            if event.event.as_deref().is_some_and(|name| name != "log") {
                continue;
            }
            match serde_json::from_str::<LogRecord>(&event.data) {
                Ok(record) => print(ctx, &record)?,
                Err(e) => ctx
                    .printer
                    .warn(&format!("skipped a record that does not parse: {e}")),
            }
            if event.id.is_some() {
                *last_id = event.id;
            }
        }
    }
}

fn print(ctx: &Ctx, record: &LogRecord) -> Result<()> {
    match ctx.printer.format {
        Format::Table => ctx.printer.text(&format!("{}\n", line(record))),
        Format::Yaml => ctx.printer.text(&format!("---\n{}", to_yaml(record)?)),
        // A stream has no single document: json is one object per line, like ndjson.
        Format::Json | Format::Ndjson => ctx.printer.line(record),
    }
}
