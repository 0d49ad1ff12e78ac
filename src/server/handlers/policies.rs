//! `/v1/policies/usage-limits` (budgets) and `/v1/policies/rate-limits`, Portkey's paths, plus
//! each budget's counters, events and reset.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::Json;
use serde::Deserialize;
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::{Deleted, DELETED};
use crate::api::error::ErrorBody;
use crate::api::governance::{
    BudgetEntity, BudgetEvent, BudgetStatus, Condition, CreateRateLimitPolicy,
    CreateUsageLimitPolicy, GroupBy, PolicyCreated, RateLimitPolicy, UpdateRateLimitPolicy,
    UpdateUsageLimitPolicy, UsageLimitPolicy, UsageLimits,
};
use crate::api::List;
use crate::governance::rules::{check_rate_limit, check_selectors, check_usage_limits};
use crate::server::audit::Change;
use crate::server::auth::Caller;
use crate::server::cluster::Topic;
use crate::server::error::{ApiError, ApiResult};
use crate::server::extract::{Body, Query};
use crate::server::governance::budget_status;
use crate::server::state::AppState;
use crate::store::governance::{PolicyFields, PolicyRow, RATE, USAGE};

type S = State<Arc<AppState>>;

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PolicyQuery {
    /// `active` or `archived`.
    #[serde(default)]
    pub status: Option<String>,
}

/// Which group values to reset; all of them when absent.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct ResetUsage {
    #[serde(default)]
    pub value_key: Option<String>,
}

fn invalid(e: String) -> ApiError {
    ApiError::invalid(e)
}

fn check_status(status: &str) -> ApiResult<()> {
    match status {
        "active" | "archived" => Ok(()),
        other => Err(ApiError::invalid(format!(
            "status {other:?}: use active or archived"
        ))),
    }
}

/// A policy of `kind`, or 404.
fn policy_of(state: &AppState, id: &str, kind: &str) -> ApiResult<PolicyRow> {
    let row = state.store.policy(id)?;
    if row.kind != kind {
        return Err(ApiError::not_found(format!(
            "no {} policy with id {id:?}",
            kind.replace('_', "-")
        )));
    }
    Ok(row)
}

/// The policies of `kind` as `read` shows them, with the status asked for.
fn listed<T>(
    state: &AppState,
    kind: &str,
    q: &PolicyQuery,
    read: fn(&PolicyRow) -> Option<T>,
    status: fn(&T) -> &String,
) -> ApiResult<Json<List<T>>> {
    let data: Vec<T> = state
        .store
        .policies(Some(kind))?
        .iter()
        .filter_map(read)
        .filter(|p| q.status.as_ref().is_none_or(|s| status(p) == s))
        .collect();
    Ok(Json(List::new(data.len() as u64, data)))
}

fn deleted(
    state: &AppState,
    id: &str,
    before: &impl serde::Serialize,
) -> ApiResult<(Change, Json<Deleted>)> {
    state.store.delete_policy(id)?;
    state.changed(Topic::Policies)?;
    Ok((Change::deleted(id, before), Json(DELETED)))
}

/// Conditions may name a workspace by slug; they are kept with its id, which is what a request
/// carries.
fn with_workspace_ids(
    state: &AppState,
    mut conditions: Vec<Condition>,
) -> ApiResult<Vec<Condition>> {
    for c in conditions
        .iter_mut()
        .filter(|c| c.key == "workspace_id" && !c.value.contains('*'))
    {
        let workspace = state.store.workspace(&c.value).map_err(|_| {
            ApiError::invalid(format!(
                "conditions: no workspace {:?}: give a workspace's id or slug",
                c.value
            ))
        })?;
        c.value = workspace.id;
    }
    Ok(conditions)
}

/// Stores a new policy of `kind` whose conditions and `group_by` were checked, and puts it in
/// force; returns its id.
fn create_policy(
    state: &AppState,
    kind: &str,
    name: Option<&String>,
    conditions: Vec<Condition>,
    group_by: &[GroupBy],
    spec: Value,
) -> ApiResult<String> {
    let conditions = with_workspace_ids(state, conditions)?;
    let name = default_name(kind, name)?;
    let id = state.store.create_policy(
        kind,
        &PolicyFields {
            name: &name,
            conditions: &conditions,
            group_by,
            spec,
            status: "active",
        },
        None,
    )?;
    state.changed(Topic::Policies)?;
    Ok(id)
}

