//! `tollgate prompts`: versioned prompt templates, their labels and partials; render and run.

mod apply;
mod partials;
mod render;
mod view;

use clap::{Args, Subcommand};

use super::ctx::Ctx;
use crate::api::prompts::{
    AssignLabel, CreatePrompt, MakeDefault, Prompt, PromptCreated, PromptVersion, UpdatePrompt,
};
use crate::api::List;
use crate::client::ApiClient;
use crate::error::{CliError, Result};

const EXAMPLES: &str = "\
Examples:
  tollgate prompts create -f greeter.yaml                # name, model, parameters, messages
  tollgate prompts update pp-greete-a1b2c3 -f greeter.yaml   # adds version 2; version 1 stays published
  tollgate prompts label pp-greete-a1b2c3 --version 2 staging
  tollgate prompts render pp-greete-a1b2c3@staging --var name=Ada
  tollgate prompts run pp-greete-a1b2c3 --var name=Ada --stream
  tollgate prompts diff pp-greete-a1b2c3 1 2 || echo 'versions differ'
  tollgate prompts apply -f prompts/ --dry-run           # create or add versions by name
  tollgate prompts run greeter --var name=Ada -o json | jq -r '.choices[0].message.content'";

#[derive(Debug, Subcommand)]
#[command(after_help = EXAMPLES)]
pub enum PromptsCommand {
    /// List prompts with their published and latest versions
    #[command(visible_alias = "ls")]
    List,
    /// Show a prompt: the published version, or the one asked for
    #[command(disable_version_flag = true)]
    Get(GetArgs),
    /// Save a prompt from a YAML or JSON file (name, model, parameters, messages, tools)
    Create(FileArgs),
    /// Add a version to a prompt from a YAML or JSON file (nothing is overwritten)
    Update(UpdateArgs),
    /// Delete a prompt and all its versions
    #[command(visible_alias = "rm")]
    Delete {
        id: String,
        /// Show what would be sent without sending it
        #[arg(long)]
        dry_run: bool,
    },
    /// List a prompt's versions, newest first, with their labels
    Versions { id: String },
    /// Publish a version: requests that name no version or label get it
    #[command(disable_version_flag = true)]
    Publish(VersionArgs),
    /// Point a label (production, staging, development or your own) at a version
    #[command(disable_version_flag = true)]
    Label {
        #[command(flatten)]
        version: VersionArgs,
        label: String,
    },
    /// Print the chat body a prompt renders to with the variables given
    Render(render::VariableArgs),
    /// Render a prompt and send it through the gateway; print the answer
    Run(render::RunArgs),
    /// Show how two versions of a prompt differ (exit 1 if they do)
    Diff { id: String, a: u32, b: u32 },
    /// Create or update prompts by name from a folder of YAML/JSON files
    Apply(apply::ApplyArgs),
    /// Reusable template text, included with {{>slug}}
    #[command(subcommand)]
    Partials(partials::PartialsCommand),
}

#[derive(Debug, Args)]
pub struct GetArgs {
    /// The prompt's id or slug (ID@N and ID@LABEL work too)
    id: String,
    /// The version to show
    #[arg(long, conflicts_with = "label")]
    version: Option<u32>,
    /// The version a label points at
    #[arg(long)]
    label: Option<String>,
}

#[derive(Debug, Args)]
pub struct FileArgs {
    /// The prompt as YAML or JSON, or `-` for standard input
    #[arg(short, long, value_name = "FILE")]
    file: String,
    /// Show what would be sent without sending it
    #[arg(long)]
    dry_run: bool,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    id: String,
    #[command(flatten)]
    file: FileArgs,
}

#[derive(Debug, Args)]
pub struct VersionArgs {
    id: String,
    #[arg(long)]
    version: u32,
    /// Show what would be sent without sending it
    #[arg(long)]
    dry_run: bool,
}

fn path(id: &str) -> String {
    format!("/v1/prompts/{id}")
}

/// Every prompt (the admin API pages at most 1,000 at a time).
async fn all_prompts(client: &ApiClient) -> Result<Vec<Prompt>> {
    let mut all = Vec::new();
    for page in 0.. {
        let batch: List<Prompt> = client
            .get(&format!("/v1/prompts?page_size=1000&current_page={page}"))
            .await?;
        let done = batch.data.len() < 1000;
        all.extend(batch.data);
        if done {
            break;
        }
    }
    Ok(all)
}

