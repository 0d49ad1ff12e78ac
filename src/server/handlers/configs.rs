use std::sync::Arc;

use axum::extract::{Path, State};
use axum::Json;
use serde_json::Value;

use super::{check_name, Deleted, DELETED};
use crate::api::configs::{
    Config, ConfigCreated, ConfigUpdated, ConfigVersion, CreateConfig, UpdateConfig,
};
use crate::api::error::ErrorBody;
use crate::api::{List, Paging, Success};
use crate::gateway::config;
use crate::gateway::routing::Node;
use crate::server::audit::Change;
use crate::server::auth::Caller;
use crate::server::cluster::Topic;
use crate::server::error::{ApiError, ApiResult};
use crate::server::extract::{Body, Query};
use crate::server::state::AppState;

type S = State<Arc<AppState>>;

/// Rejects an invalid config with every error and its path, before anything is stored; the
/// saved guardrails it names must exist.
fn check_config(state: &AppState, value: &Value) -> ApiResult<()> {
    config::validate(value).map_err(|errors| {
        ApiError::invalid("Invalid config passed")
            .with_errors(errors.iter().map(ToString::to_string).collect())
    })?;
    let missing: Vec<String> = Node::parse(value)
        .saved_guardrails()
        .into_iter()
        .filter(|slug| state.guardrail(slug).is_none())
        .map(|slug| format!("no saved guardrail {slug:?}; see `tollgate guardrails list`"))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid("Invalid config passed").with_errors(missing))
    }
}

#[utoipa::path(post, path = "/v1/configs", tag = "configs", request_body = CreateConfig,
    responses((status = 200, body = Success<ConfigCreated>), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create(
    State(state): S,
    caller: Caller,
    Body(new): Body<CreateConfig>,
) -> ApiResult<(Change, Json<Success<ConfigCreated>>)> {
    caller.require("configs.create")?;
    check_name(&new.name)?;
    check_config(&state, &new.config)?;
    let created = state
        .store
        .create_config(new.name.trim(), &new.config, new.is_default != 0)?;
    state.changed(Topic::Configs)?;
    Ok((
        Change::created(&created.slug, &created),
        Json(Success::new(ConfigCreated {
            id: created.id,
            slug: created.slug,
            version_id: created.version_id,
        })),
    ))
}

#[utoipa::path(get, path = "/v1/configs", tag = "configs", params(Paging),
    responses((status = 200, body = Success<Vec<Config>>)))]
pub async fn list(
    State(state): S,
    caller: Caller,
    Query(page): Query<Paging>,
) -> ApiResult<Json<Success<Vec<Config>>>> {
    caller.require("configs.list")?;
    let (total, data) = state.store.configs(page)?;
    Ok(Json(Success::list(total, data)))
}

#[utoipa::path(get, path = "/v1/configs/{slug}", tag = "configs",
    responses((status = 200, body = Success<Config>), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): S,
    caller: Caller,
    Path(slug): Path<String>,
) -> ApiResult<Json<Success<Config>>> {
    caller.require("configs.read")?;
    Ok(Json(Success::new(state.store.config(&slug)?)))
}

/// Every update makes a new version; earlier versions are kept.
#[utoipa::path(put, path = "/v1/configs/{slug}", tag = "configs", request_body = UpdateConfig,
    responses((status = 200, body = Success<ConfigUpdated>), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn update(
    State(state): S,
    caller: Caller,
    Path(slug): Path<String>,
    Body(change): Body<UpdateConfig>,
) -> ApiResult<(Change, Json<Success<ConfigUpdated>>)> {
    caller.require("configs.update")?;
    if let Some(name) = &change.name {
        check_name(name)?;
    }
    if let Some(value) = &change.config {
        check_config(&state, value)?;
    }
    if let Some(status) = &change.status {
        if !matches!(status.as_str(), "active" | "archived") {
            return Err(ApiError::invalid(format!(
                "status {status:?} is not one of active, archived"
            )));
        }
    }
    let before = state.store.config(&slug)?;
    let updated = state.store.update_config(&slug, &change)?;
    state.changed(Topic::Configs)?;
    let after = state.store.config(&slug)?;
    Ok((
        Change::updated(&slug, &before, &after),
        Json(Success::new(updated)),
    ))
}

#[utoipa::path(delete, path = "/v1/configs/{slug}", tag = "configs",
    responses((status = 200, body = Deleted), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(state): S,
    caller: Caller,
    Path(slug): Path<String>,
) -> ApiResult<(Change, Json<Deleted>)> {
    caller.require("configs.delete")?;
    let before = state.store.config(&slug)?;
    state.store.delete_config(&slug)?;
    state.changed(Topic::Configs)?;
    Ok((Change::deleted(&slug, &before), Json(DELETED)))
}

#[utoipa::path(get, path = "/v1/configs/{slug}/versions", tag = "configs",
    responses((status = 200, body = List<ConfigVersion>), (status = 404, body = ErrorBody)))]
pub async fn versions(
    State(state): S,
    caller: Caller,
    Path(slug): Path<String>,
) -> ApiResult<Json<List<ConfigVersion>>> {
    caller.require("configs.read")?;
    let versions = state.store.config_versions(&slug)?;
    Ok(Json(List::new(versions.len() as u64, versions)))
}
