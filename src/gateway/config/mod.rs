//! Validation of Portkey gateway configs: the routing document users save as a config and
//! send in `x-portkey-config`. [`validate`] reports every problem at once, each with the JSON
//! path it was found at (`targets[1].weight`, `strategy.conditions[0].query.$and[1]`).
//!
//! A config and each of its `targets` share one recursive shape. Keys may be written in
//! snake_case or camelCase; paths in errors keep the user's spelling. The free-form subtrees
//! (`override_params`, `default_params`, condition queries, `checks`, `cb_config`,
//! `vertex_service_account_json`) are not case-converted.

pub(crate) mod check;
mod conditions;
mod hooks;
mod policies;
mod strategy;

use std::fmt;

use serde_json::{Map, Value};

use self::check::{describe, index, join, quote, Errors, Field};
use self::strategy::{Mode, Siblings};
use crate::gateway::providers;

/// One problem in a config, at a JSON path such as `targets[1].weight` ("" for the root).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    pub path: String,
    pub message: String,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for ValidationError {}

/// Checks a config document and returns every error found, in document order.
pub fn validate(config: &Value) -> Result<(), Vec<ValidationError>> {
    let mut e = Errors::default();
    match config.as_object() {
        None => e.push(
            "",
            format!("config must be a JSON object, found {}", describe(config)),
        ),
        Some(obj) if obj.contains_key("options") => e.push(
            "options",
            "legacy v1 \"options\" configs are not supported; use strategy + targets",
        ),
        Some(obj) => check_target(obj, "", &Level::ROOT, &mut e),
    }
    if e.0.is_empty() {
        Ok(())
    } else {
        Err(e.0)
    }
}

/// Parses a config written as JSON or YAML: text starting with `{` is JSON, anything else YAML.
/// Errors give the line and column.
pub fn parse_document(text: &str) -> Result<Value, String> {
    if text.trim_start().starts_with('{') {
        return serde_json::from_str(text).map_err(|err| {
            let msg = err.to_string();
            let msg = msg.split(" at line ").next().unwrap_or(&msg);
            format!(
                "invalid JSON at line {}, column {}: {msg}",
                err.line(),
                err.column()
            )
        });
    }
    serde_yaml::from_str(text).map_err(|err| {
        let msg = err.to_string();
        match err.location() {
            Some(loc) => {
                let msg = msg.split(" at line ").next().unwrap_or(&msg);
                format!(
                    "invalid YAML at line {}, column {}: {msg}",
                    loc.line(),
                    loc.column()
                )
            }
            None => format!("invalid YAML: {msg}"),
        }
    })
}

/// Every field a config or target may have (snake_case; camelCase spellings map onto these).
#[rustfmt::skip]
const TARGET_FIELDS: &[&str] = &[
    "name", "strategy", "targets", "provider", "api_key", "virtual_key", "weight",
    "override_params", "default_params", "drop_params", "custom_host", "forward_headers",
    "request_timeout", "retry", "cache", "strict_open_ai_compliance", "passthrough", "cb_config",
    "before_request_hooks", "after_request_hooks", "input_guardrails", "output_guardrails",
    "input_mutators", "output_mutators", "prompt_id",
    "aws_access_key_id", "aws_secret_access_key", "aws_session_token", "aws_region",
    "aws_role_arn", "aws_auth_type", "aws_external_id",
    "vertex_project_id", "vertex_region", "vertex_service_account_json",
    "openai_project", "openai_organization",
    "azure_model_name", "azure_auth_mode", "azure_resource_name", "azure_deployment_id",
    "azure_api_version", "resource_name", "deployment_id", "api_version", "deployments",
    "anthropic_beta", "anthropic_version", "metadata",
];

/// Fields of which the root needs at least one (besides any `aws_*` / `vertex_*` field).
#[rustfmt::skip]
const DOES_SOMETHING: &[&str] = &[
    "provider", "virtual_key", "strategy", "targets", "cache", "retry", "request_timeout",
    "before_request_hooks", "after_request_hooks", "input_guardrails", "output_guardrails",
    "input_mutators", "output_mutators", "prompt_id", "forward_headers", "passthrough",
    "default_params", "override_params", "drop_params", "azure_auth_mode", "custom_host",
];

