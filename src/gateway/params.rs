//! A config target's request rewrites, applied in the documented order: `default_params` (only
//! where the request lacks the key), then `override_params`, then `drop_params`.

use serde_json::{Map, Value};

pub fn apply(
    body: &mut Map<String, Value>,
    default_params: &Map<String, Value>,
    override_params: &Map<String, Value>,
    drop_params: &[String],
) {
    for (k, v) in default_params {
        body.entry(k.clone()).or_insert_with(|| v.clone());
    }
    for (k, v) in override_params {
        body.insert(k.clone(), v.clone());
    }
    for path in drop_params {
        let segments: Vec<&str> = path.split('.').collect();
        drop_path(body, &segments);
    }
}

/// Removes `a.b`, `a[0].b` or `a[*].b` from an object.
fn drop_path(obj: &mut Map<String, Value>, segments: &[&str]) {
    let Some((first, rest)) = segments.split_first() else {
        return;
    };
    let (key, index) = match first.split_once('[') {
        Some((k, i)) => (k, Some(i.trim_end_matches(']'))),
        None => (*first, None),
    };
    match (index, rest.is_empty()) {
        (None, true) => {
            obj.remove(key);
        }
        (None, false) => {
            if let Some(Value::Object(child)) = obj.get_mut(key) {
                drop_path(child, rest);
            }
        }
        (Some(i), _) => {
            let Some(Value::Array(items)) = obj.get_mut(key) else {
                return;
            };
            let chosen: Vec<usize> = match i {
                "*" => (0..items.len()).collect(),
                n => n.parse().into_iter().filter(|n| *n < items.len()).collect(),
            };
            if rest.is_empty() {
                for n in chosen.into_iter().rev() {
                    items.remove(n);
                }
                return;
            }
            for n in chosen {
                if let Value::Object(child) = &mut items[n] {
                    drop_path(child, rest);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn defaults_then_overrides_then_drops() {
        let mut body = map(json!({
            "model": "x", "temperature": 0.9,
            "tools": [{"function": {"name": "a", "strict": true}}, {"function": {"name": "b", "strict": false}}],
            "user": "u"
        }));
        apply(
            &mut body,
            &map(json!({"temperature": 0.1, "max_tokens": 50})),
            &map(json!({"model": "gpt-4o"})),
            &["tools[*].function.strict".into(), "user".into()],
        );
        assert_eq!(
            Value::Object(body),
            json!({
                "model": "gpt-4o", "temperature": 0.9,
                "tools": [{"function": {"name": "a"}}, {"function": {"name": "b"}}],
                "max_tokens": 50
            })
        );
    }

    #[test]
    fn drops_by_index_and_ignores_missing_paths() {
        let mut body = map(json!({"a": [1, 2, 3], "b": {"c": 1}}));
        apply(
            &mut body,
            &Map::new(),
            &Map::new(),
            &["a[1]".into(), "b.c".into(), "x.y".into(), "a[9]".into()],
        );
        assert_eq!(Value::Object(body), json!({"a": [1, 3], "b": {}}));
    }
}
