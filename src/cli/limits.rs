//! Flags that give a key (or another resource) a budget, rate limits and a model allow-list.

use clap::Args;

use super::args::split_list;
use crate::api::governance::{
    LimitType, OwnedLimits, OwnedLimitsChange, PeriodicReset, RateLimit, RateType, RateUnit,
    UsageLimits,
};

#[derive(Debug, Args, Default)]
pub struct LimitArgs {
    /// A budget: USD per period (or tokens, with --budget-type tokens); requests past it get 412
    #[arg(long, value_name = "AMOUNT")]
    budget: Option<f64>,
    /// What the budget counts
    #[arg(long, value_name = "cost|tokens", value_parser = parse_limit_type, requires = "budget")]
    budget_type: Option<LimitType>,
    /// When the budget starts over: monthly, weekly or every N days (e.g. 10d) [default: never]
    #[arg(long, value_name = "PERIOD", value_parser = parse_period, requires = "budget")]
    period: Option<(Option<PeriodicReset>, Option<u32>)>,
    /// Alert (webhook and event) when this percentage of the budget is used
    #[arg(long, value_name = "PERCENT", requires = "budget")]
    alert: Option<f64>,
    /// A request rate limit, N/UNIT with UNIT s, min, h or day, e.g. 60/min (repeatable)
    #[arg(long, value_name = "N/UNIT", value_parser = parse_requests_rate)]
    rate: Vec<RateLimit>,
    /// A token rate limit (input plus output), e.g. 100000/min (repeatable)
    #[arg(long, value_name = "N/UNIT", value_parser = parse_tokens_rate)]
    token_rate: Vec<RateLimit>,
    /// Models it may use: patterns such as '@openai-dev/*' or gpt-4o* (comma-separated, repeatable)
    #[arg(long, value_name = "PATTERNS")]
    models: Vec<String>,
}

/// On update: the same flags replace what is set, and these remove or reset it.
#[derive(Debug, Args, Default)]
pub struct LimitChangeArgs {
    #[command(flatten)]
    set: LimitArgs,
    /// Remove the budget
    #[arg(long, conflicts_with = "budget")]
    no_budget: bool,
    /// Remove the rate limits
    #[arg(long, conflicts_with_all = ["rate", "token_rate"])]
    no_rate_limits: bool,
    /// Allow every model again
    #[arg(long, conflicts_with = "models")]
    all_models: bool,
    /// Start the budget's window over from zero
    #[arg(long)]
    reset_usage: bool,
}

impl LimitChangeArgs {
    pub fn change(&self) -> OwnedLimitsChange {
        OwnedLimitsChange {
            usage_limits: self.usage_limits(),
            rate_limits: self.rate_limits(),
            allowed_models: self.allowed_models(),
            reset_usage: self.reset_usage.then_some(true),
        }
    }

    fn usage_limits(&self) -> Option<Option<UsageLimits>> {
        if self.no_budget {
            Some(None)
        } else {
            self.set.usage_limits().map(Some)
        }
    }

    fn rate_limits(&self) -> Option<Vec<RateLimit>> {
        if self.no_rate_limits {
            Some(Vec::new())
        } else {
            self.set.rate_limits()
        }
    }

    fn allowed_models(&self) -> Option<Option<Vec<String>>> {
        if self.all_models {
            Some(None)
        } else {
            self.set.allowed_models().map(Some)
        }
    }
}

fn parse_limit_type(text: &str) -> Result<LimitType, String> {
    match text {
        "cost" => Ok(LimitType::Cost),
        "tokens" => Ok(LimitType::Tokens),
        _ => Err(format!("{text:?}: use cost or tokens")),
    }
}

type Period = (Option<PeriodicReset>, Option<u32>);

fn parse_period(text: &str) -> Result<Period, String> {
    match text {
        "monthly" => Ok((Some(PeriodicReset::Monthly), None)),
        "weekly" => Ok((Some(PeriodicReset::Weekly), None)),
        _ => text
            .strip_suffix('d')
            .and_then(|n| n.parse::<u32>().ok())
            .filter(|n| (1..=365).contains(n))
            .map(|n| (None, Some(n)))
            .ok_or_else(|| {
                format!(
                    "{text:?}: use monthly, weekly or a number of days such as 10d (1d to 365d)"
                )
            }),
    }
}

