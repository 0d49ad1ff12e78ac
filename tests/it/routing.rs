//! The gateway's data plane end to end: the real server, real HTTP requests to its
//! OpenAI-compatible endpoints, and local HTTP servers standing in for the LLM providers.
//! Routing strategies, retries, timeouts, headers, model strings, streaming and `tollgate chat`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::{
    add_openai_integration, gateway_env, http_send, openai_chat_json, openai_chat_sse, HttpConn,
    HttpReply, TestEnv,
};
use crate::upstream::{refused_url, Recorded, Reply, Upstream};

const CHAT: &str = "/v1/chat/completions";

// ---------------------------------------------------------------------------------------------
// Upstreams and requests

/// SSE events sent at once, as the upstream's 200 answer.
fn sse_reply(events: Vec<String>) -> Reply {
    let events: Vec<&str> = events.iter().map(String::as_str).collect();
    Reply::sse(&events)
}

/// An OpenAI answer with `text`, streamed when the request asks for it, echoing the model.
fn text_reply(req: &Recorded, text: &str) -> Reply {
    let body = req.json();
    let model = body["model"].as_str().unwrap_or("?").to_string();
    if body["stream"] == true {
        sse_reply(openai_chat_sse(&model, &[text]))
    } else {
        Reply::ok(openai_chat_json(&model, text))
    }
}

/// An upstream that answers every request with `text`.
fn answering(text: &'static str) -> Upstream {
    Upstream::start(move |req| text_reply(req, text))
}

fn openai_error(message: &str) -> Value {
    json!({"error": {"message": message, "type": "api_error", "param": null, "code": null}})
}

/// An upstream that fails every request with `status`.
fn failing(status: u16, message: &'static str) -> Upstream {
    Upstream::start(move |_| Reply::status(status, openai_error(message)))
}

/// An upstream whose first `failures` requests get `status`, and the rest `text`.
fn flaky(
    failures: usize,
    fail: impl Fn() -> Reply + Send + Sync + 'static,
    text: &'static str,
) -> Upstream {
    let seen = AtomicUsize::new(0);
    Upstream::start(move |req| {
        if seen.fetch_add(1, Ordering::SeqCst) < failures {
            fail()
        } else {
            text_reply(req, text)
        }
    })
}

/// A chat request with the admin key and `headers`.
fn chat(env: &TestEnv, headers: &[(&str, &str)], body: &Value) -> HttpReply {
    let mut all = vec![("x-portkey-api-key", env.admin_key.as_str())];
    all.extend_from_slice(headers);
    http_send(&env.url, "POST", CHAT, &all, Some(&body.to_string()))
}

/// A chat request routed by `config` (sent as JSON in `x-portkey-config`).
fn chat_with_config(env: &TestEnv, config: &Value, body: &Value) -> HttpReply {
    chat(env, &[("x-portkey-config", &config.to_string())], body)
}

fn hello(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "hello"}]})
}

fn hello_stream(model: &str) -> Value {
    json!({"model": model, "stream": true, "messages": [{"role": "user", "content": "hello"}]})
}

/// The answer's text.
#[track_caller]
fn content(r: &HttpReply) -> String {
    let v = r.json();
    v["choices"][0]["message"]["content"]
        .as_str()
        .unwrap_or_else(|| panic!("no message content\n{r}"))
        .to_string()
}

/// The text of a streamed answer, from its chunks' deltas.
fn stream_text(r: &HttpReply) -> String {
    r.sse_data()
        .iter()
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|v| {
            v["choices"][0]["delta"]["content"]
                .as_str()
                .map(String::from)
        })
        .collect()
}

#[track_caller]
fn assert_path(r: &HttpReply, path: &str) {
    assert_eq!(
        r.header("x-portkey-last-used-option-index"),
        Some(path),
        "last used option\n{r}"
    );
}

/// The JSON body of the last request an upstream received.
#[track_caller]
fn last_body(up: &Upstream) -> Value {
    up.requests()
        .last()
        .expect("the upstream received a request")
        .json()
}

fn fallback(targets: Value) -> Value {
    json!({"strategy": {"mode": "fallback"}, "targets": targets})
}

// ---------------------------------------------------------------------------------------------
// 1. Fallback

#[test]
fn fallback_moves_on_after_429_5xx_and_a_refused_connection() {
    let env = gateway_env(&[]);
    let ok = answering("from the second target");
    let r429 = failing(429, "slow down");
    let r500 = failing(500, "boom");
    let r503 = failing(503, "overloaded");
    add_openai_integration(&env, "ok", &ok.url);
    add_openai_integration(&env, "r429", &r429.url);
    add_openai_integration(&env, "r500", &r500.url);
    add_openai_integration(&env, "r503", &r503.url);
    add_openai_integration(&env, "down", &refused_url());

    for first in ["r429", "r500", "r503", "down"] {
        let config = fallback(json!([{"provider": format!("@{first}")}, {"provider": "@ok"}]));
        let r = chat_with_config(&env, &config, &hello("gpt-4o"));
        assert_eq!(r.status, 200, "first target {first}\n{r}");
        assert_eq!(content(&r), "from the second target");
        assert_path(&r, "config.targets[1]");
        assert_eq!(r.header("x-portkey-provider"), Some("openai"), "{r}");
    }
    for up in [&r429, &r500, &r503] {
        assert_eq!(up.requests().len(), 1, "no retry was configured");
    }
    assert_eq!(ok.requests().len(), 4);
    assert_eq!(last_body(&ok)["model"], "gpt-4o");
}

#[test]
fn fallback_on_timeout_and_the_408_it_is_based_on() {
    let env = gateway_env(&[]);
    let ok = answering("fast");
    let slow = Upstream::start(|req| {
        Reply::Delay(
            Duration::from_millis(1500),
            Box::new(text_reply(req, "late")),
        )
    });
    add_openai_integration(&env, "ok", &ok.url);
    add_openai_integration(&env, "slow", &slow.url);

    let mut config = fallback(json!([{"provider": "@slow"}, {"provider": "@ok"}]));
    config["request_timeout"] = json!(200);
    let r = chat_with_config(&env, &config, &hello("gpt-4o"));
    assert_eq!(r.status, 200, "{r}");
    assert_eq!(content(&r), "fast");
    assert_path(&r, "config.targets[1]");
    assert_eq!(slow.requests().len(), 1);

    // Alone, the slow target answers 408 in Portkey's shape.
    let r = chat_with_config(
        &env,
        &json!({"provider": "@slow", "request_timeout": 200}),
        &hello("gpt-4o"),
    );
    assert_eq!(r.status, 408, "{r}");
    let body = r.json();
    assert_eq!(
        body["error"]["message"], "Request exceeded the timeout sent in the request: 200ms",
        "{r}"
    );
    assert_eq!(body["error"]["type"], "timeout_error", "{r}");
    assert_path(&r, "config");

    // The x-portkey-request-timeout header does the same without a config.
    let r = chat(
        &env,
        &[("x-portkey-request-timeout", "200")],
        &hello("@slow/gpt-4o"),
    );
    assert_eq!(r.status, 408, "{r}");
}

