//! Google Gemini API: `{custom_host}/models/{model}:generateContent` and
//! `:streamGenerateContent?alt=sse` with `x-goog-api-key`; `contents`/`systemInstruction`/
//! `generationConfig` out, `candidates`/`usageMetadata` back; function calls as `functionCall`
//! parts and results as `functionResponse` parts. The scenarios are shared with Vertex AI,
//! which speaks the same body format under another address and auth.

use base64::Engine;
use serde_json::{json, Value};

use super::{
    assert_completion, assert_text_stream, assert_upstream_error, assert_usage, chat, chunks, data,
    finish_reasons, gateway, only_request, post, post_portkey, streamed_tool_calls, tool_answer,
    tool_question,
};
use crate::common::TestEnv;
use crate::upstream::{Recorded, Reply, Upstream};

/// How one Google provider is reached.
pub struct Google {
    pub provider: &'static str,
    pub slug: &'static str,
    pub key: &'static str,
    pub model: &'static str,
    /// `custom_host` = the upstream's URL + this.
    pub base_suffix: &'static str,
    pub settings: Value,
    /// The path before `:method`, e.g. `/v1beta/models/gemini-2.5-flash`.
    pub model_path: &'static str,
    /// The header carrying the credential, and its value.
    pub auth: (&'static str, &'static str),
}

impl Google {
    pub fn start(&self, upstream: &Upstream) -> TestEnv {
        let mut settings = self.settings.clone();
        settings["custom_host"] = format!("{}{}", upstream.url, self.base_suffix).into();
        gateway(self.slug, self.provider, self.key, settings)
    }

    pub fn model_ref(&self) -> String {
        format!("@{}/{}", self.slug, self.model)
    }

    /// Checks method, path (`{model_path}:{method}`), auth; returns the body.
    #[track_caller]
    pub fn check(&self, r: &Recorded, method: &str) -> Value {
        assert_eq!(r.method, "POST");
        assert_eq!(r.path, format!("{}:{method}", self.model_path));
        assert_eq!(r.header(self.auth.0), Some(self.auth.1), "{r:#?}");
        assert_eq!(r.header("content-type"), Some("application/json"));
        if self.auth.0 != "authorization" {
            assert!(r.header("authorization").is_none(), "{r:#?}");
        }
        assert!(!r.path.contains("key="), "the key stays out of the URL");
        r.json()
    }
}

fn gemini() -> Google {
    Google {
        provider: "google",
        slug: "gem",
        key: "AIzaSyTestKey0123456789",
        model: "gemini-2.5-flash",
        base_suffix: "/v1beta",
        settings: json!({}),
        model_path: "/v1beta/models/gemini-2.5-flash",
        auth: ("x-goog-api-key", "AIzaSyTestKey0123456789"),
    }
}

fn candidate(parts: Value, finish: Option<&str>) -> Value {
    let mut c = json!({"content": {"role": "model", "parts": parts}, "index": 0});
    if let Some(f) = finish {
        c["finishReason"] = f.into();
        c["safetyRatings"] =
            json!([{"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"}]);
    }
    c
}

fn response(model: &str, parts: Value, finish: Option<&str>, usage: Value) -> Value {
    json!({"candidates": [candidate(parts, finish)], "usageMetadata": usage,
           "modelVersion": model, "responseId": "mvdRaLXhM9SVz7IPw5XX4Qg"})
}