/// Where a target sits: the root, or inside a parent strategy.
struct Level {
    root: bool,
    parent_mode: Option<Mode>,
    /// An earlier sibling with the same `name`.
    duplicate_of: Option<usize>,
}

impl Level {
    const ROOT: Level = Level {
        root: true,
        parent_mode: None,
        duplicate_of: None,
    };
}

/// One config level: the root document or a member of some `targets`.
fn check_target(obj: &Map<String, Value>, path: &str, level: &Level, e: &mut Errors) {
    let fields = check::fields(obj, path, e);
    let strategy = check::get(&fields, "strategy");
    let targets = check::get(&fields, "targets");
    let mode = strategy.and_then(|f| Mode::of(f.value));
    for f in &fields {
        let (v, p) = (f.value, f.path.as_str());
        match f.name.as_str() {
            "name" => {
                let name = check::non_empty_string(v, p, e);
                if let (Some(name), Some(j)) = (name, level.duplicate_of) {
                    e.push(
                        p,
                        format!(
                            "duplicate target name {}; targets[{j}] already uses it",
                            quote(name)
                        ),
                    );
                }
            }
            "strategy" => {
                let siblings = siblings(targets.map(|t| t.value));
                strategy::check_strategy(v, p, &siblings, e);
            }
            "targets" => {
                if strategy.is_none() {
                    e.push(
                        p,
                        "\"targets\" needs a \"strategy\", e.g. {\"mode\": \"fallback\"}",
                    );
                }
                check_targets(v, p, mode, e);
            }
            "provider" => check_provider(v, p, e),
            "weight" => {
                if check::number(v, p, e).is_some_and(|w| w < 0.0) {
                    e.push(p, "must be >= 0");
                }
            }
            "override_params" | "default_params" | "vertex_service_account_json" | "metadata" => {
                check::object(v, p, e);
            }
            "drop_params" => {
                check::strings(v, p, e);
            }
            "custom_host" => {
                if let Some(url) = check::string(v, p, e) {
                    if !is_http_url(url) {
                        e.push(
                            p,
                            format!("must be an absolute http(s) URL, found {}", quote(url)),
                        );
                    }
                }
            }
            "forward_headers" => {
                for (item_path, header) in check::strings(v, p, e) {
                    if header.trim().is_empty() {
                        e.push(&item_path, "must not be empty");
                    } else if header
                        .trim()
                        .eq_ignore_ascii_case("x-portkey-forward-headers")
                    {
                        e.push(
                            &item_path,
                            "\"x-portkey-forward-headers\" cannot itself be forwarded",
                        );
                    }
                }
            }
            "request_timeout" => {
                check::positive_int(v, p, e);
            }
            "retry" => policies::check_retry(v, p, e),
            "cache" => policies::check_cache(v, p, e),
            "cb_config" => policies::check_cb_config(v, p, e),
            "strict_open_ai_compliance" | "passthrough" => {
                check::boolean(v, p, e);
            }
            "before_request_hooks" | "after_request_hooks" => hooks::check_raw_hooks(v, p, e),
            "input_guardrails" | "output_guardrails" | "input_mutators" | "output_mutators" => {
                hooks::check_guardrails(v, p, e)
            }
            "deployments" => check_deployments(v, p, e),
            name if TARGET_FIELDS.contains(&name) => {
                check::string(v, p, e);
            }
            _ => check::unknown_field(e, f, TARGET_FIELDS),
        }
    }
    if strategy.is_some() && targets.is_none() {
        e.push(
            &join(path, "targets"),
            "required when \"strategy\" is set: a non-empty array of targets",
        );
    }
    if level.parent_mode == Some(Mode::Conditional) && check::get(&fields, "name").is_none() {
        e.push(
            &join(path, "name"),
            "required: a conditional strategy picks its targets by name",
        );
    }
    if level.root && !fields.iter().any(does_something) {
        e.push(
            path,
            "config does nothing: give a provider, a strategy with targets, or retry/cache/request_timeout settings",
        );
    }
}

