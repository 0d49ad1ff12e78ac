//! The audit log of admin changes, written by one middleware on the admin router.
//!
//! Every POST, PUT, PATCH and DELETE on an admin route made with a valid API key is recorded
//! once the handler has answered, refused ones (4xx, 5xx) included, with the key, the route, the
//! status, the TCP peer's address and the resource before and after. Not recorded: reads, the
//! data plane (a separate router), calls without a valid key (a 401 has no actor), and the
//! telemetry agents post ([`TELEMETRY`]: custom request records and feedback), which are data
//! rather than changes to the control plane and arrive at request-log rates.
//!
//! `resource_type` is the route's first segment after `/v1`; `action` is `create`, `update` or
//! `delete` by method, or a POST's trailing word after a parameter (`/api-keys/{id}/rotate` is
//! `rotate`).
//!
//! A handler supplies the resource's id and its state before and after by returning a
//! [`Change`] in front of its body, in the API's own (masked) shape:
//!
//! ```ignore
//! Ok((Change::updated(&slug, &before, &after), Json(after)))
//! ```
//!
//! with `Change::created(id, &after)` and `Change::deleted(id, &before)` for the other two.
//! Without one (a refused change, or a handler that has not been taught), the record has the
//! route's `id` or `slug` parameter and no before/after. Credential fields ([`SECRET_FIELDS`])
//! are masked wherever they sit, so a config carrying a provider key inline never puts it in the
//! log.
//!
//! The record is inserted before the answer leaves, on the store's connection: admin traffic is
//! light, and a change the client has seen acknowledged is never missing from the log. If the
//! insert fails, the record is printed on stderr rather than lost.
//!
//! `client_ip` is the TCP peer. `X-Forwarded-For` is not used: any client can send it, so it
//! would let a caller write someone else's address into the log. Behind a reverse proxy, the
//! proxy's address is recorded.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts, MatchedPath, RawPathParams, Request, State};
use axum::http::{HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponseParts, Response, ResponseParts};
use serde::Serialize;
use serde_json::Value;

use super::auth::presented_key;
use super::state::AppState;
use crate::api::audit::AuditLog;
use crate::gateway::config::check::snake_case;
use crate::observe::record::{format_ms, now_ms};
use crate::store::secrets::mask;

/// Routes whose writes are telemetry, not admin changes.
const TELEMETRY: &[&str] = &["/v1/logs", "/v1/feedback"];

/// Fields (in snake_case) whose values are credentials.
const SECRET_FIELDS: &[&str] = &[
    "api_key",
    "aws_secret_access_key",
    "aws_session_token",
    "vertex_service_account_json",
];

const REQUEST_ID: &str = "x-request-id";

/// A change's resource id and its state before and after, put in the response by the handler.
#[derive(Debug, Clone)]
pub struct Change {
    resource_id: String,
    before: Option<Value>,
    after: Option<Value>,
}

impl Change {
    pub fn created(id: &str, after: &impl Serialize) -> Change {
        Change::new(id, None, Some(shown(after)))
    }

    pub fn updated(id: &str, before: &impl Serialize, after: &impl Serialize) -> Change {
        Change::new(id, Some(shown(before)), Some(shown(after)))
    }

    pub fn deleted(id: &str, before: &impl Serialize) -> Change {
        Change::new(id, Some(shown(before)), None)
    }

    fn new(id: &str, before: Option<Value>, after: Option<Value>) -> Change {
        Change {
            resource_id: id.to_string(),
            before,
            after,
        }
    }
}

impl IntoResponseParts for Change {
    type Error = Infallible;

    fn into_response_parts(self, mut res: ResponseParts) -> Result<ResponseParts, Infallible> {
        res.extensions_mut().insert(self);
        Ok(res)
    }
}

fn shown(value: &impl Serialize) -> Value {
    let mut value = serde_json::to_value(value).unwrap_or(Value::Null);
    redact(&mut value);
    value
}