#[test]
fn on_status_codes_limit_what_falls_back() {
    let env = gateway_env(&[]);
    let ok = answering("second");
    let r429 = failing(429, "slow down");
    let r500 = failing(500, "boom");
    add_openai_integration(&env, "ok", &ok.url);
    add_openai_integration(&env, "r429", &r429.url);
    add_openai_integration(&env, "r500", &r500.url);
    let only_429 = |first: &str| {
        json!({"strategy": {"mode": "fallback", "on_status_codes": [429]},
               "targets": [{"provider": format!("@{first}")}, {"provider": "@ok"}]})
    };

    // A 500 is not in the list: it is final.
    let r = chat_with_config(&env, &only_429("r500"), &hello("gpt-4o"));
    assert_eq!(r.status, 500, "{r}");
    let body = r.json();
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("boom")),
        "{r}"
    );
    assert_path(&r, "config.targets[0]");
    assert_eq!(r.header("x-portkey-retry-attempt-count"), Some("0"), "{r}");
    assert_eq!(ok.requests().len(), 0, "no fallback on a 500");

    // A 429 is: the second target answers.
    let r = chat_with_config(&env, &only_429("r429"), &hello("gpt-4o"));
    assert_eq!(r.status, 200, "{r}");
    assert_path(&r, "config.targets[1]");
    assert_eq!(ok.requests().len(), 1);
}

#[test]
fn when_every_target_fails_the_last_error_comes_back() {
    let env = gateway_env(&[]);
    let r503 = failing(503, "first is overloaded");
    let r500 = failing(500, "second broke");
    let r429 = failing(429, "third says slow down");
    add_openai_integration(&env, "r503", &r503.url);
    add_openai_integration(&env, "r500", &r500.url);
    add_openai_integration(&env, "r429", &r429.url);
    let config = fallback(json!([
        {"provider": "@r503"}, {"provider": "@r500"}, {"provider": "@r429"}
    ]));
    let r = chat_with_config(&env, &config, &hello("gpt-4o"));
    assert_eq!(r.status, 429, "{r}");
    let body = r.json();
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("third says slow down"), "{r}");
    assert!(
        !message.contains("first") && !message.contains("second"),
        "{r}"
    );
    assert_eq!(body["error"]["type"], "rate_limit_error", "{r}");
    assert!(body["error"].get("code").is_some(), "OpenAI's shape\n{r}");
    assert_path(&r, "config.targets[2]");
    assert_eq!(r.header("x-portkey-provider"), Some("openai"));
    for up in [&r503, &r500, &r429] {
        assert_eq!(up.requests().len(), 1);
    }
}

// ---------------------------------------------------------------------------------------------
// 2. Retry

#[test]
fn retry_recovers_and_reports_its_attempts() {
    let env = gateway_env(&["--retry-base-ms", "10"]);
    let once = flaky(
        1,
        || Reply::status(503, openai_error("overloaded")),
        "second try",
    );
    let always = failing(503, "still overloaded");
    let r500 = failing(500, "boom");
    add_openai_integration(&env, "once", &once.url);
    add_openai_integration(&env, "always", &always.url);
    add_openai_integration(&env, "r500", &r500.url);

    let r = chat_with_config(
        &env,
        &json!({"provider": "@once", "retry": {"attempts": 2}}),
        &hello("gpt-4o"),
    );
    assert_eq!(r.status, 200, "{r}");
    assert_eq!(content(&r), "second try");
    assert_eq!(r.header("x-portkey-retry-attempt-count"), Some("1"), "{r}");
    assert_eq!(once.requests().len(), 2);

    // Retries used up: -1, and the upstream saw the first call plus two retries.
    let r = chat_with_config(
        &env,
        &json!({"provider": "@always", "retry": {"attempts": 2}}),
        &hello("gpt-4o"),
    );
    assert_eq!(r.status, 503, "{r}");
    assert_eq!(r.header("x-portkey-retry-attempt-count"), Some("-1"), "{r}");
    assert_eq!(always.requests().len(), 3);

    // A status outside retry.on_status_codes is not retried.
    let r = chat_with_config(
        &env,
        &json!({"provider": "@r500", "retry": {"attempts": 3, "on_status_codes": [429]}}),
        &hello("gpt-4o"),
    );
    assert_eq!(r.status, 500, "{r}");
    assert_eq!(r.header("x-portkey-retry-attempt-count"), Some("0"), "{r}");
    assert_eq!(r500.requests().len(), 1);

    // A stream is retried as well, before its first byte.
    let before = once.requests().len();
    let r = chat_with_config(
        &env,
        &json!({"provider": "@always", "retry": {"attempts": 1}}),
        &hello_stream("gpt-4o"),
    );
    assert_eq!(r.status, 503, "{r}");
    assert_eq!(always.requests().len(), 5);
    let twice = flaky(
        2,
        || Reply::status(502, openai_error("bad gateway")),
        "streamed after two retries",
    );
    add_openai_integration(&env, "twice", &twice.url);
    let r = chat_with_config(
        &env,
        &json!({"provider": "@twice", "retry": {"attempts": 3}}),
        &hello_stream("gpt-4o"),
    );
    assert_eq!(r.status, 200, "{r}");
    assert_eq!(stream_text(&r), "streamed after two retries");
    assert_eq!(r.header("x-portkey-retry-attempt-count"), Some("2"), "{r}");
    assert_eq!(twice.requests().len(), 3);
    assert_eq!(once.requests().len(), before);

    // No retry configured: a success says 0.
    let r = chat(&env, &[], &hello("@once/gpt-4o"));
    assert_eq!(r.status, 200, "{r}");
    assert_eq!(r.header("x-portkey-retry-attempt-count"), Some("0"), "{r}");
}

