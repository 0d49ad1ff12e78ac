//! OpenAI: requests pass through to `{custom_host}/chat/completions` with
//! `Authorization: Bearer <integration key>`; streams always ask for usage upstream.

use serde_json::{json, Value};

use super::family::{self, chunk, completion, usage_chunk, Family};
use super::{
    assert_completion, chat, chunks, finish_reasons, only_request, post, post_portkey,
    streamed_text, streamed_tool_calls, usage_chunks,
};
use crate::upstream::{Reply, Upstream};

const KEY: &str = "sk-proj-openai-test-key";

fn openai() -> Family {
    Family {
        provider: "openai",
        slug: "oai",
        key: KEY,
        model: "gpt-4o-mini",
        base_suffix: "/v1",
        settings: json!({}),
        chat_path: "/v1/chat/completions",
        auth: ("authorization", "Bearer sk-proj-openai-test-key"),
    }
}

#[test]
fn plain_answer() {
    family::plain(&openai());
}

#[test]
fn stream_asks_upstream_for_usage_and_shows_it_only_when_asked() {
    family::stream(&openai());
}

#[test]
fn tool_call_round_trip() {
    family::tools(&openai(), "call_Xy12abCD34");
}

#[test]
fn streamed_tool_call_fragments_pass_through() {
    let m = "gpt-4o-mini";
    let upstream = Upstream::start(move |_| {
        let events = [
            chunk(m, json!({"role": "assistant", "content": null}), None),
            chunk(
                m,
                json!({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                "function": {"name": "get_weather", "arguments": ""}}]}),
                None,
            ),
            chunk(
                m,
                json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"city\":"}}]}),
                None,
            ),
            chunk(
                m,
                json!({"tool_calls": [{"index": 0, "function": {"arguments": "\"Oslo\"}"}}]}),
                None,
            ),
            chunk(
                m,
                json!({"tool_calls": [{"index": 1, "id": "call_2", "type": "function",
                "function": {"name": "get_weather", "arguments": "{\"city\":\"Bergen\"}"}}]}),
                None,
            ),
            chunk(m, json!({}), Some("tool_calls")),
            usage_chunk(m, 30, 20),
            "data: [DONE]\n\n".to_string(),
        ];
        let refs: Vec<&str> = events.iter().map(String::as_str).collect();
        Reply::sse(&refs)
    });
    let env = openai().start(&upstream);
    let mut body = super::tool_question("@oai/gpt-4o-mini");
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let got = chunks(&chat(&env, &body));
    assert_eq!(
        streamed_tool_calls(&got),
        vec![
            (
                "call_1".into(),
                "get_weather".into(),
                "{\"city\":\"Oslo\"}".into()
            ),
            (
                "call_2".into(),
                "get_weather".into(),
                "{\"city\":\"Bergen\"}".into()
            ),
        ]
    );
    assert_eq!(finish_reasons(&got), vec!["tool_calls"]);
    assert_eq!(usage_chunks(&got).len(), 1);
}

/// The model forms and key headers clients use: Mastra's `@slug@model`, a bare model with
/// `x-portkey-provider: @slug`, and the Portkey SDK's `x-portkey-api-key` beside its
/// placeholder `Authorization: Bearer OPENAI_API_KEY`.
#[test]
fn every_way_of_naming_the_integration_and_the_key() {
    let upstream = Upstream::start(|r| {
        let model = r.json()["model"].as_str().unwrap_or("").to_string();
        let message = json!({"role": "assistant", "content": format!("model {model}")});
        Reply::ok(completion(&model, message, "stop", 1, 1))
    });
    let env = openai().start(&upstream);
    let messages = json!([{"role": "user", "content": "hi"}]);

    let mastra = chat(
        &env,
        &json!({"model": "@oai@gpt-4.1", "messages": messages}),
    );
    assert_eq!(mastra.status, 200, "{mastra}");
    assert_completion(&mastra.json(), Some("model gpt-4.1"), "stop");

    let header = post_portkey(
        &env,
        "/v1/chat/completions",
        &[
            ("x-portkey-provider", "@oai"),
            ("authorization", "Bearer OPENAI_API_KEY"),
        ],
        &json!({"model": "gpt-4o", "messages": messages}),
    );
    assert_eq!(header.status, 200, "{header}");
    assert_completion(&header.json(), Some("model gpt-4o"), "stop");

    let slashes = chat(
        &env,
        &json!({"model": "@oai/ft:gpt-4o-mini:acme/v2", "messages": messages}),
    );
    assert_eq!(slashes.status, 200, "{slashes}");
    assert_completion(
        &slashes.json(),
        Some("model ft:gpt-4o-mini:acme/v2"),
        "stop",
    );

    for r in upstream.requests() {
        assert_eq!(
            r.header("authorization"),
            Some("Bearer sk-proj-openai-test-key")
        );
        assert!(r.header("x-portkey-api-key").is_none());
    }
}

#[test]
fn rate_limit_keeps_status_type_and_retry_after() {
    let answer = family::error(
        &openai(),
        (
            429,
            json!({"error": {"message": "Rate limit reached for gpt-4o-mini in organization org-1 on requests per min (RPM): Limit 3, Used 3, Requested 1.",
                             "type": "requests", "param": null, "code": "rate_limit_exceeded"}}),
            vec![("retry-after", "20".into())],
        ),
        (
            429,
            "rate_limit_error",
            "Rate limit reached for gpt-4o-mini in organization org-1 on requests per min (RPM): Limit 3, Used 3, Requested 1.",
        ),
    );
    assert_eq!(answer.json()["error"]["code"], "rate_limit_exceeded");
    assert_eq!(answer.header("retry-after"), Some("20"));
}

