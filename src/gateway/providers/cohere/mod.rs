//! Cohere v2 (providers.md section 7): chat (and legacy completions, as one user message) →
//! `POST {base}/v2/chat`, embeddings → `POST {base}/v2/embed`, answers back to OpenAI's shapes.

mod request;
mod stream;
#[cfg(test)]
mod tests;

use serde_json::Value;

use super::adapter::{
    finish_reason, normalised_error, Adapter, AdapterError, Endpoint, StreamTranslator, Target,
    UpstreamRequest, Usage,
};
use super::translation::{
    api_key, bad, base_url, embeddings_list, error_body_text, finish_with_calls, new_id, Answer,
    Choice, EventStream, Form,
};
use super::Provider;

pub struct Cohere;

/// `ERROR` and `TIMEOUT` finish reasons mean the generation failed (policy, providers.md 0.1).
fn failed(reason: &str) -> Option<(&'static str, String)> {
    match reason {
        "ERROR" => Some((
            "server_error",
            "Cohere stopped generating with an error".into(),
        )),
        "TIMEOUT" => Some(("timeout", "Cohere timed out while generating".into())),
        _ => None,
    }
}

/// Cohere's `usage` (`tokens` counted, `billed_units` charged; both kept).
fn usage_of(u: &Value) -> Usage {
    let counted = u
        .get("tokens")
        .filter(|t| t.is_object())
        .or_else(|| u.get("billed_units"));
    let n = |k: &str| {
        counted
            .and_then(|c| c.get(k))
            .and_then(Value::as_f64)
            .unwrap_or(0.0) as u64
    };
    Usage {
        prompt_tokens: n("input_tokens"),
        completion_tokens: n("output_tokens"),
        cached_tokens: u
            .get("cached_tokens")
            .and_then(Value::as_f64)
            .unwrap_or(0.0) as u64,
        reasoning_tokens: 0,
    }
}

/// OpenAI's usage object, with Cohere's `billed_units` alongside for cost.
fn usage_json(u: &Value) -> Value {
    let mut out = usage_of(u).to_openai();
    if let Some(billed) = u.get("billed_units").filter(|b| b.is_object()) {
        out["billed_units"] = billed.clone();
    }
    out
}

/// A Cohere tool call (already OpenAI-shaped) with `arguments` as JSON text.
fn tool_call(call: &Value) -> Value {
    let f = &call["function"];
    let arguments = match f.get("arguments") {
        Some(Value::String(s)) => s.clone(),
        None | Some(Value::Null) => "{}".into(),
        Some(other) => other.to_string(),
    };
    let id = call
        .get("id")
        .and_then(Value::as_str)
        .map_or_else(|| new_id("call_"), String::from);
    let name = f.get("name").and_then(Value::as_str).unwrap_or("");
    super::translation::tool_call(id, name, arguments)
}

impl Adapter for Cohere {
    fn request(
        &self,
        target: &Target,
        endpoint: Endpoint,
        body: &Value,
        stream: bool,
    ) -> Result<UpstreamRequest, AdapterError> {
        let (path, upstream) = match endpoint {
            Endpoint::Chat => ("/v2/chat", request::chat(body, stream)?),
            Endpoint::Completions => ("/v2/chat", request::completion(body, stream)?),
            Endpoint::Embeddings => ("/v2/embed", request::embed(body)?),
            Endpoint::Responses => {
                return Err(bad(
                    "the Responses API is not spoken by Cohere; use /v1/chat/completions",
                ))
            }
        };
        let key = api_key(target)?;
        let base = base_url(target);
        Ok(UpstreamRequest {
            url: format!("{base}{path}"),
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("authorization".into(), format!("Bearer {key}")),
            ],
            body: serde_json::to_vec(&upstream).map_err(|e| bad(e.to_string()))?,
        })
    }

    fn response(
        &self,
        endpoint: Endpoint,
        body: &[u8],
        model: &str,
    ) -> Result<Value, AdapterError> {
        let v: Value = serde_json::from_slice(body)
            .map_err(|e| bad(format!("Cohere answered invalid JSON: {e}")))?;
        match endpoint {
            Endpoint::Chat | Endpoint::Completions => {
                answer(&v, model).map(|a| a.into_openai(Form::of(endpoint)))
            }
            Endpoint::Embeddings => embeddings_response(&v, model),
            Endpoint::Responses => Err(bad("the Responses API is not spoken by Cohere")),
        }
    }

    fn stream(&self, endpoint: Endpoint, model: &str) -> Box<dyn StreamTranslator> {
        Box::new(EventStream::new(stream::Translator::new(endpoint, model)))
    }

    fn error(&self, provider: &Provider, status: u16, body: &[u8]) -> (u16, Value) {
        let parsed: Option<Value> = serde_json::from_slice(body).ok();
        let message = parsed.as_ref().and_then(|v| {
            let inner = v.get("error").filter(|e| e.is_object()).unwrap_or(v);
            ["message", "detail", "error"]
                .iter()
                .find_map(|k| match inner.get(*k) {
                    Some(Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
                    _ => None,
                })
        });
        let message = message
            .or_else(|| error_body_text(body))
            .unwrap_or_else(|| format!("HTTP {status}"));
        normalised_error(provider, status, &message, None)
    }
}

/// A whole `/v2/chat` answer.
fn answer(v: &Value, model: &str) -> Result<Answer, AdapterError> {
    let m = v
        .get("message")
        .filter(|m| m.is_object())
        .ok_or_else(|| bad("Cohere's answer has no `message`"))?;
    let upstream_reason = v
        .get("finish_reason")
        .and_then(Value::as_str)
        .unwrap_or("COMPLETE");
    if let Some((_, message)) = failed(upstream_reason) {
        return Err(bad(message));
    }
    let text: String = m
        .get("content")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|c| c.get("type").and_then(Value::as_str) == Some("text"))
        .filter_map(|c| c.get("text").and_then(Value::as_str))
        .collect();
    let calls: Vec<Value> = m
        .get("tool_calls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(tool_call)
        .collect();
    let reason = finish_with_calls(finish_reason(upstream_reason), !calls.is_empty());
    Ok(Answer {
        id: v
            .get("id")
            .and_then(Value::as_str)
            .map_or_else(|| new_id("chatcmpl-"), String::from),
        model: model.to_string(),
        choices: vec![Choice {
            index: 0,
            text,
            tool_calls: calls,
            finish_reason: reason,
        }],
        usage: usage_json(v.get("usage").unwrap_or(&Value::Null)),
    })
}

/// `/v2/embed` → OpenAI's embeddings list. `embeddings` is keyed by type (`float`), or a bare
/// array from older response types.
fn embeddings_response(v: &Value, model: &str) -> Result<Value, AdapterError> {
    let vectors = match v.get("embeddings") {
        Some(Value::Array(list)) => list,
        Some(by_type) => by_type
            .get("float")
            .and_then(Value::as_array)
            .ok_or_else(|| bad("Cohere's answer has no float embeddings"))?,
        None => return Err(bad("Cohere's answer has no `embeddings`")),
    };
    let meta = v.get("meta").unwrap_or(&Value::Null);
    let tokens = ["/billed_units/input_tokens", "/tokens/input_tokens"]
        .iter()
        .find_map(|p| meta.pointer(p).and_then(Value::as_f64))
        .unwrap_or(0.0) as u64;
    Ok(embeddings_list(vectors.clone(), model, tokens))
}
