use serde_json::{json, Map, Value};
use time::macros::datetime;

use super::*;
use crate::gateway::providers::find;
use crate::gateway::providers::translation::test_support::header;

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

fn settings(v: Value) -> Map<String, Value> {
    serde_json::from_value(v).unwrap()
}

fn target<'a>(base: &'a str, key: Option<&'a str>, settings: &'a Map<String, Value>) -> Target<'a> {
    Target {
        provider: find("bedrock").unwrap(),
        base_url: base,
        api_key: key,
        settings,
    }
}

fn sent(r: &UpstreamRequest) -> Value {
    serde_json::from_slice(&r.body).unwrap()
}

#[test]
fn signed_request_matches_an_independent_signature() {
    // Expected value computed with a separate Python SigV4 implementation (hashlib/hmac)
    // that reproduces AWS's get-vanilla vector.
    let s = settings(json!({
        "aws_access_key_id": "AKIDEXAMPLE",
        "aws_region": "us-west-2",
        "aws_session_token": "tok123",
    }));
    let body = json!({
        "model": "anthropic.claude-3-5-sonnet-20240620-v1:0",
        "messages": [{"role": "user", "content": "Hi"}],
    });
    let r = build_request(
        &target("", Some(SECRET), &s),
        Endpoint::Chat,
        &body,
        false,
        datetime!(2024-05-01 12:00:00 UTC),
    )
    .unwrap();
    assert_eq!(
        r.url,
        "https://bedrock-runtime.us-west-2.amazonaws.com/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse"
    );
    assert_eq!(
        r.body,
        br#"{"messages":[{"role":"user","content":[{"text":"Hi"}]}]}"#
    );
    assert_eq!(header(&r, "x-amz-date"), Some("20240501T120000Z"));
    assert_eq!(header(&r, "x-amz-security-token"), Some("tok123"));
    assert_eq!(header(&r, "content-type"), Some("application/json"));
    assert_eq!(
        header(&r, "authorization"),
        Some("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240501/us-west-2/bedrock/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, Signature=6f5e97516a71b4f396460c59108abd57e38f6c2f15ba852bc2526c5e803728fc")
    );
}

#[test]
fn urls_credentials_and_unsupported_endpoints() {
    let s = settings(json!({"aws_access_key_id": "AKID"}));
    let chat = json!({"model": "arn:aws:bedrock:us-east-1::foundation-model/m:0", "messages": [{"role": "user", "content": "x"}]});
    let r = Bedrock
        .request(
            &target("http://127.0.0.1:9/", Some("s"), &s),
            Endpoint::Chat,
            &chat,
            true,
        )
        .unwrap();
    assert_eq!(
        r.url,
        "http://127.0.0.1:9/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A%3Afoundation-model%2Fm%3A0/converse-stream"
    );
    assert!(header(&r, "authorization")
        .unwrap()
        .contains("/us-east-1/bedrock/aws4_request"));
    assert!(header(&r, "x-amz-security-token").is_none());

    let none = Map::new();
    let r = Bedrock
        .request(
            &target("", Some("bedrock-api-key"), &none),
            Endpoint::Chat,
            &chat,
            false,
        )
        .unwrap();
    assert_eq!(header(&r, "authorization"), Some("Bearer bedrock-api-key"));
    assert!(Bedrock
        .request(&target("", None, &s), Endpoint::Chat, &chat, false)
        .unwrap_err()
        .0
        .contains("credentials"));
    assert!(Bedrock
        .request(
            &target("", Some("k"), &s),
            Endpoint::Responses,
            &chat,
            false
        )
        .is_err());
}

