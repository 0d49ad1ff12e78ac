//! `tollgate configs`: routing configs, validated before they are stored, versioned on update.

pub(crate) mod apply;
pub(super) mod files;

use clap::{Args, Subcommand};

use super::ctx::Ctx;
use crate::api::configs::{
    Config, ConfigCreated, ConfigUpdated, ConfigVersion, CreateConfig, UpdateConfig,
};
use crate::api::{List, Success};
use crate::error::{CliError, Result};
use crate::output::{Fields, Row};

const EXAMPLES: &str = "\
Examples:
  tollgate configs validate -f prod.yaml                 # offline, no server needed
  tollgate configs create --name prod -f prod.yaml
  tollgate configs get pc-prod-a1b2c3 -o yaml > prod.yaml && tollgate configs apply -f prod.yaml
  tollgate configs apply -f configs/ --dry-run           # create or update by name, kubectl-style
  tollgate configs diff -f prod.yaml || echo 'prod has drifted'";

#[derive(Debug, Subcommand)]
#[command(after_help = EXAMPLES)]
pub enum ConfigsCommand {
    /// List saved configs
    #[command(visible_alias = "ls")]
    List,
    /// Show a config (`-o yaml` output can be fed back to `apply`)
    Get { slug: String },
    /// Save a config from a YAML or JSON file
    Create(CreateArgs),
    /// Change a config; every update makes a new version
    Update(UpdateArgs),
    /// Delete a config and its versions
    #[command(visible_alias = "rm")]
    Delete {
        slug: String,
        /// Show what would be sent without sending it
        #[arg(long)]
        dry_run: bool,
    },
    /// List a config's versions, newest first
    Versions { slug: String },
    /// Check a config file without a server
    Validate(FileArg),
    /// Create or update configs by name from a file, a folder of files, or stdin
    Apply(ApplyArgs),
    /// Show how a file differs from the saved config of the same name (exit 1 if it does)
    Diff(FileArg),
}

#[derive(Debug, Args)]
pub struct FileArg {
    /// A YAML or JSON file, or `-` for standard input
    #[arg(short, long, value_name = "FILE")]
    file: String,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    #[arg(long)]
    name: String,
    /// The config as YAML or JSON, or `-` for standard input
    #[arg(short, long, value_name = "FILE")]
    file: String,
    /// Show what would be sent without sending it
    #[arg(long)]
    dry_run: bool,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    slug: String,
    /// The new config as YAML or JSON, or `-` for standard input
    #[arg(short, long, value_name = "FILE")]
    file: Option<String>,
    #[arg(long)]
    name: Option<String>,
    /// Show what would be sent without sending it
    #[arg(long)]
    dry_run: bool,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// A file, a folder of .yaml/.yml/.json files, or `-` for standard input
    #[arg(short, long, value_name = "FILE|DIR|-")]
    file: String,
    /// Show the plan without changing anything
    #[arg(long)]
    dry_run: bool,
}

impl Row for Config {
    const HEADERS: &'static [&'static str] = &["SLUG", "NAME", "VERSION", "STATUS", "UPDATED"];
    fn cells(&self) -> Vec<String> {
        vec![
            self.slug.clone(),
            self.name.clone(),
            self.version.to_string(),
            self.status.clone(),
            self.last_updated_at.clone(),
        ]
    }
}

impl Fields for Config {
    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("id", self.id.clone()),
            ("slug", self.slug.clone()),
            ("name", self.name.clone()),
            ("version", self.version.to_string()),
            ("version_id", self.version_id.clone()),
            ("status", self.status.clone()),
            ("created_at", self.created_at.clone()),
            ("last_updated_at", self.last_updated_at.clone()),
            (
                "config",
                serde_json::to_string_pretty(&self.config).unwrap_or_default(),
            ),
        ]
    }
}

impl Fields for ConfigCreated {
    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("id", self.id.clone()),
            ("slug", self.slug.clone()),
            ("version_id", self.version_id.clone()),
        ]
    }
}

