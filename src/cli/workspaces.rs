//! `tollgate workspaces`: groups of keys sharing defaults and allowed models.

use clap::{Args, Subcommand};
use serde_json::Value;

use super::args::{metadata, parse_pair};
use super::ctx::Ctx;
use super::limits::{LimitArgs, LimitChangeArgs};
use crate::api::workspaces::{CreateWorkspace, UpdateWorkspace, Workspace, WorkspaceDefaults};
use crate::api::List;
use crate::error::Result;
use crate::output::{cell, Fields, Row};

const EXAMPLES: &str = "\
Examples:
  tollgate workspaces create --name search --metadata team=search --config pc-prod-a1b2c3
  tollgate workspaces create --name research --models '@openai-dev/gpt-4o*,@claude/*'
  tollgate keys create --name bot --workspace ws-searc-x1y2z3   # the key gets its defaults
  tollgate workspaces update ws-searc-x1y2z3 --metadata env=prod
  tollgate workspaces update ws-searc-x1y2z3 --config ''        # '' removes the config
  tollgate workspaces update ws-resea-a1b2c3 --all-models
  tollgate workspaces list -o json | jq -r '.[].slug'
  tollgate workspaces delete ws-searc-x1y2z3 --yes";

#[derive(Debug, Subcommand)]
#[command(after_help = EXAMPLES)]
pub enum WorkspacesCommand {
    /// List workspaces
    #[command(visible_alias = "ls")]
    List {
        /// Only workspaces whose name contains this text (any case)
        #[arg(long)]
        name: Option<String>,
    },
    /// Show one workspace, by id or slug
    Get { id: String },
    /// Create a workspace
    Create(CreateArgs),
    /// Change a workspace's name, description, defaults or allowed models
    Update(UpdateArgs),
    /// Delete a workspace that has no keys left
    #[command(visible_alias = "rm")]
    Delete {
        /// The workspace's id or slug
        id: String,
        /// Show what would be sent without sending it
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, Args)]
pub struct WorkspaceFields {
    #[arg(long)]
    description: Option<String>,
    /// Metadata added to every request made with the workspace's keys; wins over the key's and
    /// the request's (repeatable)
    #[arg(long, value_parser = parse_pair, value_name = "KEY=VALUE")]
    metadata: Vec<(String, String)>,
    /// A saved config for requests when neither they nor their key name one
    #[arg(long, value_name = "SLUG")]
    config: Option<String>,
    /// Show what would be sent without sending it
    #[arg(long)]
    dry_run: bool,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    #[arg(long)]
    name: String,
    /// The slug [default: ws- and part of the name and six random characters]
    #[arg(long)]
    slug: Option<String>,
    #[command(flatten)]
    fields: WorkspaceFields,
    #[command(flatten)]
    limits: LimitArgs,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// The workspace's id or slug
    id: String,
    #[arg(long)]
    name: Option<String>,
    #[command(flatten)]
    fields: WorkspaceFields,
    #[command(flatten)]
    limits: LimitChangeArgs,
}

impl Row for Workspace {
    const HEADERS: &'static [&'static str] = &["SLUG", "NAME", "CONFIG", "METADATA", "MODELS"];
    fn cells(&self) -> Vec<String> {
        vec![
            self.slug.clone(),
            self.name.clone(),
            cell(self.defaults.config_id.as_deref()),
            metadata_cell(self),
            models_cell(self),
        ]
    }
}

impl Fields for Workspace {
    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("id", self.id.clone()),
            ("slug", self.slug.clone()),
            ("name", self.name.clone()),
            ("description", cell(self.description.as_deref())),
            ("config", cell(self.defaults.config_id.as_deref())),
            ("metadata", metadata_cell(self)),
            ("allowed models", models_cell(self)),
            (
                "budget",
                super::limits::describe_budget(self.usage_limits.as_ref()),
            ),
            (
                "rate limits",
                super::limits::describe_rates(&self.rate_limits),
            ),
            ("status", self.status.clone()),
            ("created_at", self.created_at.clone()),
            ("last_updated_at", self.last_updated_at.clone()),
        ]
    }
}

fn metadata_cell(w: &Workspace) -> String {
    if w.defaults.metadata.is_empty() {
        return "-".into();
    }
    Value::Object(w.defaults.metadata.clone()).to_string()
}

fn models_cell(w: &Workspace) -> String {
    w.allowed_models
        .as_ref()
        .map_or("all".into(), |m| m.join(", "))
}

fn defaults(fields: &WorkspaceFields) -> Option<WorkspaceDefaults> {
    (fields.config.is_some() || !fields.metadata.is_empty()).then(|| WorkspaceDefaults {
        config_id: fields.config.clone(),
        metadata: metadata(&fields.metadata),
    })
}

fn path(id: &str) -> String {
    format!("/v1/admin/workspaces/{id}")
}

pub async fn run(ctx: &Ctx, cmd: WorkspacesCommand) -> Result<()> {
    match cmd {
        WorkspacesCommand::List { name } => {
            let mut route = "/v1/admin/workspaces?page_size=1000".to_string();
            if let Some(name) = name {
                route.push_str("&name=");
                route.extend(url::form_urlencoded::byte_serialize(name.as_bytes()));
            }
            let list: List<Workspace> = ctx.client()?.get(&route).await?;
            ctx.printer.list(&list.data)
        }
        WorkspacesCommand::Get { id } => {
            let workspace: Workspace = ctx.client()?.get(&path(&id)).await?;
            ctx.printer.one(&workspace)
        }
        WorkspacesCommand::Create(args) => {
            let f = &args.fields;
            let body = CreateWorkspace {
                name: args.name.clone(),
                slug: args.slug.clone(),
                description: f.description.clone(),
                defaults: defaults(f),
                limits: args.limits.owned(),
            };
            let route = "/v1/admin/workspaces";
            if f.dry_run {
                return ctx.dry_run("POST", route, serde_json::to_value(&body).ok());
            }
            let created: Workspace = ctx.client()?.post(route, &body).await?;
            ctx.printer.note(&format!(
                "created workspace {} ({})",
                created.name, created.slug
            ));
            ctx.printer.one(&created)
        }
        WorkspacesCommand::Update(args) => {
            let f = &args.fields;
            let body = UpdateWorkspace {
                name: args.name.clone(),
                description: f.description.clone(),
                defaults: defaults(f),
                limits: args.limits.change(),
            };
            if f.dry_run {
                return ctx.dry_run("PUT", &path(&args.id), serde_json::to_value(&body).ok());
            }
            let workspace: Workspace = ctx.client()?.put(&path(&args.id), &body).await?;
            ctx.printer.one(&workspace)
        }
        WorkspacesCommand::Delete { id, dry_run } => {
            ctx.delete(
                &path(&id),
                &format!("delete the workspace {id}"),
                &format!("deleted workspace {id}"),
                dry_run,
            )
            .await
        }
    }
}