/// Masks the values of [`SECRET_FIELDS`] (in either spelling) at any depth.
fn redact(value: &mut Value) {
    match value {
        Value::Object(fields) => {
            for (name, v) in fields.iter_mut() {
                if SECRET_FIELDS.contains(&snake_case(name).as_str()) {
                    *v = match v {
                        Value::String(s) => Value::String(mask(s)),
                        Value::Null => Value::Null,
                        _ => Value::String("(redacted)".into()),
                    };
                } else {
                    redact(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact),
        _ => {}
    }
}

/// `(resource_type, action)` of a write to `route` (a route template such as
/// `/v1/api-keys/{id}/rotate`).
fn classify(method: &Method, route: &str) -> (String, String) {
    // `/v1/admin/workspaces` and `/v1/policies/usage-limits` are named by their last part.
    let path = route.trim_start_matches('/').trim_start_matches("v1/");
    let path = ["admin/", "policies/"]
        .iter()
        .find_map(|prefix| path.strip_prefix(prefix))
        .unwrap_or(path);
    let segments: Vec<&str> = path.split('/').collect();
    let is_param = |s: &str| s.starts_with('{');
    let resource_type = segments.first().copied().unwrap_or_default().to_string();
    let named = match segments.as_slice() {
        [.., param, word] if *method == Method::POST && is_param(param) && !is_param(word) => {
            Some(word.to_string())
        }
        _ => None,
    };
    let action = named.unwrap_or_else(|| {
        match *method {
            Method::POST => "create",
            Method::PUT | Method::PATCH => "update",
            Method::DELETE => "delete",
            _ => "other",
        }
        .to_string()
    });
    (resource_type, action)
}

/// The route's `id` or `slug` parameter, or the first one ending in `_id`.
fn path_id(params: &RawPathParams) -> Option<String> {
    let pairs: Vec<(&str, &str)> = params.iter().collect();
    pairs
        .iter()
        .find(|(name, _)| matches!(*name, "id" | "slug"))
        .or_else(|| pairs.iter().find(|(name, _)| name.ends_with("_id")))
        .map(|(_, value)| value.to_string())
}

/// The middleware: see the module comment.
pub async fn record(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map(|p| p.as_str());
    let audited = matches!(
        *req.method(),
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    ) && route.is_some_and(|r| !TELEMETRY.iter().any(|t| r.starts_with(t)));
    if !audited {
        return next.run(req).await;
    }
    let (mut parts, body) = req.into_parts();
    let Some(actor) = presented_key(&parts).and_then(|k| state.keys.authenticate(k).ok()) else {
        return next.run(Request::from_parts(parts, body)).await;
    };
    let created_ms = now_ms();
    let route = parts
        .extensions
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let (resource_type, action) = classify(&parts.method, &route);
    let route_id = RawPathParams::from_request_parts(&mut parts, &state)
        .await
        .ok()
        .as_ref()
        .and_then(path_id);
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let request_id = header(REQUEST_ID)
        .filter(|id| !id.is_empty() && id.len() <= 128)
        .unwrap_or_else(crate::store::new_id);
    let mut log = AuditLog {
        id: crate::store::new_id_at(created_ms),
        created_at: format_ms(created_ms),
        method: parts.method.to_string(),
        uri: parts
            .uri
            .path_and_query()
            .map_or_else(|| parts.uri.path().to_string(), |p| p.to_string()),
        resource_type,
        resource_id: route_id,
        action,
        user_id: actor.id.clone(),
        user_name: actor.name.clone(),
        user_type: actor.key_type.clone(),
        workspace_id: actor.workspace_id.clone(),
        client_ip: parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip().to_canonical().to_string()),
        user_agent: header("user-agent"),
        request_id,
        response_status_code: 0,
        before: None,
        after: None,
        object: "audit-log".into(),
    };
    let mut response = next.run(Request::from_parts(parts, body)).await;
    log.response_status_code = response.status().as_u16();
    if let Some(change) = response.extensions_mut().remove::<Change>() {
        log.resource_id = Some(change.resource_id);
        log.before = change.before;
        log.after = change.after;
    }
    if let Ok(value) = HeaderValue::from_str(&log.request_id) {
        response.headers_mut().entry(REQUEST_ID).or_insert(value);
    }
    if let Err(e) = state.store.insert_audit_log(created_ms, &log) {
        eprintln!(
            "error: the audit log could not be written ({e}); the record: {}",
            serde_json::to_string(&log).unwrap_or_default()
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn routes_name_the_resource_and_the_action() {
        let c = |m: Method, r: &str| {
            let (t, a) = classify(&m, r);
            format!("{t} {a}")
        };
        assert_eq!(c(Method::POST, "/v1/integrations"), "integrations create");
        assert_eq!(c(Method::PUT, "/v1/configs/{slug}"), "configs update");
        assert_eq!(c(Method::DELETE, "/v1/api-keys/{id}"), "api-keys delete");
        assert_eq!(
            c(Method::POST, "/v1/api-keys/{type}/{sub_type}"),
            "api-keys create"
        );
        assert_eq!(
            c(Method::POST, "/v1/api-keys/{id}/rotate"),
            "api-keys rotate"
        );
        assert_eq!(
            c(Method::PUT, "/v1/integrations/{slug}/models"),
            "integrations update"
        );
        assert_eq!(
            c(Method::PUT, "/v1/admin/workspaces/{id}"),
            "workspaces update"
        );
        assert_eq!(
            c(Method::POST, "/v1/policies/usage-limits"),
            "usage-limits create"
        );
        assert_eq!(
            c(Method::POST, "/v1/policies/usage-limits/{id}/reset"),
            "usage-limits reset"
        );
    }

    #[test]
    fn credentials_are_masked_at_any_depth_in_either_spelling() {
        let config = json!({
            "strategy": {"mode": "fallback"},
            "targets": [
                {"provider": "openai", "api_key": "sk-proj-abcdefghijklwxyz"},
                {"provider": "bedrock", "awsSecretAccessKey": "abcdefghijklmnopqrst", "aws_region": "us-east-1"},
                {"provider": "vertex-ai", "vertex_service_account_json": {"private_key": "-----BEGIN"}},
            ],
        });
        let shown = shown(&config);
        assert_eq!(shown["targets"][0]["api_key"], "sk-…wxyz");
        assert_eq!(shown["targets"][1]["awsSecretAccessKey"], "abc…qrst");
        assert_eq!(shown["targets"][1]["aws_region"], "us-east-1");
        assert_eq!(
            shown["targets"][2]["vertex_service_account_json"],
            "(redacted)"
        );
        assert_eq!(shown["strategy"], config["strategy"]);
        let text = shown.to_string();
        assert!(
            !text.contains("abcdefghijkl") && !text.contains("BEGIN"),
            "{text}"
        );
    }

    #[test]
    fn changes_carry_the_masked_states() {
        let before = json!({"name": "a", "api_key": "sk-proj-abcdefghijklwxyz"});
        let change = Change::updated("x", &before, &json!({"name": "b"}));
        assert_eq!(change.resource_id, "x");
        assert_eq!(change.before.unwrap()["api_key"], "sk-…wxyz");
        assert_eq!(change.after.unwrap()["name"], "b");
        let deleted = Change::deleted("x", &before);
        assert!(deleted.after.is_none() && deleted.before.is_some());
        assert!(Change::created("x", &before).before.is_none());
    }
}
