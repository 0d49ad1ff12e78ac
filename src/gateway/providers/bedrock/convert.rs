//! OpenAI request bodies to Bedrock's: Converse for chat and legacy completions, the native
//! `invoke` bodies of Titan and Cohere for embeddings (providers.md sections 5.2 and 5.6).

use serde_json::{json, Map, Value};

use super::super::adapter::AdapterError;

fn err(message: impl Into<String>) -> AdapterError {
    AdapterError(message.into())
}

/// Top-level Converse fields passed through as sent.
const PASS_THROUGH: &[&str] = &[
    "guardrailConfig",
    "performanceConfig",
    "requestMetadata",
    "additionalModelResponseFieldPaths",
    "promptVariables",
];

/// A chat request as a Converse body.
pub fn chat(body: &Map<String, Value>) -> Result<Value, AdapterError> {
    if body.get("n").and_then(Value::as_u64).is_some_and(|n| n > 1) {
        return Err(err("bedrock returns one choice per request: n must be 1"));
    }
    let Some(Value::Array(messages)) = body.get("messages") else {
        return Err(err("messages must be an array"));
    };
    let mut system = Vec::new();
    let mut turns: Vec<(&str, Vec<Value>)> = Vec::new();
    for message in messages {
        let role = message.get("role").and_then(Value::as_str).unwrap_or("");
        let content = message.get("content").unwrap_or(&Value::Null);
        let (role, blocks) = match role {
            "system" | "developer" => {
                system.extend(text_blocks(content)?);
                continue;
            }
            "user" => ("user", user_blocks(content)?),
            "assistant" => ("assistant", assistant_blocks(message)?),
            "tool" => ("user", vec![tool_result(message)?]),
            other => return Err(err(format!("bedrock does not take `{other}` messages"))),
        };
        if blocks.is_empty() {
            continue;
        }
        // Converse requires user and assistant turns to alternate: merge neighbours.
        match turns.last_mut() {
            Some((last, previous)) if *last == role => previous.extend(blocks),
            _ => turns.push((role, blocks)),
        }
    }
    let has_tool_blocks = turns
        .iter()
        .flat_map(|(_, b)| b)
        .any(|b| b.get("toolUse").is_some() || b.get("toolResult").is_some());

    let mut out = Map::new();
    if !system.is_empty() {
        out.insert("system".into(), Value::Array(system));
    }
    out.insert(
        "messages".into(),
        turns
            .into_iter()
            .map(|(role, content)| json!({"role": role, "content": content}))
            .collect(),
    );
    let inference = inference_config(body);
    if !inference.is_empty() {
        out.insert("inferenceConfig".into(), Value::Object(inference));
    }
    if let Some(config) = tool_config(body, has_tool_blocks)? {
        out.insert("toolConfig".into(), config);
    }
    let mut extra = body
        .get("additionalModelRequestFields")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    if let Some(top_k) = body.get("top_k") {
        extra.insert("top_k".into(), top_k.clone());
    }
    if !extra.is_empty() {
        out.insert("additionalModelRequestFields".into(), Value::Object(extra));
    }
    for key in PASS_THROUGH {
        if let Some(v) = body.get(*key) {
            out.insert((*key).into(), v.clone());
        }
    }
    Ok(Value::Object(out))
}

/// A legacy completions request as a one-message Converse body (providers.md section 1.2).
pub fn completion(body: &Map<String, Value>) -> Result<Value, AdapterError> {
    for key in ["echo", "suffix"] {
        if body
            .get(key)
            .is_some_and(|v| !v.is_null() && *v != json!(false))
        {
            return Err(err(format!("bedrock completions do not support `{key}`")));
        }
    }
    if body
        .get("best_of")
        .and_then(Value::as_u64)
        .is_some_and(|n| n > 1)
    {
        return Err(err("bedrock completions do not support `best_of`"));
    }
    let prompt = match body.get("prompt") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) if items.len() == 1 && items[0].is_string() => {
            items[0].as_str().unwrap_or_default().to_string()
        }
        _ => return Err(err("bedrock completions take `prompt` as one string")),
    };
    let mut chat_body = body.clone();
    chat_body.remove("prompt");
    chat_body.insert(
        "messages".into(),
        json!([{"role": "user", "content": prompt}]),
    );
    chat(&chat_body)
}

