//! One client request to the gateway, read once: who is calling, the body, the config that
//! applies, metadata, trace id and the `x-portkey-*` routing headers.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Map, Value};
use tokio::task::JoinHandle;

use super::respond::GatewayError;
use crate::api::guardrails::HookResult;
use crate::api::logs::Attempt;
use crate::api::scopes;
use crate::gateway::config;
use crate::gateway::providers::adapter::Endpoint;
use crate::gateway::routing::Node;
use crate::guardrails::Stage;
use crate::observe::recorder::Recorder;
use crate::server::auth::Caller;
use crate::server::state::{AppState, WorkspaceEntry};
use crate::store::KeyRecord;

pub struct Call {
    pub endpoint: Endpoint,
    pub pathname: String,
    pub body: Map<String, Value>,
    pub stream: bool,
    /// The client asked for the usage chunk (`stream_options.include_usage`).
    pub include_usage: bool,
    pub metadata: Map<String, Value>,
    pub trace: TraceContext,
    /// The routing config, if the request, the key or its workspace names one.
    pub config: Option<Arc<Node>>,
    pub headers: HeaderMap,
    pub key: Arc<KeyRecord>,
    /// The key's workspace (organisation keys have none).
    pub workspace: Option<Arc<WorkspaceEntry>>,
    pub started: Instant,
    pub created_ms: i64,
    /// The body as received.
    pub raw_body: Bytes,
    /// Whether the record keeps the bodies (on for the server and the key, and not turned off
    /// with `x-portkey-debug: false`).
    pub log_bodies: bool,
    /// Request-count rate limits this request has been counted against (by an earlier target).
    pub counted: Mutex<Vec<Arc<str>>>,
    /// Every upstream call so far, in order.
    pub attempts: Mutex<Vec<Attempt>>,
    /// Async hooks still running; their results join the record, not the answer.
    pub deferred_hooks: Mutex<Vec<(Stage, JoinHandle<HookResult>)>>,
    /// Set until the request's record is handed on; a call dropped with it set was abandoned
    /// by its client (see `Drop`).
    pub recorder: Option<Arc<Recorder>>,
}

/// Where the request sits in its caller's trace.
pub struct TraceContext {
    pub trace_id: String,
    pub span_id: String,
    pub parent_span_id: Option<String>,
    pub span_name: Option<String>,
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
    Ok(crate::observe::record::metadata_strings(map))
}

/// W3C `baggage`: `key=value` pairs, comma-separated, values percent-encoded, properties after
/// `;` ignored.
fn baggage(value: Option<&str>) -> Map<String, Value> {
    let Some(value) = value else {
        return Map::new();
    };
    value
        .split(',')
        .filter_map(|member| {
            let pair = member.split(';').next()?;
            let (k, v) = pair.split_once('=')?;
            let v = url::form_urlencoded::parse(format!("v={}", v.trim()).as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())?;
            Some((k.trim().to_string(), Value::String(v)))
        })
        .filter(|(k, _)| !k.is_empty())
        .collect()
}

impl TraceContext {
    /// The `x-portkey-*` trace headers win over W3C `traceparent`; missing ids are generated.
    fn from_headers(headers: &HeaderMap) -> TraceContext {
        let parent = header(headers, "traceparent")
            .map(|tp| tp.split('-').collect::<Vec<_>>())
            .filter(|parts| parts.len() >= 3 && parts[1].len() == 32 && parts[2].len() == 16);
        let w3c = |i: usize| parent.as_ref().map(|p| p[i].to_string());
        TraceContext {
            trace_id: header(headers, "x-portkey-trace-id")
                .map(String::from)
                .or_else(|| w3c(1))
                .unwrap_or_else(crate::store::new_id),
            span_id: header(headers, "x-portkey-span-id")
                .map(String::from)
                .unwrap_or_else(crate::observe::record::new_span_id),
            parent_span_id: header(headers, "x-portkey-parent-span-id")
                .map(String::from)
                .or_else(|| w3c(2)),
            span_name: header(headers, "x-portkey-span-name").map(String::from),
        }
    }
}

