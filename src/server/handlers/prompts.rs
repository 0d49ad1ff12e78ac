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
    AssignLabel, Collection, CreateCollection, CreateLabel, CreatePartial, CreatePrompt, Label,
    MakeDefault, Partial, PortkeyTemplate, Prompt, PromptCreated, PromptTemplate, PromptVersion,
    UpdateCollection, UpdateLabel, UpdatePartial, UpdatePrompt,
};
use crate::api::{List, Paging};
use crate::server::audit::Change;
use crate::server::auth::Caller;
use crate::server::cluster::Topic;
use crate::server::error::{ApiError, ApiResult};
use crate::server::extract::{Body, Query};
use crate::server::state::AppState;
use crate::store::prompts::{Entry, Kind, NewVersion, Version};

type S = State<Arc<AppState>>;

const ROLES: [&str; 5] = ["system", "developer", "user", "assistant", "tool"];

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PromptQuery {
    /// Prompts whose name contains this text.
    #[serde(default)]
    pub search: Option<String>,
}

/// A collection named by id or name, as its id; unknown ones are a 400.
fn collection_of(state: &AppState, given: Option<&str>) -> ApiResult<Option<String>> {
    given
        .map(|c| {
            state.store.collection(c).map(|c| c.id).map_err(|_| {
                ApiError::invalid(format!(
                    "collection_id: no collection {c:?}; create it with POST /v1/collections"
                ))
            })
        })
        .transpose()
}

fn template_of(v: &Version) -> PromptTemplate {
    serde_json::from_value(v.body.clone()).unwrap_or_default()
}

fn prompt_of((e, v): (Entry, Version)) -> Prompt {
    Prompt {
        labels: e
            .labels
            .iter()
            .map(|(k, n)| (k.clone(), Value::from(*n)))
            .collect(),
        prompt_version: v.version,
        prompt_version_status: if v.version == e.published {
            "published"
        } else {
            "draft"
        }
        .into(),
        template: template_of(&v),
        prompt_version_id: v.id,
        published_version: e.published,
        latest_version: e.latest,
        id: e.id,
        slug: e.slug,
        name: e.name,
        collection_id: e.collection_id,
        created_at: e.created_at,
        last_updated_at: e.updated_at,
        object: "prompt".into(),
    }
}

fn version_of(e: &Entry, v: Version) -> PromptVersion {
    PromptVersion {
        template: template_of(&v),
        labels: e.labels_of(v.version),
        published: v.version == e.published,
        id: v.id,
        prompt_id: e.id.clone(),
        version: v.version,
        description: v.description,
        created_at: v.created_at,
        object: "prompt_version".into(),
    }
}

fn partial_of(e: &Entry, v: Version) -> Partial {
    Partial {
        id: e.id.clone(),
        slug: e.slug.clone(),
        name: e.name.clone(),
        string: v
            .body
            .get("string")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .into(),
        version: v.version,
        version_id: v.id,
        published_version: e.published,
        latest_version: e.latest,
        description: v.description,
        created_at: e.created_at.clone(),
        last_updated_at: e.updated_at.clone(),
        object: "partial".into(),
    }
}

fn created(kind: Kind, (e, v): (Entry, Version)) -> PromptCreated {
    PromptCreated {
        id: e.id,
        slug: e.slug,
        version_id: v.id,
        version: v.version,
        object: match kind {
            Kind::Prompt => "prompt",
            Kind::Partial => "partial",
        }
        .into(),
    }
}

/// `ID@LABEL` names a label, so a label may not look like a version.
fn check_label_name(name: &str) -> ApiResult<()> {
    check_name(name)?;
    if name.contains('@') || name.parse::<u32>().is_ok() || name == "latest" {
        return Err(ApiError::invalid(format!(
            "label {name:?}: a label may not be a number, `latest` or contain `@`, since ID@LABEL names it"
        )));
    }
    Ok(())
}

/// Template syntax errors are found when a version is saved, not when it is first used.
fn check_mustache(path: &str, text: &str, errors: &mut Vec<String>) {
    if let Err(e) = crate::prompts::mustache::variables(text) {
        errors.extend(e.0.into_iter().map(|m| format!("{path}: {m}")));
    }
}

fn check_partial(text: &str) -> ApiResult<()> {
    let mut errors = Vec::new();
    check_mustache("string", text, &mut errors);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid("the partial is not a valid template").with_errors(errors))
    }
}

