//! Request records, traces, feedback and usage analytics: the wire types of `/v1/logs`,
//! `/v1/traces`, `/v1/feedback` and `/v1/analytics`, and the one filter they all share.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::guardrails::HookResults;

/// `kind` of a record made by the gateway for one client request.
pub const KIND_REQUEST: &str = "request";
/// `kind` of a record posted through `POST /v1/logs` (an agent's own span).
pub const KIND_CUSTOM: &str = "custom";

/// One record: a gateway request with its upstream attempts, or a custom span.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LogRecord {
    pub id: String,
    /// `request` or `custom`.
    pub kind: String,
    /// When the request arrived (RFC 3339, milliseconds, UTC).
    pub created_at: String,
    pub trace_id: String,
    pub span_id: String,
    pub parent_span_id: Option<String>,
    pub span_name: Option<String>,
    pub api_key_id: Option<String>,
    pub api_key_name: Option<String>,
    /// The slug of the integration that answered (or was last tried).
    pub integration: Option<String>,
    pub provider: Option<String>,
    /// The model as the client wrote it, e.g. `@openai-dev/gpt-4o`.
    pub model_requested: Option<String>,
    /// The model the provider reported, else the one sent to it.
    pub model: Option<String>,
    /// The path called, e.g. `/v1/chat/completions`.
    pub endpoint: String,
    pub status: u16,
    /// From arrival to the last byte of the answer (of the stream, for streams).
    pub latency_ms: f64,
    /// Streams only: from arrival to the first event sent to the client.
    pub ttft_ms: Option<f64>,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cached_tokens: u64,
    /// USD; `null` when the model has no known price (unknown, not zero).
    pub cost: Option<f64>,
    /// `DISABLED`, `MISS`, `HIT`, ... as in `x-portkey-cache-status`.
    pub cache_status: String,
    /// Retries made by the target that answered; -1 when they were used up.
    pub retry_count: i32,
    /// The JSON path of the config target that answered, e.g. `config.targets[1]`.
    pub last_used_option: Option<String>,
    #[schema(value_type = Object)]
    pub metadata: Map<String, Value>,
    pub stream: bool,
    /// `success`, `error` (the answer was not 2xx), `stream_error` (a stream broke after it
    /// began) or `client_disconnected` (the client left before the answer ended).
    pub outcome: String,
    /// The error message the client got, for answers that are not 2xx.
    pub error: Option<String>,
    /// Every upstream call, in order: retries and fallback targets.
    pub attempts: Vec<Attempt>,
    /// Whether the bodies were kept (body logging on for the server and the key).
    pub bodies_logged: bool,
    /// The guardrails' verdicts, as in a 246/446 body (async hooks' included); `null` when no
    /// hook ran.
    pub hook_results: Option<HookResults>,
    /// USD a cache hit saved: what the cached answer cost when it was first made.
    pub cost_saved: Option<f64>,
    /// Only in `GET /v1/logs/{id}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub request_body: Option<Value>,
    /// Only in `GET /v1/logs/{id}`. For streams, the answer assembled from its events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub response_body: Option<Value>,
}

/// One upstream call: a child span of its request's span.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Attempt {
    pub span_id: String,
    /// Milliseconds after the request arrived.
    pub start_offset_ms: f64,
    /// Until the answer was read (for streams, until the first event).
    pub latency_ms: f64,
    pub integration: Option<String>,
    pub provider: String,
    pub model: Option<String>,
    /// 0 for the first call to a target, 1 for its first retry, ...
    pub retry: u32,
    pub last_used_option: Option<String>,
    pub status: u16,
    pub error: Option<String>,
}

/// A page of records, newest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LogPage {
    pub object: String,
    pub data: Vec<LogRecord>,
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// `POST /v1/logs`: Portkey's custom log shape. Only `request.body` and `metadata.trace_id`
/// matter much; everything is optional.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct CustomLog {
    #[serde(default)]
    pub request: CustomRequest,
    #[serde(default)]
    pub response: CustomResponse,
    /// `trace_id`, `span_id`, `parent_span_id`, `span_name` and any metadata (strings).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub metadata: Map<String, Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct CustomRequest {
    pub url: Option<String>,
    pub method: Option<String>,
    /// Accepted for Portkey compatibility and not stored: headers may hold credentials.
    #[schema(value_type = Option<Object>)]
    pub headers: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub body: Option<Value>,
    /// A provider slug (`openai`, `anthropic`, ...), used to price the tokens.
    pub provider: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct CustomResponse {
    pub status: Option<u16>,
    #[schema(value_type = Option<Object>)]
    pub headers: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub body: Option<Value>,
    /// Milliseconds the span took.
    pub response_time: Option<f64>,
}

