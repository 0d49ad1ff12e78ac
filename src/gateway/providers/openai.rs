//! OpenAI, Azure OpenAI and the OpenAI-compatible family (Groq, Together, Fireworks, DeepSeek,
//! xAI, OpenRouter, Perplexity, DeepInfra, Cerebras, Mistral, Ollama, any `custom_host`): the
//! request passes through with small per-provider fix-ups, answers are normalised on the way back.

use serde_json::{json, Map, Value};

use super::adapter::{
    finish_reason, normalised_error, Adapter, AdapterError, Endpoint, StreamError,
    StreamTranslator, Target, UpstreamRequest, Usage,
};
use super::{Provider, WireFormat};
use crate::gateway::sse;

pub struct OpenAi;

const AZURE_API_VERSION: &str = "2024-10-21";
/// The Responses API needs a newer version than chat.
const AZURE_RESPONSES_API_VERSION: &str = "2025-04-01-preview";

/// Providers known to reject `stream_options`; everyone else is asked for streamed usage.
fn rejects_stream_options(slug: &str) -> bool {
    matches!(slug, "mistral-ai" | "perplexity-ai")
}

fn url(target: &Target, endpoint: Endpoint) -> Result<String, AdapterError> {
    let base = target.base_url.trim_end_matches('/');
    if target.provider.wire != WireFormat::AzureOpenAi {
        if base.is_empty() {
            return Err(AdapterError(format!(
                "{} needs a base URL: set custom_host",
                target.provider.slug
            )));
        }
        return Ok(format!("{base}{}", endpoint.openai_path()));
    }
    let host = match (base.is_empty(), target.setting("resource_name")) {
        (false, _) => base.to_string(),
        (true, Some(resource)) => format!("https://{resource}.openai.azure.com"),
        (true, None) => return Err(AdapterError(
            "azure-openai needs resource_name (or custom_host) in the integration's configurations"
                .into(),
        )),
    };
    if endpoint == Endpoint::Responses {
        let version = target
            .setting("api_version")
            .unwrap_or(AZURE_RESPONSES_API_VERSION);
        return Ok(format!("{host}/openai/responses?api-version={version}"));
    }
    let version = target.setting("api_version").unwrap_or(AZURE_API_VERSION);
    let deployment = target.setting("deployment_id").ok_or_else(|| {
        AdapterError("azure-openai needs deployment_id in the integration's configurations".into())
    })?;
    Ok(format!(
        "{host}/openai/deployments/{deployment}{}?api-version={version}",
        endpoint.openai_path()
    ))
}

fn headers(target: &Target) -> Vec<(String, String)> {
    let mut headers = vec![("content-type".to_string(), "application/json".to_string())];
    if let Some(key) = target.api_key.filter(|k| !k.is_empty()) {
        if target.provider.wire == WireFormat::AzureOpenAi {
            headers.push(("api-key".into(), key.into()));
        } else {
            headers.push(("authorization".into(), format!("Bearer {key}")));
        }
    }
    for (setting, header) in [
        ("openai_organization", "openai-organization"),
        ("openai_project", "openai-project"),
    ] {
        if let Some(v) = target.setting(setting) {
            headers.push((header.into(), v.into()));
        }
    }
    headers
}

/// Per-provider request fix-ups (providers.md section 6).
fn fix_request(slug: &str, body: &mut Map<String, Value>) {
    match slug {
        "mistral-ai" => {
            if let Some(seed) = body.remove("seed") {
                body.insert("random_seed".into(), seed);
            }
            if let Some(max) = body.remove("max_completion_tokens") {
                body.entry("max_tokens").or_insert(max);
            }
            if body.get("tool_choice").and_then(Value::as_str) == Some("required") {
                body.insert("tool_choice".into(), json!("any"));
            }
            if let Some(Value::Array(messages)) = body.get_mut("messages") {
                rewrite_tool_call_ids(messages);
            }
        }
        "deepseek" => {
            if let Some(Value::Array(messages)) = body.get_mut("messages") {
                for m in messages.iter_mut().filter_map(Value::as_object_mut) {
                    m.remove("reasoning_content");
                }
            }
        }
        "groq" if body.get("temperature").and_then(Value::as_f64) == Some(0.0) => {
            body.insert("temperature".into(), json!(1e-8));
        }
        _ => {}
    }
}

