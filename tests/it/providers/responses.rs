//! `POST /v1/responses`: translated to chat for providers without it (Anthropic here), whole
//! and streamed as Responses events; passed through to OpenAI's `/responses`.

use serde_json::{json, Value};

use super::{gateway, named, only_request, post};
use crate::common::{HttpAnswer, TestEnv};
use crate::upstream::{Reply, Upstream};

fn claude(upstream: &Upstream) -> TestEnv {
    gateway(
        "claude",
        "anthropic",
        "sk-ant-api03-test-key",
        json!({"custom_host": format!("{}/v1", upstream.url)}),
    )
}

fn message(content: Value, stop: &str) -> Value {
    json!({"id": "msg_01R", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
           "content": content, "stop_reason": stop, "stop_sequence": null,
           "usage": {"input_tokens": 20, "output_tokens": 7}})
}

#[track_caller]
fn check_response(v: &Value) {
    assert_eq!(v["object"], "response", "{v:#}");
    assert!(
        v["id"].as_str().is_some_and(|id| id.starts_with("resp_")),
        "{v:#}"
    );
    assert!(v["created_at"].is_i64(), "{v:#}");
    assert!(v["output"].is_array(), "{v:#}");
}

#[test]
fn anthropic_whole_answer() {
    let upstream = Upstream::start(|_| {
        Reply::ok(message(
            json!([{"type": "text", "text": "Cold: 3 °C."}]),
            "end_turn",
        ))
    });
    let env = claude(&upstream);
    let answer = post(
        &env,
        "/v1/responses",
        &json!({"model": "@claude/claude-sonnet-4-5", "instructions": "Be brief.",
                "input": "What is the weather in Oslo?", "max_output_tokens": 100}),
    );
    assert_eq!(answer.status, 200, "{answer}");
    assert_eq!(answer.header("x-portkey-provider"), Some("anthropic"));
    let v = answer.json();
    check_response(&v);
    assert_eq!(v["status"], "completed");
    let output = v["output"].as_array().unwrap();
    assert_eq!(output.len(), 1, "{v:#}");
    assert_eq!(output[0]["type"], "message");
    assert_eq!(output[0]["role"], "assistant");
    assert_eq!(output[0]["status"], "completed");
    assert_eq!(
        output[0]["content"],
        json!([{"type": "output_text", "text": "Cold: 3 °C.", "annotations": []}])
    );
    assert_eq!(v["usage"]["input_tokens"], 20);
    assert_eq!(v["usage"]["output_tokens"], 7);
    assert_eq!(v["usage"]["total_tokens"], 27);

    let r = only_request(&upstream);
    assert_eq!(r.path, "/v1/messages");
    assert_eq!(
        r.json(),
        json!({"model": "claude-sonnet-4-5", "max_tokens": 100, "system": "Be brief.",
               "messages": [{"role": "user", "content": [{"type": "text", "text": "What is the weather in Oslo?"}]}]})
    );
}

#[test]
fn anthropic_function_call_round_trip() {
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
            json!([{"type": "tool_use", "id": "toolu_01R", "name": "get_weather", "input": {"city": "Oslo"}}]),
            "tool_use",
        ))
    });
    let env = claude(&upstream);
    let tool = json!({"type": "function", "name": "get_weather", "description": "The current weather in a city",
                      "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}});
    let answer = post(
        &env,
        "/v1/responses",
        &json!({"model": "@claude/claude-sonnet-4-5", "input": "What is the weather in Oslo?", "tools": [tool]}),
    );
    assert_eq!(answer.status, 200, "{answer}");
    let v = answer.json();
    check_response(&v);
    assert_eq!(v["status"], "completed");
    let call = &v["output"][0];
    assert_eq!(call["type"], "function_call", "{v:#}");
    assert_eq!(call["call_id"], "toolu_01R");
    assert_eq!(call["name"], "get_weather");
    let args = call["arguments"].as_str().unwrap().to_string();
    assert_eq!(
        serde_json::from_str::<Value>(&args).unwrap(),
        json!({"city": "Oslo"})
    );

    let answer = post(
        &env,
        "/v1/responses",
        &json!({"model": "@claude/claude-sonnet-4-5", "tools": [tool], "input": [
            {"role": "user", "content": "What is the weather in Oslo?"},
            {"type": "function_call", "call_id": "toolu_01R", "name": "get_weather", "arguments": args},
            {"type": "function_call_output", "call_id": "toolu_01R", "output": "{\"temp_c\":3}"},
        ]}),
    );
    assert_eq!(answer.status, 200, "{answer}");
    let v = answer.json();
    assert_eq!(
        v["output"][0]["content"][0]["text"], "3 °C and snowing.",
        "{v:#}"
    );

    let requests = upstream.requests();
    assert_eq!(requests.len(), 2);
    let first = requests[0].json();
    assert_eq!(first["tools"][0]["name"], "get_weather");
    assert_eq!(first["tools"][0]["input_schema"], tool["parameters"]);
    assert_eq!(
        requests[1].json()["messages"],
        json!([
            {"role": "user", "content": [{"type": "text", "text": "What is the weather in Oslo?"}]},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_01R", "name": "get_weather",
                                               "input": {"city": "Oslo"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_01R",
                                          "content": "{\"temp_c\":3}"}]},
        ])
    );
}

