//! The conditional-routing query language (`strategy.conditions[i].query`), as Portkey's
//! `conditionalRouter.ts` evaluates it. Keys here are free-form: never case-converted.

use serde_json::Value;

use super::check::{self, describe, index, join, quote, Errors};

const OPERATORS: &[&str] = &[
    "$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$regex",
];

/// Checks one query object: `$and` / `$or` over sub-queries, or field paths with a value.
pub(super) fn check_query(v: &Value, path: &str, e: &mut Errors) {
    let Some(obj) = check::object(v, path, e) else {
        return;
    };
    for (key, value) in obj {
        let p = join(path, key);
        match key.as_str() {
            "$and" | "$or" => {
                let items = check::non_empty_array(value, &p, e);
                for (i, item) in items.into_iter().flatten().enumerate() {
                    check_query(item, &index(&p, i), e);
                }
            }
            k if k.starts_with('$') => e.push(
                &p,
                format!(
                    "unknown logical operator {}; expected $and or $or, or a field path such as metadata.<key>",
                    quote(k)
                ),
            ),
            k => {
                if field_path(k, &p, e) {
                    check_condition(value, &p, e);
                }
            }
        }
    }
}

/// `metadata.<k>`, `params.<k>` or `url.pathname`: exactly two segments.
fn field_path(key: &str, path: &str, e: &mut Errors) -> bool {
    let segments: Vec<&str> = key.split('.').collect();
    let known_root = matches!(segments[0], "metadata" | "params" | "url");
    if known_root && segments.len() > 2 {
        e.push(
            path,
            format!(
                "field path {} has {} segments; only two segments are supported ({}.<key>)",
                quote(key),
                segments.len(),
                segments[0]
            ),
        );
        return false;
    }
    let ok = match segments.as_slice() {
        ["metadata" | "params", k] => !k.is_empty(),
        ["url", "pathname"] => true,
        _ => false,
    };
    if !ok {
        e.push(
            path,
            format!(
                "unknown field path {}; expected metadata.<key>, params.<key> or url.pathname",
                quote(key)
            ),
        );
    }
    ok
}

/// A bare scalar (equality) or an object of operators.
fn check_condition(v: &Value, path: &str, e: &mut Errors) {
    let ops = match v {
        Value::Object(ops) => ops,
        Value::Array(_) => {
            e.push(
                path,
                "expected a value to compare or an object of operators, found an array; use {\"$in\": [...]} to match any of several values",
            );
            return;
        }
        _ => return,
    };
    if ops.is_empty() {
        e.push(
            path,
            format!(
                "empty operator object; expected one of {}",
                OPERATORS.join(", ")
            ),
        );
    }
    for (op, arg) in ops {
        let p = join(path, op);
        match op.as_str() {
            "$eq" | "$ne" => {
                if arg.is_array() || arg.is_object() {
                    e.expected(&p, "a string, number, boolean or null", arg);
                }
            }
            "$gt" | "$gte" | "$lt" | "$lte" => {
                let numeric = match arg {
                    Value::Number(_) => true,
                    Value::String(s) => s.trim().parse::<f64>().is_ok_and(f64::is_finite),
                    _ => false,
                };
                if !numeric {
                    e.push(
                        &p,
                        format!(
                            "expected a number (or a string holding one), found {}",
                            describe(arg)
                        ),
                    );
                }
            }
            "$in" | "$nin" => {
                check::array(arg, &p, e);
            }
            "$regex" => {
                if let Some(pattern) = check::string(arg, &p, e) {
                    if let Err(err) = regex::Regex::new(pattern) {
                        e.push(
                            &p,
                            format!(
                                "invalid regular expression {}: {}; Portkey would silently treat this condition as false, tollgate rejects it",
                                quote(pattern),
                                regex_error(&err)
                            ),
                        );
                    }
                }
            }
            other => {
                let mut msg = format!("unknown operator {}", quote(other));
                if let Some(s) = check::suggest(other, OPERATORS) {
                    msg.push_str(&format!("; did you mean {}?", quote(s)));
                }
                msg.push_str(&format!("; expected one of {}", OPERATORS.join(", ")));
                e.push(&p, msg);
            }
        }
    }
}