pub fn plain(g: &Google) {
    let model = g.model;
    let upstream = Upstream::start(move |_| {
        Reply::ok(response(
            model,
            json!([{"text": "Cold: 3 °C."}]),
            Some("STOP"),
            json!({"promptTokenCount": 12, "candidatesTokenCount": 4, "thoughtsTokenCount": 10,
                   "totalTokenCount": 26, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 12}]}),
        ))
    });
    let env = g.start(&upstream);
    let answer = chat(
        &env,
        &json!({
            "model": g.model_ref(),
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "What is the weather in Oslo?"},
            ],
            "max_tokens": 100, "temperature": 0.5, "top_p": 0.9, "stop": "END", "user": "u-1",
        }),
    );
    assert_eq!(answer.status, 200, "{answer}");
    assert_eq!(answer.header("x-portkey-provider"), Some(g.provider));
    let v = answer.json();
    assert_completion(&v, Some("Cold: 3 °C."), "stop");
    assert_eq!(v["model"], g.model);
    // Thoughts count as completion (and reasoning) tokens.
    assert_usage(&v["usage"], 12, 14);
    assert_eq!(
        v["usage"]["completion_tokens_details"]["reasoning_tokens"],
        10
    );

    let sent = g.check(&only_request(&upstream), "generateContent");
    assert_eq!(
        sent,
        json!({
            "contents": [{"role": "user", "parts": [{"text": "What is the weather in Oslo?"}]}],
            "systemInstruction": {"parts": [{"text": "Be brief."}]},
            "generationConfig": {"temperature": 0.5, "topP": 0.9, "maxOutputTokens": 100,
                                 "stopSequences": ["END"]},
        })
    );
}

pub fn stream(g: &Google) {
    let model = g.model;
    let upstream = Upstream::start(move |_| {
        let usage = |n: u64| json!({"promptTokenCount": 12, "candidatesTokenCount": n, "totalTokenCount": 12 + n});
        // Google separates events with CRLF.
        let events = [
            data(response(model, json!([{"text": "Cold"}]), None, usage(1)))
                .replace("\n\n", "\r\n\r\n"),
            data(response(model, json!([{"text": ": 3 °C"}]), None, usage(4)))
                .replace("\n\n", "\r\n\r\n"),
            data(response(
                model,
                json!([{"text": " and snow."}]),
                Some("STOP"),
                usage(6),
            ))
            .replace("\n\n", "\r\n\r\n"),
        ];
        let refs: Vec<&str> = events.iter().map(String::as_str).collect();
        Reply::sse(&refs)
    });
    let env = g.start(&upstream);
    let mut body = json!({"model": g.model_ref(), "stream": true,
                          "messages": [{"role": "user", "content": "Weather in Oslo?"}]});
    let got = chunks(&chat(&env, &body));
    assert_text_stream(&got, "Cold: 3 °C and snow.", "stop", None);

    body["stream_options"] = json!({"include_usage": true});
    let got = chunks(&chat(&env, &body));
    assert_text_stream(&got, "Cold: 3 °C and snow.", "stop", Some((12, 6)));

    let requests = upstream.requests();
    assert_eq!(requests.len(), 2);
    for r in &requests {
        let sent = g.check(r, "streamGenerateContent?alt=sse");
        assert!(sent.get("stream").is_none(), "{sent:#}");
        assert!(sent.get("stream_options").is_none(), "{sent:#}");
    }
}