/// Mistral accepts only tool-call ids of nine letters and digits: others (from another
/// provider, earlier in a conversation) are replaced by a stable nine-character digest, the
/// same for a call and for the tool message that answers it.
fn rewrite_tool_call_ids(messages: &mut [Value]) {
    fn valid(id: &str) -> bool {
        id.len() == 9 && id.bytes().all(|b| b.is_ascii_alphanumeric())
    }
    fn digest(id: &str) -> String {
        const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        // FNV-1a: stable across runs, which is all that is needed here.
        let mut h: u64 = 0xcbf29ce484222325;
        for b in id.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x100000001b3);
        }
        (0..9)
            .map(|i| CHARS[((h >> (i * 7)) % CHARS.len() as u64) as usize] as char)
            .collect()
    }
    let fix = |v: &mut Value| {
        if let Some(id) = v.as_str().filter(|id| !valid(id)) {
            *v = Value::String(digest(id));
        }
    };
    for message in messages.iter_mut() {
        if let Some(calls) = message.get_mut("tool_calls").and_then(Value::as_array_mut) {
            for call in calls {
                if let Some(id) = call.get_mut("id") {
                    fix(id);
                }
            }
        }
        if let Some(id) = message.get_mut("tool_call_id") {
            fix(id);
        }
    }
}

/// Normalises usage extras into OpenAI's fields (DeepSeek cache hits, Groq's `x_groq`).
fn fix_usage(chunk: &mut Map<String, Value>) {
    if let Some(usage) = chunk
        .get_mut("x_groq")
        .and_then(|x| x.get_mut("usage"))
        .map(Value::take)
    {
        chunk.insert("usage".into(), usage);
    }
    if let Some(Value::Object(usage)) = chunk.get_mut("usage") {
        if let Some(hit) = usage.get("prompt_cache_hit_tokens").cloned() {
            usage
                .entry("prompt_tokens_details")
                .or_insert_with(|| json!({}))
                .as_object_mut()
                .map(|d| d.insert("cached_tokens".into(), hit));
        }
    }
}

fn fix_finish_reasons(chunk: &mut Map<String, Value>) {
    if let Some(Value::Array(choices)) = chunk.get_mut("choices") {
        for choice in choices.iter_mut().filter_map(Value::as_object_mut) {
            if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
                let mapped = match reason {
                    "eos" => "stop",
                    "model_length" => "length",
                    other => finish_reason(other),
                };
                choice.insert("finish_reason".into(), json!(mapped));
            }
        }
    }
}

impl Adapter for OpenAi {
    fn request(
        &self,
        target: &Target,
        endpoint: Endpoint,
        body: &Value,
        stream: bool,
    ) -> Result<UpstreamRequest, AdapterError> {
        let url = url(target, endpoint)?;
        // OpenAI itself takes the body as it is, but for the usage request on streams.
        if target.provider.slug == "openai" && !stream && body.is_object() {
            return Ok(UpstreamRequest {
                url,
                headers: headers(target),
                body: serde_json::to_vec(body).expect("a JSON object serialises"),
            });
        }
        let mut body = body
            .as_object()
            .cloned()
            .ok_or_else(|| AdapterError("the request body must be a JSON object".into()))?;
        fix_request(target.provider.slug, &mut body);
        if endpoint == Endpoint::Responses && target.provider.wire == WireFormat::AzureOpenAi {
            if let Some(deployment) = target.setting("deployment_id") {
                body.insert("model".into(), json!(deployment));
            }
        }
        if rejects_stream_options(target.provider.slug) {
            body.remove("stream_options");
        }
        let wants_usage = stream
            && matches!(endpoint, Endpoint::Chat | Endpoint::Completions)
            && !rejects_stream_options(target.provider.slug);
        if wants_usage {
            let options = body.entry("stream_options").or_insert_with(|| json!({}));
            if let Some(o) = options.as_object_mut() {
                o.insert("include_usage".into(), json!(true));
            }
        }
        Ok(UpstreamRequest {
            url,
            headers: headers(target),
            body: serde_json::to_vec(&body).expect("a JSON object serialises"),
        })
    }

