//! The response cache end to end: the real server against a local OpenAI-compatible upstream
//! that counts its calls, so a hit is proven to call nothing.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::{
    gateway_env, openai_chat_json, openai_chat_sse, post_json, HttpAnswer, TestEnv,
};
use crate::upstream::{Recorded, Reply, Upstream};

const CHAT: &str = "/v1/chat/completions";
/// The integration's price override: $0.001 a token, in and out.
const PER_TOKEN_PER_MILLION: f64 = 1000.0;
/// What one answer of the upstream costs: 7 prompt and 3 completion tokens.
const ANSWER_COST: f64 = 10.0 * PER_TOKEN_PER_MILLION / 1e6;

/// Answers chats with "answer N" (N counting its chat calls), streams with two pieces, and
/// embeddings with the vector [`vector_for`] picks.
fn upstream() -> Upstream {
    let chats = std::sync::atomic::AtomicUsize::new(0);
    Upstream::start(move |r| {
        let body = r.json();
        if r.path.ends_with("/embeddings") {
            let input = body["input"].as_str().unwrap_or_default();
            return Reply::ok(json!({
                "object": "list", "model": body["model"],
                "data": [{"object": "embedding", "index": 0, "embedding": vector_for(input)}],
                "usage": {"prompt_tokens": 4, "total_tokens": 4}
            }));
        }
        let n = chats.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        let model = body["model"].as_str().unwrap_or("?").to_string();
        if body["stream"] == true {
            let events = openai_chat_sse(&model, &["streamed ", &format!("answer {n}")]);
            let events: Vec<&str> = events.iter().map(String::as_str).collect();
            return Reply::sse(&events);
        }
        Reply::ok(openai_chat_json(&model, &format!("answer {n}")))
    })
}

/// Questions about France's capital point one way, anything else another.
fn vector_for(text: &str) -> Vec<f64> {
    if text.contains("capital of France") {
        vec![1.0, 0.0, 0.0]
    } else if text.contains("France's capital") {
        vec![0.98, 0.2, 0.0]
    } else {
        vec![0.0, 0.0, 1.0]
    }
}

fn chat_calls(up: &Upstream) -> usize {
    count(up, |r| r.path.ends_with("/chat/completions"))
}

fn count(up: &Upstream, which: impl Fn(&Recorded) -> bool) -> usize {
    up.requests().iter().filter(|r| which(r)).count()
}

/// An OpenAI integration `slug` at `up`, with model `m1` priced at $0.001 a token.
fn integration(env: &TestEnv, slug: &str, up: &Upstream) {
    let body = json!({
        "slug": slug, "ai_provider_id": "openai", "key": "sk-upstream-test",
        "configurations": {
            "custom_host": format!("{}/v1", up.url),
            "pricing": {"m1": {"input": PER_TOKEN_PER_MILLION, "output": PER_TOKEN_PER_MILLION}}
        }
    });
    let reply = env.admin("POST", "/v1/integrations", Some(body));
    assert_eq!(reply.status, 200, "{}", reply.body);
}

fn cached_config(cache: Value) -> String {
    json!({"provider": "@oai", "cache": cache}).to_string()
}

fn simple(max_age: u64) -> String {
    cached_config(json!({"mode": "simple", "max_age": max_age}))
}

fn ask(text: &str) -> Value {
    json!({"model": "m1", "messages": [{"role": "user", "content": text}]})
}

/// A chat request with `key`, the config and any other headers.
fn send(
    env: &TestEnv,
    key: &str,
    config: &str,
    headers: &[(&str, &str)],
    body: &Value,
) -> HttpAnswer {
    let mut all = vec![("x-portkey-api-key", key), ("x-portkey-config", config)];
    all.extend_from_slice(headers);
    let answer = post_json(env, CHAT, &all, body);
    assert_eq!(answer.status, 200, "{answer}");
    answer
}

fn status(answer: &HttpAnswer) -> &str {
    answer.header("x-portkey-cache-status").unwrap_or("(none)")
}

