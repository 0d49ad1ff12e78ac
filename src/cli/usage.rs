//! `tollgate usage`: requests, errors, tokens, cost and latency per model, provider, user, key
//! or metadata value, with a bar chart of each group's share.

use clap::Args;

use super::ctx::Ctx;
use super::logs::filter::{segment, with_query, FilterArgs};
use super::units::{duration, timestamp, tokens, usd};
use crate::api::logs::{UsageGroup, UsageGroups};
use crate::error::Result;
use crate::output::Format;

const BAR_WIDTH: usize = 20;
/// A cell filled to one eighth, two eighths, ... seven eighths.
const EIGHTHS: [char; 7] = ['▏', '▎', '▍', '▌', '▋', '▊', '▉'];
const DEFAULT_SINCE: &str = "7d";

const EXAMPLES: &str = "\
Examples:
  tollgate usage                                       # per model, the last 7 days
  tollgate usage --by user --since 30d
  tollgate usage --by metadata.team --provider openai
  tollgate usage --by key -o json | jq '.data[] | {group, cost}'
  tollgate usage --by time:1d --since 30d --model gpt-4o";

#[derive(Debug, Args)]
#[command(after_help = EXAMPLES)]
pub struct UsageArgs {
    /// What to group by: model, provider, user, key, metadata.KEY, or time:INTERVAL (e.g.
    /// time:1h, one row per hour)
    #[arg(long, default_value = "model", value_parser = GroupBy::parse, value_name = "DIMENSION")]
    by: GroupBy,
    #[command(flatten)]
    filter: FilterArgs,
}

#[derive(Debug, Clone, PartialEq)]
enum GroupBy {
    Model,
    Provider,
    User,
    Key,
    Metadata(String),
    /// Time buckets, e.g. `1h`.
    Time(String),
}

impl GroupBy {
    fn parse(text: &str) -> Result<GroupBy, String> {
        match text {
            "model" => Ok(GroupBy::Model),
            "provider" => Ok(GroupBy::Provider),
            "user" => Ok(GroupBy::User),
            "key" => Ok(GroupBy::Key),
            _ => {
                if let Some(key) = text.strip_prefix("metadata.").filter(|k| !k.is_empty()) {
                    return Ok(GroupBy::Metadata(key.to_string()));
                }
                if let Some(interval) = text.strip_prefix("time:") {
                    crate::api::parse_duration(interval)?;
                    return Ok(GroupBy::Time(interval.to_string()));
                }
                Err(format!(
                    "{text:?} is not model, provider, user, key, metadata.KEY or time:INTERVAL"
                ))
            }
        }
    }

    /// The dimension's part of `/v1/analytics/groups/...`.
    fn path(&self) -> String {
        match self {
            GroupBy::Model => "ai-models".into(),
            GroupBy::Provider => "providers".into(),
            GroupBy::User => "users".into(),
            GroupBy::Key => "api-keys".into(),
            GroupBy::Metadata(key) => format!("metadata/{}", segment(key)),
            GroupBy::Time(interval) => format!("time/{}", segment(interval)),
        }
    }
}

pub async fn run(ctx: &Ctx, args: UsageArgs) -> Result<()> {
    let mut filter = args.filter.to_filter();
    filter.since.get_or_insert_with(|| DEFAULT_SINCE.into());
    let path = format!("/v1/analytics/groups/{}", args.by.path());
    let usage: UsageGroups = ctx.client()?.get(&with_query(&path, &filter)).await?;
    match ctx.printer.format {
        Format::Table => {
            let mut groups = usage.data;
            if matches!(args.by, GroupBy::Time(_)) {
                for g in &mut groups {
                    g.group = g.group.as_deref().map(timestamp);
                }
            }
            let (headers, rows) = table(&groups);
            ctx.printer.table(&headers, rows)
        }
        Format::Ndjson => usage.data.iter().try_for_each(|g| ctx.printer.line(g)),
        Format::Json | Format::Yaml => ctx.printer.document(&usage),
    }
}

