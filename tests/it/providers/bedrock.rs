//! AWS Bedrock: Converse (`/model/{id}/converse`) and ConverseStream (`/converse-stream`, AWS
//! event-stream binary frames), SigV4-signed. The upstream here checks the signature itself,
//! with its own SigV4 implementation, over the bytes it received.

use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::{
    assert_completion, assert_text_stream, assert_upstream_error, assert_usage, chat, chunks,
    finish_reasons, gateway, only_request, post, streamed_text, streamed_tool_calls, tool_answer,
    tool_question, usage_chunks,
};
use crate::common::TestEnv;
use crate::upstream::{Recorded, Reply, Upstream};

const AKID: &str = "AKIDEXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const REGION: &str = "eu-west-1";
const MODEL: &str = "anthropic.claude-3-5-sonnet-20240620-v1:0";
/// The model id is one path segment: its `:` is percent-encoded.
const MODEL_PATH: &str = "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0";

fn start(upstream: &Upstream) -> TestEnv {
    gateway(
        "aws",
        "bedrock",
        SECRET,
        json!({"custom_host": upstream.url, "aws_region": REGION, "aws_access_key_id": AKID}),
    )
}

fn model_ref() -> String {
    format!("@aws/{MODEL}")
}

// ---- AWS event-stream frames ----

/// CRC-32/IEEE.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

