//! The gateway against each provider: a real `tollgate serve`, real HTTP requests to its
//! OpenAI-compatible endpoints, and in-test upstreams that answer in each provider's documented
//! wire format (the reference: ../shared/reference/providers.md). For every provider: a plain
//! answer, a stream, a tool call round trip and an error; embeddings and the Responses API
//! where the provider has them.

mod anthropic;
mod azure;
mod bedrock;
mod cohere;
mod compatible;
mod family;
mod gemini;
mod mistral;
mod openai;
mod responses;
mod vertex;

use serde_json::{json, Value};

use crate::common::{post_json, HttpAnswer, TestEnv};
use crate::upstream::{Recorded, Upstream};

/// A gateway with one integration of `provider` under `slug`, holding `key`, with these
/// `configurations` (custom_host, aws_region, deployment_id, ...), created through the admin API.
pub fn gateway(slug: &str, provider: &str, key: &str, configurations: Value) -> TestEnv {
    let env = TestEnv::new();
    integration(&env, slug, provider, key, configurations);
    env
}

/// `POST /v1/integrations` with the admin key.
pub fn integration(env: &TestEnv, slug: &str, provider: &str, key: &str, configurations: Value) {
    let body = json!({"slug": slug, "ai_provider_id": provider, "key": key,
                      "configurations": configurations});
    let answer = post_json(
        env,
        "/v1/integrations",
        &[("x-portkey-api-key", &env.admin_key)],
        &body,
    );
    assert_eq!(answer.status, 200, "creating the integration: {answer}");
}

/// `POST path` as the admin key, sent as `Authorization: Bearer` (as Mastra and the OpenAI SDKs
/// send it).
pub fn post(env: &TestEnv, path: &str, body: &Value) -> HttpAnswer {
    let bearer = format!("Bearer {}", env.admin_key);
    post_json(env, path, &[("authorization", &bearer)], body)
}

/// `POST /v1/chat/completions` with `Authorization: Bearer <tollgate key>`.
pub fn chat(env: &TestEnv, body: &Value) -> HttpAnswer {
    post(env, "/v1/chat/completions", body)
}

/// `POST path` with `x-portkey-api-key` plus `headers` (the Portkey SDK's way).
pub fn post_portkey(
    env: &TestEnv,
    path: &str,
    headers: &[(&str, &str)],
    body: &Value,
) -> HttpAnswer {
    let mut all = vec![("x-portkey-api-key", env.admin_key.as_str())];
    all.extend_from_slice(headers);
    post_json(env, path, &all, body)
}

/// The one request the upstream received.
#[track_caller]
pub fn only_request(upstream: &Upstream) -> Recorded {
    let mut requests = upstream.requests();
    assert_eq!(
        requests.len(),
        1,
        "the upstream should see exactly one request: {requests:#?}"
    );
    requests.remove(0)
}

/// A `get_weather(city)` function tool, in OpenAI's shape.
pub fn weather_tool() -> Value {
    json!({"type": "function", "function": {
        "name": "get_weather",
        "description": "The current weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                       "required": ["city"]},
    }})
}

/// The first turn of the tool conversation.
pub fn tool_question(model: &str) -> Value {
    json!({
        "model": model,
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "What is the weather in Oslo?"},
        ],
        "tools": [weather_tool()],
        "tool_choice": "auto",
    })
}

/// The second turn: the question, the assistant's call `call_id` and the tool's result.
pub fn tool_answer(model: &str, call_id: &str, arguments: &str) -> Value {
    json!({
        "model": model,
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "What is the weather in Oslo?"},
            {"role": "assistant", "content": null, "tool_calls": [{
                "id": call_id, "type": "function",
                "function": {"name": "get_weather", "arguments": arguments}}]},
            {"role": "tool", "tool_call_id": call_id, "content": "{\"temp_c\":3,\"sky\":\"snow\"}"},
        ],
        "tools": [weather_tool()],
    })
}

