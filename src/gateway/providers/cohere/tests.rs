use serde_json::{json, Map, Value};

use super::*;
use crate::gateway::providers::adapter::StreamError;
use crate::gateway::providers::find;
use crate::gateway::providers::translation::test_support::{
    feed, strip_id_and_created as strip, without_created,
};

fn target<'a>(base: &'a str, settings: &'a Map<String, Value>) -> Target<'a> {
    Target {
        provider: find("cohere").unwrap(),
        base_url: base,
        api_key: Some("co-test"),
        settings,
    }
}

fn send(endpoint: Endpoint, body: Value, stream: bool) -> (String, Value) {
    let settings = Map::new();
    let r = Cohere
        .request(
            &target("https://api.cohere.com/", &settings),
            endpoint,
            &body,
            stream,
        )
        .unwrap();
    assert_eq!(
        r.headers,
        vec![
            ("content-type".to_string(), "application/json".to_string()),
            ("authorization".into(), "Bearer co-test".into()),
        ]
    );
    (r.url, serde_json::from_slice(&r.body).unwrap())
}

#[test]
fn chat_request_maps_and_strips() {
    let (url, sent) = send(
        Endpoint::Chat,
        json!({
            "model": "command-a-03-2025",
            "messages": [
                {"role": "user", "content": [
                    {"type": "text", "text": "Describe"},
                    {"type": "image_url", "image_url": {"url": "https://example.com/a.png", "detail": "low"}}
                ]},
                {"role": "developer", "content": "Be brief."},
                {"role": "system", "content": [{"type": "text", "text": "Use metric units."}]},
                {"role": "assistant", "content": "Sure."},
                {"role": "user", "content": "Go"}
            ],
            "max_tokens": 200, "temperature": 1.4, "top_p": 1, "top_k": 40, "seed": 3,
            "frequency_penalty": 0.1, "presence_penalty": -0.5, "stop": "###", "user": "u1", "logit_bias": {"5": 1},
            "stream": true, "stream_options": {"include_usage": true},
            "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}
        }),
        true,
    );
    assert_eq!(url, "https://api.cohere.com/v2/chat");
    assert_eq!(
        sent,
        json!({
            "model": "command-a-03-2025",
            "messages": [
                {"role": "system", "content": "Be brief.\n\nUse metric units."},
                {"role": "user", "content": [
                    {"type": "text", "text": "Describe"},
                    {"type": "image_url", "image_url": {"url": "https://example.com/a.png", "detail": "low"}}
                ]},
                {"role": "assistant", "content": "Sure."},
                {"role": "user", "content": "Go"}
            ],
            "max_tokens": 200,
            "stop_sequences": ["###"],
            "temperature": 1.0,
            "p": 0.99, "k": 40, "seed": 3, "frequency_penalty": 0.1, "presence_penalty": 0.0,
            "response_format": {"type": "json_object", "json_schema": {"type": "object"}},
            "stream": true
        })
    );
}

