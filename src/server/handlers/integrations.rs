use std::sync::Arc;

use axum::extract::{Path, State};
use axum::Json;

use super::{check_slug, Deleted, DELETED};
use crate::api::error::ErrorBody;
use crate::api::governance::{Owner, OWNER_INTEGRATION};
use crate::api::integrations::{
    CreateIntegration, Integration, IntegrationCreated, UpdateIntegration,
};
use crate::api::{List, Paging};
use crate::gateway::providers;
use crate::server::audit::Change;
use crate::server::auth::Caller;
use crate::server::cluster::Topic;
use crate::server::error::{ApiError, ApiResult};
use crate::server::extract::{Body, Query};
use crate::server::governance::{
    as_change, check_limits_change, check_new_limits, store_limits, with_limits,
};
use crate::server::state::AppState;

type S = State<Arc<AppState>>;

fn check_configurations(c: &serde_json::Map<String, serde_json::Value>) -> ApiResult<()> {
    match c.get("custom_host") {
        None | Some(serde_json::Value::Null) => Ok(()),
        Some(serde_json::Value::String(url))
            if url.starts_with("http://") || url.starts_with("https://") =>
        {
            Ok(())
        }
        Some(other) => Err(ApiError::invalid(format!(
            "configurations.custom_host must be an http(s) URL, not {other}"
        ))),
    }
}

fn owner(slug: &str) -> Owner {
    Owner {
        kind: OWNER_INTEGRATION.into(),
        id: slug.into(),
    }
}

fn with_integration_limits(state: &AppState, mut i: Integration) -> ApiResult<Integration> {
    let limits = with_limits(state, &owner(&i.slug))?;
    (i.usage_limits, i.rate_limits) = (limits.usage, limits.rates);
    if limits.exhausted {
        i.status = "exhausted".into();
    }
    Ok(i)
}

/// Store a provider credential. The key is encrypted at rest and never returned.
#[utoipa::path(post, path = "/v1/integrations", tag = "integrations", request_body = CreateIntegration,
    responses((status = 200, body = IntegrationCreated), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create(
    State(state): S,
    caller: Caller,
    Body(new): Body<CreateIntegration>,
) -> ApiResult<(Change, Json<IntegrationCreated>)> {
    caller.require("integrations.create")?;
    check_slug("integration slug", &new.slug)?;
    let provider = providers::find(&new.ai_provider_id).ok_or_else(|| {
        ApiError::invalid(format!(
            "unknown provider {:?}; valid providers: {}",
            new.ai_provider_id,
            providers::slugs()
        ))
    })?;
    if provider.needs_api_key && new.key.as_deref().is_none_or(str::is_empty) {
        return Err(ApiError::invalid(format!(
            "provider {} needs an API key: give it in `key`",
            provider.slug
        )));
    }
    check_configurations(&new.configurations)?;
    check_new_limits(&new.limits)?;
    let created = state.store.create_integration(&new)?;
    store_limits(
        &state,
        &owner(&created.slug),
        &format!("integration @{}", created.slug),
        &as_change(&new.limits),
    )?;
    state.changed(Topic::Integrations)?;
    let created = with_integration_limits(&state, created)?;
    Ok((
        Change::created(&created.slug, &created),
        Json(IntegrationCreated {
            id: created.id,
            slug: created.slug,
        }),
    ))
}

#[utoipa::path(get, path = "/v1/integrations", tag = "integrations", params(Paging),
    responses((status = 200, body = List<Integration>)))]
pub async fn list(
    State(state): S,
    caller: Caller,
    Query(page): Query<Paging>,
) -> ApiResult<Json<List<Integration>>> {
    caller.require("integrations.list")?;
    let (total, data) = state.store.integrations(page)?;
    let data = data
        .into_iter()
        .map(|i| with_integration_limits(&state, i))
        .collect::<ApiResult<_>>()?;
    Ok(Json(List::new(total, data)))
}

#[utoipa::path(get, path = "/v1/integrations/{slug}", tag = "integrations",
    responses((status = 200, body = Integration), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): S,
    caller: Caller,
    Path(slug): Path<String>,
) -> ApiResult<Json<Integration>> {
    caller.require("integrations.read")?;
    Ok(Json(with_integration_limits(
        &state,
        state.store.integration(&slug)?,
    )?))
}

#[utoipa::path(put, path = "/v1/integrations/{slug}", tag = "integrations", request_body = UpdateIntegration,
    responses((status = 200, body = Integration), (status = 404, body = ErrorBody)))]
pub async fn update(
    State(state): S,
    caller: Caller,
    Path(slug): Path<String>,
    Body(change): Body<UpdateIntegration>,
) -> ApiResult<(Change, Json<Integration>)> {
    caller.require("integrations.update")?;
    if let Some(c) = &change.configurations {
        check_configurations(c)?;
    }
    if let Some(name) = &change.name {
        super::check_name(name)?;
    }
    check_limits_change(&change.limits)?;
    let before = with_integration_limits(&state, state.store.integration(&slug)?)?;
    let updated = state.store.update_integration(&slug, &change)?;
    store_limits(
        &state,
        &owner(&slug),
        &format!("integration @{slug}"),
        &change.limits,
    )?;
    state.changed(Topic::Integrations)?;
    let updated = with_integration_limits(&state, updated)?;
    Ok((Change::updated(&slug, &before, &updated), Json(updated)))
}

#[utoipa::path(delete, path = "/v1/integrations/{slug}", tag = "integrations",
    responses((status = 200, body = Deleted), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(state): S,
    caller: Caller,
    Path(slug): Path<String>,
) -> ApiResult<(Change, Json<Deleted>)> {
    caller.require("integrations.delete")?;
    let before = with_integration_limits(&state, state.store.integration(&slug)?)?;
    state.store.delete_integration(&slug)?;
    state.store.delete_owned(&owner(&slug))?;
    state.changed(Topic::Policies)?;
    state.changed(Topic::Integrations)?;
    Ok((Change::deleted(&slug, &before), Json(DELETED)))
}
