//! Anthropic Messages API: `POST {custom_host}/messages` with `x-api-key` and
//! `anthropic-version`; system messages become the top-level `system`, tools become
//! `input_schema` tools, tool results `tool_result` blocks in a user turn; the named SSE events
//! (with `ping`) become OpenAI chunks.

use serde_json::{json, Value};

use super::{
    assert_completion, assert_text_stream, assert_upstream_error, assert_usage, chat, chunks,
    finish_reasons, gateway, named, only_request, post_portkey, streamed_text, streamed_tool_calls,
    tool_answer, tool_question, usage_chunks,
};
use crate::common::{HttpAnswer, TestEnv};
use crate::upstream::{Recorded, Reply, Upstream};

const KEY: &str = "sk-ant-api03-test-key";

fn start(upstream: &Upstream) -> TestEnv {
    gateway(
        "claude",
        "anthropic",
        KEY,
        json!({"custom_host": format!("{}/v1", upstream.url)}),
    )
}

#[track_caller]
fn check_request(r: &Recorded) -> Value {
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/v1/messages");
    assert_eq!(r.header("x-api-key"), Some(KEY));
    assert_eq!(r.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert!(r.header("authorization").is_none(), "{r:#?}");
    r.json()
}

fn message(content: Value, stop_reason: &str) -> Value {
    json!({
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL", "type": "message", "role": "assistant",
        "model": "claude-sonnet-4-5-20250929", "content": content,
        "stop_reason": stop_reason, "stop_sequence": null,
        "usage": {"input_tokens": 20, "cache_creation_input_tokens": 5,
                  "cache_read_input_tokens": 100, "output_tokens": 7},
    })
}

#[test]
fn plain_answer() {
    let upstream = Upstream::start(|_| {
        Reply::ok(message(
            json!([{"type": "text", "text": "Cold: 3 °C."}]),
            "end_turn",
        ))
    });
    let env = start(&upstream);
    let answer = chat(
        &env,
        &json!({
            "model": "@claude/claude-sonnet-4-5",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "What is the weather in Oslo?"},
            ],
            "max_tokens": 256, "temperature": 0.3, "stop": ["END"], "user": "u-1",
            "seed": 7, "frequency_penalty": 0.5,
        }),
    );
    assert_eq!(answer.status, 200, "{answer}");
    assert_eq!(answer.header("x-portkey-provider"), Some("anthropic"));
    let v = answer.json();
    assert_completion(&v, Some("Cold: 3 °C."), "stop");
    assert_eq!(v["id"], "msg_01XFDUDYJgAACzvnptvVoYEL");
    assert_eq!(v["model"], "claude-sonnet-4-5-20250929");
    // input_tokens excludes the cache: prompt = 20 + 100 read + 5 written.
    assert_usage(&v["usage"], 125, 7);
    assert_eq!(v["usage"]["prompt_tokens_details"]["cached_tokens"], 100);

    let sent = check_request(&only_request(&upstream));
    assert_eq!(
        sent,
        json!({
            "model": "claude-sonnet-4-5",
            "max_tokens": 256,
            "system": "Be brief.",
            "messages": [{"role": "user", "content": [{"type": "text", "text": "What is the weather in Oslo?"}]}],
            "stop_sequences": ["END"],
            "temperature": 0.3,
            "metadata": {"user_id": "u-1"},
        }),
        "seed and penalties are dropped, the rest mapped"
    );
}

/// Mastra's `@slug@model` with `x-portkey-api-key`; `max_tokens` (required by Anthropic)
/// defaults; images become base64 image blocks.
#[test]
fn mastra_model_form_default_max_tokens_and_images() {
    let upstream = Upstream::start(|_| {
        Reply::ok(message(
            json!([{"type": "text", "text": "A red dot."}]),
            "max_tokens",
        ))
    });
    let env = start(&upstream);
    let answer = post_portkey(
        &env,
        "/v1/chat/completions",
        &[],
        &json!({
            "model": "@claude@claude-3-5-haiku-latest",
            "messages": [{"role": "user", "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
            ]}],
        }),
    );
    assert_eq!(answer.status, 200, "{answer}");
    assert_completion(&answer.json(), Some("A red dot."), "length");
    let sent = check_request(&only_request(&upstream));
    assert_eq!(sent["model"], "claude-3-5-haiku-latest");
    assert_eq!(sent["max_tokens"], 4096);
    assert_eq!(
        sent["messages"][0]["content"][1],
        json!({"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}})
    );
}

fn text_stream() -> Reply {
    let events = [
        named(
            "message_start",
            json!({"type": "message_start", "message": {
            "id": "msg_01Stream", "type": "message", "role": "assistant", "content": [],
            "model": "claude-sonnet-4-5-20250929", "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": 25, "cache_read_input_tokens": 0, "output_tokens": 1}}}),
        ),
        named(
            "content_block_start",
            json!({"type": "content_block_start", "index": 0,
            "content_block": {"type": "text", "text": ""}}),
        ),
        named("ping", json!({"type": "ping"})),
        named(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0,
            "delta": {"type": "text_delta", "text": "Cold"}}),
        ),
        named(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0,
            "delta": {"type": "text_delta", "text": ": 3 °C"}}),
        ),
        named("ping", json!({"type": "ping"})),
        named(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0,
            "delta": {"type": "text_delta", "text": " and snow."}}),
        ),
        named(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 0}),
        ),
        named(
            "message_delta",
            json!({"type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": null},
            "usage": {"output_tokens": 15}}),
        ),
        named("message_stop", json!({"type": "message_stop"})),
    ];
    let refs: Vec<&str> = events.iter().map(String::as_str).collect();
    Reply::sse(&refs)
}