fn does_something(f: &Field) -> bool {
    DOES_SOMETHING.contains(&f.name.as_str())
        || (TARGET_FIELDS.contains(&f.name.as_str())
            && (f.name.starts_with("aws_") || f.name.starts_with("vertex_")))
}

fn check_targets(v: &Value, path: &str, parent_mode: Option<Mode>, e: &mut Errors) {
    let Some(items) = check::non_empty_array(v, path, e) else {
        return;
    };
    let names: Vec<Option<&str>> = items
        .iter()
        .map(|t| t.get("name").and_then(Value::as_str))
        .collect();
    for (i, item) in items.iter().enumerate() {
        let p = index(path, i);
        let Some(obj) = check::object(item, &p, e) else {
            continue;
        };
        let duplicate_of = names[i].and_then(|n| names[..i].iter().position(|m| *m == Some(n)));
        check_target(
            obj,
            &p,
            &Level {
                root: false,
                parent_mode,
                duplicate_of,
            },
            e,
        );
    }
}

/// What the strategy at this level needs to know about its `targets`.
fn siblings(targets: Option<&Value>) -> Siblings<'_> {
    let Some(items) = targets.and_then(Value::as_array) else {
        return Siblings {
            names: None,
            all_weights_zero: false,
        };
    };
    let weight = |t: &Value| t.get("weight").and_then(Value::as_f64);
    Siblings {
        names: Some(
            items
                .iter()
                .filter_map(|t| t.get("name").and_then(Value::as_str))
                .collect(),
        ),
        all_weights_zero: !items.is_empty() && items.iter().all(|t| weight(t) == Some(0.0)),
    }
}

/// A supported provider slug, or `@<integration-slug>` from the model catalog.
fn check_provider(v: &Value, path: &str, e: &mut Errors) {
    let Some(s) = check::string(v, path, e) else {
        return;
    };
    if let Some(slug) = s.strip_prefix('@') {
        if let Some((base, _model)) = slug.split_once('/') {
            e.push(
                path,
                format!(
                    "{} includes a model; \"provider\" takes only \"@{base}\" (put the model in override_params.model)",
                    quote(s)
                ),
            );
        } else if !is_slug(slug) {
            e.push(
                path,
                format!(
                    "invalid provider {}: \"@\" must be followed by an integration slug of lowercase letters, digits, \"-\" and \"_\"",
                    quote(s)
                ),
            );
        }
        return;
    }
    if providers::find(s).is_none() {
        let all = providers::slugs();
        let mut msg = format!("unknown provider {}", quote(s));
        if let Some(close) = check::suggest(s, &all.split(", ").collect::<Vec<_>>()) {
            msg.push_str(&format!("; did you mean {}?", quote(close)));
        }
        msg.push_str(&format!(
            "; expected one of {all}, or \"@<integration-slug>\""
        ));
        e.push(path, msg);
    }
}

fn is_slug(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

fn is_http_url(s: &str) -> bool {
    let lower = s.to_ascii_lowercase();
    let Some(rest) = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
    else {
        return false;
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = host.rsplit('@').next().unwrap_or("");
    !host.is_empty() && !host.starts_with(':') && !s.chars().any(char::is_whitespace)
}

/// Azure `deployments`: `[{deployment_id, alias, api_version, is_default}]`. Other keys pass.
fn check_deployments(v: &Value, path: &str, e: &mut Errors) {
    for (i, item) in check::array(v, path, e).into_iter().flatten().enumerate() {
        let p = index(path, i);
        let Some(obj) = check::object(item, &p, e) else {
            continue;
        };
        for f in check::fields(obj, &p, e) {
            match f.name.as_str() {
                "deployment_id" | "alias" | "api_version" => {
                    check::string(f.value, &f.path, e);
                }
                "is_default" => {
                    check::boolean(f.value, &f.path, e);
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests;