/// The regex crate's multi-line syntax errors, squeezed onto one line.
fn regex_error(err: &regex::Error) -> String {
    let text = err.to_string();
    text.lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .unwrap_or_else(|| text.lines().next().unwrap_or(""))
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn errors(query: Value) -> Vec<String> {
        let mut e = Errors::default();
        check_query(&query, "q", &mut e);
        e.0.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn every_operator_accepts_valid_arguments() {
        let q = json!({"$and": [
            {"metadata.tier": "pro"},
            {"metadata.beta": true},
            {"metadata.n": 3},
            {"metadata.x": null},
            {"metadata.tier": {"$eq": "pro"}},
            {"metadata.tier": {"$ne": 4}},
            {"params.max_tokens": {"$gt": 4000, "$lt": "8000.5"}},
            {"params.temperature": {"$gte": 0.5, "$lte": "1"}},
            {"params.model": {"$in": ["a", "b"]}},
            {"params.model": {"$nin": []}},
            {"url.pathname": {"$regex": "embeddings$"}},
            {"$or": [{"metadata.a": "1"}, {"params.stream": {"$eq": true}}]}
        ]});
        assert_eq!(errors(q), Vec::<String>::new());
    }

    #[test]
    fn every_operator_rejects_invalid_arguments() {
        let q = json!({
            "metadata.a": {"$eq": [1]},
            "metadata.b": {"$ne": {"x": 1}},
            "metadata.c": {"$gt": "abc", "$gte": true},
            "metadata.d": {"$lt": null, "$lte": [1]},
            "metadata.e": {"$in": "a", "$nin": {"a": 1}},
            "metadata.f": {"$regex": 5},
            "metadata.g": {"$regex": "(unclosed"},
            "metadata.h": {"$like": "x", "$eqq": 1},
            "metadata.i": {},
            "metadata.j": ["a", "b"]
        });
        assert_eq!(
            errors(q),
            [
                "q.metadata.a.$eq: expected a string, number, boolean or null, found an array",
                "q.metadata.b.$ne: expected a string, number, boolean or null, found an object",
                r#"q.metadata.c.$gt: expected a number (or a string holding one), found string "abc""#,
                "q.metadata.c.$gte: expected a number (or a string holding one), found boolean true",
                "q.metadata.d.$lt: expected a number (or a string holding one), found null",
                "q.metadata.d.$lte: expected a number (or a string holding one), found an array",
                r#"q.metadata.e.$in: expected an array, found string "a""#,
                "q.metadata.e.$nin: expected an array, found an object",
                "q.metadata.f.$regex: expected a string, found number 5",
                r#"q.metadata.g.$regex: invalid regular expression "(unclosed": unclosed group; Portkey would silently treat this condition as false, tollgate rejects it"#,
                r#"q.metadata.h.$like: unknown operator "$like"; did you mean "$lte"?; expected one of $eq, $ne, $gt, $gte, $lt, $lte, $in, $nin, $regex"#,
                r#"q.metadata.h.$eqq: unknown operator "$eqq"; did you mean "$eq"?; expected one of $eq, $ne, $gt, $gte, $lt, $lte, $in, $nin, $regex"#,
                "q.metadata.i: empty operator object; expected one of $eq, $ne, $gt, $gte, $lt, $lte, $in, $nin, $regex",
                r#"q.metadata.j: expected a value to compare or an object of operators, found an array; use {"$in": [...]} to match any of several values"#,
            ]
        );
    }

    #[test]
    fn field_paths_and_logical_operators() {
        let q = json!({
            "metadata.a.b": 1,
            "body.model": "x",
            "url.host": "x",
            "metadata.": 1,
            "$not": [],
            "$and": [],
            "$or": [{"params.model": "a"}, "oops", {"params.x": {"$in": 1}}]
        });
        assert_eq!(
            errors(q),
            [
                r#"q.metadata.a.b: field path "metadata.a.b" has 3 segments; only two segments are supported (metadata.<key>)"#,
                r#"q.body.model: unknown field path "body.model"; expected metadata.<key>, params.<key> or url.pathname"#,
                r#"q.url.host: unknown field path "url.host"; expected metadata.<key>, params.<key> or url.pathname"#,
                r#"q.metadata.: unknown field path "metadata."; expected metadata.<key>, params.<key> or url.pathname"#,
                r#"q.$not: unknown logical operator "$not"; expected $and or $or, or a field path such as metadata.<key>"#,
                "q.$and: must not be empty",
                r#"q.$or[1]: expected an object, found string "oops""#,
                "q.$or[2].params.x.$in: expected an array, found number 1",
            ]
        );
    }

    #[test]
    fn nested_logic_reports_deep_paths() {
        let q = json!({"$and": [{"metadata.a": 1}, {"$or": [{"params.m": {"$regex": "["}}]}]});
        let got = errors(q);
        assert_eq!(got.len(), 1);
        assert!(
            got[0]
                .starts_with("q.$and[1].$or[0].params.m.$regex: invalid regular expression \"[\""),
            "{}",
            got[0]
        );
        assert_eq!(
            errors(json!("x")),
            [r#"q: expected an object, found string "x""#]
        );
    }
}
