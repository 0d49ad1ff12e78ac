//! AWS Bedrock (providers.md section 5): chat and legacy completions through Converse /
//! ConverseStream, embeddings through the native `invoke` API, SigV4-signed (or a Bedrock API
//! key as a bearer token).

mod convert;
mod eventstream;
mod sigv4;
mod stream;

use serde_json::{json, Value};
use time::OffsetDateTime;

use super::adapter::{
    finish_reason, normalised_error, Adapter, AdapterError, Endpoint, StreamTranslator, Target,
    UpstreamRequest, Usage,
};
use super::translation::{embeddings_list, model, tool_call, Answer, Choice, Form};
use super::Provider;

pub struct Bedrock;

const DEFAULT_REGION: &str = "us-east-1";

impl Adapter for Bedrock {
    fn request(
        &self,
        target: &Target,
        endpoint: Endpoint,
        body: &Value,
        stream: bool,
    ) -> Result<UpstreamRequest, AdapterError> {
        build_request(target, endpoint, body, stream, OffsetDateTime::now_utc())
    }

    fn response(
        &self,
        endpoint: Endpoint,
        body: &[u8],
        model: &str,
    ) -> Result<Value, AdapterError> {
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| AdapterError(format!("bedrock answered invalid JSON: {e}")))?;
        match endpoint {
            Endpoint::Embeddings => Ok(embeddings_response(&value, model)),
            Endpoint::Chat | Endpoint::Completions => {
                Ok(converse_response(endpoint, &value, model))
            }
            Endpoint::Responses => Err(responses_unsupported()),
        }
    }

    fn stream(&self, endpoint: Endpoint, model: &str) -> Box<dyn StreamTranslator> {
        Box::new(stream::Stream::new(
            endpoint == Endpoint::Completions,
            model,
        ))
    }

    fn error(&self, provider: &Provider, status: u16, body: &[u8]) -> (u16, Value) {
        let parsed: Option<Value> = serde_json::from_slice(body).ok();
        let field = |k: &str| parsed.as_ref()?.get(k)?.as_str().map(str::to_string);
        let message = field("message")
            .or_else(|| field("Message"))
            .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
        // The type is normally only in `x-amzn-ErrorType`; some answers repeat it in the body.
        let kind = field("__type")
            .or_else(|| field("code"))
            .unwrap_or_default();
        let kind = kind
            .rsplit('#')
            .next()
            .unwrap_or("")
            .split(':')
            .next()
            .unwrap_or("");
        let lower = message.to_ascii_lowercase();
        let status = match status {
            // A rejected signature or token is the stored credentials' fault.
            403 if ["signature", "security token", "expired"]
                .iter()
                .any(|s| lower.contains(s)) =>
            {
                401
            }
            400 if kind == "ServiceQuotaExceededException" => 429,
            408 => 504,
            424 => 502,
            other => other,
        };
        normalised_error(provider, status, &message, None)
    }
}

fn responses_unsupported() -> AdapterError {
    AdapterError("bedrock does not speak the Responses API: send it as chat".into())
}