/// What an update may change besides the spec; fields left out keep the current values.
struct Selection {
    name: Option<String>,
    conditions: Option<Vec<Condition>>,
    group_by: Option<Vec<GroupBy>>,
    status: Option<String>,
}

/// Stores a policy's checked `spec` with the changed selection over the current one, and puts
/// it in force.
fn update_policy(
    state: &AppState,
    kind: &str,
    current: &PolicyRow,
    change: Selection,
    spec: Value,
) -> ApiResult<()> {
    let conditions = with_workspace_ids(
        state,
        change.conditions.unwrap_or(current.conditions.clone()),
    )?;
    let group_by = change.group_by.unwrap_or(current.group_by.clone());
    check_selectors(&conditions, &group_by).map_err(invalid)?;
    let status = change.status.unwrap_or(current.status.clone());
    check_status(&status)?;
    let name = match &change.name {
        Some(n) => default_name(kind, Some(n))?,
        None => current.name.clone(),
    };
    state.store.update_policy(
        &current.id,
        &PolicyFields {
            name: &name,
            conditions: &conditions,
            group_by: &group_by,
            spec,
            status: &status,
        },
    )?;
    state.changed(Topic::Policies)?;
    Ok(())
}

fn default_name(kind: &str, given: Option<&String>) -> ApiResult<String> {
    match given {
        Some(n) if n.trim().is_empty() => Err(ApiError::invalid("name must not be empty")),
        Some(n) => Ok(n.trim().to_string()),
        None => Ok(format!(
            "{} {}",
            kind.replace('_', " "),
            &crate::store::random_suffix(6)
        )),
    }
}

fn budget_policy(row: &PolicyRow) -> ApiResult<UsageLimitPolicy> {
    row.usage()
        .ok_or_else(|| ApiError::internal(format!("policy {} is not a budget", row.id)))
}

#[utoipa::path(post, path = "/v1/policies/usage-limits", tag = "policies", request_body = CreateUsageLimitPolicy,
    responses((status = 200, body = PolicyCreated), (status = 400, body = ErrorBody)))]
pub async fn create_budget(
    State(state): S,
    caller: Caller,
    Body(new): Body<CreateUsageLimitPolicy>,
) -> ApiResult<(Change, Json<PolicyCreated>)> {
    caller.require("policies.create")?;
    check_selectors(&new.conditions, &new.group_by).map_err(invalid)?;
    check_usage_limits(&new.limits).map_err(invalid)?;
    let spec = serde_json::to_value(&new.limits).expect("data");
    let id = create_policy(
        &state,
        USAGE,
        new.name.as_ref(),
        new.conditions,
        &new.group_by,
        spec,
    )?;
    let after = budget_policy(&state.store.policy(&id)?)?;
    Ok((
        Change::created(&id, &after),
        Json(PolicyCreated {
            id,
            object: "usage-limit-policy".into(),
        }),
    ))
}

#[utoipa::path(get, path = "/v1/policies/usage-limits", tag = "policies", params(PolicyQuery),
    responses((status = 200, body = List<UsageLimitPolicy>)))]
pub async fn list_budgets(
    State(state): S,
    caller: Caller,
    Query(q): Query<PolicyQuery>,
) -> ApiResult<Json<List<UsageLimitPolicy>>> {
    caller.require("policies.list")?;
    listed(&state, USAGE, &q, PolicyRow::usage, |p| &p.status)
}

#[utoipa::path(get, path = "/v1/policies/usage-limits/{id}", tag = "policies",
    responses((status = 200, body = UsageLimitPolicy), (status = 404, body = ErrorBody)))]
