//! `POST /v1/prompts/{id}/render` and `/completions`: a prompt version from the in-memory
//! library, rendered with the request's variables; completions then go through the gateway
//! like any chat completion (config, budgets, record), and the record names the prompt.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

use super::call::Call;
use super::respond::{Answer, GatewayError};
use super::{execute, logging};
use crate::api::scopes;
use crate::gateway::providers::adapter::Endpoint;
use crate::prompts::render::chat_body;
use crate::server::auth::Caller;
use crate::server::state::AppState;
use crate::store::StoreError;

/// The chat body `reference` renders to with the request's variables and parameters, and the
/// prompt's `slug@version`.
fn rendered(
    state: &AppState,
    caller: &Caller,
    reference: &str,
    body: &[u8],
) -> Result<(Map<String, Value>, String), GatewayError> {
    if !caller.has(scopes::PROMPTS_RENDER) {
        return Err(GatewayError::new(
            StatusCode::FORBIDDEN,
            format!(
                "the API key {:?} lacks the {} scope",
                caller.0.name,
                scopes::PROMPTS_RENDER
            ),
        ));
    }
    let request = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => map,
        _ if body.is_empty() => Map::new(),
        _ => return Err(GatewayError::new(
            StatusCode::BAD_REQUEST,
            "the request body must be a JSON object such as {\"variables\": {\"name\": \"Ada\"}}",
        )),
    };
    let library = state.library();
    let (held, version) = library.prompt(reference).map_err(|e| match e {
        StoreError::NotFound(m) => {
            GatewayError::new(StatusCode::NOT_FOUND, format!("Invalid prompt id: {m}"))
        }
        other => GatewayError::new(StatusCode::INTERNAL_SERVER_ERROR, other.to_string()),
    })?;
    let template = serde_json::from_value(version.body.clone()).unwrap_or_default();
    let partials = |name: &str, v: Option<u32>| library.partial(name, v);
    let body = chat_body(&template, &request, &partials).map_err(|e| {
        GatewayError::new(
            StatusCode::BAD_REQUEST,
            format!("the prompt could not be rendered: {e}"),
        )
        .with_errors(e.0)
    })?;
    Ok((body, format!("{}@{}", held.entry.slug, version.version)))
}

pub async fn render(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(reference): Path<String>,
    body: Bytes,
) -> Response {
    match rendered(&state, &caller, &reference, &body) {
        Ok((body, _)) => Json(json!({"success": true, "data": body})).into_response(),
        Err(e) => e.into_response(),
    }
}

pub async fn completions(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(reference): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    let started = Instant::now();
    let outcome = rendered(&state, &caller, &reference, &body);
    let mut call = Call::new(
        &state,
        &caller,
        headers,
        uri.path(),
        body,
        Endpoint::Chat,
        started,
    );
    let answer = match outcome {
        Err(e) => Answer::from_error(e, None),
        Ok((chat, prompt)) => {
            call.raw_body = Bytes::from(Value::Object(chat).to_string());
            match call.read(&state) {
                Ok(()) => {
                    call.metadata
                        .insert("_prompt".into(), Value::String(prompt));
                    execute::run(&state, &call).await
                }
                Err(e) => Answer::from_error(e, None),
            }
        }
    };
    logging::respond(call, answer).await
}
