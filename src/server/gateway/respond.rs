//! What the gateway answers: a provider's (translated) answer or the gateway's own error, with
//! Portkey's response headers.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::stream::Forwarder;
use crate::api::guardrails::HookResults;
use crate::cache;
use crate::gateway::providers::adapter::Usage;
use crate::observe::pricing::Price;

/// A failure of the gateway itself (bad request, unknown config, no route). It stops a
/// fallback chain: another target would fail the same way.
#[derive(Debug)]
pub struct GatewayError {
    pub status: StatusCode,
    pub message: String,
    pub errors: Vec<String>,
}

impl GatewayError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        GatewayError {
            status,
            message: message.into(),
            errors: Vec::new(),
        }
    }

    pub fn with_errors(mut self, errors: Vec<String>) -> Self {
        self.errors = errors;
        self
    }

    /// Portkey's `{"status":"failure","message"}` plus an OpenAI-style `error`, so both the
    /// Portkey and the OpenAI SDKs read it.
    pub fn body(&self) -> Value {
        let kind = match self.status.as_u16() {
            401 => "authentication_error",
            403 => "permission_error",
            404 => "not_found_error",
            500..=599 => "server_error",
            _ => "invalid_request_error",
        };
        let mut body = json!({
            "status": "failure",
            "message": self.message,
            "error": {"message": self.message, "type": kind, "param": null, "code": null},
        });
        if !self.errors.is_empty() {
            body["errors"] = json!(self.errors);
        }
        body
    }
}

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(self.body())).into_response()
    }
}

pub enum AnswerBody {
    Json(Value),
    /// A JSON answer passed on exactly as the provider sent it.
    RawJson(axum::body::Bytes),
    /// Committed: its first event is ready.
    Stream(Box<Forwarder>),
    /// A stream's frames from the cache, sent as they are.
    Replay(Vec<axum::body::Bytes>),
}

/// How an answer met the cache, for `x-portkey-cache-status` and the record.
#[derive(Debug, Clone, Copy)]
pub struct CacheNote {
    pub status: cache::Status,
    /// On a hit: what the cached answer cost when it was made.
    pub saved: Option<f64>,
}

/// What the upstream that answered was sent and reported, for the record.
#[derive(Debug, Clone, Default)]
pub struct Served {
    pub integration: Option<String>,
    /// The model as sent to the provider (the bare id).
    pub model: Option<String>,
    pub price: Option<Price>,
    /// For streams, known only at the end.
    pub usage: Option<Usage>,
}

/// The outcome of a request (or of one target, while a strategy is still choosing).
pub struct Answer {
    pub status: u16,
    pub body: AnswerBody,
    pub provider: Option<&'static str>,
    /// Retries made by the target that answered; -1 when they were all used up.
    pub retry_count: i32,
    /// The JSON path of the target that answered, e.g. `config.targets[1]`.
    pub path: Option<String>,
    /// A gateway-side failure: stops fallback.
    pub gateway_exception: bool,
    /// Copied from an upstream 429, so clients can back off.
    pub retry_after: Option<HeaderValue>,
    /// How long the upstream asked to wait before a retry.
    pub retry_wait: Option<std::time::Duration>,
    /// Set on answers that came from an upstream.
    pub served: Option<Served>,
    /// `None`: no cache applied (`DISABLED`).
    pub cache: Option<CacheNote>,
    /// What the guardrails said, when any ran.
    pub hook_results: Option<HookResults>,
    /// Whether the client's body gets `hook_results` (kept out of the body until it is
    /// written, so the record does not hold them twice).
    pub results_in_body: bool,
}

impl Answer {
    pub fn from_error(e: GatewayError, path: Option<String>) -> Answer {
        Answer {
            path,
            gateway_exception: true,
            ..Answer::from_status(e.status.as_u16(), e.body(), None)
        }
    }

    /// An answer of the gateway's own that a fallback may move past (unlike an error).
    pub fn from_status(status: u16, body: Value, provider: Option<&'static str>) -> Answer {
        Answer {
            status,
            body: AnswerBody::Json(body),
            provider,
            retry_count: 0,
            path: None,
            gateway_exception: false,
            retry_after: None,
            retry_wait: None,
            served: None,
            hook_results: None,
            results_in_body: false,
            cache: None,
        }
    }

    /// The message of an OpenAI-shaped error body.
    pub fn error_message(&self) -> Option<String> {
        match &self.body {
            AnswerBody::Json(v) if !self.is_success() => v
                .pointer("/error/message")
                .or_else(|| v.get("message"))
                .and_then(Value::as_str)
                .map(String::from),
            _ => None,
        }
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    pub fn into_response(self, trace_id: &str) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_GATEWAY);
        let mut response = match self.body {
            AnswerBody::Json(v) => (status, axum::Json(v)).into_response(),
            AnswerBody::RawJson(bytes) => (
                status,
                [("content-type", HeaderValue::from_static("application/json"))],
                bytes,
            )
                .into_response(),
            AnswerBody::Stream(forwarder) => event_stream(status, forwarder.into_body()),
            AnswerBody::Replay(frames) => {
                let frames =
                    futures_util::stream::iter(frames.into_iter().map(Ok::<_, std::io::Error>));
                event_stream(status, axum::body::Body::from_stream(frames))
            }
        };
        let h = response.headers_mut();
        if let Ok(v) = HeaderValue::from_str(trace_id) {
            h.insert("x-portkey-trace-id", v);
        }
        if let Some(Ok(v)) = self.path.as_deref().map(HeaderValue::from_str) {
            h.insert("x-portkey-last-used-option-index", v);
        }
        h.insert(
            "x-portkey-retry-attempt-count",
            HeaderValue::from(self.retry_count),
        );
        if let Some(p) = self.provider {
            h.insert("x-portkey-provider", HeaderValue::from_static(p));
        }
        if let Some(v) = self.retry_after {
            h.insert("retry-after", v);
        }
        let cache_status = self.cache.map_or("DISABLED", |c| c.status.as_str());
        h.insert(
            "x-portkey-cache-status",
            HeaderValue::from_static(cache_status),
        );
        response
    }
}

fn event_stream(status: StatusCode, body: axum::body::Body) -> Response {
    let mut r = Response::new(body);
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        "content-type",
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert("cache-control", HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    r
}