#[test]
fn chat_mapping_merges_turns_and_maps_tools() {
    let body = json!({
        "model": "m",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": [{"type": "text", "text": "Use metric."}]},
            {"role": "user", "content": "Weather in Oslo?"},
            {"role": "user", "content": [
                {"type": "text", "text": "And this picture?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBOR"}}
            ]},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "t1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"}},
                {"id": "t2", "type": "function", "function": {"name": "get_time", "arguments": ""}}
            ]},
            {"role": "tool", "tool_call_id": "t1", "content": "{\"temp\":3}"},
            {"role": "tool", "tool_call_id": "t2", "content": "12:00"},
            {"role": "user", "content": "Thanks"}
        ],
        "max_tokens": 512, "temperature": 0.2, "top_p": 0.9, "stop": "END", "top_k": 5,
        "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather", "parameters": {"type": "object"}}},
                  {"type": "function", "function": {"name": "get_time"}}],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "guardrailConfig": {"guardrailIdentifier": "g", "guardrailVersion": "1"},
        "seed": 3,
    });
    let s = settings(json!({"aws_access_key_id": "AKID"}));
    let r = Bedrock
        .request(&target("", Some("s"), &s), Endpoint::Chat, &body, false)
        .unwrap();
    assert_eq!(
        sent(&r),
        json!({
            "system": [{"text": "Be brief."}, {"text": "Use metric."}],
            "messages": [
                {"role": "user", "content": [
                    {"text": "Weather in Oslo?"},
                    {"text": "And this picture?"},
                    {"image": {"format": "png", "source": {"bytes": "iVBOR"}}}
                ]},
                {"role": "assistant", "content": [
                    {"toolUse": {"toolUseId": "t1", "name": "get_weather", "input": {"city": "Oslo"}}},
                    {"toolUse": {"toolUseId": "t2", "name": "get_time", "input": {}}}
                ]},
                {"role": "user", "content": [
                    {"toolResult": {"toolUseId": "t1", "content": [{"text": "{\"temp\":3}"}]}},
                    {"toolResult": {"toolUseId": "t2", "content": [{"text": "12:00"}]}},
                    {"text": "Thanks"}
                ]}
            ],
            "inferenceConfig": {"maxTokens": 512, "temperature": 0.2, "topP": 0.9, "stopSequences": ["END"]},
            "toolConfig": {
                "tools": [
                    {"toolSpec": {"name": "get_weather", "description": "Weather", "inputSchema": {"json": {"type": "object"}}}},
                    {"toolSpec": {"name": "get_time", "inputSchema": {"json": {"type": "object", "properties": {}}}}}
                ],
                "toolChoice": {"tool": {"name": "get_weather"}}
            },
            "additionalModelRequestFields": {"top_k": 5},
            "guardrailConfig": {"guardrailIdentifier": "g", "guardrailVersion": "1"}
        })
    );
}

