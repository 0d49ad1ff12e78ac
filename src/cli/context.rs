//! `tollgate context`: named control planes.

use clap::Subcommand;
use serde::Serialize;

use super::ctx::Ctx;
use crate::client::contexts::{Context, LOCAL};
use crate::client::{credentials, parse_url};
use crate::error::{CliError, ExitKind, Result};
use crate::output::{prompt, Format, Row};

const EXAMPLES: &str = "\
Examples:
  tollgate context add prod --url https://tollgate.example.com --use
  printenv PROD_KEY | tollgate login --with-token
  tollgate --context local keys list
  tollgate context list -o json";

#[derive(Debug, Subcommand)]
#[command(after_help = EXAMPLES)]
pub enum ContextCommand {
    /// Add (or change) a context
    Add {
        name: String,
        #[arg(long)]
        url: String,
        /// This context's default output format
        #[arg(long = "default-output", value_enum, value_name = "FORMAT")]
        default_output: Option<Format>,
        /// Make it the current context
        #[arg(long = "use")]
        make_current: bool,
    },
    /// Make a context the current one
    Use { name: String },
    /// List contexts
    #[command(visible_alias = "ls")]
    List,
    /// Remove a context and its stored key
    #[command(visible_alias = "rm")]
    Remove { name: String },
}

#[derive(Serialize)]
struct ContextView {
    name: String,
    url: String,
    current: bool,
    credential: Option<String>,
}

impl Row for ContextView {
    const HEADERS: &'static [&'static str] = &["", "NAME", "URL", "CREDENTIAL"];
    fn cells(&self) -> Vec<String> {
        vec![
            if self.current { "*" } else { "" }.into(),
            self.name.clone(),
            self.url.clone(),
            self.credential.clone().unwrap_or_else(|| "-".into()),
        ]
    }
}

pub fn run(ctx: &Ctx, cmd: ContextCommand) -> Result<()> {
    let mut contexts = ctx.contexts.clone();
    match cmd {
        ContextCommand::Add {
            name,
            url,
            default_output,
            make_current,
        } => {
            parse_url(&url)?;
            contexts.contexts.insert(
                name.clone(),
                Context {
                    url,
                    output: default_output,
                },
            );
            if make_current {
                contexts.current = Some(name.clone());
            }
            contexts.save()?;
            ctx.printer.note(&format!(
                "added context {name}; `tollgate login --context {name}` stores its key"
            ));
            Ok(())
        }
        ContextCommand::Use { name } => {
            if !contexts.contexts.contains_key(&name) && name != LOCAL {
                return Err(unknown(&name));
            }
            contexts.current = Some(name.clone());
            contexts.save()?;
            ctx.printer.note(&format!("now using context {name}"));
            Ok(())
        }
        ContextCommand::List => {
            let current = contexts.current_name().to_string();
            let views = contexts
                .contexts
                .iter()
                .map(|(name, c)| {
                    Ok(ContextView {
                        current: *name == current,
                        name: name.clone(),
                        url: c.url.clone(),
                        credential: credentials::lookup(name)?.map(|(_, s)| s.to_string()),
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            ctx.printer.list(&views)
        }
        ContextCommand::Remove { name } => {
            if contexts.contexts.remove(&name).is_none() {
                return Err(unknown(&name));
            }
            prompt::confirm(
                ctx.global.yes,
                ctx.global.no_input,
                &format!("remove the context {name} and its stored key"),
            )?;
            if contexts.current.as_deref() == Some(&name) {
                contexts.current = None;
            }
            contexts.save()?;
            credentials::remove(&name)?;
            ctx.printer.note(&format!("removed context {name}"));
            Ok(())
        }
    }
}

fn unknown(name: &str) -> CliError {
    CliError::new(ExitKind::NotFound, format!("no context named {name:?}"))
        .hint("`tollgate context list` shows the contexts")
}