impl Call {
    /// Takes in a request; nothing here can fail, so every request gets a record.
    pub fn new(
        state: &AppState,
        caller: &Caller,
        headers: HeaderMap,
        pathname: &str,
        raw_body: Bytes,
        endpoint: Endpoint,
        started: Instant,
    ) -> Call {
        let log_bodies = state.settings.log_bodies
            && caller.0.defaults.log_bodies != Some(false)
            && header(&headers, "x-portkey-debug") != Some("false");
        Call {
            endpoint,
            pathname: pathname.to_string(),
            body: Map::new(),
            stream: false,
            include_usage: false,
            metadata: Map::new(),
            trace: TraceContext::from_headers(&headers),
            config: None,
            headers,
            key: caller.0.clone(),
            workspace: caller
                .0
                .workspace_id
                .as_deref()
                .and_then(|id| state.workspace(id)),
            started,
            created_ms: crate::observe::record::now_ms(),
            raw_body,
            log_bodies,
            counted: Mutex::new(Vec::new()),
            attempts: Mutex::new(Vec::new()),
            deferred_hooks: Mutex::new(Vec::new()),
            recorder: Some(state.recorder.clone()),
        }
    }

    /// Reads the body, the config and the metadata.
    pub fn read(&mut self, state: &AppState) -> Result<(), GatewayError> {
        let key = self.key.clone();
        // Metadata first, so even a request refused below is recorded with it.
        let mut metadata = baggage(self.header("baggage"));
        metadata.extend(metadata_from_header(self.header("x-portkey-metadata"))?);
        // As in Portkey: workspace defaults win over key defaults, which win over the request.
        metadata.extend(key.defaults.metadata.clone());
        if let Some(workspace) = &self.workspace {
            metadata.extend(workspace.metadata.clone());
        }
        self.metadata = metadata;
        if !key.scopes.iter().any(|s| s == scopes::COMPLETIONS_WRITE) {
            return Err(GatewayError::new(
                StatusCode::FORBIDDEN,
                format!(
                    "the API key {:?} lacks the {} scope",
                    key.name,
                    scopes::COMPLETIONS_WRITE
                ),
            ));
        }
        let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(&self.raw_body) else {
            return Err(invalid("the request body must be a JSON object"));
        };
        if !self.metadata.contains_key("_user") {
            if let Some(user) = body.get("user").and_then(Value::as_str) {
                self.metadata
                    .insert("_user".into(), Value::String(user.into()));
            }
        }
        self.stream = body.get("stream").and_then(Value::as_bool) == Some(true);
        self.include_usage = body
            .get("stream_options")
            .and_then(|o| o.get("include_usage"))
            .and_then(Value::as_bool)
            == Some(true);
        self.body = body;
        self.config = match self.header("x-portkey-config") {
            Some(value) => Some(config_from_header(state, value)?),
            None => {
                let workspace_config = self.workspace.as_ref().and_then(|w| w.config_id.as_ref());
                let default = match (&key.defaults.config_id, workspace_config) {
                    (Some(slug), _) => Some(("key", slug)),
                    (None, Some(slug)) => Some(("workspace", slug)),
                    (None, None) => None,
                };
                match default {
                    Some((owner, slug)) => Some(state.config(slug).ok_or_else(|| {
                        invalid(format!(
                            "the {owner}'s default config {slug:?} no longer exists"
                        ))
                    })?),
                    None => None,
                }
            }
        };
        Ok(())
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }

    pub fn defer_hook(&self, stage: Stage, running: JoinHandle<HookResult>) {
        self.deferred_hooks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((stage, running));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_context_comes_from_portkey_then_w3c_headers() {
        let mut h = HeaderMap::new();
        h.insert(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
                .parse()
                .unwrap(),
        );
        let t = TraceContext::from_headers(&h);
        assert_eq!(t.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(t.parent_span_id.as_deref(), Some("00f067aa0ba902b7"));
        assert_eq!(t.span_id.len(), 16);
        assert_eq!(
            t.span_name, None,
            "named by the trace view from the endpoint and model"
        );
        h.insert("x-portkey-trace-id", "mine".parse().unwrap());
        h.insert("x-portkey-span-id", "s1".parse().unwrap());
        h.insert("x-portkey-parent-span-id", "p1".parse().unwrap());
        h.insert("x-portkey-span-name", "plan step".parse().unwrap());
        let t = TraceContext::from_headers(&h);
        assert_eq!((t.trace_id.as_str(), t.span_id.as_str()), ("mine", "s1"));
        assert_eq!(t.parent_span_id.as_deref(), Some("p1"));
        assert_eq!(t.span_name.as_deref(), Some("plan step"));
        let t = TraceContext::from_headers(&HeaderMap::new());
        assert_eq!(t.trace_id.len(), 36);
        assert_eq!(t.parent_span_id, None);
    }

    #[test]
    fn baggage_pairs_are_decoded_and_properties_dropped() {
        let m = baggage(Some("team=search, user%20id=a%2Cb;prop=1,bad"));
        assert_eq!(
            Value::Object(m),
            serde_json::json!({"team": "search", "user%20id": "a,b"})
        );
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