/// The Responses events of an answer, checked: `event:` equals `data.type`, sequence numbers
/// count up from 0, no `[DONE]`.
#[track_caller]
fn responses_events(answer: &HttpAnswer) -> Vec<Value> {
    assert_eq!(answer.status, 200, "{answer}");
    assert!(
        answer
            .header("content-type")
            .is_some_and(|c| c.starts_with("text/event-stream")),
        "{answer}"
    );
    answer
        .events()
        .iter()
        .enumerate()
        .map(|(i, e)| {
            assert_ne!(
                e.data, "[DONE]",
                "Responses streams have no [DONE]\n{answer}"
            );
            let v: Value = serde_json::from_str(&e.data).unwrap();
            assert_eq!(e.event.as_deref(), v["type"].as_str(), "{answer}");
            assert_eq!(v["sequence_number"], i, "{answer}");
            v
        })
        .collect()
}

#[test]
fn anthropic_streamed_as_responses_events() {
    let upstream = Upstream::start(|_| {
        let events = [
            named(
                "message_start",
                json!({"type": "message_start", "message": {
                "id": "msg_01S", "type": "message", "role": "assistant", "content": [],
                "model": "claude-sonnet-4-5", "usage": {"input_tokens": 25, "output_tokens": 1}}}),
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
                "delta": {"stop_reason": "end_turn", "stop_sequence": null}, "usage": {"output_tokens": 15}}),
            ),
            named("message_stop", json!({"type": "message_stop"})),
        ];
        let refs: Vec<&str> = events.iter().map(String::as_str).collect();
        Reply::sse(&refs)
    });
    let env = claude(&upstream);
    let answer = post(
        &env,
        "/v1/responses",
        &json!({"model": "@claude/claude-sonnet-4-5", "input": "Weather in Oslo?", "stream": true}),
    );
    let events = responses_events(&answer);
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        vec![
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed",
        ],
        "{answer}"
    );
    let created = &events[0]["response"];
    assert_eq!(created["status"], "in_progress");
    let id = created["id"].as_str().unwrap();
    assert!(id.starts_with("resp_"));
    let deltas: String = events[4..7]
        .iter()
        .map(|e| e["delta"].as_str().unwrap())
        .collect();
    assert_eq!(deltas, "Cold: 3 °C and snow.");
    assert_eq!(events[7]["text"], "Cold: 3 °C and snow.");
    let item_id = &events[2]["item"]["id"];
    for e in &events[3..9] {
        assert_eq!(&e["item_id"], item_id, "{e}");
    }
    let done = &events[10]["response"];
    assert_eq!(done["id"], id);
    assert_eq!(done["status"], "completed");
    assert_eq!(
        done["output"][0]["content"][0]["text"],
        "Cold: 3 °C and snow."
    );
    assert_eq!(done["usage"]["input_tokens"], 25);
    assert_eq!(done["usage"]["output_tokens"], 15);

    let sent = only_request(&upstream).json();
    assert_eq!(sent["stream"], true);
}

fn openai(upstream: &Upstream) -> TestEnv {
    gateway(
        "oai",
        "openai",
        "sk-proj-openai-test-key",
        json!({"custom_host": format!("{}/v1", upstream.url)}),
    )
}

