//! `strategy`: the routing mode and its mode-specific settings (fallback status codes,
//! conditional routes, sticky load balancing).

use serde_json::Value;

use super::check::{self, index, join, quote, Errors, Field};
use super::conditions;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    Single,
    Loadbalance,
    Fallback,
    Conditional,
}

const MODES: &str = "single, loadbalance, fallback, conditional";
const STRATEGY_FIELDS: &[&str] = &["mode", "on_status_codes", "conditions", "default", "sticky"];
const CONDITION_FIELDS: &[&str] = &["query", "then"];
const STICKY_FIELDS: &[&str] = &["enabled", "hash_fields", "ttl"];

impl Mode {
    fn parse(s: &str) -> Option<Mode> {
        Some(match s {
            "single" => Mode::Single,
            "loadbalance" => Mode::Loadbalance,
            "fallback" => Mode::Fallback,
            "conditional" => Mode::Conditional,
            _ => return None,
        })
    }

    /// The mode of a `strategy` value, when it has a valid one.
    pub(super) fn of(strategy: &Value) -> Option<Mode> {
        strategy
            .get("mode")
            .and_then(Value::as_str)
            .and_then(Mode::parse)
    }
}

/// What the strategy needs to know about the `targets` beside it.
pub(super) struct Siblings<'a> {
    /// The targets' names; `None` when `targets` is missing or not an array.
    pub(super) names: Option<Vec<&'a str>>,
    /// Every target sets `weight` to 0 (an unset weight counts as 1).
    pub(super) all_weights_zero: bool,
}

pub(super) fn check_strategy(v: &Value, path: &str, targets: &Siblings, e: &mut Errors) {
    let Some(obj) = check::object(v, path, e) else {
        return;
    };
    let mode = Mode::of(v);
    let fields = check::fields(obj, path, e);
    let only_with = |f: &Field, wanted: Mode, e: &mut Errors| -> bool {
        match mode {
            Some(m) if m != wanted => {
                let name = format!("{wanted:?}").to_lowercase();
                e.push(&f.path, format!("only allowed with mode \"{name}\""));
                false
            }
            _ => true,
        }
    };
    for f in &fields {
        match f.name.as_str() {
            "mode" => {
                if let Some(s) = check::string(f.value, &f.path, e) {
                    if Mode::parse(s).is_none() {
                        e.push(
                            &f.path,
                            format!("unknown mode {}; expected one of {MODES}", quote(s)),
                        );
                    }
                }
            }
            "on_status_codes" => check::status_codes(f.value, &f.path, e),
            "conditions" => {
                if only_with(f, Mode::Conditional, e) {
                    check_conditions(f.value, &f.path, targets, e);
                }
            }
            "default" => {
                if only_with(f, Mode::Conditional, e) {
                    if let Some(name) = check::string(f.value, &f.path, e) {
                        target_ref(name, &f.path, targets, e);
                    }
                }
            }
            "sticky" => {
                if only_with(f, Mode::Loadbalance, e) {
                    check_sticky(f.value, &f.path, e);
                }
            }
            _ => check::unknown_field(e, f, STRATEGY_FIELDS),
        }
    }
    if check::get(&fields, "mode").is_none() {
        e.push(&join(path, "mode"), format!("required: one of {MODES}"));
    }
    if mode == Some(Mode::Conditional) && check::get(&fields, "conditions").is_none() {
        e.push(
            &join(path, "conditions"),
            "required for mode \"conditional\": an array of {\"query\": {...}, \"then\": \"<target name>\"}",
        );
    }
    if mode == Some(Mode::Loadbalance) && targets.all_weights_zero {
        e.push(path, "at least one target needs a weight above 0");
    }
}

fn check_conditions(v: &Value, path: &str, targets: &Siblings, e: &mut Errors) {
    for (i, item) in check::non_empty_array(v, path, e)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let p = index(path, i);
        let Some(obj) = check::object(item, &p, e) else {
            continue;
        };
        // Portkey leaves `conditions` unconverted, so these keys are exact.
        for (key, value) in obj {
            let kp = join(&p, key);
            match key.as_str() {
                "query" => conditions::check_query(value, &kp, e),
                "then" => {
                    if let Some(name) = check::string(value, &kp, e) {
                        target_ref(name, &kp, targets, e);
                    }
                }
                _ => {
                    let f = Field {
                        key,
                        name: key.clone(),
                        value,
                        path: kp,
                    };
                    check::unknown_field(e, &f, CONDITION_FIELDS);
                }
            }
        }
        for required in CONDITION_FIELDS {
            if !obj.contains_key(*required) {
                e.push(&join(&p, required), "required");
            }
        }
    }
}

/// `then` and `default` must name a target at this level.
fn target_ref(name: &str, path: &str, targets: &Siblings, e: &mut Errors) {
    let Some(names) = &targets.names else {
        return;
    };
    if names.contains(&name) {
        return;
    }
    let known = if names.is_empty() {
        "no target here has a \"name\"".to_string()
    } else {
        format!("target names here are {}", names.join(", "))
    };
    e.push(path, format!("no target named {}; {known}", quote(name)));
}

