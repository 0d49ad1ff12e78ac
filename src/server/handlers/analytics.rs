//! Usage analytics: requests, errors, tokens, cost and latency percentiles per group.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::Json;

use super::logs::{filter, read};
use crate::api::error::ErrorBody;
use crate::api::logs::{UsageGroups, GROUP_DIMENSIONS};
use crate::api::scopes;
use crate::server::auth::Caller;
use crate::server::error::{ApiError, ApiResult};
use crate::server::state::AppState;
use crate::store::logs::GroupBy;

type S = State<Arc<AppState>>;

async fn groups(
    state: Arc<AppState>,
    dimension: String,
    by: GroupBy,
    query: Option<String>,
) -> ApiResult<Json<UsageGroups>> {
    let f = filter(query.as_deref())?;
    let (since, until) = (f.since.clone(), f.until.clone());
    let over_time = matches!(by, GroupBy::Time(_));
    let mut data = read(&state, move |s| s.usage_groups(&by, &f)).await?;
    // Time buckets stay in time order; other groups come largest first.
    if !over_time {
        data.sort_by(|a, b| b.cost.total_cmp(&a.cost).then(b.requests.cmp(&a.requests)));
    }
    Ok(Json(UsageGroups {
        object: "list".into(),
        group_by: dimension,
        since,
        until,
        data,
    }))
}

#[utoipa::path(get, path = "/v1/analytics/groups/{dimension}", tag = "analytics",
    description = "Totals per model (ai-models), provider (providers), user (users) or key (api-keys), over the records matching the filters of GET /v1/logs (e.g. since=7d).",
    params(("dimension" = String, Path, description = "ai-models, providers, users or api-keys")),
    responses((status = 200, body = UsageGroups), (status = 400, body = ErrorBody)))]
pub async fn by_dimension(
    State(state): S,
    caller: Caller,
    Path(dimension): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<UsageGroups>> {
    caller.require(scopes::ANALYTICS_VIEW)?;
    let by = match dimension.as_str() {
        "ai-models" => GroupBy::Model,
        "providers" => GroupBy::Provider,
        "users" => GroupBy::User,
        "api-keys" => GroupBy::ApiKey,
        _ => {
            return Err(ApiError::invalid(format!(
                "cannot group by {dimension:?}; use one of {}, metadata/KEY or time/INTERVAL",
                GROUP_DIMENSIONS.join(", ")
            )))
        }
    };
    groups(state, dimension, by, q).await
}

#[utoipa::path(get, path = "/v1/analytics/groups/metadata/{key}", tag = "analytics",
    description = "Totals per value of one metadata key.",
    responses((status = 200, body = UsageGroups), (status = 400, body = ErrorBody)))]
pub async fn by_metadata(
    State(state): S,
    caller: Caller,
    Path(key): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<UsageGroups>> {
    caller.require(scopes::ANALYTICS_VIEW)?;
    groups(state, format!("metadata/{key}"), GroupBy::Metadata(key), q).await
}

/// Buckets larger than this would make a series of one point; smaller ones, a huge series.
const INTERVALS: std::ops::RangeInclusive<u64> = 60..=31 * 86_400;

#[utoipa::path(get, path = "/v1/analytics/groups/time/{interval}", tag = "analytics",
    description = "Totals per time bucket (e.g. 1h or 1d; from 1m to 31d), oldest first; each group is the bucket's start.",
    responses((status = 200, body = UsageGroups), (status = 400, body = ErrorBody)))]
pub async fn by_time(
    State(state): S,
    caller: Caller,
    Path(interval): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<UsageGroups>> {
    caller.require(scopes::ANALYTICS_VIEW)?;
    let secs = crate::api::parse_duration(&interval)
        .ok()
        .filter(|s| INTERVALS.contains(s))
        .ok_or_else(|| {
            ApiError::invalid(format!(
                "interval {interval:?} must be a duration from 1m to 31d, e.g. 15m, 1h, 1d"
            ))
        })?;
    let by = GroupBy::Time(secs as i64 * 1000);
    groups(state, format!("time/{interval}"), by, q).await
}
