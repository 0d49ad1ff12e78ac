//! One leaf of a routing config: resolve the provider and credentials, rewrite the request,
//! call the upstream with retries, backoff and a timeout, and translate the answer.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderValue, StatusCode};
use serde_json::{json, Map, Value};

use super::call::Call;
use super::guard::{self, Guard};
use super::respond::{Answer, AnswerBody, GatewayError, Served};
use super::stream::{Forwarder, Framing};
use super::{cached, govern};
use crate::api::logs::Attempt;
use crate::gateway::providers::adapter::{Adapter, Endpoint, Target, Usage};
use crate::gateway::providers::{self, Provider, WireFormat};
use crate::gateway::routing::{Inherited, Node, Retry};
use crate::gateway::{embeddings, model, params, responses};
use crate::governance::Actual;
use crate::observe::pricing::{self, Price};
use crate::observe::record::{millis, now_ms};
use crate::server::state::{AppState, IntegrationEntry};

/// Cumulative Retry-After waits beyond this abort retrying (Portkey's `MAX_RETRY_LIMIT_MS`).
const MAX_RETRY_WAIT: Duration = Duration::from_secs(60);

/// Where a leaf sends its request.
pub(super) struct Resolved {
    pub(super) provider: &'static Provider,
    pub(super) base_url: String,
    api_key: Option<String>,
    /// The integration's configurations, with the config target's settings over them.
    pub(super) settings: Arc<Map<String, Value>>,
    /// The integration used, if any, and its slug.
    pub(super) integration: Option<(String, Arc<IntegrationEntry>)>,
}

fn bad_request(message: impl Into<String>) -> GatewayError {
    GatewayError::new(StatusCode::BAD_REQUEST, message)
}

