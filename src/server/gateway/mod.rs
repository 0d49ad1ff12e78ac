//! The data plane's HTTP side: OpenAI-compatible endpoints that resolve who is calling and
//! which config applies, run the routing strategy, and answer with Portkey's headers.

mod attempt;
mod call;
mod execute;
mod models;
mod respond;
mod stream;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};

use super::auth::Caller;
use super::state::AppState;
use crate::gateway::providers::adapter::Endpoint;

pub use models::models;

/// Requests to the gateway may carry images; the limit is generous but bounded.
pub const BODY_LIMIT: usize = 32 * 1024 * 1024;

async fn serve(
    state: Arc<AppState>,
    caller: Caller,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
    endpoint: Endpoint,
) -> Response {
    match call::Call::new(&state, &caller, &headers, uri.path(), &body, endpoint) {
        Ok(call) => execute::run(&state, call).await,
        Err(e) => e.into_response(),
    }
}

pub async fn chat_completions(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    serve(state, caller, headers, uri, body, Endpoint::Chat).await
}

pub async fn completions(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    serve(state, caller, headers, uri, body, Endpoint::Completions).await
}

pub async fn embeddings(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    serve(state, caller, headers, uri, body, Endpoint::Embeddings).await
}

pub async fn responses(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    serve(state, caller, headers, uri, body, Endpoint::Responses).await
}
