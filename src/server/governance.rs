//! The control plane's side of governance: checking limits given to the admin API, keeping
//! the governor's rules in step with the policies table, rebuilding its counters from the
//! request log, and delivering budget events (recorded, and posted to the alert webhook).

use std::collections::HashSet;
use std::sync::Arc;

use tokio::sync::mpsc::UnboundedReceiver;

use super::cluster::Topic;
use super::error::{ApiError, ApiResult};
use super::state::AppState;
use crate::api::governance::{
    BudgetEntity, BudgetEvent, BudgetStatus, OwnedLimits, OwnedLimitsChange, Owner, RateLimit,
    UsageLimitPolicy, UsageLimits,
};
use crate::governance::rules::{check_rate_limit, check_usage_limits};
use crate::governance::Event;
use crate::observe::record::{format_ms, now_ms};
use crate::store::{new_id, StoreError, StoreResult};

fn check_owned_limits(usage: Option<&UsageLimits>, rates: Option<&[RateLimit]>) -> ApiResult<()> {
    if let Some(u) = usage {
        check_usage_limits(u).map_err(|e| ApiError::invalid(format!("usage_limits: {e}")))?;
    }
    for (i, r) in rates.unwrap_or_default().iter().enumerate() {
        check_rate_limit(r.value)
            .map_err(|e| ApiError::invalid(format!("rate_limits[{i}]: {e}")))?;
    }
    Ok(())
}

pub fn check_allowed_models(patterns: Option<&[String]>) -> ApiResult<()> {
    match patterns
        .unwrap_or_default()
        .iter()
        .find(|p| p.trim().is_empty() || p.contains(char::is_whitespace))
    {
        Some(p) => Err(ApiError::invalid(format!(
            "allowed_models: {p:?} is not a model pattern such as @openai-dev/gpt-4o* or gpt-4o-mini"
        ))),
        None => Ok(()),
    }
}

pub fn check_new_limits(new: &OwnedLimits) -> ApiResult<()> {
    check_owned_limits(new.usage_limits.as_ref(), new.rate_limits.as_deref())?;
    check_allowed_models(new.allowed_models.as_deref())
}

pub fn check_limits_change(change: &OwnedLimitsChange) -> ApiResult<()> {
    check_owned_limits(
        change.usage_limits.as_ref().and_then(Option::as_ref),
        change.rate_limits.as_deref(),
    )?;
    match &change.allowed_models {
        Some(models) => check_allowed_models(models.as_deref()),
        None => Ok(()),
    }
}

/// Stores the budget and rate limits a resource was created with or changed to (`label`
/// names their policies), puts them in force and applies a `reset_usage`.
pub fn store_limits(
    state: &AppState,
    owner: &Owner,
    label: &str,
    change: &OwnedLimitsChange,
) -> ApiResult<()> {
    if change.usage_limits.is_some() || change.rate_limits.is_some() {
        state.store.set_owned_limits(
            owner,
            label,
            change.usage_limits.as_ref().map(Option::as_ref),
            change.rate_limits.as_deref(),
        )?;
        state.changed(Topic::Policies)?;
    }
    if change.reset_usage == Some(true) {
        state.reset_owned_usage(owner)?;
    }
    Ok(())
}

/// What creating with `new` changes: everything it sets.
pub fn as_change(new: &OwnedLimits) -> OwnedLimitsChange {
    OwnedLimitsChange {
        usage_limits: new.usage_limits.clone().map(Some),
        rate_limits: new.rate_limits.clone(),
        allowed_models: None,
        reset_usage: None,
    }
}

/// A resource's own limits, as its API object shows them.
pub struct ShownLimits {
    pub usage: Option<UsageLimits>,
    pub rates: Vec<RateLimit>,
    /// Its budget is used up in the current window.
    pub exhausted: bool,
}

pub fn with_limits(state: &AppState, owner: &Owner) -> ApiResult<ShownLimits> {
    let owned = state.store.owned_policies(owner)?;
    Ok(ShownLimits {
        usage: owned.iter().find_map(|p| p.usage()).map(|p| p.limits),
        rates: owned
            .iter()
            .filter_map(|p| p.rate())
            .map(|p| p.limit)
            .collect(),
        exhausted: state.governor.exhausted(owner, now_ms()),
    })
}

