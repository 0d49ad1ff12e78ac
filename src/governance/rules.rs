//! Policies compiled for the hot path: which requests a rule applies to, how it splits into
//! counters, what it counts and over which window.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::window::Period;
use crate::api::governance::{
    Condition, GroupBy, LimitType, Owner, PeriodicReset, RateLimitPolicy, RateType,
    UsageLimitPolicy, UsageLimits,
};

/// What a condition or `group_by` key reads from a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    ApiKey,
    Workspace,
    /// The integration, as `@slug` (or the provider's name for a target without one).
    Provider,
    Model,
    Metadata(String),
}

pub const FIELD_NAMES: &str =
    "api_key, workspace_id, provider (or virtual_key), model, metadata.<key>";

impl Field {
    pub fn parse(key: &str) -> Result<Field, String> {
        match key {
            "api_key" => Ok(Field::ApiKey),
            "workspace_id" => Ok(Field::Workspace),
            "provider" | "virtual_key" => Ok(Field::Provider),
            "model" => Ok(Field::Model),
            _ => match key.strip_prefix("metadata.") {
                Some(k) if !k.is_empty() => Ok(Field::Metadata(k.to_string())),
                _ => Err(format!("unknown key {key:?}; valid keys: {FIELD_NAMES}")),
            },
        }
    }

    fn name(&self) -> String {
        match self {
            Field::ApiKey => "api_key".into(),
            Field::Workspace => "workspace_id".into(),
            Field::Provider => "provider".into(),
            Field::Model => "model".into(),
            Field::Metadata(k) => format!("metadata.{k}"),
        }
    }
}

/// What one upstream call of a request is: the facts rules are matched against.
pub struct Facts<'a> {
    pub api_key: &'a str,
    pub workspace: Option<&'a str>,
    /// The integration's slug, when the target uses one.
    pub integration: Option<&'a str>,
    /// The provider's slug, e.g. `openai`.
    pub provider: &'a str,
    /// The model as sent to the provider.
    pub model: &'a str,
    pub metadata: &'a Map<String, Value>,
}

impl Facts<'_> {
    fn value(&self, field: &Field) -> Option<String> {
        match field {
            Field::ApiKey => Some(self.api_key.to_string()),
            Field::Workspace => self.workspace.map(String::from),
            Field::Provider => Some(match self.integration {
                Some(slug) => format!("@{slug}"),
                None => self.provider.to_string(),
            }),
            Field::Model => Some(self.model.to_string()),
            Field::Metadata(k) => self
                .metadata
                .get(k)
                .and_then(Value::as_str)
                .map(String::from),
        }
    }

    /// `@slug/model`: the form allow-lists and model conditions are written in.
    pub fn qualified_model(&self) -> String {
        match self.integration {
            Some(slug) => format!("@{slug}/{}", self.model),
            None => format!("{}/{}", self.provider, self.model),
        }
    }

    /// Whether `pattern` names this request's model: a pattern starting with `@` is matched
    /// against `@slug/model`, any other against the bare model id; `*` matches any run of
    /// characters.
    pub fn model_matches(&self, pattern: &str) -> bool {
        match pattern.strip_prefix('@') {
            // `@slug/model` against the pattern's two halves, so nothing is allocated.
            Some(rest) => match (self.integration, rest.split_once('/')) {
                (Some(slug), Some((slug_pattern, model_pattern))) => {
                    glob(slug_pattern, slug) && glob(model_pattern, self.model)
                }
                _ => false,
            },
            None => glob(pattern, self.model),
        }
    }

    fn matches(&self, field: &Field, pattern: &str) -> bool {
        match field {
            Field::Model => self.model_matches(pattern),
            Field::Provider => {
                let wanted = pattern.strip_prefix('@').unwrap_or(pattern);
                let have = self.integration.unwrap_or(self.provider);
                glob(wanted, have)
            }
            _ => self.value(field).is_some_and(|v| glob(pattern, &v)),
        }
    }
}

/// `*` matches any run of characters (including none); everything else literally.
pub fn glob(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// What a rule counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    Cost,
    Tokens,
    Requests,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Refused with 412.
    Budget,
    /// Refused with 429 and `Retry-After`.
    Rate,
}

