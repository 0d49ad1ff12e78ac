//! Mistral: OpenAI-shaped at `{custom_host}/chat/completions` with fix-ups: `seed` →
//! `random_seed`, `tool_choice: "required"` → `"any"`, no `stream_options` (Mistral reports
//! streamed usage on its last chunk), `model_length` → `length`, tool-call ids of 9
//! alphanumerics.

use serde_json::{json, Value};

use super::family::{self, chunk, completion, Family};
use super::{
    assert_completion, assert_text_stream, chat, chunks, data, only_request, weather_tool,
};
use crate::upstream::{Reply, Upstream};

fn mistral() -> Family {
    Family {
        provider: "mistral-ai",
        slug: "mis",
        key: "mistral-test-key",
        model: "mistral-large-latest",
        base_suffix: "/v1",
        settings: json!({}),
        chat_path: "/v1/chat/completions",
        auth: ("authorization", "Bearer mistral-test-key"),
    }
}

#[test]
fn plain_answer() {
    family::plain(&mistral());
}

#[test]
fn tool_call_round_trip() {
    family::tools(&mistral(), "D681PevKs");
}

#[test]
fn seed_tool_choice_and_finish_reason_fix_ups() {
    let upstream = Upstream::start(|_| {
        let message = json!({"role": "assistant", "content": "Cold, 3"});
        Reply::ok(completion(
            "mistral-large-latest",
            message,
            "model_length",
            20,
            50,
        ))
    });
    let env = mistral().start(&upstream);
    let answer = chat(
        &env,
        &json!({"model": "@mis/mistral-large-latest", "seed": 7, "tool_choice": "required",
                "tools": [weather_tool()], "messages": [{"role": "user", "content": "Weather?"}]}),
    );
    assert_eq!(answer.status, 200, "{answer}");
    assert_completion(&answer.json(), Some("Cold, 3"), "length");
    let sent = only_request(&upstream).json();
    assert_eq!(sent["random_seed"], 7);
    assert!(sent.get("seed").is_none(), "{sent:#}");
    assert_eq!(sent["tool_choice"], "any");
}

/// Mistral is not asked for `stream_options`; it puts usage on its last chunk, beside the
/// finish reason. The client still gets OpenAI's stream: usage only when asked, in its own
/// `choices: []` chunk.
#[test]
fn stream_with_usage_on_the_last_chunk() {
    let m = "mistral-large-latest";
    let upstream = Upstream::start(move |_| {
        let events = [
            chunk(m, json!({"role": "assistant", "content": ""}), None),
            chunk(m, json!({"content": "Cold: 3 °C."}), None),
            data(
                json!({"id": "chatcmpl-up2", "object": "chat.completion.chunk",
                        "created": 1_735_689_600, "model": m,
                        "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "stop", "logprobs": null}],
                        "usage": {"prompt_tokens": 12, "total_tokens": 16, "completion_tokens": 4}}),
            ),
            "data: [DONE]\n\n".to_string(),
        ];
        let refs: Vec<&str> = events.iter().map(String::as_str).collect();
        Reply::sse(&refs)
    });
    let env = mistral().start(&upstream);
    let mut body = json!({"model": "@mis/mistral-large-latest", "stream": true,
                          "messages": [{"role": "user", "content": "Weather in Oslo?"}]});
    let got = chunks(&chat(&env, &body));
    assert_text_stream(&got, "Cold: 3 °C.", "stop", None);
    body["stream_options"] = json!({"include_usage": true});
    let got = chunks(&chat(&env, &body));
    assert_text_stream(&got, "Cold: 3 °C.", "stop", Some((12, 4)));
}

/// What the gateway sends Mistral for a stream: no `stream_options`, which Mistral rejects.
#[test]
fn stream_is_not_asked_for_stream_options() {
    let m = "mistral-large-latest";
    let upstream = Upstream::start(move |_| {
        let events = [
            chunk(m, json!({"role": "assistant", "content": ""}), None),
            chunk(m, json!({"content": "Cold"}), None),
            chunk(m, json!({"content": "."}), Some("stop")),
            "data: [DONE]\n\n".to_string(),
        ];
        let refs: Vec<&str> = events.iter().map(String::as_str).collect();
        Reply::sse(&refs)
    });
    let env = mistral().start(&upstream);
    let body = json!({"model": "@mis/mistral-large-latest", "stream": true,
                      "stream_options": {"include_usage": true},
                      "messages": [{"role": "user", "content": "Weather in Oslo?"}]});
    let got = chunks(&chat(&env, &body));
    assert_eq!(super::streamed_text(&got), "Cold.");
    assert_eq!(super::finish_reasons(&got), vec!["stop"]);
    let sent = only_request(&upstream).json();
    assert_eq!(sent["stream"], true);
    assert!(sent.get("stream_options").is_none(), "{sent:#}");
}

