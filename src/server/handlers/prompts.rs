//! `/v1/prompts` and `/v1/labels`: the prompt library's admin API, Portkey's paths.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::Json;
use serde::Deserialize;
use serde_json::Value;
use utoipa::IntoParams;

use super::{check_name, Deleted, DELETED};
use crate::api::error::ErrorBody;
use crate::api::prompts::{
    AssignLabel, CreateLabel, CreatePrompt, Label, MakeDefault, Prompt, PromptCreated,
    PromptTemplate, PromptVersion, UpdatePrompt,
};
use crate::api::{List, Paging};
use crate::server::audit::Change;
use crate::server::auth::Caller;
use crate::server::error::{ApiError, ApiResult};
use crate::server::extract::{Body, Query};
use crate::server::state::AppState;

type S = State<Arc<AppState>>;

const ROLES: [&str; 5] = ["system", "developer", "user", "assistant", "tool"];

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PromptQuery {
    /// Prompts whose name contains this text.
    #[serde(default)]
    pub search: Option<String>,
}

/// Each message is `{role, content}` with a known role; the content a string or parts.
fn check_template(t: &PromptTemplate) -> ApiResult<()> {
    if t.messages.is_empty() {
        return Err(ApiError::invalid(
            "messages: a prompt needs at least one message, e.g. {\"role\":\"user\",\"content\":\"Hello {{name}}\"}",
        ));
    }
    let mut errors = Vec::new();
    for (i, m) in t.messages.iter().enumerate() {
        match m.get("role").and_then(Value::as_str) {
            Some(r) if ROLES.contains(&r) => {}
            other => errors.push(format!(
                "messages[{i}].role: {} is not one of {}",
                other.map_or("missing".to_string(), |r| format!("{r:?}")),
                ROLES.join(", ")
            )),
        }
        if !matches!(m.get("content"), Some(Value::String(_) | Value::Array(_))) {
            errors.push(format!(
                "messages[{i}].content: give a string (a Mustache template) or a list of parts"
            ));
        }
    }
    if let Some(model) = &t.model {
        if !model.starts_with('@') || !model.contains('/') {
            errors.push(format!(
                "model {model:?}: write it as @integration-slug/model, e.g. @openai-dev/gpt-4o-mini"
            ));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid("the prompt template is not valid").with_errors(errors))
    }
}

#[utoipa::path(post, path = "/v1/prompts", tag = "prompts", request_body = CreatePrompt,
    responses((status = 200, body = PromptCreated), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create(
    State(state): S,
    caller: Caller,
    Body(new): Body<CreatePrompt>,
) -> ApiResult<(Change, Json<PromptCreated>)> {
    caller.require("prompts.create")?;
    check_name(&new.name)?;
    check_template(&new.template)?;
    let created = state.store.create_prompt(&new)?;
    let after = state.store.prompt(&created.id)?;
    Ok((Change::created(&created.id, &after), Json(created)))
}

#[utoipa::path(get, path = "/v1/prompts", tag = "prompts", params(PromptQuery, Paging),
    responses((status = 200, body = List<Prompt>)))]
pub async fn list(
    State(state): S,
    caller: Caller,
    Query(q): Query<PromptQuery>,
    Query(page): Query<Paging>,
) -> ApiResult<Json<List<Prompt>>> {
    caller.require("prompts.list")?;
    let (total, data) = state.store.prompts(q.search.as_deref(), page)?;
    Ok(Json(List::new(total, data)))
}

/// `ID` (the published version), `ID@N`, `ID@latest` or `ID@LABEL`; the id or the slug.
#[utoipa::path(get, path = "/v1/prompts/{id}", tag = "prompts",
    responses((status = 200, body = Prompt), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): S,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Prompt>> {
    caller.require("prompts.read")?;
    Ok(Json(state.store.prompt(&id)?))
}

/// Adds a version (never an overwrite); the published version stays until `makeDefault`.
#[utoipa::path(put, path = "/v1/prompts/{id}", tag = "prompts", request_body = UpdatePrompt,
    responses((status = 200, body = PromptCreated), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn update(
    State(state): S,
    caller: Caller,
    Path(id): Path<String>,
    Body(change): Body<UpdatePrompt>,
) -> ApiResult<(Change, Json<PromptCreated>)> {
    caller.require("prompts.update")?;
    if let Some(name) = &change.name {
        check_name(name)?;
    }
    check_template(&change.template)?;
    let before = state.store.prompt(&format!("{id}@latest"))?;
    let created = state.store.update_prompt(&id, &change)?;
    let after = state.store.prompt(&format!("{}@latest", created.id))?;
    Ok((Change::updated(&created.id, &before, &after), Json(created)))
}

#[utoipa::path(delete, path = "/v1/prompts/{id}", tag = "prompts",
    responses((status = 200, body = Deleted), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(state): S,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<(Change, Json<Deleted>)> {
    caller.require("prompts.delete")?;
    let before = state.store.prompt(&id)?;
    state.store.delete_prompt(&id)?;
    Ok((Change::deleted(&before.id, &before), Json(DELETED)))
}

/// Every version, newest first, with its labels.
#[utoipa::path(get, path = "/v1/prompts/{id}/versions", tag = "prompts",
    responses((status = 200, body = List<PromptVersion>), (status = 404, body = ErrorBody)))]
