//! A JSON Schema validator for the keywords guardrail schemas use: `type`, `properties`,
//! `required`, `additionalProperties`, `items`, `enum`, `const`, `minimum`, `maximum`,
//! `exclusiveMinimum`, `exclusiveMaximum`, `minLength`, `maxLength`, `pattern`, `minItems`,
//! `maxItems`, `anyOf`, `oneOf`, `allOf` and `not`. Annotations (`title`, `description`,
//! `$schema`, `format`, `default`, `examples`, ...) are ignored; `$ref` is refused.

use regex::Regex;
use serde_json::{Map, Value};

/// A compiled schema.
#[derive(Debug)]
pub(super) enum Schema {
    /// `true` accepts everything, `false` nothing.
    Always(bool),
    Rules(Box<Rules>),
}

#[derive(Debug, Default)]
pub(super) struct Rules {
    types: Vec<String>,
    properties: Vec<(String, Schema)>,
    required: Vec<String>,
    additional: Option<Schema>,
    items: Option<Schema>,
    one_of_values: Option<Vec<Value>>,
    constant: Option<Value>,
    minimum: Option<f64>,
    maximum: Option<f64>,
    exclusive_minimum: Option<f64>,
    exclusive_maximum: Option<f64>,
    min_length: Option<usize>,
    max_length: Option<usize>,
    pattern: Option<Regex>,
    min_items: Option<usize>,
    max_items: Option<usize>,
    any_of: Vec<Schema>,
    one_of: Vec<Schema>,
    all_of: Vec<Schema>,
    not: Option<Schema>,
}

const TYPES: &[&str] = &[
    "object", "array", "string", "number", "integer", "boolean", "null",
];

impl Schema {
    /// Compiles `v`; errors are `path: message` with paths under `path`.
    pub(super) fn compile(v: &Value, path: &str, errors: &mut Vec<String>) -> Schema {
        let obj = match v {
            Value::Bool(b) => return Schema::Always(*b),
            Value::Object(o) => o,
            other => {
                errors.push(format!(
                    "{path}: expected a schema object or a boolean, found {other}"
                ));
                return Schema::Always(true);
            }
        };
        let mut r = Rules::default();
        let at = |key: &str| format!("{path}.{key}");
        for (key, value) in obj {
            let p = at(key);
            match key.as_str() {
                "type" => r.types = type_names(value, &p, errors),
                "properties" => match value.as_object() {
                    Some(props) => {
                        r.properties = props
                            .iter()
                            .map(|(k, s)| {
                                (k.clone(), Schema::compile(s, &format!("{p}.{k}"), errors))
                            })
                            .collect();
                    }
                    None => errors.push(format!("{p}: expected an object of property schemas")),
                },
                "required" => r.required = strings(value, &p, errors),
                "additionalProperties" => r.additional = Some(Schema::compile(value, &p, errors)),
                "items" => r.items = Some(Schema::compile(value, &p, errors)),
                "enum" => match value.as_array() {
                    Some(list) => r.one_of_values = Some(list.clone()),
                    None => errors.push(format!("{p}: expected an array of allowed values")),
                },
                "const" => r.constant = Some(value.clone()),
                "minimum" => r.minimum = number(value, &p, errors),
                "maximum" => r.maximum = number(value, &p, errors),
                "exclusiveMinimum" => r.exclusive_minimum = number(value, &p, errors),
                "exclusiveMaximum" => r.exclusive_maximum = number(value, &p, errors),
                "minLength" => r.min_length = size(value, &p, errors),
                "maxLength" => r.max_length = size(value, &p, errors),
                "minItems" => r.min_items = size(value, &p, errors),
                "maxItems" => r.max_items = size(value, &p, errors),
                "pattern" => match value.as_str().map(Regex::new) {
                    Some(Ok(re)) => r.pattern = Some(re),
                    Some(Err(e)) => errors.push(format!("{p}: invalid regular expression: {e}")),
                    None => errors.push(format!("{p}: expected a regular expression string")),
                },
                "anyOf" => r.any_of = list(value, &p, errors),
                "oneOf" => r.one_of = list(value, &p, errors),
                "allOf" => r.all_of = list(value, &p, errors),
                "not" => r.not = Some(Schema::compile(value, &p, errors)),
                "$ref" => errors.push(format!(
                    "{p}: $ref is not supported; write the referenced schema inline"
                )),
                _ => {} // annotations and keywords outside the subset
            }
        }
        Schema::Rules(Box::new(r))
    }

    /// Problems of `v` against this schema, as `/json/pointer: message` (at most a few).
    pub(super) fn validate(&self, v: &Value) -> Vec<String> {
        let mut errors = Vec::new();
        self.check(v, "", &mut errors);
        errors
    }

    fn accepts(&self, v: &Value) -> bool {
        let mut errors = Vec::new();
        self.check(v, "", &mut errors);
        errors.is_empty()
    }