/// An embeddings request as a native `invoke` body: Cohere's for `cohere.embed*` models,
/// Titan's (one input per request) for the rest.
pub fn embeddings(model: &str, body: &Map<String, Value>) -> Result<Value, AdapterError> {
    let inputs: Vec<&str> = match body.get("input") {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => {
            items.iter().filter_map(Value::as_str).collect()
        }
        _ => {
            return Err(err(
                "bedrock embeddings take `input` as text, not token ids",
            ))
        }
    };
    if inputs.is_empty() {
        return Err(err("`input` must not be empty"));
    }
    if model.contains("cohere.embed") {
        let input_type = body
            .get("input_type")
            .and_then(Value::as_str)
            .unwrap_or("search_document");
        return Ok(json!({"texts": inputs, "input_type": input_type}));
    }
    if inputs.len() > 1 {
        return Err(err(
            "bedrock embeddings take one input per request: send each text separately",
        ));
    }
    let mut out = json!({"inputText": inputs[0]});
    if let Some(dimensions) = body.get("dimensions") {
        out["dimensions"] = dimensions.clone();
    }
    Ok(out)
}

fn inference_config(body: &Map<String, Value>) -> Map<String, Value> {
    let mut config = Map::new();
    let max = body
        .get("max_completion_tokens")
        .filter(|v| !v.is_null())
        .or_else(|| body.get("max_tokens"));
    for (key, value) in [
        ("maxTokens", max),
        ("temperature", body.get("temperature")),
        ("topP", body.get("top_p")),
    ] {
        if let Some(v) = value.filter(|v| !v.is_null()) {
            config.insert(key.into(), v.clone());
        }
    }
    match body.get("stop") {
        Some(Value::String(s)) => {
            config.insert("stopSequences".into(), json!([s]));
        }
        Some(Value::Array(list)) if !list.is_empty() => {
            config.insert("stopSequences".into(), Value::Array(list.clone()));
        }
        _ => {}
    }
    config
}

fn tool_config(
    body: &Map<String, Value>,
    has_tool_blocks: bool,
) -> Result<Option<Value>, AdapterError> {
    let Some(Value::Array(tools)) = body
        .get("tools")
        .filter(|t| t.as_array().is_some_and(|a| !a.is_empty()))
    else {
        return Ok(None);
    };
    let choice = match body.get("tool_choice") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s == "auto" => Some(json!({"auto": {}})),
        Some(Value::String(s)) if s == "required" => Some(json!({"any": {}})),
        Some(Value::String(s)) if s == "none" => {
            // No equivalent: hide the tools, unless the history needs them declared.
            if !has_tool_blocks {
                return Ok(None);
            }
            None
        }
        Some(named) => match named.pointer("/function/name").and_then(Value::as_str) {
            Some(name) => Some(json!({"tool": {"name": name}})),
            None => return Err(err(format!("unsupported tool_choice {named}"))),
        },
    };
    let specs = tools
        .iter()
        .map(|tool| {
            let f = tool.get("function").unwrap_or(tool);
            let name = f
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| err("every tool needs a function name"))?;
            let mut spec = json!({"name": name});
            if let Some(d) = f.get("description").and_then(Value::as_str) {
                spec["description"] = json!(d);
            }
            let schema = f
                .get("parameters")
                .filter(|p| !p.is_null())
                .cloned()
                .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
            spec["inputSchema"] = json!({"json": schema});
            Ok(json!({"toolSpec": spec}))
        })
        .collect::<Result<Vec<_>, AdapterError>>()?;
    let mut config = json!({"tools": specs});
    if let Some(choice) = choice {
        config["toolChoice"] = choice;
    }
    Ok(Some(config))
}

/// Text parts only (system prompts, tool results).
fn text_blocks(content: &Value) -> Result<Vec<Value>, AdapterError> {
    match content {
        Value::Null => Ok(vec![]),
        Value::String(s) => Ok(text(s).into_iter().collect()),
        Value::Array(parts) => Ok(parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .filter_map(text)
            .collect()),
        other => Err(err(format!("unsupported message content {other}"))),
    }
}