/// One event-stream message: prelude (total length, headers length, CRC), string headers,
/// payload, message CRC.
fn frame(headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
    let mut h = Vec::new();
    for (name, value) in headers {
        h.push(name.len() as u8);
        h.extend_from_slice(name.as_bytes());
        h.push(7); // string
        h.extend_from_slice(&(value.len() as u16).to_be_bytes());
        h.extend_from_slice(value.as_bytes());
    }
    let total = 12 + h.len() + payload.len() + 4;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&(total as u32).to_be_bytes());
    out.extend_from_slice(&(h.len() as u32).to_be_bytes());
    let prelude_crc = crc32(&out);
    out.extend_from_slice(&prelude_crc.to_be_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(payload);
    let crc = crc32(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

/// A ConverseStream event, with the padding field `p` AWS adds.
fn event(kind: &str, mut payload: Value) -> Vec<u8> {
    payload["p"] = json!("abcdefghijklmnopqrstuvwxyzABCDEFGH");
    frame(
        &[
            (":event-type", kind),
            (":content-type", "application/json"),
            (":message-type", "event"),
        ],
        payload.to_string().as_bytes(),
    )
}

fn exception(kind: &str, message: &str) -> Vec<u8> {
    frame(
        &[
            (":exception-type", kind),
            (":content-type", "application/json"),
            (":message-type", "exception"),
        ],
        json!({"message": message}).to_string().as_bytes(),
    )
}

/// The frames back to back, cut into `pieces` reads at odd places (mid-prelude, mid-payload).
fn event_stream(frames: &[Vec<u8>], pieces: usize) -> Reply {
    let all: Vec<u8> = frames.concat();
    let step = all.len() / pieces + 1;
    let chunks = all
        .chunks(step)
        .map(|c| (Duration::ZERO, c.to_vec()))
        .collect();
    Reply::Chunks {
        content_type: "application/vnd.amazon.eventstream",
        chunks,
    }
}

#[test]
fn the_test_crc_is_crc32_ieee() {
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
}

// ---- SigV4, checked independently ----

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// AWS's URI encoding: unreserved characters kept, everything else `%XX`.
fn aws_encode(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Checks `Authorization: AWS4-HMAC-SHA256 Credential=AKID/<date>/<region>/bedrock/aws4_request,
/// SignedHeaders=..., Signature=...` against the request as received.
#[track_caller]
fn check_signature(r: &Recorded) {
    let auth = r.header("authorization").expect("an Authorization header");
    let rest = auth
        .strip_prefix("AWS4-HMAC-SHA256 ")
        .unwrap_or_else(|| panic!("not SigV4: {auth}"));
    let field = |name: &str| {
        rest.split(", ")
            .find_map(|p| p.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("no {name} in {auth}"))
            .to_string()
    };
    let credential = field("Credential");
    let signed = field("SignedHeaders");
    let signature = field("Signature");
    let amz_date = r.header("x-amz-date").expect("an x-amz-date header");
    assert_eq!(amz_date.len(), 16, "{amz_date}");
    assert!(
        amz_date.as_bytes()[8] == b'T' && amz_date.ends_with('Z'),
        "{amz_date}"
    );
    let date = &amz_date[..8];
    assert_eq!(
        credential,
        format!("{AKID}/{date}/{REGION}/bedrock/aws4_request")
    );
    let names: Vec<&str> = signed.split(';').collect();
    for needed in ["content-type", "host", "x-amz-date"] {
        assert!(names.contains(&needed), "{needed} is not signed: {auth}");
    }
    assert_eq!(signature.len(), 64, "{auth}");

    let (path, query) = r.path.split_once('?').unwrap_or((&r.path, ""));
    let canonical_uri: Vec<String> = path.split('/').map(aws_encode).collect();
    let canonical_headers: String = names
        .iter()
        .map(|n| {
            let value = r
                .header(n)
                .unwrap_or_else(|| panic!("signed header {n} not sent"));
            format!(
                "{n}:{}\n",
                value.split_whitespace().collect::<Vec<_>>().join(" ")
            )
        })
        .collect();
    let canonical = format!(
        "{}\n{}\n{query}\n{canonical_headers}\n{signed}\n{}",
        r.method,
        canonical_uri.join("/"),
        hex(&Sha256::digest(&r.body)),
    );
    let scope = format!("{date}/{REGION}/bedrock/aws4_request");
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex(&Sha256::digest(canonical.as_bytes()))
    );
    let key = [REGION, "bedrock", "aws4_request"].iter().fold(
        hmac(format!("AWS4{SECRET}").as_bytes(), date.as_bytes()),
        |k, part| hmac(&k, part.as_bytes()),
    );
    assert_eq!(
        signature,
        hex(&hmac(&key, to_sign.as_bytes())),
        "the signature does not match the request received; canonical request:\n{canonical}"
    );
}

#[track_caller]
fn check_request(r: &Recorded, action: &str) -> Value {
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, format!("{MODEL_PATH}/{action}"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    check_signature(r);
    r.json()
}

fn converse(content: Value, stop: &str, input: u64, output: u64) -> Value {
    json!({
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": stop,
        "usage": {"inputTokens": input, "outputTokens": output, "totalTokens": input + output},
        "metrics": {"latencyMs": 420},
    })
}

#[test]
fn plain_answer_signed_with_sigv4() {
    let upstream = Upstream::start(|_| {
        Reply::ok(json!({
            "output": {"message": {"role": "assistant", "content": [{"text": "Cold: 3 °C."}]}},
            "stopReason": "end_turn",
            "usage": {"inputTokens": 12, "outputTokens": 4, "totalTokens": 116,
                      "cacheReadInputTokens": 100, "cacheWriteInputTokens": 0},
            "metrics": {"latencyMs": 420},
        }))
    });
    let env = start(&upstream);
    let answer = chat(
        &env,
        &json!({
            "model": model_ref(),
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "What is the weather in Oslo?"},
            ],
            "max_tokens": 100, "temperature": 0.5, "top_p": 0.9, "stop": ["END"],
        }),
    );
    assert_eq!(answer.status, 200, "{answer}");
    assert_eq!(answer.header("x-portkey-provider"), Some("bedrock"));
    let v = answer.json();
    assert_completion(&v, Some("Cold: 3 °C."), "stop");
    assert_eq!(v["model"], MODEL);
    // inputTokens excludes cache reads: prompt = 12 + 100.
    assert_usage(&v["usage"], 112, 4);
    assert_eq!(v["usage"]["prompt_tokens_details"]["cached_tokens"], 100);

    let sent = check_request(&only_request(&upstream), "converse");
    assert_eq!(
        sent,
        json!({
            "system": [{"text": "Be brief."}],
            "messages": [{"role": "user", "content": [{"text": "What is the weather in Oslo?"}]}],
            "inferenceConfig": {"maxTokens": 100, "temperature": 0.5, "topP": 0.9, "stopSequences": ["END"]},
        })
    );
}

#[test]
fn stream_of_event_stream_frames_split_anywhere() {
    let upstream = Upstream::start(|_| {
        event_stream(
            &[
                event("messageStart", json!({"role": "assistant"})),
                event(
                    "contentBlockDelta",
                    json!({"contentBlockIndex": 0, "delta": {"text": "Cold"}}),
                ),
                event(
                    "contentBlockDelta",
                    json!({"contentBlockIndex": 0, "delta": {"text": ": 3 °C"}}),
                ),
                event(
                    "contentBlockDelta",
                    json!({"contentBlockIndex": 0, "delta": {"text": " and snow."}}),
                ),
                event("contentBlockStop", json!({"contentBlockIndex": 0})),
                event("messageStop", json!({"stopReason": "end_turn"})),
                event(
                    "metadata",
                    json!({"usage": {"inputTokens": 12, "outputTokens": 6, "totalTokens": 18},
                                         "metrics": {"latencyMs": 300}}),
                ),
            ],
            7,
        )
    });
    let env = start(&upstream);
    let mut body = json!({"model": model_ref(), "stream": true,
                          "messages": [{"role": "user", "content": "Weather in Oslo?"}]});
    let got = chunks(&chat(&env, &body));
    assert_text_stream(&got, "Cold: 3 °C and snow.", "stop", None);

    body["stream_options"] = json!({"include_usage": true});
    let got = chunks(&chat(&env, &body));
    assert_text_stream(&got, "Cold: 3 °C and snow.", "stop", Some((12, 6)));

    for r in upstream.requests() {
        let sent = check_request(&r, "converse-stream");
        assert!(sent.get("stream").is_none(), "{sent:#}");
    }
}

#[test]
fn streamed_tool_call() {
    let upstream = Upstream::start(|_| {
        event_stream(
            &[
                event("messageStart", json!({"role": "assistant"})),
                event(
                    "contentBlockDelta",
                    json!({"contentBlockIndex": 0, "delta": {"text": "Checking."}}),
                ),
                event("contentBlockStop", json!({"contentBlockIndex": 0})),
                event(
                    "contentBlockStart",
                    json!({"contentBlockIndex": 1, "start": {"toolUse":
                    {"toolUseId": "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q", "name": "get_weather"}}}),
                ),
                event(
                    "contentBlockDelta",
                    json!({"contentBlockIndex": 1, "delta": {"toolUse": {"input": "{\"city\":"}}}),
                ),
                event(
                    "contentBlockDelta",
                    json!({"contentBlockIndex": 1, "delta": {"toolUse": {"input": "\"Oslo\"}"}}}),
                ),
                event("contentBlockStop", json!({"contentBlockIndex": 1})),
                event("messageStop", json!({"stopReason": "tool_use"})),
                event(
                    "metadata",
                    json!({"usage": {"inputTokens": 300, "outputTokens": 40, "totalTokens": 340},
                                         "metrics": {"latencyMs": 500}}),
                ),
            ],
            3,
        )
    });
    let env = start(&upstream);
    let mut body = tool_question(&model_ref());
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let got = chunks(&chat(&env, &body));
    assert_eq!(streamed_text(&got), "Checking.");
    assert_eq!(
        streamed_tool_calls(&got),
        vec![(
            "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q".to_string(),
            "get_weather".to_string(),
            "{\"city\":\"Oslo\"}".to_string()
        )]
    );
    assert_eq!(finish_reasons(&got), vec!["tool_calls"]);
    assert_usage(&usage_chunks(&got)[0]["usage"], 300, 40);
}

#[test]
fn tool_call_round_trip() {
    let upstream = Upstream::start(|r| {
        let sent = r.json();
        let last = &sent["messages"].as_array().unwrap().last().unwrap()["content"][0];
        if last.get("toolResult").is_some() {
            return Reply::ok(converse(
                json!([{"text": "3 °C and snowing."}]),
                "end_turn",
                40,
                8,
            ));
        }
        Reply::ok(converse(
            json!([{"text": "I'll check."},
                   {"toolUse": {"toolUseId": "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q", "name": "get_weather",
                                "input": {"city": "Oslo"}}}]),
            "tool_use",
            30,
            9,
        ))
    });
    let env = start(&upstream);

    let answer = chat(&env, &tool_question(&model_ref()));
    assert_eq!(answer.status, 200, "{answer}");
    let v = answer.json();
    let choice = assert_completion(&v, Some("I'll check."), "tool_calls");
    let call = &choice["message"]["tool_calls"][0];
    assert_eq!(call["id"], "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q");
    assert_eq!(call["function"]["name"], "get_weather");
    let args = call["function"]["arguments"].as_str().unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(args).unwrap(),
        json!({"city": "Oslo"})
    );

    let answer = chat(
        &env,
        &tool_answer(&model_ref(), "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q", args),
    );
    assert_eq!(answer.status, 200, "{answer}");
    assert_completion(&answer.json(), Some("3 °C and snowing."), "stop");

    let requests = upstream.requests();
    assert_eq!(requests.len(), 2);
    let first = check_request(&requests[0], "converse");
    assert_eq!(
        first["toolConfig"],
        json!({"tools": [{"toolSpec": {"name": "get_weather", "description": "The current weather in a city",
            "inputSchema": {"json": {"type": "object", "properties": {"city": {"type": "string"}},
                                     "required": ["city"]}}}}],
               "toolChoice": {"auto": {}}})
    );
    assert_eq!(first["system"], json!([{"text": "Be brief."}]));
    let second = check_request(&requests[1], "converse");
    assert_eq!(
        second["messages"],
        json!([
            {"role": "user", "content": [{"text": "What is the weather in Oslo?"}]},
            {"role": "assistant", "content": [{"toolUse": {"toolUseId": "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q",
                                                           "name": "get_weather", "input": {"city": "Oslo"}}}]},
            {"role": "user", "content": [{"toolResult": {"toolUseId": "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q",
                                                         "content": [{"text": "{\"temp_c\":3,\"sky\":\"snow\"}"}]}}]},
        ])
    );
    assert!(second["toolConfig"]["tools"].is_array(), "{second:#}");
}