/// The request, signed as of `now` (a parameter so tests can pin the clock).
fn build_request(
    target: &Target,
    endpoint: Endpoint,
    body: &Value,
    stream: bool,
    now: OffsetDateTime,
) -> Result<UpstreamRequest, AdapterError> {
    let body = body
        .as_object()
        .ok_or_else(|| AdapterError("the request body must be a JSON object".into()))?;
    let model = model(body)?;
    let (action, payload) = match endpoint {
        Endpoint::Chat => (converse_action(stream), convert::chat(body)?),
        Endpoint::Completions => (converse_action(stream), convert::completion(body)?),
        Endpoint::Embeddings => ("invoke", convert::embeddings(model, body)?),
        Endpoint::Responses => return Err(responses_unsupported()),
    };
    let region = target
        .setting("aws_region")
        .filter(|r| !r.is_empty())
        .unwrap_or(DEFAULT_REGION);
    let base = match target.base_url.trim_end_matches('/') {
        "" => format!("https://bedrock-runtime.{region}.amazonaws.com"),
        custom => custom.to_string(),
    };
    // The model id is one path segment: `:` and `/` (ARNs) are percent-encoded.
    let url = format!("{base}/model/{}/{action}", sigv4::uri_encode(model));
    let body = serde_json::to_vec(&payload).expect("a JSON value serialises");
    let mut headers = vec![("content-type".to_string(), "application/json".to_string())];
    let secret = target.api_key.filter(|k| !k.is_empty());
    match (target.setting("aws_access_key_id").filter(|k| !k.is_empty()), secret) {
        (Some(access_key_id), Some(secret_access_key)) => {
            let parsed = url::Url::parse(&url)
                .map_err(|e| AdapterError(format!("bad bedrock URL {url}: {e}")))?;
            let creds = sigv4::Credentials {
                access_key_id,
                secret_access_key,
                session_token: target.setting("aws_session_token"),
            };
            let scope = sigv4::Scope {
                region,
                service: "bedrock",
            };
            let signed = sigv4::sign("POST", &parsed, &headers, &body, &creds, &scope, now);
            headers.extend(signed);
        }
        // Without an access key id the key is a Bedrock API key, sent as a bearer token.
        (None, Some(api_key)) => headers.push(("authorization".into(), format!("Bearer {api_key}"))),
        (_, None) => {
            return Err(AdapterError(
                "bedrock needs credentials: the secret access key as the integration's key and aws_access_key_id in its configurations (or a Bedrock API key)".into(),
            ))
        }
    }
    Ok(UpstreamRequest { url, headers, body })
}

fn converse_action(stream: bool) -> &'static str {
    if stream {
        "converse-stream"
    } else {
        "converse"
    }
}

/// `chatcmpl-…` / `cmpl-…` (as OpenAI's) with a random suffix: Bedrock answers carry no id.
fn new_id(form: Form) -> String {
    super::translation::new_id(match form {
        Form::Chat => "chatcmpl-",
        Form::Text => "cmpl-",
    })
}

/// Converse `usage` in OpenAI's sense: `inputTokens` excludes cache reads and writes, OpenAI's
/// `prompt_tokens` includes them.
fn usage(u: &Value) -> Usage {
    let n = |k: &str| u.get(k).and_then(Value::as_u64).unwrap_or(0);
    let cache_read = n("cacheReadInputTokens");
    Usage {
        prompt_tokens: n("inputTokens") + cache_read + n("cacheWriteInputTokens"),
        completion_tokens: n("outputTokens"),
        cached_tokens: cache_read,
        reasoning_tokens: 0,
    }
}

fn converse_response(endpoint: Endpoint, value: &Value, model: &str) -> Value {
    let blocks = value
        .pointer("/output/message/content")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let text: String = blocks
        .iter()
        .filter_map(|b| b.get("text").and_then(Value::as_str))
        .collect();
    let tool_calls: Vec<Value> = blocks
        .iter()
        .filter_map(|b| b.get("toolUse"))
        .map(|t| {
            tool_call(
                t.get("toolUseId").cloned().unwrap_or(json!("")),
                t.get("name").cloned().unwrap_or(json!("")),
                t.get("input").unwrap_or(&json!({})).to_string(),
            )
        })
        .collect();
    let reason = finish_reason(
        value
            .get("stopReason")
            .and_then(Value::as_str)
            .unwrap_or(""),
    );
    let form = Form::of(endpoint);
    let answer = Answer {
        id: new_id(form),
        model: model.to_string(),
        choices: vec![Choice {
            index: 0,
            text,
            tool_calls,
            finish_reason: reason,
        }],
        usage: usage(value.get("usage").unwrap_or(&Value::Null)).to_openai(),
    };
    answer.into_openai(form)
}

/// Titan's `{"embedding", "inputTextTokenCount"}` or Cohere's `{"embeddings": [[…]]}` as
/// OpenAI's embeddings list.
fn embeddings_response(value: &Value, model: &str) -> Value {
    let vectors: Vec<Value> = match (value.get("embedding"), value.get("embeddings")) {
        (Some(one), _) => vec![one.clone()],
        (None, Some(Value::Array(many))) => many.clone(),
        (None, Some(Value::Object(by_type))) => by_type
            .get("float")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default(),
        _ => vec![],
    };
    let tokens = value
        .get("inputTextTokenCount")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    embeddings_list(vectors, model, tokens)
}

#[cfg(test)]
mod tests;
