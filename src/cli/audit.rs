//! `tollgate audit`: the audit log of admin changes.

use clap::{Args, Subcommand};

use super::ctx::Ctx;
use super::logs::filter::time_bound;
use super::units::timestamp;
use crate::api::audit::{AuditFilter, AuditLog, AuditLogList};
use crate::api::MAX_PAGE_SIZE;
use crate::error::Result;
use crate::output::{cell, Row};

const EXAMPLES: &str = "\
Examples:
  tollgate audit list --since 1d                        # every admin change of the last day
  tollgate audit list --resource-type api-keys --action rotate --since 30d
  tollgate audit list --actor 0193a1b2-... --until 2026-12-01T00:00:00Z
  tollgate audit list --since 7d --limit 1000 -o ndjson | jq -r 'select(.response_status_code >= 400) | .uri'";

#[derive(Debug, Subcommand)]
#[command(after_help = EXAMPLES)]
pub enum AuditCommand {
    /// List admin changes, newest first: who, what, when, from where, and the status
    #[command(visible_alias = "ls")]
    List(ListArgs),
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only changes since this time: RFC 3339 or a duration before now (90s, 15m, 1h, 1d)
    #[arg(long, value_parser = time_bound, value_name = "TIME")]
    since: Option<String>,
    /// Only changes before this time: RFC 3339 or a duration before now
    #[arg(long, value_parser = time_bound, value_name = "TIME")]
    until: Option<String>,
    /// create, update, delete or rotate
    #[arg(long)]
    action: Option<String>,
    /// The route's resource: integrations, configs, api-keys, ...
    #[arg(long, value_name = "TYPE")]
    resource_type: Option<String>,
    /// Only the changes made with this API key
    #[arg(long, value_name = "KEY_ID")]
    actor: Option<String>,
    /// How many changes to show (1 to 1000)
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=MAX_PAGE_SIZE as i64))]
    limit: u32,
}

impl Row for AuditLog {
    const HEADERS: &'static [&'static str] =
        &["TIME", "ACTOR", "ACTION", "RESOURCE", "STATUS", "IP"];
    fn cells(&self) -> Vec<String> {
        let resource = match &self.resource_id {
            Some(id) => format!("{}/{id}", self.resource_type),
            None => self.resource_type.clone(),
        };
        vec![
            timestamp(&self.created_at),
            self.user_name.clone(),
            self.action.clone(),
            resource,
            self.response_status_code.to_string(),
            cell(self.client_ip.as_deref()),
        ]
    }
}

pub async fn run(ctx: &Ctx, cmd: AuditCommand) -> Result<()> {
    match cmd {
        AuditCommand::List(args) => {
            let filter = AuditFilter {
                start_time: args.since,
                end_time: args.until,
                action: args.action,
                resource_type: args.resource_type,
                user_id: args.actor,
                page_size: Some(args.limit),
                ..AuditFilter::default()
            };
            let list: AuditLogList = ctx
                .client()?
                .get(&format!("/v1/audit-logs?{}", filter.to_query()))
                .await?;
            ctx.printer.list(&list.records)?;
            if list.total > list.records.len() as u64 {
                ctx.printer.note(&format!(
                    "showing the newest {} of {} changes: narrow with --since or raise --limit",
                    list.records.len(),
                    list.total
                ));
            }
            Ok(())
        }
    }
}
