//! Budgets (usage limits), rate limits and their policies, Portkey's shapes
//! (portkey-wire.md section 6, "API keys" and "Policies").
//!
//! Every budget and every rate limit is a policy: `conditions` choose the requests it applies
//! to, `group_by` splits it into one counter per value (per user, per model…). A key's,
//! workspace's or integration's own `usage_limits` and `rate_limits` are policies `owner`ed by
//! it, with the condition that names it; they are listed with the others and deleted with
//! their owner.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What a budget counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum LimitType {
    /// US dollars.
    #[default]
    Cost,
    /// Input plus output tokens.
    Tokens,
}

/// A budget's calendar window, in UTC: months start on the 1st, weeks on Monday.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PeriodicReset {
    Monthly,
    Weekly,
}

/// Portkey's `usage_limits`: a budget.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UsageLimits {
    #[serde(rename = "type", default)]
    pub limit_type: LimitType,
    /// USD for `cost`, tokens for `tokens`.
    pub credit_limit: f64,
    /// Percent of `credit_limit` at which an alert is sent, once per window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert_threshold: Option<f64>,
    /// Without it (and without `periodic_reset_days`) the budget never resets by itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub periodic_reset: Option<PeriodicReset>,
    /// A window of N days (1–365) from the budget's creation, instead of `periodic_reset`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub periodic_reset_days: Option<u32>,
}

/// What a rate limit counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RateType {
    #[default]
    Requests,
    /// Input plus output tokens.
    Tokens,
}

/// Per second, minute, hour or day; windows are aligned to the clock (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RateUnit {
    Rps,
    Rpm,
    Rph,
    Rpd,
}

impl RateUnit {
    pub fn seconds(self) -> u64 {
        match self {
            RateUnit::Rps => 1,
            RateUnit::Rpm => 60,
            RateUnit::Rph => 3600,
            RateUnit::Rpd => 86_400,
        }
    }

    /// `s`, `min`, `h` or `d`, as `--rate 60/min` writes it.
    pub fn parse_short(text: &str) -> Option<RateUnit> {
        match text {
            "s" | "sec" | "second" => Some(RateUnit::Rps),
            "m" | "min" | "minute" => Some(RateUnit::Rpm),
            "h" | "hour" => Some(RateUnit::Rph),
            "d" | "day" => Some(RateUnit::Rpd),
            _ => None,
        }
    }
}

/// Portkey's `rate_limits[]` entry.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RateLimit {
    #[serde(rename = "type", default)]
    pub rate_type: RateType,
    pub unit: RateUnit,
    pub value: u64,
}

/// Which requests a policy applies to. Keys: `api_key`, `workspace_id`, `provider` (an
/// integration as `@slug`; `virtual_key` is the same), `model` (`@slug/model` or a bare model
/// id, `*` as a wildcard), `config`, `metadata.<key>`. A value of `*` matches any value that is
/// present. Conditions on different keys must all hold; several on one key match any of them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Condition {
    pub key: String,
    pub value: String,
}

/// One counter per distinct value of these keys (same keys as conditions).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct GroupBy {
    pub key: String,
}

/// The resource a policy belongs to, if any.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Owner {
    /// `api_key`, `workspace` or `integration`.
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
}

pub const OWNER_API_KEY: &str = "api_key";
pub const OWNER_WORKSPACE: &str = "workspace";
pub const OWNER_INTEGRATION: &str = "integration";

/// A usage-limit (budget) policy.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UsageLimitPolicy {
    pub id: String,
    pub name: String,
    pub conditions: Vec<Condition>,
    pub group_by: Vec<GroupBy>,
    #[serde(flatten)]
    pub limits: UsageLimits,
    /// `active` or `archived` (an archived policy is kept but not enforced).
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<Owner>,
    pub created_at: String,
    pub last_updated_at: String,
    pub object: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct CreateUsageLimitPolicy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default)]
    pub conditions: Vec<Condition>,
    #[serde(default)]
    pub group_by: Vec<GroupBy>,
    #[serde(flatten)]
    pub limits: UsageLimits,
}