/// Checks a whole `chat.completion` and returns its first choice.
#[track_caller]
pub fn assert_completion<'a>(answer: &'a Value, content: Option<&str>, finish: &str) -> &'a Value {
    assert_eq!(answer["object"], "chat.completion", "{answer:#}");
    assert!(
        answer["id"].as_str().is_some_and(|s| !s.is_empty()),
        "{answer:#}"
    );
    assert!(answer["created"].is_i64(), "{answer:#}");
    assert!(answer["model"].is_string(), "{answer:#}");
    let choice = &answer["choices"][0];
    assert_eq!(choice["index"], 0, "{answer:#}");
    assert_eq!(choice["message"]["role"], "assistant", "{answer:#}");
    match content {
        Some(text) => assert_eq!(choice["message"]["content"], text, "{answer:#}"),
        None => assert!(choice["message"]["content"].is_null(), "{answer:#}"),
    }
    assert_eq!(choice["finish_reason"], finish, "{answer:#}");
    choice
}

/// Checks OpenAI's usage numbers (total = prompt + completion).
#[track_caller]
pub fn assert_usage(usage: &Value, prompt: u64, completion: u64) {
    assert_eq!(usage["prompt_tokens"], prompt, "{usage:#}");
    assert_eq!(usage["completion_tokens"], completion, "{usage:#}");
    assert_eq!(usage["total_tokens"], prompt + completion, "{usage:#}");
}

/// The client's view of a chat stream: 200, `text/event-stream`, `data:` events ending in
/// `[DONE]`, every other event a `chat.completion.chunk` sharing one id and `created`. Returns
/// the chunks without `[DONE]`.
#[track_caller]
pub fn chunks(answer: &HttpAnswer) -> Vec<Value> {
    assert_eq!(answer.status, 200, "{answer}");
    assert!(
        answer
            .header("content-type")
            .is_some_and(|c| c.starts_with("text/event-stream")),
        "{answer}"
    );
    let events = answer.events();
    let (last, rest) = events
        .split_last()
        .unwrap_or_else(|| panic!("no events\n{answer}"));
    assert_eq!(
        last.data, "[DONE]",
        "the stream must end with [DONE]\n{answer}"
    );
    assert!(last.event.is_none(), "{answer}");
    let chunks: Vec<Value> = rest
        .iter()
        .map(|e| {
            assert!(
                e.event.is_none(),
                "chat streams have no event names\n{answer}"
            );
            serde_json::from_str(&e.data)
                .unwrap_or_else(|err| panic!("a non-JSON event {:?} ({err})\n{answer}", e.data))
        })
        .collect();
    assert!(!chunks.is_empty(), "no chunks\n{answer}");
    for c in &chunks {
        assert_eq!(c["object"], "chat.completion.chunk", "{c}\n{answer}");
        assert_eq!(
            c["id"], chunks[0]["id"],
            "one id for the whole stream\n{answer}"
        );
        assert_eq!(c["created"], chunks[0]["created"], "{answer}");
        assert!(c["choices"].is_array(), "{c}");
        for choice in c["choices"].as_array().unwrap() {
            assert!(choice["delta"].is_object(), "a choice without delta: {c}");
        }
    }
    assert_eq!(
        chunks[0]["choices"][0]["delta"]["role"], "assistant",
        "the role comes in the first delta\n{answer}"
    );
    chunks
}

/// The text of all deltas, concatenated.
pub fn streamed_text(chunks: &[Value]) -> String {
    chunks
        .iter()
        .flat_map(|c| c["choices"].as_array().cloned().unwrap_or_default())
        .filter_map(|choice| choice["delta"]["content"].as_str().map(String::from))
        .collect()
}

/// Every non-null finish_reason, in order.
pub fn finish_reasons(chunks: &[Value]) -> Vec<String> {
    chunks
        .iter()
        .flat_map(|c| c["choices"].as_array().cloned().unwrap_or_default())
        .filter_map(|choice| choice["finish_reason"].as_str().map(String::from))
        .collect()
}