impl Row for ConfigVersion {
    const HEADERS: &'static [&'static str] = &["VERSION", "VERSION ID", "CREATED"];
    fn cells(&self) -> Vec<String> {
        vec![
            self.version.to_string(),
            self.version_id.clone(),
            self.created_at.clone(),
        ]
    }
}

fn path(slug: &str) -> String {
    format!("/v1/configs/{slug}")
}

/// Every saved config (the admin API pages at most 1,000 at a time).
async fn all_configs(client: &crate::client::ApiClient) -> Result<Vec<Config>> {
    let mut all = Vec::new();
    for page in 0.. {
        let batch: Success<Vec<Config>> = client
            .get(&format!("/v1/configs?page_size=1000&current_page={page}"))
            .await?;
        let done = batch.data.len() < 1000;
        all.extend(batch.data);
        if done {
            break;
        }
    }
    Ok(all)
}

pub async fn run(ctx: &Ctx, cmd: ConfigsCommand) -> Result<()> {
    match cmd {
        ConfigsCommand::List => ctx.printer.list(&all_configs(&ctx.client()?).await?),
        ConfigsCommand::Get { slug } => {
            let config: Success<Config> = ctx.client()?.get(&path(&slug)).await?;
            ctx.printer.one(&config.data)
        }
        ConfigsCommand::Create(args) => {
            let config = files::read_value(&args.file)?;
            let body = CreateConfig {
                name: args.name,
                config,
                is_default: 0,
            };
            if args.dry_run {
                files::check(&args.file, &body.config)?;
                return ctx.dry_run("POST", "/v1/configs", serde_json::to_value(&body).ok());
            }
            let client = ctx.client()?;
            let created: Success<ConfigCreated> = client.post("/v1/configs", &body).await?;
            ctx.printer.note(&format!(
                "created config {} ({})",
                created.data.slug, body.name
            ));
            // The whole config when the key may read it; creating needs only `configs.create`.
            match client
                .get::<Success<Config>>(&path(&created.data.slug))
                .await
            {
                Ok(config) => ctx.printer.one(&config.data),
                Err(_) => ctx.printer.one(&created.data),
            }
        }
        ConfigsCommand::Update(args) => {
            if args.file.is_none() && args.name.is_none() {
                return Err(CliError::usage("nothing to update")
                    .hint("pass -f FILE with the new config, --name, or both"));
            }
            let config = args
                .file
                .as_deref()
                .map(files::read_value)
                .transpose()?
                .map(files::unwrap_document);
            let body = UpdateConfig {
                name: args.name,
                config,
                status: None,
            };
            if args.dry_run {
                return ctx.dry_run("PUT", &path(&args.slug), serde_json::to_value(&body).ok());
            }
            let updated: Success<ConfigUpdated> =
                ctx.client()?.put(&path(&args.slug), &body).await?;
            ctx.printer.note(&format!(
                "updated config {} to version {}",
                args.slug, updated.data.version
            ));
            ctx.printer.document(&updated.data)
        }
        ConfigsCommand::Delete { slug, dry_run } => {
            ctx.delete(
                &path(&slug),
                &format!("delete the config {slug} and all its versions"),
                &format!("deleted config {slug}"),
                dry_run,
            )
            .await
        }
        ConfigsCommand::Versions { slug } => {
            let versions: List<ConfigVersion> = ctx
                .client()?
                .get(&format!("{}/versions", path(&slug)))
                .await?;
            ctx.printer.list(&versions.data)
        }
        ConfigsCommand::Validate(FileArg { file }) => {
            let value = files::read_value(&file)?;
            files::check(&file, &value)?;
            ctx.printer.note(&format!("{file}: valid"));
            if ctx.printer.format != crate::output::Format::Table {
                ctx.printer
                    .document(&serde_json::json!({"file": file, "valid": true}))?;
            }
            Ok(())
        }
        ConfigsCommand::Apply(args) => apply::apply(ctx, &args.file, args.dry_run).await,
        ConfigsCommand::Diff(FileArg { file }) => apply::diff(ctx, &file).await,
    }
}