#[test]
fn retry_waits_as_long_as_retry_after_asks() {
    let env = gateway_env(&["--retry-base-ms", "10"]);
    let ms = flaky(
        1,
        || {
            Reply::Json(
                429,
                openai_error("rate limited"),
                vec![("retry-after-ms", "300".into())],
            )
        },
        "after 300 ms",
    );
    let secs = flaky(
        1,
        || {
            Reply::Json(
                429,
                openai_error("rate limited"),
                vec![("retry-after", "1".into())],
            )
        },
        "after 1 s",
    );
    let limited = Upstream::start(|_| {
        Reply::Json(
            429,
            openai_error("rate limited"),
            vec![("retry-after-ms", "1500".into())],
        )
    });
    add_openai_integration(&env, "ms", &ms.url);
    add_openai_integration(&env, "secs", &secs.url);
    add_openai_integration(&env, "limited", &limited.url);
    let config = |slug: &str| {
        json!({"provider": format!("@{slug}"),
               "retry": {"attempts": 1, "use_retry_after_header": true}})
    };

    let started = Instant::now();
    let r = chat_with_config(&env, &config("ms"), &hello("gpt-4o"));
    let elapsed_ms = started.elapsed();
    assert_eq!(r.status, 200, "{r}");
    assert_eq!(content(&r), "after 300 ms");
    assert_eq!(r.header("x-portkey-retry-attempt-count"), Some("1"), "{r}");
    assert_eq!(ms.requests().len(), 2);
    assert!(
        elapsed_ms >= Duration::from_millis(250),
        "retry-after-ms: 300 honoured, but the request took {elapsed_ms:?}"
    );

    let started = Instant::now();
    let r = chat_with_config(&env, &config("secs"), &hello("gpt-4o"));
    let elapsed_s = started.elapsed();
    assert_eq!(r.status, 200, "{r}");
    assert_eq!(content(&r), "after 1 s");
    assert_eq!(secs.requests().len(), 2);
    assert!(
        elapsed_s >= Duration::from_millis(950),
        "retry-after: 1 honoured, but the request took {elapsed_s:?}"
    );
    eprintln!("retry-after-ms 300: {elapsed_ms:?}; retry-after 1: {elapsed_s:?}");

    // The plural spelling of the docs works too; a 429 that stays 429 passes its
    // Retry-After on to the client, in seconds.
    let r = chat_with_config(
        &env,
        &json!({"provider": "@limited",
                "retry": {"attempts": 1, "use_retry_after_headers": true}}),
        &hello("gpt-4o"),
    );
    assert_eq!(r.status, 429, "{r}");
    assert_eq!(r.header("x-portkey-retry-attempt-count"), Some("-1"), "{r}");
    assert_eq!(r.header("retry-after"), Some("2"), "{r}");
    assert_eq!(limited.requests().len(), 2);
}

// ---------------------------------------------------------------------------------------------
// 3. Loadbalance

