//! A config node's hooks as the gateway runs them: raw hooks and shorthand guardrails compiled
//! once when the config is read, saved guardrails kept by slug and looked up per request (so
//! an update to a guardrail applies from the next request on).

use std::sync::Arc;

use serde_json::Value;

use crate::guardrails::{Hook, HookKind};

#[derive(Clone)]
pub enum HookRef {
    Inline(Arc<Hook>),
    /// A saved guardrail's `pg-` slug.
    Saved(String),
}

impl std::fmt::Debug for HookRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HookRef::Inline(hook) => write!(f, "Inline({})", hook.id),
            HookRef::Saved(slug) => write!(f, "Saved({slug})"),
        }
    }
}

/// Hooks before the upstream call (on the request) and after it (on the answer). `None`: the
/// node sets none of that stage, so it inherits its parent's.
#[derive(Debug, Clone, Default)]
pub struct HookSet {
    pub before: Option<Vec<HookRef>>,
    pub after: Option<Vec<HookRef>>,
}

impl HookSet {
    /// Reads one hook field of a validated config (`key` in snake_case); false if `key` is not
    /// a hook field.
    pub fn read(&mut self, key: &str, value: &Value) -> bool {
        let (before, shorthand, kind) = match key {
            "before_request_hooks" => (true, false, HookKind::Guardrail),
            "after_request_hooks" => (false, false, HookKind::Guardrail),
            "input_guardrails" => (true, true, HookKind::Guardrail),
            "output_guardrails" => (false, true, HookKind::Guardrail),
            "input_mutators" => (true, true, HookKind::Mutator),
            "output_mutators" => (false, true, HookKind::Mutator),
            _ => return false,
        };
        let stage = if before { "input" } else { "output" };
        let kind_name = match kind {
            HookKind::Guardrail => "guardrail",
            HookKind::Mutator => "mutator",
        };
        let list = if before {
            &mut self.before
        } else {
            &mut self.after
        };
        let list = list.get_or_insert_with(Vec::new);
        for item in value.as_array().into_iter().flatten() {
            let id = format!("{stage}_{kind_name}_{}", list.len() + 1);
            let hook = match item {
                Value::String(slug) => {
                    list.push(HookRef::Saved(slug.clone()));
                    continue;
                }
                _ if shorthand => Hook::from_shorthand(item, id),
                _ => Hook::from_raw(item),
            };
            // Validation compiled the same hooks, so these are the ones that passed it.
            if let Ok(mut hook) = hook {
                if shorthand && item.get("type").is_none() {
                    hook.kind = kind;
                }
                list.push(HookRef::Inline(Arc::new(hook)));
            }
        }
        true
    }

    /// The child's hooks of a stage where it sets them, else the parent's.
    pub fn inherit(&self, parent: &HookSet) -> HookSet {
        HookSet {
            before: self.before.clone().or_else(|| parent.before.clone()),
            after: self.after.clone().or_else(|| parent.after.clone()),
        }
    }

    /// The saved guardrails named, for "which configs use this guardrail".
    pub fn saved(&self) -> impl Iterator<Item = &str> {
        [&self.before, &self.after]
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|h| match h {
                HookRef::Saved(slug) => Some(slug.as_str()),
                HookRef::Inline(_) => None,
            })
    }
}
