//! Checks that call out: webhook (its answer is the verdict, and may carry a new body), log
//! (posts the hook context, always passes) and validUrls (the URLs in the text resolve or
//! answer).

use std::time::Duration;

use futures_util::future::join_all;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{json, Map, Value};

use super::params::Params;
use super::request::request_type;
use super::{Edit, Found, Input};
use crate::guardrails::{text, Body, Stage};

#[derive(Debug)]
pub(super) enum RemoteCheck {
    Webhook(Endpoint),
    Log(Endpoint),
    ValidUrls { only_dns: bool, not: bool },
}

/// Where a webhook or log posts the hook context.
#[derive(Debug)]
pub(super) struct Endpoint {
    url: String,
    headers: HeaderMap,
    timeout: Duration,
}

/// How long validUrls waits for one URL.
const URL_TIMEOUT: Duration = Duration::from_secs(3);

pub(super) fn compile(name: &str, p: &mut Params) -> Option<RemoteCheck> {
    Some(match name {
        "webhook" => RemoteCheck::Webhook(endpoint(p, "webhookURL")),
        "log" => RemoteCheck::Log(endpoint(p, "logURL")),
        "validUrls" => RemoteCheck::ValidUrls {
            only_dns: p.flag("onlyDNS", false),
            not: p.flag("not", false),
        },
        _ => return None,
    })
}

fn endpoint(p: &mut Params, url_key: &str) -> Endpoint {
    let url = p.required_string(url_key, "the http(s) URL to post the hook context to");
    if !url.is_empty() {
        match url::Url::parse(&url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => {}
            Ok(u) => p.error(
                url_key,
                format!(
                    "expected an http or https URL, found scheme {:?}",
                    u.scheme()
                ),
            ),
            Err(e) => p.error(url_key, format!("invalid URL: {e}")),
        }
    }
    let timeout = Duration::from_millis(p.count("timeout", 3000).max(1));
    Endpoint {
        url,
        headers: headers(p),
        timeout,
    }
}

/// `headers`: an object of strings, or the same object as a JSON string.
fn headers(p: &mut Params) -> HeaderMap {
    let mut out = HeaderMap::new();
    let parsed: Map<String, Value> = match p.get("headers") {
        None => return out,
        Some(Value::Object(m)) => m.clone(),
        Some(Value::String(s)) => match serde_json::from_str(s) {
            Ok(m) => m,
            Err(e) => {
                p.error(
                    "headers",
                    format!("expected a JSON object of header names to values: {e}"),
                );
                return out;
            }
        },
        Some(v) => {
            p.error(
                "headers",
                format!("expected an object of header names to values, found {v}"),
            );
            return out;
        }
    };
    for (name, value) in &parsed {
        let name_ok = HeaderName::from_bytes(name.as_bytes());
        let value_ok = value.as_str().map(HeaderValue::from_str);
        match (name_ok, value_ok) {
            (Ok(n), Some(Ok(v))) => {
                out.insert(n, v);
            }
            _ => p.error(
                &format!("headers.{name}"),
                "expected a valid header name with a string value",
            ),
        }
    }
    out
}

impl RemoteCheck {
    pub(super) async fn evaluate(&self, input: &Input<'_>) -> Result<Found, String> {
        match self {
            RemoteCheck::Webhook(to) => {
                let answer = to.post(&context(input), input.http).await?;
                let verdict = answer
                    .get("verdict")
                    .and_then(Value::as_bool)
                    .ok_or("the webhook's answer has no boolean \"verdict\"")?;
                let side = match input.subject.stage {
                    Stage::Before => "request",
                    Stage::After => "response",
                };
                let body = answer
                    .pointer(&format!("/transformedData/{side}/json"))
                    .filter(|v| v.is_object());
                let data = json!({"webhookUrl": to.url, "responseData": answer.get("data")});
                Ok(Found {
                    edit: body.cloned().map(Edit::Replace),
                    ..Found::new(verdict, data)
                })
            }
            RemoteCheck::Log(to) => {
                to.post(&context(input), input.http).await?;
                Ok(Found::new(true, json!({"logUrl": to.url})))
            }
            RemoteCheck::ValidUrls { only_dns, not } => {
                let urls = urls(input.text);
                let ok = join_all(urls.iter().map(|u| reachable(u, *only_dns, input.http))).await;
                let invalid: Vec<&str> = urls
                    .iter()
                    .zip(&ok)
                    .filter(|(_, ok)| !**ok)
                    .map(|(u, _)| *u)
                    .collect();
                let data = json!({"urls": urls, "invalidUrls": invalid, "not": not});
                Ok(Found::new(invalid.is_empty() != *not, data))
            }
        }
    }
}

