//! Records as OTLP spans, in the JSON encoding of OTLP/HTTP.
//!
//! That encoding is protobuf's JSON mapping with hex trace and span ids and integer enums;
//! 64-bit integers (times, `intValue`) are decimal strings. Attribute names follow the
//! OpenTelemetry GenAI semantic conventions, plus tollgate's own under `tollgate.`.

use std::sync::Arc;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::api::logs::{Attempt, LogRecord, KIND_REQUEST};
use crate::store::secrets::hex;

const SPAN_KIND_INTERNAL: u8 = 1;
const SPAN_KIND_SERVER: u8 = 2;
const SPAN_KIND_CLIENT: u8 = 3;
const STATUS_CODE_ERROR: u8 = 2;

/// An `ExportTraceServiceRequest` holding the records' spans: one per record, and a child span
/// per upstream attempt of a request.
pub fn encode(records: &[Arc<LogRecord>], service_name: &str) -> Value {
    let spans: Vec<Value> = records.iter().flat_map(|r| record_spans(r)).collect();
    let mut resource = Attributes::default();
    resource.put("service.name", string(service_name));
    resource.put("telemetry.sdk.name", string("tollgate"));
    json!({
        "resourceSpans": [{
            "resource": {"attributes": resource.0},
            "scopeSpans": [{
                "scope": {"name": "tollgate", "version": env!("CARGO_PKG_VERSION")},
                "spans": spans,
            }],
        }],
    })
}

/// How many spans [`encode`] makes of a record: its own and one per attempt.
pub fn spans_of(record: &LogRecord) -> usize {
    1 + record.attempts.len()
}

pub fn span_count(records: &[Arc<LogRecord>]) -> usize {
    records.iter().map(|r| spans_of(r)).sum()
}

/// A trace id as OTLP's 32 hex digits: W3C ids as they are, UUIDs without their dashes, and any
/// other string as the first 16 bytes of its SHA-256, so that every record of a trace agrees.
fn trace_id(id: &str) -> String {
    let is_uuid = id.len() == 36 && [8, 13, 18, 23].iter().all(|&i| id.as_bytes()[i] == b'-');
    let undashed = if is_uuid {
        id.replace('-', "")
    } else {
        id.to_string()
    };
    hex_id(&undashed, 16).unwrap_or_else(|| hashed_id(id, 16))
}

/// A span id as OTLP's 16 hex digits: as it is when it is one, else hashed like [`trace_id`].
fn span_id(id: &str) -> String {
    hex_id(id, 8).unwrap_or_else(|| hashed_id(id, 8))
}

/// `id` lowercased when it is `bytes` bytes in hex and not all zeros (an invalid id in OTLP).
fn hex_id(id: &str, bytes: usize) -> Option<String> {
    let valid = id.len() == bytes * 2
        && id.bytes().all(|b| b.is_ascii_hexdigit())
        && id.bytes().any(|b| b != b'0');
    valid.then(|| id.to_ascii_lowercase())
}

fn hashed_id(id: &str, bytes: usize) -> String {
    hex(&Sha256::digest(id.as_bytes())[..bytes])
}

fn record_spans(record: &LogRecord) -> Vec<Value> {
    // `created_at` is written by tollgate itself; a record whose time does not parse cannot be
    // placed on a timeline and is left out.
    let Some(start) = crate::store::parse_time(&record.created_at) else {
        return Vec::new();
    };
    let start = start.unix_timestamp_nanos();
    let trace = trace_id(&record.trace_id);
    let span = span_id(&record.span_id);
    let mut spans = vec![record_span(record, &trace, &span, start)];
    spans.extend(
        record
            .attempts
            .iter()
            .map(|a| attempt_span(record, a, &trace, &span, start)),
    );
    spans
}