/// A budget with its counters in their current windows.
pub fn budget_status(state: &AppState, policy: &UsageLimitPolicy) -> BudgetStatus {
    let now = now_ms();
    let limit = policy.limits.credit_limit;
    let resets_at = state
        .governor
        .rules()
        .get(&policy.id)
        .and_then(|r| r.period.window(now).1);
    let entities = state
        .governor
        .counters_of(&policy.id, now)
        .into_iter()
        .map(|(value_key, c)| BudgetEntity {
            value_key,
            current_usage: c.used,
            reserved: c.reserved,
            remaining: (limit - c.used - c.reserved).max(0.0),
            credit_limit: limit,
            status: if c.reached(limit) {
                "exhausted"
            } else {
                "active"
            }
            .into(),
            window_start: format_ms(c.window_start),
            resets_at: resets_at.map(format_ms),
            alerted: c.alerted,
        })
        .collect();
    BudgetStatus {
        id: policy.id.clone(),
        name: policy.name.clone(),
        limit_type: policy.limits.limit_type,
        credit_limit: limit,
        resets_at: resets_at.map(format_ms),
        entities,
    }
}

/// Counters shown per budget in `/metrics`, fullest first, so the label set stays bounded.
const METRIC_ENTITIES: usize = 50;

/// One gauge value with its policy id, policy name and group value labels.
type Sample<'a> = ([(&'a str, &'a str); 3], f64);

/// Prometheus gauges of every budget's limit, use and headroom.
pub fn budget_metrics(state: &AppState) -> String {
    let now = now_ms();
    let rules = state.governor.rules();
    let mut samples: [Vec<Sample>; 4] = Default::default();
    let counters: Vec<_> = rules
        .all()
        .filter(|r| r.kind == crate::governance::rules::Kind::Budget)
        .map(|r| (r, state.governor.counters_of(&r.id, now)))
        .collect();
    for (rule, list) in &counters {
        for (group, c) in list.iter().take(METRIC_ENTITIES) {
            let labels = [
                ("policy_id", &*rule.id),
                ("policy_name", rule.name.as_str()),
                ("value_key", group.as_str()),
            ];
            samples[0].push((labels, rule.limit));
            samples[1].push((labels, c.used));
            samples[2].push((labels, c.reserved));
            samples[3].push((labels, (rule.limit - c.used - c.reserved).max(0.0)));
        }
    }
    let families = [
        (
            "tollgate_budget_limit",
            "A budget's limit (USD or tokens), per group value with use.",
        ),
        (
            "tollgate_budget_used",
            "Settled use in the budget's current window.",
        ),
        ("tollgate_budget_reserved", "Held by requests in flight."),
        (
            "tollgate_budget_remaining",
            "Headroom: limit minus used minus reserved.",
        ),
    ];
    families
        .iter()
        .zip(&samples)
        .map(|((name, help), s)| crate::observe::metrics::gauge_family(name, help, s))
        .collect()
}

impl AppState {
    /// Puts the active policies in force. Rules that are new, or whose definition changed,
    /// get their counters rebuilt from the request log.
    pub fn reload_policies(&self) -> StoreResult<()> {
        let before = self.governor.rules();
        let mut rules = Vec::new();
        for row in self.store.policies(None)? {
            if row.status != "active" {
                continue;
            }
            match row.rule() {
                Ok(rule) => rules.push(rule),
                Err(e) => eprintln!("warning: policy {} is not enforced: {e}", row.id),
            }
        }
        let changed: HashSet<Arc<str>> = rules
            .iter()
            .filter(|r| before.get(&r.id).is_none_or(|old| !old.same_counting(r)))
            .map(|r| r.id.clone())
            .collect();
        self.governor.set_rules(rules);
        if !changed.is_empty() {
            self.rebuild_counters(Some(&changed))?;
        }
        Ok(())
    }

    /// Counts the request log into the counters of `only` (or of every rule).
    pub fn rebuild_counters(&self, only: Option<&HashSet<Arc<str>>>) -> StoreResult<()> {
        let now = now_ms();
        let Some(from) = self.governor.rebuild_from(only, now) else {
            return Ok(());
        };
        // Rules of keys alone (a new key's limits, most often) read only those keys' records.
        let rules = self.governor.rules();
        let owners: Option<Vec<String>> = only.and_then(|ids| {
            ids.iter()
                .map(|id| {
                    let owner = rules.get(id)?.owner.as_ref()?;
                    (owner.kind == crate::api::governance::OWNER_API_KEY).then(|| owner.id.clone())
                })
                .collect()
        });
        let records = self.store.spent_records(from, owners.as_deref())?;
        let resets = self.store.usage_resets()?;
        let alerted = self.store.alerts_sent()?;
        let workspaces = self.keys.workspaces();
        self.governor
            .rebuild(
                only,
                records,
                |key| workspaces.get(key).cloned().flatten(),
                &resets,
                &alerted,
                now,
            )
            .map_err(shared_counters_error)
    }

    /// Starts one group value of a budget over from zero, now and after a restart.
    pub fn reset_usage(&self, policy_id: &str, value_key: &str) -> StoreResult<()> {
        let now = now_ms();
        self.store.add_usage_reset(policy_id, value_key, now)?;
        self.governor
            .reset(policy_id, value_key, now)
            .map_err(shared_counters_error)
    }

