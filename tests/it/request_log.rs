//! The request log end to end: gateway requests through the real server against local
//! upstreams, then the records, spans, traces, filters, live stream, custom records, feedback
//! and analytics read back through the admin API; durability across shutdown and SIGKILL.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::{
    add_openai_integration, gateway_env, http_send, openai_chat_json, openai_chat_sse,
    wait_for_logs, HttpReply, TestEnv,
};
use crate::upstream::{Reply, Upstream};

const CHAT: &str = "/v1/chat/completions";

fn chat(env: &TestEnv, headers: &[(&str, &str)], body: &Value) -> HttpReply {
    let mut all = vec![("x-portkey-api-key", env.admin_key.as_str())];
    all.extend_from_slice(headers);
    http_send(&env.url, "POST", CHAT, &all, Some(&body.to_string()))
}

fn hello(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "hello"}]})
}

fn admin_get(env: &TestEnv, path: &str) -> Value {
    let reply = http_send(
        &env.url,
        "GET",
        path,
        &[("x-portkey-api-key", &env.admin_key)],
        None,
    );
    assert_eq!(reply.status, 200, "GET {path}: {}", reply.body);
    reply.json()
}

fn admin_post(env: &TestEnv, path: &str, body: &Value) -> HttpReply {
    http_send(
        &env.url,
        "POST",
        path,
        &[("x-portkey-api-key", &env.admin_key)],
        Some(&body.to_string()),
    )
}

fn answering() -> Upstream {
    Upstream::start(|req| {
        let body = req.json();
        let model = body["model"].as_str().unwrap_or("?").to_string();
        if body["stream"] == true {
            let events = openai_chat_sse(&model, &["Hello", " world"]);
            let events: Vec<&str> = events.iter().map(String::as_str).collect();
            Reply::sse(&events)
        } else {
            Reply::ok(openai_chat_json(&model, "Hello world"))
        }
    })
}

fn failing(status: u16) -> Upstream {
    Upstream::start(move |_| {
        Reply::status(
            status,
            json!({"error": {"message": "boom", "type": "server_error", "param": null, "code": null}}),
        )
    })
}