/// A prompt file: the fields of `POST /v1/prompts`.
fn read_prompt(source: &str) -> Result<CreatePrompt> {
    let value = super::configs::files::read_value(source)?;
    serde_json::from_value(value).map_err(|e| {
        CliError::failed(format!("{source}: {e}"))
            .hint("a prompt file holds name, model, parameters, messages and optionally tools")
    })
}

fn new_version(prompt: CreatePrompt) -> UpdatePrompt {
    UpdatePrompt {
        name: Some(prompt.name),
        collection_id: prompt.collection_id,
        version_description: prompt.version_description,
        template: prompt.template,
        portkey: prompt.portkey,
    }
}

async fn version(client: &ApiClient, id: &str, n: u32) -> Result<PromptVersion> {
    client.get(&format!("{}/versions/{n}", path(id))).await
}

pub async fn run(ctx: &Ctx, cmd: PromptsCommand) -> Result<()> {
    match cmd {
        PromptsCommand::List => ctx.printer.list(&all_prompts(&ctx.client()?).await?),
        PromptsCommand::Get(args) => {
            let reference = match (args.version, args.label) {
                (Some(n), _) => format!("{}@{n}", args.id),
                (None, Some(label)) => format!("{}@{label}", args.id),
                (None, None) => args.id,
            };
            let prompt: Prompt = ctx.client()?.get(&path(&reference)).await?;
            ctx.printer.one(&prompt)
        }
        PromptsCommand::Create(args) => {
            let body = read_prompt(&args.file)?;
            if args.dry_run {
                return ctx.dry_run("POST", "/v1/prompts", serde_json::to_value(&body).ok());
            }
            let created: PromptCreated = ctx.client()?.post("/v1/prompts", &body).await?;
            ctx.printer
                .note(&format!("created prompt {} ({})", created.slug, body.name));
            ctx.printer.one(&created)
        }
        PromptsCommand::Update(args) => {
            let body = new_version(read_prompt(&args.file.file)?);
            if args.file.dry_run {
                return ctx.dry_run("PUT", &path(&args.id), serde_json::to_value(&body).ok());
            }
            let created: PromptCreated = ctx.client()?.put(&path(&args.id), &body).await?;
            ctx.printer.note(&format!(
                "added version {} to prompt {}; publish it with `tollgate prompts publish {} --version {}`",
                created.version, created.slug, created.slug, created.version
            ));
            ctx.printer.one(&created)
        }
        PromptsCommand::Delete { id, dry_run } => {
            ctx.delete(
                &path(&id),
                &format!("delete the prompt {id} and all its versions"),
                &format!("deleted prompt {id}"),
                dry_run,
            )
            .await
        }
        PromptsCommand::Versions { id } => {
            let versions: List<PromptVersion> = ctx
                .client()?
                .get(&format!("{}/versions", path(&id)))
                .await?;
            ctx.printer.list(&versions.data)
        }
        PromptsCommand::Publish(args) => {
            let route = format!("{}/makeDefault", path(&args.id));
            let body = MakeDefault {
                version: args.version,
            };
            if args.dry_run {
                return ctx.dry_run("PUT", &route, serde_json::to_value(&body).ok());
            }
            let prompt: Prompt = ctx.client()?.put(&route, &body).await?;
            ctx.printer.note(&format!(
                "published version {} of prompt {}",
                args.version, prompt.slug
            ));
            ctx.printer.one(&prompt)
        }
        PromptsCommand::Label { version, label } => {
            let route = format!("{}/versions/{}", path(&version.id), version.version);
            let body = AssignLabel { label_id: label };
            if version.dry_run {
                return ctx.dry_run("PUT", &route, serde_json::to_value(&body).ok());
            }
            let labelled: PromptVersion = ctx.client()?.put(&route, &body).await?;
            ctx.printer.note(&format!(
                "{} now points at version {} of prompt {}",
                body.label_id, labelled.version, version.id
            ));
            ctx.printer.one(&labelled)
        }
        PromptsCommand::Render(args) => render::render(ctx, args).await,
        PromptsCommand::Run(args) => render::run(ctx, args).await,
        PromptsCommand::Diff { id, a, b } => apply::diff(ctx, &id, a, b).await,
        PromptsCommand::Apply(args) => apply::apply(ctx, args).await,
        PromptsCommand::Partials(cmd) => partials::run(ctx, cmd).await,
    }
}
