//! Every gateway request leaves one record: built here from the call and its answer, handed
//! to the recorder before the answer goes out (or, for a stream, when the stream ends).

use std::sync::Arc;

use axum::body::Bytes;
use axum::response::Response;
use serde_json::Value;

use super::call::Call;
use super::respond::{Answer, AnswerBody};
use super::stream::StreamLog;
use crate::api::guardrails::{HookResult, HookResults};
use crate::api::logs::{LogRecord, KIND_REQUEST};
use crate::guardrails::Stage;
use crate::observe::record::{blank, kept_body, millis, set_tokens, Entry};
use crate::observe::recorder::Recorder;
use tokio::task::JoinHandle;

/// nginx's "client closed request": the client left before the answer was ready.
const CLIENT_CLOSED: u16 = 499;

/// The record of `call`, as far as it got; `answer` is `None` when the client left first.
/// Takes the trace context, metadata and path out of the call (it is done with them).
fn entry(call: &mut Call, answer: Option<&Answer>) -> Entry {
    let served = answer.and_then(|a| a.served.as_ref());
    let usage = served.and_then(|s| s.usage);
    let status = answer.map_or(CLIENT_CLOSED, |a| a.status);
    let success = (200..300).contains(&status);
    let cache = answer.and_then(|a| a.cache);
    let hit = cache.filter(|c| c.status.is_hit());
    let cost = match (usage, served.and_then(|s| s.price)) {
        // Nothing was called: the answer came from the cache.
        _ if hit.is_some() => Some(0.0),
        (Some(u), Some(p)) => Some(p.cost_usd(u)),
        (Some(_), None) => None,
        // Nothing was billed for an answer without usage, unless it succeeded (a provider that
        // reports no usage: the cost is unknown).
        (None, _) if success => None,
        (None, _) => Some(0.0),
    };
    let model_requested = call.body.get("model").and_then(Value::as_str);
    let model = served
        .and_then(|s| s.model.clone())
        .or_else(|| model_requested.map(|m| crate::gateway::model::parse(m).model.to_string()));
    let (outcome, error) = match answer {
        None => (
            "client_disconnected",
            Some("the client closed the connection before the answer was ready".to_string()),
        ),
        Some(a) if a.is_success() => ("success", None),
        Some(a) => ("error", a.error_message()),
    };
    let mut record = LogRecord {
        trace_id: call.trace.trace_id.clone(),
        span_id: std::mem::take(&mut call.trace.span_id),
        parent_span_id: call.trace.parent_span_id.take(),
        span_name: call.trace.span_name.take(),
        api_key_id: Some(call.key.id.clone()),
        api_key_name: Some(call.key.name.clone()),
        integration: served.and_then(|s| s.integration.clone()),
        provider: answer.and_then(|a| a.provider).map(String::from),
        model_requested: model_requested.map(String::from),
        model,
        endpoint: std::mem::take(&mut call.pathname),
        status,
        latency_ms: millis(call.started.elapsed()),
        cost,
        retry_count: answer.map_or(0, |a| a.retry_count),
        last_used_option: answer.and_then(|a| a.path.clone()),
        metadata: std::mem::take(&mut call.metadata),
        stream: call.stream,
        outcome: outcome.to_string(),
        error,
        attempts: std::mem::take(&mut *call.attempts.lock().unwrap_or_else(|e| e.into_inner())),
        bodies_logged: call.log_bodies,
        cache_status: cache.map_or("DISABLED", |c| c.status.as_str()).to_string(),
        cost_saved: hit.and_then(|c| c.saved),
        ..blank(KIND_REQUEST, call.created_ms)
    };
    if let Some(u) = usage {
        set_tokens(&mut record, u);
    }
    Entry {
        record,
        created_ms: call.created_ms,
        request_body: call.log_bodies.then(|| kept_body(&call.raw_body)),
        response_body: None,
        hook_results_json: None,
    }
}