#[test]
fn a_fallback_with_retries_is_one_record_with_a_span_per_attempt() {
    let env = gateway_env(&["--retry-base-ms", "1"]);
    let bad = failing(500);
    let good = answering();
    add_openai_integration(&env, "bad", &bad.url);
    add_openai_integration(&env, "good", &good.url);
    let config = json!({
        "strategy": {"mode": "fallback"},
        "targets": [
            {"provider": "@bad", "retry": {"attempts": 1, "on_status_codes": [500]}},
            {"provider": "@good"}
        ]
    });
    let reply = chat(
        &env,
        &[
            ("x-portkey-config", &config.to_string()),
            ("x-portkey-trace-id", "trace-fallback"),
            ("x-portkey-metadata", r#"{"team":"search"}"#),
        ],
        &json!({"model": "gpt-4o-mini", "user": "u-7",
                "messages": [{"role": "user", "content": "hello"}]}),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    let logs = wait_for_logs(&env, "trace_id=trace-fallback", 1);
    let r = &logs[0];
    assert_eq!(r["kind"], "request");
    assert_eq!(r["status"], 200);
    assert_eq!(r["outcome"], "success");
    assert_eq!(r["provider"], "openai");
    assert_eq!(r["integration"], "good");
    assert_eq!(r["model"], "gpt-4o-mini");
    assert_eq!(r["model_requested"], "gpt-4o-mini");
    assert_eq!(r["endpoint"], CHAT);
    assert_eq!(r["last_used_option"], "config.targets[1]");
    assert_eq!(
        (r["input_tokens"].as_u64(), r["output_tokens"].as_u64()),
        (Some(7), Some(3))
    );
    // gpt-4o-mini: $0.15 in, $0.60 out per 1M tokens.
    let cost = r["cost"].as_f64().expect("gpt-4o-mini has a price");
    assert!(
        (cost - (7.0 * 0.15 + 3.0 * 0.60) / 1e6).abs() < 1e-12,
        "{cost}"
    );
    assert_eq!(r["metadata"], json!({"team": "search", "_user": "u-7"}));
    assert_eq!(r["cache_status"], "DISABLED");
    assert_eq!(r["api_key_name"], "local-admin");
    let attempts: Vec<(String, u64, u64, String)> = r["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["integration"].as_str().unwrap().to_string(),
                a["status"].as_u64().unwrap(),
                a["retry"].as_u64().unwrap(),
                a["last_used_option"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        attempts,
        vec![
            ("bad".into(), 500, 0, "config.targets[0]".into()),
            ("bad".into(), 500, 1, "config.targets[0]".into()),
            ("good".into(), 200, 0, "config.targets[1]".into()),
        ]
    );
    // The trace: the request's span with the three attempts as children, in order.
    let trace = admin_get(&env, "/v1/traces/trace-fallback");
    let spans = trace["spans"].as_array().unwrap();
    assert_eq!(spans.len(), 1);
    assert_eq!(spans[0]["span_id"], r["span_id"]);
    let children = spans[0]["children"].as_array().unwrap();
    let statuses: Vec<u64> = children
        .iter()
        .map(|c| c["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, vec![500, 500, 200]);
    let starts: Vec<f64> = children
        .iter()
        .map(|c| c["start_offset_ms"].as_f64().unwrap())
        .collect();
    assert!(starts.windows(2).all(|w| w[0] <= w[1]), "{starts:?}");
    assert!(children.iter().all(|c| c["parent_span_id"] == r["span_id"]));
    // One record, with its bodies.
    let one = admin_get(&env, &format!("/v1/logs/{}", r["id"].as_str().unwrap()));
    assert_eq!(one["request_body"]["user"], "u-7");
    assert_eq!(
        one["response_body"]["choices"][0]["message"]["content"],
        "Hello world"
    );
}

#[test]
fn a_stream_is_recorded_when_it_ends_with_its_usage_and_assembled_answer() {
    let env = gateway_env(&[]);
    let up = answering();
    add_openai_integration(&env, "up", &up.url);
    let mut body = hello("@up/gpt-4o");
    body["stream"] = json!(true);
    let reply = chat(&env, &[("x-portkey-trace-id", "trace-stream")], &body);
    assert_eq!(reply.status, 200);
    let r = &wait_for_logs(&env, "trace_id=trace-stream", 1)[0];
    assert_eq!(r["stream"], true);
    assert_eq!(r["outcome"], "success");
    assert_eq!(r["model_requested"], "@up/gpt-4o");
    assert_eq!(r["model"], "gpt-4o");
    assert_eq!(r["input_tokens"], 7);
    assert_eq!(r["output_tokens"], 3);
    let ttft = r["ttft_ms"]
        .as_f64()
        .expect("a stream has a time to first token");
    assert!(ttft > 0.0 && ttft <= r["latency_ms"].as_f64().unwrap());
    let one = admin_get(&env, &format!("/v1/logs/{}", r["id"].as_str().unwrap()));
    assert_eq!(one["response_body"]["object"], "chat.completion");
    assert_eq!(
        one["response_body"]["choices"][0]["message"]["content"],
        "Hello world"
    );
    assert_eq!(one["response_body"]["usage"]["prompt_tokens"], 7);
}

fn ids(records: &[Value]) -> Vec<String> {
    let mut v: Vec<String> = records
        .iter()
        .map(|r| r["trace_id"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

#[test]
fn filters_return_exactly_the_matching_records() {
    let env = gateway_env(&[]);
    let up = answering();
    let down = failing(503);
    add_openai_integration(&env, "up", &up.url);
    add_openai_integration(&env, "down", &down.url);
    let (_, other_key) = env.create_key("agent", &["--type", "workspace"]);
    let send = |key: &str, trace: &str, model: &str, meta: &str| {
        let reply = http_send(
            &env.url,
            "POST",
            CHAT,
            &[
                ("x-portkey-api-key", key),
                ("x-portkey-trace-id", trace),
                ("x-portkey-metadata", meta),
            ],
            Some(&hello(model).to_string()),
        );
        reply.status
    };
    let admin = env.admin_key.clone();
    assert_eq!(
        send(&admin, "t1", "@up/gpt-4o", r#"{"team":"a","_user":"ann"}"#),
        200
    );
    assert_eq!(
        send(
            &admin,
            "t2",
            "@up/gpt-4o-mini",
            r#"{"team":"b","_user":"bob"}"#
        ),
        200
    );
    assert_eq!(
        send(
            &other_key,
            "t3",
            "@down/gpt-4o",
            r#"{"team":"a","_user":"bob"}"#
        ),
        503
    );
    assert_eq!(
        send(&other_key, "t4", "@nowhere/gpt-4o", r#"{"team":"c"}"#),
        400
    );
    wait_for_logs(&env, "", 4);
    let query = |q: &str| ids(&wait_for_logs_any(&env, q));
    assert_eq!(query("model=gpt-4o"), ["t1", "t3", "t4"]);
    assert_eq!(query("model=gpt-4o-mini"), ["t2"]);
    assert_eq!(query("status=5xx"), ["t3"]);
    assert_eq!(query("status=400"), ["t4"]);
    assert_eq!(query("status=2xx"), ["t1", "t2"]);
    assert_eq!(query("user=bob"), ["t2", "t3"]);
    assert_eq!(query("metadata._user=bob"), ["t2", "t3"]);
    assert_eq!(query("metadata.team=a"), ["t1", "t3"]);
    assert_eq!(query("metadata.team=a&user=bob"), ["t3"]);
    assert_eq!(query("api_key=agent"), ["t3", "t4"]);
    assert_eq!(query("provider=openai&status=200"), ["t1", "t2"]);
    assert_eq!(query("trace_id=t2"), ["t2"]);
    assert_eq!(query("min_cost=0.00000001"), ["t1", "t2"]);
    assert_eq!(query("since=1h"), ["t1", "t2", "t3", "t4"]);
    assert_eq!(query("until=2000-01-01T00:00:00Z"), Vec::<String>::new());
    // Paging: newest first, the cursor continues where the page ended.
    let first = admin_get(&env, "/v1/logs?limit=3");
    assert_eq!(ids(first["data"].as_array().unwrap()), ["t2", "t3", "t4"]);
    let cursor = first["next_cursor"].as_str().expect("a next page");
    let second = admin_get(&env, &format!("/v1/logs?limit=3&cursor={cursor}"));
    assert_eq!(ids(second["data"].as_array().unwrap()), ["t1"]);
    assert!(second["next_cursor"].is_null());
    assert_eq!(
        admin_get(&env, "/v1/logs/count?metadata.team=a")["total"],
        2
    );
    // Bad filters say what is wrong.
    let bad = http_send(
        &env.url,
        "GET",
        "/v1/logs?status=9xx",
        &[("x-portkey-api-key", &env.admin_key)],
        None,
    );
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("status"), "{}", bad.body);
    // A key without logs.list cannot read them.
    let denied = http_send(
        &env.url,
        "GET",
        "/v1/logs",
        &[("x-portkey-api-key", &other_key)],
        None,
    );
    assert_eq!(denied.status, 403, "{}", denied.body);
}

/// Every page of `query` at `limit`, following the cursors: the records, newest first.
fn all_pages(env: &TestEnv, query: &str, limit: usize) -> Vec<Value> {
    let mut records = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = admin_get(env, &format!("/v1/logs?limit={limit}&{query}{cursor}"));
        let data = page["data"].as_array().unwrap();
        assert!(data.len() <= limit);
        records.extend(data.iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => return records,
        }
    }
}

fn log_ids<'a>(records: impl IntoIterator<Item = &'a Value>) -> Vec<String> {
    records
        .into_iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn filters_without_an_index_read_block_summaries_and_return_exactly_the_matches() {
    let env = gateway_env(&[]);
    // Over two blocks of summaries (1,024 records each), some records backdated past the
    // blocks before theirs, a few values rare, some absent.
    let records: Vec<Value> = (0..2600u64)
        .map(|i| {
            let provider = match i % 997 {
                5 => "mistral-ai",
                _ => ["openai", "anthropic", "google"][(i % 3) as usize],
            };
            let model = match provider {
                "openai" => "gpt-4o-mini",
                "anthropic" => "claude-haiku-4-5",
                "google" => "gemini-2.5-flash",
                _ => "mistral-small-latest",
            };
            let status = if i % 13 == 0 { 500 } else { 200 };
            let mut body = json!({"id": format!("r{i}")});
            if status == 200 && i % 17 != 0 {
                body["usage"] = json!({"prompt_tokens": 10 + i % 300, "completion_tokens": 5});
            }
            let backdated = if i % 101 == 0 { 5_000_000 } else { 0 };
            let mut metadata = json!({"team": format!("team-{}", i % 7),
                                      "_user": format!("u{}", i % 50)});
            if [10, 1500, 2590].contains(&i) {
                metadata["flag"] = json!("x");
            }
            json!({
                "request": {"provider": provider,
                            "body": {"model": model, "messages": []}},
                "response": {"status": status, "body": body,
                             "response_time": (2600 - i) * 100 + backdated},
                "metadata": metadata,
            })
        })
        .collect();
    for chunk in records.chunks(650) {
        let created = admin_post(&env, "/v1/logs", &json!(chunk));
        assert_eq!(created.status, 200, "{}", created.body);
    }
    // Without a filter, pages come through the time index.
    let all = all_pages(&env, "", 1000);
    assert_eq!(all.len(), 2600);
    let mut costs: Vec<f64> = all.iter().filter_map(|r| r["cost"].as_f64()).collect();
    costs.sort_by(f64::total_cmp);
    let high_cost = costs[costs.len() - 6];
    let low_cost = costs.iter().copied().find(|c| *c > 0.0).unwrap();
    let middle = all[1300]["created_at"].as_str().unwrap().to_string();
    let later = all[400]["created_at"].as_str().unwrap().to_string();
    let meta = |r: &Value, k: &str| r["metadata"][k].as_str().map(String::from);
    let cost = |r: &Value| r["cost"].as_f64();
    type Pick<'a> = Box<dyn Fn(&Value) -> bool + 'a>;
    let cases: Vec<(String, Pick)> = vec![
        (
            "provider=mistral-ai".into(),
            Box::new(|r| r["provider"] == "mistral-ai"),
        ),
        (
            "provider=openai".into(),
            Box::new(|r| r["provider"] == "openai"),
        ),
        ("provider=absent".into(), Box::new(|_| false)),
        (
            "metadata.flag=x".into(),
            Box::new(|r| meta(r, "flag").as_deref() == Some("x")),
        ),
        (
            "metadata.team=team-3&user=u10".into(),
            Box::new(|r| {
                meta(r, "team").as_deref() == Some("team-3")
                    && meta(r, "_user").as_deref() == Some("u10")
            }),
        ),
        (
            "metadata.team=team-3&provider=google&status=200".into(),
            Box::new(|r| {
                meta(r, "team").as_deref() == Some("team-3")
                    && r["provider"] == "google"
                    && r["status"] == 200
            }),
        ),
        (
            "metadata.team=absent&model=gpt-4o-mini".into(),
            Box::new(|_| false),
        ),
        (
            format!("min_cost={high_cost}"),
            Box::new(|r| cost(r).is_some_and(|c| c >= high_cost)),
        ),
        (
            format!("max_cost={low_cost}&metadata.team=team-1"),
            Box::new(|r| {
                cost(r).is_some_and(|c| c <= low_cost)
                    && meta(r, "team").as_deref() == Some("team-1")
            }),
        ),
        ("min_cost=1000".into(), Box::new(|_| false)),
        (
            "min_latency_ms=4000000".into(),
            Box::new(|r| r["latency_ms"].as_f64().unwrap() >= 4_000_000.0),
        ),
        (
            "kind=custom&cache_status=disabled".into(),
            Box::new(|_| true),
        ),
        ("kind=request".into(), Box::new(|_| false)),
        ("cache_status=HIT".into(), Box::new(|_| false)),
        (
            format!("provider=openai&since={middle}&until={later}"),
            Box::new(|r| {
                let at = r["created_at"].as_str().unwrap();
                r["provider"] == "openai" && at >= middle.as_str() && at < later.as_str()
            }),
        ),
    ];
    for (query, pick) in &cases {
        let expected = log_ids(all.iter().filter(|r| pick(r)));
        for limit in [7, 50] {
            assert_eq!(
                log_ids(&all_pages(&env, query, limit)),
                expected,
                "{query} at limit {limit}"
            );
        }
    }
}

fn wait_for_logs_any(env: &TestEnv, query: &str) -> Vec<Value> {
    admin_get(env, &format!("/v1/logs?limit=1000&{query}"))["data"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Reads server-sent events from `/v1/logs/stream`.
struct Tail {
    reader: BufReader<TcpStream>,
}

impl Tail {
    fn open(env: &TestEnv, query: &str) -> Tail {
        let host = env.url.strip_prefix("http://").unwrap();
        let mut stream = TcpStream::connect(host).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        write!(
            stream,
            "GET /v1/logs/stream?{query} HTTP/1.1\r\nHost: {host}\r\nx-portkey-api-key: {}\r\n\r\n",
            env.admin_key
        )
        .unwrap();
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        assert!(line.contains("200"), "{line}");
        // Headers end at the blank line; the stream is subscribed once they arrive.
        loop {
            line.clear();
            reader.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
        }
        Tail { reader }
    }

    /// The next record (chunked framing lines and comments skipped).
    fn next_record(&mut self) -> Value {
        let mut line = String::new();
        loop {
            line.clear();
            self.reader
                .read_line(&mut line)
                .expect("an event within 10 s");
            if let Some(data) = line.strip_prefix("data: ") {
                return serde_json::from_str(data.trim()).unwrap();
            }
        }
    }
}

#[test]
fn the_live_stream_shows_requests_finished_after_it_started() {
    let env = gateway_env(&[]);
    let up = answering();
    add_openai_integration(&env, "up", &up.url);
    let mut tail = Tail::open(&env, "model=gpt-4o");
    let started = Instant::now();
    assert_eq!(
        chat(
            &env,
            &[("x-portkey-trace-id", "skipped")],
            &hello("@up/gpt-4o-mini")
        )
        .status,
        200
    );
    assert_eq!(
        chat(
            &env,
            &[("x-portkey-trace-id", "live")],
            &hello("@up/gpt-4o")
        )
        .status,
        200
    );
    let r = tail.next_record();
    assert_eq!(r["trace_id"], "live", "the filter skips the other model");
    assert!(started.elapsed() < Duration::from_secs(5));
    // The live record is the stored one: its time and its attempts in full included.
    let stored = admin_get(&env, &format!("/v1/logs/{}", r["id"].as_str().unwrap()));
    assert_eq!(r["created_at"], stored["created_at"]);
    assert!(r["created_at"].as_str().unwrap().starts_with("20"), "{r}");
    assert_eq!(r["attempts"], stored["attempts"]);
    assert_eq!(stored["attempts"][0]["provider"], "openai", "{stored}");
    assert_eq!(stored["attempts"][0]["status"], 200);
}

#[test]
fn custom_spans_join_the_trace_of_the_gateway_requests_below_them() {
    let env = gateway_env(&[]);
    let up = answering();
    add_openai_integration(&env, "up", &up.url);
    let created = admin_post(
        &env,
        "/v1/logs",
        &json!([{
            "request": {"url": "https://agent.local/tools/search", "method": "POST",
                        "body": {"query": "weather"}},
            "response": {"status": 200, "body": {"hits": 3}, "response_time": 250},
            "metadata": {"trace_id": "agent-run", "span_id": "aaaaaaaaaaaaaaaa",
                         "span_name": "search tool", "step": 1}
        }]),
    );
    assert_eq!(created.status, 200, "{}", created.body);
    assert_eq!(created.json()["log_ids"].as_array().unwrap().len(), 1);
    let reply = chat(
        &env,
        &[
            ("x-portkey-trace-id", "agent-run"),
            ("x-portkey-parent-span-id", "aaaaaaaaaaaaaaaa"),
            ("x-portkey-span-name", "summarise"),
        ],
        &hello("@up/gpt-4o"),
    );
    assert_eq!(reply.status, 200);
    wait_for_logs(&env, "trace_id=agent-run", 2);
    let trace = admin_get(&env, "/v1/traces/agent-run");
    let spans = trace["spans"].as_array().unwrap();
    assert_eq!(spans.len(), 1, "{trace:#}");
    assert_eq!(spans[0]["name"], "search tool");
    assert_eq!(spans[0]["kind"], "custom");
    assert_eq!(spans[0]["duration_ms"], 250.0);
    let request = &spans[0]["children"][0];
    assert_eq!(request["name"], "summarise");
    assert_eq!(
        request["children"].as_array().unwrap().len(),
        1,
        "one attempt"
    );
    let custom = &wait_for_logs(&env, "kind=custom", 1)[0];
    assert_eq!(custom["metadata"], json!({"step": "1"}));
    assert_eq!(custom["endpoint"], "/tools/search");
    // Feedback on the trace shows with it.
    let fb = admin_post(
        &env,
        "/v1/feedback",
        &json!({"trace_id": "agent-run", "value": 5}),
    );
    assert_eq!(fb.status, 200, "{}", fb.body);
    let trace = admin_get(&env, "/v1/traces/agent-run");
    assert_eq!(trace["feedback"][0]["value"], 5);
    assert_eq!(trace["feedback"][0]["weight"], 1.0);
    let bad = admin_post(
        &env,
        "/v1/feedback",
        &json!({"trace_id": "agent-run", "value": 11}),
    );
    assert_eq!(bad.status, 400);
    let missing = http_send(
        &env.url,
        "GET",
        "/v1/traces/nope",
        &[("x-portkey-api-key", &env.admin_key)],
        None,
    );
    assert_eq!(missing.status, 404);
}

#[test]
fn analytics_group_requests_tokens_and_cost() {
    let env = gateway_env(&[]);
    let up = answering();
    add_openai_integration(&env, "up", &up.url);
    for model in ["@up/gpt-4o", "@up/gpt-4o", "@up/gpt-4o-mini"] {
        assert_eq!(chat(&env, &[], &hello(model)).status, 200);
    }
    wait_for_logs(&env, "", 3);
    let groups = admin_get(&env, "/v1/analytics/groups/ai-models?since=1d");
    let data = groups["data"].as_array().unwrap();
    let row = |m: &str| data.iter().find(|g| g["group"] == m).unwrap().clone();
    assert_eq!(row("gpt-4o")["requests"], 2);
    assert_eq!(row("gpt-4o")["input_tokens"], 14);
    assert_eq!(row("gpt-4o-mini")["requests"], 1);
    // gpt-4o: $2.50 in, $10 out per 1M tokens.
    let cost = row("gpt-4o")["cost"].as_f64().unwrap();
    assert!(
        (cost - 2.0 * (7.0 * 2.5 + 3.0 * 10.0) / 1e6).abs() < 1e-12,
        "{cost}"
    );
    assert_eq!(data[0]["group"], "gpt-4o", "sorted by cost");
    let by_user = admin_get(&env, "/v1/analytics/groups/users");
    assert_eq!(by_user["data"][0]["group"], Value::Null);
    let bad = http_send(
        &env.url,
        "GET",
        "/v1/analytics/groups/colours",
        &[("x-portkey-api-key", &env.admin_key)],
        None,
    );
    assert_eq!(bad.status, 400);
}

#[test]
fn bodies_are_not_kept_when_the_key_or_the_request_says_so_and_secrets_never_are() {
    let env = gateway_env(&[]);
    let up = answering();
    add_openai_integration(&env, "up", &up.url);
    let (_, quiet) = env.create_key("quiet", &["--type", "workspace", "--log-bodies", "false"]);
    let send = |key: &str, extra: &[(&str, &str)], trace: &str| {
        let mut headers = vec![
            ("authorization", format!("Bearer {key}")),
            ("x-portkey-trace-id", trace.to_string()),
        ];
        headers.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        http_send(
            &env.url,
            "POST",
            CHAT,
            &headers,
            Some(&hello("@up/gpt-4o").to_string()),
        )
        .status
    };
    assert_eq!(send(&quiet, &[], "quiet"), 200);
    assert_eq!(
        send(&env.admin_key, &[("x-portkey-debug", "false")], "debug-off"),
        200
    );
    assert_eq!(send(&env.admin_key, &[], "kept"), 200);
    for (trace, kept) in [("quiet", false), ("debug-off", false), ("kept", true)] {
        let r = &wait_for_logs(&env, &format!("trace_id={trace}"), 1)[0];
        assert_eq!(r["bodies_logged"], kept, "{trace}");
        let one = admin_get(&env, &format!("/v1/logs/{}", r["id"].as_str().unwrap()));
        assert_eq!(one.get("request_body").is_some(), kept, "{trace}: {one:#}");
    }
    let mut env = env;
    env.stop();
    let bytes = env.stored_bytes();
    let text = String::from_utf8_lossy(&bytes);
    assert!(
        text.contains("Hello world"),
        "the kept body is in the store"
    );
    for secret in [quiet.as_str(), env.admin_key.as_str(), "sk-upstream-test"] {
        assert!(!text.contains(secret), "a secret reached the store");
    }
}

#[test]
fn a_client_that_leaves_early_is_recorded_as_such() {
    let env = gateway_env(&[]);
    let slow = Upstream::start(|req| {
        let model = req.json()["model"].as_str().unwrap_or("?").to_string();
        Reply::Delay(
            Duration::from_secs(3),
            Box::new(Reply::ok(openai_chat_json(&model, "late"))),
        )
    });
    add_openai_integration(&env, "slow", &slow.url);
    let host = env.url.strip_prefix("http://").unwrap().to_string();
    let body = hello("@slow/gpt-4o").to_string();
    let mut stream = TcpStream::connect(&host).unwrap();
    write!(
        stream,
        "POST {CHAT} HTTP/1.1\r\nHost: {host}\r\nx-portkey-api-key: {}\r\nx-portkey-trace-id: gone\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        env.admin_key,
        body.len()
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    drop(stream);
    let r = &wait_for_logs(&env, "trace_id=gone", 1)[0];
    assert_eq!(r["outcome"], "client_disconnected");
    assert_eq!(r["status"], 499);
    assert!(
        r["latency_ms"].as_f64().unwrap() < 2000.0,
        "recorded when the client left"
    );
}

/// Sends `n` requests one after another; returns once every answer is in.
fn requests(env: &TestEnv, n: usize, trace: &str) {
    for _ in 0..n {
        assert_eq!(
            chat(env, &[("x-portkey-trace-id", trace)], &hello("@up/gpt-4o")).status,
            200
        );
    }
}

fn stored_count(env: &TestEnv, trace: &str) -> u64 {
    admin_get(env, &format!("/v1/logs/count?trace_id={trace}"))["total"]
        .as_u64()
        .unwrap()
}

#[test]
fn graceful_shutdown_and_sigkill_lose_no_answered_request() {
    let mut env = gateway_env(&[]);
    let up = answering();
    add_openai_integration(&env, "up", &up.url);
    // SIGTERM right after the last answer: the writer commits everything queued.
    requests(&env, 200, "before-term");
    let exit = env.stop();
    assert!(exit.status.success(), "{exit:?}");
    env.start_server(&[]);
    assert_eq!(stored_count(&env, "before-term"), 200);
    // SIGKILL: the documented bound is that a record is committed within 100 ms of its answer.
    requests(&env, 200, "before-kill");
    std::thread::sleep(Duration::from_millis(100));
    env.kill();
    env.start_server(&[]);
    assert_eq!(stored_count(&env, "before-kill"), 200);
}

#[test]
fn retention_prunes_old_records() {
    let mut env = gateway_env(&[]);
    let up = answering();
    add_openai_integration(&env, "up", &up.url);
    requests(&env, 3, "old");
    wait_for_logs(&env, "", 3);
    env.stop();
    std::thread::sleep(Duration::from_millis(1100));
    env.start_server(&["--log-retention", "1s"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while stored_count(&env, "old") > 0 {
        assert!(Instant::now() < deadline, "old records were not pruned");
        std::thread::sleep(Duration::from_millis(50));
    }
    requests(&env, 1, "new");
    assert_eq!(wait_for_logs(&env, "trace_id=new", 1).len(), 1);
}

/// One metric's value in a Prometheus exposition, by its full series text.
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no series {series} in:\n{text}"))
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn metrics_count_what_was_sent() {
    let env = gateway_env(&["--retry-base-ms", "1"]);
    let up = answering();
    let bad = failing(502);
    add_openai_integration(&env, "up", &up.url);
    add_openai_integration(&env, "bad", &bad.url);
    for _ in 0..3 {
        assert_eq!(chat(&env, &[], &hello("@up/gpt-4o")).status, 200);
    }
    let retrying = json!({"provider": "@bad", "retry": {"attempts": 2, "on_status_codes": [502]}});
    let reply = chat(
        &env,
        &[("x-portkey-config", &retrying.to_string())],
        &hello("gpt-4o"),
    );
    assert_eq!(reply.status, 502);
    wait_for_logs(&env, "", 4);
    let (status, text) = env.http(
        "GET",
        "/metrics",
        &[("authorization", &format!("Bearer {}", env.admin_key))],
    );
    assert_eq!(status, 200, "{text}");
    let ok = r#"tollgate_requests_total{provider="openai",model="gpt-4o",endpoint="/v1/chat/completions",status_class="2xx"}"#;
    assert_eq!(metric(&text, ok), 3.0);
    let failed = r#"tollgate_requests_total{provider="openai",model="gpt-4o",endpoint="/v1/chat/completions",status_class="5xx"}"#;
    assert_eq!(metric(&text, failed), 1.0);
    assert_eq!(
        metric(&text, r#"tollgate_retries_total{provider="openai"}"#),
        2.0
    );
    assert_eq!(
        metric(
            &text,
            r#"tollgate_upstream_attempts_total{provider="openai",status_class="5xx"}"#
        ),
        3.0
    );
    assert_eq!(
        metric(
            &text,
            r#"tollgate_tokens_total{provider="openai",model="gpt-4o",type="input"}"#
        ),
        21.0
    );
    assert_eq!(
        metric(
            &text,
            r#"tollgate_request_duration_seconds_count{provider="openai",endpoint="/v1/chat/completions"}"#
        ),
        4.0
    );
    assert_eq!(metric(&text, "tollgate_records_written_total"), 4.0);
    let (status, _) = env.http("GET", "/metrics", &[]);
    assert_eq!(status, 401, "metrics need a key");
}

#[test]
fn spans_are_exported_to_an_otlp_receiver() {
    let receiver = Upstream::start(|_| Reply::ok(json!({})));
    let env = gateway_env(&[
        "--retry-base-ms",
        "1",
        "--otlp-endpoint",
        &receiver.url,
        "--otlp-header",
        "authorization=Bearer otlp-secret",
    ]);
    let bad = failing(500);
    let up = answering();
    add_openai_integration(&env, "bad", &bad.url);
    add_openai_integration(&env, "up", &up.url);
    let config = json!({"strategy": {"mode": "fallback"},
                        "targets": [{"provider": "@bad"}, {"provider": "@up"}]});
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let reply = chat(
        &env,
        &[
            ("x-portkey-config", &config.to_string()),
            ("x-portkey-trace-id", trace),
        ],
        &hello("gpt-4o"),
    );
    assert_eq!(reply.status, 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    let spans: Vec<Value> = loop {
        let spans: Vec<Value> = receiver
            .requests()
            .iter()
            .filter(|r| r.path == "/v1/traces")
            .flat_map(|r| {
                assert_eq!(r.header("authorization"), Some("Bearer otlp-secret"));
                let body = r.json();
                body["resourceSpans"][0]["scopeSpans"][0]["spans"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .collect();
        if spans.len() >= 3 || Instant::now() > deadline {
            break spans;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(
        spans.len(),
        3,
        "a request span and two attempt spans: {spans:#?}"
    );
    let attr = |span: &Value, key: &str| -> Value {
        span["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["key"] == key)
            .map(|a| a["value"].clone())
            .unwrap_or(Value::Null)
    };
    let server = spans
        .iter()
        .find(|s| s["kind"] == 2)
        .expect("a SERVER span");
    assert_eq!(server["traceId"], trace);
    assert_eq!(server["name"], "chat gpt-4o");
    assert_eq!(
        attr(server, "gen_ai.operation.name"),
        json!({"stringValue": "chat"})
    );
    assert_eq!(
        attr(server, "gen_ai.provider.name"),
        json!({"stringValue": "openai"})
    );
    assert_eq!(
        attr(server, "gen_ai.usage.input_tokens"),
        json!({"intValue": "7"})
    );
    let attempts: Vec<&Value> = spans.iter().filter(|s| s["kind"] == 3).collect();
    assert_eq!(attempts.len(), 2);
    assert!(attempts
        .iter()
        .all(|a| a["parentSpanId"] == server["spanId"] && a["traceId"] == trace));
    let codes: Vec<Value> = attempts
        .iter()
        .map(|a| attr(a, "http.response.status_code"))
        .collect();
    assert!(
        codes.contains(&json!({"intValue": "500"})) && codes.contains(&json!({"intValue": "200"})),
        "{codes:?}"
    );
}

#[test]
fn usage_over_time_comes_in_buckets_oldest_first() {
    let env = gateway_env(&[]);
    let posted = admin_post(
        &env,
        "/v1/logs",
        &json!([
            {"request": {"body": {"model": "gpt-4o"}, "provider": "openai"},
             "response": {"status": 200, "response_time": 7_200_000.0}},
            {"request": {"body": {"model": "gpt-4o"}, "provider": "openai"},
             "response": {"status": 500, "response_time": 3_600_000.0}},
            {"request": {"body": {"model": "gpt-4o"}, "provider": "openai"},
             "response": {"status": 200, "response_time": 10.0}}
        ]),
    );
    assert_eq!(posted.status, 200, "{}", posted.body);
    let series = admin_get(&env, "/v1/analytics/groups/time/1h?since=1d");
    let points = series["data"].as_array().unwrap();
    assert_eq!(points.len(), 3, "one bucket an hour: {series:#}");
    let starts: Vec<&str> = points
        .iter()
        .map(|p| p["group"].as_str().unwrap())
        .collect();
    assert!(starts.windows(2).all(|w| w[0] < w[1]), "{starts:?}");
    assert!(
        starts.iter().all(|s| s.ends_with(":00:00.000Z")),
        "{starts:?}"
    );
    let errors: Vec<u64> = points
        .iter()
        .map(|p| p["errors"].as_u64().unwrap())
        .collect();
    assert_eq!(errors, [0, 1, 0]);
    let bad = http_send(
        &env.url,
        "GET",
        "/v1/analytics/groups/time/5s",
        &[("x-portkey-api-key", &env.admin_key)],
        None,
    );
    assert_eq!(bad.status, 400, "{}", bad.body);
    let table = env.run(&["usage", "--by", "time:1h", "--since", "1d"]).ok();
    assert_eq!(
        table.stdout.matches(":00:00").count(),
        3,
        "{}",
        table.stdout
    );
}
