//! `tollgate guardrails`: saved guardrails, and trying one on a text before a config uses it.

use clap::{Args, Subcommand, ValueEnum};
use serde_json::{json, Map, Value};

use super::args::{metadata, parse_pair};
use super::configs::files;
use super::ctx::Ctx;
use crate::api::guardrails::{
    Actions, CheckSpec, CreateGuardrail, Guardrail, GuardrailSaved, HookResult, UpdateGuardrail,
};
use crate::api::List;
use crate::error::{CliError, Result};
use crate::gateway::providers::adapter::Endpoint;
use crate::guardrails::{Body, Hook, Stage, Subject};
use crate::output::{Fields, Format, Row};

const EXAMPLES: &str = "\
Examples:
  tollgate guardrails create --name no-pii --check 'portkey.pii={\"redact\":true}'
  tollgate guardrails create --name short --check 'wordCount={\"maxWords\":200}' --deny
  tollgate guardrails create --file guardrail.yaml        # {name, checks, actions}
  tollgate guardrails test pg-nopii-a1b2c3 --text 'mail me at ann@example.com'
  echo 'SELECT * FROM users' | tollgate guardrails test guardrail.yaml --stage output
  tollgate guardrails update pg-short-x1y2z3 --check 'wordCount={\"maxWords\":50}'
  tollgate guardrails delete pg-short-x1y2z3 --yes