fn error_answer(status: u16, kind: &str, message: &str) -> crate::common::HttpAnswer {
    let header = format!("{kind}:http://internal.amazon.com/coral/com.amazon.bedrock/");
    let body = json!({"message": message});
    let upstream = Upstream::start(move |_| {
        Reply::Json(
            status,
            body.clone(),
            vec![("x-amzn-errortype", header.clone())],
        )
    });
    let env = start(&upstream);
    let answer = chat(
        &env,
        &json!({"model": model_ref(), "messages": [{"role": "user", "content": "hi"}]}),
    );
    only_request(&upstream);
    answer
}

#[test]
fn throttling_is_a_429() {
    let message = "Too many requests, please wait before trying again.";
    let answer = error_answer(429, "ThrottlingException", message);
    assert_upstream_error(&answer, 429, "bedrock", "rate_limit_error", message);
}

#[test]
fn validation_is_a_400() {
    let message = "The model returned the following errors: messages: roles must alternate between \"user\" and \"assistant\"";
    let answer = error_answer(400, "ValidationException", message);
    assert_upstream_error(&answer, 400, "bedrock", "invalid_request_error", message);
}

#[test]
fn service_unavailable_is_a_503_overloaded() {
    let message = "Bedrock is unable to process your request.";
    let answer = error_answer(503, "ServiceUnavailableException", message);
    let body = assert_upstream_error(&answer, 503, "bedrock", "server_error", message);
    assert_eq!(body["error"]["code"], "overloaded");
}

