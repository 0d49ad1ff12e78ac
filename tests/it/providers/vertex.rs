//! Vertex AI (Gemini models): the Gemini body format at
//! `/v1/projects/{project}/locations/{region}/publishers/google/models/{model}:{method}` with
//! `Authorization: Bearer <access token>`.

use serde_json::json;

use super::gemini::{self, Google};
use super::{only_request, post};
use crate::upstream::{Reply, Upstream};

const TOKEN: &str = "ya29.a0AfB_byTestAccessToken";

fn vertex() -> Google {
    Google {
        provider: "vertex-ai",
        slug: "vtx",
        key: TOKEN,
        model: "gemini-2.5-pro",
        base_suffix: "",
        settings: json!({"vertex_project_id": "acme-prod", "vertex_region": "europe-west4"}),
        model_path:
            "/v1/projects/acme-prod/locations/europe-west4/publishers/google/models/gemini-2.5-pro",
        auth: ("authorization", "Bearer ya29.a0AfB_byTestAccessToken"),
    }
}

#[test]
fn plain_answer_at_the_project_and_region_url_with_a_bearer_token() {
    gemini::plain(&vertex());
}

#[test]
fn stream() {
    gemini::stream(&vertex());
}

#[test]
fn tool_call_round_trip() {
    gemini::tools(&vertex());
}

#[test]
fn permission_denied_is_a_403() {
    gemini::error(
        &vertex(),
        403,
        json!({"code": 403,
               "message": "Permission 'aiplatform.endpoints.predict' denied on resource '//aiplatform.googleapis.com/projects/acme-prod/locations/europe-west4/publishers/google/models/gemini-2.5-pro' (or it may not exist).",
               "status": "PERMISSION_DENIED"}),
        (
            403,
            "permission_error",
            "Permission 'aiplatform.endpoints.predict' denied on resource '//aiplatform.googleapis.com/projects/acme-prod/locations/europe-west4/publishers/google/models/gemini-2.5-pro' (or it may not exist).",
        ),
    );
}

#[test]
fn embeddings_use_predict_and_sum_the_token_counts() {
    let upstream = Upstream::start(|_| {
        Reply::ok(json!({"predictions": [
            {"embeddings": {"values": [0.1, 0.2], "statistics": {"token_count": 5, "truncated": false}}},
            {"embeddings": {"values": [0.3, 0.4], "statistics": {"token_count": 4, "truncated": false}}},
        ], "metadata": {"billableCharacterCount": 20}}))
    });
    let env = vertex().start(&upstream);
    let answer = post(
        &env,
        "/v1/embeddings",
        &json!({"model": "@vtx/text-embedding-005", "input": ["first", "second"], "dimensions": 2}),
    );
    assert_eq!(answer.status, 200, "{answer}");
    let v = answer.json();
    assert_eq!(
        v["data"][1],
        json!({"object": "embedding", "index": 1, "embedding": [0.3, 0.4]})
    );
    assert_eq!(v["usage"], json!({"prompt_tokens": 9, "total_tokens": 9}));
    let r = only_request(&upstream);
    assert_eq!(
        r.path,
        "/v1/projects/acme-prod/locations/europe-west4/publishers/google/models/text-embedding-005:predict"
    );
    assert_eq!(
        r.header("authorization"),
        Some("Bearer ya29.a0AfB_byTestAccessToken")
    );
    assert_eq!(
        r.json(),
        json!({"instances": [{"content": "first"}, {"content": "second"}],
               "parameters": {"outputDimensionality": 2}})
    );
}

/// Without a project, a Vertex API key uses express mode: the global publisher URL with
/// `x-goog-api-key`.
#[test]
fn express_mode_with_an_api_key() {
    let upstream = Upstream::start(|_| {
        Reply::ok(
            json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "Hi."}]},
                                          "finishReason": "STOP"}],
                         "usageMetadata": {"promptTokenCount": 2, "candidatesTokenCount": 1, "totalTokenCount": 3}}),
        )
    });
    let env = super::gateway(
        "vtx-express",
        "vertex-ai",
        "AQ.Ab8RN6Ltestexpresskey",
        json!({"custom_host": upstream.url}),
    );
    let answer = super::chat(
        &env,
        &json!({"model": "@vtx-express/gemini-2.5-flash", "messages": [{"role": "user", "content": "hi"}]}),
    );
    assert_eq!(answer.status, 200, "{answer}");
    super::assert_completion(&answer.json(), Some("Hi."), "stop");
    let r = only_request(&upstream);
    assert_eq!(
        r.path,
        "/v1/publishers/google/models/gemini-2.5-flash:generateContent"
    );
    assert_eq!(r.header("x-goog-api-key"), Some("AQ.Ab8RN6Ltestexpresskey"));
    assert!(r.header("authorization").is_none());
}
