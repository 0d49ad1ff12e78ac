//! Checks of the request itself rather than its text: modelWhitelist, requiredMetadataKeys,
//! allowedRequestTypes.

use serde_json::{json, Value};

use super::content::Operator;
use super::params::Params;
use super::{Found, Input};
use crate::gateway::providers::adapter::Endpoint;

#[derive(Debug)]
pub(super) enum RequestCheck {
    /// `not` makes the list a block-list.
    Models { models: Vec<String>, not: bool },
    MetadataKeys {
        keys: Vec<String>,
        operator: Operator,
    },
    /// Empty lists fall back to the metadata keys `supported_endpoints`/`blocked_endpoints`.
    RequestTypes {
        allowed: Vec<String>,
        blocked: Vec<String>,
    },
}

pub(super) fn compile(name: &str, p: &mut Params) -> Option<RequestCheck> {
    Some(match name {
        "modelWhitelist" | "modelwhitelist" => RequestCheck::Models {
            models: p.required_list("models", "model names"),
            not: p.flag("not", false),
        },
        "requiredMetadataKeys" => RequestCheck::MetadataKeys {
            keys: p.required_list("metadataKeys", "metadata keys"),
            operator: Operator::read(p, "operator", "all"),
        },
        "allowedRequestTypes" => {
            let allowed = p.list("allowedTypes");
            let blocked = p.list("blockedTypes");
            let both: Vec<&str> = allowed
                .iter()
                .filter(|t| blocked.contains(t))
                .map(String::as_str)
                .collect();
            if !both.is_empty() {
                p.error(
                    "blockedTypes",
                    format!(
                        "{} also in allowedTypes; remove them from one list",
                        both.join(", ")
                    ),
                );
            }
            RequestCheck::RequestTypes { allowed, blocked }
        }
        _ => return None,
    })
}

/// Portkey's name of an endpoint, as `allowedTypes` lists it.
pub(super) fn request_type(endpoint: Endpoint) -> &'static str {
    match endpoint {
        Endpoint::Chat => "chatComplete",
        Endpoint::Completions => "complete",
        Endpoint::Embeddings => "embed",
        Endpoint::Responses => "createModelResponse",
    }
}

impl RequestCheck {
    pub(super) fn evaluate(&self, input: &Input) -> Found {
        let s = input.subject;
        match self {
            RequestCheck::Models { models, not } => {
                let listed = models.iter().any(|m| m == s.model);
                Found::new(listed != *not, json!({"model": s.model, "not": not}))
            }
            RequestCheck::MetadataKeys { keys, operator } => {
                let present: Vec<&String> = keys
                    .iter()
                    .filter(|k| s.metadata.contains_key(*k))
                    .collect();
                Found::new(
                    operator.holds(present.len(), keys.len()),
                    json!({"presentKeys": present}),
                )
            }
            RequestCheck::RequestTypes { allowed, blocked } => {
                let from_metadata = |key: &str| -> Vec<String> {
                    match s.metadata.get(key) {
                        Some(Value::String(t)) => {
                            t.split(',').map(|x| x.trim().to_string()).collect()
                        }
                        Some(Value::Array(a)) => a
                            .iter()
                            .filter_map(Value::as_str)
                            .map(String::from)
                            .collect(),
                        _ => Vec::new(),
                    }
                };
                let allowed = if allowed.is_empty() {
                    from_metadata("supported_endpoints")
                } else {
                    allowed.clone()
                };
                let blocked = if blocked.is_empty() {
                    from_metadata("blocked_endpoints")
                } else {
                    blocked.clone()
                };
                let current = request_type(s.endpoint);
                let is = |list: &[String]| list.iter().any(|t| t == current);
                let verdict = !is(&blocked) && (allowed.is_empty() || is(&allowed));
                Found::new(
                    verdict,
                    json!({"currentRequestType": current, "allowedTypes": allowed, "blockedTypes": blocked}),
                )
            }
        }
    }
}
