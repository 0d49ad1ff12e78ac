//! `tollgate api`: a raw authenticated request, like `gh api`.

use clap::Args;
use reqwest::Method;

use super::ctx::Ctx;
use crate::client::api_error;
use crate::error::{CliError, Result};

const EXAMPLES: &str = "\
Examples:
  tollgate api GET /v1/health
  tollgate api GET '/v1/api-keys?page_size=5'
  tollgate api POST /v1/configs -d '{\"name\":\"p\",\"config\":{\"retry\":{\"attempts\":2}}}'
  tollgate api PUT /v1/configs/pc-p-abc123 -d @change.json";

#[derive(Debug, Args)]
#[command(after_help = EXAMPLES)]
pub struct ApiArgs {
    /// GET, POST, PUT, PATCH or DELETE
    method: String,
    /// A path on the control plane, e.g. /v1/integrations
    path: String,
    /// A JSON body; @FILE reads it from a file, @- from standard input
    #[arg(short, long, value_name = "JSON")]
    data: Option<String>,
}

pub async fn run(ctx: &Ctx, args: ApiArgs) -> Result<()> {
    let method = Method::from_bytes(args.method.to_ascii_uppercase().as_bytes())
        .map_err(|_| CliError::usage(format!("{:?} is not an HTTP method", args.method)))?;
    let body = args.data.as_deref().map(read_body).transpose()?;
    let (client, _) = ctx.client_maybe_anonymous()?;
    let (status, text) = client.raw(method, &args.path, body.as_ref()).await?;
    let pretty = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or(text.clone());
    if !pretty.is_empty() {
        ctx.printer.text(&format!("{pretty}\n"))?;
    }
    if status.is_success() {
        Ok(())
    } else {
        Err(api_error(status, &text))
    }
}

fn read_body(data: &str) -> Result<serde_json::Value> {
    let text = match data.strip_prefix('@') {
        Some("-") => std::io::read_to_string(std::io::stdin())?,
        Some(file) => std::fs::read_to_string(file)
            .map_err(|e| CliError::failed(format!("cannot read {file}: {e}")))?,
        None => data.to_string(),
    };
    serde_json::from_str(&text)
        .map_err(|e| CliError::usage(format!("the body is not valid JSON: {e}")))
}