/// Sends `n` requests over one connection; returns the target path of each answer.
fn loadbalance_run(env: &TestEnv, config: &Value, n: usize) -> Vec<String> {
    let config = config.to_string();
    let body = hello("gpt-4o").to_string();
    let headers = [
        ("x-portkey-api-key", env.admin_key.as_str()),
        ("x-portkey-config", config.as_str()),
    ];
    let mut conn = HttpConn::connect(&env.url);
    (0..n)
        .map(|_| {
            let r = conn.request("POST", CHAT, &headers, Some(&body));
            assert_eq!(r.status, 200, "{r}");
            r.header("x-portkey-last-used-option-index")
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

#[test]
fn loadbalance_follows_the_weights_and_a_seed_makes_it_reproducible() {
    let mut env = gateway_env(&["--lb-seed", "42"]);
    let heavy = answering("heavy");
    let light = answering("light");
    let never = answering("never");
    add_openai_integration(&env, "heavy", &heavy.url);
    add_openai_integration(&env, "light", &light.url);
    add_openai_integration(&env, "never", &never.url);
    let config = json!({"strategy": {"mode": "loadbalance"}, "targets": [
        {"provider": "@heavy", "weight": 0.7},
        {"provider": "@light", "weight": 0.3},
        {"provider": "@never", "weight": 0}
    ]});

    let started = Instant::now();
    let first = loadbalance_run(&env, &config, 1000);
    let took = started.elapsed();
    let to_heavy = first.iter().filter(|p| *p == "config.targets[0]").count();
    let to_light = first.iter().filter(|p| *p == "config.targets[1]").count();
    assert_eq!(to_heavy + to_light, 1000, "{first:?}");
    assert_eq!(heavy.requests().len(), to_heavy);
    assert_eq!(light.requests().len(), to_light);
    assert_eq!(never.requests().len(), 0, "weight 0 gets no traffic");
    assert!(
        (650..=750).contains(&to_heavy),
        "0.7/0.3 over 1,000 requests: {to_heavy} / {to_light}"
    );
    eprintln!("loadbalance: {to_heavy}/{to_light} in {took:?} for 1,000 requests");

    // Same seed, new server: the very same sequence of choices.
    env.stop();
    env.start_server(&["--lb-seed", "42"]);
    let second = loadbalance_run(&env, &config, 1000);
    assert!(
        first == second,
        "the seeded sequence differs on a second server"
    );
    assert_eq!(never.requests().len(), 0);
}

// ---------------------------------------------------------------------------------------------
// 4. Conditional routing

#[test]
fn conditional_routing_on_metadata_and_params() {
    let env = gateway_env(&[]);
    let big = answering("big");
    let smart = answering("smart");
    let small = answering("small");
    add_openai_integration(&env, "big", &big.url);
    add_openai_integration(&env, "smart", &smart.url);
    add_openai_integration(&env, "small", &small.url);
    let targets = json!([
        {"name": "big", "provider": "@big", "override_params": {"model": "big-model"}},
        {"name": "smart", "provider": "@smart"},
        {"name": "small", "provider": "@small"}
    ]);
    let conditions = json!([
        {"query": {"metadata.tier": {"$eq": "pro"}}, "then": "big"},
        {"query": {"params.max_tokens": {"$gt": 4000}}, "then": "big"},
        {"query": {"params.model": {"$in": ["smart", "smartest"]}}, "then": "smart"}
    ]);
    let config = json!({"strategy": {"mode": "conditional", "conditions": conditions,
                                     "default": "small"}, "targets": targets});
    let send = |metadata: Option<&str>, body: Value| {
        let config = config.to_string();
        let mut headers = vec![("x-portkey-config", config.as_str())];
        if let Some(m) = metadata {
            headers.push(("x-portkey-metadata", m));
        }
        chat(&env, &headers, &body)
    };

    let r = send(Some(r#"{"tier":"pro"}"#), hello("gpt-4o"));
    assert_eq!(content(&r), "big", "{r}");
    assert_path(&r, "config.targets[0]");
    assert_eq!(last_body(&big)["model"], "big-model");

    let mut long = hello("gpt-4o");
    long["max_tokens"] = json!(5000);
    let r = send(Some(r#"{"tier":"free"}"#), long);
    assert_eq!(content(&r), "big", "max_tokens > 4000\n{r}");

    let mut short = hello("gpt-4o");
    short["max_tokens"] = json!(4000);
    let r = send(None, short);
    assert_eq!(content(&r), "small", "4000 is not > 4000\n{r}");
    assert_path(&r, "config.targets[2]");

    let r = send(None, hello("smartest"));
    assert_eq!(content(&r), "smart", "{r}");
    assert_path(&r, "config.targets[1]");
    assert_eq!(last_body(&smart)["model"], "smartest");

    let r = send(Some(r#"{"tier":"free"}"#), hello("gpt-4o"));
    assert_eq!(content(&r), "small", "the default\n{r}");
    assert_eq!(big.requests().len(), 2);
    assert_eq!(smart.requests().len(), 1);
    assert_eq!(small.requests().len(), 2);

    // url.pathname: embeddings go elsewhere.
    let by_path = json!({"strategy": {"mode": "conditional", "conditions": [
            {"query": {"url.pathname": {"$regex": "embeddings$"}}, "then": "smart"}],
            "default": "small"}, "targets": targets});
    let r = http_send(
        &env.url,
        "POST",
        "/v1/embeddings",
        &[
            ("x-portkey-api-key", &env.admin_key),
            ("x-portkey-config", &by_path.to_string()),
        ],
        Some(r#"{"model":"text-embedding-3-small","input":"hi"}"#),
    );
    assert_eq!(r.status, 200, "{r}");
    assert_path(&r, "config.targets[1]");
    let sent = smart.requests().pop().unwrap();
    assert_eq!(sent.path, "/v1/embeddings");
    let r = chat_with_config(&env, &by_path, &hello("gpt-4o"));
    assert_path(&r, "config.targets[2]");

    // No match and no default: Portkey's 400.
    let no_default = json!({"strategy": {"mode": "conditional", "conditions": conditions},
                            "targets": targets});
    let r = chat_with_config(&env, &no_default, &hello("gpt-4o"));
    assert_eq!(r.status, 400, "{r}");
    let body = r.json();
    assert_eq!(
        body["message"], "Query router did not resolve to any valid target",
        "{r}"
    );
    assert_eq!(body["status"], "failure", "{r}");
    assert_eq!(
        big.requests().len() + smart.requests().len() + small.requests().len(),
        7
    );
}

// ---------------------------------------------------------------------------------------------
// 5. Nested strategies

#[test]
fn nested_strategies_report_the_nested_path() {
    let env = gateway_env(&[]);
    let ok = answering("nested");
    let unused = answering("unused");
    let bad = failing(503, "overloaded");
    add_openai_integration(&env, "ok", &ok.url);
    add_openai_integration(&env, "unused", &unused.url);
    add_openai_integration(&env, "bad", &bad.url);

    // loadbalance → fallback → targets.
    let config = json!({
        "strategy": {"mode": "loadbalance"},
        "override_params": {"temperature": 0.3},
        "targets": [
            {"provider": "@unused", "weight": 0},
            {"weight": 1, "strategy": {"mode": "fallback"},
             "targets": [{"provider": "@bad"}, {"provider": "@ok"}]}
        ]
    });
    let r = chat_with_config(&env, &config, &hello("gpt-4o"));
    assert_eq!(r.status, 200, "{r}");
    assert_eq!(content(&r), "nested");
    assert_path(&r, "config.targets[1].targets[1]");
    assert_eq!(
        last_body(&ok)["temperature"],
        0.3,
        "inherited override_params"
    );

    // One level deeper: loadbalance → fallback → conditional → target.
    let config = json!({
        "strategy": {"mode": "loadbalance"},
        "targets": [{
            "strategy": {"mode": "fallback"},
            "targets": [
                {"provider": "@bad"},
                {"strategy": {"mode": "conditional",
                              "conditions": [{"query": {"metadata.team": "ml"}, "then": "b"}],
                              "default": "a"},
                 "targets": [{"name": "a", "provider": "@unused"},
                             {"name": "b", "provider": "@ok"}]}
            ]
        }]
    });
    let r = chat(
        &env,
        &[
            ("x-portkey-config", &config.to_string()),
            ("x-portkey-metadata", r#"{"team":"ml"}"#),
        ],
        &hello("gpt-4o"),
    );
    assert_eq!(r.status, 200, "{r}");
    assert_path(&r, "config.targets[0].targets[1].targets[1]");
    assert_eq!(unused.requests().len(), 0);
    assert_eq!(ok.requests().len(), 2);
}

// ---------------------------------------------------------------------------------------------
// 6. Config inheritance, saved configs and a key's defaults

#[test]
fn params_are_overridden_defaulted_and_dropped() {
    let env = gateway_env(&[]);
    let a = answering("a");
    add_openai_integration(&env, "a", &a.url);
    add_openai_integration(&env, "down", &refused_url());

    // Top-level override_params reach the upstream.
    let config = json!({"override_params": {"model": "top-model", "temperature": 0.5},
                        "strategy": {"mode": "single"}, "targets": [{"provider": "@a"}]});
    let r = chat_with_config(&env, &config, &hello("gpt-4o"));
    assert_eq!(r.status, 200, "{r}");
    assert_eq!(last_body(&a)["model"], "top-model");
    assert_path(&r, "config.targets[0]");

    // A target's own override_params win; the rest is inherited.
    let mut config = config;
    config["targets"][0]["override_params"] = json!({"model": "target-model"});
    chat_with_config(&env, &config, &hello("gpt-4o"));
    let body = last_body(&a);
    assert_eq!(body["model"], "target-model");
    assert_eq!(body["temperature"], 0.5);

    // default_params fill only what the request lacks.
    let config = json!({"provider": "@a",
                        "default_params": {"temperature": 0.1, "max_tokens": 50}});
    let mut request = hello("gpt-4o");
    request["temperature"] = json!(0.9);
    chat_with_config(&env, &config, &request);
    let body = last_body(&a);
    assert_eq!(body["temperature"], 0.9);
    assert_eq!(body["max_tokens"], 50);

    // drop_params remove fields, nested ones too.
    let config = json!({"provider": "@a", "drop_params": ["user", "tools[*].function.strict"]});
    let mut request = hello("gpt-4o");
    request["user"] = json!("u-1");
    request["tools"] = json!([{"type": "function", "function": {
        "name": "f", "strict": true, "parameters": {"type": "object"}}}]);
    let r = chat_with_config(&env, &config, &request);
    assert_eq!(r.status, 200, "{r}");
    let body = last_body(&a);
    assert!(body.get("user").is_none(), "{body}");
    assert_eq!(body["tools"][0]["function"]["name"], "f");
    assert!(
        body["tools"][0]["function"].get("strict").is_none(),
        "{body}"
    );
    assert_eq!(body["messages"][0]["content"], "hello");

    // override_params.model may name the integration: the way to mix providers in a fallback.
    let config = fallback(json!([
        {"override_params": {"model": "@down/gpt-4o"}},
        {"override_params": {"model": "@a/routed-model"}}
    ]));
    let r = chat_with_config(&env, &config, &hello("ignored"));
    assert_eq!(r.status, 200, "{r}");
    assert_path(&r, "config.targets[1]");
    assert_eq!(last_body(&a)["model"], "routed-model");
}

#[test]
fn saved_configs_and_a_keys_defaults_apply() {
    let env = gateway_env(&[]);
    let a = answering("a");
    let b = answering("b");
    add_openai_integration(&env, "a", &a.url);
    add_openai_integration(&env, "b", &b.url);
    let create = |name: &str, config: Value| {
        let file = env.write(&format!("{name}.json"), &config.to_string());
        let out = env
            .run(&[
                "configs", "create", "--name", name, "-f", &file, "-o", "json",
            ])
            .ok();
        out.json()["slug"].as_str().expect("a slug").to_string()
    };
    let saved = create(
        "saved",
        json!({"provider": "@b", "override_params": {"model": "saved-model"}}),
    );
    assert!(saved.starts_with("pc-saved-"), "{saved}");

    // By slug in x-portkey-config.
    let r = chat(&env, &[("x-portkey-config", &saved)], &hello("gpt-4o"));
    assert_eq!(r.status, 200, "{r}");
    assert_eq!(content(&r), "b");
    assert_eq!(last_body(&b)["model"], "saved-model");
    assert_path(&r, "config");
    let r = chat(
        &env,
        &[("x-portkey-config", "pc-nosuch-abc123")],
        &hello("gpt-4o"),
    );
    assert_eq!(r.status, 400, "{r}");
    assert!(r.body.contains("pc-nosuch-abc123"), "{r}");

    // As a key's default config, which a request's own config replaces.
    let (_, key) = env.create_key("k", &["--config", &saved]);
    let as_key = |headers: &[(&str, &str)], metadata: Option<&str>| {
        let mut all = vec![("x-portkey-api-key", key.as_str())];
        all.extend_from_slice(headers);
        if let Some(m) = metadata {
            all.push(("x-portkey-metadata", m));
        }
        http_send(
            &env.url,
            "POST",
            CHAT,
            &all,
            Some(&hello("gpt-4o").to_string()),
        )
    };
    let r = as_key(&[], None);
    assert_eq!(r.status, 200, "{r}");
    assert_eq!(content(&r), "b");
    let own = json!({"provider": "@a"}).to_string();
    let r = as_key(&[("x-portkey-config", &own)], None);
    assert_eq!(content(&r), "a", "{r}");

    // A key's default metadata is merged into the request's, and wins.
    let routed = create(
        "routed",
        json!({"strategy": {"mode": "conditional",
                  "conditions": [{"query": {"$and": [{"metadata.tier": "pro"},
                                                     {"metadata.team": "ml"}]},
                                  "then": "pro"}],
                  "default": "basic"},
               "targets": [{"name": "pro", "provider": "@b"},
                           {"name": "basic", "provider": "@a"}]}),
    );
    let (_, key) = env.create_key("pro-key", &["--config", &routed, "--metadata", "tier=pro"]);
    let send = |metadata: Option<&str>| {
        let mut headers = vec![("x-portkey-api-key", key.as_str())];
        if let Some(m) = metadata {
            headers.push(("x-portkey-metadata", m));
        }
        http_send(
            &env.url,
            "POST",
            CHAT,
            &headers,
            Some(&hello("gpt-4o").to_string()),
        )
    };
    let r = send(Some(r#"{"team":"ml"}"#));
    assert_eq!(content(&r), "b", "key tier=pro + request team=ml\n{r}");
    let r = send(Some(r#"{"team":"ml","tier":"free"}"#));
    assert_eq!(content(&r), "b", "the key's tier wins\n{r}");
    let r = send(None);
    assert_eq!(content(&r), "a", "no team: the default\n{r}");
}

#[test]
fn control_plane_changes_reach_the_gateway_at_once() {
    let env = gateway_env(&[]);
    let a = answering("a");
    let b = answering("b");
    add_openai_integration(&env, "x", &a.url);
    add_openai_integration(&env, "y", &b.url);
    let file = env.write("c.json", &json!({"provider": "@x"}).to_string());
    let out = env
        .run(&[
            "configs", "create", "--name", "live", "-f", &file, "-o", "json",
        ])
        .ok();
    let slug = out.json()["slug"].as_str().unwrap().to_string();
    let (id, key) = env.create_key("live", &[]);
    let send = || {
        http_send(
            &env.url,
            "POST",
            CHAT,
            &[("x-portkey-api-key", &key), ("x-portkey-config", &slug)],
            Some(&hello("gpt-4o").to_string()),
        )
    };
    assert_eq!(content(&send()), "a");

    // A new version of the config.
    let file = env.write("c.json", &json!({"provider": "@y"}).to_string());
    env.run(&["configs", "update", &slug, "-f", &file]).ok();
    assert_eq!(content(&send()), "b");

    // The integration's base URL moves.
    env.run(&[
        "integrations",
        "update",
        "y",
        "--base-url",
        &format!("{}/v1", a.url),
    ])
    .ok();
    assert_eq!(content(&send()), "a");

    // The integration goes away.
    env.run(&["integrations", "delete", "y", "--yes"]).ok();
    let r = send();
    assert_eq!(r.status, 400, "{r}");
    let message = r.json()["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(message.contains("\"y\""), "{r}");

    // The key is revoked.
    env.run(&["keys", "delete", &id, "--yes"]).ok();
    assert_eq!(send().status, 401);
    assert_eq!(a.requests().len(), 2);
    assert_eq!(b.requests().len(), 1);
}

// ---------------------------------------------------------------------------------------------
// 7. Headers and who is calling

#[test]
fn trace_ids_provider_header_and_authentication() {
    let env = gateway_env(&[]);
    let a = answering("a");
    add_openai_integration(&env, "a", &a.url);
    let body = hello("@a/gpt-4o").to_string();
    let post = |headers: &[(&str, &str)]| http_send(&env.url, "POST", CHAT, headers, Some(&body));
    let admin = ("x-portkey-api-key", env.admin_key.as_str());

    let r = post(&[admin, ("x-portkey-trace-id", "my-trace-1")]);
    assert_eq!(r.status, 200, "{r}");
    assert_eq!(r.header("x-portkey-trace-id"), Some("my-trace-1"));
    assert_eq!(r.header("x-portkey-provider"), Some("openai"));

    let first = post(&[admin]);
    let second = post(&[admin]);
    let (t1, t2) = (
        first.header("x-portkey-trace-id").unwrap_or_default(),
        second.header("x-portkey-trace-id").unwrap_or_default(),
    );
    assert!(
        t1.len() >= 16 && t1 != t2,
        "generated trace ids: {t1:?} {t2:?}"
    );

    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let r = post(&[admin, ("traceparent", traceparent)]);
    assert_eq!(
        r.header("x-portkey-trace-id"),
        Some("4bf92f3577b34da6a3ce929d0e0e4736")
    );
    let r = post(&[
        admin,
        ("traceparent", traceparent),
        ("x-portkey-trace-id", "explicit"),
    ]);
    assert_eq!(r.header("x-portkey-trace-id"), Some("explicit"));

    // The OpenAI SDK and Mastra send only Authorization: Bearer.
    let bearer = format!("Bearer {}", env.admin_key);
    let r = post(&[("authorization", &bearer)]);
    assert_eq!(r.status, 200, "{r}");
    // The Portkey SDK's placeholder beside a valid x-portkey-api-key.
    let r = post(&[admin, ("authorization", "Bearer OPENAI_API_KEY")]);
    assert_eq!(r.status, 200, "{r}");
    // Neither the caller's key nor the placeholder goes upstream: the integration's does.
    for req in a.requests() {
        assert_eq!(req.method, "POST");
        assert_eq!(req.path, "/v1/chat/completions");
        assert_eq!(req.header("authorization"), Some("Bearer sk-upstream-test"));
        assert!(req.header("x-portkey-api-key").is_none());
    }

    let r = post(&[]);
    assert_eq!(r.status, 401, "{r}");
    let r = post(&[("x-portkey-api-key", "tgk_wrong")]);
    assert_eq!(r.status, 401, "{r}");
    let r = post(&[("authorization", "Bearer tgk_wrong")]);
    assert_eq!(r.status, 401, "{r}");

    // A workspace key: the default scopes may call the gateway, configs.read alone may not.
    let (_, caller) = env.create_key("caller", &[]);
    let r = post(&[("authorization", &format!("Bearer {caller}"))]);
    assert_eq!(r.status, 200, "{r}");
    let (_, reader) = env.create_key("reader", &["--scopes", "configs.read"]);
    let r = post(&[("x-portkey-api-key", &reader)]);
    assert_eq!(r.status, 403, "{r}");
    assert!(r.body.contains("completions.write"), "{r}");
    assert_eq!(a.requests().len(), 8);
}

#[test]
fn an_empty_portkey_key_header_falls_back_to_bearer() {
    // Portkey reads `x-portkey-api-key || Authorization`, so an empty header counts as absent:
    // clients that always send the header from an unset variable still work there.
    let env = gateway_env(&[]);
    let a = answering("a");
    add_openai_integration(&env, "a", &a.url);
    let bearer = format!("Bearer {}", env.admin_key);
    let r = http_send(
        &env.url,
        "POST",
        CHAT,
        &[("x-portkey-api-key", ""), ("authorization", &bearer)],
        Some(&hello("@a/gpt-4o").to_string()),
    );
    assert_eq!(r.status, 200, "{r}");
}

// ---------------------------------------------------------------------------------------------
// 8. Model strings

#[test]
fn model_strings_and_provider_headers_pick_the_integration() {
    let env = gateway_env(&[]);
    let a = answering("a");
    let b = answering("b");
    add_openai_integration(&env, "a", &a.url);
    add_openai_integration(&env, "b", &b.url);

    let r = chat(&env, &[], &hello("@a/meta-llama/llama-3"));
    assert_eq!(content(&r), "a", "{r}");
    assert_eq!(last_body(&a)["model"], "meta-llama/llama-3");

    let r = chat(&env, &[], &hello("@b@gpt-4o"));
    assert_eq!(content(&r), "b", "Mastra's form\n{r}");
    assert_eq!(last_body(&b)["model"], "gpt-4o");

    let r = chat(&env, &[("x-portkey-provider", "@a")], &hello("gpt-4o-mini"));
    assert_eq!(content(&r), "a", "{r}");
    assert_eq!(last_body(&a)["model"], "gpt-4o-mini");

    let r = chat(
        &env,
        &[("x-portkey-virtual-key", "b")],
        &hello("gpt-4o-mini"),
    );
    assert_eq!(content(&r), "b", "{r}");
    assert_eq!(last_body(&b)["model"], "gpt-4o-mini");

    // Workers AI ids are models, not slugs.
    let r = chat(
        &env,
        &[("x-portkey-provider", "@a")],
        &hello("@cf/meta/llama-3-8b"),
    );
    assert_eq!(content(&r), "a", "{r}");
    assert_eq!(last_body(&a)["model"], "@cf/meta/llama-3-8b");

    let r = chat(&env, &[], &hello("@nosuch/gpt-4o"));
    assert_eq!(r.status, 400, "{r}");
    assert!(r.json()["error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("nosuch")));

    let r = chat(&env, &[], &hello("gpt-4o"));
    assert_eq!(r.status, 400, "{r}");
    assert!(r.body.contains("provider"), "{r}");
    assert_eq!(a.requests().len() + b.requests().len(), 5);
}

#[test]
fn an_inline_provider_with_custom_host_and_forwarded_headers() {
    let env = gateway_env(&[]);
    let up = answering("inline");
    let config = json!({"provider": "openai", "api_key": "sk-inline",
                        "custom_host": format!("{}/v1", up.url),
                        "forward_headers": ["x-tenant"]});
    let r = chat(
        &env,
        &[
            ("x-portkey-config", &config.to_string()),
            ("x-tenant", "acme"),
            ("x-not-forwarded", "1"),
        ],
        &hello("gpt-4o"),
    );
    assert_eq!(r.status, 200, "{r}");
    assert_eq!(content(&r), "inline");
    let sent = &up.requests()[0];
    assert_eq!(sent.header("authorization"), Some("Bearer sk-inline"));
    assert_eq!(sent.header("x-tenant"), Some("acme"));
    assert!(sent.header("x-not-forwarded").is_none());
    assert!(sent.header("x-portkey-config").is_none());

    // x-portkey-forward-headers is a comma-separated list; credentials are never forwarded.
    let r = chat(
        &env,
        &[
            ("x-portkey-provider", "openai"),
            ("x-portkey-custom-host", &format!("{}/v1", up.url)),
            ("x-portkey-forward-headers", "x-tenant, x-portkey-api-key"),
            ("x-tenant", "globex"),
        ],
        &hello("gpt-4o"),
    );
    // A bare provider slug in the header is not enough: its key would have to come in
    // Authorization, which carries the tollgate key here. A config can carry the api_key.
    assert_eq!(r.status, 400, "{r}");
    assert!(r.body.contains("provider"), "{r}");
    let config = json!({"provider": "openai", "api_key": "sk-inline"});
    let r = chat(
        &env,
        &[
            ("x-portkey-config", &config.to_string()),
            ("x-portkey-custom-host", &format!("{}/v1", up.url)),
            ("x-portkey-forward-headers", "x-tenant, x-portkey-api-key"),
            ("x-tenant", "globex"),
        ],
        &hello("gpt-4o"),
    );
    assert_eq!(r.status, 200, "{r}");
    let sent = &up.requests()[1];
    assert_eq!(sent.header("x-tenant"), Some("globex"));
    assert!(sent.header("x-portkey-api-key").is_none());
    assert_eq!(sent.header("authorization"), Some("Bearer sk-inline"));
}

// ---------------------------------------------------------------------------------------------
// 9. Streaming

#[test]
fn keep_alive_comments_pass_harmlessly() {
    let env = gateway_env(&[]);
    let up = Upstream::start(|req| {
        let model = req.json()["model"].as_str().unwrap_or("?").to_string();
        let mut events = Vec::new();
        for e in openai_chat_sse(&model, &["Hello", " world"]) {
            events.push(": ping\n\n".to_string());
            events.push(e);
        }
        sse_reply(events)
    });
    add_openai_integration(&env, "a", &up.url);
    let r = chat(&env, &[], &hello_stream("@a/gpt-4o"));
    assert_eq!(r.status, 200, "{r}");
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("text/event-stream")),
        "{r}"
    );
    for line in r.body.lines().filter(|l| !l.is_empty()) {
        assert!(
            line.starts_with("data: "),
            "only data events: {line:?}\n{r}"
        );
    }
    assert_eq!(stream_text(&r), "Hello world");
    assert_eq!(r.sse_data().last().map(String::as_str), Some("[DONE]"));
    assert_eq!(r.header("x-portkey-provider"), Some("openai"), "{r}");
    assert!(r.header("x-portkey-trace-id").is_some(), "{r}");
    // Without include_usage the client gets no usage chunk.
    assert!(!r.body.contains("\"usage\":{"), "{r}");
}

/// The stream ended with an error event and `[DONE]`, after the text that did arrive.
#[track_caller]
fn assert_ends_with_error(r: &HttpReply, text: &str) {
    assert_eq!(r.status, 200, "{r}");
    let data = r.sse_data();
    assert_eq!(stream_text(r), text, "{r}");
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"), "{r}");
    let error: Value = serde_json::from_str(&data[data.len() - 2]).expect("an error event");
    assert!(
        error["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{r}"
    );
}

#[test]
fn an_upstream_that_fails_mid_stream_ends_with_an_error_event() {
    let env = gateway_env(&[]);
    // Two chunks, then the body ends without [DONE].
    let cut = Upstream::start(|req| {
        let model = req.json()["model"].as_str().unwrap_or("?").to_string();
        sse_reply(openai_chat_sse(&model, &["one", " two"])[..2].to_vec())
    });
    // Two chunks, then the connection is dropped mid-body.
    let reset = RawUpstream::start(|stream, _| {
        let mut w = stream;
        let _ = w.write_all(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n",
        );
        for e in &openai_chat_sse("gpt-4o", &["one", " two"])[..2] {
            let _ = write!(w, "{:x}\r\n{e}\r\n", e.len());
            let _ = w.flush();
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    add_openai_integration(&env, "cut", &cut.url);
    add_openai_integration(&env, "reset", &reset.url);

    let r = chat(&env, &[], &hello_stream("@cut/gpt-4o"));
    assert_ends_with_error(&r, "one two");
    let r = chat(&env, &[], &hello_stream("@reset/gpt-4o"));
    assert_ends_with_error(&r, "one two");
}

#[test]
fn a_stream_that_fails_before_its_first_byte_falls_back() {
    let env = gateway_env(&[]);
    let r500 = failing(500, "boom");
    let empty = Upstream::start(|_| sse_reply(Vec::new()));
    let ok = answering("streamed");
    add_openai_integration(&env, "r500", &r500.url);
    add_openai_integration(&env, "empty", &empty.url);
    add_openai_integration(&env, "ok", &ok.url);

    let config = fallback(json!([{"provider": "@r500"}, {"provider": "@ok"}]));
    let r = chat_with_config(&env, &config, &hello_stream("gpt-4o"));
    assert_eq!(r.status, 200, "{r}");
    assert_eq!(stream_text(&r), "streamed");
    assert_path(&r, "config.targets[1]");

    // A 200 whose stream closes before saying anything counts as a failure too.
    let config = fallback(json!([{"provider": "@empty"}, {"provider": "@ok"}]));
    let r = chat_with_config(&env, &config, &hello_stream("gpt-4o"));
    assert_eq!(r.status, 200, "{r}");
    assert_eq!(stream_text(&r), "streamed");
    assert_path(&r, "config.targets[1]");
    assert_eq!(empty.requests().len(), 1);

    // A stream whose first byte comes after request_timeout: 408, so the next target.
    let slow = Upstream::start(|req| {
        Reply::Delay(
            Duration::from_millis(1500),
            Box::new(text_reply(req, "late")),
        )
    });
    add_openai_integration(&env, "slow", &slow.url);
    let mut config = fallback(json!([{"provider": "@slow"}, {"provider": "@ok"}]));
    config["request_timeout"] = json!(200);
    let r = chat_with_config(&env, &config, &hello_stream("gpt-4o"));
    assert_eq!(r.status, 200, "{r}");
    assert_eq!(stream_text(&r), "streamed");
    assert_path(&r, "config.targets[1]");
}

#[test]
fn a_client_that_disconnects_cancels_the_upstream_stream() {
    const CHUNKS: usize = 400;
    let env = gateway_env(&[]);
    // 400 chunks 25 ms apart (10 s); the log says how many were written before a write failed.
    let up = RawUpstream::start(|mut w, log| {
        let _ = w.write_all(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n",
        );
        let events = openai_chat_sse("gpt-4o", &["tick"; CHUNKS]);
        for e in &events[..CHUNKS] {
            let frame = format!("{:x}\r\n{e}\r\n", e.len());
            if w.write_all(frame.as_bytes())
                .and_then(|_| w.flush())
                .is_err()
            {
                log.lock().unwrap().broke_at = Some(Instant::now());
                return;
            }
            log.lock().unwrap().sent += 1;
            std::thread::sleep(Duration::from_millis(25));
        }
        log.lock().unwrap().finished = true;
    });
    add_openai_integration(&env, "slow", &up.url);

    // The client reads the first event, then goes away.
    let host = env.url.trim_start_matches("http://").to_string();
    let mut client = TcpStream::connect(&host).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let body = hello_stream("@slow/gpt-4o").to_string();
    write!(
        client,
        "POST {CHAT} HTTP/1.1\r\nHost: {host}\r\nx-portkey-api-key: {}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        env.admin_key,
        body.len()
    )
    .unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains("tick") {
        let n = client.read(&mut buf).expect("the stream starts");
        assert!(n > 0, "the gateway closed early");
        seen.extend_from_slice(&buf[..n]);
    }
    assert!(String::from_utf8_lossy(&seen).starts_with("HTTP/1.1 200"));
    let sent_before = up.log.lock().unwrap().sent;
    assert!(
        sent_before < CHUNKS / 2,
        "chunks are forwarded as they come, not buffered: {sent_before}"
    );
    drop(client);
    let dropped = Instant::now();

    let deadline = dropped + Duration::from_secs(5);
    let broke_at = loop {
        if let Some(at) = up.log.lock().unwrap().broke_at {
            break at;
        }
        assert!(
            Instant::now() < deadline,
            "the upstream kept streaming 5 s after the client left"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    let log = up.log.lock().unwrap();
    eprintln!(
        "client left after {sent_before} chunks; the upstream's write failed {:?} later, after {} of {CHUNKS} chunks",
        broke_at.saturating_duration_since(dropped),
        log.sent
    );
    assert!(
        !log.finished && log.sent < CHUNKS / 2,
        "{} chunks",
        log.sent
    );
    assert_eq!(log.requests, 1);
}

/// A bare TCP upstream for what the scripted one cannot do: cut a connection mid-body, or see
/// when its peer went away. Each connection runs `script` on a thread of its own.
struct RawUpstream {
    url: String,
    log: Arc<Mutex<RawLog>>,
}

#[derive(Default)]
struct RawLog {
    requests: usize,
    /// Body pieces written successfully.
    sent: usize,
    /// When a write first failed (the peer had gone).
    broke_at: Option<Instant>,
    finished: bool,
}

impl RawUpstream {
    fn start(script: fn(&TcpStream, &Mutex<RawLog>)) -> RawUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let log = Arc::new(Mutex::new(RawLog::default()));
        let shared = log.clone();
        // The accept loop lives as long as the test binary; it only ever waits.
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { break };
                let log = shared.clone();
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut length = 0;
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let line = line.trim_end().to_ascii_lowercase();
                        if line.is_empty() {
                            break;
                        }
                        if let Some(v) = line.strip_prefix("content-length:") {
                            length = v.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0; length];
                    let _ = reader.read_exact(&mut body);
                    log.lock().unwrap().requests += 1;
                    script(&stream, &log);
                    let _ = stream.shutdown(std::net::Shutdown::Both);
                });
            }
        });
        RawUpstream { url, log }
    }
}

// ---------------------------------------------------------------------------------------------
// 10. `tollgate chat`

/// An upstream for `tollgate chat`: streams "Hello from mock" in three chunks with usage, or
/// answers whole.
fn chat_upstream(text: &'static str) -> Upstream {
    Upstream::start(move |req| {
        let body = req.json();
        let model = body["model"].as_str().unwrap_or("?").to_string();
        if body["stream"] == true {
            let pieces: Vec<&str> = text.split_inclusive(' ').collect();
            sse_reply(openai_chat_sse(&model, &pieces))
        } else {
            Reply::ok(openai_chat_json(&model, text))
        }
    })
}

#[test]
fn chat_command_streams_prints_and_routes() {
    let env = gateway_env(&[]);
    let a = chat_upstream("Hello from mock");
    let b = chat_upstream("Hello from b");
    add_openai_integration(&env, "a", &a.url);
    add_openai_integration(&env, "b", &b.url);

    let out = env.run(&["chat", "-m", "@a/gpt-4o", "hi"]).ok();
    assert_eq!(out.stdout, "Hello from mock\n", "{out}");
    assert!(out.stderr.contains("gpt-4o"), "footer model\n{out}");
    assert!(out.stderr.contains("via openai"), "footer provider\n{out}");
    assert!(out.stderr.contains("7 in / 3 out tokens"), "footer\n{out}");
    let sent = last_body(&a);
    assert_eq!(sent["stream"], true);
    assert_eq!(sent["messages"], json!([{"role": "user", "content": "hi"}]));

    // The message from stdin; system, temperature and max tokens.
    let out = env
        .run_stdin(
            &[
                "chat",
                "-m",
                "@a/gpt-4o",
                "--system",
                "be terse",
                "--temperature",
                "0.2",
                "--max-tokens",
                "64",
            ],
            "question from stdin\n",
        )
        .ok();
    assert_eq!(out.stdout, "Hello from mock\n", "{out}");
    let sent = last_body(&a);
    assert_eq!(
        sent["messages"],
        json!([{"role": "system", "content": "be terse"},
               {"role": "user", "content": "question from stdin"}])
    );
    assert_eq!(sent["temperature"], 0.2);
    assert_eq!(sent["max_tokens"], 64);

    // -o json: the whole response object.
    let out = env
        .run(&["chat", "-m", "@a/gpt-4o", "hi", "-o", "json"])
        .ok();
    let answer = out.json();
    assert_eq!(answer["object"], "chat.completion", "{out}");
    assert_eq!(
        answer["choices"][0]["message"]["content"],
        "Hello from mock"
    );
    assert!(last_body(&a).get("stream").is_none());

    // -o ndjson: one chunk per line.
    let out = env
        .run(&["chat", "-m", "@a/gpt-4o", "hi", "-o", "ndjson"])
        .ok();
    let chunks: Vec<Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}\n{out}")))
        .collect();
    assert!(chunks.len() >= 4, "{out}");
    assert!(chunks
        .iter()
        .all(|c| c["object"] == "chat.completion.chunk"));
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "Hello from mock");

    // --config FILE and --metadata: the config routes on the metadata.
    let config = env.write(
        "route.yaml",
        "strategy:\n  mode: conditional\n  conditions:\n    - query: {metadata.tier: pro}\n      then: pro\n  default: basic\ntargets:\n  - name: pro\n    provider: \"@b\"\n    override_params: {model: pro-model}\n  - name: basic\n    provider: \"@a\"\n",
    );
    let out = env
        .run(&[
            "chat",
            "-m",
            "gpt-4o",
            "--config",
            &config,
            "--metadata",
            "tier=pro",
            "hi",
        ])
        .ok();
    assert_eq!(out.stdout, "Hello from b\n", "{out}");
    assert_eq!(last_body(&b)["model"], "pro-model");
    let out = env
        .run(&["chat", "-m", "gpt-4o", "--config", &config, "hi"])
        .ok();
    assert_eq!(out.stdout, "Hello from mock\n", "{out}");
    assert_eq!(b.requests().len(), 1);

    // Failures: the gateway's 400, and a stream that breaks off.
    let out = env.run(&["chat", "-m", "@nosuch/gpt-4o", "hi"]);
    assert_ne!(out.code, 0, "{out}");
    assert!(out.error_line().contains("nosuch"), "{out}");
    let cut = Upstream::start(|req| {
        let model = req.json()["model"].as_str().unwrap_or("?").to_string();
        sse_reply(openai_chat_sse(&model, &["partial", " answer"])[..2].to_vec())
    });
    add_openai_integration(&env, "cut", &cut.url);
    let out = env.run(&["chat", "-m", "@cut/gpt-4o", "hi"]);
    assert_ne!(out.code, 0, "{out}");
    assert!(out.stdout.starts_with("partial answer"), "{out}");
    assert!(out.error_line().contains("stream"), "{out}");
}