#[test]
fn stream_with_pings_and_usage_only_when_asked() {
    let upstream = Upstream::start(|_| text_stream());
    let env = start(&upstream);
    let mut body = json!({"model": "@claude/claude-sonnet-4-5", "stream": true, "max_tokens": 100,
                          "messages": [{"role": "user", "content": "Weather in Oslo?"}]});
    let got = chunks(&chat(&env, &body));
    assert_text_stream(&got, "Cold: 3 °C and snow.", "stop", None);
    assert_eq!(got[0]["id"], "msg_01Stream");

    body["stream_options"] = json!({"include_usage": true});
    let got = chunks(&chat(&env, &body));
    assert_text_stream(&got, "Cold: 3 °C and snow.", "stop", Some((25, 15)));

    for r in upstream.requests() {
        let sent = check_request(&r);
        assert_eq!(sent["stream"], true);
        assert!(sent.get("stream_options").is_none(), "{sent:#}");
    }
}

#[test]
fn streamed_tool_call() {
    let upstream = Upstream::start(|_| {
        let events = [
            named(
                "message_start",
                json!({"type": "message_start", "message": {
                "id": "msg_01Tools", "type": "message", "role": "assistant", "content": [],
                "model": "claude-sonnet-4-5", "usage": {"input_tokens": 400, "output_tokens": 1}}}),
            ),
            named(
                "content_block_start",
                json!({"type": "content_block_start", "index": 0,
                "content_block": {"type": "text", "text": ""}}),
            ),
            named(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 0,
                "delta": {"type": "text_delta", "text": "Let me check."}}),
            ),
            named(
                "content_block_stop",
                json!({"type": "content_block_stop", "index": 0}),
            ),
            named(
                "content_block_start",
                json!({"type": "content_block_start", "index": 1,
                "content_block": {"type": "tool_use", "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
                                  "name": "get_weather", "input": {}}}),
            ),
            named(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 1,
                "delta": {"type": "input_json_delta", "partial_json": ""}}),
            ),
            named(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 1,
                "delta": {"type": "input_json_delta", "partial_json": "{\"city\": \"Os"}}),
            ),
            named("ping", json!({"type": "ping"})),
            named(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 1,
                "delta": {"type": "input_json_delta", "partial_json": "lo\"}"}}),
            ),
            named(
                "content_block_stop",
                json!({"type": "content_block_stop", "index": 1}),
            ),
            named(
                "message_delta",
                json!({"type": "message_delta",
                "delta": {"stop_reason": "tool_use", "stop_sequence": null},
                "usage": {"output_tokens": 89}}),
            ),
            named("message_stop", json!({"type": "message_stop"})),
        ];
        let refs: Vec<&str> = events.iter().map(String::as_str).collect();
        Reply::sse(&refs)
    });
    let env = start(&upstream);
    let mut body = tool_question("@claude/claude-sonnet-4-5");
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let got = chunks(&chat(&env, &body));
    assert_eq!(streamed_text(&got), "Let me check.");
    assert_eq!(
        streamed_tool_calls(&got),
        vec![(
            "toolu_01T1x1fJ34qAmk2tNTrN7Up6".to_string(),
            "get_weather".to_string(),
            "{\"city\": \"Oslo\"}".to_string()
        )]
    );
    assert_eq!(finish_reasons(&got), vec!["tool_calls"]);
    assert_usage(&usage_chunks(&got)[0]["usage"], 400, 89);
}

