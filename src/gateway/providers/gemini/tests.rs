//! Request mapping, addressing, errors and embeddings of the Gemini / Vertex adapter.

use serde_json::{json, Map, Value};

use super::*;
use crate::gateway::providers::find;
use crate::gateway::providers::translation::test_support::header;

fn target<'a>(
    slug: &str,
    key: &'a str,
    base: &'a str,
    settings: &'a Map<String, Value>,
) -> Target<'a> {
    let provider = find(slug).unwrap();
    Target {
        provider,
        base_url: if base.is_empty() {
            provider.base_url
        } else {
            base
        },
        api_key: Some(key),
        settings,
    }
}

fn send(t: &Target, endpoint: Endpoint, body: Value, stream: bool) -> (UpstreamRequest, Value) {
    let req = Gemini.request(t, endpoint, &body, stream).unwrap();
    let sent = serde_json::from_slice(&req.body).unwrap();
    (req, sent)
}

#[test]
fn maps_system_roles_merging_and_generation_config() {
    let none = Map::new();
    let t = target("google", "AIza-test", "", &none);
    let body = json!({
        "model": "gemini-2.5-flash",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "developer", "content": [{"type": "text", "text": "Answer in English."}]},
            {"role": "user", "content": "Hi"},
            {"role": "user", "content": "Still there?"},
            {"role": "assistant", "content": "Yes."},
            {"role": "user", "content": "Good."}
        ],
        "temperature": 0.2, "top_p": 0.9, "max_completion_tokens": 256, "stop": "END", "n": 2,
        "seed": 7, "user": "u-1", "logit_bias": {"1": 2},
        "response_format": {"type": "json_schema", "json_schema": {"name": "r", "strict": true,
            "schema": {"type": "object", "additionalProperties": false,
                       "properties": {"a": {"type": "string"}}, "required": ["a"]}}}
    });
    let (req, sent) = send(&t, Endpoint::Chat, body, false);
    assert_eq!(
        req.url,
        "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent"
    );
    assert_eq!(header(&req, "x-goog-api-key"), Some("AIza-test"));
    assert_eq!(header(&req, "content-type"), Some("application/json"));
    assert_eq!(
        sent,
        json!({
            "contents": [
                {"role": "user", "parts": [{"text": "Hi"}, {"text": "Still there?"}]},
                {"role": "model", "parts": [{"text": "Yes."}]},
                {"role": "user", "parts": [{"text": "Good."}]}
            ],
            "systemInstruction": {"parts": [{"text": "You are terse."}, {"text": "Answer in English."}]},
            "generationConfig": {
                "temperature": 0.2, "topP": 0.9, "maxOutputTokens": 256, "candidateCount": 2,
                "seed": 7, "stopSequences": ["END"], "responseMimeType": "application/json",
                "responseSchema": {"type": "object", "properties": {"a": {"type": "string"}},
                                   "required": ["a"]}
            }
        })
    );
}