impl Endpoint {
    /// Posts `body` and reads the JSON answer (null when there is none); a timeout, a failed
    /// connection or an HTTP error status is an error.
    async fn post(&self, body: &Value, http: &reqwest::Client) -> Result<Value, String> {
        let sent = http
            .post(&self.url)
            .headers(self.headers.clone())
            .json(body)
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| {
                if e.is_timeout() {
                    format!(
                        "{} did not answer within {} ms",
                        self.url,
                        self.timeout.as_millis()
                    )
                } else {
                    format!("could not reach {}: {e}", self.url)
                }
            })?;
        let status = sent.status();
        if !status.is_success() {
            return Err(format!("{} answered HTTP {}", self.url, status.as_u16()));
        }
        let bytes = sent
            .bytes()
            .await
            .map_err(|e| format!("reading the answer of {}: {e}", self.url))?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| format!("{} answered with invalid JSON: {e}", self.url))
    }
}

/// The hook context Portkey's plugins receive: request and response (json and text), the
/// provider, the request type, the metadata and the event type.
fn context(input: &Input) -> Value {
    let s = input.subject;
    let (request, response) = match s.stage {
        Stage::Before => (input.body.value(), None),
        Stage::After => (s.request, Some(input.body.value())),
    };
    let request_text = match s.stage {
        Stage::Before => input.text.to_string(),
        Stage::After => {
            text::current(Stage::Before, s.endpoint, Body::Json(s.request)).into_owned()
        }
    };
    json!({
        "request": {
            "json": request,
            "text": request_text,
            "isStreamingRequest": request.get("stream").and_then(Value::as_bool).unwrap_or(false),
        },
        "response": {
            "json": response,
            "text": if response.is_some() { input.text } else { "" },
            "statusCode": response.map(|_| 200),
        },
        "provider": s.provider,
        "requestType": request_type(s.endpoint),
        "metadata": s.metadata,
        "eventType": match s.stage {
            Stage::Before => "beforeRequestHook",
            Stage::After => "afterRequestHook",
        },
    })
}

/// `http://` and `https://` URLs up to the next whitespace, without trailing punctuation.
fn urls(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    for (start, _) in text.match_indices("http") {
        let rest = &text[start..];
        if !(rest.starts_with("http://") || rest.starts_with("https://")) {
            continue;
        }
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let url = rest[..end]
            .trim_end_matches(['.', ',', ';', ':', '!', '?', ')', ']', '}', '"', '\'', '>']);
        if url.len() > "https://".len() {
            out.push(url);
        }
    }
    out
}

/// With `only_dns`, whether the host resolves; otherwise whether a GET answers 2xx.
async fn reachable(url: &str, only_dns: bool, http: &reqwest::Client) -> bool {
    if !only_dns {
        let sent = http.get(url).timeout(URL_TIMEOUT).send().await;
        return sent.is_ok_and(|r| r.status().is_success());
    }
    let Ok(parsed) = url::Url::parse(url) else {
        return false;
    };
    let (Some(host), Some(port)) = (parsed.host_str(), parsed.port_or_known_default()) else {
        return false;
    };
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let lookup = tokio::net::lookup_host((host, port));
    match tokio::time::timeout(URL_TIMEOUT, lookup).await {
        Ok(Ok(mut addrs)) => addrs.next().is_some(),
        _ => false,
    }
}
