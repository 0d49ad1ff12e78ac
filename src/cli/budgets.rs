//! `tollgate budgets`: usage-limit policies and their counters.

use clap::{Args, Subcommand};

use super::args::parse_pair;
use super::ctx::Ctx;
use super::limits::{describe_budget, LimitArgs};
use crate::api::governance::{
    BudgetStatus, Condition, CreateUsageLimitPolicy, GroupBy, PolicyCreated,
    UpdateUsageLimitPolicy, UsageLimitPolicy,
};
use crate::api::List;
use crate::error::{CliError, Result};
use crate::output::{Fields, Row};

const EXAMPLES: &str = "\
Examples:
  tollgate budgets create --name per-user --budget 5 --period monthly --group-by metadata._user
  tollgate budgets create --name research --budget 500 --period monthly --alert 80 --condition workspace_id=ws-research
  tollgate budgets create --name gpt-4o --budget 100 --condition model='@openai-prod/gpt-4o*'
  tollgate budgets status                                  # spend, reserved, remaining, reset time
  tollgate budgets reset 0193... --value metadata._user=alice
  tollgate budgets status -o json | jq '.[] | select(.entities[].status == \"exhausted\") | .name'
  (a key's own budget: tollgate keys create --name bot --budget 50 --period monthly)";

const PATH: &str = "/v1/policies/usage-limits";

#[derive(Debug, Subcommand)]
#[command(after_help = EXAMPLES)]
pub enum BudgetsCommand {
    /// List budgets, including those of keys, workspaces and integrations
    #[command(visible_alias = "ls")]
    List,
    /// Show one budget
    Get { id: String },
    /// Create a budget policy
    Create(CreateArgs),
    /// Change a budget's limit, period, alert, conditions or status
    Update(UpdateArgs),
    /// Delete a budget
    #[command(visible_alias = "rm")]
    Delete {
        id: String,
        /// Show what would be sent without sending it
        #[arg(long)]
        dry_run: bool,
    },
    /// Spend, reserved and remaining per budget and group value, and when each resets
    Status {
        /// Only this budget
        id: Option<String>,
    },
    /// Start a budget's current window over from zero
    Reset {
        id: String,
        /// Only this group value, e.g. metadata._user=alice [default: all of them]
        #[arg(long, value_name = "VALUE_KEY")]
        value: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct Selectors {
    /// Only requests where KEY matches VALUE (`*` wildcards): api_key, workspace_id,
    /// provider (@slug), model, metadata.KEY (repeatable)
    #[arg(long, value_parser = parse_pair, value_name = "KEY=VALUE")]
    condition: Vec<(String, String)>,
    /// One counter per value of KEY: api_key, workspace_id, provider, model, metadata.KEY
    /// (repeatable)
    #[arg(long, value_name = "KEY")]
    group_by: Vec<String>,
}

impl Selectors {
    fn conditions(&self) -> Vec<Condition> {
        self.condition
            .iter()
            .map(|(key, value)| Condition {
                key: key.clone(),
                value: value.clone(),
            })
            .collect()
    }

    fn group_by(&self) -> Vec<GroupBy> {
        self.group_by
            .iter()
            .map(|key| GroupBy { key: key.clone() })
            .collect()
    }
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    #[arg(long)]
    name: Option<String>,
    #[command(flatten)]
    selectors: Selectors,
    #[command(flatten)]
    limits: LimitArgs,
    /// Show what would be sent without sending it
    #[arg(long)]
    dry_run: bool,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    id: String,
    #[arg(long)]
    name: Option<String>,
    /// A new limit
    #[arg(long, value_name = "AMOUNT")]
    limit: Option<f64>,
    /// A new alert percentage
    #[arg(long, value_name = "PERCENT")]
    alert: Option<f64>,
    /// active, or archived (kept but not enforced)
    #[arg(long)]
    status: Option<String>,
    /// Show what would be sent without sending it
    #[arg(long)]
    dry_run: bool,
}

impl Row for UsageLimitPolicy {
    const HEADERS: &'static [&'static str] = &["ID", "NAME", "LIMIT", "APPLIES TO", "STATUS"];
    fn cells(&self) -> Vec<String> {
        vec![
            self.id.clone(),
            self.name.clone(),
            describe_budget(Some(&self.limits)),
            applies_to(self),
            self.status.clone(),
        ]
    }
}

fn applies_to(p: &UsageLimitPolicy) -> String {
    let mut parts: Vec<String> = p
        .conditions
        .iter()
        .map(|c| format!("{}={}", c.key, c.value))
        .collect();
    parts.extend(p.group_by.iter().map(|g| format!("per {}", g.key)));
    if parts.is_empty() {
        "every request".into()
    } else {
        parts.join(", ")
    }
}

impl Fields for UsageLimitPolicy {
    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("id", self.id.clone()),
            ("name", self.name.clone()),
            ("limit", describe_budget(Some(&self.limits))),
            ("applies to", applies_to(self)),
            (
                "owner",
                self.owner
                    .as_ref()
                    .map_or("-".into(), |o| format!("{} {}", o.kind, o.id)),
            ),
            ("status", self.status.clone()),
            ("created_at", self.created_at.clone()),
            ("last_updated_at", self.last_updated_at.clone()),
        ]
    }
}

