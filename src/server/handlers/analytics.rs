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
    query: Option<String>,
) -> ApiResult<Json<UsageGroups>> {
    let f = filter(query.as_deref())?;
    let (since, until) = (f.since.clone(), f.until.clone());
    let key = dimension.clone();
    let mut data = read(&state, move |s| {
        let by = match key.as_str() {
            "ai-models" => GroupBy::Model,
            "providers" => GroupBy::Provider,
            "users" => GroupBy::User,
            "api-keys" => GroupBy::ApiKey,
            other => GroupBy::Metadata(other.strip_prefix("metadata/").unwrap_or(other)),
        };
        s.usage_groups(by, &f)
    })
    .await?;
    data.sort_by(|a, b| b.cost.total_cmp(&a.cost).then(b.requests.cmp(&a.requests)));
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
    if !GROUP_DIMENSIONS.contains(&dimension.as_str()) {
        return Err(ApiError::invalid(format!(
            "cannot group by {dimension:?}; use one of {} or metadata/KEY",
            GROUP_DIMENSIONS.join(", ")
        )));
    }
    groups(state, dimension, q).await
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
    groups(state, format!("metadata/{key}"), q).await
}
