//! Guardrail benchmark (issue 7): the CPU time a typical guardrail config adds to a request.
//!
//! Run: `cargo bench --bench guardrails`. It compiles an input hook and an output hook, each
//! with three `regexMatch` checks, `pii` (with `redact`), `contains` and `wordCount`, runs
//! both on a ~1 KB chat request and its answer (clean text, and text with PII to redact)
//! many times on one thread, and prints the CPU time per request (input + output hooks) from
//! `/proc/thread-self/schedstat` (wall-clock time where that file is missing).
//! `TOLLGATE_BENCH_ITERS` sets the iterations (default 20000); without `--bench` (e.g.
//! `cargo test --benches`) it runs 200 as a quick check.

use std::time::Instant;

use serde_json::{json, Map, Value};
use tollgate::gateway::providers::adapter::Endpoint;
use tollgate::guardrails::{run, Body, Hook, RawAnswer, Stage, Subject};

fn hook(id: &str) -> Hook {
    let check = |id: &str, parameters: Value| json!({"id": id, "parameters": parameters});
    let v = json!({"id": id, "deny": true, "checks": [
        check("default.regexMatch", json!({"rule": "(?i)ignore (all|previous) instructions", "not": true})),
        check("default.regexMatch", json!({"rule": "\\b(password|passwd|secret)\\s*[:=]", "not": true})),
        check("default.regexMatch", json!({"rule": "[A-Z]{3}-\\d{4}"})),
        check("portkey.pii", json!({"redact": true})),
        check("default.contains", json!({"words": ["forbidden", "classified"], "operator": "none"})),
        check("default.wordCount", json!({"maxWords": 500})),
    ]});
    Hook::from_raw(&v).unwrap_or_else(|e| panic!("{e:?}"))
}

/// A ~1 KB chat request: a system prompt, one earlier turn and a ~600-byte question.
fn request(with_pii: bool) -> Value {
    let contact = if with_pii {
        "Reach me at jane.doe@example.com or +1 415 555 0123; card 4111 1111 1111 1111."
    } else {
        "Reach me through the support portal when the ticket is updated, thanks a lot."
    };
    json!({"model": "gpt-4o-mini", "temperature": 0.2, "messages": [
        {"role": "system", "content": "You are a support assistant for ACME. Answer briefly and politely, cite ticket ids."},
        {"role": "user", "content": "Hi, I opened ticket ABC-1234 last week about the invoice export."},
        {"role": "assistant", "content": "Thanks, I found ABC-1234. The export failed because of a timeout on our side."},
        {"role": "user", "content": format!(
            "Great, thank you. The export of the March invoices still fails with the same error when I \
             select more than two hundred rows, and the CSV that does come out has the dates in the \
             wrong format (month and day are swapped). Could you check whether the fix from ticket \
             ABC-1234 was deployed to the EU region as well, and tell me when I can try again? We need \
             the files for the quarterly close on Friday, so an estimate would help a lot. {contact}"
        )}
    ]})
}

fn answer(with_pii: bool) -> Value {
    let tail = if with_pii {
        " Questions: ops@acme.example or 192.168.10.4."
    } else {
        " Anything else?"
    };
    json!({"id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-4o-mini", "choices": [{
        "index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": format!(
            "The fix for ABC-1234 reached the EU region yesterday at 18:00 UTC, so exports of more than \
             two hundred rows should work now. The swapped dates come from the locale setting of the \
             export; choose ISO 8601 under Settings, Export, Date format and run it again. If it still \
             fails, reply here with the time of the attempt and I will look at the logs.{tail}")}
    }], "usage": {"prompt_tokens": 260, "completion_tokens": 90, "total_tokens": 350}})
}

/// This thread's CPU time in ns, or None where the kernel does not report it.
fn thread_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

/// Both hooks as the gateway runs them: the answer comes as the provider's JSON text.
async fn once(input: &Hook, output: &Hook, req: &Value, resp: &[u8], http: &reqwest::Client) {
    let metadata = Map::new();
    let mut subject = Subject {
        stage: Stage::Before,
        endpoint: Endpoint::Chat,
        request: req,
        response: None,
        model: "gpt-4o-mini",
        provider: "openai",
        metadata: &metadata,
    };
    let before = run(input, &subject, http).await;
    assert_eq!(before.result.checks.len(), 6);
    subject.stage = Stage::After;
    let raw = RawAnswer::parse(resp).expect("the bench's answer has the usual shape");
    subject.response = Some(Body::Raw(&raw));
    let after = run(output, &subject, http).await;
    std::hint::black_box((before, after));
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let iters: u32 = match std::env::var("TOLLGATE_BENCH_ITERS") {
        Ok(v) => v.parse().expect("TOLLGATE_BENCH_ITERS: a number"),
        Err(_) if full => 20_000,
        Err(_) => 200,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let http = reqwest::Client::new();
    let (input, output) = (hook("input"), hook("output"));
    println!("guardrails: 6 checks (3 regexMatch, pii redact, contains, wordCount) on input and on output");
    for with_pii in [false, true] {
        let (req, resp) = (request(with_pii), answer(with_pii).to_string().into_bytes());
        let bytes = req.to_string().len();
        rt.block_on(async {
            for _ in 0..iters / 10 {
                once(&input, &output, &req, &resp, &http).await;
            }
            let (cpu0, wall0) = (thread_cpu_ns(), Instant::now());
            for _ in 0..iters {
                once(&input, &output, &req, &resp, &http).await;
            }
            let wall = wall0.elapsed().as_nanos() as f64 / f64::from(iters) / 1000.0;
            let cpu = cpu0.zip(thread_cpu_ns()).map(|(a, b)| (b - a) as f64 / f64::from(iters) / 1000.0);
            let label = if with_pii { "with PII (redacted)" } else { "clean" };
            match cpu {
                Some(cpu) => println!(
                    "  {label:20} request {bytes} B: {cpu:.1} us CPU per request (wall {wall:.1} us), {iters} iterations"
                ),
                None => println!("  {label:20} request {bytes} B: {wall:.1} us wall per request, {iters} iterations"),
            }
        });
    }
    println!("  target: at most 30 us CPU per 1 KB request");
}
