//! Evaluates conditional-routing queries (validated by `config::conditions`) against a request:
//! `metadata.<k>`, `params.<k>` (the request body as sent) and `url.pathname`.

use serde_json::{Map, Value};

pub struct Context<'a> {
    pub metadata: &'a Map<String, Value>,
    /// The request body as the client sent it.
    pub params: &'a Map<String, Value>,
    pub pathname: &'a str,
}

impl Context<'_> {
    fn field(&self, path: &str) -> Option<Value> {
        match path.split_once('.')? {
            ("metadata", k) => self.metadata.get(k).cloned(),
            ("params", k) => self.params.get(k).cloned(),
            ("url", "pathname") => Some(Value::String(self.pathname.to_string())),
            _ => None,
        }
    }
}

/// True when the request satisfies `query`. As in Portkey, `$and`/`$or` decide the whole
/// object they appear in, and `$regex` decides the operator object it appears in.
pub fn matches(query: &Value, ctx: &Context) -> bool {
    let Some(obj) = query.as_object() else {
        return false;
    };
    if let Some(Value::Array(all)) = obj.get("$and") {
        return all.iter().all(|q| matches(q, ctx));
    }
    if let Some(Value::Array(any)) = obj.get("$or") {
        return any.iter().any(|q| matches(q, ctx));
    }
    obj.iter()
        .all(|(path, condition)| holds(ctx.field(path).as_ref(), condition))
}

fn holds(actual: Option<&Value>, condition: &Value) -> bool {
    let Some(ops) = condition
        .as_object()
        .filter(|o| o.keys().all(|k| k.starts_with('$')))
    else {
        return actual.is_some_and(|a| loosely_equal(a, condition));
    };
    for (op, expected) in ops {
        let ok = match op.as_str() {
            "$eq" => actual.is_some_and(|a| loosely_equal(a, expected)),
            "$ne" => !actual.is_some_and(|a| loosely_equal(a, expected)),
            "$gt" => compare(actual, expected).is_some_and(|o| o.is_gt()),
            "$gte" => compare(actual, expected).is_some_and(|o| o.is_ge()),
            "$lt" => compare(actual, expected).is_some_and(|o| o.is_lt()),
            "$lte" => compare(actual, expected).is_some_and(|o| o.is_le()),
            "$in" => in_list(actual, expected),
            "$nin" => !in_list(actual, expected),
            "$regex" => {
                return actual.is_some_and(|a| {
                    expected
                        .as_str()
                        .and_then(|p| regex::Regex::new(p).ok())
                        .is_some_and(|re| re.is_match(&text(a)))
                })
            }
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    true
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Metadata values are strings while configs often write numbers: `"3"` equals `3`.
fn loosely_equal(a: &Value, b: &Value) -> bool {
    a == b
        || (matches!(a, Value::String(_) | Value::Number(_) | Value::Bool(_))
            && matches!(b, Value::String(_) | Value::Number(_) | Value::Bool(_))
            && text(a) == text(b))
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn compare(actual: Option<&Value>, expected: &Value) -> Option<std::cmp::Ordering> {
    number(actual?)?.partial_cmp(&number(expected)?)
}

fn in_list(actual: Option<&Value>, list: &Value) -> bool {
    match (actual, list.as_array()) {
        (Some(a), Some(items)) => items.iter().any(|i| loosely_equal(a, i)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(query: Value, metadata: Value, params: Value, path: &str) -> bool {
        let metadata = metadata.as_object().cloned().unwrap_or_default();
        matches(
            &query,
            &Context {
                metadata: &metadata,
                params: params.as_object().unwrap(),
                pathname: path,
            },
        )
    }

    #[test]
    fn every_operator() {
        let m = json!({"tier": "pro", "n": "5"});
        let p = json!({"model": "smart", "max_tokens": 5000});
        let t = |q| check(q, m.clone(), p.clone(), "/v1/chat/completions");
        assert!(t(json!({"metadata.tier": "pro"})));
        assert!(!t(json!({"metadata.tier": "free"})));
        assert!(t(json!({"metadata.tier": {"$eq": "pro"}})));
        assert!(t(json!({"metadata.tier": {"$ne": "free"}})));
        assert!(t(json!({"metadata.missing": {"$ne": "x"}})));
        assert!(t(json!({"params.max_tokens": {"$gt": 4000}})));
        assert!(!t(json!({"params.max_tokens": {"$lt": 4000}})));
        assert!(t(json!({"metadata.n": {"$gte": 5, "$lte": "5"}})));
        assert!(t(json!({"metadata.n": 5})));
        assert!(t(json!({"params.model": {"$in": ["smart", "smartest"]}})));
        assert!(t(json!({"params.model": {"$nin": ["dumb"]}})));
        assert!(t(json!({"url.pathname": {"$regex": "completions$"}})));
        assert!(!t(json!({"url.pathname": {"$regex": "embeddings$"}})));
        assert!(!t(json!({"metadata.missing": {"$gt": 1}})));
    }

    #[test]
    fn logic_and_portkey_quirks() {
        let m = json!({"tier": "pro"});
        let p = json!({"model": "smart"});
        let t = |q| check(q, m.clone(), p.clone(), "/v1/embeddings");
        assert!(t(
            json!({"$and": [{"metadata.tier": "pro"}, {"params.model": {"$in": ["smart"]}}]})
        ));
        assert!(!t(
            json!({"$and": [{"metadata.tier": "pro"}, {"params.model": "x"}]})
        ));
        assert!(t(
            json!({"$or": [{"metadata.tier": "free"}, {"params.model": "smart"}]})
        ));
        // `$and` decides its object: the sibling key is not evaluated.
        assert!(t(
            json!({"$and": [{"metadata.tier": "pro"}], "params.model": "other"})
        ));
        // `$regex` decides its operator object: `$eq` after it is ignored.
        assert!(t(
            json!({"url.pathname": {"$regex": "embed", "$eq": "nope"}})
        ));
    }
}
