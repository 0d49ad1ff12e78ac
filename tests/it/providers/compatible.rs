//! The OpenAI-compatible family by base URL: Groq (and its fix-ups), DeepSeek's
//! `reasoning_content` and cache usage.

use serde_json::json;

use super::family::{self, chunk, completion, Family};
use super::{assert_completion, chat, chunks, data, only_request};
use crate::upstream::{Reply, Upstream};

fn groq() -> Family {
    Family {
        provider: "groq",
        slug: "groq-prod",
        key: "gsk_test_key",
        model: "llama-3.3-70b-versatile",
        base_suffix: "/openai/v1",
        settings: json!({}),
        chat_path: "/openai/v1/chat/completions",
        auth: ("authorization", "Bearer gsk_test_key"),
    }
}

#[test]
fn groq_plain_answer() {
    family::plain(&groq());
}

#[test]
fn groq_stream() {
    family::stream(&groq());
}

#[test]
fn groq_tool_call_round_trip() {
    family::tools(&groq(), "call_d5wg");
}

#[test]
fn groq_rate_limit() {
    let message = "Rate limit reached for model `llama-3.3-70b-versatile` in organization `org_01` service tier `on_demand` on tokens per minute (TPM): Limit 6000, Used 5000, Requested 2000. Please try again in 10s.";
    let answer = family::error(
        &groq(),
        (
            429,
            json!({"error": {"message": message, "type": "tokens", "code": "rate_limit_exceeded"}}),
            vec![("retry-after", "10".into())],
        ),
        (429, "rate_limit_error", message),
    );
    assert_eq!(answer.header("retry-after"), Some("10"));
}

/// Groq takes `temperature: 0` as 1e-8; its streamed usage comes in `x_groq.usage` on the
/// last chunk and is reported as OpenAI usage.
#[test]
fn groq_temperature_zero_and_x_groq_usage() {
    let m = "llama-3.3-70b-versatile";
    let upstream = Upstream::start(move |_| {
        let events = [
            chunk(m, json!({"role": "assistant", "content": ""}), None),
            chunk(m, json!({"content": "Cold."}), None),
            data(
                json!({"id": "chatcmpl-up2", "object": "chat.completion.chunk", "created": 1_735_689_600,
                        "model": m, "choices": [{"index": 0, "delta": {}, "logprobs": null, "finish_reason": "stop"}],
                        "x_groq": {"id": "req_01j", "usage": {"queue_time": 0.02, "prompt_tokens": 12,
                            "prompt_time": 0.001, "completion_tokens": 2, "completion_time": 0.004,
                            "total_tokens": 14, "total_time": 0.005}}}),
            ),
            "data: [DONE]\n\n".to_string(),
        ];
        let refs: Vec<&str> = events.iter().map(String::as_str).collect();
        Reply::sse(&refs)
    });
    let env = groq().start(&upstream);
    let body = json!({"model": "@groq-prod/llama-3.3-70b-versatile", "stream": true, "temperature": 0,
                      "stream_options": {"include_usage": true},
                      "messages": [{"role": "user", "content": "Weather?"}]});
    let got = chunks(&chat(&env, &body));
    assert_eq!(super::streamed_text(&got), "Cold.");
    let usage: Vec<_> = got
        .iter()
        .filter_map(|c| c.get("usage").filter(|u| !u.is_null()))
        .collect();
    assert_eq!(usage.len(), 1, "{got:#?}");
    assert_eq!(usage[0]["prompt_tokens"], 12);
    assert_eq!(usage[0]["completion_tokens"], 2);
    let sent = only_request(&upstream).json();
    assert_eq!(sent["temperature"], 1e-8);
}

/// DeepSeek rejects `reasoning_content` sent back in the history; its cache hits are reported
/// as OpenAI's `cached_tokens`.
#[test]
fn deepseek_strips_reasoning_content_and_reports_cache_hits() {
    let upstream = Upstream::start(|_| {
        let message =
            json!({"role": "assistant", "content": "Done.", "reasoning_content": "Thinking..."});
        let mut answer = completion("deepseek-reasoner", message, "stop", 30, 10);
        answer["usage"]["prompt_cache_hit_tokens"] = json!(24);
        answer["usage"]["prompt_cache_miss_tokens"] = json!(6);
        answer["usage"]
            .as_object_mut()
            .unwrap()
            .remove("prompt_tokens_details");
        Reply::ok(answer)
    });
    let env = super::gateway(
        "ds",
        "deepseek",
        "sk-deepseek-test",
        json!({"custom_host": format!("{}/v1", upstream.url)}),
    );
    let answer = chat(
        &env,
        &json!({"model": "@ds/deepseek-reasoner", "messages": [
            {"role": "user", "content": "2+2?"},
            {"role": "assistant", "content": "4", "reasoning_content": "2 and 2 make 4."},
            {"role": "user", "content": "Times 3?"},
        ]}),
    );
    assert_eq!(answer.status, 200, "{answer}");
    let v = answer.json();
    assert_completion(&v, Some("Done."), "stop");
    assert_eq!(
        v["usage"]["prompt_tokens_details"]["cached_tokens"], 24,
        "{v:#}"
    );
    let r = only_request(&upstream);
    assert_eq!(r.path, "/v1/chat/completions");
    assert_eq!(r.header("authorization"), Some("Bearer sk-deepseek-test"));
    let sent = r.json();
    assert!(
        sent["messages"][1].get("reasoning_content").is_none(),
        "{sent:#}"
    );
}