fn status_rows(list: &[BudgetStatus]) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    for b in list {
        let money = |v: f64| match b.limit_type {
            crate::api::governance::LimitType::Cost => format!("${v:.4}"),
            crate::api::governance::LimitType::Tokens => format!("{v:.0}"),
        };
        if b.entities.is_empty() {
            rows.push(vec![
                b.name.clone(),
                "-".into(),
                money(0.0),
                money(0.0),
                money(b.credit_limit),
                money(b.credit_limit),
                "active".into(),
                b.resets_at.clone().unwrap_or_else(|| "never".into()),
            ]);
        }
        for e in &b.entities {
            rows.push(vec![
                b.name.clone(),
                if e.value_key.is_empty() {
                    "-".into()
                } else {
                    e.value_key.clone()
                },
                money(e.current_usage),
                money(e.reserved),
                money(e.remaining),
                money(e.credit_limit),
                e.status.clone(),
                e.resets_at.clone().unwrap_or_else(|| "never".into()),
            ]);
        }
    }
    rows
}

fn path(id: &str) -> String {
    format!("{PATH}/{id}")
}

pub async fn run(ctx: &Ctx, cmd: BudgetsCommand) -> Result<()> {
    match cmd {
        BudgetsCommand::List => {
            let list: List<UsageLimitPolicy> = ctx.client()?.get(PATH).await?;
            ctx.printer.list(&list.data)
        }
        BudgetsCommand::Get { id } => {
            let p: UsageLimitPolicy = ctx.client()?.get(&path(&id)).await?;
            ctx.printer.one(&p)
        }
        BudgetsCommand::Create(args) => {
            let limits = args.limits.usage_limits().ok_or_else(|| {
                CliError::usage("a budget needs --budget AMOUNT")
                    .hint("e.g. tollgate budgets create --name team --budget 50 --period monthly")
            })?;
            let body = CreateUsageLimitPolicy {
                name: args.name,
                conditions: args.selectors.conditions(),
                group_by: args.selectors.group_by(),
                limits,
            };
            if args.dry_run {
                return ctx.dry_run("POST", PATH, serde_json::to_value(&body).ok());
            }
            let client = ctx.client()?;
            let created: PolicyCreated = client.post(PATH, &body).await?;
            ctx.printer.note(&format!("created budget {}", created.id));
            let p: UsageLimitPolicy = client.get(&path(&created.id)).await?;
            ctx.printer.one(&p)
        }
        BudgetsCommand::Update(args) => {
            let body = UpdateUsageLimitPolicy {
                name: args.name,
                credit_limit: args.limit,
                alert_threshold: args.alert,
                status: args.status,
                ..UpdateUsageLimitPolicy::default()
            };
            if args.dry_run {
                return ctx.dry_run("PUT", &path(&args.id), serde_json::to_value(&body).ok());
            }
            let p: UsageLimitPolicy = ctx.client()?.put(&path(&args.id), &body).await?;
            ctx.printer.one(&p)
        }
        BudgetsCommand::Delete { id, dry_run } => {
            ctx.delete(
                &path(&id),
                &format!("delete the budget {id}"),
                &format!("deleted budget {id}"),
                dry_run,
            )
            .await
        }
        BudgetsCommand::Status { id } => {
            let client = ctx.client()?;
            let list: Vec<BudgetStatus> = match id {
                Some(id) => {
                    let all: List<BudgetStatus> = client.get(&format!("{PATH}/status")).await?;
                    let one: Vec<BudgetStatus> =
                        all.data.into_iter().filter(|b| b.id == id).collect();
                    if one.is_empty() {
                        return Err(CliError::new(
                            crate::error::ExitKind::NotFound,
                            format!("no budget with id {id:?}"),
                        )
                        .hint("list them with `tollgate budgets list`"));
                    }
                    one
                }
                None => {
                    client
                        .get::<List<BudgetStatus>>(&format!("{PATH}/status"))
                        .await?
                        .data
                }
            };
            if ctx.printer.format == crate::output::Format::Table {
                ctx.printer.table(
                    &[
                        "BUDGET",
                        "GROUP",
                        "SPENT",
                        "RESERVED",
                        "REMAINING",
                        "LIMIT",
                        "STATUS",
                        "RESETS AT",
                    ],
                    status_rows(&list),
                )
            } else {
                ctx.printer.document(&list)
            }
        }
        BudgetsCommand::Reset { id, value } => {
            let body = serde_json::json!({ "value_key": value });
            let status: BudgetStatus = ctx
                .client()?
                .post(&format!("{}/reset", path(&id)), &body)
                .await?;
            ctx.printer.note(&format!("reset budget {id}"));
            ctx.printer.table(
                &[
                    "BUDGET",
                    "GROUP",
                    "SPENT",
                    "RESERVED",
                    "REMAINING",
                    "LIMIT",
                    "STATUS",
                    "RESETS AT",
                ],
                status_rows(&[status]),
            )
        }
    }
}
