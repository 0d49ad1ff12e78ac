use std::sync::Arc;

use axum::extract::{Path, State};
use axum::Json;
use serde_json::{Map, Value};

use super::workspaces::workspace_id_of;
use super::{check_name, Deleted, DELETED};
use crate::api::error::ErrorBody;
use crate::api::governance::{Owner, OWNER_API_KEY};
use crate::api::keys::{
    ApiKey, ApiKeyCreated, ApiKeyRotated, CreateApiKey, RotateApiKey, UpdateApiKey,
    TYPE_ORGANISATION, TYPE_WORKSPACE,
};
use crate::api::workspaces::DEFAULT_WORKSPACE_ID;
use crate::api::{scopes, List, Paging};
use crate::server::audit::Change;
use crate::server::auth::Caller;
use crate::server::cluster::Topic;
use crate::server::error::{ApiError, ApiResult};
use crate::server::extract::{Body, Query};
use crate::server::governance::{
    as_change, check_limits_change, check_new_limits, store_limits, with_limits,
};
use crate::server::state::AppState;
use crate::store::{parse_time, NewKey};

type S = State<Arc<AppState>>;

/// A key may only hand out scopes it holds itself, so no key can mint a stronger one.
fn check_scopes(caller: &Caller, requested: &[String]) -> ApiResult<()> {
    if let Some(unknown) = requested.iter().find(|s| !scopes::is_known(s)) {
        return Err(ApiError::invalid(format!(
            "unknown scope {unknown:?}; valid scopes: {}",
            scopes::ALL.join(", ")
        )));
    }
    if let Some(missing) = requested.iter().find(|s| !caller.has(s)) {
        return Err(ApiError::forbidden(format!(
            "cannot grant the {missing} scope: the calling key does not hold it"
        )));
    }
    Ok(())
}

/// A key's or a workspace's defaults. On update, an empty `config_id` and null metadata values
/// mean "remove".
pub(super) fn check_defaults(
    state: &AppState,
    config_id: Option<&String>,
    metadata: &Map<String, Value>,
    update: bool,
) -> ApiResult<()> {
    if let Some(slug) = config_id.filter(|s| !(update && s.is_empty())) {
        state.store.config(slug).map_err(|_| {
            ApiError::invalid(format!("defaults.config_id: no config with slug {slug:?}"))
        })?;
    }
    if let Some((k, _)) = metadata
        .iter()
        .find(|(_, v)| !(v.is_string() || (update && v.is_null())))
    {
        return Err(ApiError::invalid(format!(
            "defaults.metadata.{k}: metadata values must be strings"
        )));
    }
    Ok(())
}

fn check_expiry(expires_at: Option<&String>) -> ApiResult<()> {
    match expires_at.map(|at| (at, parse_time(at))) {
        None => Ok(()),
        Some((at, None)) => Err(ApiError::invalid(format!(
            "expires_at {at:?} is not an RFC 3339 time such as 2027-01-31T00:00:00Z"
        ))),
        Some((at, Some(t))) if t <= time::OffsetDateTime::now_utc() => Err(ApiError::invalid(
            format!("expires_at {at:?} is in the past"),
        )),
        Some(_) => Ok(()),
    }
}

/// The workspace a new key belongs to, by id: the one named (by id or slug), or the default
/// one for a workspace key; none for an organisation key.
fn workspace_of(
    state: &AppState,
    key_type: &str,
    named: Option<&str>,
) -> ApiResult<Option<String>> {
    match (key_type, named) {
        (TYPE_ORGANISATION, None) => Ok(None),
        (TYPE_ORGANISATION, Some(_)) => Err(ApiError::invalid(
            "organisation keys belong to no workspace: leave out workspace_id, or create a workspace key",
        )),
        (_, None) => Ok(Some(DEFAULT_WORKSPACE_ID.into())),
        (_, Some(named)) => workspace_id_of(state, named).map(Some),
    }
}

