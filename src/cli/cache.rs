//! `tollgate cache`: the response cache's stats, and purging it.

use clap::Subcommand;
use reqwest::Method;

use super::ctx::Ctx;
use super::logs::filter::time_bound;
use super::units::{timestamp, usd};
use crate::api::cache::{CacheStats, NamespaceStats, Purged};
use crate::error::Result;
use crate::output::{Fields, Format, Row};

const EXAMPLES: &str = "\
Examples:
  tollgate cache stats                       # entries, size, hits and misses, cost saved in 7 days
  tollgate cache stats --since 24h -o json | jq .cost_saved
  tollgate cache purge --namespace team-a    # asks first at a terminal
  tollgate cache purge --yes                 # every entry";

#[derive(Debug, Subcommand)]
#[command(after_help = EXAMPLES)]
pub enum CacheCommand {
    /// Entries, size and bound; lookups since start by outcome; entries per namespace; the
    /// cost cache hits saved
    Stats {
        /// The window of the cost saved: RFC 3339 or a duration before now (24h, 7d, 2w)
        #[arg(long, value_parser = time_bound, default_value = "7d", value_name = "TIME")]
        since: String,
    },
    /// Delete cached answers, from memory and the store: one namespace's, or every one
    Purge {
        /// Only the entries cached under this x-portkey-cache-namespace
        #[arg(long, value_name = "NAME")]
        namespace: Option<String>,
        /// Show what would be sent without sending it
        #[arg(long)]
        dry_run: bool,
    },
}

fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / (1024.0 * 1024.0))
}

impl Fields for CacheStats {
    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("entries", self.entries.to_string()),
            (
                "size",
                format!("{} of {}", megabytes(self.bytes), megabytes(self.max_bytes)),
            ),
            ("hits", self.hits.to_string()),
            ("semantic hits", self.semantic_hits.to_string()),
            ("misses", self.misses.to_string()),
            ("semantic misses", self.semantic_misses.to_string()),
            ("refreshes", self.refreshes.to_string()),
            (
                "cost saved",
                format!(
                    "{} by {} hits since {}",
                    usd(Some(self.cost_saved)),
                    self.saved_requests,
                    timestamp(&self.since)
                ),
            ),
        ]
    }
}

impl Row for NamespaceStats {
    const HEADERS: &'static [&'static str] = &["NAMESPACE", "ENTRIES", "SIZE"];
    fn cells(&self) -> Vec<String> {
        vec![
            self.namespace.clone().unwrap_or_else(|| "(none)".into()),
            self.entries.to_string(),
            megabytes(self.bytes),
        ]
    }
}

pub async fn run(ctx: &Ctx, cmd: CacheCommand) -> Result<()> {
    match cmd {
        CacheCommand::Stats { since } => {
            let query: String = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("since", &since)
                .finish();
            let stats: CacheStats = ctx
                .client()?
                .get(&format!("/v1/cache/stats?{query}"))
                .await?;
            ctx.printer.one(&stats)?;
            if ctx.printer.format == Format::Table {
                ctx.printer.list(&stats.namespaces)?;
            }
            Ok(())
        }
        CacheCommand::Purge { namespace, dry_run } => {
            let mut path = "/v1/cache".to_string();
            if let Some(n) = &namespace {
                path.push_str("?namespace=");
                path.extend(url::form_urlencoded::byte_serialize(n.as_bytes()));
            }
            if dry_run {
                return ctx.dry_run("DELETE", &path, None);
            }
            let question = match &namespace {
                Some(n) => format!("delete the cached answers of namespace {n}"),
                None => "delete every cached answer".to_string(),
            };
            crate::output::prompt::confirm(ctx.global.yes, ctx.global.no_input, &question)?;
            let purged: Purged = ctx
                .client()?
                .send(Method::DELETE, &path, None::<&()>)
                .await?;
            ctx.printer
                .note(&format!("purged {} cached answers", purged.purged));
            if ctx.printer.format != Format::Table {
                ctx.printer.document(&purged)?;
            }
            Ok(())
        }
    }
}
