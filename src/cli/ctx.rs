//! What every command gets: the global flags, the printer, and the resolved control plane.

use crate::client::contexts::{Context, Contexts, LOCAL};
use crate::client::credentials::{self, Source};
use crate::client::{parse_url, ApiClient};
use crate::error::{CliError, ExitKind, Result};
use crate::output::{Format, Printer};
use crate::server::DEFAULT_ADDR;

use super::GlobalArgs;

pub struct Ctx {
    pub global: GlobalArgs,
    pub printer: Printer,
    pub contexts: Contexts,
}

/// The control plane a command talks to.
pub struct Target {
    pub context: String,
    pub url: String,
    pub key: Option<(String, Source)>,
}

impl Ctx {
    pub fn new(global: GlobalArgs) -> Result<Ctx> {
        let contexts = Contexts::load()?;
        let name = global
            .context
            .clone()
            .unwrap_or_else(|| contexts.current_name().to_string());
        let format = global
            .output
            .or_else(|| contexts.contexts.get(&name).and_then(|c| c.output))
            .unwrap_or(Format::Table);
        let printer = Printer::new(format, global.quiet, global.color);
        Ok(Ctx {
            global,
            printer,
            contexts,
        })
    }

    pub fn context_name(&self) -> &str {
        self.global
            .context
            .as_deref()
            .unwrap_or_else(|| self.contexts.current_name())
    }

    pub fn target(&self) -> Result<Target> {
        let name = self.context_name().to_string();
        let context = self.contexts.contexts.get(&name);
        if context.is_none() && name != LOCAL && self.global.url.is_none() {
            return Err(CliError::usage(format!("no context named {name:?}")).hint(
                "`tollgate context list` shows the contexts; `tollgate context add` adds one",
            ));
        }
        let url = self
            .global
            .url
            .clone()
            .or_else(|| context.map(|c: &Context| c.url.clone()))
            .unwrap_or_else(|| format!("http://{DEFAULT_ADDR}"));
        Ok(Target {
            key: credentials::lookup(&name)?,
            context: name,
            url,
        })
    }

    /// A client with the context's credential; fails early (exit 3) when there is none.
    pub fn client(&self) -> Result<ApiClient> {
        let target = self.target()?;
        let Some((key, _)) = target.key else {
            return Err(CliError::new(
                ExitKind::Auth,
                format!("no API key is stored for the context {:?}", target.context),
            )
            .hint("run `tollgate login`, or set TOLLGATE_API_KEY; `tollgate serve` stores one for the local context on first start"));
        };
        ApiClient::new(parse_url(&target.url)?, Some(key))
    }

    /// A client that sends the credential if there is one (for `api` and `status`).
    pub fn client_maybe_anonymous(&self) -> Result<(ApiClient, Target)> {
        let target = self.target()?;
        let client = ApiClient::new(
            parse_url(&target.url)?,
            target.key.as_ref().map(|(k, _)| k.clone()),
        )?;
        Ok((client, target))
    }
}

impl Ctx {
    /// `--dry-run`: shows the request that would be sent, and sends nothing.
    /// Deletes what `path` names after asking `question` (or `--yes`); with `dry_run`, only
    /// shows the request. `done` is the note printed after.
    pub async fn delete(
        &self,
        path: &str,
        question: &str,
        done: &str,
        dry_run: bool,
    ) -> Result<()> {
        if dry_run {
            return self.dry_run("DELETE", path, None);
        }
        crate::output::prompt::confirm(self.global.yes, self.global.no_input, question)?;
        self.client()?.delete(path).await?;
        self.printer.note(done);
        Ok(())
    }

    pub fn dry_run(&self, method: &str, path: &str, body: Option<serde_json::Value>) -> Result<()> {
        self.printer.note("dry run: nothing was sent");
        self.printer.document(&serde_json::json!({
            "dry_run": true,
            "method": method,
            "path": path,
            "body": body,
        }))
    }
}