fn record_span(record: &LogRecord, trace: &str, span: &str, start: i128) -> Value {
    let operation = operation_name(&record.endpoint);
    let is_request = record.kind == KIND_REQUEST;
    let model = record
        .model
        .as_deref()
        .or(record.model_requested.as_deref());
    let (name, kind) = if is_request {
        let name = span_name(operation.unwrap_or(&record.endpoint), model);
        (name, SPAN_KIND_SERVER)
    } else {
        let name = record.span_name.as_deref().unwrap_or("custom").to_string();
        (name, SPAN_KIND_INTERNAL)
    };

    let mut a = Attributes::default();
    a.put_some("gen_ai.operation.name", operation);
    a.provider(record.provider.as_deref());
    let requested = record.model_requested.as_deref().map(without_integration);
    a.put_some("gen_ai.request.model", requested);
    a.put_some("gen_ai.response.model", record.model.as_deref());
    if is_request || model.is_some() {
        a.put("gen_ai.usage.input_tokens", int(record.input_tokens));
        a.put("gen_ai.usage.output_tokens", int(record.output_tokens));
        if record.cached_tokens > 0 {
            a.put(
                "gen_ai.usage.cache_read.input_tokens",
                int(record.cached_tokens),
            );
        }
    }
    a.put("http.response.status_code", int(record.status));
    // A stream that broke after it began kept its 200, but failed all the same.
    let broken_stream = record.outcome == "stream_error";
    let error_type = match record.status {
        400.. => Some(record.status.to_string()),
        _ if broken_stream => Some(record.outcome.clone()),
        _ => None,
    };
    if let Some(error_type) = &error_type {
        a.put("error.type", string(error_type));
    }
    a.put("tollgate.log_id", string(&record.id));
    if let Some(cost) = record.cost {
        a.put("tollgate.cost_usd", json!({ "doubleValue": cost }));
    }
    a.put("tollgate.cache_status", string(&record.cache_status));
    a.put("tollgate.retry_count", int(record.retry_count));
    a.put_some("tollgate.integration", record.integration.as_deref());
    a.put_some("tollgate.api_key_id", record.api_key_id.as_deref());
    a.put_some(
        "tollgate.last_used_option",
        record.last_used_option.as_deref(),
    );
    a.put("tollgate.outcome", string(&record.outcome));
    a.put("tollgate.stream", json!({ "boolValue": record.stream }));
    for (key, value) in &record.metadata {
        if let Some(value) = metadata_value(value) {
            a.put(&format!("tollgate.metadata.{key}"), value);
        }
    }

    Span {
        trace_id: trace,
        span_id: span.to_string(),
        parent_span_id: record.parent_span_id.as_deref().map(span_id),
        name,
        kind,
        start,
        end: after(start, record.latency_ms),
        attributes: a,
        error: error_type.map(|_| record.error.clone()),
    }
    .into_json()
}

fn attempt_span(
    record: &LogRecord,
    attempt: &Attempt,
    trace: &str,
    parent: &str,
    request_start: i128,
) -> Value {
    let operation = operation_name(&record.endpoint);
    let start = after(request_start, attempt.start_offset_ms);
    let failed = attempt.status >= 400;

    let mut a = Attributes::default();
    a.put_some("gen_ai.operation.name", operation);
    a.provider(Some(&attempt.provider));
    a.put_some("gen_ai.request.model", attempt.model.as_deref());
    a.put("http.response.status_code", int(attempt.status));
    if failed {
        a.put("error.type", string(&attempt.status.to_string()));
    }
    a.put("tollgate.log_id", string(&record.id));
    a.put_some("tollgate.integration", attempt.integration.as_deref());
    a.put_some(
        "tollgate.last_used_option",
        attempt.last_used_option.as_deref(),
    );
    a.put("tollgate.attempt.retry", int(attempt.retry));

    Span {
        trace_id: trace,
        span_id: span_id(&attempt.span_id),
        parent_span_id: Some(parent.to_string()),
        name: span_name(
            operation.unwrap_or(&record.endpoint),
            attempt.model.as_deref(),
        ),
        kind: SPAN_KIND_CLIENT,
        start,
        end: after(start, attempt.latency_ms),
        attributes: a,
        error: failed.then(|| attempt.error.clone()),
    }
    .into_json()
}

/// The GenAI operation an endpoint performs; custom records may hold a full URL.
fn operation_name(endpoint: &str) -> Option<&'static str> {
    [
        ("/v1/chat/completions", "chat"),
        ("/v1/completions", "text_completion"),
        ("/v1/embeddings", "embeddings"),
        ("/v1/responses", "chat"),
    ]
    .into_iter()
    .find(|(path, _)| endpoint.ends_with(path))
    .map(|(_, operation)| operation)
}

/// `{operation} {model}`, as GenAI spans are named.
fn span_name(operation: &str, model: Option<&str>) -> String {
    match model {
        Some(model) => format!("{operation} {model}"),
        None => operation.to_string(),
    }
}