#[test]
fn tool_call_round_trip() {
    let tools = json!([{"type": "function", "function": {"name": "get_weather", "description": "Weather",
        "parameters": {"type": "object", "properties": {"location": {"type": "string"}}}, "strict": true}},
        {"type": "function", "function": {"name": "get_time"}}]);
    let (_, first) = send(
        Endpoint::Chat,
        json!({"model": "command-a-03-2025", "tools": tools, "tool_choice": "required",
               "messages": [{"role": "user", "content": "Weather in Toronto?"}]}),
        false,
    );
    assert_eq!(
        first["tools"],
        json!([
            {"type": "function", "function": {"name": "get_weather", "description": "Weather",
                "parameters": {"type": "object", "properties": {"location": {"type": "string"}}}}},
            {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}
        ])
    );
    assert_eq!(first["strict_tools"], true);
    assert_eq!(first["tool_choice"], "REQUIRED");

    let answer = json!({
        "id": "b8aa4eb6-2a5c-4e0a-9b2c-3c9b5a8d1e77",
        "message": {"role": "assistant", "tool_plan": "I will look up the weather in Toronto.",
            "tool_calls": [{"id": "get_weather_1byjy32y4hvq", "type": "function",
                "function": {"name": "get_weather", "arguments": "{\"location\":\"Toronto\"}"}}]},
        "finish_reason": "TOOL_CALL",
        "usage": {"billed_units": {"input_tokens": 37, "output_tokens": 28},
                  "tokens": {"input_tokens": 913, "output_tokens": 81}, "cached_tokens": 512}
    });
    let out = Cohere
        .response(
            Endpoint::Chat,
            answer.to_string().as_bytes(),
            "command-a-03-2025",
        )
        .unwrap();
    let calls = json!([{"id": "get_weather_1byjy32y4hvq", "type": "function",
        "function": {"name": "get_weather", "arguments": "{\"location\":\"Toronto\"}"}}]);
    assert_eq!(
        without_created(out),
        json!({
            "id": "b8aa4eb6-2a5c-4e0a-9b2c-3c9b5a8d1e77", "object": "chat.completion",
            "model": "command-a-03-2025", "system_fingerprint": null,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": null, "refusal": null,
                "tool_calls": calls}, "logprobs": null, "finish_reason": "tool_calls"}],
            "usage": {"prompt_tokens": 913, "completion_tokens": 81, "total_tokens": 994,
                "prompt_tokens_details": {"cached_tokens": 512}, "completion_tokens_details": {"reasoning_tokens": 0},
                "billed_units": {"input_tokens": 37, "output_tokens": 28}}
        })
    );

    let (_, follow_up) = send(
        Endpoint::Chat,
        json!({"model": "command-a-03-2025", "tools": tools, "messages": [
            {"role": "user", "content": "Weather in Toronto?"},
            {"role": "assistant", "content": "I will look up the weather in Toronto.", "tool_calls": calls},
            {"role": "tool", "tool_call_id": "get_weather_1byjy32y4hvq", "content": "{\"temperature\": 20}"}
        ]}),
        false,
    );
    assert_eq!(
        follow_up["messages"],
        json!([
            {"role": "user", "content": "Weather in Toronto?"},
            {"role": "assistant", "tool_calls": calls, "tool_plan": "I will look up the weather in Toronto."},
            {"role": "tool", "tool_call_id": "get_weather_1byjy32y4hvq", "content": "{\"temperature\": 20}"}
        ])
    );
    assert!(follow_up.get("tool_choice").is_none());

    let (_, named) = send(
        Endpoint::Chat,
        json!({"model": "m", "tools": tools, "tool_choice": {"type": "function", "function": {"name": "get_time"}},
               "messages": [{"role": "user", "content": "time?"}]}),
        false,
    );
    assert_eq!(
        named["tools"],
        json!([{"type": "function", "function": {"name": "get_time",
        "parameters": {"type": "object", "properties": {}}}}])
    );
    assert_eq!(named["tool_choice"], "REQUIRED");
}

