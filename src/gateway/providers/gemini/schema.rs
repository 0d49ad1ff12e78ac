//! JSON Schema → Google's `Schema` (a subset of OpenAPI 3.0). Google rejects unknown keywords
//! (`$schema`, `additionalProperties`, `strict`, `$ref`, ...: Portkey bug #837), so this keeps
//! only the fields its `Schema` object documents, inlines local `$ref`s, and rewrites the JSON
//! Schema forms that have an OpenAPI equivalent (`type: [T, "null"]`, `const`, `oneOf`).

use serde_json::{Map, Value};

/// The keywords Google's `Schema` accepts (ai.google.dev `Schema`, Vertex `v1/Schema`).
const KEPT: &[&str] = &[
    "type",
    "format",
    "title",
    "description",
    "nullable",
    "enum",
    "maxItems",
    "minItems",
    "properties",
    "required",
    "minProperties",
    "maxProperties",
    "minLength",
    "maxLength",
    "pattern",
    "example",
    "anyOf",
    "propertyOrdering",
    "default",
    "items",
    "minimum",
    "maximum",
];

/// How deep `$ref`s are followed; deeper (recursive) references become a plain object.
const MAX_REF_DEPTH: usize = 8;

/// Cleans a whole schema; `$defs` / `definitions` at its root resolve `#/...` references.
pub fn clean(schema: &Value) -> Value {
    clean_node(schema, schema, 0)
}

/// Cleans a function's `parameters`; `None` when nothing is left worth sending (Google rejects
/// an OBJECT schema whose `properties` is empty).
pub fn clean_parameters(schema: &Value) -> Option<Value> {
    let out = clean(schema);
    let empty_object = out.get("type").and_then(Value::as_str) == Some("object")
        && out
            .get("properties")
            .and_then(Value::as_object)
            .is_none_or(Map::is_empty);
    (!empty_object).then_some(out)
}

fn clean_node(node: &Value, root: &Value, depth: usize) -> Value {
    let Some(obj) = node.as_object() else {
        return node.clone();
    };
    if let Some(target) = obj.get("$ref").and_then(Value::as_str) {
        return match resolve(root, target) {
            Some(found) if depth < MAX_REF_DEPTH => {
                let mut out = clean_node(found, root, depth + 1);
                // Sibling annotations of the `$ref` win over the referenced schema's.
                if let (Some(o), Some(d)) = (out.as_object_mut(), obj.get("description")) {
                    o.insert("description".into(), d.clone());
                }
                out
            }
            _ => {
                let mut o = Map::new();
                o.insert("type".into(), "object".into());
                if let Some(d) = obj.get("description") {
                    o.insert("description".into(), d.clone());
                }
                Value::Object(o)
            }
        };
    }
    let mut out = Map::new();
    for (key, value) in obj {
        match key.as_str() {
            "type" => match value {
                // `["string","null"]` → `string` + `nullable`; several real types → `anyOf`.
                Value::Array(types) => {
                    let real: Vec<&Value> = types.iter().filter(|t| *t != "null").collect();
                    if real.len() < types.len() {
                        out.insert("nullable".into(), true.into());
                    }
                    match real.as_slice() {
                        [one] => {
                            out.insert("type".into(), (*one).clone());
                        }
                        [] => {}
                        many => {
                            let any = many.iter().map(|t| object_with("type", (*t).clone()));
                            out.insert("anyOf".into(), Value::Array(any.collect()));
                        }
                    }
                }
                _ => {
                    out.insert(key.clone(), value.clone());
                }
            },
            "properties" => {
                let props = value.as_object().map(|p| {
                    p.iter()
                        .map(|(k, v)| (k.clone(), clean_node(v, root, depth)))
                        .collect::<Map<_, _>>()
                });
                out.insert(key.clone(), props.map_or(Value::Null, Value::Object));
            }
            "items" => {
                out.insert(key.clone(), clean_node(value, root, depth));
            }
            "anyOf" | "oneOf" => {
                // `{"type":"null"}` members become `nullable`; one member left is inlined.
                let all: Vec<Value> = value.as_array().map_or(Vec::new(), |l| {
                    l.iter().map(|v| clean_node(v, root, depth)).collect()
                });
                let null = json_null_type();
                let list: Vec<Value> = all.iter().filter(|v| **v != null).cloned().collect();
                if list.len() < all.len() {
                    out.insert("nullable".into(), true.into());
                }
                match <[Value; 1]>::try_from(list) {
                    Ok([Value::Object(one)]) => {
                        for (k, v) in one {
                            out.entry(k).or_insert(v);
                        }
                    }
                    Ok([other]) => {
                        out.insert("anyOf".into(), Value::Array(vec![other]));
                    }
                    Err(list) if !list.is_empty() => {
                        out.insert("anyOf".into(), Value::Array(list));
                    }
                    Err(_) => {}
                }
            }
            "enum" => {
                // Google's `enum` is a list of strings, also for INTEGER ("101", "201").
                let list = value.as_array().map_or(Vec::new(), |l| {
                    l.iter().filter(|v| !v.is_null()).map(as_string).collect()
                });
                out.insert(key.clone(), Value::Array(list));
            }
            "const" => {
                out.insert("enum".into(), Value::Array(vec![as_string(value)]));
            }
            k if KEPT.contains(&k) => {
                out.insert(key.clone(), value.clone());
            }
            _ => {}
        }
    }
    // A single `allOf` member is the common "annotated $ref" form: merge it in.
    if let Some([only]) = obj
        .get("allOf")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
    {
        if let Value::Object(inner) = clean_node(only, root, depth) {
            for (k, v) in inner {
                out.entry(k).or_insert(v);
            }
        }
    }
    if out.contains_key("enum") && !out.contains_key("type") {
        out.insert("type".into(), "string".into());
    }
    // `required` may only name properties that exist.
    if let Some(Value::Array(req)) = out.get("required") {
        let props = out.get("properties").and_then(Value::as_object);
        let kept: Vec<Value> = req
            .iter()
            .filter(|r| {
                r.as_str()
                    .is_some_and(|r| props.is_some_and(|p| p.contains_key(r)))
            })
            .cloned()
            .collect();
        if kept.is_empty() {
            out.remove("required");
        } else {
            out.insert("required".into(), Value::Array(kept));
        }
    }
    Value::Object(out)
}

