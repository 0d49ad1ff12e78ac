//! `tollgate integrations`: provider credentials.

use clap::{Args, Subcommand};
use serde_json::{Map, Value};

use super::ctx::Ctx;
use super::limits::{LimitArgs, LimitChangeArgs};
use crate::api::integrations::{
    CreateIntegration, Integration, IntegrationCreated, UpdateIntegration,
};
use crate::api::List;
use crate::error::{CliError, Result};
use crate::output::{cell, prompt, Fields, Row};
use crate::store::secrets::mask;

const EXAMPLES: &str = "\
Examples:
  tollgate integrations create --slug openai-dev --provider openai        # asks for the key
  printenv ANTHROPIC_API_KEY | tollgate integrations create --slug claude --provider anthropic --api-key-stdin
  tollgate integrations create --slug local-llm --provider ollama --base-url http://localhost:11434/v1
  tollgate integrations list -o json | jq -r '.[].slug'";

#[derive(Debug, Subcommand)]
#[command(after_help = EXAMPLES)]
pub enum IntegrationsCommand {
    /// List integrations
    #[command(visible_alias = "ls")]
    List,
    /// Show one integration (its key masked)
    Get { slug: String },
    /// Store a provider's credential under a slug
    Create(CreateArgs),
    /// Change an integration's name, base URL, description or key
    Update(UpdateArgs),
    /// Delete an integration
    #[command(visible_alias = "rm")]
    Delete {
        slug: String,
        /// Show what would be sent without sending it
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The slug requests use, as in `@openai-dev/gpt-4o`
    #[arg(long)]
    slug: String,
    /// The provider (`openai`, `anthropic`, `google`, `bedrock`, ...)
    #[arg(long)]
    provider: String,
    /// A display name [default: the slug]
    #[arg(long)]
    name: Option<String>,
    /// Send requests to this base URL instead of the provider's
    #[arg(long, value_name = "URL")]
    base_url: Option<String>,
    #[arg(long)]
    description: Option<String>,
    /// Read the provider's API key from standard input instead of a hidden prompt
    #[arg(long)]
    api_key_stdin: bool,
    #[command(flatten)]
    limits: LimitArgs,
    /// Show what would be sent without sending it
    #[arg(long)]
    dry_run: bool,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    slug: String,
    #[arg(long)]
    name: Option<String>,
    /// A new base URL; an empty string removes it
    #[arg(long, value_name = "URL")]
    base_url: Option<String>,
    #[arg(long)]
    description: Option<String>,
    /// Replace the API key with one read from standard input
    #[arg(long, conflicts_with = "prompt_api_key")]
    api_key_stdin: bool,
    /// Replace the API key with one typed at a hidden prompt
    #[arg(long)]
    prompt_api_key: bool,
    #[command(flatten)]
    limits: LimitChangeArgs,
    /// Show what would be sent without sending it
    #[arg(long)]
    dry_run: bool,
}

impl Row for Integration {
    const HEADERS: &'static [&'static str] = &["SLUG", "PROVIDER", "NAME", "KEY", "BASE URL"];
    fn cells(&self) -> Vec<String> {
        vec![
            self.slug.clone(),
            self.ai_provider_id.clone(),
            self.name.clone(),
            cell(self.masked_key.as_deref()),
            cell(
                self.configurations
                    .get("custom_host")
                    .and_then(Value::as_str),
            ),
        ]
    }
}

impl Fields for Integration {
    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("id", self.id.clone()),
            ("slug", self.slug.clone()),
            ("name", self.name.clone()),
            ("provider", self.ai_provider_id.clone()),
            ("description", cell(self.description.as_deref())),
            ("key", cell(self.masked_key.as_deref())),
            (
                "configurations",
                Value::Object(self.configurations.clone()).to_string(),
            ),
            ("created_at", self.created_at.clone()),
            ("last_updated_at", self.last_updated_at.clone()),
        ]
    }
}

impl Fields for IntegrationCreated {
    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![("id", self.id.clone()), ("slug", self.slug.clone())]
    }
}

