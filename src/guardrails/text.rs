//! Where the text of an OpenAI-shaped request or answer is: the slots checks read and the ones
//! redactions rewrite, as JSON pointers into the body.

use serde_json::Value;

use super::Stage;
use crate::gateway::providers::adapter::Endpoint;

/// Which text slots: the current content part (Portkey's `getText`), or all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Scope {
    Current,
    All,
}

/// JSON pointers to the string slots of `body` in `scope`, in document order.
pub(super) fn slots(stage: Stage, endpoint: Endpoint, body: &Value, scope: Scope) -> Vec<String> {
    let mut out = Vec::new();
    match (stage, endpoint) {
        (Stage::Before, Endpoint::Chat) => {
            let messages = array(body, "messages");
            let skip = match scope {
                Scope::Current => messages.len().saturating_sub(1),
                Scope::All => 0,
            };
            for (i, m) in messages.iter().enumerate().skip(skip) {
                content(m.get("content"), format!("/messages/{i}/content"), &mut out);
            }
        }
        (Stage::Before, Endpoint::Completions) => strings(body, "prompt", &mut out),
        (Stage::Before, Endpoint::Embeddings) => strings(body, "input", &mut out),
        (Stage::Before, Endpoint::Responses) => {
            if scope == Scope::All && body.get("instructions").is_some_and(Value::is_string) {
                out.push("/instructions".to_string());
            }
            let items = array(body, "input");
            if body.get("input").is_some_and(Value::is_string) {
                out.push("/input".to_string());
            }
            let skip = match scope {
                Scope::Current => items.len().saturating_sub(1),
                Scope::All => 0,
            };
            for (i, item) in items.iter().enumerate().skip(skip) {
                content(item.get("content"), format!("/input/{i}/content"), &mut out);
            }
        }
        (Stage::After, Endpoint::Chat) => {
            for (i, c) in choices(body, scope) {
                let msg = c.get("message");
                content(
                    msg.and_then(|m| m.get("content")),
                    format!("/choices/{i}/message/content"),
                    &mut out,
                );
            }
        }
        (Stage::After, Endpoint::Completions) => {
            for (i, c) in choices(body, scope) {
                if c.get("text").is_some_and(Value::is_string) {
                    out.push(format!("/choices/{i}/text"));
                }
            }
        }
        (Stage::After, Endpoint::Responses) => {
            for (i, item) in array(body, "output").iter().enumerate() {
                content(
                    item.get("content"),
                    format!("/output/{i}/content"),
                    &mut out,
                );
            }
        }
        (Stage::After, Endpoint::Embeddings) => {}
    }
    out
}

/// The current content part's text: its non-empty slots joined by `\n`.
pub(super) fn current(stage: Stage, endpoint: Endpoint, body: &Value) -> String {
    let mut text = String::new();
    for slot in slots(stage, endpoint, body, Scope::Current) {
        if let Some(s) = body.pointer(&slot).and_then(Value::as_str) {
            if !s.is_empty() {
                if !text.is_empty() {
                    text.push('\n');
                }
                text.push_str(s);
            }
        }
    }
    text
}

/// A copy of `body` with `rewrite` applied to every text slot, or None when it changed none.
pub(super) fn rewrite_all(
    stage: Stage,
    endpoint: Endpoint,
    body: &Value,
    mut rewrite: impl FnMut(&str) -> Option<String>,
) -> Option<Value> {
    let mut copy: Option<Value> = None;
    for slot in slots(stage, endpoint, body, Scope::All) {
        let Some(new) = body
            .pointer(&slot)
            .and_then(Value::as_str)
            .and_then(&mut rewrite)
        else {
            continue;
        };
        let target = copy.get_or_insert_with(|| body.clone());
        if let Some(v) = target.pointer_mut(&slot) {
            *v = Value::String(new);
        }
    }
    copy
}

fn array<'a>(body: &'a Value, key: &str) -> &'a [Value] {
    body.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// A message content: a string, or an array of parts whose `text` strings count.
fn content(v: Option<&Value>, base: String, out: &mut Vec<String>) {
    match v {
        Some(Value::String(_)) => out.push(base),
        Some(Value::Array(parts)) => {
            for (j, part) in parts.iter().enumerate() {
                if part.get("text").is_some_and(Value::is_string) {
                    out.push(format!("{base}/{j}/text"));
                }
            }
        }
        _ => {}
    }
}

/// `prompt` or `input`: a string or an array of strings (token arrays have no text).
fn strings(body: &Value, key: &str, out: &mut Vec<String>) {
    match body.get(key) {
        Some(Value::String(_)) => out.push(format!("/{key}")),
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                if item.is_string() {
                    out.push(format!("/{key}/{i}"));
                }
            }
        }
        _ => {}
    }
}

/// The answer's choices: the first for the current part, all of them otherwise.
fn choices(body: &Value, scope: Scope) -> impl Iterator<Item = (usize, &Value)> {
    let all = array(body, "choices");
    let n = match scope {
        Scope::Current => all.len().min(1),
        Scope::All => all.len(),
    };
    all.iter().take(n).enumerate()
}
