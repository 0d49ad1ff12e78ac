//! The data plane's HTTP side: OpenAI-compatible endpoints that resolve who is calling and
//! which config applies, run the routing strategy, and answer with Portkey's headers.

mod attempt;
mod cached;
mod call;
mod execute;
mod google_auth;
mod govern;
mod guard;
mod logging;
mod models;
mod prompt;
mod respond;
mod stream;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use futures_util::future::BoxFuture;

use super::auth::Caller;
use super::state::AppState;
use crate::gateway::providers::adapter::Endpoint;

pub use cached::persist as persist_cache;
pub use google_auth::GoogleTokens;
pub use models::models;
pub use prompt::{completions as prompt_completions, render as prompt_render};

/// Requests to the gateway may carry images; the limit is generous but bounded.
pub const BODY_LIMIT: usize = 32 * 1024 * 1024;

/// The handler of one OpenAI endpoint.
pub fn endpoint(
    endpoint: Endpoint,
) -> impl Fn(State<Arc<AppState>>, Caller, HeaderMap, Uri, Bytes) -> BoxFuture<'static, Response>
       + Clone
       + Send
       + Sync
       + 'static {
    move |State(state), caller, headers, uri, body| {
        let started = std::time::Instant::now();
        Box::pin(async move {
            let mut call = call::Call::new(
                &state,
                &caller,
                headers,
                uri.path(),
                body,
                endpoint,
                started,
            );
            let answer = match call.read(&state) {
                Ok(()) => execute::run(&state, &call).await,
                Err(e) => respond::Answer::from_error(e, None),
            };
            logging::respond(call, answer).await
        })
    }
}
