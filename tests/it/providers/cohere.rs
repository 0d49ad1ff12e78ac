//! Cohere v2: `POST {custom_host}/v2/chat` and `/v2/embed` with `Authorization: Bearer`;
//! `message.content[]` text and `tool_calls` back; stream events typed in their JSON
//! (`message-start`, `content-delta`, `tool-call-*`, `message-end`).

use serde_json::{json, Value};

use super::{
    assert_completion, assert_text_stream, assert_upstream_error, assert_usage, chat, chunks, data,
    finish_reasons, gateway, only_request, post, streamed_text, streamed_tool_calls, tool_answer,
    tool_question, usage_chunks,
};
use crate::common::{HttpAnswer, TestEnv};
use crate::upstream::{Recorded, Reply, Upstream};

const KEY: &str = "co-test-key-0123456789";

fn start(upstream: &Upstream) -> TestEnv {
    gateway("co", "cohere", KEY, json!({"custom_host": upstream.url}))
}

#[track_caller]
fn check_request(r: &Recorded, path: &str) -> Value {
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, path);
    assert_eq!(
        r.header("authorization"),
        Some("Bearer co-test-key-0123456789")
    );
    assert_eq!(r.header("content-type"), Some("application/json"));
    r.json()
}

fn usage(input: u64, output: u64) -> Value {
    json!({"billed_units": {"input_tokens": input - 2, "output_tokens": output},
           "tokens": {"input_tokens": input, "output_tokens": output}})
}

fn reply(message: Value, finish: &str, input: u64, output: u64) -> Value {
    json!({"id": "c14c80c3-18eb-4519-9460-6c92edd8cfb4", "finish_reason": finish,
           "message": message, "usage": usage(input, output)})
}

#[test]
fn plain_answer() {
    let upstream = Upstream::start(|_| {
        Reply::ok(reply(
            json!({"role": "assistant", "content": [{"type": "text", "text": "Cold: 3 °C."}]}),
            "COMPLETE",
            12,
            4,
        ))
    });
    let env = start(&upstream);
    let answer = chat(
        &env,
        &json!({
            "model": "@co/command-a-03-2025",
            "messages": [
                {"role": "user", "content": "What is the weather in Oslo?"},
                {"role": "system", "content": "Be brief."},
            ],
            "max_tokens": 100, "temperature": 0.3, "top_p": 0.9, "stop": "END", "seed": 42,
            "user": "u-1", "logit_bias": {"50256": -100},
        }),
    );
    assert_eq!(answer.status, 200, "{answer}");
    assert_eq!(answer.header("x-portkey-provider"), Some("cohere"));
    let v = answer.json();
    assert_completion(&v, Some("Cold: 3 °C."), "stop");
    // Tokens counted, not billed units.
    assert_usage(&v["usage"], 12, 4);

    let sent = check_request(&only_request(&upstream), "/v2/chat");
    assert_eq!(
        sent,
        json!({
            "model": "command-a-03-2025",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "What is the weather in Oslo?"},
            ],
            "max_tokens": 100, "stop_sequences": ["END"], "temperature": 0.3, "p": 0.9, "seed": 42,
        }),
        "the system turn first; user and logit_bias left out"
    );
}

fn text_stream() -> Reply {
    let events = [
        data(
            json!({"type": "message-start", "id": "29f14a5a-11de-4cae-9800-25e4747408ea",
                    "delta": {"message": {"role": "assistant", "content": [], "tool_plan": "",
                                          "tool_calls": [], "citations": []}}}),
        ),
        data(json!({"type": "content-start", "index": 0,
                    "delta": {"message": {"content": {"type": "text", "text": ""}}}})),
        data(
            json!({"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": "Cold"}}}}),
        ),
        data(
            json!({"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": ": 3 °C"}}}}),
        ),
        data(
            json!({"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": " and snow."}}}}),
        ),
        data(json!({"type": "content-end", "index": 0})),
        data(
            json!({"type": "message-end", "delta": {"finish_reason": "COMPLETE", "usage": usage(12, 6)}}),
        ),
    ];
    let refs: Vec<&str> = events.iter().map(String::as_str).collect();
    Reply::sse(&refs)
}