#[derive(Debug)]
pub struct Rule {
    pub id: Arc<str>,
    pub name: String,
    pub kind: Kind,
    pub metric: Metric,
    pub limit: f64,
    pub period: Period,
    /// A fraction of `limit` (0.8 for 80 %).
    pub alert_at: Option<f64>,
    /// Per field, the patterns of which one must match.
    pub conditions: Vec<(Field, Vec<String>)>,
    pub group_by: Vec<Field>,
    pub owner: Option<Owner>,
    /// A fingerprint of what the rule counts and over which windows: counters shared by
    /// several nodes are keyed by it (see [`Rule::same_counting`]).
    pub counting: Arc<str>,
}

fn parse_conditions(conditions: &[Condition]) -> Result<Vec<(Field, Vec<String>)>, String> {
    let mut out: Vec<(Field, Vec<String>)> = Vec::new();
    for c in conditions {
        let field = Field::parse(&c.key).map_err(|e| format!("conditions: {e}"))?;
        if c.value.is_empty() {
            return Err(format!(
                "conditions: {} has an empty value; use \"*\" for any",
                c.key
            ));
        }
        match out.iter_mut().find(|(f, _)| *f == field) {
            Some((_, values)) => values.push(c.value.clone()),
            None => out.push((field, vec![c.value.clone()])),
        }
    }
    Ok(out)
}

fn parse_group_by(group_by: &[GroupBy]) -> Result<Vec<Field>, String> {
    group_by
        .iter()
        .map(|g| Field::parse(&g.key).map_err(|e| format!("group_by: {e}")))
        .collect()
}

/// Checks a budget's numbers; the message names the field.
pub fn check_usage_limits(l: &UsageLimits) -> Result<(), String> {
    if !(l.credit_limit.is_finite() && l.credit_limit > 0.0) {
        return Err("credit_limit must be a number above 0".into());
    }
    if let Some(t) = l.alert_threshold {
        if !(t > 0.0 && t <= 100.0) {
            return Err("alert_threshold is a percentage: above 0 and at most 100".into());
        }
    }
    match (l.periodic_reset, l.periodic_reset_days) {
        (Some(_), Some(_)) => Err("give periodic_reset or periodic_reset_days, not both".into()),
        (_, Some(d)) if !(1..=365).contains(&d) => {
            Err("periodic_reset_days must be from 1 to 365".into())
        }
        _ => Ok(()),
    }
}

pub fn check_rate_limit(value: u64) -> Result<(), String> {
    if value == 0 {
        return Err("value must be at least 1".into());
    }
    Ok(())
}

/// Checks a policy's conditions and `group_by`.
pub fn check_selectors(conditions: &[Condition], group_by: &[GroupBy]) -> Result<(), String> {
    parse_conditions(conditions)?;
    parse_group_by(group_by)?;
    Ok(())
}

impl Rule {
    pub fn budget(p: &UsageLimitPolicy, created_ms: i64) -> Result<Rule, String> {
        let l = &p.limits;
        let period = match (l.periodic_reset, l.periodic_reset_days) {
            (Some(PeriodicReset::Monthly), _) => Period::Monthly,
            (Some(PeriodicReset::Weekly), _) => Period::Weekly,
            (None, Some(days)) => Period::Days {
                days,
                anchor_ms: created_ms,
            },
            (None, None) => Period::Forever,
        };
        Ok(Rule {
            id: p.id.as_str().into(),
            name: p.name.clone(),
            kind: Kind::Budget,
            metric: match l.limit_type {
                LimitType::Cost => Metric::Cost,
                LimitType::Tokens => Metric::Tokens,
            },
            limit: l.credit_limit,
            period,
            alert_at: l.alert_threshold.map(|t| t / 100.0),
            conditions: parse_conditions(&p.conditions)?,
            group_by: parse_group_by(&p.group_by)?,
            owner: p.owner.clone(),
            counting: Arc::from(""),
        }
        .fingerprinted())
    }

    pub fn rate(p: &RateLimitPolicy) -> Result<Rule, String> {
        Ok(Rule {
            id: p.id.as_str().into(),
            name: p.name.clone(),
            kind: Kind::Rate,
            metric: match p.limit.rate_type {
                RateType::Requests => Metric::Requests,
                RateType::Tokens => Metric::Tokens,
            },
            limit: p.limit.value as f64,
            period: Period::Every {
                ms: p.limit.unit.seconds() as i64 * 1000,
            },
            alert_at: None,
            conditions: parse_conditions(&p.conditions)?,
            group_by: parse_group_by(&p.group_by)?,
            owner: p.owner.clone(),
            counting: Arc::from(""),
        }
        .fingerprinted())
    }

