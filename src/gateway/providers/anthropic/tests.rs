use serde_json::{json, Map, Value};

use super::*;
use crate::gateway::providers::find;
use crate::gateway::providers::translation::test_support::without_created;

fn target<'a>(base: &'a str, settings: &'a Map<String, Value>) -> Target<'a> {
    Target {
        provider: find("anthropic").unwrap(),
        base_url: base,
        api_key: Some("sk-ant-test"),
        settings,
    }
}

fn send(body: Value, stream: bool) -> Value {
    let settings = Map::new();
    let t = target("https://api.anthropic.com/v1", &settings);
    let r = Anthropic
        .request(&t, Endpoint::Chat, &body, stream)
        .unwrap();
    serde_json::from_slice(&r.body).unwrap()
}

#[test]
fn request_url_headers_and_plain_mapping() {
    let settings: Map<String, Value> =
        serde_json::from_value(json!({"anthropic_beta": "prompt-caching-2024-07-31"})).unwrap();
    let t = target("https://proxy.example.com/v1/", &settings);
    let body = json!({
        "model": "claude-sonnet-4-5",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "developer", "content": [{"type": "text", "text": "Answer in English."}]},
            {"role": "user", "content": [
                {"type": "text", "text": "What is in these?"},
                {"type": "text", "text": ""},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "high"}},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}}
            ]}
        ],
        "max_completion_tokens": 300, "max_tokens": 50, "temperature": 1.7, "top_p": 0.9,
        "stop": "END", "user": "user-42", "stream": true, "stream_options": {"include_usage": true},
        "seed": 7, "frequency_penalty": 0.5, "logprobs": true, "n": 1, "store": true
    });
    let r = Anthropic.request(&t, Endpoint::Chat, &body, true).unwrap();
    assert_eq!(r.url, "https://proxy.example.com/v1/messages");
    assert_eq!(
        r.headers,
        vec![
            ("content-type".to_string(), "application/json".to_string()),
            ("x-api-key".into(), "sk-ant-test".into()),
            ("anthropic-version".into(), "2023-06-01".into()),
            ("anthropic-beta".into(), "prompt-caching-2024-07-31".into()),
        ]
    );
    let sent: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(
        sent,
        json!({
            "model": "claude-sonnet-4-5",
            "max_tokens": 300,
            "system": "You are terse.\n\nAnswer in English.",
            "messages": [{"role": "user", "content": [
                {"type": "text", "text": "What is in these?"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}}
            ]}],
            "stop_sequences": ["END"],
            "temperature": 1.0,
            "top_p": 0.9,
            "metadata": {"user_id": "user-42"},
            "stream": true
        })
    );
}

#[test]
fn request_defaults_version_setting_and_cache_control() {
    let settings: Map<String, Value> =
        serde_json::from_value(json!({"anthropic_version": "2024-01-01"})).unwrap();
    let t = target("", &settings);
    let body = json!({"model": "claude-3-5-haiku-latest", "messages": [
        {"role": "system", "content": [{"type": "text", "text": "Long rules", "cache_control": {"type": "ephemeral"}}]},
        {"role": "user", "content": "hi"}
    ], "stop": ["a", " ", "b"], "stream": false});
    let r = Anthropic.request(&t, Endpoint::Chat, &body, false).unwrap();
    assert_eq!(r.url, "https://api.anthropic.com/v1/messages");
    assert!(r
        .headers
        .contains(&("anthropic-version".into(), "2024-01-01".into())));
    assert!(!r.headers.iter().any(|(k, _)| k == "anthropic-beta"));
    let sent: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(
        sent,
        json!({
            "model": "claude-3-5-haiku-latest",
            "max_tokens": 4096,
            "system": [{"type": "text", "text": "Long rules", "cache_control": {"type": "ephemeral"}}],
            "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
            "stop_sequences": ["a", "b"]
        })
    );
}