#[test]
fn a_rejected_signature_is_a_401() {
    let message = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";
    let answer = error_answer(403, "InvalidSignatureException", message);
    assert_upstream_error(&answer, 401, "bedrock", "authentication_error", message);
}

#[test]
fn an_exception_frame_mid_stream_ends_the_stream_with_an_error() {
    let upstream = Upstream::start(|_| {
        event_stream(
            &[
                event("messageStart", json!({"role": "assistant"})),
                event(
                    "contentBlockDelta",
                    json!({"contentBlockIndex": 0, "delta": {"text": "Cold"}}),
                ),
                exception(
                    "throttlingException",
                    "Too many tokens, please wait before trying again.",
                ),
            ],
            2,
        )
    });
    let env = start(&upstream);
    let answer = chat(
        &env,
        &json!({"model": model_ref(), "stream": true, "messages": [{"role": "user", "content": "hi"}]}),
    );
    assert_eq!(answer.status, 200, "{answer}");
    let events = answer.events();
    let n = events.len();
    assert_eq!(events[n - 1].data, "[DONE]", "{answer}");
    let error: Value = serde_json::from_str(&events[n - 2].data).unwrap();
    assert_eq!(error["error"]["type"], "rate_limit_error", "{answer}");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Too many tokens"),
        "{answer}"
    );
}