fn parse_rate(text: &str, rate_type: RateType) -> Result<RateLimit, String> {
    let (n, unit) = text
        .split_once('/')
        .ok_or_else(|| format!("{text:?} is not N/UNIT such as 60/min"))?;
    let value: u64 = n
        .trim()
        .parse()
        .ok()
        .filter(|v| *v > 0)
        .ok_or_else(|| format!("{text:?}: {n:?} is not a whole number above 0"))?;
    let unit = RateUnit::parse_short(unit.trim())
        .ok_or_else(|| format!("{text:?}: the unit must be s, min, h or day"))?;
    Ok(RateLimit {
        rate_type,
        unit,
        value,
    })
}

fn parse_requests_rate(text: &str) -> Result<RateLimit, String> {
    parse_rate(text, RateType::Requests)
}

fn parse_tokens_rate(text: &str) -> Result<RateLimit, String> {
    parse_rate(text, RateType::Tokens)
}

impl LimitArgs {
    pub fn owned(&self) -> OwnedLimits {
        OwnedLimits {
            usage_limits: self.usage_limits(),
            rate_limits: self.rate_limits(),
            allowed_models: self.allowed_models(),
        }
    }

    pub fn usage_limits(&self) -> Option<UsageLimits> {
        let (periodic_reset, periodic_reset_days) = self.period.unwrap_or_default();
        self.budget.map(|credit_limit| UsageLimits {
            limit_type: self.budget_type.unwrap_or_default(),
            credit_limit,
            alert_threshold: self.alert,
            periodic_reset,
            periodic_reset_days,
        })
    }

    /// The rate limits given, if any flag gave one.
    fn rate_limits(&self) -> Option<Vec<RateLimit>> {
        let all: Vec<RateLimit> = self.rate.iter().chain(&self.token_rate).copied().collect();
        (!all.is_empty()).then_some(all)
    }

    fn allowed_models(&self) -> Option<Vec<String>> {
        let all: Vec<String> = self.models.iter().flat_map(|m| split_list(m)).collect();
        (!all.is_empty()).then_some(all)
    }
}

/// `$50.00 monthly, alert at 80%` for a table.
pub fn describe_budget(limits: Option<&UsageLimits>) -> String {
    let Some(l) = limits else {
        return "none".into();
    };
    let amount = match l.limit_type {
        LimitType::Cost => format!("${:.2}", l.credit_limit),
        LimitType::Tokens => format!("{} tokens", l.credit_limit),
    };
    let period = match (l.periodic_reset, l.periodic_reset_days) {
        (Some(PeriodicReset::Monthly), _) => " monthly".to_string(),
        (Some(PeriodicReset::Weekly), _) => " weekly".to_string(),
        (None, Some(d)) => format!(" every {d} days"),
        (None, None) => String::new(),
    };
    let alert = l
        .alert_threshold
        .map_or(String::new(), |a| format!(", alert at {a}%"));
    format!("{amount}{period}{alert}")
}

/// `60 requests/min, 100000 tokens/min`.
pub fn describe_rates(rates: &[RateLimit]) -> String {
    if rates.is_empty() {
        return "none".into();
    }
    rates
        .iter()
        .map(|r| {
            let what = match r.rate_type {
                RateType::Requests => "requests",
                RateType::Tokens => "tokens",
            };
            let unit = match r.unit {
                RateUnit::Rps => "s",
                RateUnit::Rpm => "min",
                RateUnit::Rph => "h",
                RateUnit::Rpd => "day",
            };
            format!("{} {what}/{unit}", r.value)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_and_periods_parse_with_clear_errors() {
        let r = parse_requests_rate("60/min").unwrap();
        assert_eq!(
            (r.value, r.unit, r.rate_type),
            (60, RateUnit::Rpm, RateType::Requests)
        );
        assert_eq!(parse_tokens_rate("5000/day").unwrap().unit, RateUnit::Rpd);
        assert!(parse_requests_rate("60").unwrap_err().contains("N/UNIT"));
        assert!(parse_requests_rate("0/s").is_err());
        assert!(parse_requests_rate("5/week").unwrap_err().contains("unit"));
        assert_eq!(parse_period("10d"), Ok((None, Some(10))));
        assert_eq!(
            parse_period("monthly"),
            Ok((Some(PeriodicReset::Monthly), None))
        );
        assert!(parse_period("400d").is_err());
    }
}