#[test]
fn unsupported_endpoints_and_requests_are_refused() {
    let settings = Map::new();
    let t = target("", &settings);
    let body = json!({"model": "claude-sonnet-4-5", "input": "x"});
    let e = Anthropic
        .request(&t, Endpoint::Embeddings, &body, false)
        .unwrap_err();
    assert!(e.0.contains("no embeddings"), "{}", e.0);
    let e = Anthropic
        .request(&t, Endpoint::Responses, &body, false)
        .unwrap_err();
    assert!(e.0.contains("Responses"), "{}", e.0);
    let chat = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "n": 2});
    assert!(Anthropic
        .request(&t, Endpoint::Chat, &chat, false)
        .unwrap_err()
        .0
        .contains("`n`"));
    let audio = json!({"model": "m", "messages": [{"role": "user", "content": [
        {"type": "input_audio", "input_audio": {"data": "AAA", "format": "wav"}}]}]});
    let e = Anthropic
        .request(&t, Endpoint::Chat, &audio, false)
        .unwrap_err();
    assert_eq!(
        e.0,
        "messages[0]: content parts of type `input_audio` are not supported here"
    );
    let keyless = Target {
        api_key: None,
        ..target("", &settings)
    };
    assert!(Anthropic
        .request(&keyless, Endpoint::Chat, &chat, false)
        .is_err());
}

#[test]
fn tool_call_round_trip() {
    let tools = json!([{"type": "function", "function": {
        "name": "get_weather", "description": "Current weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]);
    let first = send(
        json!({"model": "claude-sonnet-4-5", "tools": tools, "tool_choice": "required",
               "parallel_tool_calls": false,
               "messages": [{"role": "user", "content": "Weather in Oslo and Bergen?"}]}),
        false,
    );
    assert_eq!(
        first["tools"],
        json!([{"name": "get_weather", "description": "Current weather", "input_schema":
            {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}])
    );
    assert_eq!(
        first["tool_choice"],
        json!({"type": "any", "disable_parallel_tool_use": true})
    );

    let answer = json!({
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL", "type": "message", "role": "assistant",
        "model": "claude-sonnet-4-5-20250929",
        "content": [
            {"type": "thinking", "thinking": "…", "signature": "EqQB"},
            {"type": "text", "text": "Checking both."},
            {"type": "tool_use", "id": "toolu_01A", "name": "get_weather", "input": {"city": "Oslo"}},
            {"type": "tool_use", "id": "toolu_01B", "name": "get_weather", "input": {"city": "Bergen"}}
        ],
        "stop_reason": "tool_use", "stop_sequence": null,
        "usage": {"input_tokens": 20, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 100, "output_tokens": 30}
    });
    let out = Anthropic
        .response(
            Endpoint::Chat,
            answer.to_string().as_bytes(),
            "claude-sonnet-4-5",
        )
        .unwrap();
    let calls = json!([
        {"id": "toolu_01A", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"}},
        {"id": "toolu_01B", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Bergen\"}"}}
    ]);
    assert_eq!(
        without_created(out),
        json!({
            "id": "msg_01XFDUDYJgAACzvnptvVoYEL", "object": "chat.completion",
            "model": "claude-sonnet-4-5-20250929", "system_fingerprint": null,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Checking both.",
                "refusal": null, "tool_calls": calls}, "logprobs": null, "finish_reason": "tool_calls"}],
            "usage": {"prompt_tokens": 120, "completion_tokens": 30, "total_tokens": 150,
                "prompt_tokens_details": {"cached_tokens": 100},
                "completion_tokens_details": {"reasoning_tokens": 0}}
        })
    );

    let follow_up = send(
        json!({"model": "claude-sonnet-4-5", "tools": tools, "messages": [
            {"role": "user", "content": "Weather in Oslo and Bergen?"},
            {"role": "assistant", "content": "Checking both.", "tool_calls": calls},
            {"role": "tool", "tool_call_id": "toolu_01A", "content": "4°C, rain"},
            {"role": "tool", "tool_call_id": "toolu_01B", "content": [{"type": "text", "text": "9°C"}]},
            {"role": "user", "content": "Which is warmer?"}
        ]}),
        false,
    );
    assert_eq!(
        follow_up["messages"],
        json!([
            {"role": "user", "content": [{"type": "text", "text": "Weather in Oslo and Bergen?"}]},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Checking both."},
                {"type": "tool_use", "id": "toolu_01A", "name": "get_weather", "input": {"city": "Oslo"}},
                {"type": "tool_use", "id": "toolu_01B", "name": "get_weather", "input": {"city": "Bergen"}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01A", "content": "4°C, rain"},
                {"type": "tool_result", "tool_use_id": "toolu_01B", "content": [{"type": "text", "text": "9°C"}]},
                {"type": "text", "text": "Which is warmer?"}
            ]}
        ])
    );
    assert_eq!(follow_up["tool_choice"], json!({"type": "auto"}));
}

#[test]
fn tool_choice_variants_and_bad_arguments() {
    let tools = json!([{"type": "function", "function": {"name": "f"}}]);
    let sent = |choice: Value| {
        send(
            json!({"model": "m", "tools": tools, "tool_choice": choice,
                    "messages": [{"role": "user", "content": "x"}]}),
            false,
        )
    };
    assert_eq!(sent(json!("none"))["tool_choice"], json!({"type": "none"}));
    let named = sent(json!({"type": "function", "function": {"name": "f"}}));
    assert_eq!(named["tool_choice"], json!({"type": "tool", "name": "f"}));
    assert_eq!(
        named["tools"],
        json!([{"name": "f", "input_schema": {"type": "object", "properties": {}}}])
    );
    // tool_choice without tools is dropped; empty arguments become {}.
    let bare = send(
        json!({"model": "m", "tool_choice": "auto", "messages": [
            {"role": "user", "content": "x"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "toolu_1", "type": "function", "function": {"name": "f", "arguments": ""}}]},
            {"role": "tool", "tool_call_id": "toolu_1", "content": ""}
        ]}),
        false,
    );
    assert!(bare.get("tool_choice").is_none());
    assert_eq!(
        bare["messages"][1]["content"],
        json!([{"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}])
    );
    assert_eq!(
        bare["messages"][2]["content"],
        json!([{"type": "tool_result", "tool_use_id": "toolu_1"}])
    );
    let settings = Map::new();
    let body = json!({"model": "m", "messages": [{"role": "assistant", "tool_calls": [
        {"id": "toolu_1", "type": "function", "function": {"name": "f", "arguments": "{oops"}}]}]});
    let e = Anthropic
        .request(&target("", &settings), Endpoint::Chat, &body, false)
        .unwrap_err();
    assert_eq!(
        e.0,
        "messages[0]: the arguments of tool call `toolu_1` are not valid JSON"
    );
}

#[test]
fn response_format_uses_the_json_tool_both_ways() {
    let schema = json!({"type": "object", "properties": {"answer": {"type": "integer"}}});
    let sent = send(
        json!({"model": "m", "messages": [{"role": "user", "content": "2+2?"}],
               "response_format": {"type": "json_schema", "json_schema": {"name": "a", "schema": schema}}}),
        false,
    );
    assert_eq!(
        sent["tools"],
        json!([{"name": "json_response", "description": "Give the final answer as JSON matching this schema.",
                "input_schema": schema}])
    );
    assert_eq!(
        sent["tool_choice"],
        json!({"type": "tool", "name": "json_response"})
    );
    let answer = json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "m",
        "content": [{"type": "tool_use", "id": "toolu_1", "name": "json_response", "input": {"answer": 4}}],
        "stop_reason": "tool_use", "usage": {"input_tokens": 5, "output_tokens": 3}});
    let out = Anthropic
        .response(Endpoint::Chat, answer.to_string().as_bytes(), "m")
        .unwrap();
    assert_eq!(
        out["choices"][0]["message"],
        json!({"role": "assistant", "content": "{\"answer\":4}", "refusal": null})
    );
    assert_eq!(out["choices"][0]["finish_reason"], "stop");
}