/// `custom_host` from a request or a config may not point into private networks (SSRF);
/// loopback is allowed, as are hosts listed in `TOLLGATE_TRUSTED_CUSTOM_HOSTS`.
fn check_custom_host(url: &str) -> Result<(), GatewayError> {
    let parsed = url::Url::parse(url)
        .map_err(|e| bad_request(format!("custom_host {url:?} is not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(bad_request(format!("custom_host {url:?} must be http(s)")));
    }
    let host = parsed
        .host_str()
        .unwrap_or_default()
        .trim_matches(['[', ']']);
    let trusted = crate::env::var("TOLLGATE_TRUSTED_CUSTOM_HOSTS")
        .is_some_and(|list| list.split(',').any(|h| h.trim() == host));
    let private = match parsed.host() {
        Some(url::Host::Ipv4(ip)) => {
            ip.is_private() || ip.is_link_local() || ip.is_unspecified() || ip.is_broadcast()
        }
        Some(url::Host::Ipv6(ip)) => {
            let first = ip.segments()[0];
            ip.is_unspecified() || (first & 0xfe00) == 0xfc00 || (first & 0xffc0) == 0xfe80
        }
        Some(url::Host::Domain(d)) => {
            d.ends_with(".internal") || d.ends_with(".local") || d == "metadata"
        }
        None => true,
    };
    if private && !trusted {
        return Err(bad_request(format!(
            "custom_host {url:?} points into a private network; list the host in TOLLGATE_TRUSTED_CUSTOM_HOSTS to allow it"
        )));
    }
    Ok(())
}

fn resolve(
    state: &AppState,
    call: &Call,
    node: &Node,
    inherited: &Inherited,
    body: &mut Map<String, Value>,
) -> Result<Resolved, GatewayError> {
    let from_model = body
        .get("model")
        .and_then(Value::as_str)
        .map(model::parse)
        .and_then(|m| m.slug.map(|s| (s.to_string(), m.model.to_string())));
    if let Some((_, bare)) = &from_model {
        body.insert("model".into(), Value::String(bare.clone()));
    }
    let custom_host = match (&inherited.custom_host, call.header("x-portkey-custom-host")) {
        (Some(h), _) => Some(h.clone()),
        (None, Some(h)) => Some(h.to_string()),
        (None, None) => None,
    };
    if let Some(h) = &custom_host {
        check_custom_host(h)?;
    }
    let slug = node
        .provider
        .as_deref()
        .and_then(model::provider_slug)
        .map(String::from)
        .or_else(|| node.virtual_key.clone())
        .or_else(|| from_model.map(|(s, _)| s))
        .or_else(|| {
            call.header("x-portkey-provider")
                .and_then(model::provider_slug)
                .map(String::from)
        })
        .or_else(|| call.header("x-portkey-virtual-key").map(String::from));
    if let Some(slug) = slug {
        let entry = state.integration(&slug).ok_or_else(|| {
            bad_request(format!(
                "no integration with slug {slug:?}: create it with `tollgate integrations create --slug {slug}`"
            ))
        })?;
        let mut settings = entry.configurations.clone();
        if !node.settings.is_empty() {
            Arc::make_mut(&mut settings).extend(node.settings.clone());
        }
        let base_url = custom_host
            .or_else(|| {
                settings
                    .get("custom_host")
                    .and_then(Value::as_str)
                    .map(String::from)
            })
            .unwrap_or_else(|| entry.provider.base_url.to_string());
        return Ok(Resolved {
            provider: entry.provider,
            base_url,
            api_key: entry.secret.clone(),
            settings,
            integration: Some((slug, entry)),
        });
    }
    let Some(name) = node.provider.as_deref() else {
        if let Some(bare) = call.header("x-portkey-provider") {
            return Err(bad_request(format!(
                "x-portkey-provider: {bare} names no integration: write @slug with an integration's slug, e.g. @openai-dev"
            )));
        }
        return Err(bad_request(
            "no provider for this request: use a model such as @openai-dev/gpt-4o, the x-portkey-provider: @slug header, or a config with a provider",
        ));
    };
    let provider = providers::find(name).ok_or_else(|| {
        bad_request(format!(
            "unknown provider {name:?}; valid providers: {}",
            providers::slugs()
        ))
    })?;
    if provider.needs_api_key && node.api_key.is_none() {
        return Err(bad_request(format!(
            "the config names provider {name:?} without an api_key; give one, or use an integration as provider: \"@slug\""
        )));
    }
    Ok(Resolved {
        provider,
        base_url: custom_host.unwrap_or_else(|| provider.base_url.to_string()),
        api_key: node.api_key.clone(),
        settings: Arc::new(node.settings.clone()),
        integration: None,
    })
}

/// A Vertex AI integration may hold a service-account JSON key: swap in an access token (and
/// the account's project, unless the integration names one).
async fn vertex_service_account(state: &AppState, resolved: &mut Resolved) -> Result<(), Answer> {
    let provider = resolved.provider;
    let key = match &resolved.api_key {
        Some(k) if provider.wire == WireFormat::VertexAi && k.trim_start().starts_with('{') => k,
        _ => return Ok(()),
    };
    match state.google_tokens.token(&state.http, key).await {
        Ok(token) => {
            resolved.api_key = Some(token.access_token);
            if let Some(project) = token.project_id {
                Arc::make_mut(&mut resolved.settings)
                    .entry("vertex_project_id")
                    .or_insert(Value::String(project));
            }
            Ok(())
        }
        Err(e) => Err(provider_error(
            provider,
            401,
            "authentication_error",
            Some("invalid_api_key"),
            &e,
        )),
    }
}

/// Headers named in `forward_headers` / `x-portkey-forward-headers`, never credentials.
fn forwarded(call: &Call, inherited: &Inherited) -> Vec<(String, String)> {
    let names: Vec<String> = match &inherited.forward_headers {
        Some(list) => list.clone(),
        None => call
            .header("x-portkey-forward-headers")
            .map(|v| {
                v.split(',')
                    .map(|s| s.trim().to_ascii_lowercase())
                    .collect()
            })
            .unwrap_or_default(),
    };
    names
        .iter()
        .map(|n| n.to_ascii_lowercase())
        .filter(|n| {
            !matches!(
                n.as_str(),
                "authorization" | "x-portkey-api-key" | "host" | "content-length"
            )
        })
        .filter_map(|n| Some((n.clone(), call.header(&n)?.to_string())))
        .collect()
}

/// Portkey's 408 body, word for word.
fn timeout_answer(provider: &'static Provider, ms: u64) -> Answer {
    upstream_answer(
        provider,
        408,
        json!({"error": {
            "message": format!("Request exceeded the timeout sent in the request: {ms}ms"),
            "type": "timeout_error", "param": null, "code": null}}),
    )
}

/// A failure on the way to or from a provider, in OpenAI's error shape.
fn provider_error(
    provider: &'static Provider,
    status: u16,
    kind: &str,
    code: Option<&str>,
    message: &str,
) -> Answer {
    upstream_answer(
        provider,
        status,
        json!({"error": {"message": format!("{} error: {message}", provider.slug),
            "type": kind, "param": null, "code": code}, "provider": provider.slug}),
    )
}

fn upstream_answer(provider: &'static Provider, status: u16, body: Value) -> Answer {
    Answer::from_status(status, body, Some(provider.slug))
}

fn unreachable(provider: &'static Provider, e: &reqwest::Error) -> Answer {
    let mut cause: &dyn std::error::Error = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    provider_error(
        provider,
        502,
        "server_error",
        Some("upstream_unreachable"),
        &format!("could not reach the provider: {cause}"),
    )
}

/// What the client gets back for this endpoint from this provider.
enum Shape {
    /// The provider speaks the client's endpoint natively.
    Native,
    /// A Responses request served through the provider's chat endpoint.
    ResponsesViaChat,
}

/// Everything one leaf sends, fixed across its retries.
struct Plan {
    resolved: Resolved,
    /// The price of the model sent, found once for admission and for the record.
    price: Option<Price>,
    adapter: &'static dyn Adapter,
    endpoint: Endpoint,
    shape: Shape,
    body: Value,
    forward: Vec<(String, String)>,
}

/// Sends one request and reads its answer (for streams, up to the first event).
async fn send_once(state: &AppState, call: &Call, plan: &Plan) -> Answer {
    let Plan {
        resolved,
        adapter,
        endpoint,
        shape,
        body,
        forward,
        ..
    } = plan;
    let (adapter, endpoint) = (*adapter, *endpoint);
    let provider = resolved.provider;
    let target = Target {
        provider,
        base_url: &resolved.base_url,
        api_key: resolved.api_key.as_deref(),
        settings: &resolved.settings,
    };
    let request = match adapter.request(&target, endpoint, body, call.stream) {
        Ok(r) => r,
        Err(e) => {
            return Answer::from_error(bad_request(format!("{}: {}", provider.slug, e.0)), None)
        }
    };
    let mut builder = state.http.post(&request.url).body(request.body);
    for (k, v) in request.headers.iter().chain(forward.iter()) {
        builder = builder.header(k, v);
    }
    let response = match builder.send().await {
        Ok(r) => r,
        Err(e) => return unreachable(provider, &e),
    };
    let status = response.status().as_u16();
    if !(200..300).contains(&status) {
        let retry_after = ["retry-after-ms", "x-ms-retry-after-ms", "retry-after"]
            .iter()
            .find_map(|h| response.headers().get(*h).cloned().map(|v| (*h, v)));
        let bytes = response.bytes().await.unwrap_or_default();
        let (status, error) = adapter.error(provider, status, &bytes);
        let mut answer = upstream_answer(provider, status, error);
        if let Some((name, value)) = retry_after {
            answer.retry_wait = asked_wait(name, &value);
            answer.retry_after = retry_after_header(name, &value);
        }
        return answer;
    }
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if call.stream {
        let framing = match (shape, endpoint) {
            (Shape::ResponsesViaChat, _) => {
                Framing::Responses(Box::new(responses::EventStream::new(model)))
            }
            (Shape::Native, Endpoint::Responses) => Framing::Raw,
            (Shape::Native, _) => Framing::Chat {
                include_usage: call.include_usage,
            },
        };
        let translator = adapter.stream(endpoint, model);
        return match Forwarder::new(response, translator, framing, call.log_bodies)
            .commit()
            .await
        {
            Ok(forwarder) => Answer {
                status,
                body: AnswerBody::Stream(Box::new(forwarder)),
                ..upstream_answer(provider, status, Value::Null)
            },
            Err(e) => provider_error(provider, 502, &e.kind, None, &e.message),
        };
    }
    let bytes = match response.bytes().await {
        Ok(b) => b,
        Err(e) => return unreachable(provider, &e),
    };
    // OpenAI's own answers need no translation: check they are JSON (reading only the usage)
    // and pass them on as they came, without building and re-encoding a document.
    let wants_base64 = body.get("encoding_format").and_then(Value::as_str) == Some("base64");
    if matches!(shape, Shape::Native) && provider.slug == "openai" {
        if let Ok(probe) = serde_json::from_slice::<UsageProbe>(&bytes) {
            return Answer {
                body: AnswerBody::RawJson(bytes),
                served: Some(Served {
                    usage: probe.usage.as_ref().and_then(Usage::from_openai),
                    ..Served::default()
                }),
                ..upstream_answer(provider, status, Value::Null)
            };
        }
    }
    match adapter.response(endpoint, &bytes, model) {
        Ok(answer) => {
            let usage = answer.get("usage").and_then(Usage::from_openai);
            let mut answer = match shape {
                Shape::ResponsesViaChat => responses::from_chat(&answer),
                Shape::Native => answer,
            };
            if endpoint == Endpoint::Embeddings && wants_base64 {
                embeddings::encode_base64(&mut answer);
            }
            Answer {
                served: Some(Served {
                    usage,
                    ..Served::default()
                }),
                ..upstream_answer(provider, status, answer)
            }
        }
        Err(e) => provider_error(provider, 502, "server_error", None, &e.0),
    }
}

/// The one part of a passed-through answer the gateway reads.
#[derive(serde::Deserialize)]
struct UsageProbe {
    #[serde(default)]
    usage: Option<Value>,
}

/// Keeps the upstream's Retry-After for the client, in seconds or milliseconds as sent.
fn retry_after_header(name: &str, value: &HeaderValue) -> Option<HeaderValue> {
    let text = value.to_str().ok()?.trim();
    if name == "retry-after" {
        return Some(value.clone());
    }
    let ms: f64 = text.parse().ok()?;
    HeaderValue::from_str(&format!("{}", (ms / 1000.0).ceil() as u64)).ok()
}

/// How long the upstream asked to wait: `retry-after-ms` and `x-ms-retry-after-ms` in
/// milliseconds, `retry-after` in seconds (the HTTP-date form is not honoured).
fn asked_wait(name: &str, value: &HeaderValue) -> Option<Duration> {
    let n: f64 = value.to_str().ok()?.trim().parse().ok()?;
    let secs = if name == "retry-after" { n } else { n / 1000.0 };
    (secs >= 0.0 && secs.is_finite()).then(|| Duration::from_secs_f64(secs))
}

/// Exponential backoff with jitter: about `base * 2^n`, uniformly between half and all of it.
fn backoff(base_ms: u64, retry: u32) -> Duration {
    let full = base_ms.saturating_mul(1 << retry.min(16)) as f64;
    let jitter: f64 = rand::random::<f64>() * 0.5 + 0.5;
    Duration::from_millis((full * jitter) as u64)
}

pub async fn leaf(
    state: &Arc<AppState>,
    call: &Call,
    node: &Node,
    inherited: &Inherited,
    path: Option<String>,
) -> Answer {
    let mut answer = leaf_inner(state, call, node, inherited, path.as_deref()).await;
    answer.path = path;
    answer
}

/// The price of `model` at the resolved target: the integration's override, else the table's.
fn price(resolved: &Resolved, model: &str) -> Option<Price> {
    let provider = resolved.provider.slug;
    match &resolved.integration {
        Some((_, entry)) => pricing::resolve_price(provider, model, &entry.prices),
        None => pricing::lookup(provider, model).map(|i| i.price),
    }
}

/// What the record says of the upstream that answered: the model sent, its price, the usage.
fn served(plan: &Plan, usage: Option<Usage>) -> Served {
    let model = plan.body.get("model").and_then(Value::as_str);
    Served {
        integration: plan.resolved.integration.as_ref().map(|(s, _)| s.clone()),
        model: model.map(String::from),
        price: plan.price,
        usage,
    }
}

async fn leaf_inner(
    state: &Arc<AppState>,
    call: &Call,
    node: &Node,
    inherited: &Inherited,
    path: Option<&str>,
) -> Answer {
    let mut body = call.body.clone();
    params::apply(
        &mut body,
        &node.default_params,
        &inherited.override_params,
        &node.drop_params,
    );
    let mut resolved = match resolve(state, call, node, inherited, &mut body) {
        Ok(r) => r,
        Err(e) => return Answer::from_error(e, None),
    };
    if let Err(answer) = vertex_service_account(state, &mut resolved).await {
        return answer;
    }
    let adapter = providers::adapter(resolved.provider.wire);
    // Only these serve `/responses` themselves; the rest get it translated to chat.
    let native_responses = matches!(resolved.provider.slug, "openai" | "azure-openai" | "x-ai");
    let (endpoint, shape, body) = if call.endpoint == Endpoint::Responses && !native_responses {
        match responses::to_chat(&body) {
            Ok(chat) => (Endpoint::Chat, Shape::ResponsesViaChat, Value::Object(chat)),
            Err(e) => return Answer::from_error(bad_request(e), None),
        }
    } else {
        (call.endpoint, Shape::Native, Value::Object(body))
    };
    let mut body = body;
    let provider = resolved.provider.slug;
    let mut guard =
        match Guard::before(state, call, &inherited.hooks, endpoint, provider, &mut body).await {
            Ok(guard) => guard,
            Err(answer) => return answer,
        };
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let price = price(&resolved, model);
    let cache = match cached::lookup(state, call, inherited, &resolved, &body).await {
        Ok(mut hit) => {
            guard.after(state, call, &body, &mut hit).await;
            return hit;
        }
        Err(miss) => miss,
    };
    let target = govern::Target {
        integration: resolved
            .integration
            .as_ref()
            .map(|(slug, entry)| (slug.as_str(), &**entry)),
        provider: resolved.provider.slug,
        model,
        price,
    };
    let no_fields = Map::new();
    let fields = body.as_object().unwrap_or(&no_fields);
    let reservation = match govern::admit(state, call, &target, fields) {
        Ok(r) => r,
        Err(mut refusal) => {
            cached::store(state, cache, &mut refusal);
            return *refusal;
        }
    };
    let plan = Plan {
        forward: forwarded(call, inherited),
        price,
        resolved,
        adapter,
        endpoint,
        shape,
        body,
    };
    let mut answer = attempts(state, call, &plan, &mut guard, inherited, path).await;
    cached::store(state, cache, &mut answer);
    match &mut answer.body {
        AnswerBody::Stream(forwarder) => forwarder.hold(reservation),
        _ => {
            let served = answer.served.as_ref();
            let actual = Actual::of(
                served.and_then(|s| s.usage),
                served.and_then(|s| s.price),
                answer.is_success(),
            );
            reservation.settle(actual, now_ms());
        }
    }
    answer
}

/// Sends the plan, retrying as the config says; records each attempt.
async fn attempts(
    state: &AppState,
    call: &Call,
    plan: &Plan,
    guard: &mut Guard,
    inherited: &Inherited,
    path: Option<&str>,
) -> Answer {
    let timeout_ms = inherited.request_timeout.or_else(|| {
        call.header("x-portkey-request-timeout")
            .and_then(|v| v.parse().ok())
    });
    let retry = inherited.retry.clone().unwrap_or(Retry {
        attempts: 0,
        on_status_codes: None,
        use_retry_after_header: false,
    });
    let mut retries = 0;
    let mut waited = Duration::ZERO;
    loop {
        let sent = std::time::Instant::now();
        let once = send_once(state, call, plan);
        let mut answer = match timeout_ms {
            Some(ms) => match tokio::time::timeout(Duration::from_millis(ms), once).await {
                Ok(a) => a,
                Err(_) => timeout_answer(plan.resolved.provider, ms),
            },
            None => once.await,
        };
        let usage = answer.served.take().and_then(|s| s.usage);
        answer.served = Some(served(plan, usage));
        call.attempts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Attempt {
                span_id: crate::observe::record::new_span_id(),
                start_offset_ms: millis(sent - call.started),
                latency_ms: millis(sent.elapsed()),
                integration: answer.served.as_ref().and_then(|s| s.integration.clone()),
                provider: plan.resolved.provider.slug.to_string(),
                model: answer.served.as_ref().and_then(|s| s.model.clone()),
                retry: retries,
                last_used_option: path.map(String::from),
                status: answer.status,
                error: answer.error_message(),
            });
        guard.after(state, call, &plan.body, &mut answer).await;
        answer.retry_count = retries as i32;
        // A flagged answer (246) is a success that may still be retried, if listed.
        let done = answer.is_success() && answer.status != guard::FLAGGED;
        if done || answer.gateway_exception || !retry.retries_on(answer.status) {
            return answer;
        }
        if retries >= retry.attempts {
            if retry.attempts > 0 {
                answer.retry_count = -1;
            }
            return answer;
        }
        let wait = match answer.retry_wait.filter(|_| retry.use_retry_after_header) {
            Some(asked) => {
                if waited + asked > MAX_RETRY_WAIT {
                    answer.retry_count = -1;
                    return answer;
                }
                asked
            }
            None => backoff(state.settings.retry_base_ms, retries),
        };
        waited += wait;
        guard.retrying(answer);
        tokio::time::sleep(wait).await;
        retries += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_hosts_outside_private_networks() {
        assert!(check_custom_host("https://llm.example.com/v1").is_ok());
        assert!(check_custom_host("http://127.0.0.1:8000/v1").is_ok());
        assert!(check_custom_host("http://localhost:11434").is_ok());
        for bad in [
            "http://10.0.0.5/v1",
            "http://192.168.1.1",
            "http://169.254.169.254/latest",
            "http://[fd00::1]/",
            "http://metadata.google.internal/",
            "ftp://x.example.com",
            "not a url",
        ] {
            assert!(check_custom_host(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn backoff_doubles_with_jitter() {
        for n in 0..4 {
            let d = backoff(100, n).as_millis() as u64;
            let full = 100 << n;
            assert!(d >= full / 2 && d <= full, "{n}: {d}");
        }
    }

    #[test]
    fn waits_asked_in_either_unit() {
        let ms = HeaderValue::from_static("250");
        assert_eq!(
            asked_wait("retry-after-ms", &ms),
            Some(Duration::from_millis(250))
        );
        let s = HeaderValue::from_static("2");
        assert_eq!(asked_wait("retry-after", &s), Some(Duration::from_secs(2)));
        let date = HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT");
        assert_eq!(asked_wait("retry-after", &date), None);
    }

    #[test]
    fn retry_after_is_kept_in_seconds() {
        let ms = HeaderValue::from_static("1500");
        assert_eq!(retry_after_header("retry-after-ms", &ms).unwrap(), "2");
        let s = HeaderValue::from_static("3");
        assert_eq!(retry_after_header("retry-after", &s).unwrap(), "3");
    }
}