/// `GET /v1/logs/count`: how many records match a filter.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LogCount {
    pub object: String,
    pub total: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CustomLogsCreated {
    /// `success` once stored; `queued` while the store is unavailable (held in memory and
    /// written when it is back, within the recorder's queue limit).
    pub status: String,
    pub log_ids: Vec<String>,
}

/// `POST /v1/feedback`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreateFeedback {
    pub trace_id: String,
    /// An integer score from -10 to 10.
    pub value: i64,
    /// 0 to 1, default 1.
    #[serde(default)]
    pub weight: Option<f64>,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub metadata: Map<String, Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FeedbackCreated {
    pub status: String,
    pub message: String,
    pub feedback_ids: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Feedback {
    pub id: String,
    pub trace_id: String,
    pub value: i64,
    pub weight: f64,
    #[schema(value_type = Object)]
    pub metadata: Map<String, Value>,
    pub created_at: String,
}

/// `GET /v1/traces/{trace_id}`: the trace's spans as a tree.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Trace {
    pub object: String,
    pub trace_id: String,
    /// When the earliest span began.
    pub started_at: String,
    /// From the earliest start to the latest end.
    pub duration_ms: f64,
    /// Sum over the trace's records; `null` if any priced record's cost is unknown.
    pub cost: Option<f64>,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// The top spans: those whose parent is not in the trace.
    pub spans: Vec<Span>,
    pub feedback: Vec<Feedback>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Span {
    pub span_id: String,
    pub parent_span_id: Option<String>,
    /// `request`, `attempt`, `guardrail` (a hook of a request: 200 passed, 246 flagged, 446
    /// refused) or `custom`.
    pub kind: String,
    pub name: String,
    /// The record the span belongs to (an attempt's is its request's).
    pub log_id: String,
    /// Milliseconds after the trace began.
    pub start_offset_ms: f64,
    pub duration_ms: f64,
    pub status: u16,
    pub provider: Option<String>,
    /// The integration an attempt went to.
    pub integration: Option<String>,
    pub model: Option<String>,
    /// Why it failed, for a status that is not 2xx.
    pub error: Option<String>,
    /// On attempts: the answering attempt carries its request's tokens and cost, the others
    /// 0 (a failed call is not billed).
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cost: Option<f64>,
    #[schema(no_recursion)]
    pub children: Vec<Span>,
}

/// What `GET /v1/analytics/groups/{dimension}` groups by.
pub const GROUP_DIMENSIONS: &[&str] = &["ai-models", "providers", "users", "api-keys"];

/// One group of `GET /v1/analytics/groups/...`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UsageGroup {
    /// The model, provider, user, key name or metadata value; `null` for records without one.
    pub group: Option<String>,
    pub requests: u64,
    /// Records whose status is not 2xx.
    pub errors: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// USD over the records with a known cost.
    pub cost: f64,
    /// Records whose cost is unknown (a model without a price).
    pub cost_unknown: u64,
    pub latency_p50_ms: f64,
    pub latency_p90_ms: f64,
    pub latency_p99_ms: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UsageGroups {
    pub object: String,
    /// The dimension, e.g. `ai-models` or `metadata/team`.
    pub group_by: String,
    pub since: Option<String>,
    pub until: Option<String>,
    /// Sorted by cost, then requests, largest first.
    pub data: Vec<UsageGroup>,
}

/// A status filter: one code (`429`) or a class (`5xx`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFilter {
    Code(u16),
    Class(u16),
}

impl StatusFilter {
    pub fn parse(s: &str) -> Result<StatusFilter, String> {
        let s = s.trim();
        let bad = || format!("status {s:?} is not a status code (429) or class (5xx)");
        if let Some(class) = s.strip_suffix("xx").or_else(|| s.strip_suffix("XX")) {
            let c: u16 = class.parse().map_err(|_| bad())?;
            return (1..=5)
                .contains(&c)
                .then_some(StatusFilter::Class(c))
                .ok_or_else(bad);
        }
        let code: u16 = s.parse().map_err(|_| bad())?;
        (100..=599)
            .contains(&code)
            .then_some(StatusFilter::Code(code))
            .ok_or_else(bad)
    }

    /// The inclusive range of codes it matches.
    pub fn range(self) -> (u16, u16) {
        match self {
            StatusFilter::Code(c) => (c, c),
            StatusFilter::Class(c) => (c * 100, c * 100 + 99),
        }
    }
}

