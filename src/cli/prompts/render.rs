//! `prompts render` and `prompts run`: a prompt filled with variables, shown or sent.

use clap::Args;
use serde_json::{json, Map, Value};

use super::path;
use crate::cli::args::{metadata, parse_pair};
use crate::cli::ctx::Ctx;
use crate::error::{CliError, Result};
use crate::output::Format;

#[derive(Debug, Args)]
pub struct VariableArgs {
    /// The prompt: ID (the published version), ID@N, ID@latest or ID@LABEL
    reference: String,
    /// A template variable (repeatable); wins over --vars-file
    #[arg(long = "var", value_parser = parse_pair, value_name = "KEY=VALUE")]
    vars: Vec<(String, String)>,
    /// Variables as a YAML or JSON object, or `-` for standard input
    #[arg(long, value_name = "FILE")]
    vars_file: Option<String>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    variables: VariableArgs,
    /// Print the answer as it arrives
    #[arg(long)]
    stream: bool,
}

/// `{"variables": {...}}`: the file's, then each --var.
fn request(args: &VariableArgs) -> Result<Map<String, Value>> {
    let mut variables = match &args.vars_file {
        None => Map::new(),
        Some(file) => match crate::cli::configs::files::read_value(file)? {
            Value::Object(map) => map,
            _ => {
                return Err(
                    CliError::usage(format!("{file}: variables must be an object"))
                        .hint("write one `name: value` per line"),
                )
            }
        },
    };
    variables.extend(metadata(&args.vars));
    Ok(Map::from_iter([(
        "variables".into(),
        Value::Object(variables),
    )]))
}

/// A 400 listing missing variables says how to give them.
fn variables_hint(e: CliError) -> CliError {
    if e.details.iter().any(|d| d.starts_with("missing variable")) {
        e.hint("give each with --var NAME=VALUE, or all of them with --vars-file FILE")
    } else {
        e
    }
}

pub async fn render(ctx: &Ctx, args: VariableArgs) -> Result<()> {
    let body = request(&args)?;
    let rendered: Value = ctx
        .client()?
        .post(&format!("{}/render", path(&args.reference)), &body)
        .await
        .map_err(variables_hint)?;
    ctx.printer.document(&rendered["data"])
}

pub async fn run(ctx: &Ctx, args: RunArgs) -> Result<()> {
    let mut body = request(&args.variables)?;
    let stream = args.stream && !matches!(ctx.printer.format, Format::Json | Format::Yaml);
    if stream {
        body.insert("stream".into(), json!(true));
    }
    let response = ctx
        .client()?
        .post_raw(
            &format!("{}/completions", path(&args.variables.reference)),
            &Value::Object(body),
            &[],
        )
        .await
        .map_err(variables_hint)?;
    if stream {
        return crate::cli::chat::stream(ctx, response).await.map(drop);
    }
    let answer: Value = response
        .json()
        .await
        .map_err(|e| CliError::failed(format!("unreadable answer: {e}")))?;
    match ctx.printer.format {
        Format::Table => ctx.printer.text(&format!(
            "{}\n",
            answer["choices"][0]["message"]["content"]
                .as_str()
                .unwrap_or_default()
        )),
        _ => ctx.printer.document(&answer),
    }
}
