//! `prompts apply` (create or add a version by name, idempotent) and `prompts diff`.

use std::collections::HashMap;

use clap::Args;

use super::{all_prompts, new_version, path, read_prompt, version};
use crate::api::prompts::{CreatePrompt, Prompt, PromptCreated};
use crate::cli::configs::apply::Outcome;
use crate::cli::configs::files::sources;
use crate::cli::ctx::Ctx;
use crate::error::{CliError, Result};
use crate::output::{progress, to_yaml};

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// A prompt file, a folder of .yaml/.yml/.json prompt files, or `-` for standard input
    #[arg(short, long, value_name = "FILE|DIR|-")]
    file: String,
    /// Show the plan without changing anything
    #[arg(long)]
    dry_run: bool,
}

/// Every prompt file, read before anything is sent; fails with every problem at once.
fn read_all(source: &str) -> Result<Vec<(String, CreatePrompt)>> {
    let mut all: Vec<(String, CreatePrompt)> = Vec::new();
    let mut problems = Vec::new();
    for source in sources(source)? {
        match read_prompt(&source) {
            Ok(p) => match all.iter().find(|(_, o)| o.name == p.name) {
                Some((other, _)) => problems.push(format!(
                    "{other} and {source} both define the prompt {:?}",
                    p.name
                )),
                None => all.push((source, p)),
            },
            Err(e) => problems.push(e.message),
        }
    }
    if problems.is_empty() {
        Ok(all)
    } else {
        Err(
            CliError::failed("some prompt files are invalid; nothing was changed")
                .details(problems)
                .hint("fix the problems above and run the command again"),
        )
    }
}

pub async fn apply(ctx: &Ctx, args: ApplyArgs) -> Result<()> {
    let desired = read_all(&args.file)?;
    let client = ctx.client()?;
    let existing: HashMap<String, Prompt> = all_prompts(&client)
        .await?
        .into_iter()
        .map(|p| (p.name.clone(), p))
        .collect();
    let bar = progress::bar(&ctx.printer, desired.len() as u64, "applying");
    let mut outcomes = Vec::new();
    for (source, prompt) in desired {
        let name = prompt.name.clone();
        let outcome = |action, slug: Option<&str>, version| Outcome {
            name: name.clone(),
            slug: slug.map(String::from),
            action,
            version,
            source: source.clone(),
        };
        let done = match existing.get(&prompt.name) {
            None if args.dry_run => outcome("create", None, None),
            None => {
                let made: PromptCreated = client.post("/v1/prompts", &prompt).await?;
                outcome("create", Some(&made.slug), Some(made.version))
            }
            Some(p) => {
                let latest: Prompt = client.get(&path(&format!("{}@latest", p.slug))).await?;
                if latest.template == prompt.template {
                    outcome("unchanged", Some(&p.slug), Some(latest.prompt_version))
                } else if args.dry_run {
                    outcome("update", Some(&p.slug), Some(latest.prompt_version + 1))
                } else {
                    let made: PromptCreated =
                        client.put(&path(&p.slug), &new_version(prompt)).await?;
                    outcome("update", Some(&made.slug), Some(made.version))
                }
            }
        };
        bar.inc(1);
        outcomes.push(done);
    }
    bar.finish_and_clear();
    if args.dry_run {
        ctx.printer.note("dry run: nothing was changed");
    }
    ctx.printer.list(&outcomes)
}

/// Unified diff of two versions' templates as YAML; exit 1 when they differ.
pub async fn diff(ctx: &Ctx, id: &str, a: u32, b: u32) -> Result<()> {
    let client = ctx.client()?;
    let before = to_yaml(&version(&client, id, a).await?.template)?;
    let after = to_yaml(&version(&client, id, b).await?.template)?;
    if before == after {
        ctx.printer
            .note(&format!("{id}: versions {a} and {b} are the same"));
        return Ok(());
    }
    crate::cli::diff::show(
        ctx,
        &before,
        &after,
        &format!("{id}@{a}"),
        &format!("{id}@{b}"),
    )
}
