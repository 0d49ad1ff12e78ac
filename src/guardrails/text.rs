//! Where the text of an OpenAI-shaped request or answer is: the slots checks read and the ones
//! redactions rewrite, found by walking the body (no JSON pointers to format and parse again).

use std::borrow::Cow;

use serde_json::Value;

use super::{Body, Stage};
use crate::gateway::providers::adapter::Endpoint;

/// Which text slots: the current content part (Portkey's `getText`), or all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Scope {
    Current,
    All,
}

/// Where a slot is in its body: the keys and indices from the top, innermost last. Built on
/// the stack as the walk goes down; followed again only when a slot is rewritten.
enum Path<'p> {
    Root,
    Key(&'p Path<'p>, &'static str),
    Index(&'p Path<'p>, usize),
}

impl Path<'_> {
    fn find_mut<'v>(&self, body: &'v mut Value) -> Option<&'v mut Value> {
        match self {
            Path::Root => Some(body),
            Path::Key(up, key) => up.find_mut(body)?.get_mut(*key),
            Path::Index(up, i) => up.find_mut(body)?.get_mut(*i),
        }
    }
}

/// What a walk calls with each string slot and where it is.
type Found<'f, 'a> = dyn FnMut(&'a str, &Path) + 'f;

/// Calls `found` with the string slots of `body` in `scope`, in document order.
fn visit<'a>(
    stage: Stage,
    endpoint: Endpoint,
    body: &'a Value,
    scope: Scope,
    found: &mut Found<'_, 'a>,
) {
    let root = Path::Root;
    match (stage, endpoint) {
        (Stage::Before, Endpoint::Chat) => {
            let messages = array(body, "messages");
            let at = Path::Key(&root, "messages");
            for (i, m) in messages
                .iter()
                .enumerate()
                .skip(first(scope, messages.len()))
            {
                content(m.get("content"), &Path::Index(&at, i), found);
            }
        }
        (Stage::Before, Endpoint::Completions) => strings(body, "prompt", found),
        (Stage::Before, Endpoint::Embeddings) => strings(body, "input", found),
        (Stage::Before, Endpoint::Responses) => {
            if scope == Scope::All {
                if let Some(Value::String(s)) = body.get("instructions") {
                    found(s, &Path::Key(&root, "instructions"));
                }
            }
            let at = Path::Key(&root, "input");
            if let Some(Value::String(s)) = body.get("input") {
                found(s, &at);
            }
            let items = array(body, "input");
            for (i, item) in items.iter().enumerate().skip(first(scope, items.len())) {
                content(item.get("content"), &Path::Index(&at, i), found);
            }
        }
        (Stage::After, Endpoint::Chat) => {
            let at = Path::Key(&root, "choices");
            for (i, c) in choices(body, scope) {
                let choice = Path::Index(&at, i);
                let message = c.get("message");
                content(
                    message.and_then(|m| m.get("content")),
                    &Path::Key(&choice, "message"),
                    found,
                );
            }
        }
        (Stage::After, Endpoint::Completions) => {
            let at = Path::Key(&root, "choices");
            for (i, c) in choices(body, scope) {
                if let Some(Value::String(s)) = c.get("text") {
                    found(s, &Path::Key(&Path::Index(&at, i), "text"));
                }
            }
        }
        (Stage::After, Endpoint::Responses) => {
            let at = Path::Key(&root, "output");
            for (i, item) in array(body, "output").iter().enumerate() {
                content(item.get("content"), &Path::Index(&at, i), found);
            }
        }
        (Stage::After, Endpoint::Embeddings) => {}
    }
}

/// The current content part's text: its non-empty slots joined by `\n` (borrowed when there
/// is one).
pub(super) fn current<'a>(stage: Stage, endpoint: Endpoint, body: Body<'a>) -> Cow<'a, str> {
    let mut text = Cow::Borrowed("");
    let mut add = |s: &'a str| {
        if s.is_empty() {
            return;
        }
        if text.is_empty() {
            text = Cow::Borrowed(s);
        } else {
            let joined = text.to_mut();
            joined.push('\n');
            joined.push_str(s);
        }
    };
    match body {
        Body::Json(v) => visit(stage, endpoint, v, Scope::Current, &mut |s, _| add(s)),
        Body::Raw(raw) => raw.slots(endpoint, Scope::Current).for_each(add),
    }
    text
}

/// A copy of `body` with `rewrite` applied to every text slot, or None when it changed none.
/// A raw answer is decoded only when `rewrite` changed one of its slots; its slots come in
/// the same order as the decoded answer's walk.
pub(super) fn rewrite_all(
    stage: Stage,
    endpoint: Endpoint,
    body: Body,
    rewrite: impl FnMut(&str) -> Option<String>,
) -> Option<Value> {
    match body {
        Body::Json(v) => rewrite_value(stage, endpoint, v, rewrite),
        Body::Raw(raw) => {
            let new: Vec<Option<String>> = raw.slots(endpoint, Scope::All).map(rewrite).collect();
            if new.iter().all(Option::is_none) {
                return None;
            }
            let mut new = new.into_iter();
            rewrite_value(stage, endpoint, raw.value(), |_| new.next().flatten())
        }
    }
}

fn rewrite_value(
    stage: Stage,
    endpoint: Endpoint,
    body: &Value,
    mut rewrite: impl FnMut(&str) -> Option<String>,
) -> Option<Value> {
    let mut copy: Option<Value> = None;
    visit(stage, endpoint, body, Scope::All, &mut |s, at| {
        if let Some(new) = rewrite(s) {
            if let Some(slot) = at.find_mut(copy.get_or_insert_with(|| body.clone())) {
                *slot = Value::String(new);
            }
        }
    });
    copy
}

fn array<'a>(body: &'a Value, key: &str) -> &'a [Value] {
    body.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// The first of `len` items in `scope`: the last one for the current part, all otherwise.
fn first(scope: Scope, len: usize) -> usize {
    match scope {
        Scope::Current => len.saturating_sub(1),
        Scope::All => 0,
    }
}

/// The `content` of the item at `item`: a string, or an array of parts whose `text` strings
/// count.
fn content<'a>(v: Option<&'a Value>, item: &Path, found: &mut Found<'_, 'a>) {
    let at = Path::Key(item, "content");
    match v {
        Some(Value::String(s)) => found(s, &at),
        Some(Value::Array(parts)) => {
            for (j, part) in parts.iter().enumerate() {
                if let Some(Value::String(s)) = part.get("text") {
                    found(s, &Path::Key(&Path::Index(&at, j), "text"));
                }
            }
        }
        _ => {}
    }
}

/// `prompt` or `input`: a string or an array of strings (token arrays have no text).
fn strings<'a>(body: &'a Value, key: &'static str, found: &mut Found<'_, 'a>) {
    let root = Path::Root;
    let at = Path::Key(&root, key);
    match body.get(key) {
        Some(Value::String(s)) => found(s, &at),
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                if let Value::String(s) = item {
                    found(s, &Path::Index(&at, i));
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