In a config: {\"input_guardrails\": [\"pg-nopii-a1b2c3\"], \"output_guardrails\": [...]}";

#[derive(Debug, Subcommand)]
#[command(after_help = EXAMPLES)]
pub enum GuardrailsCommand {
    /// List saved guardrails
    #[command(visible_alias = "ls")]
    List,
    /// Show one guardrail, by id or slug
    Get { id: String },
    /// Save a guardrail
    Create(CreateArgs),
    /// Change a guardrail's name, checks or actions
    Update(UpdateArgs),
    /// Delete a guardrail no saved config names
    #[command(visible_alias = "rm")]
    Delete {
        /// The guardrail's id or slug
        id: String,
        /// Show what would be sent without sending it
        #[arg(long)]
        dry_run: bool,
    },
    /// Run a guardrail's checks on a text, here, and show each verdict; exits 1 if it fails
    Test(TestArgs),
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// A check, as ID or ID=PARAMETERS-JSON, e.g. 'regexMatch={"rule":"\\d{4}"}' (a bare
    /// name means default.NAME; repeatable; replaces all checks on update)
    #[arg(long = "check", value_name = "ID[=JSON]")]
    checks: Vec<String>,
    /// Refuse the request (446) when a check fails
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    deny: Option<bool>,
    /// Run without holding up the request; results are only recorded
    #[arg(long = "async", num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    run_async: Option<bool>,
    /// Run the checks in order, each on what the one before changed
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    sequential: Option<bool>,
    /// Show what would be sent without sending it
    #[arg(long)]
    dry_run: bool,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The name [required unless the file has one]
    #[arg(long)]
    name: Option<String>,
    /// A YAML or JSON document {name, checks, actions} (- for stdin); flags override it
    #[arg(short, long, value_name = "FILE")]
    file: Option<String>,
    /// The workspace (id or slug) [default: the default workspace]
    #[arg(long)]
    workspace: Option<String>,
    #[command(flatten)]
    checks: CheckArgs,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// The guardrail's id or slug
    id: String,
    #[arg(long)]
    name: Option<String>,
    #[command(flatten)]
    checks: CheckArgs,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum TestStage {
    /// As an input guardrail: the text is the last user message
    Input,
    /// As an output guardrail: the text is the model's answer
    Output,
}

#[derive(Debug, Args)]
pub struct TestArgs {
    /// A saved guardrail's id or slug, or a YAML/JSON file {checks, actions}
    guardrail: String,
    /// The text to check [default: standard input]
    #[arg(long)]
    text: Option<String>,
    #[arg(long, value_enum, default_value_t = TestStage::Input)]
    stage: TestStage,
    /// The model the request names (for modelWhitelist)
    #[arg(long, default_value = "gpt-4o")]
    model: String,
    /// Request metadata (for requiredMetadataKeys; repeatable)
    #[arg(long, value_parser = parse_pair, value_name = "KEY=VALUE")]
    metadata: Vec<(String, String)>,
}

impl Row for Guardrail {
    const HEADERS: &'static [&'static str] = &["SLUG", "NAME", "CHECKS", "DENY", "ASYNC"];
    fn cells(&self) -> Vec<String> {
        vec![
            self.slug.clone(),
            self.name.clone(),
            check_ids(&self.checks),
            self.actions.deny.to_string(),
            self.actions.r#async.to_string(),
        ]
    }
}

impl Fields for Guardrail {
    fn fields(&self) -> Vec<(&'static str, String)> {
        let checks = self
            .checks
            .iter()
            .map(|c| {
                let off = if c.is_enabled { "" } else { " (disabled)" };
                format!("{} {}{off}", c.id, Value::Object(c.parameters.clone()))
            })
            .collect::<Vec<_>>()
            .join("\n");
        vec![
            ("id", self.id.clone()),
            ("slug", self.slug.clone()),
            ("name", self.name.clone()),
            ("checks", checks),
            ("deny", self.actions.deny.to_string()),
            ("async", self.actions.r#async.to_string()),
            ("sequential", self.actions.sequential.to_string()),
            ("version_id", self.version_id.clone()),
            ("created_at", self.created_at.clone()),
            ("last_updated_at", self.last_updated_at.clone()),
        ]
    }
}

fn check_ids(checks: &[CheckSpec]) -> String {
    checks
        .iter()
        .map(|c| c.id.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// `ID` or `ID=JSON`; a bare name means `default.NAME`.
fn parse_check(text: &str) -> Result<CheckSpec> {
    let (id, params) = match text.split_once('=') {
        Some((id, json)) => (id.trim(), Some(json)),
        None => (text.trim(), None),
    };
    let parameters = match params {
        None => Map::new(),
        Some(json) => match serde_json::from_str(json) {
            Ok(Value::Object(map)) => map,
            _ => {
                return Err(CliError::usage(format!(
                    "--check {text}: the parameters after = must be a JSON object"
                ))
                .hint(r#"e.g. --check 'regexMatch={"rule":"\\d{4}"}'"#))
            }
        },
    };
    let id = if id.contains('.') {
        id.to_string()
    } else {
        format!("default.{id}")
    };
    Ok(CheckSpec {
        id,
        parameters,
        name: None,
        is_enabled: true,
    })
}

fn parse_checks(args: &CheckArgs) -> Result<Vec<CheckSpec>> {
    args.checks.iter().map(|c| parse_check(c)).collect()
}

/// The flags' actions over `base`.
fn actions(args: &CheckArgs, base: Actions) -> Actions {
    Actions {
        deny: args.deny.unwrap_or(base.deny),
        r#async: args.run_async.unwrap_or(base.r#async),
        sequential: args.sequential.unwrap_or(base.sequential),
        ..base
    }
}

fn path(id: &str) -> String {
    format!("/v1/guardrails/{id}")
}

/// A guardrail document from a file: `{name?, checks, actions?}`.
fn read_document(source: &str) -> Result<CreateGuardrail> {
    let mut value = files::read_value(source)?;
    if let Value::Object(map) = &mut value {
        map.entry("name").or_insert_with(|| json!(""));
    }
    serde_json::from_value(value).map_err(|e| {
        CliError::failed(format!("{source}: not a guardrail: {e}"))
            .hint("write {name, checks: [{id, parameters}], actions: {deny}} in YAML or JSON")
    })
}

async fn create(ctx: &Ctx, args: CreateArgs) -> Result<()> {
    let mut body = match &args.file {
        Some(file) => read_document(file)?,
        None => CreateGuardrail {
            name: String::new(),
            workspace_id: None,
            organisation_id: None,
            checks: Vec::new(),
            actions: Actions::default(),
        },
    };
    if let Some(name) = args.name {
        body.name = name;
    }
    if body.name.is_empty() {
        return Err(CliError::usage("a guardrail needs a name: pass --name"));
    }
    let checks = parse_checks(&args.checks)?;
    if !checks.is_empty() {
        body.checks = checks;
    }
    if body.checks.is_empty() {
        return Err(
            CliError::usage("a guardrail needs checks: pass --check ID[=JSON] or --file")
                .hint(r#"e.g. --check 'portkey.pii={"redact":true}'"#),
        );
    }
    body.actions = actions(&args.checks, body.actions);
    if args.workspace.is_some() {
        body.workspace_id = args.workspace;
    }
    if args.checks.dry_run {
        return ctx.dry_run("POST", "/v1/guardrails", serde_json::to_value(&body).ok());
    }
    let client = ctx.client()?;
    let saved: GuardrailSaved = client.post("/v1/guardrails", &body).await?;
    ctx.printer
        .note(&format!("created guardrail {} ({})", body.name, saved.slug));
    let guardrail: Guardrail = client.get(&path(&saved.id)).await?;
    ctx.printer.one(&guardrail)
}

async fn update(ctx: &Ctx, args: UpdateArgs) -> Result<()> {
    let client = ctx.client()?;
    let checks = parse_checks(&args.checks)?;
    let flags = &args.checks;
    let actions_changed =
        flags.deny.is_some() || flags.run_async.is_some() || flags.sequential.is_some();
    let actions = if actions_changed {
        let current: Guardrail = client.get(&path(&args.id)).await?;
        Some(actions(flags, current.actions))
    } else {
        None
    };
    let body = UpdateGuardrail {
        name: args.name,
        checks: (!checks.is_empty()).then_some(checks),
        actions,
    };
    if flags.dry_run {
        return ctx.dry_run("PUT", &path(&args.id), serde_json::to_value(&body).ok());
    }
    let saved: GuardrailSaved = client.put(&path(&args.id), &body).await?;
    let guardrail: Guardrail = client.get(&path(&saved.id)).await?;
    ctx.printer.one(&guardrail)
}

/// The guardrail to test: a file if one exists at that path, else a saved guardrail.
async fn load(ctx: &Ctx, source: &str) -> Result<(String, Vec<CheckSpec>, Actions)> {
    if std::path::Path::new(source).is_file() || source == "-" {
        let doc = read_document(source)?;
        return Ok((source.to_string(), doc.checks, doc.actions));
    }
    let g: Guardrail = ctx.client()?.get(&path(source)).await?;
    Ok((g.slug, g.checks, g.actions))
}

/// The request and answer a hook sees for a text at `stage`.
fn subject_bodies(text: &str, model: &str) -> (Value, Value) {
    let request = json!({"model": model, "messages": [{"role": "user", "content": text}]});
    let response = json!({"object": "chat.completion", "model": model, "choices": [{
        "index": 0, "finish_reason": "stop",
        "message": {"role": "assistant", "content": text}}]});
    (request, response)
}

async fn test(ctx: &Ctx, args: TestArgs) -> Result<()> {
    let (id, checks, actions) = load(ctx, &args.guardrail).await?;
    let hook = Hook::from_saved(&id, &checks, &actions).map_err(|errors| {
        CliError::failed(format!("{id}: the guardrail's checks are invalid")).details(errors)
    })?;
    let text = match args.text {
        Some(t) => t,
        None if args.guardrail == "-" => {
            return Err(CliError::usage(
                "the guardrail was read from standard input: give the text with --text",
            ))
        }
        None => files::read_text("-")?,
    };
    let (request, response) = subject_bodies(&text, &args.model);
    let metadata = metadata(&args.metadata);
    let stage = match args.stage {
        TestStage::Input => Stage::Before,
        TestStage::Output => Stage::After,
    };
    let subject = Subject {
        stage,
        endpoint: Endpoint::Chat,
        request: &request,
        response: (stage == Stage::After).then_some(Body::Json(&response)),
        model: &args.model,
        provider: "openai",
        metadata: &metadata,
    };
    let http = reqwest::Client::new();
    let verdict = crate::guardrails::run(&hook, &subject, &http).await;
    show(ctx, &verdict.result, verdict.transformed.as_ref(), stage)?;
    if verdict.result.verdict {
        Ok(())
    } else {
        Err(CliError::failed(""))
    }
}

/// The text a transformed body now holds, for showing what a redaction did.
fn transformed_text(body: &Value, stage: Stage) -> Option<&str> {
    match stage {
        Stage::Before => body.pointer("/messages/0/content"),
        Stage::After => body.pointer("/choices/0/message/content"),
    }
    .and_then(Value::as_str)
}

fn show(ctx: &Ctx, result: &HookResult, transformed: Option<&Value>, stage: Stage) -> Result<()> {
    if ctx.printer.format != Format::Table {
        return ctx.printer.document(result);
    }
    let rows = result
        .checks
        .iter()
        .map(|c| {
            let verdict = match (&c.error, c.verdict) {
                (Some(_), _) => "error",
                (None, true) => "pass",
                (None, false) => "FAIL",
            };
            let detail = c.error.clone().unwrap_or_else(|| match c.data.to_value() {
                Value::Null => String::new(),
                other => other.to_string(),
            });
            vec![
                c.id.to_string(),
                verdict.to_string(),
                detail,
                format!("{:.2} ms", c.execution_time),
            ]
        })
        .collect();
    ctx.printer
        .table(&["CHECK", "VERDICT", "DETAILS", "TIME"], rows)?;
    if let Some(text) = transformed.and_then(|t| transformed_text(t, stage)) {
        ctx.printer.text(&format!("transformed: {text}\n"))?;
    }
    let failed = result.checks.iter().filter(|c| !c.verdict).count();
    ctx.printer.note(&match (result.verdict, result.deny) {
        (true, _) => format!(
            "passed: {} of {} checks",
            result.checks.len(),
            result.checks.len()
        ),
        (false, true) => format!(
            "failed {failed} of {} checks: the request would be refused (446)",
            result.checks.len()
        ),
        (false, false) => format!(
            "failed {failed} of {} checks: the answer would be flagged (246)",
            result.checks.len()
        ),
    });
    Ok(())
}

pub async fn run(ctx: &Ctx, cmd: GuardrailsCommand) -> Result<()> {
    match cmd {
        GuardrailsCommand::List => {
            let list: List<Guardrail> = ctx.client()?.get("/v1/guardrails?page_size=1000").await?;
            ctx.printer.list(&list.data)
        }
        GuardrailsCommand::Get { id } => {
            let guardrail: Guardrail = ctx.client()?.get(&path(&id)).await?;
            ctx.printer.one(&guardrail)
        }
        GuardrailsCommand::Create(args) => create(ctx, args).await,
        GuardrailsCommand::Update(args) => update(ctx, args).await,
        GuardrailsCommand::Delete { id, dry_run } => {
            ctx.delete(
                &path(&id),
                &format!("delete the guardrail {id}"),
                &format!("deleted guardrail {id}"),
                dry_run,
            )
            .await
        }
        GuardrailsCommand::Test(args) => test(ctx, args).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_from_flags() {
        let c = parse_check(r#"regexMatch={"rule":"\\d+"}"#).unwrap();
        assert_eq!(c.id, "default.regexMatch");
        assert_eq!(c.parameters["rule"], "\\d+");
        assert_eq!(parse_check("portkey.pii").unwrap().id, "portkey.pii");
        let err = parse_check("wordCount=[1]").unwrap_err();
        assert!(err.message.contains("JSON object"), "{}", err.message);
    }
}