/// `gpt-4o` for `@openai-dev/gpt-4o`: the model without the integration it was addressed to.
fn without_integration(model: &str) -> &str {
    match model.strip_prefix('@').and_then(|m| m.split_once('/')) {
        Some((_, model)) => model,
        None => model,
    }
}

/// `start` plus `ms` milliseconds, in nanoseconds.
fn after(start: i128, ms: f64) -> i128 {
    start + (ms.max(0.0) * 1e6).round() as i128
}

struct Span<'a> {
    trace_id: &'a str,
    span_id: String,
    parent_span_id: Option<String>,
    name: String,
    kind: u8,
    start: i128,
    end: i128,
    attributes: Attributes,
    /// `Some` when the span failed, with the message when there is one.
    error: Option<Option<String>>,
}

impl Span<'_> {
    fn into_json(self) -> Value {
        let mut span = json!({
            "traceId": self.trace_id,
            "spanId": self.span_id,
            "name": self.name,
            "kind": self.kind,
            "startTimeUnixNano": self.start.to_string(),
            "endTimeUnixNano": self.end.to_string(),
            "attributes": self.attributes.0,
        });
        if let Some(parent) = self.parent_span_id {
            span["parentSpanId"] = parent.into();
        }
        if let Some(message) = self.error {
            span["status"] = match message {
                Some(message) => json!({"code": STATUS_CODE_ERROR, "message": message}),
                None => json!({ "code": STATUS_CODE_ERROR }),
            };
        }
        span
    }
}

/// `KeyValue`s, in the order they were put.
#[derive(Default)]
struct Attributes(Vec<Value>);

impl Attributes {
    fn put(&mut self, key: &str, value: Value) {
        self.0.push(json!({"key": key, "value": value}));
    }

    fn put_some(&mut self, key: &str, value: Option<&str>) {
        if let Some(value) = value {
            self.put(key, string(value));
        }
    }

    /// The provider, under both its current name and the older `gen_ai.system` that many
    /// backends still read.
    fn provider(&mut self, provider: Option<&str>) {
        let provider = provider.filter(|p| !p.is_empty());
        self.put_some("gen_ai.provider.name", provider);
        self.put_some("gen_ai.system", provider);
    }
}

fn string(value: &str) -> Value {
    json!({ "stringValue": value })
}

fn int(value: impl Into<i128>) -> Value {
    json!({ "intValue": value.into().to_string() })
}

/// A metadata value as an attribute value: scalars as they are, arrays of one scalar type as
/// arrays, anything else as its JSON text; `null` as nothing.
fn metadata_value(value: &Value) -> Option<Value> {
    match value {
        Value::Null => None,
        Value::Array(items) => {
            let scalars: Option<Vec<Value>> = items.iter().map(scalar).collect();
            let kind = |v: &Value| v.as_object().and_then(|o| o.keys().next().cloned());
            match scalars {
                Some(values) if values.windows(2).all(|w| kind(&w[0]) == kind(&w[1])) => {
                    Some(json!({"arrayValue": {"values": values}}))
                }
                _ => Some(string(&value.to_string())),
            }
        }
        Value::Object(_) => Some(string(&value.to_string())),
        scalar_value => scalar(scalar_value),
    }
}

