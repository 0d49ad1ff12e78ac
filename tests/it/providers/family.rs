//! The scenarios every OpenAI-shaped provider (OpenAI, Azure OpenAI, Mistral, Groq, any
//! `custom_host`) goes through, parameterised by where the upstream is addressed and how it
//! authenticates. Provider quirks are tested in the providers' own files.

use serde_json::{json, Value};

use super::{
    assert_completion, assert_text_stream, assert_upstream_error, assert_usage, chat, chunks, data,
    gateway, only_request, tool_answer, tool_question, weather_tool,
};
use crate::common::{HttpAnswer, TestEnv};
use crate::upstream::{Recorded, Reply, Upstream};

/// How one OpenAI-shaped provider is reached.
pub struct Family {
    /// The catalogue slug (`openai`, `azure-openai`, `mistral-ai`, ...).
    pub provider: &'static str,
    /// The integration's slug.
    pub slug: &'static str,
    /// The integration's provider key.
    pub key: &'static str,
    /// The bare model id.
    pub model: &'static str,
    /// Appended to the upstream's URL to make `custom_host` (e.g. `/v1`).
    pub base_suffix: &'static str,
    /// More `configurations` (Azure's deployment, ...).
    pub settings: Value,
    /// The path and query the upstream sees for chat completions.
    pub chat_path: &'static str,
    /// The header carrying the provider key, and its value.
    pub auth: (&'static str, &'static str),
}

impl Family {
    pub fn start(&self, upstream: &Upstream) -> TestEnv {
        let mut settings = self.settings.clone();
        settings["custom_host"] = format!("{}{}", upstream.url, self.base_suffix).into();
        gateway(self.slug, self.provider, self.key, settings)
    }

    /// `@slug/model`.
    pub fn model_ref(&self) -> String {
        format!("@{}/{}", self.slug, self.model)
    }

    /// Method, path, content type and provider auth of a request the upstream got; the
    /// tollgate key never reaches the provider.
    #[track_caller]
    pub fn check_request(&self, r: &Recorded, path: &str, env: &TestEnv) {
        assert_eq!(r.method, "POST");
        assert_eq!(r.path, path);
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.header(self.auth.0), Some(self.auth.1), "{r:#?}");
        for (name, value) in &r.headers {
            let value = value.to_str().unwrap_or("");
            assert!(
                !value.contains(&env.admin_key),
                "the tollgate key leaked upstream in {name}"
            );
            assert!(
                !name.as_str().starts_with("x-portkey"),
                "{name} leaked upstream"
            );
        }
    }
}

/// An OpenAI `chat.completion` as the upstream sends it.
pub fn completion(model: &str, message: Value, finish: &str, prompt: u64, done: u64) -> Value {
    json!({
        "id": "chatcmpl-up1", "object": "chat.completion", "created": 1_735_689_600,
        "model": model, "system_fingerprint": "fp_1",
        "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish}],
        "usage": {"prompt_tokens": prompt, "completion_tokens": done, "total_tokens": prompt + done,
                  "prompt_tokens_details": {"cached_tokens": 0},
                  "completion_tokens_details": {"reasoning_tokens": 0}},
    })
}

/// One upstream `chat.completion.chunk` event.
pub fn chunk(model: &str, delta: Value, finish: Option<&str>) -> String {
    data(json!({
        "id": "chatcmpl-up2", "object": "chat.completion.chunk", "created": 1_735_689_600,
        "model": model, "system_fingerprint": "fp_1",
        "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
        "usage": null,
    }))
}

/// The upstream's usage chunk (`choices: []`), as OpenAI sends it for `include_usage`.
pub fn usage_chunk(model: &str, prompt: u64, done: u64) -> String {
    data(json!({
        "id": "chatcmpl-up2", "object": "chat.completion.chunk", "created": 1_735_689_600,
        "model": model, "choices": [],
        "usage": {"prompt_tokens": prompt, "completion_tokens": done, "total_tokens": prompt + done},
    }))
}

fn question(model: &str) -> Value {
    json!({
        "model": model,
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "What is the weather in Oslo?"},
        ],
        "max_tokens": 50,
        "temperature": 0.2,
    })
}

/// A plain answer: the request passes through with the slug stripped from `model`, the answer
/// comes back as OpenAI's `chat.completion`. Returns the request the upstream got.
pub fn plain(f: &Family) -> Recorded {
    let model = f.model;
    let upstream = Upstream::start(move |_| {
        Reply::ok(completion(
            model,
            json!({"role": "assistant", "content": "Cold: 3 °C.", "refusal": null}),
            "stop",
            12,
            4,
        ))
    });
    let env = f.start(&upstream);
    let body = question(&f.model_ref());
    let answer = chat(&env, &body);
    assert_eq!(answer.status, 200, "{answer}");
    assert_eq!(answer.header("x-portkey-provider"), Some(f.provider));
    assert!(answer.header("x-portkey-trace-id").is_some(), "{answer}");
    let v = answer.json();
    assert_completion(&v, Some("Cold: 3 °C."), "stop");
    assert_usage(&v["usage"], 12, 4);

    let r = only_request(&upstream);
    f.check_request(&r, f.chat_path, &env);
    let sent = r.json();
    assert_eq!(sent["model"], f.model, "the slug is stripped: {sent:#}");
    assert_eq!(sent["messages"], body["messages"]);
    assert_eq!(sent["max_tokens"], 50);
    assert!(sent.get("stream").is_none_or(|s| s == false), "{sent:#}");
    assert!(sent.get("stream_options").is_none(), "{sent:#}");
    r
}