#[test]
fn text_response_completions_and_failures() {
    let answer = json!({"id": "c14c80c3-18eb-4519-9460-6c92edd8cfb4", "finish_reason": "MAX_TOKENS",
        "message": {"role": "assistant", "content": [{"type": "text", "text": "LLMs are "}, {"type": "text", "text": "large."}]},
        "usage": {"billed_units": {"input_tokens": 5, "output_tokens": 42}, "tokens": {"input_tokens": 71, "output_tokens": 42}}});
    let out = Cohere
        .response(
            Endpoint::Chat,
            answer.to_string().as_bytes(),
            "command-r-plus-08-2024",
        )
        .unwrap();
    assert_eq!(
        out["choices"][0]["message"],
        json!({"role": "assistant", "content": "LLMs are large.", "refusal": null})
    );
    assert_eq!(out["choices"][0]["finish_reason"], "length");
    let text = Cohere
        .response(Endpoint::Completions, answer.to_string().as_bytes(), "m")
        .unwrap();
    assert_eq!(
        without_created(text),
        json!({"id": "c14c80c3-18eb-4519-9460-6c92edd8cfb4", "object": "text_completion", "model": "m",
            "choices": [{"text": "LLMs are large.", "index": 0, "logprobs": null, "finish_reason": "length"}],
            "usage": {"prompt_tokens": 71, "completion_tokens": 42, "total_tokens": 113,
                "prompt_tokens_details": {"cached_tokens": 0}, "completion_tokens_details": {"reasoning_tokens": 0},
                "billed_units": {"input_tokens": 5, "output_tokens": 42}}})
    );
    let (url, sent) = send(
        Endpoint::Completions,
        json!({"model": "m", "prompt": ["Once"], "max_tokens": 9}),
        false,
    );
    assert_eq!(url, "https://api.cohere.com/v2/chat");
    assert_eq!(
        sent,
        json!({"model": "m", "messages": [{"role": "user", "content": "Once"}], "max_tokens": 9})
    );
    let failed = json!({"id": "x", "finish_reason": "ERROR", "message": {"role": "assistant", "content": []}});
    let e = Cohere
        .response(Endpoint::Chat, failed.to_string().as_bytes(), "m")
        .unwrap_err();
    assert_eq!(e.0, "Cohere stopped generating with an error");
    let settings = Map::new();
    let t = target("", &settings);
    let e = Cohere
        .request(&t, Endpoint::Responses, &json!({"model": "m"}), false)
        .unwrap_err();
    assert!(e.0.contains("Responses"));
    let audio =
        json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "input_audio"}]}]});
    let e = Cohere
        .request(&t, Endpoint::Chat, &audio, false)
        .unwrap_err();
    assert_eq!(
        e.0,
        "messages[0]: content parts of type `input_audio` are not supported by Cohere"
    );
}

#[test]
fn embeddings_both_ways() {
    let (url, sent) = send(
        Endpoint::Embeddings,
        json!({"model": "embed-v4.0", "input": ["hello", "goodbye"], "dimensions": 1024,
               "encoding_format": "float", "user": "u"}),
        false,
    );
    assert_eq!(url, "https://api.cohere.com/v2/embed");
    assert_eq!(
        sent,
        json!({"model": "embed-v4.0", "texts": ["hello", "goodbye"], "input_type": "search_document",
               "embedding_types": ["float"], "output_dimension": 1024})
    );
    let (_, query) = send(
        Endpoint::Embeddings,
        json!({"model": "m", "input": "q", "input_type": "search_query"}),
        false,
    );
    assert_eq!(query["input_type"], "search_query");
    assert_eq!(query["texts"], json!(["q"]));
    let answer = json!({"id": "da6e531f-54c6-4a73-bf92-f60566d8d753",
        "embeddings": {"float": [[0.016296387, -0.008354187], [-0.04663086, 0.021133423]]},
        "texts": ["hello", "goodbye"], "meta": {"api_version": {"version": "2"}, "billed_units": {"input_tokens": 2}},
        "response_type": "embeddings_by_type"});
    let out = Cohere
        .response(
            Endpoint::Embeddings,
            answer.to_string().as_bytes(),
            "embed-v4.0",
        )
        .unwrap();
    assert_eq!(
        out,
        json!({"object": "list", "data": [
                {"object": "embedding", "index": 0, "embedding": [0.016296387, -0.008354187]},
                {"object": "embedding", "index": 1, "embedding": [-0.04663086, 0.021133423]}],
               "model": "embed-v4.0", "usage": {"prompt_tokens": 2, "total_tokens": 2}})
    );
    let settings = Map::new();
    let t = target("", &settings);
    let tokens = json!({"model": "m", "input": [[1, 2, 3]]});
    assert!(Cohere
        .request(&t, Endpoint::Embeddings, &tokens, false)
        .is_err());
    let many = json!({"model": "m", "input": vec!["x"; 97]});
    assert!(Cohere
        .request(&t, Endpoint::Embeddings, &many, false)
        .unwrap_err()
        .0
        .contains("96"));
}