#[test]
fn tool_choice_variants_and_refusals() {
    let tools = json!([{"type": "function", "function": {"name": "f"}}]);
    let plain = json!([{"role": "user", "content": "x"}]);
    let chat = |choice: Value, messages: &Value| {
        let body = json!({"messages": messages, "tools": tools, "tool_choice": choice});
        convert::chat(body.as_object().unwrap())
    };
    assert_eq!(
        chat(json!("auto"), &plain).unwrap()["toolConfig"]["toolChoice"],
        json!({"auto": {}})
    );
    assert_eq!(
        chat(json!("required"), &plain).unwrap()["toolConfig"]["toolChoice"],
        json!({"any": {}})
    );
    // `none`: no tools at all, unless the history holds tool blocks.
    assert!(chat(json!("none"), &plain)
        .unwrap()
        .get("toolConfig")
        .is_none());
    let history = json!([
        {"role": "user", "content": "x"},
        {"role": "assistant", "tool_calls": [{"id": "a", "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "a", "content": "ok"}
    ]);
    let config = &chat(json!("none"), &history).unwrap()["toolConfig"];
    assert!(config.get("tools").is_some() && config.get("toolChoice").is_none());

    let bad = |body: Value| convert::chat(body.as_object().unwrap()).unwrap_err().0;
    assert!(bad(json!({"messages": plain, "n": 2})).contains("n must be 1"));
    assert!(bad(json!({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}]})).contains("data: URIs"));
    assert!(bad(json!({"messages": [{"role": "assistant", "tool_calls": [{"id": "a", "function": {"name": "f", "arguments": "{oops"}}]}]})).contains("not JSON"));
}

#[test]
fn completions_and_embeddings_requests() {
    let s = settings(json!({"aws_access_key_id": "AKID"}));
    let t = target("", Some("s"), &s);
    let r = Bedrock
        .request(
            &t,
            Endpoint::Completions,
            &json!({"model": "m", "prompt": "Say hi", "max_tokens": 16}),
            false,
        )
        .unwrap();
    assert_eq!(
        sent(&r),
        json!({"messages": [{"role": "user", "content": [{"text": "Say hi"}]}], "inferenceConfig": {"maxTokens": 16}})
    );
    assert!(Bedrock
        .request(
            &t,
            Endpoint::Completions,
            &json!({"model": "m", "prompt": "x", "echo": true}),
            false
        )
        .is_err());

    let r = Bedrock
        .request(&t, Endpoint::Embeddings, &json!({"model": "amazon.titan-embed-text-v2:0", "input": ["hello"], "dimensions": 256}), false)
        .unwrap();
    assert!(r
        .url
        .ends_with("/model/amazon.titan-embed-text-v2%3A0/invoke"));
    assert_eq!(sent(&r), json!({"inputText": "hello", "dimensions": 256}));
    let err = Bedrock
        .request(
            &t,
            Endpoint::Embeddings,
            &json!({"model": "amazon.titan-embed-text-v2:0", "input": ["a", "b"]}),
            false,
        )
        .unwrap_err();
    assert!(err.0.contains("one input per request"));
    let r = Bedrock
        .request(
            &t,
            Endpoint::Embeddings,
            &json!({"model": "cohere.embed-english-v3", "input": ["a", "b"]}),
            false,
        )
        .unwrap();
    assert_eq!(
        sent(&r),
        json!({"texts": ["a", "b"], "input_type": "search_document"})
    );
}

#[test]
fn whole_response_maps_text_tools_and_cache_usage() {
    let body = json!({
        "output": {"message": {"role": "assistant", "content": [
            {"text": "Checking."},
            {"toolUse": {"toolUseId": "t1", "name": "get_weather", "input": {"city": "Oslo"}}}
        ]}},
        "stopReason": "tool_use",
        "usage": {"inputTokens": 10, "outputTokens": 5, "totalTokens": 45, "cacheReadInputTokens": 20, "cacheWriteInputTokens": 10},
        "metrics": {"latencyMs": 100}
    });
    let v = Bedrock
        .response(Endpoint::Chat, body.to_string().as_bytes(), "claude")
        .unwrap();
    assert!(v["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["model"], "claude");
    let choice = &v["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert_eq!(choice["message"]["content"], "Checking.");
    assert_eq!(
        choice["message"]["tool_calls"],
        json!([{"id": "t1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"}}])
    );
    assert_eq!(
        v["usage"],
        json!({"prompt_tokens": 40, "completion_tokens": 5, "total_tokens": 45,
               "prompt_tokens_details": {"cached_tokens": 20}, "completion_tokens_details": {"reasoning_tokens": 0}})
    );

    let only_tool = json!({"output": {"message": {"content": [{"toolUse": {"toolUseId": "t", "name": "f", "input": {}}}]}}, "stopReason": "tool_use"});
    let v = Bedrock
        .response(Endpoint::Chat, only_tool.to_string().as_bytes(), "m")
        .unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], Value::Null);

    let text = json!({"output": {"message": {"content": [{"text": "Hi"}]}}, "stopReason": "max_tokens", "usage": {"inputTokens": 1, "outputTokens": 2}});
    let v = Bedrock
        .response(Endpoint::Completions, text.to_string().as_bytes(), "m")
        .unwrap();
    assert_eq!(v["object"], "text_completion");
    assert_eq!(v["choices"][0]["text"], "Hi");
    assert_eq!(v["choices"][0]["finish_reason"], "length");
    assert!(Bedrock.response(Endpoint::Chat, b"not json", "m").is_err());
}

#[test]
fn embeddings_response_is_an_openai_list() {
    let v = Bedrock
        .response(
            Endpoint::Embeddings,
            br#"{"embedding":[0.5,-0.25],"inputTextTokenCount":3}"#,
            "titan",
        )
        .unwrap();
    assert_eq!(
        v,
        json!({"object": "list", "data": [{"object": "embedding", "index": 0, "embedding": [0.5, -0.25]}],
               "model": "titan", "usage": {"prompt_tokens": 3, "total_tokens": 3}})
    );
    let v = Bedrock
        .response(
            Endpoint::Embeddings,
            br#"{"embeddings":[[1.0],[2.0]],"id":"x"}"#,
            "cohere",
        )
        .unwrap();
    assert_eq!(v["data"][1]["index"], 1);
    assert_eq!(v["data"][1]["embedding"], json!([2.0]));
}

#[test]
fn errors_are_normalised() {
    let p = find("bedrock").unwrap();
    let (status, body) = Bedrock.error(
        p,
        429,
        br#"{"message":"Too many requests, please wait before trying again."}"#,
    );
    assert_eq!(status, 429);
    assert_eq!(body["error"]["type"], "rate_limit_error");
    assert_eq!(
        body["error"]["message"],
        "bedrock error: Too many requests, please wait before trying again."
    );
    let (status, body) = Bedrock.error(p, 503, br#"{"Message":"Service unavailable"}"#);
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (503, json!("overloaded"))
    );
    assert_eq!(
        body["error"]["message"],
        "bedrock error: Service unavailable"
    );
    let (status, _) = Bedrock.error(p, 403, br#"{"message":"The request signature we calculated does not match the signature you provided."}"#);
    assert_eq!(status, 401);
    let (status, body) = Bedrock.error(
        p,
        403,
        br#"{"message":"You don't have access to the model with the specified model ID."}"#,
    );
    assert_eq!(
        (status, body["error"]["type"].clone()),
        (403, json!("permission_error"))
    );
    assert_eq!(Bedrock.error(p, 424, b"{\"message\":\"x\"}").0, 502);
    assert_eq!(Bedrock.error(p, 408, b"{\"message\":\"x\"}").0, 504);
    let (status, body) = Bedrock.error(p, 500, b"<html>oops</html>");
    assert_eq!(status, 500);
    assert_eq!(body["error"]["message"], "bedrock error: <html>oops</html>");
}
