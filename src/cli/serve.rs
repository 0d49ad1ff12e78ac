//! `tollgate serve`: the only place the CLI starts the server.

use clap::builder::TypedValueParser;
use clap::Args;

use super::args::{parse_duration, parse_pair, StoreArgs};
use super::ctx::Ctx;
use crate::client::contexts::{Context, LOCAL};
use crate::client::credentials;
use crate::error::{CliError, Result};
use crate::observe::recorder::Limit as RecordLimit;
use crate::server::{shutdown_signal, GatewaySettings, OtlpConfig, Server, Settings, DEFAULT_ADDR};

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  tollgate serve\n  tollgate serve --addr 0.0.0.0:8787 --data-dir /var/lib/tollgate\n  TOLLGATE_MASTER_KEY=$(openssl rand -hex 32) tollgate serve"
)]
pub struct ServeArgs {
    /// Address to listen on
    #[arg(long, env = crate::env::TOLLGATE_ADDR, hide_env_values = true, default_value = DEFAULT_ADDR)]
    addr: String,
    #[command(flatten)]
    store: StoreArgs,
    /// The first retry of a failed upstream call waits about this long, doubling each time
    #[arg(
        long,
        env = "TOLLGATE_RETRY_BASE_MS",
        hide_env_values = true,
        default_value_t = 1000,
        value_name = "MS"
    )]
    retry_base_ms: u64,
    /// Whether request records keep request and response bodies (a key can also turn it off)
    #[arg(
        long,
        env = "TOLLGATE_LOG_BODIES",
        hide_env_values = true,
        default_value_t = true,
        action = clap::ArgAction::Set,
        value_name = "BOOL"
    )]
    log_bodies: bool,
    /// Delete request records older than this, e.g. 30d [default: keep them all]
    #[arg(long, env = "TOLLGATE_LOG_RETENTION", hide_env_values = true, value_parser = parse_duration, value_name = "DURATION")]
    log_retention: Option<u64>,
    /// Send every request record as OpenTelemetry spans to this OTLP/HTTP receiver, e.g.
    /// http://127.0.0.1:4318
    #[arg(
        long,
        env = "TOLLGATE_OTLP_ENDPOINT",
        hide_env_values = true,
        value_name = "URL"
    )]
    otlp_endpoint: Option<String>,
    /// A header for the OTLP receiver, e.g. for its authentication (repeatable)
    #[arg(long, env = "TOLLGATE_OTLP_HEADERS", hide_env_values = true, value_delimiter = ',', value_parser = parse_pair, value_name = "KEY=VALUE")]
    otlp_header: Vec<(String, String)>,
    /// Post budget alerts (a budget's alert threshold or its limit reached) to this URL as JSON
    #[arg(
        long,
        env = "TOLLGATE_ALERT_WEBHOOK",
        hide_env_values = true,
        value_name = "URL"
    )]
    alert_webhook: Option<String>,
    /// The most the response cache keeps in memory, in megabytes (the least recently used
    /// answers are evicted first)
    #[arg(
        long,
        env = "TOLLGATE_CACHE_SIZE",
        hide_env_values = true,
        default_value_t = crate::cache::DEFAULT_SIZE_MB,
        value_parser = clap::value_parser!(u64).range(1..=1_048_576),
        value_name = "MB"
    )]
    cache_size: u64,
    /// While the database is unavailable, hold up to this many request records in memory and
    /// write them when it is back; later ones are dropped and counted (docs/postgres.md)
    #[arg(
        long,
        env = "TOLLGATE_RECORD_QUEUE_LIMIT",
        hide_env_values = true,
        default_value_t = crate::observe::recorder::DEFAULT_RECORDS,
        value_parser = clap::value_parser!(u64).range(1..=100_000_000).map(|n| n as usize),
        value_name = "RECORDS"
    )]
    record_queue_limit: usize,
    /// The most memory those held records may take, in megabytes (bodies included)
    #[arg(
        long,
        env = "TOLLGATE_RECORD_QUEUE_MB",
        hide_env_values = true,
        default_value_t = crate::observe::recorder::DEFAULT_MB,
        value_parser = clap::value_parser!(u64).range(1..=1_048_576).map(|n| n as usize),
        value_name = "MB"
    )]
    record_queue_mb: usize,
    /// Seed load balancing's random choices (for reproducible tests)
    #[arg(long, env = "TOLLGATE_LB_SEED", hide = true, hide_env_values = true)]
    lb_seed: Option<u64>,
}

pub async fn run(ctx: &Ctx, args: ServeArgs) -> Result<()> {
    let settings = Settings {
        addr: args.addr,
        data_dir: args.store.data_dir(),
        database_url: args.store.database_url(),
        gateway: GatewaySettings {
            retry_base_ms: args.retry_base_ms,
            lb_seed: args.lb_seed,
            log_bodies: args.log_bodies,
            alert_webhook: args.alert_webhook,
            cache_bytes: (args.cache_size * 1024 * 1024) as usize,
            record_queue: RecordLimit {
                records: args.record_queue_limit,
                bytes: args.record_queue_mb * 1024 * 1024,
            },
        },
        log_retention: args.log_retention.map(std::time::Duration::from_secs),
        otlp: args.otlp_endpoint.map(|endpoint| OtlpConfig {
            endpoint,
            headers: args.otlp_header,
            service_name: "tollgate".into(),
        }),
    };
    let data = match &settings.database_url {
        Some(url) => crate::store::db::redacted(url),
        None => settings.data_dir.display().to_string(),
    };
    let on_postgres = settings.database_url.is_some();
    let server = Server::bind(settings).await.map_err(|e| {
        let hint = if on_postgres && e.contains("Postgres") {
            "check --database-url (TOLLGATE_DATABASE_URL): the server's address, port, user, password and database name, and that the server is running"
        } else {
            "pass --addr for another port, or --data-dir for another store"
        };
        CliError::failed(e).hint(hint)
    })?;
    let url = format!("http://{}", server.local_addr());
    if let Some(admin) = server.bootstrap_admin_key().map_err(CliError::failed)? {
        ctx.printer
            .note("Created the first admin API key. It is shown only this once:");
        ctx.printer.text(&format!("{}\n", admin.key))?;
        remember_local(ctx, &url, Some(&admin.key))?;
    } else if ctx
        .contexts
        .contexts
        .get(LOCAL)
        .is_some_and(|c| c.url != url)
    {
        remember_local(ctx, &url, None)?;
    }
    ctx.printer.note(&format!(
        "tollgate {} listening on {url} (data in {})",
        env!("CARGO_PKG_VERSION"),
        data
    ));
    server
        .run(shutdown_signal())
        .await
        .map_err(|e| CliError::failed(format!("server error: {e}")))?;
    ctx.printer.note("tollgate stopped");
    Ok(())
}

/// Points the `local` context at this server (and stores the first admin key for it), so the
/// next command in another terminal just works.
fn remember_local(ctx: &Ctx, url: &str, key: Option<&str>) -> Result<()> {
    let mut contexts = ctx.contexts.clone();
    let output = contexts.contexts.get(LOCAL).and_then(|c| c.output);
    contexts.contexts.insert(
        LOCAL.into(),
        Context {
            url: url.into(),
            output,
        },
    );
    contexts.save()?;
    match key {
        Some(key) => {
            let source = credentials::store(LOCAL, key)?;
            ctx.printer.note(&format!(
                "Stored it for the `local` context ({url}) in {source}."
            ));
        }
        None => ctx
            .printer
            .note(&format!("Pointed the `local` context at {url}.")),
    }
    Ok(())
}
