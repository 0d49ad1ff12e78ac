//! Checks of JSON in the text: jsonSchema and jsonKeys. The JSON is the whole text, else the
//! fenced code blocks, else every balanced `{...}` in it.

use serde_json::{json, Value};

use super::content::Operator;
use super::params::Params;
use super::{Found, Input};
use crate::guardrails::schema::Schema;

#[derive(Debug)]
pub(super) enum JsonCheck {
    Schema {
        schema: Schema,
        not: bool,
    },
    Keys {
        keys: Vec<String>,
        operator: Operator,
    },
}

pub(super) fn compile(name: &str, p: &mut Params) -> Option<JsonCheck> {
    Some(match name {
        "jsonSchema" => {
            let schema = match p.get("schema") {
                Some(v) => {
                    let mut errors = Vec::new();
                    let schema = Schema::compile(v, "schema", &mut errors);
                    for e in errors {
                        let (path, msg) = e.split_once(": ").unwrap_or(("schema", &e));
                        p.error(path, msg);
                    }
                    schema
                }
                None => {
                    p.error(
                        "schema",
                        "required: the JSON schema the JSON in the text must match",
                    );
                    Schema::Always(true)
                }
            };
            JsonCheck::Schema {
                schema,
                not: p.flag("not", false),
            }
        }
        "jsonKeys" => JsonCheck::Keys {
            keys: p.required_list("keys", "top-level keys to look for"),
            operator: Operator::read(p, "operator", "any"),
        },
        _ => return None,
    })
}

impl JsonCheck {
    pub(super) fn evaluate(&self, input: &Input) -> Found {
        let candidates = extract(input.text);
        if candidates.is_empty() {
            return Found::new(false, json!({"explanation": "no JSON found in the text"}));
        }
        match self {
            JsonCheck::Schema { schema, not } => {
                let results: Vec<(&Value, Vec<String>)> =
                    candidates.iter().map(|c| (c, schema.validate(c))).collect();
                let best = results
                    .iter()
                    .find(|(_, e)| e.is_empty())
                    .unwrap_or(&results[0]);
                let valid = best.1.is_empty();
                Found::new(
                    valid != *not,
                    json!({"matchedJson": best.0, "not": not, "validationErrors": best.1}),
                )
            }
            JsonCheck::Keys { keys, operator } => {
                let present = |c: &Value| -> Vec<&String> {
                    keys.iter()
                        .filter(|k| c.get(k.as_str()).is_some())
                        .collect()
                };
                let best = candidates
                    .iter()
                    .filter(|c| c.is_object())
                    .map(|c| (c, present(c)))
                    .max_by_key(|(_, found)| operator.holds(found.len(), keys.len()));
                match best {
                    Some((c, found)) => Found::new(
                        operator.holds(found.len(), keys.len()),
                        json!({"matchedJson": c, "presentKeys": found}),
                    ),
                    None => Found::new(
                        false,
                        json!({"explanation": "no JSON object found in the text"}),
                    ),
                }
            }
        }
    }
}

/// The JSON values in `text`: all of it, else its fenced code blocks, else its balanced
/// top-level `{...}` spans that parse.
fn extract(text: &str) -> Vec<Value> {
    let trimmed = text.trim();
    if let Ok(v) = serde_json::from_str::<Value>(trimmed) {
        if v.is_object() || v.is_array() {
            return vec![v];
        }
    }
    let blocks: Vec<Value> = trimmed
        .split("```")
        .skip(1)
        .step_by(2)
        .filter_map(|b| {
            let b = b.strip_prefix("json").unwrap_or(b);
            serde_json::from_str(b.trim()).ok()
        })
        .collect();
    if !blocks.is_empty() {
        return blocks;
    }
    objects(text)
        .filter_map(|s| serde_json::from_str(s).ok())
        .collect()
}

/// Balanced `{...}` spans outside JSON strings.
fn objects(text: &str) -> impl Iterator<Item = &str> {
    let b = text.as_bytes();
    let mut spans = Vec::new();
    let (mut depth, mut start, mut in_string, mut escaped) = (0usize, 0, false, false);
    for (i, &c) in b.iter().enumerate() {
        if in_string {
            match c {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            b'"' if depth > 0 => in_string = true,
            b'{' => {
                if depth == 0 {
                    start = i;
                }
                depth += 1;
            }
            b'}' if depth > 0 => {
                depth -= 1;
                if depth == 0 {
                    spans.push(&text[start..=i]);
                }
            }
            _ => {}
        }
    }
    spans.into_iter()
}