/// The table: one row per group, a total when there are several, and a bar column sized by
/// cost, or by requests when nothing has a cost.
fn table(groups: &[UsageGroup]) -> (Vec<&'static str>, Vec<Vec<String>>) {
    let by_cost = groups.iter().any(|g| g.cost > 0.0);
    let measure = |g: &UsageGroup| if by_cost { g.cost } else { g.requests as f64 };
    let max = groups.iter().map(measure).fold(0.0, f64::max);
    let mut rows: Vec<Vec<String>> = groups
        .iter()
        .map(|g| {
            vec![
                g.group.clone().unwrap_or_else(|| "(none)".into()),
                g.requests.to_string(),
                g.errors.to_string(),
                tokens(g.input_tokens, g.output_tokens),
                cost(g.cost, g.cost_unknown, g.requests),
                duration(g.latency_p50_ms),
                duration(g.latency_p99_ms),
                bar(measure(g), max, BAR_WIDTH),
            ]
        })
        .collect();
    if groups.len() > 1 {
        let sum = |f: fn(&UsageGroup) -> u64| groups.iter().map(f).sum::<u64>();
        let requests = sum(|g| g.requests);
        rows.push(vec![
            "total".into(),
            requests.to_string(),
            sum(|g| g.errors).to_string(),
            tokens(sum(|g| g.input_tokens), sum(|g| g.output_tokens)),
            cost(
                groups.iter().map(|g| g.cost).sum(),
                sum(|g| g.cost_unknown),
                requests,
            ),
            String::new(),
            String::new(),
            String::new(),
        ]);
    }
    let share = if by_cost {
        "SHARE OF COST"
    } else {
        "SHARE OF REQUESTS"
    };
    let headers = vec![
        "GROUP", "REQUESTS", "ERRORS", "TOKENS", "COST", "P50", "P99", share,
    ];
    (headers, rows)
}

/// The known cost, and how many requests it leaves out for want of a price.
fn cost(known: f64, unpriced: u64, requests: u64) -> String {
    match unpriced {
        0 => usd(Some(known)),
        n if n == requests => usd(None),
        n => format!("{} ({n} unpriced)", usd(Some(known))),
    }
}

/// `value` out of `max` as a bar of up to `width` cells, to an eighth of a cell; anything
/// above zero shows at least a sliver.
fn bar(value: f64, max: f64, width: usize) -> String {
    if max <= 0.0 || value <= 0.0 {
        return String::new();
    }
    let eighths = ((value / max * (width * 8) as f64).round() as usize).max(1);
    let mut text = "█".repeat(eighths / 8);
    if eighths % 8 > 0 {
        text.push(EIGHTHS[eighths % 8 - 1]);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_are_drawn_to_an_eighth_of_a_cell() {
        assert_eq!(bar(10.0, 10.0, 4), "████");
        assert_eq!(bar(5.0, 10.0, 4), "██");
        assert_eq!(bar(1.0, 8.0, 2), "▎");
        assert_eq!(bar(9.0, 16.0, 2), "█▏");
        assert_eq!(bar(0.001, 10.0, 4), "▏");
        assert_eq!(bar(0.0, 10.0, 4), "");
        assert_eq!(bar(3.0, 0.0, 4), "");
    }

    #[test]
    fn dimensions_map_to_analytics_paths() {
        assert_eq!(GroupBy::parse("model").unwrap().path(), "ai-models");
        assert_eq!(GroupBy::parse("key").unwrap().path(), "api-keys");
        assert_eq!(
            GroupBy::parse("metadata.team name").unwrap().path(),
            "metadata/team%20name"
        );
        assert!(GroupBy::parse("metadata.").is_err());
        assert_eq!(GroupBy::parse("time:1h").unwrap().path(), "time/1h");
        assert!(GroupBy::parse("time:soon").is_err());
        assert!(GroupBy::parse("colour").is_err());
    }

    fn group(name: &str, requests: u64, cost: f64) -> UsageGroup {
        UsageGroup {
            group: Some(name.into()),
            requests,
            errors: 1,
            input_tokens: 10,
            output_tokens: 5,
            cost,
            cost_unknown: 0,
            latency_p50_ms: 120.0,
            latency_p90_ms: 300.0,
            latency_p99_ms: 900.0,
        }
    }

    #[test]
    fn bars_show_requests_when_nothing_has_a_cost_and_a_total_row_sums_the_groups() {
        let (headers, rows) = table(&[group("a", 4, 0.0), group("b", 2, 0.0)]);
        assert_eq!(headers[7], "SHARE OF REQUESTS");
        assert_eq!(rows[0][7], "█".repeat(BAR_WIDTH));
        assert_eq!(rows[1][7], "█".repeat(BAR_WIDTH / 2));
        assert_eq!(rows[2][..5], ["total", "6", "2", "20/10", "$0"]);
        let (headers, rows) = table(&[group("a", 1, 0.5)]);
        assert_eq!(headers[7], "SHARE OF COST");
        assert_eq!(rows.len(), 1);
        assert_eq!(cost(0.5, 2, 3), "$0.5 (2 unpriced)");
        assert_eq!(cost(0.0, 3, 3), "-");
    }
}