/// Create a key. `type` is `organisation` or `workspace`; `sub_type` is `service`.
#[utoipa::path(post, path = "/v1/api-keys/{type}/{sub_type}", tag = "api-keys", request_body = CreateApiKey,
    params(("type" = String, Path, description = "organisation or workspace"), ("sub_type" = String, Path, description = "service")),
    responses((status = 200, body = ApiKeyCreated), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn create(
    State(state): S,
    caller: Caller,
    Path((kind, sub_type)): Path<(String, String)>,
    Body(new): Body<CreateApiKey>,
) -> ApiResult<(Change, Json<ApiKeyCreated>)> {
    let key_type = match (kind.as_str(), sub_type.as_str()) {
        ("organisation", "service") => TYPE_ORGANISATION,
        ("workspace", "service") => TYPE_WORKSPACE,
        (_, "user") => {
            return Err(ApiError::invalid(
                "user keys are not supported: tollgate has service keys only",
            ))
        }
        _ => {
            return Err(ApiError::invalid(format!(
                "unknown key type {kind}/{sub_type}; use organisation/service or workspace/service"
            )))
        }
    };
    caller.require(&scopes::for_key_type(key_type, "create"))?;
    check_name(&new.name)?;
    let scopes = new.scopes.clone().unwrap_or_else(|| {
        let defaults = if key_type == TYPE_ORGANISATION {
            scopes::ALL
        } else {
            scopes::WORKSPACE_DEFAULT
        };
        defaults.iter().map(|s| s.to_string()).collect()
    });
    check_scopes(&caller, &scopes)?;
    let defaults = new.defaults.clone().unwrap_or_default();
    check_defaults(
        &state,
        defaults.config_id.as_ref(),
        &defaults.metadata,
        false,
    )?;
    check_expiry(new.expires_at.as_ref())?;
    check_new_limits(&new.limits)?;
    let workspace_id = workspace_of(&state, key_type, new.workspace_id.as_deref())?;
    let created = state.store.create_api_key(&NewKey {
        name: new.name.trim().into(),
        description: new.description,
        key_type: key_type.into(),
        workspace_id,
        scopes,
        defaults,
        expires_at: new.expires_at,
        allowed_models: new.limits.allowed_models.clone(),
        creation_mode: "api",
    })?;
    store_limits(
        &state,
        &key_owner(&created.id),
        &format!("key {}", new.name.trim()),
        &as_change(&new.limits),
    )?;
    state.changed(Topic::Keys)?;
    let after = with_key_limits(&state, state.store.api_key(&created.id)?)?;
    Ok((Change::created(&created.id, &after), Json(created)))
}

/// Lists the keys of the types the caller may list.
#[utoipa::path(get, path = "/v1/api-keys", tag = "api-keys", params(Paging),
    responses((status = 200, body = List<ApiKey>), (status = 403, body = ErrorBody)))]
pub async fn list(
    State(state): S,
    caller: Caller,
    Query(page): Query<Paging>,
) -> ApiResult<Json<List<ApiKey>>> {
    let types: Vec<&str> = [TYPE_ORGANISATION, TYPE_WORKSPACE]
        .into_iter()
        .filter(|t| caller.has(&scopes::for_key_type(t, "list")))
        .collect();
    if types.is_empty() {
        caller.require(&scopes::for_key_type(TYPE_WORKSPACE, "list"))?;
    }
    let (total, data) = state.store.api_keys(&types, page)?;
    let data = data
        .into_iter()
        .map(|k| with_key_limits(&state, k))
        .collect::<ApiResult<_>>()?;
    Ok(Json(List::new(total, data)))
}

/// The calling key itself; needs no scope.
#[utoipa::path(get, path = "/v1/api-keys/self", tag = "api-keys",
    responses((status = 200, body = ApiKey), (status = 401, body = ErrorBody)))]
pub async fn own(State(state): S, caller: Caller) -> ApiResult<Json<ApiKey>> {
    Ok(Json(with_key_limits(
        &state,
        state.store.api_key(&caller.0.id)?,
    )?))
}

