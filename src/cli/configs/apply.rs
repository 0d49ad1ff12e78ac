//! `configs apply` (create or update by name, idempotent) and `configs diff`.

use serde::Serialize;
use std::collections::HashMap;

use super::files::{self, Desired};
use super::{all_configs, path};
use crate::api::configs::{Config, ConfigCreated, ConfigUpdated, CreateConfig, UpdateConfig};
use crate::api::Success;
use crate::cli::ctx::Ctx;
use crate::error::{CliError, ExitKind, Result};
use crate::output::{progress, to_yaml, Row};

/// What `apply` did (or would do) with one file; prompts' `apply` reports the same way.
#[derive(Debug, Serialize)]
pub(crate) struct Outcome {
    pub name: String,
    pub slug: Option<String>,
    /// `create`, `update` or `unchanged`.
    pub action: &'static str,
    pub version: Option<u32>,
    pub source: String,
}

impl Row for Outcome {
    const HEADERS: &'static [&'static str] = &["NAME", "SLUG", "ACTION", "VERSION", "SOURCE"];
    fn cells(&self) -> Vec<String> {
        vec![
            self.name.clone(),
            self.slug.clone().unwrap_or_else(|| "-".into()),
            self.action.into(),
            self.version.map_or("-".into(), |v| v.to_string()),
            self.source.clone(),
        ]
    }
}

fn plan(desired: &Desired, existing: Option<&Config>) -> &'static str {
    match existing {
        None => "create",
        Some(c) if c.config == desired.config => "unchanged",
        Some(_) => "update",
    }
}

pub async fn apply(ctx: &Ctx, source: &str, dry_run: bool) -> Result<()> {
    let desired = files::read_all(source)?;
    let client = ctx.client()?;
    let existing: HashMap<String, Config> = all_configs(&client)
        .await?
        .into_iter()
        .map(|c| (c.name.clone(), c))
        .collect();
    let bar = progress::bar(&ctx.printer, desired.len() as u64, "applying");
    let mut outcomes = Vec::new();
    for d in desired {
        let current = existing.get(&d.name);
        let action = plan(&d, current);
        let (slug, version) = match (action, dry_run, current) {
            (_, true, c) | ("unchanged", _, c) => (c.map(|c| c.slug.clone()), c.map(|c| c.version)),
            ("create", _, _) => {
                let body = CreateConfig {
                    name: d.name.clone(),
                    config: d.config.clone(),
                    is_default: 0,
                };
                let created: Success<ConfigCreated> = client.post("/v1/configs", &body).await?;
                (Some(created.data.slug), Some(1))
            }
            (_, _, Some(c)) => {
                let body = UpdateConfig {
                    config: Some(d.config.clone()),
                    ..Default::default()
                };
                let updated: Success<ConfigUpdated> = client.put(&path(&c.slug), &body).await?;
                (Some(c.slug.clone()), Some(updated.data.version))
            }
            (_, _, None) => unreachable!("plan() only updates existing configs"),
        };
        bar.inc(1);
        outcomes.push(Outcome {
            name: d.name,
            slug,
            action,
            version,
            source: d.source,
        });
    }
    bar.finish_and_clear();
    if dry_run {
        ctx.printer.note("dry run: nothing was changed");
    }
    ctx.printer.list(&outcomes)
}

/// Unified diff of the saved config (as YAML) against the file; exit 1 when they differ.
pub async fn diff(ctx: &Ctx, source: &str) -> Result<()> {
    // Exit 1 means "changes": a file that cannot be compared is an error above that.
    let mut desired = files::read_all(source).map_err(|mut e| {
        if e.kind == ExitKind::Failed {
            e.kind = ExitKind::Usage;
        }
        e
    })?;
    if desired.len() != 1 {
        return Err(CliError::usage("diff takes one file").hint("run it once per file"));
    }
    let d = desired.remove(0);
    let client = ctx.client()?;
    let current = all_configs(&client)
        .await?
        .into_iter()
        .find(|c| c.name == d.name);
    let before = match &current {
        Some(c) => to_yaml(&c.config)?,
        None => String::new(),
    };
    let after = to_yaml(&d.config)?;
    if before == after && current.is_some() {
        ctx.printer.note(&format!("{}: no changes", d.name));
        return Ok(());
    }
    let label = current.map_or_else(|| "(not saved)".to_string(), |c| c.slug);
    crate::cli::diff::show(
        ctx,
        &before,
        &after,
        &format!("{} {label}", d.name),
        &d.source,
    )
}
