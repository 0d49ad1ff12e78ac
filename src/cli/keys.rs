//! `tollgate keys`: API keys for the gateway and the admin API.

use clap::{Args, Subcommand, ValueEnum};
use serde::Serialize;

use super::args::{from_now, metadata, parse_duration, parse_pair, split_list};
use super::ctx::Ctx;
use super::limits::{LimitArgs, LimitChangeArgs};
use crate::api::keys::{
    ApiKey, ApiKeyCreated, ApiKeyRotated, CreateApiKey, KeyDefaults, RotateApiKey, UpdateApiKey,
};
use crate::api::List;
use crate::error::Result;
use crate::output::{cell, Fields, Format, Row};

const EXAMPLES: &str = "\
Examples:
  tollgate keys create --name ci-bot                      # a gateway key: completions.write, prompts.render
  tollgate keys create --name ops --type admin --expires 30d
  tollgate keys create --name agent --config pc-prod-a1b2c3 --metadata team=search
  tollgate keys create --name research --budget 50 --period monthly --alert 80 --rate 60/min --models '@openai-dev/*'
  tollgate keys update 6f1c... --reset-usage              # start the key's budget window over
  tollgate keys create --name search-bot --workspace ws-searc-x1y2z3
  KEY=$(tollgate keys create --name ci-bot -o json | jq -r .key)
  tollgate keys rotate 6f1c... --grace 24h                # the old secret works for another day";

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum KeyType {
    /// An organisation service key: manages the control plane
    Admin,
    /// A workspace service key: calls the gateway
    Workspace,
}

#[derive(Debug, Subcommand)]
#[command(after_help = EXAMPLES)]
pub enum KeysCommand {
    /// List keys (secrets masked)
    #[command(visible_alias = "ls")]
    List,
    /// Show one key (secret masked)
    Get { id: String },
    /// Create a key and print its secret, once
    Create(CreateArgs),
    /// Change a key's name, scopes, defaults or expiry
    Update(UpdateArgs),
    /// Revoke a key at once
    #[command(visible_alias = "rm")]
    Delete {
        id: String,
        /// Show what would be sent without sending it
        #[arg(long)]
        dry_run: bool,
    },
    /// Give a key a new secret; the old one keeps working for the grace period
    Rotate {
        id: String,
        /// How long the old secret keeps working, e.g. 24h [default: it stops at once]
        #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
        grace: Option<u64>,
    },
}

#[derive(Debug, Args)]
pub struct KeyFields {
    /// Comma-separated scopes, e.g. configs.read,configs.list
    #[arg(long, value_name = "SCOPES")]
    scopes: Option<String>,
    /// A saved config applied to requests that name none
    #[arg(long, value_name = "SLUG")]
    config: Option<String>,
    /// Metadata added to every request made with the key (repeatable)
    #[arg(long, value_parser = parse_pair, value_name = "KEY=VALUE")]
    metadata: Vec<(String, String)>,
    /// Whether the request log keeps this key's request and response bodies
    #[arg(long, value_name = "BOOL")]
    log_bodies: Option<bool>,
    /// When the key stops working, from now: 30d, 12h, 1w
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    expires: Option<u64>,
    #[arg(long)]
    description: Option<String>,
    /// Show what would be sent without sending it
    #[arg(long)]
    dry_run: bool,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    #[arg(long)]
    name: String,
    /// admin: manages the control plane; workspace: calls the gateway
    #[arg(long = "type", value_enum, default_value_t = KeyType::Workspace)]
    key_type: KeyType,
    /// The workspace (id or slug) a workspace key belongs to [default: ws-default]
    #[arg(long, value_name = "ID|SLUG")]
    workspace: Option<String>,
    #[command(flatten)]
    fields: KeyFields,
    #[command(flatten)]
    limits: LimitArgs,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    id: String,
    #[arg(long)]
    name: Option<String>,
    #[command(flatten)]
    fields: KeyFields,
    #[command(flatten)]
    limits: LimitChangeArgs,
}

impl Row for ApiKey {
    const HEADERS: &'static [&'static str] = &["ID", "NAME", "KEY", "TYPE", "STATUS", "EXPIRES"];
    fn cells(&self) -> Vec<String> {
        vec![
            self.id.clone(),
            self.name.clone(),
            self.key.clone(),
            self.key_type.clone(),
            self.status.clone(),
            cell(self.expires_at.as_deref()),
        ]
    }
}

