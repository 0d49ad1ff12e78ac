//! Guardrails: saved guardrails (`/v1/guardrails`, Portkey's fields, portkey-wire.md section 6
//! "Guardrails") and the results hooks give (section 5), which 246 and 446 answers, stream
//! chunks and request records carry.

use std::borrow::Cow;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

mod data;
mod json;

pub use data::{CheckData, Detected};

/// One check of a saved guardrail or a raw hook: `{"id": "default.regexMatch", "parameters":
/// {...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CheckSpec {
    /// `plugin.check`, e.g. `default.contains` or `portkey.pii`.
    pub id: String,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub parameters: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default = "enabled")]
    pub is_enabled: bool,
}

fn enabled() -> bool {
    true
}

/// What a guardrail does with its verdict.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Actions {
    /// Refuse the request (446) when a check fails.
    #[serde(default)]
    pub deny: bool,
    /// Run without holding up the request; the results are only recorded.
    #[serde(default)]
    pub r#async: bool,
    /// Run the checks in order, each seeing what the one before changed.
    #[serde(default)]
    pub sequential: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub on_success: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub on_fail: Option<Value>,
}

/// A saved guardrail, used in configs by its `pg-…` slug.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Guardrail {
    pub id: String,
    /// `pg-…`.
    pub slug: String,
    pub name: String,
    pub workspace_id: Option<String>,
    pub checks: Vec<CheckSpec>,
    pub actions: Actions,
    /// Changes with every update.
    pub version_id: String,
    pub status: String,
    pub created_at: String,
    pub last_updated_at: String,
    pub object: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreateGuardrail {
    pub name: String,
    /// A workspace id or slug; the default workspace when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_id: Option<String>,
    /// Accepted for Portkey's SDKs; there is one organisation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organisation_id: Option<String>,
    pub checks: Vec<CheckSpec>,
    #[serde(default)]
    pub actions: Actions,
}

/// Fields left out stay as they are.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct UpdateGuardrail {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checks: Option<Vec<CheckSpec>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actions: Option<Actions>,
}

/// `{id, slug, version_id}`, as Portkey answers a create or an update.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct GuardrailSaved {
    pub id: String,
    pub slug: String,
    pub version_id: String,
}

/// One check's verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CheckResult {
    /// Shared with the check's definition: a guarded request copies no id.
    #[schema(value_type = String)]
    pub id: Arc<str>,
    pub verdict: bool,
    /// What the check found (matches, counts, the entities redacted, ...).
    #[schema(value_type = Object)]
    pub data: CheckData,
    /// Why the check could not run; an errored check passes unless `fail_on_error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Milliseconds.
    pub execution_time: f64,
    /// The hook's, shared by its checks.
    #[schema(value_type = String)]
    pub created_at: Arc<str>,
    /// Whether the check changed the request or response (a redaction).
    pub transformed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub log: Option<Value>,
    pub fail_on_error: bool,
}

/// One hook's verdict: true only if every enabled check passed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HookResult {
    #[schema(value_type = String)]
    pub id: Arc<str>,
    pub verdict: bool,
    /// Whether the request was refused for this hook (`deny` set and the verdict false).
    pub deny: bool,
    pub r#async: bool,
    /// `guardrail` or `mutator`.
    #[schema(value_type = String)]
    pub r#type: Cow<'static, str>,
    pub transformed: bool,
    pub checks: Vec<CheckResult>,
    /// `on_success.feedback` or `on_fail.feedback`, with the check ids that passed, failed and
    /// errored in its metadata.
    #[schema(value_type = Option<Object>)]
    pub feedback: Option<Value>,
    /// Milliseconds.
    pub execution_time: f64,
    #[schema(value_type = String)]
    pub created_at: Arc<str>,
    /// Set when the hook did not run (an endpoint hooks do not apply to).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<bool>,
}

/// `hook_results` in 246 and 446 bodies, stream chunks and records.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HookResults {
    #[serde(default)]
    pub before_request_hooks: Vec<HookResult>,
    #[serde(default)]
    pub after_request_hooks: Vec<HookResult>,
}