fn scalar(value: &Value) -> Option<Value> {
    match value {
        Value::String(s) => Some(string(s)),
        Value::Bool(b) => Some(json!({ "boolValue": b })),
        Value::Number(n) => Some(match n.as_i64() {
            Some(i) => int(i),
            None => json!({ "doubleValue": n.as_f64()? }),
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Map;

    use super::*;
    use crate::observe::test_support::{attempt, custom, request};

    fn encoded_spans(records: Vec<LogRecord>) -> Vec<Value> {
        let records: Vec<Arc<LogRecord>> = records.into_iter().map(Arc::new).collect();
        let encoded = encode(&records, "gateway");
        encoded["resourceSpans"][0]["scopeSpans"][0]["spans"]
            .as_array()
            .unwrap()
            .clone()
    }

    /// The `value` of the attribute `key`.
    fn attr<'a>(attributes: &'a Value, key: &str) -> Option<&'a Value> {
        attributes
            .as_array()
            .unwrap()
            .iter()
            .find(|kv| kv["key"] == key)
            .map(|kv| &kv["value"])
    }

    fn span_attr<'a>(span: &'a Value, key: &str) -> Option<&'a Value> {
        attr(&span["attributes"], key)
    }

    #[test]
    fn ids_map_to_otlp_hex() {
        let w3c = "4BF92F3577B34DA6A3CE929D0E0E4736";
        assert_eq!(trace_id(w3c), w3c.to_ascii_lowercase());
        assert_eq!(
            trace_id("123e4567-e89b-12d3-a456-426614174000"),
            "123e4567e89b12d3a456426614174000"
        );
        // Any other string: the first 16 bytes of its SHA-256 (checked with Python's hashlib).
        assert_eq!(trace_id("my-trace"), "670c0f140bf357e6d99293ad6cf0d246");
        assert_eq!(trace_id("0".repeat(32).as_str()).len(), 32);
        assert_ne!(trace_id(&"0".repeat(32)), "0".repeat(32));

        assert_eq!(span_id("00F067AA0BA902B7"), "00f067aa0ba902b7");
        assert_eq!(span_id("agent-step-1"), "861016f771f7f46d");
        assert_ne!(span_id(&"0".repeat(16)), "0".repeat(16));
    }

    #[test]
    fn a_request_is_a_server_span_with_its_attempts_as_client_children() {
        let mut r = request();
        r.attempts = vec![
            attempt("1111111111111111", 0.5, 300.0, 503),
            attempt("2222222222222222", 800.0, 399.5, 200),
        ];
        let mut agent_step = custom();
        agent_step.trace_id = r.trace_id.to_ascii_uppercase();
        let spans = encoded_spans(vec![r, agent_step]);
        assert_eq!(spans.len(), 4);
        let [request_span, first, second, custom_span] = &spans[..] else {
            unreachable!()
        };

        for span in &spans {
            assert_eq!(span["traceId"], "4bf92f3577b34da6a3ce929d0e0e4736");
        }
        assert_eq!(request_span["spanId"], "00f067aa0ba902b7");
        assert_eq!(request_span["name"], "chat gpt-4o-2024-08-06");
        assert_eq!(request_span["kind"], 2);
        assert!(request_span.get("parentSpanId").is_none());

        assert_eq!(first["spanId"], "1111111111111111");
        assert_eq!(second["spanId"], "2222222222222222");
        for child in [first, second] {
            assert_eq!(child["parentSpanId"], "00f067aa0ba902b7");
            assert_eq!(child["kind"], 3);
            assert_eq!(child["name"], "chat gpt-4o");
        }

        // A custom span joins the trace under the span its parent id names.
        assert_eq!(custom_span["kind"], 1);
        assert_eq!(custom_span["name"], "plan");
        assert_eq!(custom_span["spanId"], "861016f771f7f46d");
        assert_eq!(custom_span["parentSpanId"], "00f067aa0ba902b7");
        assert!(span_attr(custom_span, "gen_ai.usage.input_tokens").is_none());
        let mut unnamed = custom();
        unnamed.span_name = None;
        assert_eq!(encoded_spans(vec![unnamed])[0]["name"], "custom");
    }

    #[test]
    fn times_are_unix_nanoseconds_as_decimal_strings() {
        let mut r = request();
        r.attempts = vec![attempt("1111111111111111", 12.5, 1000.25, 200)];
        let spans = encoded_spans(vec![r]);
        // 2026-12-01T09:00:00.250Z, then 1200 ms of latency.
        assert_eq!(spans[0]["startTimeUnixNano"], "1796115600250000000");
        assert_eq!(spans[0]["endTimeUnixNano"], "1796115601450000000");
        assert_eq!(spans[1]["startTimeUnixNano"], "1796115600262500000");
        assert_eq!(spans[1]["endTimeUnixNano"], "1796115601262750000");
    }

    #[test]
    fn attributes_follow_the_genai_conventions() {
        let mut r = request();
        let metadata = json!({"team": "search", "tries": 3, "ratio": 0.5, "flag": true,
            "tags": ["a", "b"], "mixed": [1, "a"], "nested": {"k": "v"}, "gone": null});
        r.metadata = serde_json::from_value::<Map<String, Value>>(metadata).unwrap();
        r.cost = Some(0.0125);
        let encoded = encode(&[Arc::new(r)], "gateway");
        let resource = &encoded["resourceSpans"][0]["resource"]["attributes"];
        assert_eq!(
            attr(resource, "service.name").unwrap()["stringValue"],
            "gateway"
        );
        assert_eq!(
            attr(resource, "telemetry.sdk.name").unwrap()["stringValue"],
            "tollgate"
        );
        let scope = &encoded["resourceSpans"][0]["scopeSpans"][0]["scope"];
        assert_eq!(scope["name"], "tollgate");
        assert_eq!(scope["version"], env!("CARGO_PKG_VERSION"));

        let span = &encoded["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
        let string = |key: &str| span_attr(span, key).map(|v| v["stringValue"].clone());
        let int = |key: &str| span_attr(span, key).map(|v| v["intValue"].clone());
        assert_eq!(string("gen_ai.operation.name"), Some(json!("chat")));
        assert_eq!(string("gen_ai.provider.name"), Some(json!("openai")));
        assert_eq!(string("gen_ai.system"), Some(json!("openai")));
        assert_eq!(string("gen_ai.request.model"), Some(json!("gpt-4o")));
        assert_eq!(
            string("gen_ai.response.model"),
            Some(json!("gpt-4o-2024-08-06"))
        );
        assert_eq!(int("gen_ai.usage.input_tokens"), Some(json!("100")));
        assert_eq!(int("gen_ai.usage.output_tokens"), Some(json!("20")));
        assert_eq!(
            int("gen_ai.usage.cache_read.input_tokens"),
            Some(json!("40"))
        );
        assert_eq!(int("http.response.status_code"), Some(json!("200")));
        assert_eq!(span_attr(span, "error.type"), None);
        assert!(span.get("status").is_none());
        assert_eq!(string("tollgate.log_id"), Some(json!("log_1")));
        assert_eq!(
            span_attr(span, "tollgate.cost_usd"),
            Some(&json!({"doubleValue": 0.0125}))
        );
        assert_eq!(string("tollgate.cache_status"), Some(json!("MISS")));
        assert_eq!(int("tollgate.retry_count"), Some(json!("0")));
        assert_eq!(string("tollgate.integration"), Some(json!("openai-dev")));
        assert_eq!(string("tollgate.api_key_id"), Some(json!("key_1")));
        assert_eq!(
            string("tollgate.last_used_option"),
            Some(json!("config.targets[0]"))
        );

        let meta = |key: &str| span_attr(span, &format!("tollgate.metadata.{key}")).cloned();
        assert_eq!(meta("team"), Some(json!({"stringValue": "search"})));
        assert_eq!(meta("tries"), Some(json!({"intValue": "3"})));
        assert_eq!(meta("ratio"), Some(json!({"doubleValue": 0.5})));
        assert_eq!(meta("flag"), Some(json!({"boolValue": true})));
        assert_eq!(
            meta("tags"),
            Some(json!({"arrayValue": {"values": [{"stringValue": "a"}, {"stringValue": "b"}]}}))
        );
        assert_eq!(meta("mixed"), Some(json!({"stringValue": "[1,\"a\"]"})));
        assert_eq!(
            meta("nested"),
            Some(json!({"stringValue": "{\"k\":\"v\"}"}))
        );
        assert_eq!(meta("gone"), None);

        let request_spans = encoded_spans(vec![request()]);
        let retry = span_attr(&request_spans[1], "tollgate.attempt.retry").unwrap();
        assert_eq!(retry["intValue"], "0");
        let sent_model = span_attr(&request_spans[1], "gen_ai.request.model").unwrap();
        assert_eq!(sent_model["stringValue"], "gpt-4o");
    }

    #[test]
    fn failures_have_an_error_status_and_type() {
        let mut r = request();
        r.status = 429;
        r.outcome = "error".into();
        r.error = Some("rate limited".into());
        r.cost = None;
        r.attempts = vec![attempt("1111111111111111", 0.0, 10.0, 429)];
        let failed = encoded_spans(vec![r]);
        assert_eq!(
            failed[0]["status"],
            json!({"code": 2, "message": "rate limited"})
        );
        assert_eq!(
            span_attr(&failed[0], "error.type").unwrap()["stringValue"],
            "429"
        );
        assert!(span_attr(&failed[0], "tollgate.cost_usd").is_none());
        assert_eq!(
            failed[1]["status"],
            json!({"code": 2, "message": "upstream answered 429"})
        );
        assert_eq!(
            span_attr(&failed[1], "error.type").unwrap()["stringValue"],
            "429"
        );

        let mut broken = request();
        broken.outcome = "stream_error".into();
        let broken = encoded_spans(vec![broken]);
        assert_eq!(broken[0]["status"], json!({ "code": 2 }));
        assert_eq!(
            span_attr(&broken[0], "error.type").unwrap()["stringValue"],
            "stream_error"
        );
    }
}