    fn response(&self, _: Endpoint, body: &[u8], _model: &str) -> Result<Value, AdapterError> {
        let mut value: Value = serde_json::from_slice(body)
            .map_err(|e| AdapterError(format!("the provider answered invalid JSON: {e}")))?;
        if let Some(obj) = value.as_object_mut() {
            fix_usage(obj);
            fix_finish_reasons(obj);
        }
        Ok(value)
    }

    fn stream(&self, _: Endpoint, _model: &str) -> Box<dyn StreamTranslator> {
        Box::new(Stream::default())
    }

    fn error(&self, provider: &Provider, status: u16, body: &[u8]) -> (u16, Value) {
        let parsed: Option<Value> = serde_json::from_slice(body).ok();
        let error = parsed.as_ref().map(|v| v.get("error").unwrap_or(v));
        let message = error
            .and_then(|e| {
                e.get("message")
                    .or_else(|| e.get("detail"))
                    .map(|m| m.as_str().map_or_else(|| m.to_string(), String::from))
            })
            .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
        let code = error.and_then(|e| e.get("code")).and_then(Value::as_str);
        normalised_error(provider, status, &message, code)
    }
}

/// Passes OpenAI chunks through, dropping Azure's filter-annotation chunks and normalising
/// usage and finish reasons.
#[derive(Default)]
struct Stream {
    decoder: sse::Decoder,
    events: Vec<sse::Event>,
    usage: Option<Usage>,
    done: bool,
}

impl Stream {
    fn handle(&mut self, out: &mut Vec<String>) -> Result<(), StreamError> {
        for event in self.events.drain(..) {
            let data = event.data.trim();
            if data == "[DONE]" {
                self.done = true;
                continue;
            }
            if data.is_empty() {
                continue;
            }
            let Ok(Value::Object(mut chunk)) = serde_json::from_str::<Value>(data) else {
                return Err(StreamError {
                    message: format!("the provider sent an unreadable stream event: {data}"),
                    kind: "server_error".into(),
                });
            };
            if let Some(error) = chunk
                .get("error")
                .filter(|_| !chunk.contains_key("choices"))
            {
                return Err(StreamError {
                    message: error
                        .get("message")
                        .and_then(Value::as_str)
                        .unwrap_or("the provider failed mid-stream")
                        .to_string(),
                    kind: error
                        .get("type")
                        .and_then(Value::as_str)
                        .unwrap_or("server_error")
                        .to_string(),
                });
            }
            fix_usage(&mut chunk);
            fix_finish_reasons(&mut chunk);
            if let Some(usage) = chunk.get("usage").and_then(Usage::from_openai) {
                self.usage = Some(usage);
            }
            // Azure's filter annotations carry choices without a delta: not content.
            if let Some(Value::Array(choices)) = chunk.get_mut("choices") {
                choices.retain(|c| c.get("delta").is_some() || c.get("text").is_some());
            }
            let empty = chunk
                .get("choices")
                .and_then(Value::as_array)
                .is_none_or(Vec::is_empty);
            let usage = chunk.remove("usage").filter(|u| !u.is_null());
            if !empty {
                out.push(Value::Object(chunk.clone()).to_string());
            }
            // Usage always travels in a chunk of its own, as OpenAI sends it, so the gateway
            // can pass it on only to clients that asked (some providers put it on the last
            // content chunk).
            if let Some(usage) = usage {
                chunk.insert("choices".into(), json!([]));
                chunk.insert("usage".into(), usage);
                out.push(Value::Object(chunk).to_string());
            }
        }
        Ok(())
    }
}