    /// Resets every counter of the budget `owner` owns.
    pub fn reset_owned_usage(&self, owner: &Owner) -> StoreResult<()> {
        for p in self.store.owned_policies(owner)? {
            if p.usage().is_some() {
                for (group, _) in self.governor.counters_of(&p.id, now_ms()) {
                    self.reset_usage(&p.id, &group)?;
                }
                self.reset_usage(&p.id, "")?;
            }
        }
        Ok(())
    }
}

fn shared_counters_error(why: String) -> StoreError {
    StoreError::Other(format!(
        "the budget and rate-limit counters shared by the gateway's nodes: {why}"
    ))
}

/// How often a node with shared counters says it is alive and takes the shared values into
/// its own (what its usage endpoints show); the store lets a node miss a few
/// (`store::counters::NODE_TIMEOUT_MS`) before it gives back what the node held.
const SYNC_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// The least time between the starts of two sends of settlements. Under load, each send then
/// carries what many requests settled (one statement per counter for all of them) instead of
/// what the last few did, which cost the gateway a statement's CPU every few requests; after
/// a quiet moment the first settlement still goes at once.
const SEND_GAP: std::time::Duration = std::time::Duration::from_millis(10);

/// With shared counters: sends settlements and refills leases as they come (at most once per
/// [`SEND_GAP`]), and syncs every [`SYNC_EVERY`]. A failure is said once until the database
/// answers again; what failed is tried again.
pub async fn share_counters(state: Arc<AppState>) {
    let governor = &state.governor;
    let mut every = tokio::time::interval(SYNC_EVERY);
    // A long send does not set off syncs one after another to catch up.
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    let mut last_send = tokio::time::Instant::now();
    loop {
        let sync = tokio::select! {
            _ = every.tick() => true,
            _ = governor.unsent_waiting.notified() => false,
        };
        tokio::time::sleep_until(last_send + SEND_GAP).await;
        last_send = tokio::time::Instant::now();
        let now = now_ms();
        let mut done = governor.send_settlements(now);
        // Synced first: a node's leases are trusted only once it has synced, and until then
        // it takes none (`Governor::refill_leases`).
        if sync && done.is_ok() {
            done = governor.sync_shared(now);
        }
        if done.is_ok() {
            done = governor.refill_leases(now);
        }
        match done {
            Err(e) if !failing => {
                failing = true;
                eprintln!(
                    "warning: {} (retrying; {} settlements wait)",
                    shared_counters_error(e),
                    governor.unsent()
                );
            }
            Err(_) => {}
            Ok(()) => failing = false,
        }
        if failing {
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
    }
}

/// Records each budget event and posts it to the alert webhook, if one is set.
pub async fn deliver_events(state: Arc<AppState>, mut events: UnboundedReceiver<Event>) {
    while let Some(e) = events.recv().await {
        let mut event = BudgetEvent {
            id: new_id(),
            policy_id: e.rule_id.to_string(),
            kind: e.kind.into(),
            value_key: e.value_key.clone(),
            usage: e.usage,
            credit_limit: e.limit,
            window_start: format_ms(e.window_start),
            created_at: format_ms(now_ms()),
            delivered: None,
            error: None,
        };
        if let Some(url) = &state.settings.alert_webhook {
            let body = serde_json::json!({
                "type": format!("budget.{}", e.kind),
                "policy_id": &event.policy_id,
                "policy_name": e.rule_name,
                "value_key": e.value_key,
                "usage": e.usage,
                "credit_limit": e.limit,
                // To a millionth of a percent: sums of costs are a hair off their decimals.
                "percent_used": if e.limit > 0.0 {
                    (e.usage / e.limit * 1e8).round() / 1e6
                } else {
                    0.0
                },
                "window_start": &event.window_start,
                "resets_at": e.resets_at.map(format_ms),
            });
            let sent = state
                .http
                .post(url)
                .timeout(std::time::Duration::from_secs(10))
                .json(&body)
                .send()
                .await;
            let outcome = match sent {
                Ok(r) if r.status().is_success() => Ok(()),
                Ok(r) => Err(format!("the webhook answered {}", r.status())),
                Err(e) => Err(format!("the webhook could not be reached: {e}")),
            };
            event.delivered = Some(outcome.is_ok());
            event.error = outcome.err();
        }
        // Off the runtime's threads: a lost database may take seconds to refuse.
        let (s, window_start) = (state.clone(), e.window_start);
        let added =
            tokio::task::spawn_blocking(move || s.store.add_budget_event(&event, window_start))
                .await
                .map_err(|e| e.to_string())
                .and_then(|r| r.map_err(|e| e.to_string()));
        if let Err(err) = added {
            eprintln!("warning: budget event not recorded: {err}");
        }
    }
}
