use std::sync::Arc;

use axum::extract::{Path, State};
use axum::Json;

use super::keys::check_defaults;
use super::{check_name, check_slug, Deleted, DELETED};
use crate::api::error::ErrorBody;
use crate::api::governance::{Owner, OWNER_WORKSPACE};
use crate::api::workspaces::{
    CreateWorkspace, UpdateWorkspace, Workspace, WorkspaceFilter, DEFAULT_WORKSPACE_ID,
};
use crate::api::{List, Paging};
use crate::server::audit::Change;
use crate::server::auth::Caller;
use crate::server::cluster::Topic;
use crate::server::error::{ApiError, ApiResult};
use crate::server::extract::{Body, Query};
use crate::server::governance::{
    as_change, check_limits_change, check_new_limits, store_limits, with_limits,
};
use crate::server::state::AppState;
use crate::store::StoreError;

type S = State<Arc<AppState>>;

fn owner(id: &str) -> Owner {
    Owner {
        kind: OWNER_WORKSPACE.into(),
        id: id.into(),
    }
}

/// The id of the workspace a request body names (by id or slug) in `workspace_id`.
pub fn workspace_id_of(state: &AppState, named: &str) -> ApiResult<String> {
    match state.store.workspace(named) {
        Ok(w) => Ok(w.id),
        Err(StoreError::NotFound(_)) => Err(ApiError::invalid(format!(
            "workspace_id: no workspace with id or slug {named:?}"
        ))),
        Err(e) => Err(e.into()),
    }
}

fn with_workspace_limits(state: &AppState, mut w: Workspace) -> ApiResult<Workspace> {
    let limits = with_limits(state, &owner(&w.id))?;
    (w.usage_limits, w.rate_limits) = (limits.usage, limits.rates);
    if limits.exhausted && w.status == "active" {
        w.status = "exhausted".into();
    }
    Ok(w)
}

/// Create a workspace. Keys created in it get its defaults.
#[utoipa::path(post, path = "/v1/admin/workspaces", tag = "workspaces", request_body = CreateWorkspace,
    responses((status = 200, body = Workspace), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create(
    State(state): S,
    caller: Caller,
    Body(mut new): Body<CreateWorkspace>,
) -> ApiResult<(Change, Json<Workspace>)> {
    caller.require("workspaces.create")?;
    check_name(&new.name)?;
    new.name = new.name.trim().into();
    if let Some(slug) = &new.slug {
        check_slug("workspace slug", slug)?;
    }
    if let Some(d) = &new.defaults {
        check_defaults(&state, d.config_id.as_ref(), &d.metadata, false)?;
    }
    check_new_limits(&new.limits)?;
    let created = state.store.create_workspace(&new)?;
    let label = format!("workspace {}", created.slug);
    store_limits(&state, &owner(&created.id), &label, &as_change(&new.limits))?;
    state.changed(Topic::Workspaces)?;
    let after = with_workspace_limits(&state, created)?;
    Ok((Change::created(&after.id, &after), Json(after)))
}

/// `name` matches part of a name, any case; `exact_name` the whole name.
#[utoipa::path(get, path = "/v1/admin/workspaces", tag = "workspaces", params(WorkspaceFilter, Paging),
    responses((status = 200, body = List<Workspace>), (status = 403, body = ErrorBody)))]
pub async fn list(
    State(state): S,
    caller: Caller,
    Query(filter): Query<WorkspaceFilter>,
    Query(page): Query<Paging>,
) -> ApiResult<Json<List<Workspace>>> {
    caller.require("workspaces.list")?;
    let (total, data) = state.store.workspaces(&filter, page)?;
    let data = data
        .into_iter()
        .map(|w| with_workspace_limits(&state, w))
        .collect::<ApiResult<_>>()?;
    Ok(Json(List::new(total, data)))
}

/// By id or slug.
#[utoipa::path(get, path = "/v1/admin/workspaces/{id}", tag = "workspaces",
    params(("id" = String, Path, description = "the workspace's id or slug")),
    responses((status = 200, body = Workspace), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): S,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Workspace>> {
    caller.require("workspaces.read")?;
    Ok(Json(with_workspace_limits(
        &state,
        state.store.workspace(&id)?,
    )?))
}

/// Fields left out are unchanged; `defaults` are merged as a key's are.
#[utoipa::path(put, path = "/v1/admin/workspaces/{id}", tag = "workspaces", request_body = UpdateWorkspace,
    params(("id" = String, Path, description = "the workspace's id or slug")),
    responses((status = 200, body = Workspace), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn update(
    State(state): S,
    caller: Caller,
    Path(id): Path<String>,
    Body(mut change): Body<UpdateWorkspace>,
) -> ApiResult<(Change, Json<Workspace>)> {
    caller.require("workspaces.update")?;
    let before = with_workspace_limits(&state, state.store.workspace(&id)?)?;
    if let Some(name) = &change.name {
        check_name(name)?;
        change.name = Some(name.trim().into());
    }
    if let Some(d) = &change.defaults {
        check_defaults(&state, d.config_id.as_ref(), &d.metadata, true)?;
    }
    check_limits_change(&change.limits)?;
    let updated = state.store.update_workspace(&id, &change)?;
    let label = format!("workspace {}", updated.slug);
    store_limits(&state, &owner(&updated.id), &label, &change.limits)?;
    state.changed(Topic::Workspaces)?;
    let after = with_workspace_limits(&state, updated)?;
    Ok((Change::updated(&after.id, &before, &after), Json(after)))
}

/// Refused (409) while the workspace has keys, and for the default workspace.
#[utoipa::path(delete, path = "/v1/admin/workspaces/{id}", tag = "workspaces",
    params(("id" = String, Path, description = "the workspace's id or slug")),
    responses((status = 200, body = Deleted), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete(
    State(state): S,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<(Change, Json<Deleted>)> {
    caller.require("workspaces.delete")?;
    let workspace = with_workspace_limits(&state, state.store.workspace(&id)?)?;
    if workspace.id == DEFAULT_WORKSPACE_ID {
        return Err(ApiError::conflict(format!(
            "the default workspace {:?} cannot be deleted: workspace keys created without a workspace go there",
            workspace.slug
        )));
    }
    state.store.delete_workspace(&workspace.id)?;
    state.store.delete_owned(&owner(&workspace.id))?;
    state.changed(Topic::Policies)?;
    state.changed(Topic::Workspaces)?;
    Ok((Change::deleted(&workspace.id, &workspace), Json(DELETED)))
}