/// Each message is `{role, content}` with a known role; the content a string or parts.
/// The template as stored: Portkey's `string` (messages as JSON text) becomes `messages`, and
/// a bare `model` with a `virtual_key` becomes `@virtual_key/model`.
fn normalised(mut t: PromptTemplate, portkey: &PortkeyTemplate) -> ApiResult<PromptTemplate> {
    if let Some(text) = &portkey.string {
        if !t.messages.is_empty() {
            return Err(ApiError::invalid(
                "give messages or string (Portkey's form), not both",
            ));
        }
        t.messages = match serde_json::from_str::<Value>(text) {
            Ok(Value::Array(messages)) => messages,
            _ => {
                return Err(ApiError::invalid(
                    "string: Portkey's template form must be a JSON array of messages, e.g. [{\"role\":\"user\",\"content\":\"Hi {{name}}\"}]",
                ))
            }
        };
    }
    if let (Some(slug), Some(model)) = (&portkey.virtual_key, &t.model) {
        if !model.starts_with('@') {
            t.model = Some(format!("@{}/{model}", slug.trim_start_matches('@')));
        }
    }
    check_template(&t)?;
    Ok(t)
}

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
        match m.get("content") {
            Some(Value::String(text)) => {
                check_mustache(&format!("messages[{i}].content"), text, &mut errors)
            }
            Some(Value::Array(parts)) => {
                for (j, part) in parts.iter().enumerate() {
                    if let Some(text) = part.get("text").and_then(Value::as_str) {
                        check_mustache(
                            &format!("messages[{i}].content[{j}].text"),
                            text,
                            &mut errors,
                        );
                    }
                }
            }
            _ => errors.push(format!(
                "messages[{i}].content: give a string (a Mustache template) or a list of parts"
            )),
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
    let template = normalised(new.template, &new.portkey)?;
    let collection_id = collection_of(&state, new.collection_id.as_deref())?;
    let body = serde_json::to_value(&template).expect("data");
    let made = state.store.library_create(
        Kind::Prompt,
        new.name.trim(),
        collection_id.as_deref(),
        &body,
        new.version_description.as_deref(),
    )?;
    let after = prompt_of(made.clone());
    state.changed(Topic::Library)?;
    Ok((
        Change::created(&after.id, &after),
        Json(created(Kind::Prompt, made)),
    ))
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
    let (total, data) = state
        .store
        .library_list(Kind::Prompt, q.search.as_deref(), page)?;
    Ok(Json(List::new(
        total,
        data.into_iter().map(prompt_of).collect(),
    )))
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
    Ok(Json(prompt_of(state.store.library_get(Kind::Prompt, &id)?)))
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
    let template = normalised(change.template, &change.portkey)?;
    let collection_id = collection_of(&state, change.collection_id.as_deref())?;
    let before = prompt_of(
        state
            .store
            .library_get(Kind::Prompt, &format!("{id}@latest"))?,
    );
    let made = state.store.library_add_version(
        Kind::Prompt,
        &id,
        &NewVersion {
            name: change.name.as_deref().map(str::trim),
            collection_id: collection_id.as_deref(),
            body: serde_json::to_value(&template).expect("data"),
            description: change.version_description.as_deref(),
        },
    )?;
    let after = prompt_of(made.clone());
    state.changed(Topic::Library)?;
    Ok((
        Change::updated(&after.id, &before, &after),
        Json(created(Kind::Prompt, made)),
    ))
}

