//! One client request to the gateway, read once: who is calling, the body, the config that
//! applies, metadata, trace id and the `x-portkey-*` routing headers.

use std::sync::Arc;

use axum::http::{HeaderMap, StatusCode};
use serde_json::{Map, Value};

use super::respond::GatewayError;
use crate::api::scopes;
use crate::gateway::config;
use crate::gateway::providers::adapter::Endpoint;
use crate::gateway::routing::Node;
use crate::server::auth::Caller;
use crate::server::state::AppState;

pub struct Call {
    pub endpoint: Endpoint,
    pub pathname: String,
    pub body: Map<String, Value>,
    pub stream: bool,
    /// The client asked for the usage chunk (`stream_options.include_usage`).
    pub include_usage: bool,
    pub metadata: Map<String, Value>,
    pub trace_id: String,
    /// The routing config, if the request or the key names one.
    pub config: Option<Arc<Node>>,
    pub headers: HeaderMap,
}

pub fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

fn invalid(message: impl Into<String>) -> GatewayError {
    GatewayError::new(StatusCode::BAD_REQUEST, message)
}

/// `x-portkey-config`: a saved config's `pc-` slug, or the config as JSON.
fn config_from_header(state: &AppState, value: &str) -> Result<Arc<Node>, GatewayError> {
    if value.starts_with("pc-") {
        return state
            .config(value)
            .ok_or_else(|| invalid(format!("no saved config with slug {value:?}")));
    }
    let parsed: Value = serde_json::from_str(value)
        .map_err(|_| invalid("Invalid config passed. You need to pass a valid json"))?;
    config::validate(&parsed).map_err(|errors| {
        invalid("Invalid config passed")
            .with_errors(errors.iter().map(ToString::to_string).collect())
    })?;
    Ok(Arc::new(Node::parse(&parsed)))
}

/// `x-portkey-metadata`: a JSON object; values are kept as strings, as Portkey stores them.
fn metadata_from_header(value: Option<&str>) -> Result<Map<String, Value>, GatewayError> {
    let Some(value) = value else {
        return Ok(Map::new());
    };
    let Ok(Value::Object(map)) = serde_json::from_str::<Value>(value) else {
        return Err(invalid(
            "x-portkey-metadata must be a JSON object such as {\"_user\":\"u-1\"}",
        ));
    };
    Ok(map
        .into_iter()
        .map(|(k, v)| {
            let text = match v {
                Value::String(s) => s,
                other => other.to_string(),
            };
            (k, Value::String(text))
        })
        .collect())
}

/// The trace id: `x-portkey-trace-id`, else the W3C `traceparent`'s, else a new one.
fn trace_id(headers: &HeaderMap) -> String {
    header(headers, "x-portkey-trace-id")
        .map(String::from)
        .or_else(|| {
            header(headers, "traceparent")
                .and_then(|tp| tp.split('-').nth(1))
                .filter(|id| id.len() == 32)
                .map(String::from)
        })
        .unwrap_or_else(crate::store::new_id)
}

impl Call {
    pub fn new(
        state: &AppState,
        caller: &Caller,
        headers: HeaderMap,
        pathname: &str,
        body: &[u8],
        endpoint: Endpoint,
    ) -> Result<Call, GatewayError> {
        if !caller.has(scopes::COMPLETIONS_WRITE) {
            return Err(GatewayError::new(
                StatusCode::FORBIDDEN,
                format!(
                    "the API key {:?} lacks the {} scope",
                    caller.0.name,
                    scopes::COMPLETIONS_WRITE
                ),
            ));
        }
        let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(body) else {
            return Err(invalid("the request body must be a JSON object"));
        };
        let stream = body.get("stream").and_then(Value::as_bool) == Some(true);
        let include_usage = body
            .get("stream_options")
            .and_then(|o| o.get("include_usage"))
            .and_then(Value::as_bool)
            == Some(true);
        let config = match header(&headers, "x-portkey-config") {
            Some(value) => Some(config_from_header(state, value)?),
            None => match &caller.0.defaults.config_id {
                Some(slug) => Some(state.config(slug).ok_or_else(|| {
                    invalid(format!(
                        "the key's default config {slug:?} no longer exists"
                    ))
                })?),
                None => None,
            },
        };
        let mut metadata = metadata_from_header(header(&headers, "x-portkey-metadata"))?;
        // Key defaults win over the request's metadata, as in Portkey.
        metadata.extend(caller.0.defaults.metadata.clone());
        if !metadata.contains_key("_user") {
            if let Some(user) = body.get("user").and_then(Value::as_str) {
                metadata.insert("_user".into(), Value::String(user.into()));
            }
        }
        Ok(Call {
            endpoint,
            pathname: pathname.to_string(),
            stream,
            include_usage,
            body,
            metadata,
            trace_id: trace_id(&headers),
            config,
            headers,
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_ids_come_from_portkey_then_w3c_headers() {
        let mut h = HeaderMap::new();
        h.insert(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
                .parse()
                .unwrap(),
        );
        assert_eq!(trace_id(&h), "4bf92f3577b34da6a3ce929d0e0e4736");
        h.insert("x-portkey-trace-id", "mine".parse().unwrap());
        assert_eq!(trace_id(&h), "mine");
        assert_eq!(trace_id(&HeaderMap::new()).len(), 36);
    }

    #[test]
    fn metadata_values_become_strings() {
        let m = metadata_from_header(Some(r#"{"tier":"pro","n":3}"#)).unwrap();
        assert_eq!(
            Value::Object(m),
            serde_json::json!({"tier": "pro", "n": "3"})
        );
        assert!(metadata_from_header(Some("[1]")).is_err());
    }
}
