//! A trace's records as a span tree: each record is a span, a gateway request's upstream
//! attempts are its children, and a record whose parent span is in the trace hangs below it.

use crate::api::logs::{Feedback, LogRecord, Span, Trace};
use crate::observe::record::format_ms;
use crate::store::parse_time;

fn millis_of(created_at: &str) -> f64 {
    parse_time(created_at).map_or(0.0, |t| (t.unix_timestamp_nanos() / 1_000) as f64 / 1000.0)
}

fn record_span(r: &LogRecord, trace_start: f64) -> Span {
    let start = millis_of(&r.created_at) - trace_start;
    let name = r.span_name.clone().unwrap_or_else(|| {
        format!("{} {}", r.endpoint, r.model.as_deref().unwrap_or_default())
            .trim()
            .to_string()
    });
    let answered = r
        .attempts
        .len()
        .checked_sub(1)
        .filter(|_| (200..300).contains(&r.status));
    let children = r
        .attempts
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let target = a.integration.as_deref().unwrap_or(&a.provider);
            let model = a.model.as_deref().unwrap_or_default();
            let answering = answered == Some(i);
            Span {
                span_id: a.span_id.clone(),
                parent_span_id: Some(r.span_id.clone()),
                kind: "attempt".into(),
                name: match a.retry {
                    0 => format!("{target} {model}"),
                    n => format!("{target} {model} (retry {n})"),
                },
                log_id: r.id.clone(),
                start_offset_ms: start + a.start_offset_ms,
                duration_ms: a.latency_ms,
                status: a.status,
                provider: Some(a.provider.clone()),
                integration: a.integration.clone(),
                model: a.model.clone(),
                error: a.error.clone(),
                input_tokens: if answering { r.input_tokens } else { 0 },
                output_tokens: if answering { r.output_tokens } else { 0 },
                cost: if answering { r.cost } else { Some(0.0) },
                children: Vec::new(),
            }
        })
        .collect::<Vec<Span>>();
    let children = with_hook_spans(r, start, children);
    Span {
        span_id: r.span_id.clone(),
        parent_span_id: r.parent_span_id.clone(),
        kind: r.kind.clone(),
        name,
        log_id: r.id.clone(),
        start_offset_ms: start,
        duration_ms: r.latency_ms,
        status: r.status,
        provider: r.provider.clone(),
        integration: r.integration.clone(),
        model: r.model.clone(),
        error: r.error.clone(),
        input_tokens: r.input_tokens,
        output_tokens: r.output_tokens,
        cost: r.cost,
        children,
    }
}

/// The request's guardrail hooks as spans beside its attempts: input hooks one after another
/// ending where the first attempt began, output hooks one after another from where the last
/// attempt ended (the results keep durations, not start times).
fn with_hook_spans(r: &LogRecord, start: f64, attempts: Vec<Span>) -> Vec<Span> {
    let Some(results) = &r.hook_results else {
        return attempts;
    };
    let input_end = attempts.first().map_or(start, |a| a.start_offset_ms);
    let input_total: f64 = results
        .before_request_hooks
        .iter()
        .map(|h| h.execution_time)
        .sum();
    let output_start = attempts
        .last()
        .map_or(input_end, |a| a.start_offset_ms + a.duration_ms);
    let stages = [
        (
            "input",
            &results.before_request_hooks,
            input_end - input_total,
        ),
        ("output", &results.after_request_hooks, output_start),
    ];
    let mut spans = Vec::new();
    for (stage, hooks, mut at) in stages {
        for hook in hooks.iter() {
            let failed: Vec<&str> = hook
                .checks
                .iter()
                .filter(|c| !c.verdict)
                .map(|c| &*c.id)
                .collect();
            spans.push(Span {
                span_id: format!("{}-{stage}-{}", r.span_id, spans.len() + 1),
                parent_span_id: Some(r.span_id.clone()),
                kind: "guardrail".into(),
                name: format!("{stage} guardrail {}", hook.id),
                log_id: r.id.clone(),
                start_offset_ms: at.max(start),
                duration_ms: hook.execution_time,
                status: match (hook.verdict, hook.deny) {
                    (true, _) => 200,
                    (false, true) => 446,
                    (false, false) => 246,
                },
                provider: None,
                integration: None,
                model: None,
                error: (!failed.is_empty()).then(|| format!("failed: {}", failed.join(", "))),
                input_tokens: 0,
                output_tokens: 0,
                cost: Some(0.0),
                children: Vec::new(),
            });
            at += hook.execution_time;
        }
    }
    let mut all = attempts;
    all.extend(spans);
    all.sort_by(|a, b| a.start_offset_ms.total_cmp(&b.start_offset_ms));
    all
}