fn check_sticky(v: &Value, path: &str, e: &mut Errors) {
    let Some(obj) = check::object(v, path, e) else {
        return;
    };
    for f in &check::fields(obj, path, e) {
        match f.name.as_str() {
            "enabled" => {
                check::boolean(f.value, &f.path, e);
            }
            "hash_fields" => {
                check::strings(f.value, &f.path, e);
            }
            "ttl" => {
                check::positive_int(f.value, &f.path, e);
            }
            _ => check::unknown_field(e, f, STICKY_FIELDS),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(v: Value, names: Option<Vec<&str>>, all_weights_zero: bool) -> Vec<String> {
        let mut e = Errors::default();
        let siblings = Siblings {
            names,
            all_weights_zero,
        };
        check_strategy(&v, "strategy", &siblings, &mut e);
        e.0.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn valid_strategies() {
        let none = Vec::<String>::new();
        assert_eq!(run(json!({"mode": "single"}), Some(vec![]), false), none);
        assert_eq!(
            run(
                json!({"mode": "fallback", "onStatusCodes": [429, 446]}),
                None,
                false
            ),
            none
        );
        let sticky = json!({"mode": "loadbalance", "sticky": {"enabled": true, "hashFields": ["metadata.user_id"], "ttl": 3600}});
        assert_eq!(run(sticky, Some(vec![]), false), none);
        let cond = json!({"mode": "conditional", "conditions": [{"query": {"metadata.a": 1}, "then": "a"}], "default": "b"});
        assert_eq!(run(cond, Some(vec!["a", "b"]), false), none);
    }

    #[test]
    fn mode_errors() {
        assert_eq!(
            run(json!({"mode": "fallbak"}), None, false),
            [
                r#"strategy.mode: unknown mode "fallbak"; expected one of single, loadbalance, fallback, conditional"#
            ]
        );
        assert_eq!(
            run(json!({"on_status_codes": [500]}), None, false),
            ["strategy.mode: required: one of single, loadbalance, fallback, conditional"]
        );
        assert_eq!(
            run(json!({"mode": "fallback", "mod": 1}), None, false),
            [r#"strategy.mod: unknown field "mod"; did you mean "mode"?"#]
        );
        assert_eq!(
            run(json!({"mode": "loadbalance"}), Some(vec![]), true),
            ["strategy: at least one target needs a weight above 0"]
        );
    }

    #[test]
    fn mode_specific_fields() {
        let v = json!({"mode": "fallback", "conditions": [], "default": "x", "sticky": {}});
        assert_eq!(
            run(v, None, false),
            [
                r#"strategy.conditions: only allowed with mode "conditional""#,
                r#"strategy.default: only allowed with mode "conditional""#,
                r#"strategy.sticky: only allowed with mode "loadbalance""#,
            ]
        );
        let v = json!({"mode": "loadbalance", "sticky": {"enabled": "yes", "hash_fields": [1], "ttl": 0, "tll": 5}});
        assert_eq!(
            run(v, None, false),
            [
                r#"strategy.sticky.enabled: expected a boolean, found string "yes""#,
                "strategy.sticky.hash_fields[0]: expected a string, found number 1",
                "strategy.sticky.ttl: must be a positive integer, found 0",
                r#"strategy.sticky.tll: unknown field "tll"; did you mean "ttl"?"#,
            ]
        );
    }

    #[test]
    fn conditional_routes() {
        assert_eq!(
            run(json!({"mode": "conditional"}), Some(vec!["a"]), false),
            [
                r#"strategy.conditions: required for mode "conditional": an array of {"query": {...}, "then": "<target name>"}"#
            ]
        );
        assert_eq!(
            run(
                json!({"mode": "conditional", "conditions": []}),
                Some(vec!["a"]),
                false
            ),
            ["strategy.conditions: must not be empty"]
        );
        let v = json!({"mode": "conditional", "conditions": [
            {"query": {"metadata.a": 1}, "then": "c"},
            {"then": "a", "els": "b"},
            {"query": {"params.x": {"$bad": 1}}, "then": 3}
        ], "default": "zz"});
        assert_eq!(
            run(v, Some(vec!["a", "b"]), false),
            [
                r#"strategy.conditions[0].then: no target named "c"; target names here are a, b"#,
                r#"strategy.conditions[1].els: unknown field "els"; expected one of query, then"#,
                "strategy.conditions[1].query: required",
                r#"strategy.conditions[2].query.params.x.$bad: unknown operator "$bad"; expected one of $eq, $ne, $gt, $gte, $lt, $lte, $in, $nin, $regex"#,
                "strategy.conditions[2].then: expected a string, found number 3",
                r#"strategy.default: no target named "zz"; target names here are a, b"#,
            ]
        );
        let v = json!({"mode": "conditional", "conditions": [{"query": {}, "then": "a"}]});
        assert_eq!(
            run(v, Some(vec![]), false),
            [r#"strategy.conditions[0].then: no target named "a"; no target here has a "name""#]
        );
    }
}