#[test]
fn tools_are_cleaned_and_tool_choice_mapped() {
    let none = Map::new();
    let t = target("google", "k", "", &none);
    let body = json!({
        "model": "models/gemini-2.5-pro",
        "messages": [{"role": "user", "content": "Weather in Oslo?"}],
        "tools": [
            {"type": "function", "function": {
                "name": "get_weather", "description": "Current weather", "strict": true,
                "parameters": {
                    "$schema": "http://json-schema.org/draft-07/schema#",
                    "type": "object", "additionalProperties": false, "strict": true,
                    "properties": {
                        "city": {"type": "string"},
                        "unit": {"type": "string", "enum": ["c", "f"], "default": "c"},
                        "opts": {"type": "object", "additionalProperties": {"type": "string"},
                                 "properties": {"deep": {"type": "boolean", "$id": "x"}}}
                    },
                    "required": ["city"]
                }}},
            {"type": "function", "function": {"name": "now", "parameters": {"type": "object", "properties": {}}}}
        ],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}}
    });
    let (req, sent) = send(&t, Endpoint::Chat, body, true);
    assert_eq!(
        req.url,
        "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse"
    );
    assert_eq!(
        sent["tools"],
        json!([{"functionDeclarations": [
            {"name": "get_weather", "description": "Current weather", "parameters": {
                "type": "object",
                "properties": {
                    "city": {"type": "string"},
                    "unit": {"type": "string", "enum": ["c", "f"], "default": "c"},
                    "opts": {"type": "object", "properties": {"deep": {"type": "boolean"}}}
                },
                "required": ["city"]
            }},
            {"name": "now"}
        ]}])
    );
    assert_eq!(
        sent["toolConfig"],
        json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}})
    );
    for (choice, mode) in [("auto", "AUTO"), ("none", "NONE"), ("required", "ANY")] {
        let body = json!({"model": "gemini-2.5-pro", "messages": [{"role": "user", "content": "x"}],
                          "tool_choice": choice});
        let (_, sent) = send(&t, Endpoint::Chat, body, false);
        assert_eq!(
            sent["toolConfig"],
            json!({"functionCallingConfig": {"mode": mode}})
        );
    }
}

#[test]
fn tool_round_trip_names_the_function_response() {
    let none = Map::new();
    let t = target("google", "k", "", &none);
    let body = json!({
        "model": "gemini-2.5-flash",
        "messages": [
            {"role": "user", "content": "Weather in Oslo and Paris?"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_a", "type": "function",
                 "function": {"name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"}},
                {"id": "call_b", "type": "function",
                 "function": {"name": "get_time", "arguments": "{\"city\":\"Paris\"}",
                              "thought_signature": "sig-b"}}
            ]},
            {"role": "tool", "tool_call_id": "call_b", "content": "{\"time\":\"12:00\"}"},
            {"role": "tool", "tool_call_id": "call_a", "content": "Sunny, 21C"},
            {"role": "function", "name": "legacy_fn", "content": "ok"}
        ]
    });
    let (_, sent) = send(&t, Endpoint::Chat, body, false);
    assert_eq!(
        sent["contents"],
        json!([
            {"role": "user", "parts": [{"text": "Weather in Oslo and Paris?"}]},
            {"role": "model", "parts": [
                {"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}},
                {"functionCall": {"name": "get_time", "args": {"city": "Paris"}}, "thoughtSignature": "sig-b"}
            ]},
            {"role": "user", "parts": [
                {"functionResponse": {"name": "get_time", "response": {"time": "12:00"}}},
                {"functionResponse": {"name": "get_weather", "response": {"content": "Sunny, 21C"}}},
                {"functionResponse": {"name": "legacy_fn", "response": {"content": "ok"}}}
            ]}
        ])
    );
    // Unknown id and no name: a clear 400, not a request Gemini rejects.
    let orphan = json!({"model": "gemini-2.5-flash", "messages": [
        {"role": "user", "content": "x"}, {"role": "tool", "tool_call_id": "call_zz", "content": "1"}]});
    let err = Gemini
        .request(&t, Endpoint::Chat, &orphan, false)
        .unwrap_err();
    assert!(err.0.contains("call_zz"), "{}", err.0);
}

#[test]
fn gemini_3_replay_without_signature_gets_the_documented_sentinel() {
    let none = Map::new();
    let t = target("google", "k", "", &none);
    let body = json!({"model": "gemini-3-pro-preview", "messages": [
        {"role": "user", "content": "x"},
        {"role": "assistant", "tool_calls": [
            {"id": "1", "type": "function", "function": {"name": "f", "arguments": ""}},
            {"id": "2", "type": "function", "function": {"name": "g", "arguments": "{}"}}]}
    ]});
    let (_, sent) = send(&t, Endpoint::Chat, body, false);
    let parts = &sent["contents"][1]["parts"];
    assert_eq!(
        parts[0]["thoughtSignature"],
        "skip_thought_signature_validator"
    );
    assert_eq!(parts[0]["functionCall"]["args"], json!({}));
    assert!(parts[1].get("thoughtSignature").is_none());
}

