//! Vertex AI with a service-account key: the gateway mints an access token at the account's
//! `token_uri` with a signed JWT, caches it, and calls Vertex with it.

use serde_json::{json, Value};

use crate::common::{gateway_env, post_json};
use crate::upstream::{Reply, Upstream};

const TEST_KEY: &str = include_str!("../data/test-service-account-key.pem");

fn gemini_answer() -> Value {
    json!({
        "candidates": [{"content": {"role": "model", "parts": [{"text": "Bonjour"}]}, "finishReason": "STOP", "index": 0}],
        "usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 1, "totalTokenCount": 5}
    })
}

#[test]
fn a_service_account_key_is_exchanged_for_a_cached_access_token() {
    let upstream = Upstream::start(|req| {
        if req.path == "/token" {
            Reply::ok(
                json!({"access_token": "ya29.minted", "expires_in": 3600, "token_type": "Bearer"}),
            )
        } else {
            Reply::ok(gemini_answer())
        }
    });
    let env = gateway_env(&[]);
    let account = json!({
        "type": "service_account",
        "project_id": "acme-proj",
        "client_email": "bot@acme-proj.iam.gserviceaccount.com",
        "private_key": TEST_KEY,
        "token_uri": format!("{}/token", upstream.url),
    });
    // Pretty-printed, as the file Google hands out: the whole of stdin is the key.
    let pretty = serde_json::to_string_pretty(&account).unwrap();
    env.run_stdin(
        &[
            "integrations",
            "create",
            "--slug",
            "vx",
            "--provider",
            "vertex-ai",
            "--base-url",
            &upstream.url,
            "--api-key-stdin",
        ],
        &pretty,
    )
    .ok();
    let key = env.admin_key.clone();
    let body = json!({"model": "@vx/gemini-2.0-flash", "messages": [{"role": "user", "content": "Salut"}]});
    for _ in 0..2 {
        let answer = post_json(
            &env,
            "/v1/chat/completions",
            &[("authorization", &format!("Bearer {key}"))],
            &body,
        );
        assert_eq!(answer.status, 200, "{}", answer.body);
        let parsed: Value = serde_json::from_str(&answer.body).unwrap();
        assert_eq!(parsed["choices"][0]["message"]["content"], "Bonjour");
    }
    let requests = upstream.requests();
    let token_calls: Vec<_> = requests.iter().filter(|r| r.path == "/token").collect();
    assert_eq!(token_calls.len(), 1, "the token is cached: {requests:?}");
    let form = String::from_utf8_lossy(&token_calls[0].body).into_owned();
    assert!(
        form.starts_with(
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion="
        ),
        "{form}"
    );
    let jwt = form.split("assertion=").nth(1).unwrap();
    assert_eq!(jwt.split('.').count(), 3, "{jwt}");
    let vertex: Vec<_> = requests.iter().filter(|r| r.path != "/token").collect();
    assert_eq!(vertex.len(), 2);
    assert_eq!(
        vertex[0].path,
        "/v1/projects/acme-proj/locations/us-central1/publishers/google/models/gemini-2.0-flash:generateContent"
    );
    assert_eq!(
        vertex[0].header("authorization"),
        Some("Bearer ya29.minted")
    );
}

#[test]
fn a_refused_service_account_is_a_401_naming_the_cause() {
    let upstream = Upstream::start(|req| {
        if req.path == "/token" {
            Reply::status(
                400,
                json!({"error": "invalid_grant", "error_description": "Invalid JWT Signature."}),
            )
        } else {
            Reply::ok(gemini_answer())
        }
    });
    let env = gateway_env(&[]);
    let account = json!({
        "client_email": "bot@p.iam.gserviceaccount.com",
        "private_key": TEST_KEY,
        "token_uri": format!("{}/token", upstream.url),
        "project_id": "p",
    });
    env.run_stdin(
        &[
            "integrations",
            "create",
            "--slug",
            "vx",
            "--provider",
            "vertex-ai",
            "--base-url",
            &upstream.url,
            "--api-key-stdin",
        ],
        &account.to_string(),
    )
    .ok();
    let key = env.admin_key.clone();
    let body =
        json!({"model": "@vx/gemini-2.0-flash", "messages": [{"role": "user", "content": "x"}]});
    let answer = post_json(
        &env,
        "/v1/chat/completions",
        &[("authorization", &format!("Bearer {key}"))],
        &body,
    );
    assert_eq!(answer.status, 401, "{}", answer.body);
    let parsed: Value = serde_json::from_str(&answer.body).unwrap();
    assert_eq!(parsed["error"]["type"], "authentication_error");
    assert!(
        parsed["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Invalid JWT Signature"),
        "{parsed}"
    );
    assert!(
        upstream.requests().iter().all(|r| r.path == "/token"),
        "Vertex was never called"
    );
}
