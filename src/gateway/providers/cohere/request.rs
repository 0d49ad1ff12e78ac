//! OpenAI chat and embeddings bodies → Cohere v2 bodies (providers.md section 7). Built field
//! by field, so what Cohere would reject (`user`, `stream_options`, `logit_bias`, ...) is left
//! out.

use serde_json::{json, Map, Value};

use super::bad;
use crate::gateway::providers::adapter::AdapterError;

/// Cohere's documented per-call limit on `texts`.
const MAX_TEXTS: usize = 96;

fn model_of(body: &Value) -> Result<&str, AdapterError> {
    body.get("model")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty())
        .ok_or_else(|| bad("`model` is required"))
}

pub fn chat(body: &Value, stream: bool) -> Result<Value, AdapterError> {
    let model = model_of(body)?;
    if body.get("n").and_then(Value::as_u64).is_some_and(|n| n > 1) {
        return Err(bad("Cohere returns one choice per request: `n` must be 1"));
    }
    let messages = body
        .get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("`messages` must be an array"))?;
    let mut out = Map::new();
    out.insert("model".into(), model.into());
    out.insert("messages".into(), Value::Array(messages_of(messages)?));
    tools(body, &mut out)?;
    let max = body
        .get("max_completion_tokens")
        .filter(|v| !v.is_null())
        .or_else(|| body.get("max_tokens"));
    if let Some(max) = max.filter(|m| m.is_u64()) {
        out.insert("max_tokens".into(), max.clone());
    }
    match body.get("stop") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => {
            out.insert("stop_sequences".into(), json!([s]));
        }
        Some(Value::Array(list)) if list.iter().all(Value::is_string) => {
            out.insert("stop_sequences".into(), Value::Array(list.clone()));
        }
        Some(_) => return Err(bad("`stop` must be a string or strings")),
    }
    if let Some(t) = body.get("temperature").and_then(Value::as_f64) {
        // Cohere rejects temperatures above 1.
        out.insert("temperature".into(), t.clamp(0.0, 1.0).into());
    }
    // Cohere's documented ranges: p 0.01–0.99, k 0–500, penalties 0–1 (OpenAI allows more).
    for (from, to, lo, hi) in [
        ("top_p", "p", 0.01, 0.99),
        ("top_k", "k", 0.0, 500.0),
        ("frequency_penalty", "frequency_penalty", 0.0, 1.0),
        ("presence_penalty", "presence_penalty", 0.0, 1.0),
    ] {
        if let Some(v) = body.get(from).and_then(Value::as_f64) {
            let v = v.clamp(lo, hi);
            let v = if from == "top_k" {
                json!(v as u64)
            } else {
                json!(v)
            };
            out.insert(to.into(), v);
        }
    }
    if let Some(seed) = body.get("seed").filter(|s| s.is_i64() || s.is_u64()) {
        out.insert("seed".into(), seed.clone());
    }
    if let Some(format) = response_format(body.get("response_format"))? {
        out.insert("response_format".into(), format);
    }
    if body.get("logprobs").and_then(Value::as_bool) == Some(true) {
        out.insert("logprobs".into(), true.into());
    }
    if stream {
        out.insert("stream".into(), true.into());
    }
    Ok(Value::Object(out))
}

/// Legacy completions: `prompt` (one string) as one user message.
pub fn completion(body: &Value, stream: bool) -> Result<Value, AdapterError> {
    let prompt = match body.get("prompt") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(a)) if a.len() == 1 && a[0].is_string() => {
            a[0].as_str().unwrap_or("").into()
        }
        _ => return Err(bad("Cohere completions take `prompt` as one string")),
    };
    if body.get("echo").and_then(Value::as_bool) == Some(true)
        || body
            .get("best_of")
            .and_then(Value::as_u64)
            .is_some_and(|n| n > 1)
        || body.get("suffix").is_some_and(|s| !s.is_null())
    {
        return Err(bad(
            "`echo`, `best_of` and `suffix` are not supported by Cohere",
        ));
    }
    let mut chat_body = body.clone();
    if let Some(o) = chat_body.as_object_mut() {
        o.remove("prompt");
        o.insert(
            "messages".into(),
            json!([{"role": "user", "content": prompt}]),
        );
    }
    chat(&chat_body, stream)
}

