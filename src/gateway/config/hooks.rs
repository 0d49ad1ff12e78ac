//! Guardrail and hook shapes: the shorthand lists (`input_guardrails`, `output_guardrails`,
//! `input_mutators`, `output_mutators`) and raw hooks (`before_request_hooks`,
//! `after_request_hooks`).

use serde_json::{Map, Value};

use crate::guardrails::SHORTHAND_SETTINGS;

use super::check::{self, index, join, quote, Errors, Field};

const RAW_HOOK_FIELDS: &[&str] = &[
    "id",
    "type",
    "checks",
    "deny",
    "async",
    "sequential",
    "on_fail",
    "on_success",
    "guardrail_version_id",
];

/// A shorthand list: saved guardrail ids (`pg-abc-123`) or inline objects.
pub(super) fn check_guardrails(v: &Value, path: &str, e: &mut Errors) {
    for (i, item) in check::array(v, path, e).into_iter().flatten().enumerate() {
        let p = index(path, i);
        match item {
            Value::String(_) => {
                check::non_empty_string(item, &p, e);
            }
            Value::Object(obj) => {
                let mut checks = 0;
                for f in check::fields(obj, &p, e) {
                    if SHORTHAND_SETTINGS.contains(&f.name.as_str()) {
                        reserved(&f, e);
                    } else {
                        checks += 1;
                        shorthand_check(&f, e);
                    }
                }
                if checks == 0 {
                    e.push(
                        &p,
                        "guardrail has no checks; add one such as \"default.contains\": {\"words\": [...]}, or give a saved guardrail id as a string",
                    );
                }
            }
            other => e.expected(&p, "a guardrail id string or a guardrail object", other),
        }
    }
}

/// `contains: {...}` (→ `default.contains`) or `plugin.fn: {...}`.
fn shorthand_check(f: &Field, e: &mut Errors) {
    if !check_id_ok(f.key, false) {
        e.push(
            &f.path,
            format!(
                "invalid check id {}; expected a check name like \"contains\" or \"plugin.check\"",
                quote(f.key)
            ),
        );
        return;
    }
    let full = if f.key.contains('.') {
        f.key.to_string()
    } else {
        format!("default.{}", f.key)
    };
    if let Some(params) = f.value.as_object() {
        engine_check(&full, params, &f.path, &f.path, e);
    } else {
        let mut msg = format!(
            "check {} ({full}) takes an object of parameters, found {}",
            quote(f.key),
            check::describe(f.value)
        );
        if let Some(s) = check::suggest(&f.name, SHORTHAND_SETTINGS) {
            msg.push_str(&format!("; did you mean the setting {}?", quote(s)));
        }
        e.push(&f.path, msg);
    }
}

/// What the guardrail engine says of check `id` with `params`: an unsupported check, a
/// missing or invalid parameter, a regex or schema that does not compile.
fn engine_check(
    id: &str,
    params: &Map<String, Value>,
    id_path: &str,
    params_path: &str,
    e: &mut Errors,
) {
    if let Err(errors) = crate::guardrails::compile_check(id, params) {
        for err in errors {
            e.push(&err.path(id_path, params_path), err.message);
        }
    }
}

/// `plugin.fn`, or (in shorthand) a bare `fn` that means `default.fn`.
fn check_id_ok(id: &str, dot_required: bool) -> bool {
    let part_ok = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    };
    match id.split_once('.') {
        Some((plugin, name)) => part_ok(plugin) && part_ok(name),
        None => !dot_required && part_ok(id),
    }
}

/// The settings shared by shorthand objects and raw hooks.
fn reserved(f: &Field, e: &mut Errors) {
    match f.name.as_str() {
        "deny" | "async" | "sequential" => {
            check::boolean(f.value, &f.path, e);
        }
        "on_fail" | "on_success" => {
            check::object(f.value, &f.path, e);
        }
        "id" => {
            check::non_empty_string(f.value, &f.path, e);
        }
        "guardrail_version_id" => {
            check::string(f.value, &f.path, e);
        }
        "type" => {
            if let Some(t) = check::string(f.value, &f.path, e) {
                if t != "guardrail" && t != "mutator" {
                    e.push(
                        &f.path,
                        format!(
                            "unknown hook type {}; expected guardrail or mutator",
                            quote(t)
                        ),
                    );
                }
            }
        }
        _ => unreachable!("not a reserved hook key: {}", f.name),
    }
}

