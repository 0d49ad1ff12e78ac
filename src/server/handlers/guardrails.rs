//! `/v1/guardrails`: saved guardrails, which configs name by their `pg-` slug.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::Json;

use super::workspaces::workspace_id_of;
use super::{check_name, Deleted, DELETED};
use crate::api::error::ErrorBody;
use crate::api::guardrails::{
    Actions, CheckSpec, CreateGuardrail, Guardrail, GuardrailSaved, UpdateGuardrail,
};
use crate::api::workspaces::DEFAULT_WORKSPACE_ID;
use crate::api::{List, Paging};
use crate::guardrails::Hook;
use crate::server::audit::Change;
use crate::server::auth::Caller;
use crate::server::cluster::Topic;
use crate::server::error::{ApiError, ApiResult};
use crate::server::extract::{Body, Query};
use crate::server::state::AppState;
use crate::store::guardrails::NewGuardrail;

type S = State<Arc<AppState>>;

/// Compiles the checks as the gateway will, so a guardrail that cannot run is never saved.
fn check_guardrail(checks: &[CheckSpec], actions: &Actions) -> ApiResult<()> {
    if checks.is_empty() {
        return Err(ApiError::invalid(
            "checks: give at least one, e.g. [{\"id\": \"default.regexMatch\", \"parameters\": {\"rule\": \"\\\\d{4}\"}}]",
        ));
    }
    Hook::from_saved("guardrail", checks, actions)
        .map(drop)
        .map_err(|errors| {
            ApiError::invalid("the guardrail's checks are invalid").with_errors(errors)
        })
}

fn saved(g: &Guardrail) -> GuardrailSaved {
    GuardrailSaved {
        id: g.id.clone(),
        slug: g.slug.clone(),
        version_id: g.version_id.clone(),
    }
}

/// Create a guardrail: checks (`default.regexMatch`, `portkey.pii`, ...) and what to do when
/// they fail.
#[utoipa::path(post, path = "/v1/guardrails", tag = "guardrails", request_body = CreateGuardrail,
    responses((status = 200, body = GuardrailSaved), (status = 400, body = ErrorBody)))]
pub async fn create(
    State(state): S,
    caller: Caller,
    Body(new): Body<CreateGuardrail>,
) -> ApiResult<(Change, Json<GuardrailSaved>)> {
    caller.require("guardrails.create")?;
    check_name(&new.name)?;
    check_guardrail(&new.checks, &new.actions)?;
    let workspace_id = match new.workspace_id.as_deref() {
        None => DEFAULT_WORKSPACE_ID.to_string(),
        Some(named) => workspace_id_of(&state, named)?,
    };
    let created = state.store.create_guardrail(&NewGuardrail {
        name: new.name.trim(),
        workspace_id: Some(&workspace_id),
        checks: &new.checks,
        actions: &new.actions,
    })?;
    state.changed(Topic::Guardrails)?;
    Ok((
        Change::created(&created.id, &created),
        Json(saved(&created)),
    ))
}

#[utoipa::path(get, path = "/v1/guardrails", tag = "guardrails", params(Paging),
    responses((status = 200, body = List<Guardrail>), (status = 403, body = ErrorBody)))]
pub async fn list(
    State(state): S,
    caller: Caller,
    Query(page): Query<Paging>,
) -> ApiResult<Json<List<Guardrail>>> {
    caller.require("guardrails.list")?;
    let (total, data) = state.store.guardrails(page)?;
    Ok(Json(List::new(total, data)))
}

/// By id or slug.
#[utoipa::path(get, path = "/v1/guardrails/{id}", tag = "guardrails",
    params(("id" = String, Path, description = "the guardrail's id or slug")),
    responses((status = 200, body = Guardrail), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): S,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Guardrail>> {
    caller.require("guardrails.read")?;
    Ok(Json(state.store.guardrail(&id)?))
}

/// Fields left out stay; configs naming the guardrail use the new version from the next
/// request on.
#[utoipa::path(put, path = "/v1/guardrails/{id}", tag = "guardrails", request_body = UpdateGuardrail,
    params(("id" = String, Path, description = "the guardrail's id or slug")),
    responses((status = 200, body = GuardrailSaved), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn update(
    State(state): S,
    caller: Caller,
    Path(id): Path<String>,
    Body(change): Body<UpdateGuardrail>,
) -> ApiResult<(Change, Json<GuardrailSaved>)> {
    caller.require("guardrails.update")?;
    let before = state.store.guardrail(&id)?;
    if let Some(name) = &change.name {
        check_name(name)?;
    }
    check_guardrail(
        change.checks.as_ref().unwrap_or(&before.checks),
        change.actions.as_ref().unwrap_or(&before.actions),
    )?;
    let change = UpdateGuardrail {
        name: change.name.map(|n| n.trim().to_string()),
        ..change
    };
    let after = state.store.update_guardrail(&before.id, &change)?;
    state.changed(Topic::Guardrails)?;
    Ok((
        Change::updated(&after.id, &before, &after),
        Json(saved(&after)),
    ))
}

/// Refused (409) while a saved config names the guardrail.
#[utoipa::path(delete, path = "/v1/guardrails/{id}", tag = "guardrails",
    params(("id" = String, Path, description = "the guardrail's id or slug")),
    responses((status = 200, body = Deleted), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete(
    State(state): S,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<(Change, Json<Deleted>)> {
    caller.require("guardrails.delete")?;
    let guardrail = state.store.guardrail(&id)?;
    let users = state.configs_naming_guardrail(&guardrail.slug);
    if !users.is_empty() {
        return Err(ApiError::conflict(format!(
            "the guardrail {} is used by the config(s) {}; remove it from them first",
            guardrail.slug,
            users.join(", ")
        )));
    }
    state.store.delete_guardrail(&guardrail.id)?;
    state.changed(Topic::Guardrails)?;
    Ok((Change::deleted(&guardrail.id, &guardrail), Json(DELETED)))
}