pub async fn get_budget(
    State(state): S,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<UsageLimitPolicy>> {
    caller.require("policies.read")?;
    budget_policy(&policy_of(&state, &id, USAGE)?).map(Json)
}

#[utoipa::path(put, path = "/v1/policies/usage-limits/{id}", tag = "policies", request_body = UpdateUsageLimitPolicy,
    responses((status = 200, body = UsageLimitPolicy), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn update_budget(
    State(state): S,
    caller: Caller,
    Path(id): Path<String>,
    Body(change): Body<UpdateUsageLimitPolicy>,
) -> ApiResult<(Change, Json<UsageLimitPolicy>)> {
    caller.require("policies.update")?;
    let row = policy_of(&state, &id, USAGE)?;
    let before = budget_policy(&row)?;
    let mut limits: UsageLimits = before.limits.clone();
    if let Some(t) = change.limit_type {
        limits.limit_type = t;
    }
    if let Some(c) = change.credit_limit {
        limits.credit_limit = c;
    }
    if let Some(a) = change.alert_threshold {
        limits.alert_threshold = (a >= 0.0).then_some(a);
    }
    if change.periodic_reset.is_some() {
        (limits.periodic_reset, limits.periodic_reset_days) = (change.periodic_reset, None);
    }
    if change.periodic_reset_days.is_some() {
        (limits.periodic_reset, limits.periodic_reset_days) = (None, change.periodic_reset_days);
    }
    check_usage_limits(&limits).map_err(invalid)?;
    let selection = Selection {
        name: change.name,
        conditions: change.conditions,
        group_by: change.group_by,
        status: change.status,
    };
    let spec = serde_json::to_value(&limits).expect("data");
    update_policy(&state, USAGE, &row, selection, spec)?;
    if let Some(value) = &change.reset_usage_for_value {
        state.reset_usage(&id, value)?;
    }
    let after = budget_policy(&state.store.policy(&id)?)?;
    Ok((Change::updated(&id, &before, &after), Json(after)))
}

#[utoipa::path(delete, path = "/v1/policies/usage-limits/{id}", tag = "policies",
    responses((status = 200, body = Deleted), (status = 404, body = ErrorBody)))]
pub async fn delete_budget(
    State(state): S,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<(Change, Json<Deleted>)> {
    caller.require("policies.delete")?;
    let before = budget_policy(&policy_of(&state, &id, USAGE)?)?;
    deleted(&state, &id, &before)
}

/// Every budget with its counters in their current windows.
#[utoipa::path(get, path = "/v1/policies/usage-limits/status", tag = "policies",
    responses((status = 200, body = List<BudgetStatus>)))]
pub async fn budgets_status(
    State(state): S,
    caller: Caller,
) -> ApiResult<Json<List<BudgetStatus>>> {
    caller.require("policies.read")?;
    let data: Vec<BudgetStatus> = state
        .store
        .policies(Some(USAGE))?
        .iter()
        .filter_map(PolicyRow::usage)
        .map(|p| budget_status(&state, &p))
        .collect();
    Ok(Json(List::new(data.len() as u64, data)))
}

/// One budget's counters: spend, reserved and remaining per group value.
#[utoipa::path(get, path = "/v1/policies/usage-limits/{id}/entities", tag = "policies",
    responses((status = 200, body = List<BudgetEntity>), (status = 404, body = ErrorBody)))]
pub async fn entities(
    State(state): S,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<List<BudgetEntity>>> {
    caller.require("policies.read")?;
    let policy = budget_policy(&policy_of(&state, &id, USAGE)?)?;
    let status = budget_status(&state, &policy);
    Ok(Json(List::new(
        status.entities.len() as u64,
        status.entities,
    )))
}

#[utoipa::path(get, path = "/v1/policies/usage-limits/{id}/events", tag = "policies",
    responses((status = 200, body = List<BudgetEvent>), (status = 404, body = ErrorBody)))]
pub async fn events(
    State(state): S,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<List<BudgetEvent>>> {
    caller.require("policies.read")?;
    policy_of(&state, &id, USAGE)?;
    let data = state.store.budget_events(Some(&id))?;
    Ok(Json(List::new(data.len() as u64, data)))
}

/// Starts a budget's current window over from zero: one group value, or all of them.
#[utoipa::path(post, path = "/v1/policies/usage-limits/{id}/reset", tag = "policies", request_body = ResetUsage,
    responses((status = 200, body = BudgetStatus), (status = 404, body = ErrorBody)))]