#[test]
fn image_parts_inline_and_by_uri() {
    let none = Map::new();
    let t = target("google", "k", "", &none);
    let body = json!({"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "Compare"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.webp?x=1", "detail": "high"}},
        {"type": "image_url", "image_url": "gs://bucket/dog.jpg"}
    ]}]});
    let (_, sent) = send(&t, Endpoint::Chat, body, false);
    assert_eq!(
        sent["contents"][0]["parts"],
        json!([
            {"text": "Compare"},
            {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
            {"fileData": {"mimeType": "image/webp", "fileUri": "https://example.com/cat.webp?x=1"}},
            {"fileData": {"mimeType": "image/jpeg", "fileUri": "gs://bucket/dog.jpg"}}
        ])
    );
    let bad = json!({"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "file:///etc/passwd"}}]}]});
    assert!(Gemini.request(&t, Endpoint::Chat, &bad, false).is_err());
}

#[test]
fn vertex_url_forms_and_auth() {
    let chat = json!({"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "x"}]});
    let settings = json!({"vertex_project_id": "acme-prod", "vertex_region": "europe-west4"});
    let settings = settings.as_object().unwrap();
    let t = target("vertex-ai", "ya29.token", "", settings);
    let (req, _) = send(&t, Endpoint::Chat, chat.clone(), false);
    assert_eq!(
        req.url,
        "https://europe-west4-aiplatform.googleapis.com/v1/projects/acme-prod/locations/europe-west4/publishers/google/models/gemini-2.5-flash:generateContent"
    );
    assert_eq!(header(&req, "authorization"), Some("Bearer ya29.token"));
    assert_eq!(header(&req, "x-goog-api-key"), None);

    let global = json!({"vertex_project_id": "acme-prod", "vertex_region": "global"});
    let t = target("vertex-ai", "ya29.token", "", global.as_object().unwrap());
    let (req, _) = send(&t, Endpoint::Chat, chat.clone(), true);
    assert_eq!(
        req.url,
        "https://aiplatform.googleapis.com/v1/projects/acme-prod/locations/global/publishers/google/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    );

    let t = target(
        "vertex-ai",
        "ya29.token",
        "https://vertex.internal/",
        settings,
    );
    let (req, _) = send(
        &t,
        Endpoint::Chat,
        json!({"model": "google/gemini-2.5-pro", "messages": []}),
        false,
    );
    assert_eq!(
        req.url,
        "https://vertex.internal/v1/projects/acme-prod/locations/europe-west4/publishers/google/models/gemini-2.5-pro:generateContent"
    );

    let t = target("vertex-ai", "{\"type\":\"service_account\"}", "", settings);
    let err = Gemini
        .request(&t, Endpoint::Chat, &chat, false)
        .unwrap_err();
    assert!(
        err.0.contains("service-account") && err.0.contains("access token"),
        "{}",
        err.0
    );

    let t = target("vertex-ai", "ya29.token", "", settings);
    let claude = json!({"model": "claude-sonnet-4@20250514", "messages": []});
    assert!(Gemini.request(&t, Endpoint::Chat, &claude, false).is_err());
    let sneaky = json!({"model": "gemini/../../x?y", "messages": []});
    assert!(Gemini.request(&t, Endpoint::Chat, &sneaky, false).is_err());
    let evil = json!({"vertex_project_id": "p", "vertex_region": "x.evil.com/#"});
    let t = target("vertex-ai", "ya29.token", "", evil.as_object().unwrap());
    assert!(Gemini.request(&t, Endpoint::Chat, &chat, false).is_err());

    // Express mode: no project, an API key.
    let none = Map::new();
    let t = target("vertex-ai", "AQ.express", "", &none);
    let (req, _) = send(&t, Endpoint::Chat, chat, false);
    assert_eq!(
        req.url,
        "https://aiplatform.googleapis.com/v1/publishers/google/models/gemini-2.5-flash:generateContent"
    );
    assert_eq!(header(&req, "x-goog-api-key"), Some("AQ.express"));
}

#[test]
fn embeddings_requests() {
    let none = Map::new();
    let t = target("google", "k", "", &none);
    let body = json!({"model": "gemini-embedding-001", "input": ["a", "b"], "dimensions": 768});
    let (req, sent) = send(&t, Endpoint::Embeddings, body, false);
    assert_eq!(
        req.url,
        "https://generativelanguage.googleapis.com/v1beta/models/gemini-embedding-001:batchEmbedContents"
    );
    assert_eq!(
        sent,
        json!({"requests": [
            {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "a"}]}, "outputDimensionality": 768},
            {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "b"}]}, "outputDimensionality": 768}
        ]})
    );
    let tokens = json!({"model": "gemini-embedding-001", "input": [[1, 2, 3]]});
    assert!(Gemini
        .request(&t, Endpoint::Embeddings, &tokens, false)
        .is_err());

    let settings = json!({"vertex_project_id": "p1", "vertex_region": "us-central1"});
    let t = target("vertex-ai", "ya29.t", "", settings.as_object().unwrap());
    let (req, sent) = send(
        &t,
        Endpoint::Embeddings,
        json!({"model": "text-embedding-005", "input": "hi"}),
        false,
    );
    assert!(
        req.url
            .ends_with("/publishers/google/models/text-embedding-005:predict"),
        "{}",
        req.url
    );
    assert_eq!(sent, json!({"instances": [{"content": "hi"}]}));
}