/// Mistral accepts only 9-alphanumeric tool-call ids: ids made by another provider (a
/// conversation that fell back from OpenAI, say) are rewritten consistently.
#[test]
fn foreign_tool_call_ids_are_rewritten() {
    let upstream = Upstream::start(|_| {
        let message = json!({"role": "assistant", "content": "3 °C."});
        Reply::ok(completion("mistral-large-latest", message, "stop", 40, 3))
    });
    let env = mistral().start(&upstream);
    let answer = chat(
        &env,
        &super::tool_answer(
            "@mis/mistral-large-latest",
            "call_Xy12abCD34efGH",
            "{\"city\":\"Oslo\"}",
        ),
    );
    assert_eq!(answer.status, 200, "{answer}");
    let sent = only_request(&upstream).json();
    let id = sent["messages"][2]["tool_calls"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        id.len() == 9 && id.chars().all(|c| c.is_ascii_alphanumeric()),
        "id sent to Mistral: {id}"
    );
    assert_eq!(sent["messages"][3]["tool_call_id"], id);
}

#[test]
fn validation_422_is_a_400() {
    let detail = json!([{"type": "missing", "loc": ["body", "messages"], "msg": "Field required", "input": null}]);
    let answer = family::error(
        &mistral(),
        (422, json!({"detail": detail}), vec![]),
        (400, "invalid_request_error", &detail.to_string()),
    );
    let _: Value = answer.json();
}

#[test]
fn rate_limit_is_a_429() {
    family::error(
        &mistral(),
        (
            429,
            json!({"object": "error", "message": "Requests rate limit exceeded", "type": "rate_limited",
                   "param": null, "code": "1300"}),
            vec![],
        ),
        (429, "rate_limit_error", "Requests rate limit exceeded"),
    );
}

/// Mistral rejects `max_completion_tokens` (422 extra_forbidden), which current OpenAI SDKs
/// send and which the gateway's own Responses translation produces: it goes as `max_tokens`.
#[test]
fn max_completion_tokens_becomes_max_tokens() {
    let upstream = Upstream::start(|_| {
        let message = json!({"role": "assistant", "content": "Cold."});
        Reply::ok(completion("mistral-large-latest", message, "stop", 5, 2))
    });
    let env = mistral().start(&upstream);
    let answer = chat(
        &env,
        &json!({"model": "@mis/mistral-large-latest", "max_completion_tokens": 64,
                "messages": [{"role": "user", "content": "Weather?"}]}),
    );
    assert_eq!(answer.status, 200, "{answer}");
    let sent = only_request(&upstream).json();
    assert_eq!(sent["max_tokens"], 64, "{sent:#}");
    assert!(sent.get("max_completion_tokens").is_none(), "{sent:#}");
}

/// Mistral has no `/responses` endpoint: `POST /v1/responses` is served through its chat
/// endpoint, as for Anthropic.
#[test]
fn responses_are_translated_to_chat() {
    let upstream = Upstream::start(|_| {
        let message = json!({"role": "assistant", "content": "Cold."});
        Reply::ok(completion("mistral-large-latest", message, "stop", 5, 2))
    });
    let env = mistral().start(&upstream);
    let answer = super::post(
        &env,
        "/v1/responses",
        &json!({"model": "@mis/mistral-large-latest", "input": "Weather in Oslo?"}),
    );
    let r = only_request(&upstream);
    assert_eq!(r.path, "/v1/chat/completions", "{answer}");
    assert_eq!(answer.status, 200, "{answer}");
    let v = answer.json();
    assert_eq!(v["object"], "response", "{v:#}");
    assert_eq!(v["output"][0]["content"][0]["text"], "Cold.", "{v:#}");
}