#[utoipa::path(delete, path = "/v1/prompts/{id}", tag = "prompts",
    responses((status = 200, body = Deleted), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(state): S,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<(Change, Json<Deleted>)> {
    caller.require("prompts.delete")?;
    let before = prompt_of(state.store.library_get(Kind::Prompt, &id)?);
    state.store.library_delete(Kind::Prompt, &id)?;
    state.changed(Topic::Library)?;
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
    let (e, versions) = state.store.library_versions(Kind::Prompt, &id)?;
    let data: Vec<PromptVersion> = versions.into_iter().map(|v| version_of(&e, v)).collect();
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
    Ok(Json(prompt_version(&state, &id, &version)?))
}

/// One version of a prompt, by the version's id or number.
fn prompt_version(state: &AppState, id: &str, version: &str) -> ApiResult<PromptVersion> {
    let (e, versions) = state.store.library_versions(Kind::Prompt, id)?;
    let v = versions
        .into_iter()
        .find(|v| v.id == version || v.version.to_string() == version)
        .ok_or_else(|| ApiError::not_found(format!("prompt {id:?} has no version {version:?}")))?;
    Ok(version_of(&e, v))
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
    let before = prompt_version(&state, &id, &version)?;
    state
        .store
        .library_label(Kind::Prompt, &id, before.version, &assign.label_id)?;
    let after = prompt_version(&state, &id, &version)?;
    state.changed(Topic::Library)?;
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
    let before = prompt_of(state.store.library_get(Kind::Prompt, &id)?);
    state
        .store
        .library_publish(Kind::Prompt, &id, publish.version)?;
    let after = prompt_of(state.store.library_get(Kind::Prompt, &id)?);
    state.changed(Topic::Library)?;
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
    check_label_name(&new.name)?;
    let label = state.store.create_label(&new)?;
    state.changed(Topic::Library)?;
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
    state.changed(Topic::Library)?;
    Ok((Change::deleted(&before.id, &before), Json(DELETED)))
}

#[utoipa::path(post, path = "/v1/prompts/partials", tag = "prompts", request_body = CreatePartial,
    responses((status = 200, body = PromptCreated), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create_partial(
    State(state): S,
    caller: Caller,
    Body(new): Body<CreatePartial>,
) -> ApiResult<(Change, Json<PromptCreated>)> {
    caller.require("prompts.create")?;
    check_name(&new.name)?;
    check_partial(&new.string)?;
    let body = serde_json::json!({"string": new.string});
    let made = state.store.library_create(
        Kind::Partial,
        new.name.trim(),
        None,
        &body,
        new.version_description.as_deref(),
    )?;
    let after = partial_of(&made.0, made.1.clone());
    state.changed(Topic::Library)?;
    Ok((
        Change::created(&after.id, &after),
        Json(created(Kind::Partial, made)),
    ))
}

#[utoipa::path(get, path = "/v1/prompts/partials", tag = "prompts", params(PromptQuery, Paging),
    responses((status = 200, body = List<Partial>)))]
pub async fn list_partials(
    State(state): S,
    caller: Caller,
    Query(q): Query<PromptQuery>,
    Query(page): Query<Paging>,
) -> ApiResult<Json<List<Partial>>> {
    caller.require("prompts.list")?;
    let (total, data) = state
        .store
        .library_list(Kind::Partial, q.search.as_deref(), page)?;
    let data = data.into_iter().map(|(e, v)| partial_of(&e, v)).collect();
    Ok(Json(List::new(total, data)))
}

/// `ID`, `ID@N`, `ID@latest` or `ID@LABEL`; the id, slug or name.
#[utoipa::path(get, path = "/v1/prompts/partials/{id}", tag = "prompts",
    responses((status = 200, body = Partial), (status = 404, body = ErrorBody)))]
pub async fn get_partial(
    State(state): S,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Partial>> {
    caller.require("prompts.read")?;
    let (e, v) = state.store.library_get(Kind::Partial, &id)?;
    Ok(Json(partial_of(&e, v)))
}

/// Adds a version of the partial; prompts that pin a version keep theirs.
#[utoipa::path(put, path = "/v1/prompts/partials/{id}", tag = "prompts", request_body = UpdatePartial,
    responses((status = 200, body = PromptCreated), (status = 404, body = ErrorBody)))]
pub async fn update_partial(
    State(state): S,
    caller: Caller,
    Path(id): Path<String>,
    Body(change): Body<UpdatePartial>,
) -> ApiResult<(Change, Json<PromptCreated>)> {
    caller.require("prompts.update")?;
    if let Some(name) = &change.name {
        check_name(name)?;
    }
    let (e, v) = state
        .store
        .library_get(Kind::Partial, &format!("{id}@latest"))?;
    let before = partial_of(&e, v);
    let made = state.store.library_add_version(
        Kind::Partial,
        &id,
        &NewVersion {
            name: change.name.as_deref().map(str::trim),
            collection_id: None,
            body: serde_json::json!({"string": change.string}),
            description: change.version_description.as_deref(),
        },
    )?;
    let after = partial_of(&made.0, made.1.clone());
    state.changed(Topic::Library)?;
    Ok((
        Change::updated(&after.id, &before, &after),
        Json(created(Kind::Partial, made)),
    ))
}

#[utoipa::path(delete, path = "/v1/prompts/partials/{id}", tag = "prompts",
    responses((status = 200, body = Deleted), (status = 404, body = ErrorBody)))]
pub async fn delete_partial(
    State(state): S,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<(Change, Json<Deleted>)> {
    caller.require("prompts.delete")?;
    let (e, v) = state.store.library_get(Kind::Partial, &id)?;
    let before = partial_of(&e, v);
    state.store.library_delete(Kind::Partial, &id)?;
    state.changed(Topic::Library)?;
    Ok((Change::deleted(&before.id, &before), Json(DELETED)))
}

/// Every version of a partial, newest first.
#[utoipa::path(get, path = "/v1/prompts/partials/{id}/versions", tag = "prompts",
    responses((status = 200, body = List<Partial>), (status = 404, body = ErrorBody)))]