    fn check(&self, v: &Value, at: &str, errors: &mut Vec<String>) {
        let r = match self {
            Schema::Always(true) => return,
            Schema::Always(false) => return push(errors, at, "not allowed"),
            Schema::Rules(r) => r,
        };
        if !r.types.is_empty() && !r.types.iter().any(|t| has_type(v, t)) {
            let msg = format!("expected {}, found {}", r.types.join(" or "), type_of(v));
            return push(errors, at, msg);
        }
        if let Some(values) = &r.one_of_values {
            if !values.contains(v) {
                push(
                    errors,
                    at,
                    format!("must be one of {}", Value::Array(values.clone())),
                );
            }
        }
        if let Some(c) = &r.constant {
            if c != v {
                push(errors, at, format!("must be {c}"));
            }
        }
        if let Some(n) = v.as_f64() {
            if r.minimum.is_some_and(|m| n < m) || r.exclusive_minimum.is_some_and(|m| n <= m) {
                push(errors, at, format!("{n} is below the minimum"));
            }
            if r.maximum.is_some_and(|m| n > m) || r.exclusive_maximum.is_some_and(|m| n >= m) {
                push(errors, at, format!("{n} is above the maximum"));
            }
        }
        if let Some(s) = v.as_str() {
            let len = s.chars().count();
            if r.min_length.is_some_and(|m| len < m) || r.max_length.is_some_and(|m| len > m) {
                push(errors, at, format!("length {len} is out of range"));
            }
            if let Some(p) = r.pattern.as_ref().filter(|p| !p.is_match(s)) {
                push(
                    errors,
                    at,
                    format!("does not match the pattern {}", p.as_str()),
                );
            }
        }
        if let Some(items) = v.as_array() {
            let n = items.len();
            if r.min_items.is_some_and(|m| n < m) || r.max_items.is_some_and(|m| n > m) {
                push(errors, at, format!("{n} items is out of range"));
            }
            if let Some(s) = &r.items {
                for (i, item) in items.iter().enumerate() {
                    s.check(item, &format!("{at}/{i}"), errors);
                }
            }
        }
        if let Some(obj) = v.as_object() {
            r.check_object(obj, at, errors);
        }
        let passing = |list: &[Schema]| list.iter().filter(|s| s.accepts(v)).count();
        if !r.any_of.is_empty() && passing(&r.any_of) == 0 {
            push(errors, at, "matches none of anyOf");
        }
        if !r.one_of.is_empty() && passing(&r.one_of) != 1 {
            push(errors, at, "must match exactly one of oneOf");
        }
        if r.not.as_ref().is_some_and(|s| s.accepts(v)) {
            push(errors, at, "must not match the schema in not");
        }
        for s in &r.all_of {
            s.check(v, at, errors);
        }
    }
}

/// Records `at: msg` ("/" for the root), up to a bound so a huge document cannot flood.
fn push(errors: &mut Vec<String>, at: &str, msg: impl std::fmt::Display) {
    const MAX_ERRORS: usize = 20;
    if errors.len() < MAX_ERRORS {
        errors.push(format!("{}: {msg}", if at.is_empty() { "/" } else { at }));
    }
}

impl Rules {
    fn check_object(&self, obj: &Map<String, Value>, at: &str, errors: &mut Vec<String>) {
        for key in &self.required {
            if !obj.contains_key(key) {
                push(errors, at, format!("missing required property {key:?}"));
            }
        }
        for (key, value) in obj {
            let path = format!("{at}/{key}");
            match self.properties.iter().find(|(k, _)| k == key) {
                Some((_, s)) => s.check(value, &path, errors),
                None => {
                    if let Some(s) = &self.additional {
                        s.check(value, &path, errors);
                    }
                }
            }
        }
    }
}

fn has_type(v: &Value, t: &str) -> bool {
    match t {
        "integer" => v.as_f64().is_some_and(|n| n.fract() == 0.0),
        _ => type_of(v) == t || (t == "number" && v.is_number()),
    }
}

fn type_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn type_names(v: &Value, path: &str, errors: &mut Vec<String>) -> Vec<String> {
    let names = match v {
        Value::String(s) => vec![s.clone()],
        _ => strings(v, path, errors),
    };
    for n in &names {
        if !TYPES.contains(&n.as_str()) {
            errors.push(format!(
                "{path}: unknown type {n:?}; expected one of {}",
                TYPES.join(", ")
            ));
        }
    }
    names
}

fn strings(v: &Value, path: &str, errors: &mut Vec<String>) -> Vec<String> {
    match v
        .as_array()
        .map(|a| a.iter().map(Value::as_str).collect::<Option<Vec<_>>>())
    {
        Some(Some(list)) => list.into_iter().map(String::from).collect(),
        _ => {
            errors.push(format!("{path}: expected an array of strings"));
            Vec::new()
        }
    }
}

fn list(v: &Value, path: &str, errors: &mut Vec<String>) -> Vec<Schema> {
    match v.as_array() {
        Some(items) if !items.is_empty() => items
            .iter()
            .enumerate()
            .map(|(i, s)| Schema::compile(s, &format!("{path}[{i}]"), errors))
            .collect(),
        _ => {
            errors.push(format!("{path}: expected a non-empty array of schemas"));
            Vec::new()
        }
    }
}

fn number(v: &Value, path: &str, errors: &mut Vec<String>) -> Option<f64> {
    let n = v.as_f64();
    if n.is_none() {
        errors.push(format!("{path}: expected a number"));
    }
    n
}

fn size(v: &Value, path: &str, errors: &mut Vec<String>) -> Option<usize> {
    let n = v.as_u64().map(|n| n as usize);
    if n.is_none() {
        errors.push(format!("{path}: expected a non-negative integer"));
    }
    n
}