fn too_large() -> StreamError {
    StreamError {
        message: "the provider sent a stream event over 16 MiB".into(),
        kind: "server_error".into(),
    }
}

impl StreamTranslator for Stream {
    fn feed(&mut self, bytes: &[u8], out: &mut Vec<String>) -> Result<(), StreamError> {
        self.decoder
            .feed(bytes, &mut self.events)
            .map_err(|_| too_large())?;
        self.handle(out)
    }

    fn finish(&mut self, out: &mut Vec<String>) -> Result<(), StreamError> {
        self.decoder.finish(&mut self.events);
        self.handle(out)?;
        if self.done {
            Ok(())
        } else {
            Err(StreamError {
                message: "the provider closed the stream before it finished".into(),
                kind: "server_error".into(),
            })
        }
    }

    fn usage(&self) -> Option<Usage> {
        self.usage
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::providers::find;

    fn target<'a>(slug: &str, base: &'a str, settings: &'a Map<String, Value>) -> Target<'a> {
        Target {
            provider: find(slug).unwrap(),
            base_url: base,
            api_key: Some("sk-test"),
            settings,
        }
    }

    #[test]
    fn openai_request_passes_through_and_asks_for_stream_usage() {
        let settings = Map::new();
        let t = target("openai", "https://api.openai.com/v1/", &settings);
        let body = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "stream": true});
        let r = OpenAi.request(&t, Endpoint::Chat, &body, true).unwrap();
        assert_eq!(r.url, "https://api.openai.com/v1/chat/completions");
        assert!(r
            .headers
            .contains(&("authorization".into(), "Bearer sk-test".into())));
        let sent: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(sent["stream_options"], json!({"include_usage": true}));
        assert_eq!(sent["messages"], body["messages"]);
    }

    #[test]
    fn azure_builds_deployment_urls_and_api_key_header() {
        let settings: Map<String, Value> = serde_json::from_value(
            json!({"resource_name": "acme", "deployment_id": "gpt4o", "api_version": "2025-01-01"}),
        )
        .unwrap();
        let t = target("azure-openai", "", &settings);
        let r = OpenAi
            .request(&t, Endpoint::Embeddings, &json!({"input": "x"}), false)
            .unwrap();
        assert_eq!(
            r.url,
            "https://acme.openai.azure.com/openai/deployments/gpt4o/embeddings?api-version=2025-01-01"
        );
        assert!(r.headers.contains(&("api-key".into(), "sk-test".into())));
        let empty = Map::new();
        let err = OpenAi
            .request(
                &target("azure-openai", "", &empty),
                Endpoint::Chat,
                &json!({}),
                false,
            )
            .unwrap_err();
        assert!(err.0.contains("resource_name"));
    }

    #[test]
    fn mistral_fix_ups_and_no_stream_options() {
        let settings = Map::new();
        let t = target("mistral-ai", "https://api.mistral.ai/v1", &settings);
        let body = json!({"model": "m", "seed": 7, "tool_choice": "required", "stream": true});
        let sent: Value = serde_json::from_slice(
            &OpenAi
                .request(&t, Endpoint::Chat, &body, true)
                .unwrap()
                .body,
        )
        .unwrap();
        assert_eq!(
            sent,
            json!({"model": "m", "random_seed": 7, "tool_choice": "any", "stream": true})
        );
    }

    #[test]
    fn mistral_gets_nine_character_tool_call_ids_consistently() {
        let mut messages = vec![
            json!({"role": "assistant", "tool_calls": [{"id": "call_abc123XYZ_long", "type": "function"}, {"id": "Ab3dE6gH9", "type": "function"}]}),
            json!({"role": "tool", "tool_call_id": "call_abc123XYZ_long", "content": "x"}),
            json!({"role": "tool", "tool_call_id": "Ab3dE6gH9", "content": "y"}),
        ];
        rewrite_tool_call_ids(&mut messages);
        let new_id = messages[0]["tool_calls"][0]["id"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(new_id.len(), 9);
        assert!(
            new_id.bytes().all(|b| b.is_ascii_alphanumeric()),
            "{new_id}"
        );
        assert_eq!(messages[1]["tool_call_id"], new_id.as_str());
        assert_eq!(messages[0]["tool_calls"][1]["id"], "Ab3dE6gH9");
        assert_eq!(messages[2]["tool_call_id"], "Ab3dE6gH9");
    }

    #[test]
    fn usage_on_a_content_chunk_travels_on_its_own() {
        let mut s = OpenAi.stream(Endpoint::Chat, "m");
        let mut out = Vec::new();
        s.feed(
            b"data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2,\"total_tokens\":3}}\n\ndata: [DONE]\n\n",
            &mut out,
        )
        .unwrap();
        s.finish(&mut out).unwrap();
        assert_eq!(out.len(), 2, "{out:?}");
        assert!(!out[0].contains("usage"));
        let usage: Value = serde_json::from_str(&out[1]).unwrap();
        assert_eq!(usage["choices"], json!([]));
        assert_eq!(usage["usage"]["completion_tokens"], 2);
    }

    #[test]
    fn stream_passes_chunks_drops_annotations_and_keeps_usage() {
        let text = concat!(
            "data: {\"id\":\"\",\"object\":\"\",\"created\":0,\"model\":\"\",\"choices\":[],\"prompt_filter_results\":[]}\n\n",
            ": keep-alive\n\n",
            "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},\"finish_reason\":null}]}\n\n",
            "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"eos\"}]}\n\n",
            "data: {\"id\":\"c1\",\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1,\"total_tokens\":4,\"prompt_cache_hit_tokens\":2}}\n\n",
            "data: [DONE]\n\n"
        );
        let mut s = OpenAi.stream(Endpoint::Chat, "m");
        let mut out = Vec::new();
        for chunk in text.as_bytes().chunks(3) {
            s.feed(chunk, &mut out).unwrap();
        }
        s.finish(&mut out).unwrap();
        assert_eq!(out.len(), 3, "{out:?}");
        assert!(out[0].contains("\"content\":\"Hi\""));
        assert!(out[1].contains("\"finish_reason\":\"stop\""));
        assert_eq!(
            s.usage(),
            Some(Usage {
                prompt_tokens: 3,
                completion_tokens: 1,
                cached_tokens: 2,
                reasoning_tokens: 0
            })
        );
    }

    #[test]
    fn stream_errors_mid_way_and_on_early_eof() {
        let mut s = OpenAi.stream(Endpoint::Chat, "m");
        let mut out = Vec::new();
        let err = s
            .feed(
                b"data: {\"error\":{\"message\":\"boom\",\"type\":\"server_error\"}}\n\n",
                &mut out,
            )
            .unwrap_err();
        assert_eq!(err.message, "boom");
        let mut s = OpenAi.stream(Endpoint::Chat, "m");
        s.feed(
            b"data: {\"choices\":[{\"index\":0,\"delta\":{}}]}\n\n",
            &mut out,
        )
        .unwrap();
        assert!(s.finish(&mut out).is_err());
    }

    #[test]
    fn errors_are_normalised() {
        let p = find("openai").unwrap();
        let (status, body) = OpenAi.error(
            p,
            429,
            br#"{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}"#,
        );
        assert_eq!(status, 429);
        assert_eq!(body["error"]["message"], "openai error: Rate limit reached");
        assert_eq!(body["error"]["type"], "rate_limit_error");
        assert_eq!(body["provider"], "openai");
        let (status, body) = OpenAi.error(p, 502, b"<html>bad gateway</html>");
        assert_eq!(status, 502);
        assert_eq!(
            body["error"]["message"],
            "openai error: <html>bad gateway</html>"
        );
    }
}
