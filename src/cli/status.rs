//! `tollgate status`: where the control plane is, whether it answers, and who you are there.

use serde::Serialize;

use super::ctx::Ctx;
use crate::api::keys::ApiKey;
use crate::api::Health;
use crate::error::{CliError, ExitKind, Result};
use crate::output::{cell, Fields};

#[derive(Serialize)]
struct Status {
    context: String,
    url: String,
    health: String,
    version: Option<String>,
    key_name: Option<String>,
    key_type: Option<String>,
    scopes: Vec<String>,
    credential: Option<String>,
}

impl Fields for Status {
    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("context", self.context.clone()),
            ("url", self.url.clone()),
            ("health", self.health.clone()),
            ("version", cell(self.version.as_deref())),
            ("key", cell(self.key_name.as_deref())),
            ("key type", cell(self.key_type.as_deref())),
            ("scopes", self.scopes.join(", ")),
            ("credential", cell(self.credential.as_deref())),
        ]
    }
}

pub async fn run(ctx: &Ctx) -> Result<()> {
    let (client, target) = ctx.client_maybe_anonymous()?;
    let health: Result<Health> = client.get("/v1/health").await;
    let unreachable = matches!(&health, Err(e) if e.kind == ExitKind::Unreachable);
    let me: Option<ApiKey> = match (&health, &target.key) {
        (Ok(_), Some(_)) => client.get("/v1/api-keys/self").await.ok(),
        _ => None,
    };
    let status = Status {
        context: target.context.clone(),
        url: target.url.clone(),
        health: match &health {
            Ok(h) => h.status.clone(),
            Err(e) => format!("unreachable: {}", e.message),
        },
        version: health.as_ref().ok().map(|h| h.version.clone()),
        key_name: me.as_ref().map(|k| k.name.clone()),
        key_type: me.as_ref().map(|k| k.key_type.clone()),
        scopes: me.map(|k| k.scopes).unwrap_or_default(),
        credential: target.key.as_ref().map(|(_, source)| source.to_string()),
    };
    ctx.printer.one(&status)?;
    if unreachable {
        return Err(CliError::new(
            ExitKind::Unreachable,
            format!("the control plane at {} is unreachable", target.url),
        )
        .hint("start it with `tollgate serve`, or point --url or --context at a running one"));
    }
    Ok(())
}