pub async fn reset(
    State(state): S,
    caller: Caller,
    Path(id): Path<String>,
    Body(which): Body<ResetUsage>,
) -> ApiResult<(Change, Json<BudgetStatus>)> {
    caller.require("policies.update")?;
    let policy = budget_policy(&policy_of(&state, &id, USAGE)?)?;
    let before = budget_status(&state, &policy);
    let values: Vec<String> = match which.value_key {
        Some(v) => vec![v],
        None => state
            .governor
            .counters_of(&id, crate::observe::record::now_ms())
            .into_iter()
            .map(|(group, _)| group)
            .collect(),
    };
    for v in &values {
        state.reset_usage(&id, v)?;
    }
    let after = budget_status(&state, &policy);
    Ok((Change::updated(&id, &before, &after), Json(after)))
}

fn rate_policy(row: &PolicyRow) -> ApiResult<RateLimitPolicy> {
    row.rate()
        .ok_or_else(|| ApiError::internal(format!("policy {} is not a rate limit", row.id)))
}

#[utoipa::path(post, path = "/v1/policies/rate-limits", tag = "policies", request_body = CreateRateLimitPolicy,
    responses((status = 200, body = PolicyCreated), (status = 400, body = ErrorBody)))]
pub async fn create_rate(
    State(state): S,
    caller: Caller,
    Body(new): Body<CreateRateLimitPolicy>,
) -> ApiResult<(Change, Json<PolicyCreated>)> {
    caller.require("policies.create")?;
    check_selectors(&new.conditions, &new.group_by).map_err(invalid)?;
    check_rate_limit(new.limit.value).map_err(invalid)?;
    let spec = serde_json::to_value(new.limit).expect("data");
    let id = create_policy(
        &state,
        RATE,
        new.name.as_ref(),
        new.conditions,
        &new.group_by,
        spec,
    )?;
    let after = rate_policy(&state.store.policy(&id)?)?;
    Ok((
        Change::created(&id, &after),
        Json(PolicyCreated {
            id,
            object: "rate-limit-policy".into(),
        }),
    ))
}

#[utoipa::path(get, path = "/v1/policies/rate-limits", tag = "policies", params(PolicyQuery),
    responses((status = 200, body = List<RateLimitPolicy>)))]
pub async fn list_rates(
    State(state): S,
    caller: Caller,
    Query(q): Query<PolicyQuery>,
) -> ApiResult<Json<List<RateLimitPolicy>>> {
    caller.require("policies.list")?;
    listed(&state, RATE, &q, PolicyRow::rate, |p| &p.status)
}

#[utoipa::path(get, path = "/v1/policies/rate-limits/{id}", tag = "policies",
    responses((status = 200, body = RateLimitPolicy), (status = 404, body = ErrorBody)))]
pub async fn get_rate(
    State(state): S,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<RateLimitPolicy>> {
    caller.require("policies.read")?;
    rate_policy(&policy_of(&state, &id, RATE)?).map(Json)
}

#[utoipa::path(put, path = "/v1/policies/rate-limits/{id}", tag = "policies", request_body = UpdateRateLimitPolicy,
    responses((status = 200, body = RateLimitPolicy), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn update_rate(
    State(state): S,
    caller: Caller,
    Path(id): Path<String>,
    Body(change): Body<UpdateRateLimitPolicy>,
) -> ApiResult<(Change, Json<RateLimitPolicy>)> {
    caller.require("policies.update")?;
    let row = policy_of(&state, &id, RATE)?;
    let before = rate_policy(&row)?;
    let mut limit = before.limit;
    if let Some(t) = change.rate_type {
        limit.rate_type = t;
    }
    if let Some(u) = change.unit {
        limit.unit = u;
    }
    if let Some(v) = change.value {
        limit.value = v;
    }
    check_rate_limit(limit.value).map_err(invalid)?;
    let selection = Selection {
        name: change.name,
        conditions: change.conditions,
        group_by: change.group_by,
        status: change.status,
    };
    let spec = serde_json::to_value(limit).expect("data");
    update_policy(&state, RATE, &row, selection, spec)?;
    let after = rate_policy(&state.store.policy(&id)?)?;
    Ok((Change::updated(&id, &before, &after), Json(after)))
}

#[utoipa::path(delete, path = "/v1/policies/rate-limits/{id}", tag = "policies",
    responses((status = 200, body = Deleted), (status = 404, body = ErrorBody)))]
pub async fn delete_rate(
    State(state): S,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<(Change, Json<Deleted>)> {
    caller.require("policies.delete")?;
    let before = rate_policy(&policy_of(&state, &id, RATE)?)?;
    deleted(&state, &id, &before)
}