#[test]
fn completions_and_responses() {
    let none = Map::new();
    let t = target("google", "k", "", &none);
    let (_, sent) = send(
        &t,
        Endpoint::Completions,
        json!({"model": "gemini-2.5-flash", "prompt": "Say hi", "max_tokens": 5}),
        false,
    );
    assert_eq!(
        sent["contents"],
        json!([{"role": "user", "parts": [{"text": "Say hi"}]}])
    );
    assert_eq!(sent["generationConfig"], json!({"maxOutputTokens": 5}));
    let body = json!({"model": "gemini-2.5-flash", "input": "x"});
    assert!(Gemini
        .request(&t, Endpoint::Responses, &body, false)
        .is_err());
}

#[test]
fn errors_are_normalised() {
    let google = find("google").unwrap();
    let exhausted = br#"{"error":{"code":429,"message":"Resource has been exhausted (e.g. check quota).","status":"RESOURCE_EXHAUSTED"}}"#;
    let (status, body) = Gemini.error(google, 429, exhausted);
    assert_eq!(status, 429);
    assert_eq!(body["error"]["type"], "rate_limit_error");
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    assert_eq!(
        body["error"]["message"],
        "google error: Resource has been exhausted (e.g. check quota)."
    );
    assert_eq!(body["provider"], "google");

    // Streaming endpoints wrap the object in an array.
    let overloaded = br#"[{"error":{"code":503,"message":"The model is overloaded. Please try again later.","status":"UNAVAILABLE"}}]"#;
    let (status, body) = Gemini.error(google, 503, overloaded);
    assert_eq!(status, 503);
    assert_eq!(body["error"]["type"], "server_error");
    assert_eq!(body["error"]["code"], "overloaded");

    let invalid = br#"{"error":{"code":400,"message":"* GenerateContentRequest.tools[0].function_declarations[0].parameters.properties: should be non-empty for OBJECT type","status":"INVALID_ARGUMENT"}}"#;
    let (status, body) = Gemini.error(google, 400, invalid);
    assert_eq!(status, 400);
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert_eq!(body["error"]["code"], "invalid_argument");

    let bad_key = br#"{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID","domain":"googleapis.com"}]}}"#;
    let (status, body) = Gemini.error(google, 400, bad_key);
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "invalid_api_key");

    let (status, body) = Gemini.error(google, 502, b"<html>Bad Gateway</html>");
    assert_eq!(status, 502);
    assert_eq!(
        body["error"]["message"],
        "google error: <html>Bad Gateway</html>"
    );
}