fn run(
    endpoint: Endpoint,
    text: &str,
    sizes: &[usize],
) -> (Vec<Value>, Result<(), StreamError>, Option<Usage>) {
    feed(
        Cohere.stream(endpoint, "command-a-03-2025").as_mut(),
        text.as_bytes(),
        sizes,
    )
}

const TOOL_STREAM: &str = concat!(
    "event: message-start\n",
    "data: {\"id\":\"29f14a5a-11de-4cae-9800-25e4747408ea\",\"type\":\"message-start\",\"delta\":{\"message\":{\"role\":\"assistant\",\"content\":[],\"tool_plan\":\"\",\"tool_calls\":[],\"citations\":[]}}}\n\n",
    "event: tool-plan-delta\n",
    "data: {\"type\":\"tool-plan-delta\",\"delta\":{\"message\":{\"tool_plan\":\"I will check.\"}}}\n\n",
    "event: tool-call-start\n",
    "data: {\"type\":\"tool-call-start\",\"index\":0,\"delta\":{\"message\":{\"tool_calls\":{\"id\":\"get_weather_nsz5zm3w56q3\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"\"}}}}}\n\n",
    "event: tool-call-delta\n",
    "data: {\"type\":\"tool-call-delta\",\"index\":0,\"delta\":{\"message\":{\"tool_calls\":{\"function\":{\"arguments\":\"{\\n    \\\"location\\\": \"}}}}}\n\n",
    "event: tool-call-delta\n",
    "data: {\"type\":\"tool-call-delta\",\"index\":0,\"delta\":{\"message\":{\"tool_calls\":{\"function\":{\"arguments\":\"\\\"Zürich\\\"\\n}\"}}}}}\n\n",
    "event: tool-call-end\n",
    "data: {\"type\":\"tool-call-end\",\"index\":0}\n\n",
    "event: tool-call-start\n",
    "data: {\"type\":\"tool-call-start\",\"index\":1,\"delta\":{\"message\":{\"tool_calls\":{\"id\":\"get_time_q8d1\",\"type\":\"function\",\"function\":{\"name\":\"get_time\",\"arguments\":\"\"}}}}}\n\n",
    "event: tool-call-delta\n",
    "data: {\"type\":\"tool-call-delta\",\"index\":1,\"delta\":{\"message\":{\"tool_calls\":{\"function\":{\"arguments\":\"{}\"}}}}}\n\n",
    "event: tool-call-end\n",
    "data: {\"type\":\"tool-call-end\",\"index\":1}\n\n",
    "event: message-end\n",
    "data: {\"type\":\"message-end\",\"delta\":{\"finish_reason\":\"TOOL_CALL\",\"usage\":{\"billed_units\":{\"input_tokens\":37,\"output_tokens\":28},\"tokens\":{\"input_tokens\":913,\"output_tokens\":81}}}}\n\n",
);