/// Fields left out are unchanged.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct UpdateUsageLimitPolicy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<Condition>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_by: Option<Vec<GroupBy>>,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub limit_type: Option<LimitType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credit_limit: Option<f64>,
    /// A negative value removes the threshold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert_threshold: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub periodic_reset: Option<PeriodicReset>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub periodic_reset_days: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Resets the spend of one group value (`""` for a policy without `group_by`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset_usage_for_value: Option<String>,
}

/// A rate-limit policy.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RateLimitPolicy {
    pub id: String,
    pub name: String,
    pub conditions: Vec<Condition>,
    pub group_by: Vec<GroupBy>,
    #[serde(flatten)]
    pub limit: RateLimit,
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<Owner>,
    pub created_at: String,
    pub last_updated_at: String,
    pub object: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreateRateLimitPolicy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default)]
    pub conditions: Vec<Condition>,
    #[serde(default)]
    pub group_by: Vec<GroupBy>,
    #[serde(flatten)]
    pub limit: RateLimit,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct UpdateRateLimitPolicy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<Condition>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_by: Option<Vec<GroupBy>>,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub rate_type: Option<RateType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<RateUnit>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

/// `{id}` of a created policy.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PolicyCreated {
    pub id: String,
    pub object: String,
}

/// One counter of a budget: its current window, for one group value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BudgetEntity {
    /// The group value, e.g. `metadata._user=alice`; `""` for a budget without `group_by`.
    pub value_key: String,
    /// Settled spend in the window (Portkey's name).
    pub current_usage: f64,
    /// Held by requests in flight, settled when they finish.
    pub reserved: f64,
    pub remaining: f64,
    pub credit_limit: f64,
    /// `active`, or `exhausted` once the spend reaches the limit.
    pub status: String,
    pub window_start: String,
    /// When the window ends; null for a budget that never resets.
    pub resets_at: Option<String>,
    /// Whether this window's alert has been sent.
    pub alerted: bool,
}

/// A budget with its counters: `GET /v1/policies/usage-limits/{id}/entities` and the CLI's
/// `budgets status`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BudgetStatus {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub limit_type: LimitType,
    pub credit_limit: f64,
    /// When the current window ends; null for a budget that never resets.
    pub resets_at: Option<String>,
    pub entities: Vec<BudgetEntity>,
}

/// An alert or exhaustion of a budget, recorded once per window.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BudgetEvent {
    pub id: String,
    pub policy_id: String,
    /// `alert` or `exhausted`.
    pub kind: String,
    pub value_key: String,
    pub usage: f64,
    pub credit_limit: f64,
    pub window_start: String,
    pub created_at: String,
    /// For alerts: whether the webhook took it (2xx), and its error otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The limits a key or an integration is created with.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct OwnedLimits {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage_limits: Option<UsageLimits>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limits: Option<Vec<RateLimit>>,
    /// Model patterns it may use (`@openai-dev/gpt-4o*`); absent: every model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_models: Option<Vec<String>>,
}

/// Changes to a key's or an integration's limits; fields left out are unchanged.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct OwnedLimitsChange {
    /// Replaces the budget; null removes it.
    #[serde(
        default,
        deserialize_with = "super::double_option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<UsageLimits>)]
    pub usage_limits: Option<Option<UsageLimits>>,
    /// Replaces the rate limits; `[]` removes them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limits: Option<Vec<RateLimit>>,
    /// Replaces the model allow-list; null allows every model again.
    #[serde(
        default,
        deserialize_with = "super::double_option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<Vec<String>>)]
    pub allowed_models: Option<Option<Vec<String>>>,
    /// Starts the budget's window over from zero.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset_usage: Option<bool>,
}
