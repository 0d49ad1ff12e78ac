//! Guardrails around one leaf's upstream call, with Portkey's semantics (portkey-wire.md
//! section 5): input hooks run on the request before the call, and may refuse it (446, no
//! upstream call) or change it (a redaction, which the provider then never sees the original
//! of); output hooks run on a 200 answer, and may refuse it (446), change it, or flag it (246
//! with the body kept). `hook_results` go into the answer's body and the record. Async hooks
//! hold nothing up: their results reach only the record.

use std::sync::Arc;

use axum::http::StatusCode;
use futures_util::future::BoxFuture;
use serde_json::{json, Map, Value};

use super::call::Call;
use super::respond::{Answer, AnswerBody, GatewayError};
use super::stream::hook_chunk;
use crate::api::guardrails::{HookResult, HookResults};
use crate::gateway::hook_set::{HookRef, HookSet};
use crate::gateway::providers::adapter::Endpoint;
use crate::guardrails::{self, Body, Hook, RawAnswer, Stage, Subject};
use crate::server::state::AppState;

/// A sync guardrail with `deny` failed.
pub const DENIED: u16 = 446;
/// A guardrail failed without `deny`: the answer is kept.
pub const FLAGGED: u16 = 246;

/// What hooks see besides the bodies; owned, so an async hook can outlive the request.
#[derive(Clone)]
struct Scope {
    endpoint: Endpoint,
    model: String,
    provider: &'static str,
    metadata: Arc<Map<String, Value>>,
}

/// One leaf's hooks and what its input hooks found; `None` when it has none.
pub struct Guard(Option<Hooks>);

struct Hooks {
    after: Vec<Arc<Hook>>,
    scope: Scope,
    /// The sync input hooks' results.
    input: Vec<HookResult>,
}

/// The hooks of one stage, saved guardrails looked up by slug.
fn resolve(state: &AppState, refs: &Option<Vec<HookRef>>) -> Result<Vec<Arc<Hook>>, GatewayError> {
    refs.iter()
        .flatten()
        .map(|r| match r {
            HookRef::Inline(hook) => Ok(hook.clone()),
            HookRef::Saved(slug) => state.guardrail(slug).ok_or_else(|| {
                GatewayError::new(
                    StatusCode::BAD_REQUEST,
                    format!("the config names the guardrail {slug:?}, which does not exist; see `tollgate guardrails list`"),
                )
            }),
        })
        .collect()
}

/// Output hooks run on the answers of chat and text completions, as the client gets them.
/// Embeddings get input hooks only, as in Portkey (an embedding has no text to check); so do
/// Responses requests, whose answers may be translated from chat on the way.
fn has_output_hooks(call: &Call) -> bool {
    matches!(call.endpoint, Endpoint::Chat | Endpoint::Completions)
}

/// Runs a stage's hooks in order over `request` (and `response`), each seeing what the ones
/// before changed. Async hooks are started and left to the record. Returns the sync results,
/// the changed body if any, and whether one denied.
async fn run_stage(
    state: &AppState,
    call: &Call,
    hooks: &[Arc<Hook>],
    scope: &Scope,
    stage: Stage,
    request: &Value,
    response: Option<Body<'_>>,
) -> (Vec<HookResult>, Option<Value>, bool) {
    let mut results = Vec::new();
    let mut changed: Option<Value> = None;
    let mut denied = false;
    for hook in hooks {
        let (request, response) = match (stage, &changed) {
            (Stage::Before, Some(c)) => (c, response),
            (Stage::After, Some(c)) => (request, Some(Body::Json(c))),
            _ => (request, response),
        };
        if hook.is_async {
            call.defer_hook(
                stage,
                start_async(state, hook, scope, stage, request, response),
            );
            continue;
        }
        let subject = subject(scope, stage, request, response);
        let verdict = guardrails::run(hook, &subject, &state.http).await;
        denied |= verdict.result.deny;
        results.push(verdict.result);
        if verdict.transformed.is_some() {
            changed = verdict.transformed;
        }
    }
    (results, changed, denied)
}

fn subject<'a>(
    scope: &'a Scope,
    stage: Stage,
    request: &'a Value,
    response: Option<Body<'a>>,
) -> Subject<'a> {
    Subject {
        stage,
        endpoint: scope.endpoint,
        request,
        response,
        model: &scope.model,
        provider: scope.provider,
        metadata: &scope.metadata,
    }
}

fn start_async(
    state: &AppState,
    hook: &Arc<Hook>,
    scope: &Scope,
    stage: Stage,
    request: &Value,
    response: Option<Body>,
) -> tokio::task::JoinHandle<HookResult> {
    let (hook, scope, http) = (hook.clone(), scope.clone(), state.http.clone());
    let (request, response) = (request.clone(), response.map(|b| b.value().clone()));
    tokio::spawn(async move {
        let subject = subject(&scope, stage, &request, response.as_ref().map(Body::Json));
        guardrails::run(&hook, &subject, &http).await.result
    })
}

/// Portkey's 446 body.
fn denied(results: &HookResults) -> Value {
    json!({
        "error": {
            "message": "The guardrail checks defined in the config failed. You can find more information in the `hook_results` object.",
            "type": "hooks_failed", "param": null, "code": null,
        },
        "hook_results": results,
    })
}