#[test]
fn stream() {
    let upstream = Upstream::start(|_| text_stream());
    let env = start(&upstream);
    let mut body = json!({"model": "@co/command-a-03-2025", "stream": true,
                          "messages": [{"role": "user", "content": "Weather in Oslo?"}]});
    let got = chunks(&chat(&env, &body));
    assert_text_stream(&got, "Cold: 3 °C and snow.", "stop", None);
    assert_eq!(got[0]["id"], "29f14a5a-11de-4cae-9800-25e4747408ea");

    body["stream_options"] = json!({"include_usage": true});
    let got = chunks(&chat(&env, &body));
    assert_text_stream(&got, "Cold: 3 °C and snow.", "stop", Some((12, 6)));

    for r in upstream.requests() {
        let sent = check_request(&r, "/v2/chat");
        assert_eq!(sent["stream"], true);
        assert!(sent.get("stream_options").is_none(), "{sent:#}");
    }
}

#[test]
fn streamed_tool_call() {
    let upstream = Upstream::start(|_| {
        let events = [
            data(
                json!({"type": "message-start", "id": "m-1", "delta": {"message": {"role": "assistant"}}}),
            ),
            data(
                json!({"type": "tool-plan-delta", "delta": {"message": {"tool_plan": "I will look up the weather."}}}),
            ),
            data(
                json!({"type": "tool-call-start", "index": 0, "delta": {"message": {"tool_calls":
                {"id": "get_weather_3b8w2tq1ba1a", "type": "function",
                 "function": {"name": "get_weather", "arguments": ""}}}}}),
            ),
            data(
                json!({"type": "tool-call-delta", "index": 0, "delta": {"message": {"tool_calls":
                {"function": {"arguments": "{\"city\":"}}}}}),
            ),
            data(
                json!({"type": "tool-call-delta", "index": 0, "delta": {"message": {"tool_calls":
                {"function": {"arguments": " \"Oslo\"}"}}}}}),
            ),
            data(json!({"type": "tool-call-end", "index": 0})),
            data(
                json!({"type": "message-end", "delta": {"finish_reason": "TOOL_CALL", "usage": usage(30, 20)}}),
            ),
        ];
        let refs: Vec<&str> = events.iter().map(String::as_str).collect();
        Reply::sse(&refs)
    });
    let env = start(&upstream);
    let mut body = tool_question("@co/command-a-03-2025");
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let got = chunks(&chat(&env, &body));
    assert_eq!(streamed_text(&got), "");
    assert_eq!(
        streamed_tool_calls(&got),
        vec![(
            "get_weather_3b8w2tq1ba1a".to_string(),
            "get_weather".to_string(),
            "{\"city\": \"Oslo\"}".to_string()
        )]
    );
    assert_eq!(finish_reasons(&got), vec!["tool_calls"]);
    assert_usage(&usage_chunks(&got)[0]["usage"], 30, 20);
}