    /// The rule with its [`Rule::counting`] fingerprint: FNV-1a of what it counts, so every
    /// node of a version computes the same one.
    fn fingerprinted(mut self) -> Rule {
        let text = format!(
            "{:?}|{:?}|{:?}|{:?}",
            self.metric, self.period, self.conditions, self.group_by
        );
        let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        self.counting = format!("{hash:016x}").into();
        self
    }

    /// Whether `other` counts the same requests into the same windows (so its counters stay
    /// valid when it replaces this rule).
    pub fn same_counting(&self, other: &Rule) -> bool {
        self.counting == other.counting
    }

    pub fn applies(&self, facts: &Facts) -> bool {
        self.conditions
            .iter()
            .all(|(field, patterns)| patterns.iter().any(|p| facts.matches(field, p)))
    }

    /// The counter a request falls in: `key=value` per `group_by` key, joined by `,`; a key
    /// the request lacks groups it with the others that lack it.
    pub fn group(&self, facts: &Facts) -> String {
        let mut out = String::new();
        for (i, field) in self.group_by.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&field.name());
            out.push('=');
            if let Some(v) = facts.value(field) {
                out.push_str(&v);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn facts(metadata: &Map<String, Value>) -> Facts<'_> {
        Facts {
            api_key: "key-1",
            workspace: Some("ws-1"),
            integration: Some("openai-dev"),
            provider: "openai",
            model: "gpt-4o-mini",
            metadata,
        }
    }

    #[test]
    fn globs_match_runs_of_characters() {
        assert!(glob("gpt-4o*", "gpt-4o-mini"));
        assert!(glob("gpt-4o*", "gpt-4o"));
        assert!(!glob("gpt-4o*", "gpt-4"));
        assert!(glob("*", ""));
        assert!(glob(
            "@anthropic-prod/*",
            "@anthropic-prod/claude-3-5-haiku"
        ));
        assert!(!glob("@anthropic-prod/*", "@anthropic-dev/claude"));
        assert!(glob("a*b*c", "aXXbYYc"));
        assert!(!glob("a*b*c", "aXXbYY"));
        assert!(!glob("ab*ba", "aba"), "the head and tail may not overlap");
        assert!(glob("exact", "exact") && !glob("exact", "exactly"));
    }

    #[test]
    fn model_patterns_with_a_slug_match_the_qualified_name() {
        let m = Map::new();
        let f = facts(&m);
        assert!(f.model_matches("@openai-dev/gpt-4o*"));
        assert!(!f.model_matches("@openai-prod/gpt-4o*"));
        assert!(f.model_matches("gpt-4o-*"));
        assert!(!f.model_matches("claude-*"));
    }

    #[test]
    fn conditions_and_across_keys_or_within_a_key() {
        let p: UsageLimitPolicy = serde_json::from_value(json!({
            "id": "p1", "name": "n", "status": "active", "created_at": "", "last_updated_at": "",
            "object": "x", "type": "cost", "credit_limit": 5.0,
            "conditions": [
                {"key": "provider", "value": "@openai-dev"},
                {"key": "metadata.team", "value": "search"},
                {"key": "metadata.team", "value": "ads"}
            ],
            "group_by": [{"key": "metadata._user"}, {"key": "model"}]
        }))
        .unwrap();
        let rule = Rule::budget(&p, 0).unwrap();
        let mut m = Map::new();
        m.insert("team".into(), json!("ads"));
        m.insert("_user".into(), json!("alice"));
        assert!(rule.applies(&facts(&m)));
        assert_eq!(
            rule.group(&facts(&m)),
            "metadata._user=alice,model=gpt-4o-mini"
        );
        m.insert("team".into(), json!("infra"));
        assert!(!rule.applies(&facts(&m)));
        m.remove("team");
        assert!(!rule.applies(&facts(&m)), "an absent key matches no value");
    }

    #[test]
    fn bad_selectors_and_limits_are_named() {
        let bad = [Condition {
            key: "colour".into(),
            value: "x".into(),
        }];
        assert!(check_selectors(&bad, &[]).unwrap_err().contains("colour"));
        let limits = UsageLimits {
            credit_limit: 5.0,
            periodic_reset: Some(PeriodicReset::Monthly),
            periodic_reset_days: Some(3),
            ..UsageLimits::default()
        };
        assert!(check_usage_limits(&limits)
            .unwrap_err()
            .contains("not both"));
        let limits = UsageLimits {
            credit_limit: 0.0,
            ..UsageLimits::default()
        };
        assert!(check_usage_limits(&limits).is_err());
    }
}