fn text(answer: &HttpAnswer) -> String {
    answer.json()["choices"][0]["message"]["content"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// The records of `trace`, oldest first, once `n` are written.
#[track_caller]
fn records(env: &TestEnv, trace: &str, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let page = env.admin(
            "GET",
            &format!("/v1/logs?limit=1000&trace_id={trace}"),
            None,
        );
        let mut data = page.json()["data"].as_array().cloned().unwrap_or_default();
        if data.len() >= n || Instant::now() > deadline {
            assert_eq!(data.len(), n, "records of {trace}: {data:#?}");
            data.reverse();
            return data;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn stats(env: &TestEnv) -> Value {
    env.run(&["cache", "stats", "-o", "json"]).ok().json()
}

#[test]
fn a_repeat_is_a_hit_that_calls_nothing_and_is_recorded_with_what_it_saved() {
    let env = gateway_env(&[]);
    let up = upstream();
    integration(&env, "oai", &up);
    let key = env.admin_key.clone();
    let config = simple(60);

    let first = send(
        &env,
        &key,
        &config,
        &[("x-portkey-trace-id", "t-miss")],
        &ask("hi"),
    );
    assert_eq!(status(&first), "MISS");
    let mut same = ask("hi");
    same["user"] = json!("someone-else");
    let second = send(
        &env,
        &key,
        &config,
        &[("x-portkey-trace-id", "t-hit")],
        &same,
    );
    assert_eq!(
        status(&second),
        "HIT",
        "the user field does not change the answer"
    );
    assert_eq!(text(&second), "answer 1");
    assert_eq!(second.header("x-portkey-provider"), Some("openai"));
    assert_eq!(chat_calls(&up), 1, "a hit calls no upstream");

    let mut warmer = ask("hi");
    warmer["temperature"] = json!(0.9);
    let third = send(&env, &key, &config, &[], &warmer);
    assert_eq!(
        status(&third),
        "MISS",
        "another parameter is another question"
    );
    let plain = post_json(
        &env,
        CHAT,
        &[("x-portkey-api-key", &key)],
        &json!({"model": "@oai/m1", "messages": [{"role": "user", "content": "hi"}]}),
    );
    assert_eq!(status(&plain), "DISABLED");
    assert_eq!(chat_calls(&up), 3);

    let miss = &records(&env, "t-miss", 1)[0];
    assert_eq!(miss["cache_status"], "MISS");
    assert!(
        (miss["cost"].as_f64().unwrap() - ANSWER_COST).abs() < 1e-12,
        "{miss}"
    );
    let hit = &records(&env, "t-hit", 1)[0];
    assert_eq!(hit["cache_status"], "HIT");
    assert_eq!(hit["status"], 200);
    assert_eq!(hit["cost"], 0.0);
    assert!(
        (hit["cost_saved"].as_f64().unwrap() - ANSWER_COST).abs() < 1e-12,
        "{hit}"
    );
    assert_eq!(hit["attempts"], json!([]), "no upstream call");
    assert_eq!(hit["integration"], "oai");
    assert_eq!(hit["model"], "m1");

    let s = stats(&env);
    assert_eq!(
        (
            s["entries"].as_u64(),
            s["hits"].as_u64(),
            s["misses"].as_u64()
        ),
        (Some(2), Some(1), Some(2)),
        "{s}"
    );
    assert!(
        (s["cost_saved"].as_f64().unwrap() - ANSWER_COST).abs() < 1e-12,
        "{s}"
    );
    assert_eq!(s["saved_requests"], 1);
    env.run(&["cache", "stats"])
        .ok()
        .stdout_has("cost saved")
        .stdout_has("(none)");
}

#[test]
fn an_entry_expires_after_max_age() {
    let env = gateway_env(&[]);
    let up = upstream();
    integration(&env, "oai", &up);
    let (key, config) = (env.admin_key.clone(), simple(1));
    assert_eq!(status(&send(&env, &key, &config, &[], &ask("hi"))), "MISS");
    assert_eq!(status(&send(&env, &key, &config, &[], &ask("hi"))), "HIT");
    std::thread::sleep(Duration::from_millis(1100));
    let later = send(&env, &key, &config, &[], &ask("hi"));
    assert_eq!(status(&later), "MISS");
    assert_eq!(text(&later), "answer 2");
    assert_eq!(chat_calls(&up), 2);
}

#[test]
fn namespaces_and_workspaces_never_share_answers_and_a_namespace_purges_alone() {
    let env = gateway_env(&[]);
    let up = upstream();
    integration(&env, "oai", &up);
    let (admin, config) = (env.admin_key.clone(), simple(60));
    let (_, workspace_key) = env.create_key("bot", &[]);
    let ns = |n: &'static str| [("x-portkey-cache-namespace", n)];

    assert_eq!(
        status(&send(&env, &admin, &config, &ns("a"), &ask("hi"))),
        "MISS"
    );
    assert_eq!(
        status(&send(&env, &admin, &config, &ns("b"), &ask("hi"))),
        "MISS"
    );
    assert_eq!(
        status(&send(&env, &admin, &config, &[], &ask("hi"))),
        "MISS"
    );
    assert_eq!(
        status(&send(&env, &workspace_key, &config, &[], &ask("hi"))),
        "MISS",
        "another tenant"
    );
    assert_eq!(
        status(&send(&env, &workspace_key, &config, &ns("a"), &ask("hi"))),
        "MISS",
        "a namespace stays within its workspace"
    );
    for n in ["a", "b"] {
        assert_eq!(
            text(&send(&env, &admin, &config, &ns(n), &ask("hi"))),
            if n == "a" { "answer 1" } else { "answer 2" }
        );
    }
    assert_eq!(chat_calls(&up), 5);

    let s = stats(&env);
    assert_eq!(s["entries"], 5, "{s}");
    let of = |name: Value| {
        s["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["namespace"] == name)
            .map(|n| n["entries"].clone())
    };
    assert_eq!(of(json!("a")), Some(json!(2)));
    assert_eq!(of(Value::Null), Some(json!(2)));

    env.run(&["cache", "purge", "--namespace", "a"])
        .code(2)
        .stderr_has("refusing to delete the cached answers of namespace a without confirmation");
    env.run(&["cache", "purge", "--namespace", "a", "--yes"])
        .ok()
        .stderr_has("purged 2 cached answers");
    assert_eq!(
        status(&send(&env, &admin, &config, &ns("a"), &ask("hi"))),
        "MISS"
    );
    assert_eq!(
        status(&send(&env, &admin, &config, &ns("b"), &ask("hi"))),
        "HIT"
    );
    let purged = env.admin("DELETE", "/v1/cache", None).json();
    assert_eq!(purged, json!({"success": true, "purged": 4}));
    assert_eq!(stats(&env)["entries"], 0);
}

#[test]
fn a_forced_refresh_calls_the_upstream_and_replaces_the_entry() {
    let env = gateway_env(&[]);
    let up = upstream();
    integration(&env, "oai", &up);
    let (key, config) = (env.admin_key.clone(), simple(60));
    send(&env, &key, &config, &[], &ask("hi"));
    let refresh = [("x-portkey-cache-force-refresh", "true")];
    let refreshed = send(&env, &key, &config, &refresh, &ask("hi"));
    assert_eq!(status(&refreshed), "REFRESH");
    assert_eq!(text(&refreshed), "answer 2");
    let after = send(&env, &key, &config, &[], &ask("hi"));
    assert_eq!(status(&after), "HIT");
    assert_eq!(
        text(&after),
        "answer 2",
        "the refreshed answer replaced the old one"
    );
    assert_eq!(chat_calls(&up), 2);
    assert_eq!(stats(&env)["refreshes"], 1);
}

#[test]
fn a_streamed_answer_is_replayed_as_the_same_events() {
    let env = gateway_env(&[]);
    let up = upstream();
    integration(&env, "oai", &up);
    let (key, config) = (env.admin_key.clone(), simple(60));
    let mut body = ask("tell me");
    body["stream"] = json!(true);
    let first = send(&env, &key, &config, &[], &body);
    assert_eq!(status(&first), "MISS");
    // The entry is stored once the stream has ended; the client saw the end first.
    let deadline = Instant::now() + Duration::from_secs(5);
    while stats(&env)["entries"] != 1 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let second = send(&env, &key, &config, &[], &body);
    assert_eq!(status(&second), "HIT");
    assert_eq!(second.header("content-type"), Some("text/event-stream"));
    let events = second.events();
    assert_eq!(events, first.events());
    assert!(events.len() >= 3, "{events:?}");
    assert_eq!(events.last().unwrap().data, "[DONE]");
    assert!(events[1].data.contains("answer 1"), "{events:?}");
    assert_eq!(chat_calls(&up), 1, "the replay called nothing");
    let unstreamed = send(&env, &key, &config, &[], &ask("tell me"));
    assert_eq!(
        status(&unstreamed),
        "MISS",
        "a whole answer is cached apart from a stream"
    );
}

#[test]
fn a_hit_needs_no_budget() {
    let env = gateway_env(&[]);
    let up = upstream();
    integration(&env, "oai", &up);
    let config = simple(60);
    let mut hi = ask("hi");
    hi["max_tokens"] = json!(3);
    // Admission holds (body length + max_tokens) tokens: the budget fits that once.
    let held = (hi.to_string().len() + 3) as f64 * PER_TOKEN_PER_MILLION / 1e6;
    let (_, key) = env.create_key("thrifty", &["--budget", &held.to_string()]);
    let headers = [
        ("x-portkey-api-key", key.as_str()),
        ("x-portkey-config", config.as_str()),
    ];
    let first = post_json(&env, CHAT, &headers, &hi);
    assert_eq!((first.status, status(&first)), (200, "MISS"), "{first}");
    let refused = post_json(&env, CHAT, &headers, &ask("another question"));
    assert_eq!(
        refused.status, 412,
        "what is left of the budget is too little: {refused}"
    );
    assert_eq!(status(&refused), "MISS");
    for _ in 0..3 {
        let hit = send(&env, &key, &config, &[], &hi);
        assert_eq!(status(&hit), "HIT", "admission would refuse it: {hit}");
    }
    assert_eq!(chat_calls(&up), 1);
}

#[test]
fn the_cache_survives_a_restart() {
    let mut env = gateway_env(&[]);
    let up = upstream();
    integration(&env, "oai", &up);
    let config = simple(60);
    let mut body = ask("hi");
    send(
        &env,
        &env.admin_key.clone(),
        &config,
        &[("x-portkey-cache-namespace", "kept")],
        &body,
    );
    body["stream"] = json!(true);
    send(&env, &env.admin_key.clone(), &config, &[], &body);
    env.restart();
    let key = env.admin_key.clone();
    let again = send(
        &env,
        &key,
        &config,
        &[("x-portkey-cache-namespace", "kept")],
        &ask("hi"),
    );
    assert_eq!(status(&again), "HIT");
    assert_eq!(text(&again), "answer 1");
    let replay = send(&env, &key, &config, &[], &body);
    assert_eq!(status(&replay), "HIT");
    assert!(replay.body.contains("answer 2"), "{replay}");
    assert_eq!(chat_calls(&up), 2);
    assert_eq!(stats(&env)["entries"], 2);
}

#[test]
fn semantic_hits_come_from_similar_prompts_embedded_through_the_gateway() {
    let env = gateway_env(&[]);
    let up = upstream();
    integration(&env, "oai", &up);
    let key = env.admin_key.clone();
    let config = cached_config(json!({"mode": "semantic", "max_age": 60,
        "embedding_model": "@oai/text-embedding-3-small", "threshold": 0.95}));
    let embeddings = || count(&up, |r| r.path.ends_with("/embeddings"));

    let trace = [("x-portkey-trace-id", "t-semantic")];
    let first = send(
        &env,
        &key,
        &config,
        &trace,
        &ask("What is the capital of France?"),
    );
    assert_eq!(status(&first), "SEMANTIC MISS");
    let near = send(
        &env,
        &key,
        &config,
        &[("x-portkey-trace-id", "t-near")],
        &ask("Tell me France's capital"),
    );
    assert_eq!(status(&near), "SEMANTIC HIT");
    assert_eq!(text(&near), "answer 1");
    let far = send(&env, &key, &config, &[], &ask("What is the weather like?"));
    assert_eq!(status(&far), "SEMANTIC MISS");
    assert_eq!(text(&far), "answer 2");
    let mut warmer = ask("Tell me France's capital");
    warmer["temperature"] = json!(0.5);
    assert_eq!(
        status(&send(&env, &key, &config, &[], &warmer)),
        "SEMANTIC MISS",
        "other parameters, other neighbours"
    );
    assert_eq!((chat_calls(&up), embeddings()), (3, 4));
    let exact = send(
        &env,
        &key,
        &config,
        &[],
        &ask("What is the capital of France?"),
    );
    assert_eq!(status(&exact), "HIT", "an exact match needs no embedding");
    assert_eq!(embeddings(), 4);

    // The embedding is a request of its own, a child span in the caller's trace.
    let spans = records(&env, "t-semantic", 2);
    let embedding = spans
        .iter()
        .find(|r| r["endpoint"] == "/v1/embeddings")
        .expect("an embeddings record");
    let chat = spans
        .iter()
        .find(|r| r["endpoint"] == CHAT)
        .expect("the chat record");
    assert_eq!(embedding["parent_span_id"], chat["span_id"]);
    assert_eq!(embedding["model"], "text-embedding-3-small");
    assert_eq!(embedding["cache_status"], "DISABLED");
    assert_eq!(chat["cache_status"], "SEMANTIC MISS");
    let hit = records(&env, "t-near", 2);
    let hit = hit.iter().find(|r| r["endpoint"] == CHAT).unwrap();
    assert_eq!(hit["cache_status"], "SEMANTIC HIT");
    assert_eq!(hit["cost"], 0.0);
    let s = stats(&env);
    assert_eq!(
        (
            s["semantic_hits"].as_u64(),
            s["semantic_misses"].as_u64(),
            s["hits"].as_u64()
        ),
        (Some(1), Some(3), Some(1)),
        "{s}"
    );
}

#[test]
fn semantic_configs_need_an_embedding_model() {
    let env = gateway_env(&[]);
    let reply = post_json(
        &env,
        CHAT,
        &[
            ("x-portkey-api-key", &env.admin_key),
            (
                "x-portkey-config",
                &cached_config(json!({"mode": "semantic", "max_age": 60})),
            ),
        ],
        &ask("hi"),
    );
    assert_eq!(reply.status, 400);
    assert_eq!(reply.header("x-portkey-cache-status"), Some("DISABLED"));
    assert!(
        reply
            .body
            .contains("cache.embedding_model: required by the semantic mode"),
        "{reply}"
    );
}