/// Records the request and turns the answer into the response.
pub async fn respond(mut call: Call, mut answer: Answer) -> Response {
    let recorder = call
        .recorder
        .take()
        .expect("a call is recorded once, here or when dropped");
    let mut entry = entry(&mut call, Some(&answer));
    // Moved, not copied: the body and the record each need them once.
    let results = answer.hook_results.take();
    let body = std::mem::replace(&mut answer.body, AnswerBody::RawJson(Bytes::new()));
    // Encoded once: the same bytes go to the client and into the record.
    let bytes = match body {
        AnswerBody::Stream(mut forwarder) => {
            entry.record.ttft_ms = forwarder.first_event.map(|t| millis(t - call.started));
            entry.record.hook_results = results;
            forwarder.log_to(StreamLog {
                recorder,
                entry,
                price: answer.served.as_ref().and_then(|s| s.price),
                started: call.started,
                deferred: take_deferred(&call),
            });
            answer.body = AnswerBody::Stream(forwarder);
            return answer.into_response(&call.trace.trace_id);
        }
        AnswerBody::Replay(frames) => {
            entry.response_body = call.log_bodies.then(|| kept_body(&frames.concat()));
            entry.record.hook_results = results;
            hand_over(recorder, entry, take_deferred(&call)).await;
            answer.body = AnswerBody::Replay(frames);
            return answer.into_response(&call.trace.trace_id);
        }
        AnswerBody::Json(v) => Bytes::from(serde_json::to_vec(&v).unwrap_or_default()),
        AnswerBody::RawJson(bytes) => bytes,
    };
    entry.response_body = call.log_bodies.then(|| kept_body(&bytes));
    // Encoded once, for the client's body and the record.
    let encoded = results.as_ref().map(HookResults::to_json);
    let bytes = match encoded.as_deref().filter(|_| answer.results_in_body) {
        Some(json) => with_hook_results(bytes, json),
        None => bytes,
    };
    let deferred = take_deferred(&call);
    // The record keeps the results as their JSON only (see `Entry::hook_results_json`),
    // unless async hooks will add theirs.
    if deferred.is_empty() {
        drop(results);
    } else {
        entry.record.hook_results = results;
    }
    entry.hook_results_json = encoded;
    hand_over(recorder, entry, deferred).await;
    answer.body = AnswerBody::RawJson(bytes);
    answer.into_response(&call.trace.trace_id)
}

/// The JSON object `body` with `"hook_results"` added as its last field, written into the
/// encoded bytes (the body is not decoded again for it).
fn with_hook_results(body: Bytes, results: &str) -> Bytes {
    let end = body.trim_ascii_end();
    let Some(inner) = end.strip_suffix(b"}") else {
        return body;
    };
    let results = results.as_bytes();
    let key: &[u8] = if inner.trim_ascii_end().ends_with(b"{") {
        b"\"hook_results\":"
    } else {
        b",\"hook_results\":"
    };
    // Sized exactly: `Bytes` takes a full vector without allocating again.
    let mut out = Vec::with_capacity(inner.len() + key.len() + results.len() + 1);
    out.extend_from_slice(inner);
    out.extend_from_slice(key);
    out.extend_from_slice(results);
    out.push(b'}');
    Bytes::from(out)
}

/// Records the entry now, or once its async hooks have finished (without holding up the
/// answer).
async fn hand_over(
    recorder: Arc<Recorder>,
    mut entry: Entry,
    deferred: Vec<(Stage, JoinHandle<HookResult>)>,
) {
    if deferred.is_empty() {
        recorder.record(entry).await;
    } else {
        tokio::spawn(async move {
            add_deferred(&mut entry, deferred).await;
            recorder.record(entry).await;
        });
    }
}

fn take_deferred(call: &Call) -> Vec<(Stage, JoinHandle<HookResult>)> {
    std::mem::take(
        &mut *call
            .deferred_hooks
            .lock()
            .unwrap_or_else(|e| e.into_inner()),
    )
}

/// Waits for the async hooks and adds their results to the record.
pub async fn add_deferred(entry: &mut Entry, deferred: Vec<(Stage, JoinHandle<HookResult>)>) {
    if !deferred.is_empty() {
        entry.hook_results_json = None;
    }
    let results = entry
        .record
        .hook_results
        .get_or_insert_with(Default::default);
    for (stage, running) in deferred {
        let Ok(result) = running.await else {
            continue;
        };
        match stage {
            Stage::Before => results.before_request_hooks.push(result),
            Stage::After => results.after_request_hooks.push(result),
        }
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        // Still set: the handler was dropped mid-request because its client went away.
        if let Some(recorder) = self.recorder.take() {
            let record = entry(self, None);
            recorder.record_detached(record);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hook_results_are_added_as_the_last_field() {
        let results =
            serde_json::to_string(&crate::api::guardrails::HookResults::default()).unwrap();
        let added = |body: &str| {
            let out = with_hook_results(Bytes::from(body.to_string()), &results);
            String::from_utf8(out.to_vec()).unwrap()
        };
        let want = r#""hook_results":{"before_request_hooks":[],"after_request_hooks":[]}"#;
        assert_eq!(added("{\"id\":1}\n"), format!("{{\"id\":1,{want}}}"));
        assert_eq!(added("{ }"), format!("{{ {want}}}"));
        assert_eq!(added("[1]"), "[1]", "only objects get them");
    }
}