#[test]
fn tool_call_round_trip() {
    let upstream = Upstream::start(|r| {
        let sent = r.json();
        let last = &sent["messages"].as_array().unwrap().last().unwrap()["content"][0];
        if last["type"] == "tool_result" {
            return Reply::ok(message(
                json!([{"type": "text", "text": "3 °C and snowing."}]),
                "end_turn",
            ));
        }
        Reply::ok(message(
            json!([{"type": "text", "text": "I'll check."},
                   {"type": "tool_use", "id": "toolu_01A09q90qw90lq917835lq9",
                    "name": "get_weather", "input": {"city": "Oslo"}}]),
            "tool_use",
        ))
    });
    let env = start(&upstream);

    let answer = chat(&env, &tool_question("@claude/claude-sonnet-4-5"));
    assert_eq!(answer.status, 200, "{answer}");
    let v = answer.json();
    let choice = assert_completion(&v, Some("I'll check."), "tool_calls");
    let call = &choice["message"]["tool_calls"][0];
    assert_eq!(call["id"], "toolu_01A09q90qw90lq917835lq9");
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], "get_weather");
    let args = call["function"]["arguments"].as_str().unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(args).unwrap(),
        json!({"city": "Oslo"})
    );

    let answer = chat(
        &env,
        &tool_answer(
            "@claude/claude-sonnet-4-5",
            "toolu_01A09q90qw90lq917835lq9",
            args,
        ),
    );
    assert_eq!(answer.status, 200, "{answer}");
    assert_completion(&answer.json(), Some("3 °C and snowing."), "stop");

    let requests = upstream.requests();
    assert_eq!(requests.len(), 2);
    let first = check_request(&requests[0]);
    assert_eq!(first["system"], "Be brief.");
    assert_eq!(
        first["tools"],
        json!([{"name": "get_weather", "description": "The current weather in a city",
                "input_schema": {"type": "object", "properties": {"city": {"type": "string"}},
                                 "required": ["city"]}}])
    );
    assert_eq!(first["tool_choice"], json!({"type": "auto"}));
    let second = check_request(&requests[1]);
    assert_eq!(
        second["messages"],
        json!([
            {"role": "user", "content": [{"type": "text", "text": "What is the weather in Oslo?"}]},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_01A09q90qw90lq917835lq9",
                                               "name": "get_weather", "input": {"city": "Oslo"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_01A09q90qw90lq917835lq9",
                                          "content": "{\"temp_c\":3,\"sky\":\"snow\"}"}]},
        ])
    );
}

fn error_answer(
    status: u16,
    kind: &str,
    message: &str,
    headers: Vec<(&'static str, String)>,
) -> HttpAnswer {
    let body = json!({"type": "error", "error": {"type": kind, "message": message},
                      "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy"});
    let upstream = Upstream::start(move |_| Reply::Json(status, body.clone(), headers.clone()));
    let env = start(&upstream);
    let answer = chat(
        &env,
        &json!({"model": "@claude/claude-sonnet-4-5", "messages": [{"role": "user", "content": "hi"}]}),
    );
    only_request(&upstream);
    answer
}

#[test]
fn overloaded_529_is_a_503() {
    let answer = error_answer(529, "overloaded_error", "Overloaded", vec![]);
    let body = assert_upstream_error(&answer, 503, "anthropic", "server_error", "Overloaded");
    assert_eq!(body["error"]["code"], "overloaded");
}

#[test]
fn rate_limit_429_keeps_retry_after() {
    let message = "This request would exceed the rate limit for your organization of 50 input tokens per minute.";
    let answer = error_answer(
        429,
        "rate_limit_error",
        message,
        vec![("retry-after", "7".into())],
    );
    let body = assert_upstream_error(&answer, 429, "anthropic", "rate_limit_error", message);
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    assert_eq!(answer.header("retry-after"), Some("7"));
}

#[test]
fn invalid_request_400() {
    let message = "messages.0.content.0.text: Field required";
    let answer = error_answer(400, "invalid_request_error", message, vec![]);
    assert_upstream_error(&answer, 400, "anthropic", "invalid_request_error", message);
}

#[test]
fn an_error_event_mid_stream_ends_the_stream_with_an_error() {
    let upstream = Upstream::start(|_| {
        let events = [
            named(
                "message_start",
                json!({"type": "message_start", "message": {
                "id": "msg_01E", "type": "message", "role": "assistant", "content": [],
                "model": "claude-sonnet-4-5", "usage": {"input_tokens": 5, "output_tokens": 1}}}),
            ),
            named(
                "content_block_start",
                json!({"type": "content_block_start", "index": 0,
                "content_block": {"type": "text", "text": ""}}),
            ),
            named(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 0,
                "delta": {"type": "text_delta", "text": "Cold"}}),
            ),
            named(
                "error",
                json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
            ),
        ];
        let refs: Vec<&str> = events.iter().map(String::as_str).collect();
        Reply::sse(&refs)
    });
    let env = start(&upstream);
    let answer = chat(
        &env,
        &json!({"model": "@claude/claude-sonnet-4-5", "stream": true,
                "messages": [{"role": "user", "content": "hi"}]}),
    );
    assert_eq!(answer.status, 200, "{answer}");
    let events = answer.events();
    let n = events.len();
    assert!(n >= 3, "{answer}");
    assert_eq!(events[n - 1].data, "[DONE]", "{answer}");
    let error: Value = serde_json::from_str(&events[n - 2].data).unwrap();
    assert_eq!(error["error"]["message"], "Overloaded", "{answer}");
    assert_eq!(error["error"]["type"], "server_error", "{answer}");
    let before: Vec<Value> = events[..n - 2]
        .iter()
        .map(|e| serde_json::from_str(&e.data).unwrap())
        .collect();
    assert_eq!(streamed_text(&before), "Cold");
}

