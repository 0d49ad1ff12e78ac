//! Per-target policies: `retry`, `cache` and the circuit breaker's `cb_config`.

use serde_json::Value;

use super::check::{self, join, quote, Errors};

const RETRY_FIELDS: &[&str] = &[
    "attempts",
    "on_status_codes",
    "use_retry_after_header",
    "use_retry_after_headers",
];
const CACHE_FIELDS: &[&str] = &["mode", "max_age", "embedding_model", "threshold"];
const NINETY_DAYS: i64 = 90 * 24 * 3600;

/// `retry: {attempts, on_status_codes?, use_retry_after_header(s)?}`. The code Portkey runs reads
/// the singular flag and its docs write the plural, so both are accepted.
pub(super) fn check_retry(v: &Value, path: &str, e: &mut Errors) {
    let Some(obj) = check::object(v, path, e) else {
        return;
    };
    let fields = check::fields(obj, path, e);
    let mut flag: Option<(&str, bool)> = None;
    for f in &fields {
        match f.name.as_str() {
            "attempts" => {
                check::int_in(f.value, &f.path, 0, 5, e);
            }
            "on_status_codes" => check::status_codes(f.value, &f.path, e),
            "use_retry_after_header" | "use_retry_after_headers" => {
                let Some(b) = check::boolean(f.value, &f.path, e) else {
                    continue;
                };
                match flag {
                    Some((first, before)) if before != b => e.push(
                        &f.path,
                        format!(
                            "conflicts with {}: both spellings are accepted, but they must agree",
                            quote(first)
                        ),
                    ),
                    _ => flag = Some((f.key, b)),
                }
            }
            _ => check::unknown_field(e, f, RETRY_FIELDS),
        }
    }
    if check::get(&fields, "attempts").is_none() {
        e.push(&join(path, "attempts"), "required: an integer from 0 to 5");
    }
}

/// `cache: {mode: simple|semantic, max_age?, embedding_model?, threshold?}` with `max_age` in
/// seconds. Portkey's minimum is 60 s; tollgate honours anything from 1 s (tests prove expiry
/// without long waits). Semantic mode needs the `@integration/model` that embeds prompts.
pub(super) fn check_cache(v: &Value, path: &str, e: &mut Errors) {
    let Some(obj) = check::object(v, path, e) else {
        return;
    };
    let fields = check::fields(obj, path, e);
    let mut semantic = false;
    for f in &fields {
        match f.name.as_str() {
            "mode" => {
                if let Some(mode) = check::string(f.value, &f.path, e) {
                    semantic = mode == "semantic";
                    if mode != "simple" && !semantic {
                        e.push(
                            &f.path,
                            format!(
                                "unknown cache mode {}; expected simple or semantic",
                                quote(mode)
                            ),
                        );
                    }
                }
            }
            "max_age" => {
                if let Some(n) = check::integer(f.value, &f.path, e) {
                    if !(1..=NINETY_DAYS).contains(&n) {
                        e.push(
                            &f.path,
                            format!(
                                "must be between 1 and {NINETY_DAYS} seconds (90 days), found {n}"
                            ),
                        );
                    }
                }
            }
            "embedding_model" => {
                if let Some(m) = check::string(f.value, &f.path, e) {
                    let parsed = crate::gateway::model::parse(m);
                    if parsed.slug.is_none() || parsed.model.is_empty() {
                        e.push(
                            &f.path,
                            format!(
                                "expected @integration-slug/model, e.g. @openai-dev/text-embedding-3-small, found {}",
                                quote(m)
                            ),
                        );
                    }
                }
            }
            "threshold" => {
                if let Some(n) = check::number(f.value, &f.path, e) {
                    if !(0.0..=1.0).contains(&n) {
                        e.push(&f.path, format!("must be between 0 and 1, found {n}"));
                    }
                }
            }
            _ => check::unknown_field(e, f, CACHE_FIELDS),
        }
    }
    if check::get(&fields, "mode").is_none() {
        e.push(&join(path, "mode"), "required: simple or semantic");
    }
    if semantic && check::get(&fields, "embedding_model").is_none() {
        e.push(
            &join(path, "embedding_model"),
            "required by the semantic mode: the @integration-slug/model that embeds prompts",
        );
    }
    if !semantic && check::get(&fields, "mode").is_some() {
        for f in &fields {
            if f.name == "embedding_model" || f.name == "threshold" {
                e.push(&f.path, "applies only to the semantic mode");
            }
        }
    }
}

