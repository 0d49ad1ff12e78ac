//! `tollgate status`: where the control plane is, whether it answers, and who you are there.

use serde::Serialize;

use super::ctx::Ctx;
use crate::api::keys::ApiKey;
use crate::api::{Health, StoreHealth, STORE_UNAVAILABLE};
use crate::error::{CliError, ExitKind, Result};
use crate::output::{cell, Fields};

#[derive(Serialize)]
struct Status {
    context: String,
    url: String,
    health: String,
    version: Option<String>,
    store: Option<StoreHealth>,
    key_name: Option<String>,
    key_type: Option<String>,
    scopes: Vec<String>,
    credential: Option<String>,
}

impl Fields for Status {
    fn fields(&self) -> Vec<(&'static str, String)> {
        let mut fields = vec![
            ("context", self.context.clone()),
            ("url", self.url.clone()),
            ("health", self.health.clone()),
            ("version", cell(self.version.as_deref())),
        ];
        if let Some(s) = &self.store {
            let why = s.error.as_ref().map(|e| format!(": {e}"));
            fields.extend([
                (
                    "store",
                    format!(
                        "{} {} since {}{}",
                        s.backend,
                        s.state,
                        s.since,
                        why.unwrap_or_default()
                    ),
                ),
                (
                    "queued records",
                    format!("{} (at most {} held)", s.queued_records, s.queue_limit),
                ),
                ("dropped records", s.dropped_records.to_string()),
            ]);
        }
        fields.extend([
            ("key", cell(self.key_name.as_deref())),
            ("key type", cell(self.key_type.as_deref())),
            ("scopes", self.scopes.join(", ")),
            ("credential", cell(self.credential.as_deref())),
        ]);
        fields
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
    let store = health.as_ref().ok().and_then(|h| h.store.as_ref());
    if let Some(s) = store.filter(|s| s.state == STORE_UNAVAILABLE) {
        ctx.printer.warn(&format!(
            "the server's database is unavailable since {}: the gateway keeps serving from memory and holds {} request records for it ({} dropped); admin changes fail until it is back",
            s.since, s.queued_records, s.dropped_records
        ));
    }
    let status = Status {
        context: target.context.clone(),
        url: target.url.clone(),
        health: match &health {
            Ok(h) => h.status.clone(),
            Err(e) => format!("unreachable: {}", e.message),
        },
        version: health.as_ref().ok().map(|h| h.version.clone()),
        store: health.ok().and_then(|h| h.store),
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