#[test]
fn reasoning_effort_enables_thinking_and_drops_sampling() {
    let sent = send(
        json!({"model": "claude-sonnet-4-5", "reasoning_effort": "medium", "temperature": 0.2,
               "messages": [{"role": "user", "content": "Prove it."}]}),
        false,
    );
    assert_eq!(
        sent["thinking"],
        json!({"type": "enabled", "budget_tokens": 4096})
    );
    assert_eq!(sent["max_tokens"], 8192);
    assert!(sent.get("temperature").is_none());
    let capped = send(
        json!({"model": "m", "reasoning_effort": "high", "max_tokens": 2000,
                             "messages": [{"role": "user", "content": "x"}]}),
        false,
    );
    assert_eq!(capped["thinking"]["budget_tokens"], 1999);
    assert_eq!(capped["max_tokens"], 2000);
}

#[test]
fn legacy_completions_are_one_user_message() {
    let settings = Map::new();
    let t = target("", &settings);
    let body = json!({"model": "m", "prompt": "Once upon", "max_tokens": 16});
    let r = Anthropic
        .request(&t, Endpoint::Completions, &body, false)
        .unwrap();
    let sent: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(
        sent,
        json!({"model": "m", "max_tokens": 16,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Once upon"}]}]})
    );
    let echo = json!({"model": "m", "prompt": "x", "echo": true});
    assert!(Anthropic
        .request(&t, Endpoint::Completions, &echo, false)
        .is_err());
    let answer = json!({"id": "msg_9", "type": "message", "role": "assistant", "model": "m",
        "content": [{"type": "text", "text": " a time"}], "stop_reason": "max_tokens",
        "usage": {"input_tokens": 3, "output_tokens": 16}});
    let out = Anthropic
        .response(Endpoint::Completions, answer.to_string().as_bytes(), "m")
        .unwrap();
    assert_eq!(
        without_created(out),
        json!({"id": "msg_9", "object": "text_completion", "model": "m",
            "choices": [{"text": " a time", "index": 0, "logprobs": null, "finish_reason": "length"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 16, "total_tokens": 19,
                "prompt_tokens_details": {"cached_tokens": 0}, "completion_tokens_details": {"reasoning_tokens": 0}}})
    );
}

#[test]
fn response_usage_counts_cache_reads_and_writes() {
    let answer = json!({"id": "msg_2", "type": "message", "role": "assistant", "model": "m",
        "content": [{"type": "text", "text": "Hello"}, {"type": "text", "text": " there"}],
        "stop_reason": "end_turn", "stop_sequence": null,
        "usage": {"input_tokens": 10, "cache_creation_input_tokens": 2048, "cache_read_input_tokens": 512, "output_tokens": 7}});
    let out = Anthropic
        .response(Endpoint::Chat, answer.to_string().as_bytes(), "m")
        .unwrap();
    assert_eq!(out["choices"][0]["message"]["content"], "Hello there");
    assert!(out["choices"][0]["message"].get("tool_calls").is_none());
    assert_eq!(out["choices"][0]["finish_reason"], "stop");
    assert_eq!(
        out["usage"],
        json!({"prompt_tokens": 2570, "completion_tokens": 7, "total_tokens": 2577,
            "prompt_tokens_details": {"cached_tokens": 512}, "completion_tokens_details": {"reasoning_tokens": 0},
            "cache_creation_input_tokens": 2048})
    );
    let refusal = json!({"id": "msg_3", "content": [], "stop_reason": "refusal", "usage": {}});
    let out = Anthropic
        .response(Endpoint::Chat, refusal.to_string().as_bytes(), "m")
        .unwrap();
    assert_eq!(out["choices"][0]["finish_reason"], "content_filter");
    assert_eq!(out["model"], "m");
    assert!(Anthropic
        .response(Endpoint::Chat, b"not json", "m")
        .is_err());
}

#[test]
fn errors_are_normalised() {
    let p = find("anthropic").unwrap();
    let overloaded = br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_011"}"#;
    assert_eq!(
        Anthropic.error(p, 529, overloaded),
        (
            503,
            json!({"error": {"message": "anthropic error: Overloaded", "type": "server_error",
            "param": null, "code": "overloaded"}, "provider": "anthropic"})
        )
    );
    let invalid = br#"{"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: Field required"}}"#;
    assert_eq!(
        Anthropic.error(p, 400, invalid),
        (
            400,
            json!({"error": {"message": "anthropic error: max_tokens: Field required",
            "type": "invalid_request_error", "param": null, "code": null}, "provider": "anthropic"})
        )
    );
    let (status, body) = Anthropic.error(p, 401, br#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}"#);
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (401, json!("invalid_api_key"))
    );
    let (status, body) = Anthropic.error(p, 429, br#"{"type":"error","error":{"type":"rate_limit_error","message":"Number of request tokens has exceeded your per-minute rate limit"}}"#);
    assert_eq!(
        (status, body["error"]["type"].clone()),
        (429, json!("rate_limit_error"))
    );
    let credit = br#"{"type":"error","error":{"type":"invalid_request_error","message":"Your credit balance is too low to access the Anthropic API."}}"#;
    let (status, body) = Anthropic.error(p, 400, credit);
    assert_eq!(
        (status, body["error"]["type"].clone()),
        (402, json!("insufficient_quota"))
    );
    let (status, body) = Anthropic.error(p, 502, b"<html>Bad Gateway</html>\n");
    assert_eq!(status, 502);
    assert_eq!(
        body["error"]["message"],
        "anthropic error: <html>Bad Gateway</html>"
    );
    let (_, body) = Anthropic.error(p, 500, b"");
    assert_eq!(body["error"]["message"], "anthropic error: HTTP 500");
}