impl std::fmt::Display for StatusFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StatusFilter::Code(c) => write!(f, "{c}"),
            StatusFilter::Class(c) => write!(f, "{c}xx"),
        }
    }
}

/// The filters of `GET /v1/logs`, `/v1/logs/stream` and `/v1/analytics`, as query parameters:
/// `since`, `until` (RFC 3339, or a duration before now such as `90s`, `15m`, `1h`, `7d`),
/// `model`, `provider`, `status` (`429` or `5xx`), `api_key` (id or name), `trace_id`, `user`,
/// `metadata.KEY=VALUE` (repeatable), `min_cost`, `max_cost` (USD), `min_latency_ms`,
/// `cache_status`, `kind`; paging with `limit` (1–1000, default 50) and `cursor`;
/// `include_bodies=true` puts the request and response bodies in each listed record.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogFilter {
    pub since: Option<String>,
    pub until: Option<String>,
    pub model: Option<String>,
    pub provider: Option<String>,
    pub status: Option<StatusFilter>,
    pub api_key: Option<String>,
    pub trace_id: Option<String>,
    pub user: Option<String>,
    pub metadata: Vec<(String, String)>,
    pub min_cost: Option<f64>,
    pub max_cost: Option<f64>,
    pub min_latency_ms: Option<f64>,
    pub cache_status: Option<String>,
    pub kind: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
    pub include_bodies: bool,
}

pub const MAX_LOG_LIMIT: u32 = 1000;
pub const DEFAULT_LOG_LIMIT: u32 = 50;

impl LogFilter {
    /// Reads the filter from decoded query pairs; unknown parameters are errors.
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<LogFilter, String> {
        let mut f = LogFilter::default();
        for (key, value) in pairs {
            let number = |what: &str| -> Result<f64, String> {
                value
                    .parse::<f64>()
                    .ok()
                    .filter(|n| n.is_finite() && *n >= 0.0)
                    .ok_or_else(|| format!("{what} {value:?} is not a number ≥ 0"))
            };
            let text = || Some(value.to_string());
            match key {
                "since" => f.since = text(),
                "until" => f.until = text(),
                "model" => f.model = text(),
                "provider" => f.provider = text(),
                "status" => f.status = Some(StatusFilter::parse(value)?),
                "api_key" => f.api_key = text(),
                "trace_id" => f.trace_id = text(),
                "user" => f.user = text(),
                "min_cost" => f.min_cost = Some(number("min_cost")?),
                "max_cost" => f.max_cost = Some(number("max_cost")?),
                "min_latency_ms" => f.min_latency_ms = Some(number("min_latency_ms")?),
                "cache_status" => f.cache_status = text(),
                "kind" => f.kind = text(),
                "cursor" => f.cursor = text(),
                "include_bodies" => {
                    f.include_bodies = match value {
                        "true" | "1" => true,
                        "false" | "0" => false,
                        _ => return Err(format!("include_bodies {value:?} must be true or false")),
                    }
                }
                "limit" => {
                    let n: u32 = value
                        .parse()
                        .ok()
                        .filter(|n| (1..=MAX_LOG_LIMIT).contains(n))
                        .ok_or_else(|| {
                            format!("limit {value:?} must be a whole number from 1 to {MAX_LOG_LIMIT}")
                        })?;
                    f.limit = Some(n);
                }
                other => match other.strip_prefix("metadata.") {
                    Some(k) if !k.is_empty() => f.metadata.push((k.to_string(), value.to_string())),
                    _ => {
                        return Err(format!(
                            "unknown filter {other:?}; filters: since, until, model, provider, status, api_key, trace_id, user, metadata.KEY, min_cost, max_cost, min_latency_ms, cache_status, kind, limit, cursor, include_bodies"
                        ))
                    }
                },
            }
        }
        Ok(f)
    }

    /// The filter as query pairs, in a fixed order (the inverse of [`LogFilter::from_pairs`]).
    pub fn to_pairs(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut put = |k: &str, v: Option<String>| {
            if let Some(v) = v {
                out.push((k.to_string(), v));
            }
        };
        put("since", self.since.clone());
        put("until", self.until.clone());
        put("model", self.model.clone());
        put("provider", self.provider.clone());
        put("status", self.status.map(|s| s.to_string()));
        put("api_key", self.api_key.clone());
        put("trace_id", self.trace_id.clone());
        put("user", self.user.clone());
        put("min_cost", self.min_cost.map(|n| n.to_string()));
        put("max_cost", self.max_cost.map(|n| n.to_string()));
        put("min_latency_ms", self.min_latency_ms.map(|n| n.to_string()));
        put("cache_status", self.cache_status.clone());
        put("kind", self.kind.clone());
        put("limit", self.limit.map(|n| n.to_string()));
        put("cursor", self.cursor.clone());
        put(
            "include_bodies",
            self.include_bodies.then(|| "true".to_string()),
        );
        for (k, v) in &self.metadata {
            out.push((format!("metadata.{k}"), v.clone()));
        }
        out
    }

