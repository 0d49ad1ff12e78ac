//! `prompts partials`: reusable template text, versioned like prompts.

use clap::{Args, Subcommand};

use crate::api::prompts::{CreatePartial, Partial, PromptCreated, UpdatePartial};
use crate::api::List;
use crate::cli::configs::files::read_text;
use crate::cli::ctx::Ctx;
use crate::error::Result;

#[derive(Debug, Subcommand)]
pub enum PartialsCommand {
    /// List partials
    #[command(visible_alias = "ls")]
    List,
    /// Show a partial's text (the published version, or --version)
    #[command(disable_version_flag = true)]
    Get {
        id: String,
        #[arg(long)]
        version: Option<u32>,
    },
    /// Save a partial
    Create {
        #[arg(long)]
        name: String,
        #[command(flatten)]
        text: TextArgs,
    },
    /// Add a version to a partial
    Update {
        id: String,
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        text: TextArgs,
    },
}

#[derive(Debug, Args)]
pub struct TextArgs {
    /// The text from a file, or `-` for standard input
    #[arg(
        short,
        long,
        value_name = "FILE",
        required_unless_present = "string",
        conflicts_with = "string"
    )]
    file: Option<String>,
    /// The text itself
    #[arg(long, value_name = "TEXT")]
    string: Option<String>,
    /// What this version changes
    #[arg(long, value_name = "TEXT")]
    description: Option<String>,
    /// Show what would be sent without sending it
    #[arg(long)]
    dry_run: bool,
}

impl TextArgs {
    fn text(&self) -> Result<String> {
        match (&self.string, &self.file) {
            (Some(s), _) => Ok(s.clone()),
            (None, Some(file)) => read_text(file),
            (None, None) => unreachable!("clap requires --file or --string"),
        }
    }
}

const PARTIALS: &str = "/v1/prompts/partials";

fn path(id: &str) -> String {
    format!("{PARTIALS}/{id}")
}

pub async fn run(ctx: &Ctx, cmd: PartialsCommand) -> Result<()> {
    match cmd {
        PartialsCommand::List => {
            let list: List<Partial> = ctx
                .client()?
                .get(&format!("{PARTIALS}?page_size=1000"))
                .await?;
            ctx.printer.list(&list.data)
        }
        PartialsCommand::Get { id, version } => {
            let reference = version.map_or(id.clone(), |n| format!("{id}@{n}"));
            let partial: Partial = ctx.client()?.get(&path(&reference)).await?;
            ctx.printer.one(&partial)
        }
        PartialsCommand::Create { name, text } => {
            let body = CreatePartial {
                name,
                string: text.text()?,
                version_description: text.description.clone(),
            };
            if text.dry_run {
                return ctx.dry_run("POST", PARTIALS, serde_json::to_value(&body).ok());
            }
            let made: PromptCreated = ctx.client()?.post(PARTIALS, &body).await?;
            ctx.printer.note(&format!(
                "created partial {}; include it with {{{{>{}}}}}",
                made.slug, made.slug
            ));
            ctx.printer.one(&made)
        }
        PartialsCommand::Update { id, name, text } => {
            let body = UpdatePartial {
                name,
                string: text.text()?,
                version_description: text.description.clone(),
            };
            if text.dry_run {
                return ctx.dry_run("PUT", &path(&id), serde_json::to_value(&body).ok());
            }
            let made: PromptCreated = ctx.client()?.put(&path(&id), &body).await?;
            ctx.printer.note(&format!(
                "added version {} to partial {}",
                made.version, made.slug
            ));
            ctx.printer.one(&made)
        }
    }
}
