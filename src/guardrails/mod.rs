//! The guardrail engine: compiled hooks (`before_request_hooks`, `after_request_hooks`, the
//! `input_*`/`output_*` shorthands and saved guardrails) and [`run`], which checks a request
//! or an answer and may redact it. Pure: no server code; the gateway decides what a verdict
//! means for the request (portkey-wire.md section 5, docs/guardrails.md).
//!
//! Text conventions (Portkey's `getText`): most checks look at the *current content part*:
//! - before the call: the last message's text for chat (its text parts joined by `\n`),
//!   `prompt` for completions, `input` for embeddings, and for Responses `input` when it is a
//!   string, otherwise the last input item's text;
//! - after the call: the first choice's message content for chat, the first choice's `text`
//!   for completions, every `output_text` of the answer for Responses (embeddings have none).
//!
//! The checks that edit text (`pii` with `redact`, `regexReplace`) look at and edit *every*
//! text part instead: every message (and Responses `instructions`) before the call, every
//! choice after it, so the provider and the client never see what was redacted.
//!
//! Hooks: all parameters are parsed, and regexes and schemas compiled, by the constructors;
//! [`run`] only evaluates. Checks run concurrently, each seeing the original body; their edits
//! are then applied in check order, bodies returned by webhooks first and redactions on top,
//! so a redaction is never lost. With `sequential`, checks run one after another and each sees
//! the body as the previous one left it.

mod answer;
mod checks;
mod exec;
mod hook;
mod pii;
mod schema;
mod text;

use serde_json::Value;

use crate::api::guardrails::HookResult;
use crate::gateway::providers::adapter::Endpoint;

pub use answer::RawAnswer;
pub(crate) use checks::compile as compile_check;
pub use hook::{Hook, SHORTHAND_SETTINGS};

/// Before the provider is called, or after it answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Before,
    After,
}

/// A hook's `type`; it only labels results, both kinds may transform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookKind {
    Guardrail,
    Mutator,
}

impl HookKind {
    pub fn as_str(self) -> &'static str {
        match self {
            HookKind::Guardrail => "guardrail",
            HookKind::Mutator => "mutator",
        }
    }
}

/// A body hooks look at: decoded, or an answer's JSON text as the provider's adapter gave it.
#[derive(Clone, Copy)]
pub enum Body<'a> {
    Json(&'a Value),
    Raw(&'a RawAnswer<'a>),
}

impl<'a> Body<'a> {
    /// The whole body (a raw answer is decoded on first use).
    pub fn value(self) -> &'a Value {
        match self {
            Body::Json(v) => v,
            Body::Raw(raw) => raw.value(),
        }
    }
}

/// What a hook looks at. Bodies are OpenAI-shaped JSON: the request as sent to the provider
/// (after parameter rewriting) and the answer as the client gets it.
pub struct Subject<'a> {
    pub stage: Stage,
    pub endpoint: Endpoint,
    pub request: &'a Value,
    /// After only.
    pub response: Option<Body<'a>>,
    pub model: &'a str,
    pub provider: &'a str,
    pub metadata: &'a serde_json::Map<String, Value>,
}

impl<'a> Subject<'a> {
    /// The body the hook checks and may transform: the request before the call, the answer
    /// after it.
    fn target(&self) -> Body<'a> {
        static NULL: Value = Value::Null;
        match self.stage {
            Stage::Before => Body::Json(self.request),
            Stage::After => self.response.unwrap_or(Body::Json(&NULL)),
        }
    }
}

pub struct Verdict {
    pub result: HookResult,
    /// The whole new request (Before) or response (After) body when a check changed it.
    pub transformed: Option<Value>,
}

/// Runs every enabled check of `hook` on `subject`.
pub async fn run(hook: &Hook, subject: &Subject<'_>, http: &reqwest::Client) -> Verdict {
    exec::run_hook(hook, subject, http).await
}

#[cfg(test)]
mod tests;