pub fn embed(body: &Value) -> Result<Value, AdapterError> {
    let model = model_of(body)?;
    let not_text = || bad("Cohere embeddings take `input` as a string or an array of strings");
    let texts: Vec<Value> = match body.get("input") {
        Some(Value::String(s)) => vec![s.as_str().into()],
        Some(Value::Array(items)) if !items.is_empty() => {
            if !items.iter().all(Value::is_string) {
                return Err(not_text());
            }
            items.clone()
        }
        _ => return Err(not_text()),
    };
    if texts.len() > MAX_TEXTS {
        return Err(bad(format!(
            "Cohere embeds at most {MAX_TEXTS} texts per request"
        )));
    }
    // `input_type` is required by Cohere and absent from OpenAI: an extension field or the default.
    let input_type = body
        .get("input_type")
        .and_then(Value::as_str)
        .unwrap_or("search_document");
    let mut out = json!({"model": model, "texts": texts, "input_type": input_type,
                         "embedding_types": ["float"]});
    if let Some(d) = body.get("dimensions").filter(|d| d.is_u64()) {
        out["output_dimension"] = d.clone();
    }
    if let Some(t) = body.get("truncate").and_then(Value::as_str) {
        out["truncate"] = t.into();
    }
    Ok(out)
}

fn response_format(format: Option<&Value>) -> Result<Option<Value>, AdapterError> {
    let Some(format) = format.filter(|f| !f.is_null()) else {
        return Ok(None);
    };
    match format.get("type").and_then(Value::as_str) {
        Some("text") => Ok(None),
        Some("json_object") => Ok(Some(json!({"type": "json_object"}))),
        Some("json_schema") => {
            let schema = format
                .pointer("/json_schema/schema")
                .filter(|s| s.is_object())
                .ok_or_else(|| bad("`response_format.json_schema.schema` must be an object"))?;
            Ok(Some(json!({"type": "json_object", "json_schema": schema})))
        }
        _ => Err(bad(
            "`response_format.type` must be text, json_object or json_schema",
        )),
    }
}

/// `tools` (OpenAI's shape, `strict` lifted to `strict_tools`) and `tool_choice`
/// (`REQUIRED`/`NONE`, omitted for auto; a named tool is sent alone with `REQUIRED`).
fn tools(body: &Value, out: &mut Map<String, Value>) -> Result<(), AdapterError> {
    let mut list = Vec::new();
    let mut strict = false;
    for (i, t) in body
        .get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        if t.get("type")
            .and_then(Value::as_str)
            .is_some_and(|k| k != "function")
        {
            return Err(bad(format!(
                "tools[{i}]: only `function` tools are supported by Cohere"
            )));
        }
        let f = t.get("function").unwrap_or(t);
        let name = f
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| bad(format!("tools[{i}]: `function.name` is required")))?;
        let mut function = json!({"name": name});
        if let Some(d) = f.get("description").and_then(Value::as_str) {
            function["description"] = d.into();
        }
        function["parameters"] = f
            .get("parameters")
            .filter(|p| p.is_object())
            .cloned()
            .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
        strict |= f.get("strict").and_then(Value::as_bool) == Some(true);
        list.push(json!({"type": "function", "function": function}));
    }
    if list.is_empty() {
        return Ok(());
    }
    let choice = match body.get("tool_choice") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => match s.as_str() {
            "auto" => None,
            "none" => Some("NONE"),
            "required" => Some("REQUIRED"),
            other => return Err(bad(format!("unknown `tool_choice` `{other}`"))),
        },
        Some(named) => {
            let name = named
                .pointer("/function/name")
                .and_then(Value::as_str)
                .ok_or_else(|| bad("`tool_choice` must name a function"))?;
            list.retain(|t| t["function"]["name"] == name);
            if list.is_empty() {
                return Err(bad(format!(
                    "`tool_choice` names `{name}`, which is not in `tools`"
                )));
            }
            Some("REQUIRED")
        }
    };
    out.insert("tools".into(), Value::Array(list));
    if strict {
        out.insert("strict_tools".into(), true.into());
    }
    if let Some(choice) = choice {
        out.insert("tool_choice".into(), choice.into());
    }
    Ok(())
}

