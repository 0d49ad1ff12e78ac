//! A record on its way from a request to the store: the wire record, plus what is kept beside
//! it (the time as a number, the bodies as the bytes that went over the wire).

use axum::body::Bytes;
use serde_json::{Map, Value};

use crate::api::logs::LogRecord;
use crate::gateway::providers::adapter::Usage;

pub struct Entry {
    /// Without bodies: they travel as bytes and are stored apart.
    pub record: LogRecord,
    /// `record.created_at` in milliseconds since the Unix epoch.
    pub created_ms: i64,
    pub request_body: Option<Bytes>,
    pub response_body: Option<Bytes>,
    /// `record.hook_results` already encoded (for the client's body), so the writer does not
    /// encode them again; `None` when they were not, or have changed since.
    pub hook_results_json: Option<String>,
}

/// The most of one body a record keeps; the rest is cut (and the stored text is then no
/// longer JSON, so it reads back as a string).
pub const MAX_LOGGED_BODY: usize = 1024 * 1024;

/// A body as the record keeps it: its own allocation of at most [`MAX_LOGGED_BODY`] bytes, so
/// a queued record never holds on to the (larger) buffer the body arrived in.
pub fn kept_body(bytes: &[u8]) -> Bytes {
    Bytes::copy_from_slice(&bytes[..bytes.len().min(MAX_LOGGED_BODY)])
}

/// A JSON body as the record keeps it; see [`kept_body`].
pub fn kept_json(value: &serde_json::Value) -> Bytes {
    kept_body(&serde_json::to_vec(value).unwrap_or_default())
}

/// A duration in (fractional) milliseconds, as records show them.
pub fn millis(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Metadata as Portkey keeps it: every value a string (numbers and other JSON as their text).
pub fn metadata_strings(map: Map<String, Value>) -> Map<String, Value> {
    map.into_iter()
        .map(|(k, v)| match v {
            Value::String(_) => (k, v),
            other => (k, Value::String(other.to_string())),
        })
        .collect()
}

/// A record of `kind` made at `created_ms` with a new id and nothing else known yet.
pub fn blank(kind: &str, created_ms: i64) -> LogRecord {
    LogRecord {
        id: crate::store::new_id_at(created_ms),
        kind: kind.to_string(),
        created_at: format_ms(created_ms),
        trace_id: String::new(),
        span_id: String::new(),
        parent_span_id: None,
        span_name: None,
        api_key_id: None,
        api_key_name: None,
        integration: None,
        provider: None,
        model_requested: None,
        model: None,
        endpoint: String::new(),
        status: 0,
        latency_ms: 0.0,
        ttft_ms: None,
        input_tokens: 0,
        output_tokens: 0,
        cached_tokens: 0,
        cost: None,
        cache_status: "DISABLED".to_string(),
        retry_count: 0,
        last_used_option: None,
        metadata: Default::default(),
        stream: false,
        outcome: String::new(),
        error: None,
        attempts: Vec::new(),
        bodies_logged: false,
        hook_results: None,
        cost_saved: None,
        request_body: None,
        response_body: None,
    }
}

/// Copies a usage's token counts into a record.
pub fn set_tokens(record: &mut LogRecord, usage: Usage) {
    record.input_tokens = usage.prompt_tokens;
    record.output_tokens = usage.completion_tokens;
    record.cached_tokens = usage.cached_tokens;
}

/// The current time in milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// RFC 3339 with milliseconds, UTC: `2026-12-01T09:30:00.123Z`.
pub fn format_ms(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let (y, mo, d) = (t.year(), u8::from(t.month()), t.day());
    let (h, mi, s) = (t.hour(), t.minute(), t.second());
    format!(
        "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{:03}Z",
        t.millisecond()
    )
}

/// A new span id: 16 hex digits, as W3C trace context spells them.
pub fn new_span_id() -> String {
    crate::store::secrets::hex(&rand::random::<[u8; 8]>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_print_with_milliseconds() {
        assert_eq!(format_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_ms(1_764_581_400_123), "2025-12-01T09:30:00.123Z");
    }

    #[test]
    fn kept_bodies_are_cut_at_the_limit() {
        assert_eq!(kept_body(b"{}").as_ref(), b"{}");
        assert_eq!(
            kept_body(&vec![b'x'; MAX_LOGGED_BODY + 10]).len(),
            MAX_LOGGED_BODY
        );
    }

    #[test]
    fn span_ids_are_16_hex_digits() {
        let id = new_span_id();
        assert_eq!(id.len(), 16);
        assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(id, new_span_id());
    }
}