#[test]
fn tool_call_round_trip() {
    let upstream = Upstream::start(|r| {
        let sent = r.json();
        let last = sent["messages"].as_array().unwrap().last().unwrap().clone();
        if last["role"] == "tool" {
            return Reply::ok(reply(
                json!({"role": "assistant", "content": [{"type": "text", "text": "3 °C and snowing."}]}),
                "COMPLETE",
                40,
                8,
            ));
        }
        Reply::ok(reply(
            json!({"role": "assistant", "tool_plan": "I will look up the weather in Oslo.",
                   "tool_calls": [{"id": "get_weather_1byjy32y4hvq", "type": "function",
                                   "function": {"name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"}}]}),
            "TOOL_CALL",
            30,
            9,
        ))
    });
    let env = start(&upstream);

    let answer = chat(&env, &tool_question("@co/command-a-03-2025"));
    assert_eq!(answer.status, 200, "{answer}");
    let v = answer.json();
    let choice = assert_completion(&v, None, "tool_calls");
    let call = &choice["message"]["tool_calls"][0];
    assert_eq!(call["id"], "get_weather_1byjy32y4hvq");
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], "get_weather");
    let args = call["function"]["arguments"].as_str().unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(args).unwrap(),
        json!({"city": "Oslo"})
    );

    let answer = chat(
        &env,
        &tool_answer("@co/command-a-03-2025", "get_weather_1byjy32y4hvq", args),
    );
    assert_eq!(answer.status, 200, "{answer}");
    assert_completion(&answer.json(), Some("3 °C and snowing."), "stop");

    let requests = upstream.requests();
    assert_eq!(requests.len(), 2);
    let first = check_request(&requests[0], "/v2/chat");
    assert_eq!(
        first["tools"],
        json!([{"type": "function", "function": {"name": "get_weather", "description": "The current weather in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}])
    );
    assert!(
        first.get("tool_choice").is_none(),
        "auto is Cohere's default: {first:#}"
    );
    let second = check_request(&requests[1], "/v2/chat");
    assert_eq!(
        second["messages"],
        json!([
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "What is the weather in Oslo?"},
            {"role": "assistant", "tool_calls": [{"id": "get_weather_1byjy32y4hvq", "type": "function",
                "function": {"name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"}}]},
            {"role": "tool", "tool_call_id": "get_weather_1byjy32y4hvq", "content": "{\"temp_c\":3,\"sky\":\"snow\"}"},
        ])
    );
}

fn error_answer(status: u16, message: &str) -> HttpAnswer {
    let body = json!({"id": "5d3e3d5b-6ae5-4e33-9e4a-2f1b8d6f1c9a", "message": message});
    let upstream = Upstream::start(move |_| Reply::status(status, body.clone()));
    let env = start(&upstream);
    let answer = chat(
        &env,
        &json!({"model": "@co/command-a-03-2025", "messages": [{"role": "user", "content": "hi"}]}),
    );
    only_request(&upstream);
    answer
}

#[test]
fn trial_key_rate_limit_is_a_429() {
    let message = "You are using a Trial key, which is limited to 10 API calls / minute. You can continue to use the Trial key for free or upgrade to a Production key with higher rate limits at 'https://dashboard.cohere.com/api-keys'.";
    let answer = error_answer(429, message);
    assert_upstream_error(&answer, 429, "cohere", "rate_limit_error", message);
}

#[test]
fn invalid_request_is_a_400() {
    let message =
        "invalid request: message must be at least 1 token long or tool results must be specified.";
    let answer = error_answer(400, message);
    assert_upstream_error(&answer, 400, "cohere", "invalid_request_error", message);
}

#[test]
fn an_error_finish_mid_stream_ends_the_stream_with_an_error() {
    let upstream = Upstream::start(|_| {
        let events = [
            data(
                json!({"type": "message-start", "id": "m-2", "delta": {"message": {"role": "assistant"}}}),
            ),
            data(
                json!({"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": "Cold"}}}}),
            ),
            data(
                json!({"type": "message-end", "delta": {"finish_reason": "ERROR", "usage": usage(3, 1)}}),
            ),
        ];
        let refs: Vec<&str> = events.iter().map(String::as_str).collect();
        Reply::sse(&refs)
    });
    let env = start(&upstream);
    let answer = chat(
        &env,
        &json!({"model": "@co/command-a-03-2025", "stream": true, "messages": [{"role": "user", "content": "hi"}]}),
    );
    assert_eq!(answer.status, 200, "{answer}");
    let events = answer.events();
    let n = events.len();
    assert_eq!(events[n - 1].data, "[DONE]", "{answer}");
    let error: Value = serde_json::from_str(&events[n - 2].data).unwrap();
    assert_eq!(error["error"]["type"], "server_error", "{answer}");
}

#[test]
fn embeddings_through_v2_embed() {
    let upstream = Upstream::start(|_| {
        Reply::ok(json!({
            "id": "da6e531f-54c6-4a73-bf92-f60566d8d753",
            "embeddings": {"float": [[0.016, -0.008, 0.5], [0.25, 0.125, -1.0]]},
            "texts": ["first", "second"],
            "meta": {"api_version": {"version": "2"}, "billed_units": {"input_tokens": 4}},
            "response_type": "embeddings_by_type",
        }))
    });
    let env = start(&upstream);
    let answer = post(
        &env,
        "/v1/embeddings",
        &json!({"model": "@co/embed-v4.0", "input": ["first", "second"], "dimensions": 1024}),
    );
    assert_eq!(answer.status, 200, "{answer}");
    let v = answer.json();
    assert_eq!(v["object"], "list");
    assert_eq!(
        v["data"],
        json!([{"object": "embedding", "index": 0, "embedding": [0.016, -0.008, 0.5]},
               {"object": "embedding", "index": 1, "embedding": [0.25, 0.125, -1.0]}])
    );
    assert_eq!(v["usage"], json!({"prompt_tokens": 4, "total_tokens": 4}));
    let sent = check_request(&only_request(&upstream), "/v2/embed");
    assert_eq!(
        sent,
        json!({"model": "embed-v4.0", "texts": ["first", "second"], "input_type": "search_document",
               "embedding_types": ["float"], "output_dimension": 1024})
    );
}