#[test]
fn invalid_request_is_a_400_with_the_upstream_code() {
    let answer = family::error(
        &openai(),
        (
            400,
            json!({"error": {"message": "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.",
                             "type": "invalid_request_error", "param": "max_tokens", "code": "unsupported_parameter"}}),
            vec![],
        ),
        (
            400,
            "invalid_request_error",
            "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.",
        ),
    );
    assert_eq!(answer.json()["error"]["code"], "unsupported_parameter");
}

#[test]
fn unavailable_is_a_503_and_an_html_page_is_kept_as_text() {
    family::error(
        &openai(),
        (
            503,
            json!({"error": {"message": "The engine is currently overloaded, please try again later.",
                             "type": "server_error", "param": null, "code": null}}),
            vec![],
        ),
        (
            503,
            "server_error",
            "The engine is currently overloaded, please try again later.",
        ),
    );
    let upstream = Upstream::start(|_| Reply::Chunks {
        content_type: "text/html",
        chunks: vec![(
            std::time::Duration::ZERO,
            b"<html>502 Bad Gateway</html>".to_vec(),
        )],
    });
    let env = openai().start(&upstream);
    let answer = chat(
        &env,
        &json!({"model": "@oai/gpt-4o", "messages": [{"role": "user", "content": "hi"}]}),
    );
    // A 200 whose body is not JSON: the gateway says so instead of passing garbage on.
    assert_eq!(answer.status, 502, "{answer}");
    assert_eq!(answer.json()["error"]["type"], "server_error", "{answer}");
}

#[test]
fn embeddings_pass_through() {
    let upstream = Upstream::start(|r| {
        let inputs = r.json()["input"].as_array().map_or(1, Vec::len);
        let data: Vec<Value> = (0..inputs)
            .map(
                |i| json!({"object": "embedding", "index": i, "embedding": [0.25, -0.5, i as f64]}),
            )
            .collect();
        Reply::ok(
            json!({"object": "list", "data": data, "model": "text-embedding-3-small",
                         "usage": {"prompt_tokens": 6, "total_tokens": 6}}),
        )
    });
    let env = openai().start(&upstream);
    let body = json!({"model": "@oai/text-embedding-3-small", "input": ["first", "second"], "dimensions": 3});
    let answer = post(&env, "/v1/embeddings", &body);
    assert_eq!(answer.status, 200, "{answer}");
    let v = answer.json();
    assert_eq!(v["object"], "list");
    assert_eq!(
        v["data"][1],
        json!({"object": "embedding", "index": 1, "embedding": [0.25, -0.5, 1.0]})
    );
    assert_eq!(v["usage"]["prompt_tokens"], 6);
    let r = only_request(&upstream);
    openai().check_request(&r, "/v1/embeddings", &env);
    assert_eq!(
        r.json(),
        json!({"model": "text-embedding-3-small", "input": ["first", "second"], "dimensions": 3})
    );
}

#[test]
fn legacy_completions_pass_through() {
    let upstream = Upstream::start(|_| {
        Reply::ok(
            json!({"id": "cmpl-1", "object": "text_completion", "created": 1_735_689_600,
            "model": "gpt-3.5-turbo-instruct",
            "choices": [{"text": " blue.", "index": 0, "logprobs": null, "finish_reason": "length"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}}),
        )
    });
    let env = openai().start(&upstream);
    let body =
        json!({"model": "@oai/gpt-3.5-turbo-instruct", "prompt": "The sky is", "max_tokens": 2});
    let answer = post(&env, "/v1/completions", &body);
    assert_eq!(answer.status, 200, "{answer}");
    assert_eq!(answer.json()["choices"][0]["text"], " blue.");
    let r = only_request(&upstream);
    assert_eq!(r.path, "/v1/completions");
    assert_eq!(r.json()["prompt"], "The sky is");
}

#[test]
fn an_upstream_error_mid_stream_ends_the_stream_with_an_error_event() {
    let m = "gpt-4o-mini";
    let upstream = Upstream::start(move |_| {
        let events = [
            chunk(m, json!({"role": "assistant", "content": ""}), None),
            chunk(m, json!({"content": "Cold"}), None),
            "event: error\ndata: {\"error\":{\"message\":\"The server had an error while processing your request.\",\"type\":\"server_error\",\"param\":null,\"code\":null}}\n\n".to_string(),
        ];
        let refs: Vec<&str> = events.iter().map(String::as_str).collect();
        Reply::sse(&refs)
    });
    let env = openai().start(&upstream);
    let body = json!({"model": "@oai/gpt-4o-mini", "stream": true,
                      "messages": [{"role": "user", "content": "hi"}]});
    let answer = chat(&env, &body);
    assert_eq!(answer.status, 200, "{answer}");
    let events = answer.events();
    assert_eq!(events.last().unwrap().data, "[DONE]", "{answer}");
    let error: Value = serde_json::from_str(&events[events.len() - 2].data).unwrap();
    assert_eq!(
        error["error"]["message"], "The server had an error while processing your request.",
        "{answer}"
    );
    let before: Vec<Value> = events[..events.len() - 2]
        .iter()
        .map(|e| serde_json::from_str(&e.data).unwrap())
        .collect();
    assert_eq!(streamed_text(&before), "Cold");
}

#[test]
fn an_unknown_slug_is_the_gateways_own_400() {
    let upstream = Upstream::start(|_| Reply::ok(json!({})));
    let env = openai().start(&upstream);
    let answer = chat(
        &env,
        &json!({"model": "@nope/gpt-4o", "messages": [{"role": "user", "content": "hi"}]}),
    );
    assert_eq!(answer.status, 400, "{answer}");
    let v = answer.json();
    assert_eq!(v["error"]["type"], "invalid_request_error");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("nope"),
        "{v}"
    );
    assert!(upstream.requests().is_empty());
}