#[test]
fn stream_tool_calls_survive_any_chunking() {
    let chunk = |delta: Value, reason: Value| {
        json!({"object": "chat.completion.chunk", "model": "command-a-03-2025",
               "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": reason}]})
    };
    let expected = vec![
        chunk(json!({"role": "assistant", "content": ""}), Value::Null),
        chunk(
            json!({"tool_calls": [{"index": 0, "id": "get_weather_nsz5zm3w56q3", "type": "function",
            "function": {"name": "get_weather", "arguments": ""}}]}),
            Value::Null,
        ),
        chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\n    \"location\": "}}]}),
            Value::Null,
        ),
        chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "\"Zürich\"\n}"}}]}),
            Value::Null,
        ),
        chunk(
            json!({"tool_calls": [{"index": 1, "id": "get_time_q8d1", "type": "function",
            "function": {"name": "get_time", "arguments": ""}}]}),
            Value::Null,
        ),
        chunk(
            json!({"tool_calls": [{"index": 1, "function": {"arguments": "{}"}}]}),
            Value::Null,
        ),
        chunk(json!({}), json!("tool_calls")),
        json!({"object": "chat.completion.chunk", "model": "command-a-03-2025", "choices": [],
            "usage": {"prompt_tokens": 913, "completion_tokens": 81, "total_tokens": 994,
                "prompt_tokens_details": {"cached_tokens": 0}, "completion_tokens_details": {"reasoning_tokens": 0},
                "billed_units": {"input_tokens": 37, "output_tokens": 28}}}),
    ];
    let usage = Usage {
        prompt_tokens: 913,
        completion_tokens: 81,
        cached_tokens: 0,
        reasoning_tokens: 0,
    };
    let patterns: Vec<Vec<usize>> = (1..=20)
        .map(|n| vec![n])
        .chain([vec![1, 9, 2, 40, 3, 1, 17], vec![8192]])
        .collect();
    for sizes in patterns {
        let (chunks, result, got) = run(Endpoint::Chat, TOOL_STREAM, &sizes);
        assert_eq!(result, Ok(()), "sizes {sizes:?}");
        assert_eq!(
            strip(chunks, "29f14a5a-11de-4cae-9800-25e4747408ea"),
            expected,
            "sizes {sizes:?}"
        );
        assert_eq!(got, Some(usage));
    }
}

const TEXT_STREAM: &str = concat!(
    "event: message-start\r\n",
    "data: {\"id\":\"c1\",\"type\":\"message-start\",\"delta\":{\"message\":{\"role\":\"assistant\",\"content\":[]}}}\r\n\r\n",
    "event: content-start\r\n",
    "data: {\"type\":\"content-start\",\"index\":0,\"delta\":{\"message\":{\"content\":{\"type\":\"text\",\"text\":\"\"}}}}\r\n\r\n",
    "event: content-delta\r\n",
    "data: {\"type\":\"content-delta\",\"index\":0,\"delta\":{\"message\":{\"content\":{\"text\":\"Hello\"}}}}\r\n\r\n",
    "event: content-delta\r\n",
    "data: {\"type\":\"content-delta\",\"index\":0,\"delta\":{\"message\":{\"content\":{\"text\":\" 世界\"}}}}\r\n\r\n",
    "event: content-end\r\n",
    "data: {\"type\":\"content-end\",\"index\":0}\r\n\r\n",
    "event: message-end\r\n",
    "data: {\"type\":\"message-end\",\"delta\":{\"finish_reason\":\"COMPLETE\",\"usage\":{\"billed_units\":{\"input_tokens\":3,\"output_tokens\":2},\"tokens\":{\"input_tokens\":69,\"output_tokens\":2},\"cached_tokens\":64}}}\r\n\r\n",
);