/// Builds the tree of `records` (oldest first). A record whose parent is missing from the
/// trace, or whose parent chain loops, is a top span.
pub fn build(trace_id: &str, records: &[LogRecord], feedback: Vec<Feedback>) -> Trace {
    let trace_start = records
        .iter()
        .map(|r| millis_of(&r.created_at))
        .fold(f64::INFINITY, f64::min);
    let trace_start = if trace_start.is_finite() {
        trace_start
    } else {
        0.0
    };
    let parent: Vec<Option<usize>> = records
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let p = r.parent_span_id.as_deref()?;
            records
                .iter()
                .position(|other| other.span_id == p)
                .filter(|&j| j != i)
        })
        .collect();
    // A record is placed under its parent only if following parents from it reaches a root.
    let reaches_root = |mut i: usize| {
        for _ in 0..records.len() {
            match parent[i] {
                None => return true,
                Some(p) => i = p,
            }
        }
        false
    };
    let attached: Vec<Option<usize>> = (0..records.len())
        .map(|i| parent[i].filter(|_| reaches_root(i)))
        .collect();
    fn grow(i: usize, spans: &mut Vec<Option<Span>>, attached: &[Option<usize>]) -> Span {
        let mut span = spans[i].take().expect("each record is placed once");
        let children: Vec<usize> = (0..attached.len())
            .filter(|&j| attached[j] == Some(i))
            .collect();
        for j in children {
            span.children.push(grow(j, spans, attached));
        }
        span.children
            .sort_by(|a, b| a.start_offset_ms.total_cmp(&b.start_offset_ms));
        span
    }
    let mut spans: Vec<Option<Span>> = records
        .iter()
        .map(|r| Some(record_span(r, trace_start)))
        .collect();
    let roots: Vec<usize> = (0..records.len())
        .filter(|&i| attached[i].is_none())
        .collect();
    let top: Vec<Span> = roots
        .into_iter()
        .map(|i| grow(i, &mut spans, &attached))
        .collect();
    let end = records
        .iter()
        .map(|r| millis_of(&r.created_at) - trace_start + r.latency_ms)
        .fold(0.0, f64::max);
    let cost = records
        .iter()
        .map(|r| r.cost)
        .try_fold(0.0, |sum, c| c.map(|c| sum + c));
    Trace {
        object: "trace".into(),
        trace_id: trace_id.to_string(),
        started_at: format_ms(trace_start as i64),
        duration_ms: end,
        cost,
        input_tokens: records.iter().map(|r| r.input_tokens).sum(),
        output_tokens: records.iter().map(|r| r.output_tokens).sum(),
        spans: top,
        feedback,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::logs::{Attempt, KIND_CUSTOM, KIND_REQUEST};

    fn record(id: &str, span: &str, parent: Option<&str>, at: &str, kind: &str) -> LogRecord {
        LogRecord {
            id: id.into(),
            created_at: at.into(),
            trace_id: "t".into(),
            span_id: span.into(),
            parent_span_id: parent.map(String::from),
            provider: Some("openai".into()),
            model: Some("gpt-4o".into()),
            endpoint: "/v1/chat/completions".into(),
            status: 200,
            latency_ms: 100.0,
            input_tokens: 10,
            output_tokens: 5,
            cost: Some(0.5),
            ..crate::observe::record::blank(kind, 0)
        }
    }

    fn attempt(span: &str, start: f64, status: u16, retry: u32) -> Attempt {
        Attempt {
            span_id: span.into(),
            start_offset_ms: start,
            latency_ms: 20.0,
            integration: None,
            provider: "openai".into(),
            model: Some("gpt-4o".into()),
            retry,
            last_used_option: None,
            status,
            error: None,
        }
    }

    #[test]
    fn attempts_and_custom_spans_hang_below_their_parents() {
        let mut request = record(
            "r",
            "s1",
            Some("agent"),
            "2026-12-01T10:00:00.100Z",
            KIND_REQUEST,
        );
        request.attempts = vec![attempt("a1", 1.0, 500, 0), attempt("a2", 30.0, 200, 1)];
        let agent = record("c", "agent", None, "2026-12-01T10:00:00.000Z", KIND_CUSTOM);
        let mut orphan = record(
            "o",
            "s9",
            Some("elsewhere"),
            "2026-12-01T10:00:01.000Z",
            KIND_CUSTOM,
        );
        orphan.cost = None;
        let trace = build("t", &[agent, request, orphan], Vec::new());
        assert_eq!(
            trace.spans.len(),
            2,
            "the agent span and the orphan are top spans"
        );
        let agent = &trace.spans[0];
        assert_eq!(agent.span_id, "agent");
        assert_eq!(agent.children.len(), 1);
        let request = &agent.children[0];
        assert_eq!(request.start_offset_ms, 100.0);
        let attempts: Vec<_> = request
            .children
            .iter()
            .map(|a| (a.kind.as_str(), a.start_offset_ms, a.status))
            .collect();
        assert_eq!(
            attempts,
            vec![("attempt", 101.0, 500), ("attempt", 130.0, 200)]
        );
        assert_eq!(request.children[1].name, "openai gpt-4o (retry 1)");
        assert_eq!(trace.duration_ms, 1100.0);
        assert_eq!(trace.started_at, "2026-12-01T10:00:00.000Z");
        assert_eq!(trace.cost, None, "one record's cost is unknown");
        assert_eq!(trace.input_tokens, 30);
    }

    #[test]
    fn parent_loops_become_top_spans() {
        let a = record("a", "x", Some("y"), "2026-12-01T10:00:00.000Z", KIND_CUSTOM);
        let b = record("b", "y", Some("x"), "2026-12-01T10:00:00.000Z", KIND_CUSTOM);
        let trace = build("t", &[a, b], Vec::new());
        assert_eq!(trace.spans.len(), 2);
        assert_eq!(trace.cost, Some(1.0));
    }
}