pub async fn versions(
    State(state): S,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<List<PromptVersion>>> {
    caller.require("prompts.read")?;
    let data = state.store.prompt_versions(&id)?;
    Ok(Json(List::new(data.len() as u64, data)))
}

/// One version, by its id or its number.
#[utoipa::path(get, path = "/v1/prompts/{id}/versions/{version_id}", tag = "prompts",
    responses((status = 200, body = PromptVersion), (status = 404, body = ErrorBody)))]
pub async fn version(
    State(state): S,
    caller: Caller,
    Path((id, version)): Path<(String, String)>,
) -> ApiResult<Json<PromptVersion>> {
    caller.require("prompts.read")?;
    Ok(Json(state.store.prompt_version(&id, &version)?))
}

/// Points a label at this version (moving it from the version it pointed at).
#[utoipa::path(put, path = "/v1/prompts/{id}/versions/{version_id}", tag = "prompts", request_body = AssignLabel,
    responses((status = 200, body = PromptVersion), (status = 404, body = ErrorBody)))]
pub async fn label_version(
    State(state): S,
    caller: Caller,
    Path((id, version)): Path<(String, String)>,
    Body(assign): Body<AssignLabel>,
) -> ApiResult<(Change, Json<PromptVersion>)> {
    caller.require("prompts.publish")?;
    let before = state.store.prompt_version(&id, &version)?;
    state
        .store
        .label_prompt_version(&id, before.version, &assign.label_id)?;
    let after = state.store.prompt_version(&id, &version)?;
    Ok((Change::updated(&after.id, &before, &after), Json(after)))
}

/// Publishes a version: requests naming the prompt without a version or label get it.
#[utoipa::path(put, path = "/v1/prompts/{id}/makeDefault", tag = "prompts", request_body = MakeDefault,
    responses((status = 200, body = Prompt), (status = 404, body = ErrorBody)))]
pub async fn make_default(
    State(state): S,
    caller: Caller,
    Path(id): Path<String>,
    Body(publish): Body<MakeDefault>,
) -> ApiResult<(Change, Json<Prompt>)> {
    caller.require("prompts.publish")?;
    let before = state.store.prompt(&id)?;
    state.store.publish_prompt(&id, publish.version)?;
    let after = state.store.prompt(&id)?;
    Ok((Change::updated(&after.id, &before, &after), Json(after)))
}

#[utoipa::path(post, path = "/v1/labels", tag = "prompts", request_body = CreateLabel,
    responses((status = 200, body = Label), (status = 409, body = ErrorBody)))]
pub async fn create_label(
    State(state): S,
    caller: Caller,
    Body(new): Body<CreateLabel>,
) -> ApiResult<(Change, Json<Label>)> {
    caller.require("prompts.create")?;
    check_name(&new.name)?;
    if new.name.contains('@') || new.name.parse::<u32>().is_ok() || new.name == "latest" {
        return Err(ApiError::invalid(format!(
            "label {:?}: a label may not be a number, `latest` or contain `@`, since ID@LABEL names it",
            new.name
        )));
    }
    let label = state.store.create_label(&new)?;
    Ok((Change::created(&label.id, &label), Json(label)))
}

#[utoipa::path(get, path = "/v1/labels", tag = "prompts",
    responses((status = 200, body = List<Label>)))]
pub async fn labels(State(state): S, caller: Caller) -> ApiResult<Json<List<Label>>> {
    caller.require("prompts.list")?;
    let data = state.store.labels()?;
    Ok(Json(List::new(data.len() as u64, data)))
}

#[utoipa::path(get, path = "/v1/labels/{id}", tag = "prompts",
    responses((status = 200, body = Label), (status = 404, body = ErrorBody)))]
pub async fn label(
    State(state): S,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Label>> {
    caller.require("prompts.read")?;
    Ok(Json(state.store.label(&id)?))
}

/// Custom labels only; the three default labels stay.
#[utoipa::path(delete, path = "/v1/labels/{id}", tag = "prompts",
    responses((status = 200, body = Deleted), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete_label(
    State(state): S,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<(Change, Json<Deleted>)> {
    caller.require("prompts.delete")?;
    let before = state.store.label(&id)?;
    state.store.delete_label(&id)?;
    Ok((Change::deleted(&before.id, &before), Json(DELETED)))
}