#[test]
fn titan_embeddings_through_invoke() {
    let upstream = Upstream::start(|_| {
        Reply::ok(json!({"embedding": [0.125, -0.5, 0.75], "inputTextTokenCount": 2}))
    });
    let env = start(&upstream);
    let answer = post(
        &env,
        "/v1/embeddings",
        &json!({"model": "@aws/amazon.titan-embed-text-v2:0", "input": "hello world", "dimensions": 256}),
    );
    assert_eq!(answer.status, 200, "{answer}");
    let v = answer.json();
    assert_eq!(
        v["data"],
        json!([{"object": "embedding", "index": 0, "embedding": [0.125, -0.5, 0.75]}])
    );
    assert_eq!(v["usage"]["prompt_tokens"], 2);
    let r = only_request(&upstream);
    assert_eq!(r.path, "/model/amazon.titan-embed-text-v2%3A0/invoke");
    check_signature(&r);
    assert_eq!(
        r.json(),
        json!({"inputText": "hello world", "dimensions": 256})
    );
}

/// Without `aws_access_key_id` the integration's key is a Bedrock API key, sent as a bearer.
#[test]
fn a_bedrock_api_key_is_a_bearer_token() {
    let upstream =
        Upstream::start(|_| Reply::ok(converse(json!([{"text": "hi"}]), "end_turn", 1, 1)));
    let env = gateway(
        "aws-key",
        "bedrock",
        "ABSKbedrockapikey123",
        json!({"custom_host": upstream.url, "aws_region": REGION}),
    );
    let answer = chat(
        &env,
        &json!({"model": format!("@aws-key/{MODEL}"), "messages": [{"role": "user", "content": "hi"}]}),
    );
    assert_eq!(answer.status, 200, "{answer}");
    let r = only_request(&upstream);
    assert_eq!(
        r.header("authorization"),
        Some("Bearer ABSKbedrockapikey123")
    );
    assert!(r.header("x-amz-date").is_none());
}

/// Converse needs strict user/assistant alternation: two tool results go in one user turn.
#[test]
fn parallel_tool_results_share_one_user_turn() {
    let upstream = Upstream::start(|_| {
        Reply::ok(converse(
            json!([{"text": "Oslo 3 °C, Bergen 8 °C."}]),
            "end_turn",
            50,
            9,
        ))
    });
    let env = start(&upstream);
    let call = |id: &str, city: &str| {
        json!({"id": id, "type": "function",
               "function": {"name": "get_weather", "arguments": format!("{{\"city\":\"{city}\"}}")}})
    };
    let answer = chat(
        &env,
        &json!({
            "model": model_ref(), "tools": [super::weather_tool()], "tool_choice": "required",
            "messages": [
                {"role": "user", "content": "Oslo and Bergen?"},
                {"role": "assistant", "content": null, "tool_calls": [call("t1", "Oslo"), call("t2", "Bergen")]},
                {"role": "tool", "tool_call_id": "t1", "content": "3 °C"},
                {"role": "tool", "tool_call_id": "t2", "content": "8 °C"},
            ],
        }),
    );
    assert_eq!(answer.status, 200, "{answer}");
    assert_completion(&answer.json(), Some("Oslo 3 °C, Bergen 8 °C."), "stop");
    let sent = check_request(&only_request(&upstream), "converse");
    assert_eq!(sent["toolConfig"]["toolChoice"], json!({"any": {}}));
    assert_eq!(
        sent["messages"],
        json!([
            {"role": "user", "content": [{"text": "Oslo and Bergen?"}]},
            {"role": "assistant", "content": [
                {"toolUse": {"toolUseId": "t1", "name": "get_weather", "input": {"city": "Oslo"}}},
                {"toolUse": {"toolUseId": "t2", "name": "get_weather", "input": {"city": "Bergen"}}},
            ]},
            {"role": "user", "content": [
                {"toolResult": {"toolUseId": "t1", "content": [{"text": "3 °C"}]}},
                {"toolResult": {"toolUseId": "t2", "content": [{"text": "8 °C"}]}},
            ]},
        ])
    );
}