impl Fields for ApiKey {
    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("id", self.id.clone()),
            ("name", self.name.clone()),
            ("key", self.key.clone()),
            ("type", self.key_type.clone()),
            ("workspace", cell(self.workspace_id.as_deref())),
            ("status", self.status.clone()),
            ("scopes", self.scopes.join(", ")),
            (
                "budget",
                super::limits::describe_budget(self.usage_limits.as_ref()),
            ),
            (
                "rate limits",
                super::limits::describe_rates(&self.rate_limits),
            ),
            (
                "models",
                self.allowed_models
                    .as_ref()
                    .map_or("all".into(), |m| m.join(", ")),
            ),
            ("config", cell(self.defaults.config_id.as_deref())),
            (
                "log bodies",
                self.defaults.log_bodies.unwrap_or(true).to_string(),
            ),
            (
                "metadata",
                serde_json::Value::Object(self.defaults.metadata.clone()).to_string(),
            ),
            ("description", cell(self.description.as_deref())),
            ("expires_at", cell(self.expires_at.as_deref())),
            (
                "old secret valid until",
                cell(self.key_transition_expires_at.as_deref()),
            ),
            ("created_at", self.created_at.clone()),
            ("last_updated_at", self.last_updated_at.clone()),
        ]
    }
}

/// A secret shown once: the whole answer in json/yaml/ndjson, and plainly on a table.
fn show_secret<T: Serialize>(ctx: &Ctx, value: &T, id: &str, key: &str) -> Result<()> {
    if ctx.printer.format == Format::Table {
        ctx.printer
            .note("Save this key now: it is shown only once and cannot be recovered.");
        ctx.printer.text(&format!("id:  {id}\nkey: {key}\n"))
    } else {
        ctx.printer.document(value)
    }
}

fn defaults(fields: &KeyFields) -> Option<KeyDefaults> {
    (fields.config.is_some() || !fields.metadata.is_empty() || fields.log_bodies.is_some()).then(
        || KeyDefaults {
            config_id: fields.config.clone(),
            metadata: metadata(&fields.metadata),
            log_bodies: fields.log_bodies,
        },
    )
}

fn path(id: &str) -> String {
    format!("/v1/api-keys/{id}")
}

pub async fn run(ctx: &Ctx, cmd: KeysCommand) -> Result<()> {
    match cmd {
        KeysCommand::List => {
            let list: List<ApiKey> = ctx.client()?.get("/v1/api-keys?page_size=1000").await?;
            ctx.printer.list(&list.data)
        }
        KeysCommand::Get { id } => {
            let key: ApiKey = ctx.client()?.get(&path(&id)).await?;
            ctx.printer.one(&key)
        }
        KeysCommand::Create(args) => {
            let f = &args.fields;
            let body = CreateApiKey {
                name: args.name.clone(),
                scopes: f.scopes.as_deref().map(split_list),
                description: f.description.clone(),
                workspace_id: args.workspace.clone(),
                defaults: defaults(f),
                expires_at: f.expires.map(from_now),
                limits: args.limits.owned(),
            };
            let route = match args.key_type {
                KeyType::Admin => "/v1/api-keys/organisation/service",
                KeyType::Workspace => "/v1/api-keys/workspace/service",
            };
            if f.dry_run {
                return ctx.dry_run("POST", route, serde_json::to_value(&body).ok());
            }
            let created: ApiKeyCreated = ctx.client()?.post(route, &body).await?;
            ctx.printer
                .note(&format!("created key {} ({})", args.name, created.id));
            show_secret(ctx, &created, &created.id, &created.key)
        }
        KeysCommand::Update(args) => {
            let f = &args.fields;
            let body = UpdateApiKey {
                name: args.name.clone(),
                description: f.description.clone(),
                scopes: f.scopes.as_deref().map(split_list),
                defaults: defaults(f),
                expires_at: f.expires.map(from_now),
                limits: args.limits.change(),
            };
            if f.dry_run {
                return ctx.dry_run("PUT", &path(&args.id), serde_json::to_value(&body).ok());
            }
            let key: ApiKey = ctx.client()?.put(&path(&args.id), &body).await?;
            ctx.printer.one(&key)
        }
        KeysCommand::Delete { id, dry_run } => {
            ctx.delete(
                &path(&id),
                &format!("revoke the API key {id}"),
                &format!("revoked key {id}"),
                dry_run,
            )
            .await
        }
        KeysCommand::Rotate { id, grace } => {
            let body = RotateApiKey {
                key_transition_period_ms: grace.unwrap_or(0) * 1000,
            };
            let rotated: ApiKeyRotated = ctx
                .client()?
                .post(&format!("{}/rotate", path(&id)), &body)
                .await?;
            match &rotated.key_transition_expires_at {
                Some(until) => ctx.printer.note(&format!(
                    "rotated key {id}; the old secret works until {until}"
                )),
                None => ctx
                    .printer
                    .note(&format!("rotated key {id}; the old secret no longer works")),
            }
            show_secret(ctx, &rotated, &rotated.id, &rotated.key)
        }
    }
}
