//! `tollgate login`, `logout` and `whoami`.

use std::io::IsTerminal;

use clap::Args;

use super::ctx::Ctx;
use crate::api::keys::ApiKey;
use crate::client::{credentials, parse_url, ApiClient};
use crate::error::Result;
use crate::output::prompt;

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Read the key from standard input (the default when stdin is not a terminal)
    #[arg(long)]
    with_token: bool,
}

pub async fn login(ctx: &Ctx, args: LoginArgs) -> Result<()> {
    let target = ctx.target()?;
    let key = if args.with_token || !std::io::stdin().is_terminal() {
        prompt::secret_from_stdin("API key")?
    } else {
        prompt::secret(ctx.global.no_input, "tollgate API key", "--with-token")?
    };
    let client = ApiClient::new(parse_url(&target.url)?, Some(key.clone()))?;
    let me: ApiKey = client.get("/v1/api-keys/self").await?;
    let stored_in = credentials::store(&target.context, &key)?;
    ctx.printer.note(&format!(
        "logged in to {} ({}) as {} [{}]; key stored in {stored_in}",
        target.context, target.url, me.name, me.key_type
    ));
    Ok(())
}

pub fn logout(ctx: &Ctx) -> Result<()> {
    let name = ctx.context_name();
    if credentials::remove(name)? {
        ctx.printer
            .note(&format!("removed the stored key of {name}"));
    } else {
        ctx.printer.note(&format!("no key was stored for {name}"));
    }
    Ok(())
}

pub async fn whoami(ctx: &Ctx) -> Result<()> {
    let me: ApiKey = ctx.client()?.get("/v1/api-keys/self").await?;
    ctx.printer.one(&me)
}
