//! Google Gemini API (`google`) and Vertex AI Gemini (`vertex-ai`): one body format, two ways
//! to address and authenticate (providers.md section 4).

mod request;
mod response;
mod schema;
mod stream;
#[cfg(test)]
mod tests;

use serde_json::{json, Value};

use super::adapter::{
    normalised_error, Adapter, AdapterError, Endpoint, StreamTranslator, Target, UpstreamRequest,
};
use super::translation::{api_key, bad, base_url, error_body_text, Form};
use super::{Provider, WireFormat};

pub struct Gemini;

impl Adapter for Gemini {
    fn request(
        &self,
        target: &Target,
        endpoint: Endpoint,
        body: &Value,
        stream: bool,
    ) -> Result<UpstreamRequest, AdapterError> {
        let model = super::translation::model(body)?;
        let vertex = target.provider.wire == WireFormat::VertexAi;
        let model = bare_model(model, vertex)?;
        let (method, upstream) = match endpoint {
            Endpoint::Chat | Endpoint::Completions => {
                let mapped = if endpoint == Endpoint::Chat {
                    request::chat(body, model)?
                } else {
                    request::completion(body, model)?
                };
                let method = if stream {
                    "streamGenerateContent?alt=sse"
                } else {
                    "generateContent"
                };
                (method, mapped)
            }
            Endpoint::Embeddings => {
                let texts = embedding_inputs(body)?;
                let dims = body.get("dimensions").filter(|d| !d.is_null());
                let task = body.get("task_type").filter(|d| !d.is_null());
                if vertex {
                    let instances: Vec<Value> = texts
                        .iter()
                        .map(|t| match task {
                            Some(task) => json!({"content": t, "task_type": task}),
                            None => json!({"content": t}),
                        })
                        .collect();
                    let mut b = json!({"instances": instances});
                    if let Some(d) = dims {
                        b["parameters"] = json!({"outputDimensionality": d});
                    }
                    ("predict", b)
                } else {
                    let requests: Vec<Value> = texts
                        .iter()
                        .map(|t| {
                            let mut r = json!({"model": format!("models/{model}"),
                                               "content": {"parts": [{"text": t}]}});
                            if let Some(d) = dims {
                                r["outputDimensionality"] = d.clone();
                            }
                            if let Some(task) = task {
                                r["taskType"] = task.clone();
                            }
                            r
                        })
                        .collect();
                    ("batchEmbedContents", json!({"requests": requests}))
                }
            }
            Endpoint::Responses => {
                return Err(bad(
                    "the Responses API is not spoken by Gemini; use /v1/chat/completions",
                ))
            }
        };
        let (url, headers) = if vertex {
            vertex_address(target, model, method)?
        } else {
            gemini_address(target, model, method)?
        };
        Ok(UpstreamRequest {
            url,
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
        match endpoint {
            Endpoint::Chat | Endpoint::Completions => {
                response::answer(body, model, Form::of(endpoint))
            }
            Endpoint::Embeddings => response::embeddings(body, model),
            Endpoint::Responses => Err(bad("the Responses API is not spoken by Gemini")),
        }
    }

    fn stream(&self, endpoint: Endpoint, model: &str) -> Box<dyn StreamTranslator> {
        Box::new(stream::Translator::new(endpoint, model))
    }

    fn error(&self, provider: &Provider, status: u16, body: &[u8]) -> (u16, Value) {
        let parsed: Option<Value> = serde_json::from_slice(body).ok();
        // The object, or (streaming endpoints) an array wrapping it.
        let err = parsed.as_ref().and_then(|v| match v {
            Value::Array(items) => items.first().and_then(|i| i.get("error")),
            other => other.get("error"),
        });
        match err {
            Some(err) => {
                let (status, message, code) = error_status(err, status);
                normalised_error(provider, status, &message, code.as_deref())
            }
            None => {
                let message = error_body_text(body).unwrap_or_else(|| format!("HTTP {status}"));
                normalised_error(provider, status, &message, None)
            }
        }
    }
}

/// Google's `{"code","message","status","details"}` → (HTTP status, message, code). The
/// `status` name wins over the numeric code; an invalid API key (400 upstream) becomes 401.
pub(crate) fn error_status(err: &Value, fallback: u16) -> (u16, String, Option<String>) {
    let name = err.get("status").and_then(Value::as_str).unwrap_or("");
    let reason = err
        .get("details")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find_map(|d| d.get("reason").and_then(Value::as_str));
    let numeric = err.get("code").and_then(Value::as_u64).map(|c| c as u16);
    let status = match (name, reason) {
        (_, Some("API_KEY_INVALID")) | ("UNAUTHENTICATED", _) => 401,
        ("INVALID_ARGUMENT" | "FAILED_PRECONDITION" | "OUT_OF_RANGE", _) => 400,
        ("PERMISSION_DENIED", _) => 403,
        ("NOT_FOUND", _) => 404,
        ("ABORTED" | "ALREADY_EXISTS", _) => 409,
        ("RESOURCE_EXHAUSTED", _) => 429,
        ("INTERNAL" | "UNKNOWN" | "DATA_LOSS", _) => 500,
        ("UNIMPLEMENTED", _) => 501,
        ("UNAVAILABLE", _) => 503,
        ("DEADLINE_EXCEEDED", _) => 504,
        _ => numeric
            .filter(|c| (400..600).contains(c))
            .unwrap_or(fallback),
    };
    let message = err
        .get("message")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty())
        .map_or_else(|| format!("{name} (HTTP {status})"), String::from);
    let code = reason.or(Some(name).filter(|n| !n.is_empty()));
    (status, message, code.map(str::to_ascii_lowercase))
}

/// The model id as the URL wants it: no `models/` (or, on Vertex, `publishers/google/models/`
/// or `google/`) prefix. Other Vertex publishers need other endpoints.
fn bare_model(model: &str, vertex: bool) -> Result<&str, AdapterError> {
    let mut m = model.strip_prefix("models/").unwrap_or(model);
    if vertex {
        m = m
            .strip_prefix("publishers/google/models/")
            .or_else(|| m.strip_prefix("google/"))
            .unwrap_or(m);
        if m.contains('/') || m.starts_with("claude") {
            return Err(bad(format!(
                "`{model}` is not a Google model; only Gemini models on Vertex AI are supported \
                 (Claude and partner models on Vertex are not yet)"
            )));
        }
    }
    let url_safe = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@');
    if m.is_empty() || !m.chars().all(url_safe) {
        return Err(bad(format!("`{model}` is not a valid Gemini model id")));
    }
    Ok(m)
}

/// A setting placed in the URL must not be able to change its host or path.
fn url_setting<'a>(name: &str, value: &'a str) -> Result<&'a str, AdapterError> {
    let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':');
    if value.chars().all(ok) {
        Ok(value)
    } else {
        Err(bad(format!(
            "`{name}` `{value}` has characters not allowed in a URL"
        )))
    }
}