#[test]
fn text_stream_chat_and_completions() {
    for sizes in [vec![1], vec![2, 7], vec![5000]] {
        let (chunks, result, usage) = run(Endpoint::Chat, TEXT_STREAM, &sizes);
        result.unwrap();
        let chunks = strip(chunks, "c1");
        let choices: Vec<Value> = chunks.iter().map(|c| c["choices"].clone()).collect();
        assert_eq!(
            choices,
            vec![
                json!([{"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": null, "finish_reason": null}]),
                json!([{"index": 0, "delta": {"content": "Hello"}, "logprobs": null, "finish_reason": null}]),
                json!([{"index": 0, "delta": {"content": " 世界"}, "logprobs": null, "finish_reason": null}]),
                json!([{"index": 0, "delta": {}, "logprobs": null, "finish_reason": "stop"}]),
                json!([]),
            ]
        );
        assert_eq!(
            chunks[4]["usage"]["prompt_tokens_details"],
            json!({"cached_tokens": 64})
        );
        assert_eq!(
            usage,
            Some(Usage {
                prompt_tokens: 69,
                completion_tokens: 2,
                cached_tokens: 64,
                reasoning_tokens: 0
            })
        );
    }
    let (chunks, result, _) = run(Endpoint::Completions, TEXT_STREAM, &[3]);
    result.unwrap();
    let texts: Vec<(Value, Value, Value)> = chunks
        .iter()
        .map(|c| {
            (
                c["object"].clone(),
                c["choices"][0]["text"].clone(),
                c["choices"][0]["finish_reason"].clone(),
            )
        })
        .collect();
    assert_eq!(
        texts,
        vec![
            (json!("text_completion"), json!("Hello"), Value::Null),
            (json!("text_completion"), json!(" 世界"), Value::Null),
            (json!("text_completion"), json!(""), json!("stop")),
            (json!("text_completion"), Value::Null, Value::Null),
        ]
    );
}

#[test]
fn stream_failures() {
    let cut = TEXT_STREAM.split("event: message-end").next().unwrap();
    let (chunks, result, _) = run(Endpoint::Chat, cut, &[4]);
    assert_eq!(chunks.len(), 3);
    assert_eq!(
        result.unwrap_err().message,
        "Cohere closed the stream before message-end"
    );
    let errored = TEXT_STREAM.replace("COMPLETE", "ERROR");
    let (_, result, usage) = run(Endpoint::Chat, &errored, &[1]);
    assert_eq!(
        result,
        Err(StreamError {
            message: "Cohere stopped generating with an error".into(),
            kind: "server_error".into()
        })
    );
    assert_eq!(usage.map(|u| u.prompt_tokens), Some(69));
    let timeout = TEXT_STREAM.replace("COMPLETE", "TIMEOUT");
    assert_eq!(
        run(Endpoint::Chat, &timeout, &[64]).1.unwrap_err().kind,
        "timeout"
    );
    let error_event = format!("{cut}data: {{\"message\":\"internal server error\"}}\n\n");
    assert_eq!(
        run(Endpoint::Chat, &error_event, &[3])
            .1
            .unwrap_err()
            .message,
        "internal server error"
    );
    assert!(run(Endpoint::Chat, "data: {oops}\n\n", &[2]).1.is_err());
}

#[test]
fn errors_are_normalised() {
    let p = find("cohere").unwrap();
    assert_eq!(
        Cohere.error(p, 400, br#"{"id":"5d4a0cf4-2b43-4b1e-8e0d-6a1c2a0e2c1b","message":"invalid request: model 'command-z' not found"}"#),
        (400, json!({"error": {"message": "cohere error: invalid request: model 'command-z' not found",
            "type": "invalid_request_error", "param": null, "code": null}, "provider": "cohere"}))
    );
    let (status, body) = Cohere.error(
        p,
        429,
        br#"{"message":"You are using a Trial key, which is limited to 10 API calls / minute."}"#,
    );
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (429, json!("rate_limit_exceeded"))
    );
    let (status, body) = Cohere.error(p, 401, br#"{"message":"invalid api token"}"#);
    assert_eq!(
        (status, body["error"]["type"].clone()),
        (401, json!("authentication_error"))
    );
    let (status, body) = Cohere.error(p, 402, br#"{"message":"Please add a payment method"}"#);
    assert_eq!(
        (status, body["error"]["type"].clone()),
        (402, json!("insufficient_quota"))
    );
    let (status, body) = Cohere.error(p, 503, b"upstream connect error");
    assert_eq!(
        (status, body["error"]["message"].clone()),
        (503, json!("cohere error: upstream connect error"))
    );
    assert_eq!(
        Cohere.error(p, 500, b"").1["error"]["message"],
        "cohere error: HTTP 500"
    );
}