pub fn tools(g: &Google) {
    let model = g.model;
    let upstream = Upstream::start(move |r| {
        let sent = r.json();
        let last = sent["contents"].as_array().unwrap().last().unwrap().clone();
        if last["parts"][0].get("functionResponse").is_some() {
            return Reply::ok(response(
                model,
                json!([{"text": "3 °C and snowing."}]),
                Some("STOP"),
                json!({"promptTokenCount": 40, "candidatesTokenCount": 8, "totalTokenCount": 48}),
            ));
        }
        Reply::ok(response(
            model,
            json!([{"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}}]),
            Some("STOP"),
            json!({"promptTokenCount": 30, "candidatesTokenCount": 9, "totalTokenCount": 39}),
        ))
    });
    let env = g.start(&upstream);
    // JSON Schema keywords Google rejects must not reach it.
    let mut question = tool_question(&g.model_ref());
    let params = &mut question["tools"][0]["function"]["parameters"];
    params["$schema"] = json!("http://json-schema.org/draft-07/schema#");
    params["additionalProperties"] = json!(false);
    question["tools"][0]["function"]["strict"] = json!(true);

    let answer = chat(&env, &question);
    assert_eq!(answer.status, 200, "{answer}");
    let v = answer.json();
    let choice = assert_completion(&v, None, "tool_calls");
    let call = &choice["message"]["tool_calls"][0];
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], "get_weather");
    let id = call["id"]
        .as_str()
        .expect("a generated call id")
        .to_string();
    assert!(!id.is_empty());
    let args = call["function"]["arguments"].as_str().unwrap().to_string();
    assert_eq!(
        serde_json::from_str::<Value>(&args).unwrap(),
        json!({"city": "Oslo"})
    );

    let answer = chat(&env, &tool_answer(&g.model_ref(), &id, &args));
    assert_eq!(answer.status, 200, "{answer}");
    let v = answer.json();
    assert_completion(&v, Some("3 °C and snowing."), "stop");
    assert_usage(&v["usage"], 40, 8);

    let requests = upstream.requests();
    assert_eq!(requests.len(), 2);
    let first = g.check(&requests[0], "generateContent");
    assert_eq!(
        first["tools"],
        json!([{"functionDeclarations": [{"name": "get_weather", "description": "The current weather in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]}])
    );
    assert_eq!(
        first["toolConfig"],
        json!({"functionCallingConfig": {"mode": "AUTO"}})
    );
    let second = g.check(&requests[1], "generateContent");
    assert_eq!(
        second["contents"],
        json!([
            {"role": "user", "parts": [{"text": "What is the weather in Oslo?"}]},
            {"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}}]},
            {"role": "user", "parts": [{"functionResponse": {"name": "get_weather",
                                                             "response": {"temp_c": 3, "sky": "snow"}}}]},
        ])
    );
    assert_eq!(
        second["systemInstruction"],
        json!({"parts": [{"text": "Be brief."}]})
    );
}

/// The upstream answers Google's error object; the client gets OpenAI's shape.
pub fn error(g: &Google, status: u16, error: Value, expect: (u16, &str, &str)) -> Value {
    let body = json!({"error": error});
    let upstream = Upstream::start(move |_| Reply::status(status, body.clone()));
    let env = g.start(&upstream);
    let answer = chat(
        &env,
        &json!({"model": g.model_ref(), "messages": [{"role": "user", "content": "hi"}]}),
    );
    only_request(&upstream);
    assert_upstream_error(&answer, expect.0, g.provider, expect.1, expect.2)
}

#[test]
fn plain_answer() {
    plain(&gemini());
}

#[test]
fn stream_over_sse_with_crlf() {
    stream(&gemini());
}

#[test]
fn tool_call_round_trip_strips_unsupported_schema_keywords() {
    tools(&gemini());
}

#[test]
fn streamed_function_calls_arrive_whole() {
    let upstream = Upstream::start(|_| {
        let parts = json!([
            {"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}},
            {"functionCall": {"name": "get_weather", "args": {"city": "Bergen"}}},
        ]);
        let usage =
            json!({"promptTokenCount": 30, "candidatesTokenCount": 12, "totalTokenCount": 42});
        Reply::sse(&[data(response("gemini-2.5-flash", parts, Some("STOP"), usage)).as_str()])
    });
    let env = gemini().start(&upstream);
    let mut body = tool_question("@gem/gemini-2.5-flash");
    body["stream"] = json!(true);
    let got = chunks(&chat(&env, &body));
    let calls = streamed_tool_calls(&got);
    assert_eq!(calls.len(), 2, "{got:#?}");
    assert_ne!(calls[0].0, calls[1].0, "distinct call ids");
    assert_eq!(calls[0].1, "get_weather");
    assert_eq!(
        serde_json::from_str::<Value>(&calls[1].2).unwrap(),
        json!({"city": "Bergen"})
    );
    assert_eq!(finish_reasons(&got), vec!["tool_calls"]);
}

/// The provider named by `x-portkey-provider` with a bare model, and the Portkey key header.
#[test]
fn provider_header_with_a_bare_model() {
    let upstream = Upstream::start(|_| {
        Reply::ok(response(
            "gemini-2.5-pro",
            json!([{"text": "Hi."}]),
            Some("MAX_TOKENS"),
            json!({"promptTokenCount": 2, "candidatesTokenCount": 1, "totalTokenCount": 3}),
        ))
    });
    let env = gemini().start(&upstream);
    let answer = post_portkey(
        &env,
        "/v1/chat/completions",
        &[("x-portkey-provider", "@gem")],
        &json!({"model": "gemini-2.5-pro", "messages": [{"role": "user", "content": "hi"}]}),
    );
    assert_eq!(answer.status, 200, "{answer}");
    assert_completion(&answer.json(), Some("Hi."), "length");
    assert_eq!(
        only_request(&upstream).path,
        "/v1beta/models/gemini-2.5-pro:generateContent"
    );
}

#[test]
fn an_invalid_api_key_is_a_401() {
    let body = error(
        &gemini(),
        400,
        json!({"code": 400, "message": "API key not valid. Please pass a valid API key.",
               "status": "INVALID_ARGUMENT",
               "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
                            "domain": "googleapis.com",
                            "metadata": {"service": "generativelanguage.googleapis.com"}}]}),
        (
            401,
            "authentication_error",
            "API key not valid. Please pass a valid API key.",
        ),
    );
    assert_eq!(body["error"]["code"], "invalid_api_key");
}

#[test]
fn resource_exhausted_is_a_429() {
    error(
        &gemini(),
        429,
        json!({"code": 429, "message": "Resource has been exhausted (e.g. check quota).",
               "status": "RESOURCE_EXHAUSTED"}),
        (
            429,
            "rate_limit_error",
            "Resource has been exhausted (e.g. check quota).",
        ),
    );
}

#[test]
fn unavailable_is_a_503_overloaded() {
    let body = error(
        &gemini(),
        503,
        json!({"code": 503, "message": "The model is overloaded. Please try again later.",
               "status": "UNAVAILABLE"}),
        (
            503,
            "server_error",
            "The model is overloaded. Please try again later.",
        ),
    );
    assert_eq!(body["error"]["code"], "overloaded");
}

#[test]
fn an_error_in_the_stream_ends_it_with_an_error_event() {
    let upstream = Upstream::start(|_| {
        let usage = json!({"promptTokenCount": 3, "candidatesTokenCount": 1, "totalTokenCount": 4});
        Reply::sse(&[
            data(response("gemini-2.5-flash", json!([{"text": "Cold"}]), None, usage)).as_str(),
            data(json!({"error": {"code": 500, "message": "An internal error has occurred.", "status": "INTERNAL"}})).as_str(),
        ])
    });
    let env = gemini().start(&upstream);
    let answer = chat(
        &env,
        &json!({"model": "@gem/gemini-2.5-flash", "stream": true,
                "messages": [{"role": "user", "content": "hi"}]}),
    );
    assert_eq!(answer.status, 200, "{answer}");
    let events = answer.events();
    let n = events.len();
    assert_eq!(events[n - 1].data, "[DONE]", "{answer}");
    let error: Value = serde_json::from_str(&events[n - 2].data).unwrap();
    assert_eq!(
        error["error"]["message"], "An internal error has occurred.",
        "{answer}"
    );
}

#[test]
fn embeddings_use_batch_embed_contents() {
    let upstream = Upstream::start(|_| {
        Reply::ok(
            json!({"embeddings": [{"values": [0.5, -0.25, 1.0]}, {"values": [1.0, -2.5, 0.0]}]}),
        )
    });
    let env = gemini().start(&upstream);
    let answer = post(
        &env,
        "/v1/embeddings",
        &json!({"model": "@gem/gemini-embedding-001", "input": ["first", "second"], "dimensions": 3}),
    );
    assert_eq!(answer.status, 200, "{answer}");
    let v = answer.json();
    assert_eq!(v["object"], "list");
    assert_eq!(
        v["data"],
        json!([{"object": "embedding", "index": 0, "embedding": [0.5, -0.25, 1.0]},
               {"object": "embedding", "index": 1, "embedding": [1.0, -2.5, 0.0]}])
    );
    assert!(v["usage"]["prompt_tokens"].is_u64(), "{v}");
    let r = only_request(&upstream);
    assert_eq!(
        r.path,
        "/v1beta/models/gemini-embedding-001:batchEmbedContents"
    );
    assert_eq!(r.header("x-goog-api-key"), Some("AIzaSyTestKey0123456789"));
    assert_eq!(
        r.json(),
        json!({"requests": [
            {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "first"}]}, "outputDimensionality": 3},
            {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "second"}]}, "outputDimensionality": 3},
        ]})
    );

    // `encoding_format: base64`: the gateway encodes Google's floats as OpenAI would.
    let answer = post(
        &env,
        "/v1/embeddings",
        &json!({"model": "@gem/gemini-embedding-001", "input": ["first", "second"], "encoding_format": "base64"}),
    );
    assert_eq!(answer.status, 200, "{answer}");
    let bytes: Vec<u8> = [1.0f32, -2.5, 0.0]
        .iter()
        .flat_map(|f| f.to_le_bytes())
        .collect();
    assert_eq!(
        answer.json()["data"][1]["embedding"],
        base64::engine::general_purpose::STANDARD.encode(bytes)
    );
}