impl Guard {
    /// Looks up the leaf's hooks and runs the input ones over `body`, changing it where they
    /// redact. `Err` is the answer when the leaf cannot go on: a 446, or an unknown guardrail.
    pub async fn before(
        state: &AppState,
        call: &Call,
        hooks: &HookSet,
        endpoint: Endpoint,
        provider: &'static str,
        body: &mut Value,
    ) -> Result<Guard, Answer> {
        let before = resolve(state, &hooks.before).map_err(|e| Answer::from_error(e, None))?;
        let after = resolve(state, &hooks.after).map_err(|e| Answer::from_error(e, None))?;
        if before.is_empty() && after.is_empty() {
            return Ok(Guard(None));
        }
        let scope = Scope {
            endpoint,
            model: body
                .get("model")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            provider,
            metadata: Arc::new(call.metadata.clone()),
        };
        let (input, changed, deny) =
            run_stage(state, call, &before, &scope, Stage::Before, body, None).await;
        if deny {
            let results = HookResults {
                before_request_hooks: input,
                after_request_hooks: Vec::new(),
            };
            let mut answer = Answer::from_status(DENIED, denied(&results), Some(provider));
            answer.hook_results = Some(results);
            return Err(answer);
        }
        if let Some(changed) = changed {
            *body = changed;
        }
        Ok(Guard(Some(Hooks {
            after,
            scope,
            input,
        })))
    }

    /// Runs the output hooks on a 200 answer and gives it its status (446, 246 or as it was),
    /// `hook_results` in its body, and the results for the record. A stream gets the input
    /// results as its first chunk and the output ones after its end. The input results move
    /// into the answer: an answer that is retried gives them back ([`Guard::retrying`]).
    pub async fn after(
        &mut self,
        state: &AppState,
        call: &Call,
        request: &Value,
        answer: &mut Answer,
    ) {
        if let Some(hooks) = &mut self.0 {
            hooks.after(state, call, request, answer).await;
        }
    }

    /// Takes back the input results from an answer that is dropped for a retry, for the next
    /// attempt's answer.
    pub fn retrying(&mut self, answer: Answer) {
        if let (Some(hooks), Some(results)) = (&mut self.0, answer.hook_results) {
            hooks.input = results.before_request_hooks;
        }
    }
}

impl Hooks {
    async fn after(&mut self, state: &AppState, call: &Call, request: &Value, answer: &mut Answer) {
        let input_failed = self.input.iter().any(|r| !r.verdict);
        let mut results = HookResults {
            before_request_hooks: std::mem::take(&mut self.input),
            after_request_hooks: Vec::new(),
        };
        if answer.status != 200 {
            answer.hook_results = Some(results);
            return;
        }
        match &mut answer.body {
            AnswerBody::Stream(forwarder) => {
                forwarder.guard(
                    &results.before_request_hooks,
                    self.output_for_stream(state, call, request),
                );
            }
            // A stream from the cache: it gets this request's input results, and no output
            // hooks (there is no answer assembled to run them on).
            AnswerBody::Replay(frames) => {
                if call.endpoint == Endpoint::Chat && !results.before_request_hooks.is_empty() {
                    frames.insert(
                        0,
                        hook_chunk("before_request_hooks", &results.before_request_hooks),
                    );
                }
            }
            AnswerBody::Json(_) | AnswerBody::RawJson(_) => {}
        }
        if matches!(answer.body, AnswerBody::Stream(_) | AnswerBody::Replay(_)) {
            if input_failed {
                answer.status = FLAGGED;
            }
            answer.hook_results = Some(results);
            return;
        }
        let mut output_denied = false;
        if has_output_hooks(call) && !self.after.is_empty() {
            let (raw, parsed): (Option<RawAnswer>, Option<Value>);
            let response = match &answer.body {
                AnswerBody::RawJson(bytes) => {
                    raw = RawAnswer::parse(bytes);
                    parsed = match raw {
                        Some(_) => None,
                        None => serde_json::from_slice(bytes).ok(),
                    };
                    raw.as_ref()
                        .map(Body::Raw)
                        .or(parsed.as_ref().map(Body::Json))
                }
                AnswerBody::Json(v) => Some(Body::Json(v)),
                _ => None,
            };
            if let Some(response) = response {
                let (after, changed, deny) = run_stage(
                    state,
                    call,
                    &self.after,
                    &self.scope,
                    Stage::After,
                    request,
                    Some(response),
                )
                .await;
                if let Some(changed) = changed {
                    answer.body = AnswerBody::Json(changed);
                }
                results.after_request_hooks = after;
                output_denied = deny;
            }
        }
        if results.before_request_hooks.is_empty() && results.after_request_hooks.is_empty() {
            // Only async hooks ran: the answer is as it was.
            return;
        }
        if output_denied {
            answer.status = DENIED;
            answer.body = AnswerBody::Json(denied(&results));
        } else {
            let failed = input_failed || results.after_request_hooks.iter().any(|r| !r.verdict);
            if failed {
                answer.status = FLAGGED;
            }
            // Added when the body is written (logging::respond), after the record has kept it.
            answer.results_in_body = true;
        }
        answer.hook_results = Some(results);
    }

    /// The output hooks of a stream, run on the assembled answer when it ends: they can only
    /// report (the answer has gone out).
    fn output_for_stream(
        &self,
        state: &AppState,
        call: &Call,
        request: &Value,
    ) -> Option<OutputHooks> {
        if self.after.is_empty() || !has_output_hooks(call) {
            return None;
        }
        let (hooks, scope, http) = (self.after.clone(), self.scope.clone(), state.http.clone());
        let request = request.clone();
        Some(Box::new(move |response: Value| {
            Box::pin(async move {
                let mut results = Vec::new();
                for hook in &hooks {
                    let subject =
                        subject(&scope, Stage::After, &request, Some(Body::Json(&response)));
                    results.push(guardrails::run(hook, &subject, &http).await.result);
                }
                results
            })
        }))
    }
}

/// Runs a stream's output hooks on its assembled answer.
pub type OutputHooks = Box<dyn FnOnce(Value) -> BoxFuture<'static, Vec<HookResult>> + Send>;