#[test]
fn embeddings_are_refused_before_any_upstream_call() {
    let upstream = Upstream::start(|_| Reply::ok(json!({})));
    let env = start(&upstream);
    let answer = super::post(
        &env,
        "/v1/embeddings",
        &json!({"model": "@claude/claude-sonnet-4-5", "input": "x"}),
    );
    assert_eq!(answer.status, 400, "{answer}");
    assert!(
        answer.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("embeddings"),
        "{answer}"
    );
    assert!(upstream.requests().is_empty());
}

/// Two calls in one assistant turn: their two results go back in ONE user turn; `required`
/// becomes `any`, `parallel_tool_calls: false` disables parallel use.
#[test]
fn parallel_tool_results_share_one_user_turn() {
    let upstream = Upstream::start(|_| {
        Reply::ok(message(
            json!([{"type": "text", "text": "Oslo 3 °C, Bergen 8 °C."}]),
            "end_turn",
        ))
    });
    let env = start(&upstream);
    let call = |id: &str, city: &str| {
        json!({"id": id, "type": "function",
               "function": {"name": "get_weather", "arguments": format!("{{\"city\":\"{city}\"}}")}})
    };
    let answer = chat(
        &env,
        &json!({
            "model": "@claude/claude-sonnet-4-5",
            "tools": [super::weather_tool()], "tool_choice": "required", "parallel_tool_calls": false,
            "messages": [
                {"role": "user", "content": "Oslo and Bergen?"},
                {"role": "assistant", "content": "Checking both.",
                 "tool_calls": [call("toolu_1", "Oslo"), call("toolu_2", "Bergen")]},
                {"role": "tool", "tool_call_id": "toolu_1", "content": "3 °C"},
                {"role": "tool", "tool_call_id": "toolu_2", "content": "8 °C"},
            ],
        }),
    );
    assert_eq!(answer.status, 200, "{answer}");
    let sent = check_request(&only_request(&upstream));
    assert_eq!(
        sent["tool_choice"],
        json!({"type": "any", "disable_parallel_tool_use": true})
    );
    assert_eq!(
        sent["messages"],
        json!([
            {"role": "user", "content": [{"type": "text", "text": "Oslo and Bergen?"}]},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Checking both."},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Oslo"}},
                {"type": "tool_use", "id": "toolu_2", "name": "get_weather", "input": {"city": "Bergen"}},
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "3 °C"},
                {"type": "tool_result", "tool_use_id": "toolu_2", "content": "8 °C"},
            ]},
        ])
    );
}

/// `response_format: json_schema` through the tool trick: one forced tool whose input is the
/// answer, given back as text with finish_reason `stop`.
#[test]
fn json_schema_response_format_through_a_forced_tool() {
    let schema = json!({"type": "object", "properties": {"temp_c": {"type": "number"}}, "required": ["temp_c"]});
    let upstream = Upstream::start(|_| {
        Reply::ok(message(
            json!([{"type": "tool_use", "id": "toolu_J", "name": "json_response", "input": {"temp_c": 3}}]),
            "tool_use",
        ))
    });
    let env = start(&upstream);
    let answer = chat(
        &env,
        &json!({"model": "@claude/claude-sonnet-4-5",
                "messages": [{"role": "user", "content": "Temperature in Oslo as JSON"}],
                "response_format": {"type": "json_schema",
                                    "json_schema": {"name": "weather", "schema": schema, "strict": true}}}),
    );
    assert_eq!(answer.status, 200, "{answer}");
    let v = answer.json();
    let choice = assert_completion(&v, Some("{\"temp_c\":3}"), "stop");
    assert!(choice["message"].get("tool_calls").is_none(), "{v:#}");
    let sent = check_request(&only_request(&upstream));
    assert_eq!(sent["tools"][0]["name"], "json_response");
    assert_eq!(sent["tools"][0]["input_schema"], schema);
    assert_eq!(
        sent["tool_choice"],
        json!({"type": "tool", "name": "json_response"})
    );
}
