//! The control plane's HTTP client, contexts (named control planes) and stored credentials.

pub mod contexts;
pub mod credentials;

use std::time::Duration;

use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::api::error::ErrorBody;
use crate::error::{CliError, ExitKind, Result};

pub struct ApiClient {
    http: reqwest::Client,
    base: Url,
    key: Option<String>,
}

/// True for `localhost` and loopback addresses, where plain HTTP never leaves the machine.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

pub fn parse_url(text: &str) -> Result<Url> {
    let url = Url::parse(text).map_err(|e| {
        CliError::usage(format!("{text:?} is not a valid URL: {e}"))
            .hint("give a full address such as http://127.0.0.1:8787")
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(CliError::usage(format!("{text:?} is not an http(s) URL")));
    }
    Ok(url)
}

impl ApiClient {
    /// Refuses to attach a credential to plain HTTP unless the host is this machine.
    pub fn new(base: Url, key: Option<String>) -> Result<ApiClient> {
        if key.is_some() && base.scheme() == "http" && !is_loopback(&base) {
            return Err(CliError::new(
                ExitKind::Auth,
                format!("refusing to send an API key over plain HTTP to {base}"),
            )
            .hint("use an https:// URL for a remote control plane"));
        }
        let timeout = crate::env::var(crate::env::TOLLGATE_TIMEOUT)
            .and_then(|s| s.parse().ok())
            .unwrap_or(30);
        let http = reqwest::Client::builder()
            .user_agent(concat!("tollgate/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(timeout))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| CliError::failed(format!("cannot build the HTTP client: {e}")))?;
        Ok(ApiClient { http, base, key })
    }

    pub fn base(&self) -> &Url {
        &self.base
    }

    fn url(&self, path: &str) -> Result<Url> {
        self.base
            .join(path.trim_start_matches('/'))
            .map_err(|e| CliError::usage(format!("bad path {path:?}: {e}")))
    }

    /// A request to `path` carrying the credential, if there is one.
    fn request(&self, method: Method, path: &str) -> Result<reqwest::RequestBuilder> {
        let request = self.http.request(method, self.url(path)?);
        Ok(match &self.key {
            Some(key) => request.header("x-portkey-api-key", key),
            None => request,
        })
    }

    /// Sends a request and returns the status and raw body, whatever the status.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<(StatusCode, String)> {
        let mut request = self.request(method, path)?;
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| self.transport_error(e))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| self.transport_error(e))?;
        Ok((status, text))
    }

    /// POSTs JSON with extra headers and returns the live response (for streams); an error
    /// status becomes the error of its class.
    pub async fn post_raw(
        &self,
        path: &str,
        body: &serde_json::Value,
        headers: &[(&str, String)],
    ) -> Result<reqwest::Response> {
        // Model answers can take minutes; the client's short default is for admin calls.
        let mut request = self
            .request(Method::POST, path)?
            .timeout(Duration::from_secs(600))
            .json(body);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let response = request.send().await.map_err(|e| self.transport_error(e))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let text = response.text().await.unwrap_or_default();
        Err(api_error(status, &text))
    }

    /// GETs a server-sent-events stream with extra headers and returns the live response,
    /// whatever its status: a caller that reconnects decides which statuses are worth a retry.
    pub async fn open_stream(
        &self,
        path: &str,
        headers: &[(&str, String)],
    ) -> Result<reqwest::Response> {
        // A stream lives until the caller ends it, so the client's overall timeout would cut
        // it; the caller watches for silence instead.
        let mut request = self
            .request(Method::GET, path)?
            .timeout(Duration::MAX)
            .header(reqwest::header::ACCEPT, "text/event-stream");
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        request.send().await.map_err(|e| self.transport_error(e))
    }

    /// Sends a request and decodes a successful JSON answer; maps failures to exit codes.
    pub async fn send<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> Result<T> {
        let body = body
            .map(serde_json::to_value)
            .transpose()
            .map_err(|e| CliError::failed(format!("cannot encode the request: {e}")))?;
        let (status, text) = self.raw(method, path, body.as_ref()).await?;
        if !status.is_success() {
            return Err(api_error(status, &text));
        }
        serde_json::from_str(&text).map_err(|e| {
            CliError::failed(format!("unexpected answer from {}: {e}", self.base))
                .hint("is this URL a tollgate or Portkey control plane?")
        })
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.send(Method::GET, path, None::<&()>).await
    }

    pub async fn post<T: DeserializeOwned>(&self, path: &str, body: &impl Serialize) -> Result<T> {
        self.send(Method::POST, path, Some(body)).await
    }

    pub async fn put<T: DeserializeOwned>(&self, path: &str, body: &impl Serialize) -> Result<T> {
        self.send(Method::PUT, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Result<()> {
        self.send::<serde_json::Value>(Method::DELETE, path, None::<&()>)
            .await
            .map(drop)
    }

    fn transport_error(&self, e: reqwest::Error) -> CliError {
        let what = if e.is_timeout() {
            "timed out"
        } else if e.is_connect() {
            "is unreachable"
        } else {
            "failed"
        };
        CliError::new(
            ExitKind::Unreachable,
            format!(
                "the control plane at {} {what}: {}",
                self.base,
                root_cause(&e)
            ),
        )
        .hint("start it with `tollgate serve`, or point --url or --context at a running one")
    }
}

pub fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// Maps an error answer to the exit code of its class, with the server's message and a hint.
pub fn api_error(status: StatusCode, body: &str) -> CliError {
    let (message, details) = match serde_json::from_str::<ErrorBody>(body) {
        Ok(b) => (b.error.message, b.errors),
        Err(_) => (
            format!("the server answered {status}: {}", body.trim()),
            Vec::new(),
        ),
    };
    let (kind, hint) = match status.as_u16() {
        401 => (
            ExitKind::Auth,
            "check the key: run `tollgate login`, or set TOLLGATE_API_KEY",
        ),
        403 => (
            ExitKind::Auth,
            "use a key that holds this scope (`tollgate whoami` lists your key's scopes)",
        ),
        404 => (
            ExitKind::NotFound,
            "check the id or slug; `list` shows what exists",
        ),
        409 => (
            ExitKind::Conflict,
            "it clashes with what exists: do what the message says (for a taken slug or name, choose another or update the existing one)",
        ),
        412 | 429 => (
            ExitKind::Limited,
            "wait for the limit to reset, or raise it",
        ),
        400 | 422 if !details.is_empty() => {
            (ExitKind::Failed, "fix the fields named above and try again")
        }
        400 | 422 => (ExitKind::Failed, "fix the request and try again"),
        503 => (
            ExitKind::Failed,
            "the server lost its database: see `tollgate status`, bring the database back, then try again",
        ),
        _ => (ExitKind::Failed, "see the server's log for details"),
    };
    CliError::new(kind, message).details(details).hint(hint)
}
