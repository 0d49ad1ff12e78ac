//! Azure OpenAI: deployment URLs `/openai/deployments/{deployment}/...?api-version=...`, the key
//! in an `api-key` header, content-filter annotations in answers and streams.

use serde_json::json;

use super::family::{self, chunk, completion, usage_chunk, Family};
use super::{assert_text_stream, chat, chunks, data, only_request, post};
use crate::common::TestEnv;
use crate::upstream::{Reply, Upstream};

const KEY: &str = "0123456789abcdef0123456789abcdef";

fn azure() -> Family {
    Family {
        provider: "azure-openai",
        slug: "az",
        key: KEY,
        model: "gpt-4o",
        base_suffix: "",
        settings: json!({"resource_name": "acme", "deployment_id": "gpt4o-prod",
                         "api_version": "2025-01-01-preview"}),
        chat_path: "/openai/deployments/gpt4o-prod/chat/completions?api-version=2025-01-01-preview",
        auth: ("api-key", KEY),
    }
}

#[test]
fn plain_answer_goes_to_the_deployment_with_an_api_key_header() {
    let r = family::plain(&azure());
    assert!(
        r.header("authorization").is_none(),
        "Azure's key goes in api-key only"
    );
}

#[test]
fn stream() {
    family::stream(&azure());
}

#[test]
fn tool_call_round_trip() {
    family::tools(&azure(), "call_azure_1");
}

#[test]
fn rate_limit_with_retry_after_ms() {
    let answer = family::error(
        &azure(),
        (
            429,
            json!({"error": {"code": "429", "message": "Requests to the ChatCompletions_Create Operation under Azure OpenAI API version 2025-01-01-preview have exceeded token rate limit of your current OpenAI S0 pricing tier. Please retry after 2 seconds."}}),
            vec![("retry-after-ms", "1500".into()), ("retry-after", "2".into())],
        ),
        (
            429,
            "rate_limit_error",
            "Requests to the ChatCompletions_Create Operation under Azure OpenAI API version 2025-01-01-preview have exceeded token rate limit of your current OpenAI S0 pricing tier. Please retry after 2 seconds.",
        ),
    );
    assert_eq!(answer.header("retry-after"), Some("2"), "{answer}");
}

#[test]
fn a_filtered_prompt_is_a_400_content_filter() {
    let message = "The response was filtered due to the prompt triggering Azure OpenAI's content management policy.";
    let answer = family::error(
        &azure(),
        (
            400,
            json!({"error": {"message": message, "type": null, "param": "prompt", "code": "content_filter", "status": 400,
                "innererror": {"code": "ResponsibleAIPolicyViolation",
                    "content_filter_result": {"hate": {"filtered": true, "severity": "high"}}}}}),
            vec![],
        ),
        (400, "invalid_request_error", message),
    );
    assert_eq!(answer.json()["error"]["code"], "content_filter");
}

#[test]
fn a_missing_deployment_is_a_404_model_not_found() {
    let message = "The API deployment for this resource does not exist. If you created the deployment within the last 5 minutes, please wait a moment and try again.";
    let answer = family::error(
        &azure(),
        (
            404,
            json!({"error": {"code": "DeploymentNotFound", "message": message}}),
            vec![],
        ),
        (404, "invalid_request_error", message),
    );
    assert_eq!(answer.json()["error"]["code"], "model_not_found");
}