/// The chunks that carry usage (non-null), which must be the `"choices": []` kind.
#[track_caller]
pub fn usage_chunks(chunks: &[Value]) -> Vec<&Value> {
    let with: Vec<&Value> = chunks
        .iter()
        .filter(|c| c.get("usage").is_some_and(|u| !u.is_null()))
        .collect();
    for c in &with {
        assert_eq!(c["choices"], json!([]), "usage comes in its own chunk: {c}");
    }
    with
}

/// Checks a text stream: content concatenates to `text`, one finish reason `finish` on the
/// last choice chunk, and the usage chunk last iff `usage` is given.
#[track_caller]
pub fn assert_text_stream(chunks: &[Value], text: &str, finish: &str, usage: Option<(u64, u64)>) {
    assert_eq!(streamed_text(chunks), text, "{chunks:#?}");
    assert_eq!(finish_reasons(chunks), vec![finish], "{chunks:#?}");
    let usages = usage_chunks(chunks);
    match usage {
        Some((prompt, completion)) => {
            assert_eq!(usages.len(), 1, "one usage chunk: {chunks:#?}");
            assert!(
                std::ptr::eq(usages[0], chunks.last().unwrap()),
                "the usage chunk comes last: {chunks:#?}"
            );
            assert_usage(&usages[0]["usage"], prompt, completion);
        }
        None => assert!(
            usages.is_empty(),
            "no usage chunk unless include_usage: {chunks:#?}"
        ),
    }
    // The finish reason is on the last chunk with choices.
    let last_choice = chunks
        .iter()
        .rev()
        .find(|c| c["choices"].as_array().is_some_and(|a| !a.is_empty()))
        .unwrap();
    assert_eq!(last_choice["choices"][0]["finish_reason"], finish);
}

/// Tool calls assembled from stream deltas by `index`: (id, name, arguments).
#[track_caller]
pub fn streamed_tool_calls(chunks: &[Value]) -> Vec<(String, String, String)> {
    let mut calls: Vec<(String, String, String)> = Vec::new();
    for c in chunks {
        for choice in c["choices"].as_array().into_iter().flatten() {
            for call in choice["delta"]["tool_calls"]
                .as_array()
                .into_iter()
                .flatten()
            {
                let index = call["index"]
                    .as_u64()
                    .expect("tool call deltas have an index") as usize;
                if index == calls.len() {
                    assert!(
                        call["id"].is_string(),
                        "a call's first fragment has its id: {c}"
                    );
                    assert_eq!(call["type"], "function", "{c}");
                    calls.push((
                        call["id"].as_str().unwrap().into(),
                        call["function"]["name"].as_str().unwrap_or("").into(),
                        String::new(),
                    ));
                }
                assert!(
                    index < calls.len(),
                    "tool call index {index} skips ahead: {c}"
                );
                if let Some(args) = call["function"]["arguments"].as_str() {
                    calls[index].2.push_str(args);
                }
            }
        }
    }
    calls
}

/// OpenAI's error shape from the gateway for an upstream failure.
#[track_caller]
pub fn assert_upstream_error(
    answer: &HttpAnswer,
    status: u16,
    provider: &str,
    kind: &str,
    message: &str,
) -> Value {
    assert_eq!(answer.status, status, "{answer}");
    let body = answer.json();
    let error = &body["error"];
    assert_eq!(body["provider"], provider, "{body:#}");
    assert_eq!(error["type"], kind, "{body:#}");
    assert_eq!(
        error["message"],
        format!("{provider} error: {message}"),
        "{body:#}"
    );
    assert!(error.get("param").is_some(), "{body:#}");
    assert!(error.get("code").is_some(), "{body:#}");
    assert_eq!(
        answer.header("x-portkey-provider"),
        Some(provider),
        "{answer}"
    );
    body
}

/// An SSE event for an upstream stream: `data: <json>\n\n`.
pub fn data(v: Value) -> String {
    format!("data: {v}\n\n")
}

/// A named SSE event: `event: <name>\ndata: <json>\n\n`.
pub fn named(name: &str, v: Value) -> String {
    format!("event: {name}\ndata: {v}\n\n")
}