fn embedding_inputs(body: &Value) -> Result<Vec<&str>, AdapterError> {
    let not_text = || bad("Gemini embeddings take `input` as a string or an array of strings");
    match body.get("input") {
        Some(Value::String(s)) => Ok(vec![s.as_str()]),
        Some(Value::Array(items)) if !items.is_empty() => items
            .iter()
            .map(|i| i.as_str().ok_or_else(not_text))
            .collect(),
        _ => Err(not_text()),
    }
}

fn json_headers(auth: (&str, String)) -> Vec<(String, String)> {
    vec![
        (auth.0.to_string(), auth.1),
        ("content-type".into(), "application/json".into()),
    ]
}

type Address = (String, Vec<(String, String)>);

fn gemini_address(target: &Target, model: &str, method: &str) -> Result<Address, AdapterError> {
    let base = base_url(target);
    let key = api_key(target)?;
    let url = format!("{base}/models/{model}:{method}");
    Ok((url, json_headers(("x-goog-api-key", key.to_string()))))
}

/// `https://{region}-aiplatform.googleapis.com/v1/projects/{p}/locations/{region}/publishers/
/// google/models/{m}:{method}` with a Bearer access token; without a project, Vertex "express
/// mode" (`/v1/publishers/google/models/...` on the global host) with an API key.
fn vertex_address(target: &Target, model: &str, method: &str) -> Result<Address, AdapterError> {
    let key = api_key(target)?;
    // The gateway exchanges service-account keys for access tokens before building the
    // request (server::gateway::google_auth); one arriving here was not exchanged.
    if key.trim_start().starts_with('{') {
        return Err(bad(
            "a service-account JSON key must be exchanged for an access token before calling \
             Vertex AI; the gateway does this for integrations of provider vertex-ai",
        ));
    }
    let custom = target.base_url.trim_end_matches('/');
    let project = target
        .setting("vertex_project_id")
        .filter(|p| !p.is_empty());
    let Some(project) = project else {
        if key.starts_with("ya29.") {
            return Err(bad(
                "Vertex AI needs `vertex_project_id` to use an access token",
            ));
        }
        let base = if custom.is_empty() {
            "https://aiplatform.googleapis.com"
        } else {
            custom
        };
        let url = format!("{base}/v1/publishers/google/models/{model}:{method}");
        return Ok((url, json_headers(("x-goog-api-key", key.to_string()))));
    };
    let project = url_setting("vertex_project_id", project)?;
    let region = target
        .setting("vertex_region")
        .filter(|r| !r.is_empty())
        .unwrap_or("us-central1");
    let region = url_setting("vertex_region", region)?;
    let base = match (custom, region) {
        ("", "global") => "https://aiplatform.googleapis.com".to_string(),
        ("", r) => format!("https://{r}-aiplatform.googleapis.com"),
        (c, _) => c.to_string(),
    };
    let url = format!(
        "{base}/v1/projects/{project}/locations/{region}/publishers/google/models/{model}:{method}"
    );
    Ok((
        url,
        json_headers(("authorization", format!("Bearer {key}"))),
    ))
}