pub async fn partial_versions(
    State(state): S,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<List<Partial>>> {
    caller.require("prompts.read")?;
    let (e, versions) = state.store.library_versions(Kind::Partial, &id)?;
    let data: Vec<Partial> = versions.into_iter().map(|v| partial_of(&e, v)).collect();
    Ok(Json(List::new(data.len() as u64, data)))
}

#[utoipa::path(put, path = "/v1/prompts/partials/{id}/makeDefault", tag = "prompts", request_body = MakeDefault,
    responses((status = 200, body = Partial), (status = 404, body = ErrorBody)))]
pub async fn publish_partial(
    State(state): S,
    caller: Caller,
    Path(id): Path<String>,
    Body(publish): Body<MakeDefault>,
) -> ApiResult<(Change, Json<Partial>)> {
    caller.require("prompts.publish")?;
    let (e, v) = state.store.library_get(Kind::Partial, &id)?;
    let before = partial_of(&e, v);
    state
        .store
        .library_publish(Kind::Partial, &id, publish.version)?;
    let (e, v) = state.store.library_get(Kind::Partial, &id)?;
    let after = partial_of(&e, v);
    state.changed(Topic::Library)?;
    Ok((Change::updated(&after.id, &before, &after), Json(after)))
}

#[utoipa::path(post, path = "/v1/collections", tag = "prompts", request_body = CreateCollection,
    responses((status = 200, body = Collection), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create_collection(
    State(state): S,
    caller: Caller,
    Body(new): Body<CreateCollection>,
) -> ApiResult<(Change, Json<Collection>)> {
    caller.require("prompts.create")?;
    check_name(&new.name)?;
    let c = state.store.create_collection(&new)?;
    state.changed(Topic::Library)?;
    Ok((Change::created(&c.id, &c), Json(c)))
}

#[utoipa::path(get, path = "/v1/collections", tag = "prompts",
    responses((status = 200, body = List<Collection>)))]
pub async fn collections(State(state): S, caller: Caller) -> ApiResult<Json<List<Collection>>> {
    caller.require("prompts.list")?;
    let data = state.store.collections()?;
    Ok(Json(List::new(data.len() as u64, data)))
}

#[utoipa::path(get, path = "/v1/collections/{id}", tag = "prompts",
    responses((status = 200, body = Collection), (status = 404, body = ErrorBody)))]
pub async fn collection(
    State(state): S,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Collection>> {
    caller.require("prompts.read")?;
    Ok(Json(state.store.collection(&id)?))
}

/// Refused (409) while it holds prompts or collections.
#[utoipa::path(delete, path = "/v1/collections/{id}", tag = "prompts",
    responses((status = 200, body = Deleted), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete_collection(
    State(state): S,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<(Change, Json<Deleted>)> {
    caller.require("prompts.delete")?;
    let before = state.store.collection(&id)?;
    state.store.delete_collection(&id)?;
    state.changed(Topic::Library)?;
    Ok((Change::deleted(&before.id, &before), Json(DELETED)))
}

#[utoipa::path(put, path = "/v1/labels/{id}", tag = "prompts", request_body = UpdateLabel,
    responses((status = 200, body = Label), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn update_label(
    State(state): S,
    caller: Caller,
    Path(id): Path<String>,
    Body(change): Body<UpdateLabel>,
) -> ApiResult<(Change, Json<Label>)> {
    caller.require("prompts.update")?;
    if let Some(name) = &change.name {
        check_label_name(name)?;
    }
    let before = state.store.label(&id)?;
    let after = state.store.update_label(&id, &change)?;
    state.changed(Topic::Library)?;
    Ok((Change::updated(&after.id, &before, &after), Json(after)))
}

#[utoipa::path(put, path = "/v1/collections/{id}", tag = "prompts", request_body = UpdateCollection,
    responses((status = 200, body = Collection), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn update_collection(
    State(state): S,
    caller: Caller,
    Path(id): Path<String>,
    Body(change): Body<UpdateCollection>,
) -> ApiResult<(Change, Json<Collection>)> {
    caller.require("prompts.update")?;
    if let Some(name) = &change.name {
        check_name(name)?;
    }
    let before = state.store.collection(&id)?;
    let after = state.store.update_collection(&id, &change)?;
    Ok((Change::updated(&after.id, &before, &after), Json(after)))
}
