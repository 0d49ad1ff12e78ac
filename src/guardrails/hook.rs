//! Hooks as configs write them, compiled: raw hooks, shorthand objects and saved guardrails.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::checks::{self, CompiledCheck};
use super::HookKind;
use crate::api::guardrails::{Actions, CheckSpec};
use crate::gateway::config::check::snake_case;

/// One compiled hook. Its checks are parsed once, here; running it parses nothing.
#[derive(Debug)]
pub struct Hook {
    pub id: Arc<str>,
    pub kind: HookKind,
    pub deny: bool,
    pub is_async: bool,
    pub sequential: bool,
    pub on_success: Option<Value>,
    pub on_fail: Option<Value>,
    pub(super) checks: Vec<CompiledCheck>,
}

/// Keys of a shorthand object that are settings; every other key is a check id.
pub const SHORTHAND_SETTINGS: &[&str] = &[
    "deny",
    "async",
    "sequential",
    "on_fail",
    "on_success",
    "id",
    "type",
    "guardrail_version_id",
];

impl Hook {
    /// A `before_request_hooks`/`after_request_hooks` item (raw form; keys may be camelCase
    /// like onFail).
    pub fn from_raw(v: &Value) -> Result<Hook, Vec<String>> {
        let obj = v
            .as_object()
            .ok_or_else(|| vec!["a hook must be an object with \"checks\"".to_string()])?;
        let mut errors = Vec::new();
        let mut hook = Hook::new(String::new());
        let mut specs = None;
        for (key, value) in obj {
            match snake_case(key).as_str() {
                "checks" => specs = Some(value),
                name if SHORTHAND_SETTINGS.contains(&name) => {
                    hook.setting(name, key, value, &mut errors)
                }
                _ => errors.push(format!(
                    "{key}: unknown field; expected one of checks, {}",
                    SHORTHAND_SETTINGS.join(", ")
                )),
            }
        }
        match specs.map(|s| s.as_array()) {
            Some(Some(list)) if !list.is_empty() => {
                for (i, spec) in list.iter().enumerate() {
                    hook.raw_check(spec, &format!("checks[{i}]"), &mut errors);
                }
            }
            _ => errors.push(
                "checks: required: a non-empty array of {\"id\": \"plugin.check\", \"parameters\": {...}}"
                    .to_string(),
            ),
        }
        if hook.id.is_empty() {
            hook.id = format!("hook_{}", crate::store::random_suffix(8)).into();
        }
        hook.finish(errors)
    }

    /// An `input_guardrails`/`output_guardrails` shorthand object item; `id` is used when the
    /// object has none.
    pub fn from_shorthand(v: &Value, id: String) -> Result<Hook, Vec<String>> {
        let obj = v.as_object().ok_or_else(|| {
            vec!["a guardrail must be an object of checks such as {\"contains\": {\"words\": [...]}}".to_string()]
        })?;
        let mut errors = Vec::new();
        let mut hook = Hook::new(id);
        for (key, value) in obj {
            let name = snake_case(key);
            if SHORTHAND_SETTINGS.contains(&name.as_str()) {
                hook.setting(&name, key, value, &mut errors);
                continue;
            }
            let full = if key.contains('.') {
                key.clone()
            } else {
                format!("default.{key}")
            };
            match value.as_object() {
                Some(params) => hook.compile(&full, params, true, (key, key), &mut errors),
                None => errors.push(format!("{key}: expected an object of parameters")),
            }
        }
        if hook.checks.is_empty() && errors.is_empty() {
            errors.push(
                "guardrail has no checks; add one such as \"default.contains\": {\"words\": [...]}"
                    .to_string(),
            );
        }
        hook.finish(errors)
    }