/// Converse rejects blank text blocks.
fn text(s: &str) -> Option<Value> {
    (!s.trim().is_empty()).then(|| json!({"text": s}))
}

fn user_blocks(content: &Value) -> Result<Vec<Value>, AdapterError> {
    let Value::Array(parts) = content else {
        return text_blocks(content);
    };
    let mut blocks = Vec::new();
    for part in parts {
        match part.get("type").and_then(Value::as_str).unwrap_or("text") {
            "text" => blocks.extend(part.get("text").and_then(Value::as_str).and_then(text)),
            "image_url" => {
                let url = part
                    .pointer("/image_url/url")
                    .or_else(|| part.get("image_url"))
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let (mime, data) = data_uri(url).ok_or_else(|| {
                    err("bedrock takes images inline only: send them as data: URIs")
                })?;
                let format = mime.strip_prefix("image/").unwrap_or(mime);
                let format = if format == "jpg" { "jpeg" } else { format };
                if !matches!(format, "png" | "jpeg" | "gif" | "webp") {
                    return Err(err(format!("bedrock does not take {mime} images")));
                }
                blocks.push(json!({"image": {"format": format, "source": {"bytes": data}}}));
            }
            "file" => {
                let file = part.get("file").unwrap_or(part);
                let (mime, data) = file
                    .get("file_data")
                    .and_then(Value::as_str)
                    .and_then(data_uri)
                    .ok_or_else(|| err("bedrock takes files inline only, as file_data"))?;
                let format = match mime {
                    "application/pdf" => "pdf",
                    "text/csv" => "csv",
                    "text/html" => "html",
                    "text/markdown" => "md",
                    "text/plain" => "txt",
                    "application/msword" => "doc",
                    _ => return Err(err(format!("bedrock does not take {mime} documents"))),
                };
                let name = file
                    .get("filename")
                    .and_then(Value::as_str)
                    .map(document_name)
                    .filter(|n| !n.is_empty())
                    .unwrap_or_else(|| "document".into());
                blocks.push(json!({"document": {"format": format, "name": name, "source": {"bytes": data}}}));
            }
            other => {
                return Err(err(format!(
                    "bedrock does not take `{other}` content parts"
                )))
            }
        }
    }
    Ok(blocks)
}

/// `data:<mime>;base64,<data>` → (mime, data).
fn data_uri(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("data:")?;
    let (meta, data) = rest.split_once(',')?;
    let mime = meta.strip_suffix(";base64")?;
    Some((mime, data))
}

/// Bedrock document names allow letters, digits, single spaces, `-`, `(`, `)`, `[`, `]`.
fn document_name(filename: &str) -> String {
    let stem = filename.rsplit_once('.').map_or(filename, |(s, _)| s);
    let kept: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-()[]".contains(c) {
                c
            } else {
                ' '
            }
        })
        .collect();
    kept.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn assistant_blocks(message: &Value) -> Result<Vec<Value>, AdapterError> {
    let mut blocks = text_blocks(message.get("content").unwrap_or(&Value::Null))?;
    for call in message
        .get("tool_calls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let id = call.get("id").and_then(Value::as_str).unwrap_or_default();
        let f = call.get("function").unwrap_or(&Value::Null);
        let name = f.get("name").and_then(Value::as_str).unwrap_or_default();
        let arguments = f.get("arguments").and_then(Value::as_str).unwrap_or("");
        let input: Value = if arguments.trim().is_empty() {
            json!({})
        } else {
            serde_json::from_str(arguments).map_err(|e| {
                err(format!(
                    "tool call {id} has arguments that are not JSON: {e}"
                ))
            })?
        };
        blocks.push(json!({"toolUse": {"toolUseId": id, "name": name, "input": input}}));
    }
    Ok(blocks)
}

fn tool_result(message: &Value) -> Result<Value, AdapterError> {
    let id = message
        .get("tool_call_id")
        .and_then(Value::as_str)
        .ok_or_else(|| err("a tool message needs tool_call_id"))?;
    let mut content = text_blocks(message.get("content").unwrap_or(&Value::Null))?;
    if content.is_empty() {
        // A tool result must carry something; an empty answer is still an answer.
        content.push(json!({"text": "(empty)"}));
    }
    Ok(json!({"toolResult": {"toolUseId": id, "content": content}}))
}
