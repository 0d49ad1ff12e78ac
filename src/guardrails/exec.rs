//! Running a hook: its checks (concurrently, or in order with `sequential`), their edits, the
//! hook's verdict and feedback.

use std::sync::Arc;
use std::time::Instant;

use futures_util::future::join_all;
use serde_json::{json, Map, Value};

use super::checks::{CompiledCheck, Edit, Input};
use super::{text, Body, Hook, Subject, Verdict};
use crate::api::guardrails::{CheckResult, HookResult};

pub(super) async fn run_hook(
    hook: &Hook,
    subject: &Subject<'_>,
    http: &reqwest::Client,
) -> Verdict {
    let started = Instant::now();
    let created_at: Arc<str> = crate::store::now().into();
    let original = subject.target();
    let checks = hook.checks.iter().filter(|c| c.enabled);
    let mut results = Vec::with_capacity(hook.checks.len());
    let mut changed: Option<Value> = None;
    if hook.sequential {
        for check in checks {
            let body = changed.as_ref().map_or(original, Body::Json);
            let text = text::current(subject.stage, subject.endpoint, body);
            let input = Input {
                subject,
                body,
                text: &text,
                http,
            };
            let (result, edit) = evaluate(check, &input, &created_at).await;
            results.push(result);
            if let Some(Edit::Replace(v) | Edit::Redacted(v)) = edit {
                changed = Some(v);
            }
        }
    } else {
        let text = text::current(subject.stage, subject.endpoint, original);
        let input = Input {
            subject,
            body: original,
            text: &text,
            http,
        };
        let checks: Vec<&CompiledCheck> = checks.collect();
        // Checks that do not wait finish as they are polled: awaiting them in turn spares
        // the joined futures' allocations.
        let outcomes = if checks.iter().any(|c| c.waits()) {
            join_all(checks.iter().map(|c| evaluate(c, &input, &created_at))).await
        } else {
            let mut outcomes = Vec::with_capacity(checks.len());
            for check in &checks {
                outcomes.push(evaluate(check, &input, &created_at).await);
            }
            outcomes
        };
        let mut redactions = Vec::new();
        for (check, (result, edit)) in checks.iter().zip(outcomes) {
            results.push(result);
            match edit {
                Some(Edit::Replace(v)) => changed = Some(v),
                Some(Edit::Redacted(v)) => redactions.push((check, v)),
                None => {}
            }
        }
        // Redactions go on top of replaced bodies, in check order, so none is lost.
        for (check, redacted) in redactions {
            changed = match changed {
                None => Some(redacted),
                Some(body) => Some(check.redact(subject, &body).unwrap_or(body)),
            };
        }
    }
    let verdict = results.iter().all(|r| r.verdict);
    let result = HookResult {
        id: hook.id.clone(),
        verdict,
        deny: hook.deny && !verdict,
        r#async: hook.is_async,
        r#type: hook.kind.as_str().into(),
        transformed: changed.is_some(),
        feedback: feedback(hook, verdict, &results),
        checks: results,
        execution_time: millis(started),
        created_at,
        skipped: None,
    };
    Verdict {
        result,
        transformed: changed,
    }
}

/// One check's result; an error counts as a pass unless the check sets `failOnError`. Its
/// `created_at` is the hook's (to the second, as recorded; formatting a time per check would
/// cost more than most checks).
async fn evaluate(
    check: &CompiledCheck,
    input: &Input<'_>,
    created_at: &Arc<str>,
) -> (CheckResult, Option<Edit>) {
    let started = Instant::now();
    let (verdict, data, error, edit) = match check.evaluate(input).await {
        Ok(found) => (found.verdict, found.data, None, found.edit),
        Err(e) => (
            !check.fail_on_error,
            json!({"explanation": e}).into(),
            Some(e),
            None,
        ),
    };
    let result = CheckResult {
        id: check.id.clone(),
        verdict,
        data,
        error,
        execution_time: millis(started),
        created_at: created_at.clone(),
        transformed: edit.is_some(),
        log: None,
        fail_on_error: check.fail_on_error,
    };
    (result, edit)
}

/// Milliseconds to the microsecond, so the JSON says `0.021`, not `0.021664000000000003`.
fn millis(since: Instant) -> f64 {
    since.elapsed().as_micros() as f64 / 1000.0
}

/// `on_success.feedback` or `on_fail.feedback` with the ids of the checks that passed, failed
/// and errored (comma-joined) added to its metadata; an errored check is listed only as
/// errored.
fn feedback(hook: &Hook, verdict: bool, results: &[CheckResult]) -> Option<Value> {
    let action = if verdict {
        &hook.on_success
    } else {
        &hook.on_fail
    };
    let mut feedback = action.as_ref()?.get("feedback")?.as_object()?.clone();
    let ids = |keep: &dyn Fn(&CheckResult) -> bool| {
        let list: Vec<&str> = results.iter().filter(|r| keep(r)).map(|r| &*r.id).collect();
        Value::String(list.join(","))
    };
    let mut metadata = match feedback.remove("metadata") {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    metadata.insert(
        "successfulChecks".into(),
        ids(&|r| r.error.is_none() && r.verdict),
    );
    metadata.insert(
        "failedChecks".into(),
        ids(&|r| r.error.is_none() && !r.verdict),
    );
    metadata.insert("erroredChecks".into(), ids(&|r| r.error.is_some()));
    feedback.insert("metadata".into(), Value::Object(metadata));
    Some(Value::Object(feedback))
}
