//! Anthropic Messages API (providers.md section 3): OpenAI chat (and legacy completions, as one
//! user message) → `POST {base}/messages`, answers and streams back to OpenAI's shapes.

mod request;
mod stream;
#[cfg(test)]
mod tests;

use serde_json::{json, Value};

use super::adapter::{
    finish_reason, normalised_error, Adapter, AdapterError, Endpoint, StreamTranslator, Target,
    UpstreamRequest, Usage,
};
use super::translation::{
    api_key, bad, base_url, error_body_text, finish_with_calls, new_id, tool_call, Answer, Choice,
    EventStream, Form,
};
use super::Provider;

pub struct Anthropic;

const DEFAULT_VERSION: &str = "2023-06-01";
/// Anthropic requires `max_tokens`; used when the client sent neither limit.
const DEFAULT_MAX_TOKENS: u64 = 4096;
/// The tool that carries a `response_format` answer (the "tool trick", providers.md 3.1).
const JSON_TOOL: &str = "json_response";

/// Anthropic's error `type` → the HTTP status it stands for.
fn status_of(kind: &str) -> Option<u16> {
    Some(match kind {
        "invalid_request_error" => 400,
        "authentication_error" => 401,
        "billing_error" => 402,
        "permission_error" => 403,
        "not_found_error" => 404,
        "request_too_large" => 413,
        "rate_limit_error" => 429,
        "api_error" => 500,
        "timeout_error" => 504,
        "overloaded_error" => 529,
        _ => return None,
    })
}

impl Adapter for Anthropic {
    fn request(
        &self,
        target: &Target,
        endpoint: Endpoint,
        body: &Value,
        stream: bool,
    ) -> Result<UpstreamRequest, AdapterError> {
        let upstream = match endpoint {
            Endpoint::Chat => request::chat(body, stream)?,
            Endpoint::Completions => request::completion(body, stream)?,
            Endpoint::Embeddings => {
                return Err(bad(
                    "Anthropic has no embeddings API; route /v1/embeddings to another provider",
                ))
            }
            Endpoint::Responses => {
                return Err(bad(
                    "the Responses API is not spoken by Anthropic; use /v1/chat/completions",
                ))
            }
        };
        let key = api_key(target)?;
        let base = base_url(target);
        let version = target
            .setting("anthropic_version")
            .filter(|v| !v.is_empty())
            .unwrap_or(DEFAULT_VERSION);
        let mut headers = vec![
            ("content-type".to_string(), "application/json".to_string()),
            ("x-api-key".to_string(), key.to_string()),
            ("anthropic-version".to_string(), version.to_string()),
        ];
        if let Some(beta) = target.setting("anthropic_beta").filter(|b| !b.is_empty()) {
            headers.push(("anthropic-beta".into(), beta.into()));
        }
        Ok(UpstreamRequest {
            url: format!("{base}/messages"),
            headers,
            body: serde_json::to_vec(&upstream).map_err(|e| bad(e.to_string()))?,
        })
    }

    fn response(
        &self,
        endpoint: Endpoint,
        body: &[u8],
        model: &str,
    ) -> Result<Value, AdapterError> {
        let answer = answer(body, model)?;
        match endpoint {
            Endpoint::Chat | Endpoint::Completions => Ok(answer.into_openai(Form::of(endpoint))),
            Endpoint::Embeddings | Endpoint::Responses => {
                Err(bad("Anthropic answers chat and completions only"))
            }
        }
    }

    fn stream(&self, endpoint: Endpoint, model: &str) -> Box<dyn StreamTranslator> {
        Box::new(EventStream::new(stream::Translator::new(endpoint, model)))
    }

