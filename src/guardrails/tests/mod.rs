//! Engine tests: each check on passing and failing input, PII, remote checks against a local
//! server, hook semantics and constructor errors.

mod checks;
mod hooks;
mod pii;
mod remote;
mod text;

use serde_json::{json, Map, Value};

use super::{run, Body, Hook, RawAnswer, Stage, Subject, Verdict};
use crate::gateway::providers::adapter::Endpoint;

/// A chat request whose last user message is `last`, after a system and an earlier turn.
fn chat(last: &str) -> Value {
    json!({"model": "gpt-4o-mini", "messages": [
        {"role": "system", "content": "You are helpful."},
        {"role": "user", "content": "Earlier question."},
        {"role": "assistant", "content": "Earlier answer."},
        {"role": "user", "content": last}
    ]})
}

fn answer(text: &str) -> Value {
    json!({"id": "c1", "object": "chat.completion", "model": "gpt-4o-mini",
           "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}]})
}

/// A hook from a shorthand object.
fn hook(v: Value) -> Hook {
    Hook::from_shorthand(&v, "g1".into()).unwrap_or_else(|e| panic!("{e:?}"))
}

async fn run_on(hook: &Hook, stage: Stage, request: &Value, response: Option<&Value>) -> Verdict {
    run_with(hook, stage, Endpoint::Chat, request, response, &Map::new()).await
}

/// Runs `hook`. An answer (chat or completions) goes through both forms the gateway gives
/// hooks, decoded and as JSON text, and both must give the same verdict.
async fn run_with(
    hook: &Hook,
    stage: Stage,
    endpoint: Endpoint,
    request: &Value,
    response: Option<&Value>,
    metadata: &Map<String, Value>,
) -> Verdict {
    let subject = |response| Subject {
        stage,
        endpoint,
        request,
        response,
        model: "gpt-4o-mini",
        provider: "openai",
        metadata,
    };
    let http = reqwest::Client::new();
    let verdict = run(hook, &subject(response.map(Body::Json)), &http).await;
    let json = response.map(Value::to_string).unwrap_or_default();
    if let Some(raw) = RawAnswer::parse(json.as_bytes()) {
        if matches!(endpoint, Endpoint::Chat | Endpoint::Completions) {
            let from_raw = run(hook, &subject(Some(Body::Raw(&raw))), &http).await;
            assert_eq!(from_raw.transformed, verdict.transformed, "{json}");
            let outcome = |v: &Verdict| {
                let r = &v.result;
                let checks: Vec<_> = r
                    .checks
                    .iter()
                    .map(|c| (c.verdict, c.data.to_value(), c.error.clone()))
                    .collect();
                (r.verdict, r.deny, r.transformed, checks)
            };
            assert_eq!(outcome(&from_raw), outcome(&verdict), "{json}");
        }
    }
    verdict
}

/// The verdict of `hook` on `request` to `endpoint`, before the call.
async fn verdict_on(
    hook: &Hook,
    endpoint: Endpoint,
    request: &Value,
    metadata: &Map<String, Value>,
) -> bool {
    run_with(hook, Stage::Before, endpoint, request, None, metadata)
        .await
        .result
        .verdict
}

/// One shorthand hook run on the last user message `text`, before the call.
async fn run_before(check: Value, text: &str) -> Verdict {
    run_on(&hook(check), Stage::Before, &chat(text), None).await
}

/// The verdict of one shorthand check on the last user message `text`, before the call.
async fn before(check: Value, text: &str) -> bool {
    run_before(check, text).await.result.verdict
}

/// Each `(check, text, verdict)` before the call.
async fn table(cases: Vec<(Value, &str, bool)>) {
    for (check, text, expected) in cases {
        assert_eq!(
            before(check.clone(), text).await,
            expected,
            "{check} on {text:?}"
        );
    }
}

/// The verdict of one shorthand check on the answer `text`.
async fn after(check: Value, text: &str) -> bool {
    let req = chat("question");
    run_on(&hook(check), Stage::After, &req, Some(&answer(text)))
        .await
        .result
        .verdict
}