/// Follows a local JSON pointer (`#/$defs/Address`, `#/definitions/x`, `#`).
fn resolve<'a>(root: &'a Value, target: &str) -> Option<&'a Value> {
    let pointer = target.strip_prefix('#')?;
    root.pointer(pointer)
}

fn as_string(v: &Value) -> Value {
    match v {
        Value::String(_) => v.clone(),
        other => Value::String(other.to_string()),
    }
}

fn json_null_type() -> Value {
    object_with("type", "null".into())
}

fn object_with(key: &str, value: Value) -> Value {
    let mut o = Map::new();
    o.insert(key.into(), value);
    Value::Object(o)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strips_what_google_rejects_recursively() {
        let schema = json!({
            "$schema": "http://json-schema.org/draft-07/schema#",
            "$id": "weather",
            "type": "object",
            "strict": true,
            "additionalProperties": false,
            "properties": {
                "city": {"type": "string", "description": "City name", "default": "Oslo"},
                "unit": {"type": ["string", "null"], "enum": ["c", "f", null]},
                "days": {
                    "type": "array",
                    "items": {"type": "object", "additionalProperties": false,
                              "properties": {"d": {"type": "integer", "exclusiveMinimum": 0}}}
                },
                "when": {"anyOf": [{"type": "string", "format": "date"}, {"type": "null"}]}
            },
            "required": ["city", "ghost"]
        });
        assert_eq!(
            clean(&schema),
            json!({
                "type": "object",
                "properties": {
                    "city": {"type": "string", "description": "City name", "default": "Oslo"},
                    "unit": {"nullable": true, "type": "string", "enum": ["c", "f"]},
                    "days": {
                        "type": "array",
                        "items": {"type": "object", "properties": {"d": {"type": "integer"}}}
                    },
                    "when": {"nullable": true, "type": "string", "format": "date"}
                },
                "required": ["city"]
            })
        );
    }

    #[test]
    fn inlines_refs_and_bounds_recursion() {
        let schema = json!({
            "type": "object",
            "$defs": {
                "Address": {"type": "object", "properties": {"street": {"type": "string"}}},
                "Node": {"type": "object", "properties": {"child": {"$ref": "#/$defs/Node"}}}
            },
            "properties": {
                "home": {"$ref": "#/$defs/Address", "description": "Where"},
                "work": {"allOf": [{"$ref": "#/$defs/Address"}], "description": "Office"},
                "tree": {"$ref": "#/$defs/Node"},
                "ext": {"$ref": "https://example.com/x.json"},
                "level": {"const": 3}
            }
        });
        let out = clean(&schema);
        assert_eq!(
            out["properties"]["home"],
            json!({"type": "object", "properties": {"street": {"type": "string"}}, "description": "Where"})
        );
        assert_eq!(
            out["properties"]["work"],
            json!({"description": "Office", "type": "object", "properties": {"street": {"type": "string"}}})
        );
        assert_eq!(out["properties"]["ext"], json!({"type": "object"}));
        assert_eq!(
            out["properties"]["level"],
            json!({"enum": ["3"], "type": "string"})
        );
        assert!(out.get("$defs").is_none());
        let mut node = &out["properties"]["tree"];
        let mut depth = 0;
        while let Some(child) = node.get("properties").and_then(|p| p.get("child")) {
            node = child;
            depth += 1;
        }
        assert_eq!(depth, MAX_REF_DEPTH);
    }

    #[test]
    fn empty_object_parameters_are_dropped() {
        assert_eq!(
            clean_parameters(&json!({"type": "object", "properties": {}})),
            None
        );
        assert_eq!(clean_parameters(&json!({"type": "object"})), None);
        assert!(clean_parameters(
            &json!({"type": "object", "properties": {"a": {"type": "string"}}})
        )
        .is_some());
    }
}