fn base_url_configuration(base_url: Option<String>) -> Map<String, Value> {
    base_url
        .map(|url| {
            let value = if url.is_empty() {
                Value::Null
            } else {
                Value::String(url)
            };
            Map::from_iter([("custom_host".to_string(), value)])
        })
        .unwrap_or_default()
}

fn read_key(ctx: &Ctx, from_stdin: bool, provider: &str) -> Result<String> {
    if from_stdin {
        prompt::secret_from_stdin("API key")
    } else {
        prompt::secret(
            ctx.global.no_input,
            &format!("{provider} API key"),
            "--api-key-stdin",
        )
    }
}

/// A request body for `--dry-run` output, with the provider key masked.
fn masked_body(body: &impl serde::Serialize, key: Option<&str>) -> Value {
    let mut shown = serde_json::to_value(body).unwrap_or_default();
    if let Some(k) = key {
        shown["key"] = Value::String(mask(k));
    }
    shown
}

fn path(slug: &str) -> String {
    format!("/v1/integrations/{slug}")
}

pub async fn run(ctx: &Ctx, cmd: IntegrationsCommand) -> Result<()> {
    match cmd {
        IntegrationsCommand::List => {
            let client = ctx.client()?;
            let list: List<Integration> = client.get("/v1/integrations?page_size=1000").await?;
            ctx.printer.list(&list.data)
        }
        IntegrationsCommand::Get { slug } => {
            let integration: Integration = ctx.client()?.get(&path(&slug)).await?;
            ctx.printer.one(&integration)
        }
        IntegrationsCommand::Create(args) => create(ctx, args).await,
        IntegrationsCommand::Update(args) => update(ctx, args).await,
        IntegrationsCommand::Delete { slug, dry_run } => {
            ctx.delete(
                &path(&slug),
                &format!("delete the integration {slug}"),
                &format!("deleted integration {slug}"),
                dry_run,
            )
            .await
        }
    }
}

async fn create(ctx: &Ctx, args: CreateArgs) -> Result<()> {
    // Checked here too so a typo fails before the key is asked for; the server checks again.
    let provider = crate::gateway::providers::find(&args.provider).ok_or_else(|| {
        CliError::failed(format!("unknown provider {:?}", args.provider)).hint(format!(
            "valid providers: {}",
            crate::gateway::providers::slugs()
        ))
    })?;
    let needs_key = provider.needs_api_key;
    let key = if needs_key || args.api_key_stdin {
        Some(read_key(ctx, args.api_key_stdin, &args.provider)?)
    } else {
        None
    };
    let body = CreateIntegration {
        slug: args.slug,
        ai_provider_id: args.provider,
        name: args.name,
        key,
        description: args.description,
        configurations: base_url_configuration(args.base_url),
        limits: args.limits.owned(),
    };
    if args.dry_run {
        let shown = masked_body(&body, body.key.as_deref());
        return ctx.dry_run("POST", "/v1/integrations", Some(shown));
    }
    let client = ctx.client()?;
    let created: IntegrationCreated = client.post("/v1/integrations", &body).await?;
    ctx.printer
        .note(&format!("created integration {}", created.slug));
    // The whole integration when the key may read it; creating needs only the create scope.
    match client.get::<Integration>(&path(&created.slug)).await {
        Ok(integration) => ctx.printer.one(&integration),
        Err(_) => ctx.printer.one(&created),
    }
}

async fn update(ctx: &Ctx, args: UpdateArgs) -> Result<()> {
    let key = if args.api_key_stdin || args.prompt_api_key {
        Some(read_key(ctx, args.api_key_stdin, &args.slug)?)
    } else {
        None
    };
    let configurations = base_url_configuration(args.base_url);
    let body = UpdateIntegration {
        name: args.name,
        key,
        description: args.description,
        configurations: (!configurations.is_empty()).then_some(configurations),
        limits: args.limits.change(),
    };
    if args.dry_run {
        let shown = masked_body(&body, body.key.as_deref());
        return ctx.dry_run("PUT", &path(&args.slug), Some(shown));
    }
    let integration: Integration = ctx.client()?.put(&path(&args.slug), &body).await?;
    ctx.printer.one(&integration)
}