    pub fn limit(&self) -> u32 {
        self.limit.unwrap_or(DEFAULT_LOG_LIMIT)
    }

    /// Whether a record passes every filter but the time bounds (for live records, which are
    /// all new): the same rules the store's query applies.
    pub fn matches(&self, r: &LogRecord) -> bool {
        fn same(want: &Option<String>, have: Option<&str>) -> bool {
            want.as_deref().is_none_or(|w| have == Some(w))
        }
        let meta = |k: &str| r.metadata.get(k).and_then(Value::as_str);
        same(&self.model, r.model.as_deref())
            && same(&self.provider, r.provider.as_deref())
            && self.status.is_none_or(|s| {
                let (lo, hi) = s.range();
                (lo..=hi).contains(&r.status)
            })
            && self.api_key.as_deref().is_none_or(|k| {
                r.api_key_id.as_deref() == Some(k) || r.api_key_name.as_deref() == Some(k)
            })
            && same(&self.trace_id, Some(&r.trace_id))
            && same(&self.user, meta("_user"))
            && self.metadata.iter().all(|(k, v)| meta(k) == Some(v))
            && self.min_cost.is_none_or(|m| r.cost.is_some_and(|c| c >= m))
            && self.max_cost.is_none_or(|m| r.cost.is_some_and(|c| c <= m))
            && self.min_latency_ms.is_none_or(|m| r.latency_ms >= m)
            && self
                .cache_status
                .as_deref()
                .is_none_or(|c| r.cache_status.eq_ignore_ascii_case(c))
            && same(&self.kind, Some(&r.kind))
    }
}

/// Reads a time bound: RFC 3339, or a duration before `now` (`90s`, `15m`, `1h`, `7d`, `2w`).
pub fn parse_time_bound(
    value: &str,
    now: time::OffsetDateTime,
) -> Result<time::OffsetDateTime, String> {
    if let Some(t) = crate::store::parse_time(value) {
        return Ok(t);
    }
    let secs = super::parse_duration(value).map_err(|_| {
        format!("{value:?} is neither an RFC 3339 time (2026-12-01T09:00:00Z) nor a duration such as 90s, 15m, 1h, 7d")
    })?;
    Ok(now - time::Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_filters_read_codes_and_classes() {
        assert_eq!(StatusFilter::parse("5xx"), Ok(StatusFilter::Class(5)));
        assert_eq!(StatusFilter::parse("429").unwrap().range(), (429, 429));
        assert_eq!(StatusFilter::Class(4).range(), (400, 499));
        assert!(StatusFilter::parse("6xx").is_err());
        assert!(StatusFilter::parse("abc").is_err());
    }

    #[test]
    fn filters_round_trip_through_query_pairs() {
        let pairs = [
            ("since", "1h"),
            ("status", "5xx"),
            ("metadata.team", "search"),
            ("min_cost", "0.5"),
            ("limit", "10"),
        ];
        let f = LogFilter::from_pairs(pairs).unwrap();
        assert_eq!(f.metadata, vec![("team".to_string(), "search".to_string())]);
        let back = f.to_pairs();
        let again =
            LogFilter::from_pairs(back.iter().map(|(k, v)| (k.as_str(), v.as_str()))).unwrap();
        assert_eq!(f, again);
        assert!(LogFilter::from_pairs([("colour", "red")])
            .unwrap_err()
            .contains("unknown filter"));
        assert!(LogFilter::from_pairs([("limit", "0")]).is_err());
        assert!(LogFilter::from_pairs([("min_cost", "-1")]).is_err());
    }

    #[test]
    fn time_bounds_are_rfc3339_or_durations() {
        let now = time::macros::datetime!(2026-12-01 12:00 UTC);
        assert_eq!(
            parse_time_bound("1h", now).unwrap(),
            time::macros::datetime!(2026-12-01 11:00 UTC)
        );
        assert_eq!(
            parse_time_bound("2026-11-30T00:00:00Z", now).unwrap(),
            time::macros::datetime!(2026-11-30 0:00 UTC)
        );
        assert!(parse_time_bound("yesterday", now).is_err());
        assert!(parse_time_bound("5", now).is_err());
    }
}
