//! Request records: list, count, one record, a live stream, and custom records posted by agents.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::Value;
use tokio::sync::broadcast::error::RecvError;

use crate::api::error::ErrorBody;
use crate::api::logs::{
    CustomLog, CustomLogsCreated, LogCount, LogFilter, LogPage, LogRecord, KIND_CUSTOM,
};
use crate::api::scopes;
use crate::gateway::providers::adapter::Usage;
use crate::observe::pricing;
use crate::observe::record::{
    blank, kept_json, metadata_strings, new_span_id, now_ms, set_tokens, Entry,
};
use crate::observe::recorder::Committed;
use crate::server::auth::Caller;
use crate::server::error::{ApiError, ApiResult};
use crate::server::state::AppState;
use crate::store::{Store, StoreResult};

type S = State<Arc<AppState>>;

/// The filter of a query string; see [`LogFilter`].
pub fn filter(query: Option<&str>) -> ApiResult<LogFilter> {
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .into_owned()
        .collect();
    LogFilter::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .map_err(ApiError::invalid)
}

/// Runs a store read off the async workers: log queries may take tens of milliseconds.
pub async fn read<T: Send + 'static>(
    state: &Arc<AppState>,
    f: impl FnOnce(&Store) -> StoreResult<T> + Send + 'static,
) -> ApiResult<T> {
    let state = state.clone();
    tokio::task::spawn_blocking(move || f(&state.store))
        .await
        .map_err(|e| ApiError::internal(format!("log query failed: {e}")))?
        .map_err(ApiError::from)
}

#[utoipa::path(get, path = "/v1/logs", tag = "logs",
    description = "Records newest first. Query filters: since, until (RFC 3339 or a duration such as 1h), model, provider, status (429 or 5xx), api_key, trace_id, user, metadata.KEY=VALUE, min_cost, max_cost, min_latency_ms, cache_status, kind, limit (1-1000), cursor, include_bodies.",
    responses((status = 200, body = LogPage), (status = 400, body = ErrorBody)))]
pub async fn list(
    State(state): S,
    caller: Caller,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<LogPage>> {
    caller.require(scopes::LOGS_LIST)?;
    let f = filter(q.as_deref())?;
    let (data, next_cursor) = read(&state, move |s| s.logs(&f)).await?;
    Ok(Json(LogPage {
        object: "list".into(),
        data,
        next_cursor,
    }))
}

#[utoipa::path(get, path = "/v1/logs/count", tag = "logs",
    description = "How many records match the filters of GET /v1/logs.",
    responses((status = 200, body = LogCount), (status = 400, body = ErrorBody)))]
