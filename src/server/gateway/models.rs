//! `GET /v1/models`: the models of the integrations the caller may use, as `@slug/model` ids
//! (the form requests send). An integration lists its own `configurations.models` when set;
//! otherwise the models the pricing table knows for its provider. Models outside the key's or
//! the integration's `allowed_models` are left out.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use super::respond::GatewayError;
use crate::api::scopes;
use crate::governance::Facts;
use crate::observe::pricing;
use crate::server::auth::Caller;
use crate::server::state::AppState;

pub async fn models(
    State(state): State<Arc<AppState>>,
    caller: Caller,
) -> Result<Json<Value>, GatewayError> {
    if !caller.has(scopes::COMPLETIONS_WRITE) {
        return Err(GatewayError::new(
            axum::http::StatusCode::FORBIDDEN,
            format!(
                "the API key {:?} lacks the {} scope",
                caller.0.name,
                scopes::COMPLETIONS_WRITE
            ),
        ));
    }
    let integrations = state
        .integrations
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let mut slugs: Vec<&String> = integrations.keys().collect();
    slugs.sort();
    let mut data = Vec::new();
    for slug in slugs {
        let entry = &integrations[slug];
        let listed: Vec<String> = match entry.configurations.get("models").and_then(Value::as_array)
        {
            Some(models) => models
                .iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect(),
            None => pricing::models(entry.provider.slug, None)
                .map(|(m, _)| m.to_string())
                .collect(),
        };
        let no_metadata = serde_json::Map::new();
        let allowed = |model: &str| {
            let facts = Facts {
                api_key: &caller.0.id,
                workspace: caller.0.workspace_id.as_deref(),
                integration: Some(slug),
                provider: entry.provider.slug,
                model,
                metadata: &no_metadata,
            };
            [
                caller.0.allowed_models.as_deref(),
                entry.allowed_models.as_deref(),
            ]
            .into_iter()
            .flatten()
            .all(|patterns| patterns.iter().any(|p| facts.model_matches(p)))
        };
        data.extend(listed.into_iter().filter(|m| allowed(m)).map(|m| {
            json!({"id": format!("@{slug}/{m}"), "object": "model", "created": 0, "owned_by": entry.provider.slug})
        }));
    }
    Ok(Json(json!({"object": "list", "data": data})))
}