/// `cb_config` is free-form (its keys are not converted and unknown keys pass); the known
/// settings are type-checked.
pub(super) fn check_cb_config(v: &Value, path: &str, e: &mut Errors) {
    let Some(obj) = check::object(v, path, e) else {
        return;
    };
    for (key, value) in obj {
        let p = join(path, key);
        match key.as_str() {
            "failure_threshold" | "minimum_requests" => {
                check::positive_int(value, &p, e);
            }
            "failure_threshold_percentage" => {
                if let Some(n) = check::number(value, &p, e) {
                    if !(0.0..=100.0).contains(&n) {
                        e.push(&p, format!("must be between 0 and 100, found {value}"));
                    }
                }
            }
            "cooldown_interval" => {
                check::int_at_least(value, &p, 30000, e);
            }
            "failure_status_codes" => {
                for (i, item) in check::array(value, &p, e).into_iter().flatten().enumerate() {
                    check::integer(item, &check::index(&p, i), e);
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(f: fn(&Value, &str, &mut Errors), v: Value) -> Vec<String> {
        let mut e = Errors::default();
        f(&v, "retry", &mut e);
        e.0.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn retry_accepts_both_flag_spellings_and_camel_case() {
        let ok = Vec::<String>::new();
        assert_eq!(
            run(
                check_retry,
                json!({"attempts": 2, "use_retry_after_header": true})
            ),
            ok
        );
        assert_eq!(
            run(
                check_retry,
                json!({"attempts": 2, "use_retry_after_headers": true})
            ),
            ok
        );
        assert_eq!(
            run(
                check_retry,
                json!({"attempts": 0, "useRetryAfterHeader": false, "onStatusCodes": [429]})
            ),
            ok
        );
        assert_eq!(
            run(
                check_retry,
                json!({"attempts": 5, "use_retry_after_header": true, "use_retry_after_headers": true})
            ),
            ok
        );
    }

    #[test]
    fn retry_errors() {
        assert_eq!(
            run(
                check_retry,
                json!({"atempts": 3, "use_retry_after_header": true, "use_retry_after_headers": false, "on_status_codes": [600]})
            ),
            [
                r#"retry.atempts: unknown field "atempts"; did you mean "attempts"?"#,
                r#"retry.use_retry_after_headers: conflicts with "use_retry_after_header": both spellings are accepted, but they must agree"#,
                "retry.on_status_codes[0]: must be an HTTP status code between 100 and 599, found 600",
                "retry.attempts: required: an integer from 0 to 5",
            ]
        );
        assert_eq!(
            run(check_retry, json!({"attempts": 6})),
            ["retry.attempts: must be between 0 and 5, found 6"]
        );
        assert_eq!(
            run(check_retry, json!({"attempts": "3"})),
            [r#"retry.attempts: expected an integer, found string "3""#]
        );
        assert_eq!(
            run(check_retry, json!(3)),
            ["retry: expected an object, found number 3"]
        );
    }

    #[test]
    fn cache_rules() {
        assert_eq!(
            run(
                check_cache,
                json!({"mode": "semantic", "maxAge": 1, "embeddingModel": "@oai/text-embedding-3-small", "threshold": 0.9})
            ),
            Vec::<String>::new()
        );
        assert_eq!(
            run(
                check_cache,
                json!({"mode": "exact", "max_age": 0, "ttl": 5})
            ),
            [
                r#"retry.mode: unknown cache mode "exact"; expected simple or semantic"#,
                "retry.max_age: must be between 1 and 7776000 seconds (90 days), found 0",
                r#"retry.ttl: unknown field "ttl"; expected one of mode, max_age, embedding_model, threshold"#,
            ]
        );
        assert_eq!(
            run(check_cache, json!({})),
            ["retry.mode: required: simple or semantic"]
        );
        assert_eq!(
            run(check_cache, json!({"mode": "simple", "max_age": 7776001})),
            ["retry.max_age: must be between 1 and 7776000 seconds (90 days), found 7776001"]
        );
        assert_eq!(
            run(check_cache, json!({"mode": "semantic", "threshold": 1.5})),
            [
                "retry.threshold: must be between 0 and 1, found 1.5",
                "retry.embedding_model: required by the semantic mode: the @integration-slug/model that embeds prompts",
            ]
        );
        assert_eq!(
            run(
                check_cache,
                json!({"mode": "semantic", "embedding_model": "text-embedding-3-small"})
            ),
            [
                r#"retry.embedding_model: expected @integration-slug/model, e.g. @openai-dev/text-embedding-3-small, found "text-embedding-3-small""#
            ]
        );
        assert_eq!(
            run(check_cache, json!({"mode": "simple", "threshold": 0.5})),
            ["retry.threshold: applies only to the semantic mode"]
        );
    }

    #[test]
    fn cb_config_rules() {
        let good = json!({"failure_threshold": 5, "failure_threshold_percentage": 50.5,
            "minimum_requests": 10, "cooldown_interval": 30000, "failure_status_codes": [500, 502],
            "anything_else": true});
        assert_eq!(run(check_cb_config, good), Vec::<String>::new());
        let bad = json!({"failure_threshold": 0, "failure_threshold_percentage": 101,
            "minimum_requests": "3", "cooldown_interval": 1000, "failure_status_codes": ["500"]});
        assert_eq!(
            run(check_cb_config, bad),
            [
                "retry.failure_threshold: must be a positive integer, found 0",
                "retry.failure_threshold_percentage: must be between 0 and 100, found 101",
                r#"retry.minimum_requests: expected an integer, found string "3""#,
                "retry.cooldown_interval: must be >= 30000, found 1000",
                r#"retry.failure_status_codes[0]: expected an integer, found string "500""#,
            ]
        );
    }
}
