//! The contract every provider adapter fulfils. The gateway's front door always speaks OpenAI;
//! an adapter translates one attempt's request to the provider's wire format and the answer
//! (whole, streamed, or an error) back.

use serde_json::{json, Map, Value};

use super::Provider;

/// Which OpenAI endpoint the client called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Chat,
    Completions,
    Embeddings,
    Responses,
}

impl Endpoint {
    /// The path under the OpenAI base URL (`/v1` excluded).
    pub fn openai_path(self) -> &'static str {
        match self {
            Endpoint::Chat => "/chat/completions",
            Endpoint::Completions => "/completions",
            Endpoint::Embeddings => "/embeddings",
            Endpoint::Responses => "/responses",
        }
    }
}

/// Where one attempt goes and with what credentials.
pub struct Target<'a> {
    pub provider: &'static Provider,
    /// The integration's or config's `custom_host`, else the provider's default (may be empty
    /// for providers whose URL is built from settings: Azure, Vertex, Bedrock).
    pub base_url: &'a str,
    pub api_key: Option<&'a str>,
    /// Non-secret provider settings merged from the integration's `configurations` and the
    /// config target: `aws_region`, `aws_access_key_id`, `aws_session_token`,
    /// `vertex_project_id`, `vertex_region`, `resource_name`, `deployment_id`, `api_version`,
    /// `anthropic_version`, `anthropic_beta`, `openai_organization`, `openai_project`, ...
    pub settings: &'a Map<String, Value>,
}

impl Target<'_> {
    pub fn setting(&self, key: &str) -> Option<&str> {
        self.settings.get(key).and_then(Value::as_str)
    }
}

/// One HTTP request to the provider. Always POST.
#[derive(Debug)]
pub struct UpstreamRequest {
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// A request the adapter cannot express for this provider: answered 400 to the client.
#[derive(Debug, Clone, PartialEq)]
pub struct AdapterError(pub String);

/// Token counts in OpenAI's sense: cached ⊂ prompt, reasoning ⊂ completion.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cached_tokens: u64,
    pub reasoning_tokens: u64,
}

impl Usage {
    pub fn to_openai(self) -> Value {
        json!({
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
            "prompt_tokens_details": {"cached_tokens": self.cached_tokens},
            "completion_tokens_details": {"reasoning_tokens": self.reasoning_tokens},
        })
    }

    /// Reads an OpenAI `usage` object.
    pub fn from_openai(usage: &Value) -> Option<Usage> {
        let n = |v: &Value, k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0);
        usage.as_object()?;
        Some(Usage {
            prompt_tokens: n(usage, "prompt_tokens").max(n(usage, "input_tokens")),
            completion_tokens: n(usage, "completion_tokens").max(n(usage, "output_tokens")),
            cached_tokens: usage
                .get("prompt_tokens_details")
                .or_else(|| usage.get("input_tokens_details"))
                .map_or(0, |d| n(d, "cached_tokens")),
            reasoning_tokens: usage
                .get("completion_tokens_details")
                .or_else(|| usage.get("output_tokens_details"))
                .map_or(0, |d| n(d, "reasoning_tokens")),
        })
    }
}

/// A stream that cannot go on (malformed frames, an error event from the provider, EOF before
/// the terminal event). The gateway ends the client's stream with this error.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamError {
    pub message: String,
    /// `server_error`, `rate_limit_error`, ... as in OpenAI's error `type`.
    pub kind: String,
}

/// Translates one streamed response, chunk by chunk as bytes arrive.
pub trait StreamTranslator: Send {
    /// Feeds raw bytes (any split: mid-line, mid-UTF-8); appends the OpenAI
    /// `chat.completion.chunk` objects now complete, serialised as JSON, to `out`.
    /// Never emits `[DONE]`: the gateway writes it.
    fn feed(&mut self, bytes: &[u8], out: &mut Vec<String>) -> Result<(), StreamError>;
    /// The upstream closed the stream. Errors if it closed before the provider's terminal event.
    fn finish(&mut self, out: &mut Vec<String>) -> Result<(), StreamError>;
    /// The usage seen so far (the provider's last cumulative value).
    fn usage(&self) -> Option<Usage>;
}

pub trait Adapter: Sync {
    /// Translates an OpenAI-shaped request body (the `model` already bare, config params
    /// applied) into the provider's request. `stream` is the client's `stream` flag.
    fn request(
        &self,
        target: &Target,
        endpoint: Endpoint,
        body: &Value,
        stream: bool,
    ) -> Result<UpstreamRequest, AdapterError>;

    /// Translates a whole 2xx response into OpenAI's shape for `endpoint`.
    fn response(&self, endpoint: Endpoint, body: &[u8], model: &str)
        -> Result<Value, AdapterError>;

    /// A translator for one streamed response (chat and completions).
    fn stream(&self, endpoint: Endpoint, model: &str) -> Box<dyn StreamTranslator>;

    /// Turns a non-2xx answer into the status the client gets and OpenAI's error body
    /// `{"error":{"message","type","param","code"},"provider":slug}`.
    fn error(&self, provider: &Provider, status: u16, body: &[u8]) -> (u16, Value);
}

/// Error normalisation shared by every adapter (providers.md section 0.2): `message` is
/// `"<provider> error: <upstream message>"`, status and type follow the table.
pub fn normalised_error(
    provider: &Provider,
    status: u16,
    upstream_message: &str,
    upstream_code: Option<&str>,
) -> (u16, Value) {
    let (out, kind, code): (u16, &str, Option<&str>) = match status {
        400 | 422 => (400, "invalid_request_error", upstream_code),
        401 => (401, "authentication_error", Some("invalid_api_key")),
        403 => (403, "permission_error", None),
        404 => (404, "invalid_request_error", Some("model_not_found")),
        408 | 504 => (status, "timeout", Some("timeout")),
        413 => (413, "invalid_request_error", Some("request_too_large")),
        402 => (402, "insufficient_quota", Some("insufficient_quota")),
        429 if upstream_code == Some("insufficient_quota") => {
            (429, "insufficient_quota", Some("insufficient_quota"))
        }
        429 => (429, "rate_limit_error", Some("rate_limit_exceeded")),
        503 | 529 => (503, "server_error", Some("overloaded")),
        500..=599 => (status, "server_error", upstream_code),
        _ => (status, "api_error", upstream_code),
    };
    let body = json!({
        "error": {
            "message": format!("{} error: {}", provider.slug, upstream_message.trim()),
            "type": kind,
            "param": null,
            "code": code,
        },
        "provider": provider.slug,
    });
    (out, body)
}

/// The `finish_reason` table of providers.md section 0.1, for every provider's stop reasons.
/// Unknown values map to `stop`.
pub fn finish_reason(upstream: &str) -> &'static str {
    match upstream {
        "max_tokens" | "MAX_TOKENS" | "length" | "model_context_window_exceeded" => "length",
        "tool_use" | "TOOL_CALL" | "tool_calls" | "function_call" => "tool_calls",
        "refusal"
        | "SAFETY"
        | "BLOCKLIST"
        | "PROHIBITED_CONTENT"
        | "SPII"
        | "LANGUAGE"
        | "IMAGE_SAFETY"
        | "guardrail_intervened"
        | "content_filtered"
        | "content_filter" => "content_filter",
        _ => "stop",
    }
}