    fn error(&self, provider: &Provider, status: u16, body: &[u8]) -> (u16, Value) {
        let parsed: Option<Value> = serde_json::from_slice(body).ok();
        let err = parsed
            .as_ref()
            .and_then(|v| v.get("error"))
            .filter(|e| e.is_object());
        let kind = err.and_then(|e| e.get("type")).and_then(Value::as_str);
        let message = err
            .and_then(|e| e.get("message"))
            .and_then(Value::as_str)
            .filter(|m| !m.trim().is_empty())
            .map(String::from)
            .or_else(|| error_body_text(body))
            .or_else(|| kind.map(String::from))
            .unwrap_or_else(|| format!("HTTP {status}"));
        // An exhausted credit balance comes as a 400 `invalid_request_error`.
        let billing =
            kind == Some("billing_error") || message.contains("credit balance is too low");
        let status = if billing && status < 500 { 402 } else { status };
        normalised_error(provider, status, &message, None)
    }
}

/// Token counts kept apart as Anthropic reports them (`input_tokens` excludes the cache).
#[derive(Debug, Clone, Copy, Default)]
struct RawUsage {
    input: u64,
    cache_read: u64,
    cache_write: u64,
    output: u64,
}

impl RawUsage {
    /// Overwrites the counts present in `u` (stream values are cumulative, never added).
    fn update(&mut self, u: &Value) {
        for (key, slot) in [
            ("input_tokens", &mut self.input),
            ("cache_read_input_tokens", &mut self.cache_read),
            ("cache_creation_input_tokens", &mut self.cache_write),
            ("output_tokens", &mut self.output),
        ] {
            if let Some(n) = u.get(key).and_then(Value::as_u64) {
                *slot = n;
            }
        }
    }

    fn usage(self) -> Usage {
        Usage {
            prompt_tokens: self.input + self.cache_read + self.cache_write,
            completion_tokens: self.output,
            cached_tokens: self.cache_read,
            reasoning_tokens: 0,
        }
    }

    /// OpenAI's usage object; cache writes (priced apart) kept as an extra field when present.
    fn to_openai(self) -> Value {
        let mut u = self.usage().to_openai();
        if self.cache_write > 0 {
            u["cache_creation_input_tokens"] = self.cache_write.into();
        }
        u
    }
}

/// The OpenAI finish reason; `tool_use` that only carried the JSON answer is a plain stop.
fn finish(stop_reason: Option<&str>, has_calls: bool) -> &'static str {
    finish_with_calls(stop_reason.map_or("stop", finish_reason), has_calls)
}

/// A whole Messages answer.
fn answer(body: &[u8], model: &str) -> Result<Answer, AdapterError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| bad(format!("Anthropic answered invalid JSON: {e}")))?;
    if v.get("type").and_then(Value::as_str) == Some("error") {
        let message = v.pointer("/error/message").and_then(Value::as_str);
        return Err(bad(message
            .unwrap_or("Anthropic answered an error")
            .to_string()));
    }
    let blocks = v
        .get("content")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("Anthropic's answer has no `content`"))?;
    let mut text = String::new();
    let mut calls = Vec::new();
    for block in blocks {
        match block.get("type").and_then(Value::as_str) {
            Some("text") => text.push_str(block.get("text").and_then(Value::as_str).unwrap_or("")),
            Some("tool_use") => {
                let input = block.get("input").cloned().unwrap_or_else(|| json!({}));
                let name = block.get("name").and_then(Value::as_str).unwrap_or("");
                if name == JSON_TOOL {
                    text.push_str(&input.to_string());
                    continue;
                }
                let id = block.get("id").and_then(Value::as_str).unwrap_or("");
                calls.push(tool_call(id, name, input.to_string()));
            }
            // thinking, redacted_thinking, server tool blocks: not part of OpenAI's answer.
            _ => {}
        }
    }
    let mut usage = RawUsage::default();
    if let Some(u) = v.get("usage") {
        usage.update(u);
    }
    let reason = finish(
        v.get("stop_reason").and_then(Value::as_str),
        !calls.is_empty(),
    );
    Ok(Answer {
        id: v
            .get("id")
            .and_then(Value::as_str)
            .map_or_else(|| new_id("chatcmpl-"), String::from),
        model: v
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or(model)
            .to_string(),
        choices: vec![Choice {
            index: 0,
            text,
            tool_calls: calls,
            finish_reason: reason,
        }],
        usage: usage.to_openai(),
    })
}