#[test]
fn openai_passes_through_whole() {
    let response = json!({
        "id": "resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b", "object": "response",
        "created_at": 1_741_476_542, "status": "completed", "error": null, "incomplete_details": null,
        "instructions": null, "model": "gpt-4.1-2025-04-14",
        "output": [{"type": "message", "id": "msg_67ccd2bf17f0819081ff3bb2cf6508e60bb6a6b452d3795b",
                    "status": "completed", "role": "assistant",
                    "content": [{"type": "output_text", "text": "Cold: 3 °C.", "annotations": []}]}],
        "parallel_tool_calls": true, "previous_response_id": null, "store": true,
        "usage": {"input_tokens": 36, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 87,
                  "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 123},
    });
    let reply = response.clone();
    let upstream = Upstream::start(move |_| Reply::ok(reply.clone()));
    let env = openai(&upstream);
    let body = json!({"model": "@oai/gpt-4.1", "input": "Weather in Oslo?", "store": false,
                      "previous_response_id": null, "reasoning": {"effort": "low"}});
    let answer = post(&env, "/v1/responses", &body);
    assert_eq!(answer.status, 200, "{answer}");
    assert_eq!(answer.json(), response);
    let r = only_request(&upstream);
    assert_eq!(r.path, "/v1/responses");
    assert_eq!(
        r.header("authorization"),
        Some("Bearer sk-proj-openai-test-key")
    );
    let mut expected = body.clone();
    expected["model"] = json!("gpt-4.1");
    assert_eq!(r.json(), expected);
}

#[test]
fn openai_passes_the_stream_through() {
    let resp = |status: &str| {
        json!({"id": "resp_1", "object": "response", "created_at": 1_741_476_542, "status": status,
               "model": "gpt-4.1", "output": []})
    };
    let upstream_events = vec![
        json!({"type": "response.created", "sequence_number": 0, "response": resp("in_progress")}),
        json!({"type": "response.output_text.delta", "sequence_number": 1, "item_id": "msg_1",
               "output_index": 0, "content_index": 0, "delta": "Cold."}),
        json!({"type": "response.completed", "sequence_number": 2, "response": resp("completed")}),
    ];
    let texts: Vec<String> = upstream_events
        .iter()
        .map(|e| named(e["type"].as_str().unwrap(), e.clone()))
        .collect();
    let upstream = Upstream::start(move |_| {
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        Reply::sse(&refs)
    });
    let env = openai(&upstream);
    let answer = post(
        &env,
        "/v1/responses",
        &json!({"model": "@oai/gpt-4.1", "input": "Weather?", "stream": true}),
    );
    assert_eq!(responses_events(&answer), upstream_events);
    let sent = only_request(&upstream).json();
    assert_eq!(sent["stream"], true);
    assert!(sent.get("stream_options").is_none(), "{sent:#}");
}

#[test]
fn anthropic_streamed_function_call_as_responses_events() {
    let upstream = Upstream::start(|_| {
        let events = [
            named(
                "message_start",
                json!({"type": "message_start", "message": {
                "id": "msg_01T", "type": "message", "role": "assistant", "content": [],
                "model": "claude-sonnet-4-5", "usage": {"input_tokens": 300, "output_tokens": 1}}}),
            ),
            named(
                "content_block_start",
                json!({"type": "content_block_start", "index": 0,
                "content_block": {"type": "tool_use", "id": "toolu_01S", "name": "get_weather", "input": {}}}),
            ),
            named(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 0,
                "delta": {"type": "input_json_delta", "partial_json": "{\"city\":"}}),
            ),
            named(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 0,
                "delta": {"type": "input_json_delta", "partial_json": "\"Oslo\"}"}}),
            ),
            named(
                "content_block_stop",
                json!({"type": "content_block_stop", "index": 0}),
            ),
            named(
                "message_delta",
                json!({"type": "message_delta",
                "delta": {"stop_reason": "tool_use", "stop_sequence": null}, "usage": {"output_tokens": 20}}),
            ),
            named("message_stop", json!({"type": "message_stop"})),
        ];
        let refs: Vec<&str> = events.iter().map(String::as_str).collect();
        Reply::sse(&refs)
    });
    let env = claude(&upstream);
    let tool = json!({"type": "function", "name": "get_weather",
                      "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}});
    let answer = post(
        &env,
        "/v1/responses",
        &json!({"model": "@claude/claude-sonnet-4-5", "input": "Weather in Oslo?", "tools": [tool],
                "stream": true}),
    );
    let events = responses_events(&answer);
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        vec![
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.completed",
        ],
        "{answer}"
    );
    let added = &events[2]["item"];
    assert_eq!(added["type"], "function_call");
    assert_eq!(added["call_id"], "toolu_01S");
    assert_eq!(added["name"], "get_weather");
    assert_eq!(events[5]["arguments"], "{\"city\":\"Oslo\"}");
    let item = &events[6]["item"];
    assert_eq!(item["arguments"], "{\"city\":\"Oslo\"}");
    assert_eq!(item["status"], "completed");
    let done = &events[7]["response"];
    assert_eq!(done["output"][0], *item);
    assert_eq!(done["usage"]["input_tokens"], 300);
    assert_eq!(done["usage"]["output_tokens"], 20);
}

/// Azure's Responses endpoint names the deployment in the body's `model`.
#[test]
fn azure_responses_name_the_deployment() {
    let upstream = Upstream::start(|_| {
        Reply::ok(
            json!({"id": "resp_az", "object": "response", "created_at": 1_741_476_542,
                         "status": "completed", "model": "gpt-4o", "output": []}),
        )
    });
    let env = gateway(
        "az",
        "azure-openai",
        "0123456789abcdef0123456789abcdef",
        json!({"custom_host": upstream.url, "deployment_id": "chat-prod",
               "api_version": "2025-04-01-preview"}),
    );
    let answer = post(
        &env,
        "/v1/responses",
        &json!({"model": "@az/gpt-4o", "input": "hi"}),
    );
    assert_eq!(answer.status, 200, "{answer}");
    let r = only_request(&upstream);
    assert_eq!(r.path, "/openai/responses?api-version=2025-04-01-preview");
    assert_eq!(
        r.header("api-key"),
        Some("0123456789abcdef0123456789abcdef")
    );
    assert_eq!(r.json()["model"], "chat-prod");
}