/// Gemini 3 signs its function calls; the signature comes back to the client as
/// `function.thought_signature` and must be sent back on that call's part.
#[test]
fn gemini_3_thought_signatures_make_the_round_trip() {
    let upstream = Upstream::start(|r| {
        let sent = r.json();
        let last = sent["contents"].as_array().unwrap().last().unwrap().clone();
        if last["parts"][0].get("functionResponse").is_some() {
            return Reply::ok(response(
                "gemini-3-pro-preview",
                json!([{"text": "Snowing."}]),
                Some("STOP"),
                json!({"promptTokenCount": 40, "candidatesTokenCount": 2, "totalTokenCount": 42}),
            ));
        }
        Reply::ok(response(
            "gemini-3-pro-preview",
            json!([{"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}},
                    "thoughtSignature": "CiQB0e2Kb9c2lnbmF0dXJl"}]),
            Some("STOP"),
            json!({"promptTokenCount": 30, "candidatesTokenCount": 9, "totalTokenCount": 39}),
        ))
    });
    let env = gemini().start(&upstream);
    let answer = chat(&env, &tool_question("@gem/gemini-3-pro-preview"));
    assert_eq!(answer.status, 200, "{answer}");
    let v = answer.json();
    let call = v["choices"][0]["message"]["tool_calls"][0].clone();
    assert_eq!(
        call["function"]["thought_signature"], "CiQB0e2Kb9c2lnbmF0dXJl",
        "{v:#}"
    );

    let mut follow_up = tool_answer(
        "@gem/gemini-3-pro-preview",
        call["id"].as_str().unwrap(),
        call["function"]["arguments"].as_str().unwrap(),
    );
    follow_up["messages"][2]["tool_calls"] = json!([call]);
    let answer = chat(&env, &follow_up);
    assert_eq!(answer.status, 200, "{answer}");
    assert_completion(&answer.json(), Some("Snowing."), "stop");
    let requests = upstream.requests();
    assert_eq!(
        requests[1].path,
        "/v1beta/models/gemini-3-pro-preview:generateContent"
    );
    let second = requests[1].json();
    assert_eq!(
        second["contents"][1]["parts"][0],
        json!({"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}},
               "thoughtSignature": "CiQB0e2Kb9c2lnbmF0dXJl"})
    );
}