fn key_owner(id: &str) -> Owner {
    Owner {
        kind: OWNER_API_KEY.into(),
        id: id.into(),
    }
}

/// The key with its budget and rate limits, `exhausted` while its budget is used up.
fn with_key_limits(state: &AppState, mut key: ApiKey) -> ApiResult<ApiKey> {
    let owner = key_owner(&key.id);
    let limits = with_limits(state, &owner)?;
    (key.usage_limits, key.rate_limits) = (limits.usage, limits.rates);
    if limits.exhausted && key.status == "active" {
        key.status = "exhausted".into();
    }
    Ok(key)
}

/// Loads a key and checks the caller may do `action` on keys of its type.
fn authorised(state: &AppState, caller: &Caller, id: &str, action: &str) -> ApiResult<ApiKey> {
    let key = state.store.api_key(id)?;
    caller.require(&scopes::for_key_type(&key.key_type, action))?;
    with_key_limits(state, key)
}

#[utoipa::path(get, path = "/v1/api-keys/{id}", tag = "api-keys",
    responses((status = 200, body = ApiKey), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): S,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<ApiKey>> {
    Ok(Json(authorised(&state, &caller, &id, "read")?))
}

#[utoipa::path(put, path = "/v1/api-keys/{id}", tag = "api-keys", request_body = UpdateApiKey,
    responses((status = 200, body = ApiKey), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn update(
    State(state): S,
    caller: Caller,
    Path(id): Path<String>,
    Body(change): Body<UpdateApiKey>,
) -> ApiResult<(Change, Json<ApiKey>)> {
    let before = authorised(&state, &caller, &id, "update")?;
    if let Some(name) = &change.name {
        check_name(name)?;
    }
    if let Some(scopes) = &change.scopes {
        check_scopes(&caller, scopes)?;
    }
    if let Some(defaults) = &change.defaults {
        check_defaults(
            &state,
            defaults.config_id.as_ref(),
            &defaults.metadata,
            true,
        )?;
    }
    check_expiry(change.expires_at.as_ref())?;
    check_limits_change(&change.limits)?;
    let key = state.store.update_api_key(&id, &change)?;
    let label = format!("key {}", key.name);
    store_limits(&state, &key_owner(&id), &label, &change.limits)?;
    state.changed(Topic::Keys)?;
    let key = with_key_limits(&state, key)?;
    Ok((Change::updated(&id, &before, &key), Json(key)))
}

/// Revokes the key at once.
#[utoipa::path(delete, path = "/v1/api-keys/{id}", tag = "api-keys",
    responses((status = 200, body = Deleted), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(state): S,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<(Change, Json<Deleted>)> {
    let before = authorised(&state, &caller, &id, "delete")?;
    state.store.delete_api_key(&id)?;
    state.store.delete_owned(&key_owner(&id))?;
    state.changed(Topic::Policies)?;
    state.changed(Topic::Keys)?;
    Ok((Change::deleted(&id, &before), Json(DELETED)))
}

/// Issues a new secret; the old one works until `key_transition_period_ms` has passed.
#[utoipa::path(post, path = "/v1/api-keys/{id}/rotate", tag = "api-keys", request_body = RotateApiKey,
    responses((status = 200, body = ApiKeyRotated), (status = 404, body = ErrorBody)))]
pub async fn rotate(
    State(state): S,
    caller: Caller,
    Path(id): Path<String>,
    Body(request): Body<RotateApiKey>,
) -> ApiResult<(Change, Json<ApiKeyRotated>)> {
    let key = authorised(&state, &caller, &id, "rotate")?;
    // A new secret for a stronger key would be a stronger key in the caller's hands.
    check_scopes(&caller, &key.scopes)?;
    let rotated = state
        .store
        .rotate_api_key(&id, request.key_transition_period_ms)?;
    state.changed(Topic::Keys)?;
    let after = state.store.api_key(&id)?;
    Ok((Change::updated(&id, &key, &after), Json(rotated)))
}