/// `before_request_hooks` / `after_request_hooks`: an array of raw hook objects.
pub(super) fn check_raw_hooks(v: &Value, path: &str, e: &mut Errors) {
    for (i, item) in check::array(v, path, e).into_iter().flatten().enumerate() {
        let p = index(path, i);
        let Some(obj) = check::object(item, &p, e) else {
            continue;
        };
        let fields = check::fields(obj, &p, e);
        for f in &fields {
            match f.name.as_str() {
                "checks" => raw_checks(f.value, &f.path, e),
                name if RAW_HOOK_FIELDS.contains(&name) => reserved(f, e),
                _ => check::unknown_field(e, f, RAW_HOOK_FIELDS),
            }
        }
        if check::get(&fields, "checks").is_none() {
            e.push(
                &join(&p, "checks"),
                "required: a non-empty array of {\"id\": \"plugin.check\", \"parameters\": {...}}",
            );
        }
    }
}

/// The `checks` subtree is free-form (keys are not converted), so only `id`, `parameters` and
/// `is_enabled` are looked at.
fn raw_checks(v: &Value, path: &str, e: &mut Errors) {
    for (i, item) in check::non_empty_array(v, path, e)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let p = index(path, i);
        let Some(obj) = check::object(item, &p, e) else {
            continue;
        };
        match obj.get("id") {
            None => e.push(
                &join(&p, "id"),
                "required: a check id such as \"default.contains\"",
            ),
            Some(id) => {
                let id_path = join(&p, "id");
                if let Some(id) = check::string(id, &id_path, e) {
                    if !check_id_ok(id, true) {
                        e.push(
                            &id_path,
                            format!(
                                "invalid check id {}; expected \"plugin.check\", e.g. \"default.contains\"",
                                quote(id)
                            ),
                        );
                    } else {
                        let none = Map::new();
                        if let Some(params) =
                            obj.get("parameters").map_or(Some(&none), Value::as_object)
                        {
                            engine_check(id, params, &id_path, &join(&p, "parameters"), e);
                        }
                    }
                }
            }
        }
        if let Some(params) = obj.get("parameters") {
            check::object(params, &join(&p, "parameters"), e);
        }
        if let Some(enabled) = obj.get("is_enabled") {
            check::boolean(enabled, &join(&p, "is_enabled"), e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn shorthand(v: Value) -> Vec<String> {
        let mut e = Errors::default();
        check_guardrails(&v, "input_guardrails", &mut e);
        e.0.iter().map(|x| x.to_string()).collect()
    }

    fn raw(v: Value) -> Vec<String> {
        let mut e = Errors::default();
        check_raw_hooks(&v, "before_request_hooks", &mut e);
        e.0.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn shorthand_and_ids_valid() {
        let v = json!([
            "pg-abc-123",
            {"default.contains": {"operator": "none", "words": ["Apple"]}, "deny": true},
            {"regexMatch": {"rule": "\\d+"}, "async": false, "sequential": true,
             "on_fail": {"feedback": {"value": -1}}, "onSuccess": {}, "id": "g1",
             "type": "mutator", "guardrail_version_id": "v1"},
            {"portkey.pii": {}}
        ]);
        assert_eq!(shorthand(v), Vec::<String>::new());
    }

    #[test]
    fn shorthand_invalid() {
        let v = json!([
            "",
            {"deny": true},
            {"contains": ["Apple"], "deny": "yes", "type": "filter"},
            {"deney": true, "wordCount": {}},
            {"a.b.c": {}, "async": 1, "on_fail": true},
            7
        ]);
        assert_eq!(
            shorthand(v),
            [
                "input_guardrails[0]: must not be empty",
                r#"input_guardrails[1]: guardrail has no checks; add one such as "default.contains": {"words": [...]}, or give a saved guardrail id as a string"#,
                r#"input_guardrails[2].contains: check "contains" (default.contains) takes an object of parameters, found an array"#,
                r#"input_guardrails[2].deny: expected a boolean, found string "yes""#,
                r#"input_guardrails[2].type: unknown hook type "filter"; expected guardrail or mutator"#,
                r#"input_guardrails[3].deney: check "deney" (default.deney) takes an object of parameters, found boolean true; did you mean the setting "deny"?"#,
                r#"input_guardrails[4].a.b.c: invalid check id "a.b.c"; expected a check name like "contains" or "plugin.check""#,
                "input_guardrails[4].async: expected a boolean, found number 1",
                "input_guardrails[4].on_fail: expected an object, found boolean true",
                "input_guardrails[5]: expected a guardrail id string or a guardrail object, found number 7",
            ]
        );
        assert_eq!(
            shorthand(json!({})),
            ["input_guardrails: expected an array, found an object"]
        );
    }

    #[test]
    fn raw_hooks_valid() {
        let v = json!([{
            "id": "input_guardrail_1", "type": "guardrail", "deny": true, "async": false,
            "sequential": false, "on_fail": {"feedback": {"value": 0}}, "on_success": {},
            "checks": [
                {"id": "default.regexMatch", "parameters": {"rule": "x"}, "is_enabled": true},
                {"id": "portkey.pii", "parameters": {"redact": true}}
            ]
        }, {"type": "mutator", "checks": [{"id": "default.regexReplace", "parameters": {"rule": "x"}}], "onFail": {}}]);
        assert_eq!(raw(v), Vec::<String>::new());
    }

    #[test]
    fn checks_are_compiled_by_the_engine() {
        let v = json!([{"checks": [
            {"id": "default.regexMatch", "parameters": {"rule": "("}},
            {"id": "portkey.moderateContent"},
            {"id": "default.contains", "parameters": {"operator": "some"}}
        ]}]);
        let errors = raw(v);
        assert_eq!(errors.len(), 4, "{errors:?}");
        assert!(errors[0].starts_with(
            "before_request_hooks[0].checks[0].parameters.rule: invalid regular expression"
        ));
        assert!(errors[1].starts_with(r#"before_request_hooks[0].checks[1].id: unsupported check "portkey.moderateContent"; supported: default.regexMatch,"#));
        assert_eq!(errors[2], "before_request_hooks[0].checks[2].parameters.words: required: a non-empty array of words or phrases to look for");
        assert_eq!(
            errors[3],
            r#"before_request_hooks[0].checks[2].parameters.operator: unknown value "some"; expected one of any, all, none"#
        );
        assert_eq!(
            shorthand(json!([{"wordCount": {"minWords": 5, "maxWords": 2}}, {"pii": {"categories": ["NAME"]}}])),
            [
                "input_guardrails[0].wordCount.maxWords: must be at least minWords (5), found 2",
                "input_guardrails[1].pii.categories: unknown PII category \"NAME\"; supported: EMAIL_ADDRESS, PHONE_NUMBER, CREDIT_CARD, IBAN_CODE, SSN, IP_ADDRESS, SECRET",
            ]
        );
    }

    #[test]
    fn raw_hooks_invalid() {
        let v = json!([
            {"type": "guardrail"},
            {"checks": []},
            {"checks": [{"parameters": []}, {"id": "contains", "is_enabled": "no"}, 3], "dny": true, "mode": "x"},
            "pg-abc"
        ]);
        assert_eq!(
            raw(v),
            [
                r#"before_request_hooks[0].checks: required: a non-empty array of {"id": "plugin.check", "parameters": {...}}"#,
                "before_request_hooks[1].checks: must not be empty",
                r#"before_request_hooks[2].checks[0].id: required: a check id such as "default.contains""#,
                "before_request_hooks[2].checks[0].parameters: expected an object, found an array",
                r#"before_request_hooks[2].checks[1].id: invalid check id "contains"; expected "plugin.check", e.g. "default.contains""#,
                r#"before_request_hooks[2].checks[1].is_enabled: expected a boolean, found string "no""#,
                "before_request_hooks[2].checks[2]: expected an object, found number 3",
                r#"before_request_hooks[2].dny: unknown field "dny"; did you mean "deny"?"#,
                r#"before_request_hooks[2].mode: unknown field "mode"; expected one of id, type, checks, deny, async, sequential, on_fail, on_success, guardrail_version_id"#,
                r#"before_request_hooks[3]: expected an object, found string "pg-abc""#,
            ]
        );
    }
}