/// Text of a content value (string, or the text parts joined).
fn text_of(content: &Value) -> Result<String, AdapterError> {
    match content {
        Value::Null => Ok(String::new()),
        Value::String(s) => Ok(s.clone()),
        Value::Array(parts) => {
            let mut texts = Vec::new();
            for part in parts {
                match part.get("type").and_then(Value::as_str).unwrap_or("") {
                    "text" => texts.push(part.get("text").and_then(Value::as_str).unwrap_or("")),
                    "refusal" => {}
                    other => {
                        return Err(bad(format!(
                            "content parts of type `{other}` are not supported here"
                        )))
                    }
                }
            }
            Ok(texts.join("\n"))
        }
        _ => Err(bad("`content` must be a string or an array of parts")),
    }
}

fn user_content(content: &Value) -> Result<Value, AdapterError> {
    let Value::Array(parts) = content else {
        return Ok(text_of(content)?.into());
    };
    let mut out = Vec::new();
    for part in parts {
        match part.get("type").and_then(Value::as_str).unwrap_or("") {
            "text" => out.push(json!({"type": "text", "text": part.get("text").and_then(Value::as_str).unwrap_or("")})),
            "image_url" => {
                let image = &part["image_url"];
                let url = image.get("url").or(Some(image)).and_then(Value::as_str);
                let url = url.ok_or_else(|| bad("`image_url.url` is required"))?;
                let mut image_url = json!({"url": url});
                if let Some(detail) = image.get("detail").and_then(Value::as_str) {
                    image_url["detail"] = detail.into();
                }
                out.push(json!({"type": "image_url", "image_url": image_url}));
            }
            other => return Err(bad(format!("content parts of type `{other}` are not supported by Cohere"))),
        }
    }
    Ok(Value::Array(out))
}

/// OpenAI messages → Cohere v2 messages. System and developer messages are joined into one
/// leading system turn (Cohere wants the system turn first); an assistant's text next to its
/// tool calls becomes `tool_plan`.
fn messages_of(messages: &[Value]) -> Result<Vec<Value>, AdapterError> {
    let mut system: Vec<String> = Vec::new();
    let mut out = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        let at = |e: AdapterError| bad(format!("messages[{i}]: {}", e.0));
        let content = m.get("content").unwrap_or(&Value::Null);
        match m.get("role").and_then(Value::as_str).unwrap_or("") {
            "system" | "developer" => {
                let text = text_of(content).map_err(at)?;
                if !text.is_empty() {
                    system.push(text);
                }
            }
            "user" => {
                out.push(json!({"role": "user", "content": user_content(content).map_err(at)?}))
            }
            "assistant" => {
                let text = text_of(content).map_err(at)?;
                let calls: Vec<Value> = m
                    .get("tool_calls")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .map(super::tool_call)
                    .collect();
                if !calls.is_empty() {
                    let mut turn = json!({"role": "assistant", "tool_calls": calls});
                    if !text.is_empty() {
                        turn["tool_plan"] = text.into();
                    }
                    out.push(turn);
                } else if !text.is_empty() {
                    out.push(json!({"role": "assistant", "content": text}));
                }
            }
            "tool" => {
                let id = m
                    .get("tool_call_id")
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        bad(format!(
                            "messages[{i}]: a tool message needs `tool_call_id`"
                        ))
                    })?;
                let text = text_of(content).map_err(at)?;
                out.push(json!({"role": "tool", "tool_call_id": id, "content": text}));
            }
            other => return Err(bad(format!("messages[{i}]: unsupported role `{other}`"))),
        }
    }
    if !system.is_empty() {
        out.insert(0, json!({"role": "system", "content": system.join("\n\n")}));
    }
    Ok(out)
}