pub async fn count(
    State(state): S,
    caller: Caller,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<LogCount>> {
    caller.require(scopes::LOGS_LIST)?;
    let f = filter(q.as_deref())?;
    let total = read(&state, move |s| s.log_count(&f)).await?;
    Ok(Json(LogCount {
        object: "count".into(),
        total,
    }))
}

#[utoipa::path(get, path = "/v1/logs/{id}", tag = "logs",
    responses((status = 200, body = LogRecord), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): S,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<LogRecord>> {
    caller.require(scopes::LOGS_VIEW)?;
    Ok(Json(read(&state, move |s| s.log(&id)).await?))
}

fn custom_entry(log: CustomLog, caller: &Caller, log_bodies: bool) -> Entry {
    let CustomLog {
        request,
        response,
        metadata,
    } = log;
    let mut metadata = metadata_strings(metadata);
    let mut take = |k: &str| match metadata.remove(k) {
        Some(Value::String(s)) => Some(s),
        _ => None,
    };
    let trace_id = take("trace_id").unwrap_or_else(crate::store::new_id);
    let span_id = take("span_id").unwrap_or_else(new_span_id);
    let parent_span_id = take("parent_span_id");
    let span_name = take("span_name");
    let latency_ms = response.response_time.unwrap_or(0.0).max(0.0);
    let created_ms = now_ms() - latency_ms as i64;
    let status = response.status.unwrap_or(200);
    let model_requested = request
        .body
        .as_ref()
        .and_then(|b| b.get("model"))
        .and_then(Value::as_str)
        .map(String::from);
    let model = model_requested
        .as_deref()
        .map(|m| crate::gateway::model::parse(m).model.to_string());
    let usage = response
        .body
        .as_ref()
        .and_then(|b| b.get("usage"))
        .and_then(Usage::from_openai);
    let success = (200..300).contains(&status);
    let cost = match (&model, usage) {
        // A tool or agent step, not a model call: nothing to pay.
        (None, _) => Some(0.0),
        (Some(m), Some(u)) => request
            .provider
            .as_deref()
            .and_then(|p| pricing::lookup(p, m))
            .map(|i| pricing::cost_usd(i, u)),
        (Some(_), None) if !success => Some(0.0),
        (Some(_), None) => None,
    };
    let error = response
        .body
        .as_ref()
        .and_then(|b| b.pointer("/error/message"))
        .and_then(Value::as_str)
        .map(String::from);
    let endpoint = request
        .url
        .as_deref()
        .map(|u| url::Url::parse(u).map_or_else(|_| u.to_string(), |p| p.path().to_string()))
        .unwrap_or_else(|| "custom".into());
    let json = |v: &Option<Value>| v.as_ref().filter(|_| log_bodies).map(kept_json);
    let (request_body, response_body) = (json(&request.body), json(&response.body));
    let mut record = LogRecord {
        trace_id,
        span_id,
        parent_span_id,
        span_name,
        api_key_id: Some(caller.0.id.clone()),
        api_key_name: Some(caller.0.name.clone()),
        provider: request.provider,
        model_requested,
        model,
        endpoint,
        status,
        latency_ms,
        cost,
        metadata,
        outcome: if success { "success" } else { "error" }.into(),
        error,
        bodies_logged: request_body.is_some() || response_body.is_some(),
        hook_results: None,
        cost_saved: None,
        ..blank(KIND_CUSTOM, created_ms)
    };
    if let Some(u) = usage {
        set_tokens(&mut record, u);
    }
    Entry {
        record,
        created_ms,
        request_body,
        response_body,
        hook_results_json: None,
    }
}

#[utoipa::path(post, path = "/v1/logs", tag = "logs",
    description = "Inserts one custom record or an array of them (Portkey's shape). metadata.trace_id, span_id, parent_span_id and span_name place the record in a trace; request.provider prices its usage. Answers once the records are stored; while the store is unavailable, at once with 202 and status `queued` (they are held in memory and written when it is back).",
    request_body = CustomLog,
    responses((status = 200, body = CustomLogsCreated), (status = 202, body = CustomLogsCreated), (status = 400, body = ErrorBody)))]
pub async fn create(
    State(state): S,
    caller: Caller,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<CustomLogsCreated>)> {
    caller.require(scopes::LOGS_WRITE)?;
    let logs: Vec<CustomLog> = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Array(items)) => items
            .into_iter()
            .enumerate()
            .map(|(i, v)| serde_json::from_value(v).map_err(|e| format!("[{i}]: {e}")))
            .collect::<Result<_, _>>(),
        Ok(v @ Value::Object(_)) => serde_json::from_value(v)
            .map(|l| vec![l])
            .map_err(|e| e.to_string()),
        Ok(_) => Err("expected a log object or an array of them".into()),
        Err(e) => Err(format!("not JSON: {e}")),
    }
    .map_err(|e| ApiError::invalid(format!("invalid request body: {e}")))?;
    let log_bodies = state.settings.log_bodies && caller.0.defaults.log_bodies != Some(false);
    let mut ids = Vec::with_capacity(logs.len());
    for log in logs {
        let entry = custom_entry(log, &caller, log_bodies);
        ids.push(entry.record.id.clone());
        state.recorder.record(entry).await;
    }
    let (code, status) = match state.recorder.flush().await {
        Ok(()) => (StatusCode::OK, "success"),
        Err(_) => (StatusCode::ACCEPTED, "queued"),
    };
    Ok((
        code,
        Json(CustomLogsCreated {
            status: status.into(),
            log_ids: ids,
        }),
    ))
}