/// The upstream's answer to a streamed question: role, three text pieces, a comment, the
/// finish, and the usage chunk when asked for it, then `[DONE]`.
fn text_stream(model: &str, asked_usage: bool) -> Reply {
    let mut events = vec![
        chunk(model, json!({"role": "assistant", "content": ""}), None),
        chunk(model, json!({"content": "Cold"}), None),
        ": OPENROUTER PROCESSING\n\n".to_string(),
        chunk(model, json!({"content": ": 3"}), None),
        chunk(model, json!({"content": " °C."}), None),
        chunk(model, json!({}), Some("stop")),
    ];
    if asked_usage {
        events.push(usage_chunk(model, 12, 4));
    }
    events.push("data: [DONE]\n\n".into());
    let refs: Vec<&str> = events.iter().map(String::as_str).collect();
    Reply::sse(&refs)
}

/// A stream, first without and then with `stream_options.include_usage`: the chunks arrive in
/// order, the usage chunk only when the client asked; upstream is always asked for usage.
pub fn stream(f: &Family) {
    let model = f.model;
    let upstream = Upstream::start(move |r| {
        let asked = r.json()["stream_options"]["include_usage"] == true;
        text_stream(model, asked)
    });
    let env = f.start(&upstream);
    let mut body = question(&f.model_ref());
    body["stream"] = json!(true);

    let got = chunks(&chat(&env, &body));
    assert_text_stream(&got, "Cold: 3 °C.", "stop", None);

    body["stream_options"] = json!({"include_usage": true});
    let got = chunks(&chat(&env, &body));
    assert_text_stream(&got, "Cold: 3 °C.", "stop", Some((12, 4)));

    let requests = upstream.requests();
    assert_eq!(requests.len(), 2);
    for r in &requests {
        f.check_request(r, f.chat_path, &env);
        let sent = r.json();
        assert_eq!(sent["stream"], true);
        assert_eq!(
            sent["stream_options"]["include_usage"], true,
            "streams always ask the upstream for usage: {sent:#}"
        );
        assert_eq!(sent["model"], f.model);
    }
}

/// A tool call round trip: `tool_calls` pass through with JSON-text arguments, then the
/// assistant's call and the tool's result reach the upstream as sent.
pub fn tools(f: &Family, call_id: &str) {
    let (model, id) = (f.model, call_id.to_string());
    let upstream = Upstream::start(move |r| {
        let sent = r.json();
        let last = sent["messages"].as_array().and_then(|m| m.last()).cloned();
        if last.is_some_and(|m| m["role"] == "tool") {
            let message =
                json!({"role": "assistant", "content": "3 °C and snowing.", "refusal": null});
            return Reply::ok(completion(model, message, "stop", 40, 8));
        }
        let message = json!({"role": "assistant", "content": null, "refusal": null,
            "tool_calls": [{"id": id, "type": "function",
                            "function": {"name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"}}]});
        Reply::ok(completion(model, message, "tool_calls", 30, 9))
    });
    let env = f.start(&upstream);

    let answer = chat(&env, &tool_question(&f.model_ref()));
    assert_eq!(answer.status, 200, "{answer}");
    let v = answer.json();
    let choice = assert_completion(&v, None, "tool_calls");
    let call = &choice["message"]["tool_calls"][0];
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], "get_weather");
    let args = call["function"]["arguments"]
        .as_str()
        .expect("arguments are JSON text");
    assert_eq!(
        serde_json::from_str::<Value>(args).unwrap(),
        json!({"city": "Oslo"})
    );
    let returned_id = call["id"].as_str().unwrap().to_string();

    let answer = chat(&env, &tool_answer(&f.model_ref(), &returned_id, args));
    assert_eq!(answer.status, 200, "{answer}");
    let v = answer.json();
    assert_completion(&v, Some("3 °C and snowing."), "stop");
    assert_usage(&v["usage"], 40, 8);

    let requests = upstream.requests();
    assert_eq!(requests.len(), 2);
    let first = requests[0].json();
    assert_eq!(first["tools"], json!([weather_tool()]));
    assert_eq!(first["tool_choice"], "auto");
    let second = requests[1].json();
    f.check_request(&requests[1], f.chat_path, &env);
    let messages = second["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 4, "{second:#}");
    let sent_call = &messages[2]["tool_calls"][0];
    assert_eq!(sent_call["function"]["name"], "get_weather");
    assert_eq!(sent_call["function"]["arguments"], args);
    assert_eq!(messages[3]["role"], "tool");
    assert_eq!(messages[3]["tool_call_id"], sent_call["id"]);
    assert_eq!(messages[3]["content"], "{\"temp_c\":3,\"sky\":\"snow\"}");
}

/// The upstream fails with `status` and `body` (and headers); returns the client's answer
/// after checking the error shape.
pub fn error(
    f: &Family,
    reply: (u16, Value, Vec<(&'static str, String)>),
    expect: (u16, &str, &str),
) -> HttpAnswer {
    let upstream = Upstream::start(move |_| Reply::Json(reply.0, reply.1.clone(), reply.2.clone()));
    let env = f.start(&upstream);
    let answer = chat(&env, &question(&f.model_ref()));
    assert_upstream_error(&answer, expect.0, f.provider, expect.1, expect.2);
    only_request(&upstream);
    answer
}
