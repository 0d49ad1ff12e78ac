//! Records, a store state and a reader of Prometheus text, for the tests of the metrics and the OTLP export.

use serde_json::Map;

use crate::api::logs::{Attempt, LogRecord, KIND_CUSTOM, KIND_REQUEST};

/// A successful chat completion on `openai`, answered at the first call.
pub fn request() -> LogRecord {
    LogRecord {
        id: "log_1".into(),
        kind: KIND_REQUEST.into(),
        created_at: "2026-12-01T09:00:00.250Z".into(),
        trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
        span_id: "00f067aa0ba902b7".into(),
        parent_span_id: None,
        span_name: None,
        api_key_id: Some("key_1".into()),
        api_key_name: Some("ci".into()),
        integration: Some("openai-dev".into()),
        provider: Some("openai".into()),
        model_requested: Some("@openai-dev/gpt-4o".into()),
        model: Some("gpt-4o-2024-08-06".into()),
        endpoint: "/v1/chat/completions".into(),
        status: 200,
        latency_ms: 1200.0,
        ttft_ms: None,
        input_tokens: 100,
        output_tokens: 20,
        cached_tokens: 40,
        cost: Some(0.0005),
        cache_status: "MISS".into(),
        retry_count: 0,
        last_used_option: Some("config.targets[0]".into()),
        metadata: Map::new(),
        stream: false,
        outcome: "success".into(),
        error: None,
        attempts: vec![attempt("1111111111111111", 0.5, 1199.0, 200)],
        bodies_logged: false,
        hook_results: None,
        cost_saved: None,
        request_body: None,
        response_body: None,
    }
}

/// A call to `openai` starting `start_offset_ms` after its request arrived.
/// A gateway request made at `created_ms` (its id carries that time), as the recorder gets it,
/// with `team` metadata and without bodies.
pub fn entry_at(created_ms: i64, team: &str) -> crate::observe::record::Entry {
    let mut record = request();
    record.id = crate::store::new_id_at(created_ms);
    record.metadata.insert("team".into(), team.into());
    crate::observe::record::Entry {
        record,
        created_ms,
        request_body: None,
        response_body: None,
        hook_results_json: None,
    }
}

pub fn attempt(span_id: &str, start_offset_ms: f64, latency_ms: f64, status: u16) -> Attempt {
    Attempt {
        span_id: span_id.into(),
        start_offset_ms,
        latency_ms,
        integration: Some("openai-dev".into()),
        provider: "openai".into(),
        model: Some("gpt-4o".into()),
        retry: 0,
        last_used_option: Some("config.targets[0]".into()),
        status,
        error: (status >= 400).then(|| format!("upstream answered {status}")),
    }
}

/// An agent's own span, posted to `/v1/logs`.
pub fn custom() -> LogRecord {
    LogRecord {
        id: "log_2".into(),
        kind: KIND_CUSTOM.into(),
        span_id: "agent-step-1".into(),
        parent_span_id: Some("00f067aa0ba902b7".into()),
        span_name: Some("plan".into()),
        api_key_id: None,
        api_key_name: None,
        integration: None,
        provider: None,
        model_requested: None,
        model: None,
        endpoint: String::new(),
        latency_ms: 30.0,
        input_tokens: 0,
        output_tokens: 0,
        cached_tokens: 0,
        cost: None,
        cache_status: "DISABLED".into(),
        last_used_option: None,
        attempts: Vec::new(),
        ..request()
    }
}

/// The value of the sample whose name and labels are exactly `series`.
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.parse().unwrap())
}

/// The store's state while it takes writes, with `held` records waiting.
pub fn store_taking_writes(held: usize) -> crate::observe::recorder::Snapshot {
    crate::observe::recorder::Snapshot {
        refused: None,
        since_ms: 0,
        held,
        dropped: 0,
        limit: crate::observe::recorder::Limit::default(),
    }
}