/// Azure streams open with a prompt-filter chunk (no choices) and may carry annotation chunks
/// whose choice has no `delta`; the client sees neither.
#[test]
fn content_filter_annotation_chunks_are_dropped() {
    let m = "gpt-4o-2024-08-06";
    let upstream = Upstream::start(move |_| {
        let filter = json!({"hate": {"filtered": false, "severity": "safe"},
                            "violence": {"filtered": false, "severity": "safe"}});
        let events = [
            data(
                json!({"id": "", "object": "", "created": 0, "model": "", "choices": [],
                        "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": filter}]}),
            ),
            chunk(m, json!({"role": "assistant", "content": ""}), None),
            chunk(m, json!({"content": "Cold"}), None),
            data(
                json!({"id": "chatcmpl-up2", "object": "chat.completion.chunk", "created": 1_735_689_600,
                        "model": m, "choices": [{"index": 0, "finish_reason": null,
                        "content_filter_offsets": {"check_offset": 0, "start_offset": 0, "end_offset": 4},
                        "content_filter_results": filter}]}),
            ),
            chunk(m, json!({"content": "."}), None),
            chunk(m, json!({}), Some("stop")),
            usage_chunk(m, 9, 2),
            "data: [DONE]\n\n".to_string(),
        ];
        let refs: Vec<&str> = events.iter().map(String::as_str).collect();
        Reply::sse(&refs)
    });
    let env = azure().start(&upstream);
    let body = json!({"model": "@az/gpt-4o", "stream": true, "stream_options": {"include_usage": true},
                      "messages": [{"role": "user", "content": "hi"}]});
    // `chunks` fails on any choice without a delta.
    let got = chunks(&chat(&env, &body));
    assert_text_stream(&got, "Cold.", "stop", Some((9, 2)));
}

/// The way the CLI documents it: `integrations create --base-url`, then the deployment through
/// `tollgate api PUT`. Without `api_version` the GA version is used.
#[test]
fn integration_made_with_the_cli_and_the_admin_api() {
    let upstream = Upstream::start(|_| {
        let message = json!({"role": "assistant", "content": "hello"});
        let mut answer = completion("gpt-4o-2024-08-06", message, "stop", 3, 1);
        answer["prompt_filter_results"] =
            json!([{"prompt_index": 0, "content_filter_results": {}}]);
        answer["choices"][0]["content_filter_results"] =
            json!({"hate": {"filtered": false, "severity": "safe"}});
        Reply::ok(answer)
    });
    let env = TestEnv::new();
    env.run_stdin(
        &[
            "integrations",
            "create",
            "--slug",
            "azure-eu",
            "--provider",
            "azure-openai",
            "--base-url",
            &upstream.url,
            "--api-key-stdin",
        ],
        &format!("{KEY}\n"),
    )
    .ok();
    env.run(&[
        "api",
        "PUT",
        "/v1/integrations/azure-eu",
        "-d",
        r#"{"configurations":{"deployment_id":"chat-4o"}}"#,
    ])
    .ok();
    let answer = chat(
        &env,
        &json!({"model": "@azure-eu/gpt-4o", "messages": [{"role": "user", "content": "hi"}]}),
    );
    assert_eq!(answer.status, 200, "{answer}");
    let v = answer.json();
    super::assert_completion(&v, Some("hello"), "stop");
    assert_eq!(v["model"], "gpt-4o-2024-08-06");
    let r = only_request(&upstream);
    assert_eq!(
        r.path,
        "/openai/deployments/chat-4o/chat/completions?api-version=2024-10-21"
    );
    assert_eq!(r.header("api-key"), Some(KEY));
}

#[test]
fn embeddings_go_to_the_deployment() {
    let upstream = Upstream::start(|_| {
        Reply::ok(json!({"object": "list", "model": "text-embedding-3-large",
            "data": [{"object": "embedding", "index": 0, "embedding": [0.5, 0.25]}],
            "usage": {"prompt_tokens": 2, "total_tokens": 2}}))
    });
    let env = azure().start(&upstream);
    let answer = post(
        &env,
        "/v1/embeddings",
        &json!({"model": "@az/text-embedding-3-large", "input": "hello"}),
    );
    assert_eq!(answer.status, 200, "{answer}");
    assert_eq!(answer.json()["data"][0]["embedding"], json!([0.5, 0.25]));
    let r = only_request(&upstream);
    azure().check_request(
        &r,
        "/openai/deployments/gpt4o-prod/embeddings?api-version=2025-01-01-preview",
        &env,
    );
}