/// How often an idle stream sends a comment, so proxies keep it open.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// A live tail: replays what a reconnecting client missed, then follows new records.
struct Tail {
    state: Arc<AppState>,
    filter: LogFilter,
    live: tokio::sync::broadcast::Receiver<Committed>,
    closing: tokio::sync::watch::Receiver<bool>,
    /// The last `seq` sent.
    last: i64,
    backlog: VecDeque<(i64, LogRecord)>,
    catching_up: bool,
}

fn event(seq: i64, record: &LogRecord) -> Bytes {
    let data = serde_json::to_string(record).unwrap_or_default();
    Bytes::from(format!("id: {seq}\nevent: log\ndata: {data}\n\n"))
}

impl Tail {
    async fn next(&mut self) -> Option<Bytes> {
        loop {
            if let Some((seq, record)) = self.backlog.pop_front() {
                self.last = seq;
                return Some(event(seq, &record));
            }
            if self.catching_up {
                let (after, f) = (self.last, self.filter.clone());
                let rows = read(&self.state, move |s| s.logs_after(after, &f, 1000))
                    .await
                    .ok()?;
                self.catching_up = !rows.is_empty();
                self.backlog.extend(rows);
                continue;
            }
            let received = tokio::select! {
                r = tokio::time::timeout(KEEP_ALIVE, self.live.recv()) => r,
                _ = self.closing.wait_for(|c| *c) => return None,
            };
            match received {
                Err(_) => return Some(Bytes::from_static(b": keep-alive\n\n")),
                Ok(Ok(c)) => {
                    if c.seq > self.last && self.filter.matches(&c.record) {
                        self.last = c.seq;
                        return Some(event(c.seq, &c.record));
                    }
                }
                Ok(Err(RecvError::Lagged(_))) => self.catching_up = true,
                Ok(Err(RecvError::Closed)) => return None,
            }
        }
    }
}

#[utoipa::path(get, path = "/v1/logs/stream", tag = "logs",
    description = "Server-sent events: each record as it is stored, `id: <seq>`, `event: log`, `data: <record>`, with the filters of GET /v1/logs (time bounds apply only to the catch-up: the records since `since`, or after Last-Event-ID). Send Last-Event-ID to resume after a disconnect without gaps or repeats.",
    responses((status = 200, content_type = "text/event-stream", body = String), (status = 400, body = ErrorBody)))]
pub async fn stream(
    State(state): S,
    caller: Caller,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    caller.require(scopes::LOGS_LIST)?;
    let filter = filter(q.as_deref())?;
    let resume = match headers
        .get("last-event-id")
        .map(|v| v.to_str().map(str::parse::<i64>))
    {
        None => None,
        Some(Ok(Ok(seq))) => Some(seq),
        Some(_) => {
            return Err(ApiError::invalid(
                "Last-Event-ID must be the id of an event this stream sent",
            ))
        }
    };
    let filter_has_since = filter.since.is_some();
    // Subscribe before reading the backlog, so nothing committed in between is missed.
    let tail = Tail {
        live: state.subscribe_records(),
        closing: state.closing.subscribe(),
        state: state.clone(),
        filter,
        last: resume.unwrap_or(0),
        backlog: VecDeque::new(),
        // With `since`, a new tail first replays the records since then.
        catching_up: resume.is_some() || filter_has_since,
    };
    let body = futures_util::stream::unfold(tail, |mut t| async move {
        t.next().await.map(|b| (Ok::<_, std::io::Error>(b), t))
    });
    let mut response = Body::from_stream(body).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}

#[utoipa::path(get, path = "/metrics", tag = "logs",
    description = "Prometheus metrics (text exposition 0.0.4): requests, latency and time-to-first-token histograms, tokens, cost, errors, retries, upstream attempts and the recorder's queue. Needs a key with analytics.view, sent as a Bearer token.",
    responses((status = 200, content_type = "text/plain", body = String), (status = 401, body = ErrorBody)))]
pub async fn metrics(State(state): S, caller: Caller) -> ApiResult<Response> {
    caller.require(scopes::ANALYTICS_VIEW)?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.recorder.render_metrics() + &crate::server::governance::budget_metrics(&state),
    )
        .into_response())
}