    /// A saved guardrail (its slug as id).
    pub fn from_saved(
        id: &str,
        checks: &[CheckSpec],
        actions: &Actions,
    ) -> Result<Hook, Vec<String>> {
        let mut errors = Vec::new();
        let mut hook = Hook::new(id.to_string());
        hook.deny = actions.deny;
        hook.is_async = actions.r#async;
        hook.sequential = actions.sequential;
        hook.on_success = actions.on_success.clone();
        hook.on_fail = actions.on_fail.clone();
        for (i, spec) in checks.iter().enumerate() {
            let paths = (
                &format!("checks[{i}].id")[..],
                &format!("checks[{i}].parameters")[..],
            );
            hook.compile(
                &spec.id,
                &spec.parameters,
                spec.is_enabled,
                paths,
                &mut errors,
            );
        }
        if checks.is_empty() {
            errors.push("checks: a guardrail needs at least one check".to_string());
        }
        hook.finish(errors)
    }

    fn new(id: String) -> Hook {
        Hook {
            id: id.into(),
            kind: HookKind::Guardrail,
            deny: false,
            is_async: false,
            sequential: false,
            on_success: None,
            on_fail: None,
            checks: Vec::new(),
        }
    }

    fn finish(self, errors: Vec<String>) -> Result<Hook, Vec<String>> {
        if errors.is_empty() {
            Ok(self)
        } else {
            Err(errors)
        }
    }

    /// One of [`SHORTHAND_SETTINGS`], by its snake_case `name`; `key` is how the config spells it.
    fn setting(&mut self, name: &str, key: &str, value: &Value, errors: &mut Vec<String>) {
        let flag = |errors: &mut Vec<String>| {
            value.as_bool().unwrap_or_else(|| {
                errors.push(format!("{key}: expected a boolean"));
                false
            })
        };
        match name {
            "deny" => self.deny = flag(errors),
            "async" => self.is_async = flag(errors),
            "sequential" => self.sequential = flag(errors),
            "on_fail" | "on_success" if !value.is_object() => {
                errors.push(format!(
                    "{key}: expected an object such as {{\"feedback\": {{\"value\": 1}}}}"
                ));
            }
            "on_fail" => self.on_fail = Some(value.clone()),
            "on_success" => self.on_success = Some(value.clone()),
            "id" => match value.as_str() {
                Some(s) if !s.trim().is_empty() => self.id = s.into(),
                _ => errors.push(format!("{key}: expected a non-empty string")),
            },
            "type" => match value.as_str() {
                Some("guardrail") => self.kind = HookKind::Guardrail,
                Some("mutator") => self.kind = HookKind::Mutator,
                _ => errors.push(format!("{key}: expected \"guardrail\" or \"mutator\"")),
            },
            _ => {} // guardrail_version_id: informational
        }
    }

    /// `{"id": "plugin.check", "parameters": {...}, "is_enabled": bool}` of a raw hook.
    fn raw_check(&mut self, spec: &Value, path: &str, errors: &mut Vec<String>) {
        let Some(obj) = spec.as_object() else {
            errors.push(format!(
                "{path}: expected an object {{\"id\": \"plugin.check\", \"parameters\": {{...}}}}"
            ));
            return;
        };
        let Some(id) = obj.get("id").and_then(Value::as_str) else {
            errors.push(format!(
                "{path}.id: required: a check id such as \"default.contains\""
            ));
            return;
        };
        let empty = Map::new();
        let params = match obj.get("parameters") {
            None => &empty,
            Some(Value::Object(p)) => p,
            Some(_) => {
                errors.push(format!("{path}.parameters: expected an object"));
                return;
            }
        };
        let enabled = obj
            .get("is_enabled")
            .and_then(Value::as_bool)
            .unwrap_or(true);
        let paths = (&format!("{path}.id")[..], &format!("{path}.parameters")[..]);
        self.compile(id, params, enabled, paths, errors);
    }

    /// Compiles check `id`; errors name `paths.0` (the id) or a parameter under `paths.1`.
    fn compile(
        &mut self,
        id: &str,
        params: &Map<String, Value>,
        enabled: bool,
        paths: (&str, &str),
        errors: &mut Vec<String>,
    ) {
        match checks::compile(id, params) {
            Ok(mut check) => {
                check.enabled = enabled;
                self.checks.push(check);
            }
            Err(list) => errors.extend(
                list.iter()
                    .map(|e| format!("{}: {}", e.path(paths.0, paths.1), e.message)),
            ),
        }
    }
}
