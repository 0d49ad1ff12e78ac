//! The `tollgate` command line: argument definitions and the one dispatch match.

mod api;
mod args;
mod audit;
mod auth;
mod budgets;
mod cache;
mod chat;
mod completions;
mod configs;
mod context;
mod ctx;
mod db;
mod diff;
mod guardrails;
mod integrations;
mod keys;
mod limits;
mod logs;
mod prompts;
mod serve;
mod status;
mod trace;
mod units;
mod usage;
mod workspaces;

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

pub use completions::{man_pages, markdown_reference, write_completions};
use ctx::Ctx;

use crate::error::{CliError, ExitKind, Result};
use crate::output::{ColorChoice, Format, Printer};

const EXAMPLES: &str = "\
Examples:
  tollgate serve                                   # control plane + gateway on 127.0.0.1:8787
  tollgate keys list                               # from another terminal: the local context just works
  printenv OPENAI_API_KEY | tollgate integrations create --slug openai-dev --provider openai --api-key-stdin
  tollgate configs apply -f configs/
  KEY=$(tollgate keys create --name ci-bot -o json | jq -r .key)";

/// An AI gateway and its operations CLI.
///
/// tollgate routes OpenAI-compatible requests to LLM providers with fallbacks, retries and load
/// balancing, and manages provider credentials, routing configs and API keys on a local or
/// remote control plane.
#[derive(Debug, Parser)]
#[command(name = "tollgate", version, propagate_version = true, after_help = EXAMPLES)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, clap::Args)]
pub struct GlobalArgs {
    /// Which control plane to talk to (a context added with `tollgate context add`)
    #[arg(long, global = true, env = crate::env::TOLLGATE_CONTEXT, hide_env_values = true, value_name = "NAME")]
    pub context: Option<String>,
    /// The control plane's address, overriding the context's
    #[arg(long, global = true, env = crate::env::TOLLGATE_URL, hide_env_values = true, value_name = "URL")]
    pub url: Option<String>,
    /// Output format [default: table, or the context's]
    #[arg(short, long, global = true, env = crate::env::TOLLGATE_OUTPUT, hide_env_values = true, value_enum)]
    pub output: Option<Format>,
    /// Print less on stderr
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Print more on stderr
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// When to use colour (NO_COLOR also turns it off)
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// Skip confirmations
    #[arg(short, long, global = true)]
    pub yes: bool,
    /// Never prompt; fail with a hint naming the flag to pass instead
    #[arg(long, global = true)]
    pub no_input: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the control plane and gateway
    Serve(serve::ServeArgs),
    /// Provider credentials
    #[command(subcommand)]
    Integrations(integrations::IntegrationsCommand),
    /// Routing configs (Portkey config JSON), versioned
    #[command(subcommand)]
    Configs(configs::ConfigsCommand),
    /// API keys for the gateway and the admin API
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Budgets: spend limits per key, workspace, integration, user or any metadata
    #[command(subcommand)]
    Budgets(budgets::BudgetsCommand),
    /// Prompts: versioned Mustache templates, labels, partials; render and run them
    #[command(subcommand)]
    Prompts(prompts::PromptsCommand),
    /// Guardrails: checks on requests and answers (PII, regex, JSON schema, webhooks, ...);
    /// try one on a text with `guardrails test`
    #[command(subcommand)]
    Guardrails(guardrails::GuardrailsCommand),
    /// Workspaces: groups of keys sharing default metadata, config and allowed models
    #[command(subcommand)]
    Workspaces(workspaces::WorkspacesCommand),
    /// The response cache: stats, purge
    #[command(subcommand)]
    Cache(cache::CacheCommand),
    /// Request records: list, show, follow live, export
    #[command(subcommand)]
    Logs(logs::LogsCommand),
    /// Traces: the spans of an agent run or a request, as a tree with timings
    #[command(subcommand)]
    Trace(trace::TraceCommand),
    /// The audit log of admin changes: who changed what, when, from where
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Requests, errors, tokens, cost and latency per model, provider, user, key or metadata
    /// value, over the last 7 days unless --since says otherwise
    Usage(usage::UsageArgs),
    /// Send a chat request through the gateway and stream the answer
    Chat(chat::ChatArgs),
    /// Named control planes (URL + stored credential)
    #[command(subcommand)]
    Context(context::ContextCommand),
    /// Store an API key for the current context, after checking it with the server
    Login(auth::LoginArgs),
    /// Forget the stored API key of the current context
    Logout,
    /// Show the calling key: name, type and scopes
    Whoami,
    /// Show the control plane's address, version and health, and who you are
    Status,
    /// The store itself: schema migrations, status, and copying SQLite into Postgres
    #[command(subcommand)]
    Db(db::DbCommand),
    /// Send a raw authenticated request to the control plane
    Api(api::ApiArgs),
    /// Print shell completions
    Completions(completions::CompletionsArgs),
}

pub fn command() -> clap::Command {
    Cli::command()
}

/// Parses arguments, runs the command, reports any error; returns the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let multi_thread = matches!(cli.command, Command::Serve(_));
    let runtime = if multi_thread {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    };
    let result = runtime
        .map_err(|e| CliError::failed(format!("cannot start the runtime: {e}")))
        .and_then(|rt| {
            let ctx = Ctx::new(cli.global)?;
            let outcome = rt.block_on(run(&ctx, cli.command));
            Ok((ctx, outcome))
        });
    let (printer, err) = match result {
        Ok((_, Ok(()))) => return ExitCode::SUCCESS,
        Ok((ctx, Err(e))) => (ctx.printer, e),
        Err(e) => (Printer::new(Format::Table, false, ColorChoice::Auto), e),
    };
    // An empty message is an outcome already shown (like `diff` finding changes), not an error.
    if err.kind != ExitKind::BrokenPipe && !err.message.is_empty() {
        printer.error(&err);
    }
    ExitCode::from(err.exit_code())
}

async fn run(ctx: &Ctx, command: Command) -> Result<()> {
    match command {
        Command::Serve(args) => serve::run(ctx, args).await,
        Command::Integrations(cmd) => integrations::run(ctx, cmd).await,
        Command::Configs(cmd) => configs::run(ctx, cmd).await,
        Command::Keys(cmd) => keys::run(ctx, cmd).await,
        Command::Budgets(cmd) => budgets::run(ctx, cmd).await,
        Command::Prompts(cmd) => prompts::run(ctx, cmd).await,
        Command::Guardrails(cmd) => guardrails::run(ctx, cmd).await,
        Command::Workspaces(cmd) => workspaces::run(ctx, cmd).await,
        Command::Cache(cmd) => cache::run(ctx, cmd).await,
        Command::Logs(cmd) => logs::run(ctx, cmd).await,
        Command::Trace(cmd) => trace::run(ctx, cmd).await,
        Command::Usage(args) => usage::run(ctx, args).await,
        Command::Audit(cmd) => audit::run(ctx, cmd).await,
        Command::Chat(args) => chat::run(ctx, args).await,
        Command::Context(cmd) => context::run(ctx, cmd),
        Command::Login(args) => auth::login(ctx, args).await,
        Command::Logout => auth::logout(ctx),
        Command::Whoami => auth::whoami(ctx).await,
        Command::Status => status::run(ctx).await,
        Command::Db(cmd) => db::run(ctx, cmd),
        Command::Api(args) => api::run(ctx, args).await,
        Command::Completions(args) => completions::run(args),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn clap_definitions_are_consistent() {
        super::command().debug_assert();
    }
}
