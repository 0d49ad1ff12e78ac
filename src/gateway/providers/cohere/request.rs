//! OpenAI chat and embeddings bodies → Cohere v2 bodies (providers.md section 7). Built field
//! by field, so what Cohere would reject (`user`, `stream_options`, `logit_bias`, ...) is left
//! out.

use serde_json::{json, Map, Value};

use crate::gateway::providers::adapter::AdapterError;
use crate::gateway::providers::translation::{
    bad, function_tools, json_format, max_tokens, messages, model, one_choice, prompt_as_chat,
    stop_sequences, tool_call_id, tool_choice, JsonFormat, ToolChoice,
};

/// Cohere's documented per-call limit on `texts`.
const MAX_TEXTS: usize = 96;

pub fn chat(body: &Value, stream: bool) -> Result<Value, AdapterError> {
    let model = model(body)?;
    one_choice(body, "Cohere")?;
    let mut out = Map::new();
    out.insert("model".into(), model.into());
    out.insert(
        "messages".into(),
        Value::Array(messages_of(messages(body)?)?),
    );
    tools(body, &mut out)?;
    if let Some(max) = max_tokens(body).filter(|m| m.is_u64()) {
        out.insert("max_tokens".into(), max.clone());
    }
    if let Some(stops) = stop_sequences(body)? {
        out.insert("stop_sequences".into(), json!(stops));
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
    if let Some(format) = json_format(body)? {
        let format = match format {
            JsonFormat::Any => json!({"type": "json_object"}),
            JsonFormat::Schema(schema) => json!({"type": "json_object", "json_schema": schema}),
        };
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
    chat(&prompt_as_chat(body, "Cohere")?, stream)
}

pub fn embed(body: &Value) -> Result<Value, AdapterError> {
    let model = model(body)?;
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

/// `tools` (OpenAI's shape, `strict` lifted to `strict_tools`) and `tool_choice`
/// (`REQUIRED`/`NONE`, omitted for auto; a named tool is sent alone with `REQUIRED`).
fn tools(body: &Value, out: &mut Map<String, Value>) -> Result<(), AdapterError> {
    let mut list = Vec::new();
    let mut strict = false;
    for f in function_tools(body, "Cohere")? {
        let mut function = json!({"name": f.name});
        if let Some(d) = f.description {
            function["description"] = d.into();
        }
        function["parameters"] = f.parameters;
        strict |= f.function.get("strict").and_then(Value::as_bool) == Some(true);
        list.push(json!({"type": "function", "function": function}));
    }
    if list.is_empty() {
        return Ok(());
    }
    let choice = match tool_choice(body)? {
        None | Some(ToolChoice::Auto) => None,
        Some(ToolChoice::None) => Some("NONE"),
        Some(ToolChoice::Required) => Some("REQUIRED"),
        Some(ToolChoice::Function(name)) => {
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
                let id = tool_call_id(m, i)?;
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
