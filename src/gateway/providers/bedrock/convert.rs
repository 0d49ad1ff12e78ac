//! OpenAI request bodies to Bedrock's: Converse for chat and legacy completions, the native
//! `invoke` bodies of Titan and Cohere for embeddings (providers.md sections 5.2 and 5.6).

use serde_json::{json, Map, Value};

use super::super::adapter::AdapterError;
use super::super::translation::{
    bad, data_url, max_tokens, messages, prompt_as_chat, push_turn, stop_sequences, texts,
    tool_choice, ToolChoice,
};

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
        return Err(bad("bedrock returns one choice per request: n must be 1"));
    }
    let messages = messages(body)?;
    let mut system = Vec::new();
    let mut turns: Vec<Value> = Vec::new();
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
            other => return Err(bad(format!("bedrock does not take `{other}` messages"))),
        };
        // Converse requires user and assistant turns to alternate.
        push_turn(&mut turns, role, "content", blocks);
    }
    let has_tool_blocks = turns
        .iter()
        .flat_map(|t| t["content"].as_array().into_iter().flatten())
        .any(|b| b.get("toolUse").is_some() || b.get("toolResult").is_some());

    let mut out = Map::new();
    if !system.is_empty() {
        out.insert("system".into(), Value::Array(system));
    }
    out.insert("messages".into(), Value::Array(turns));
    let inference = inference_config(body)?;
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
    let chat_body = prompt_as_chat(&Value::Object(body.clone()), "bedrock")?;
    chat(chat_body.as_object().expect("the body stays an object"))
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
            return Err(bad(
                "bedrock embeddings take `input` as text, not token ids",
            ))
        }
    };
    if inputs.is_empty() {
        return Err(bad("`input` must not be empty"));
    }
    if model.contains("cohere.embed") {
        let input_type = body
            .get("input_type")
            .and_then(Value::as_str)
            .unwrap_or("search_document");
        return Ok(json!({"texts": inputs, "input_type": input_type}));
    }
    if inputs.len() > 1 {
        return Err(bad(
            "bedrock embeddings take one input per request: send each text separately",
        ));
    }
    let mut out = json!({"inputText": inputs[0]});
    if let Some(dimensions) = body.get("dimensions") {
        out["dimensions"] = dimensions.clone();
    }
    Ok(out)
}

fn inference_config(body: &Map<String, Value>) -> Result<Map<String, Value>, AdapterError> {
    let mut config = Map::new();
    for (key, value) in [
        ("maxTokens", max_tokens(body)),
        ("temperature", body.get("temperature")),
        ("topP", body.get("top_p")),
    ] {
        if let Some(v) = value.filter(|v| !v.is_null()) {
            config.insert(key.into(), v.clone());
        }
    }
    if let Some(stops) = stop_sequences(body)?.filter(|s| !s.is_empty()) {
        config.insert("stopSequences".into(), json!(stops));
    }
    Ok(config)
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
    let choice = match tool_choice(body)? {
        None => None,
        Some(ToolChoice::Auto) => Some(json!({"auto": {}})),
        Some(ToolChoice::Required) => Some(json!({"any": {}})),
        Some(ToolChoice::None) => {
            // No equivalent: hide the tools, unless the history needs them declared.
            if !has_tool_blocks {
                return Ok(None);
            }
            None
        }
        Some(ToolChoice::Function(name)) => Some(json!({"tool": {"name": name}})),
    };
    let specs = tools
        .iter()
        .map(|tool| {
            let f = tool.get("function").unwrap_or(tool);
            let name = f
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| bad("every tool needs a function name"))?;
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
    let texts =
        texts(content).ok_or_else(|| bad(format!("unsupported message content {content}")))?;
    Ok(texts.into_iter().filter_map(text).collect())
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
                let (mime, data) = data_url(url).ok_or_else(|| {
                    bad("bedrock takes images inline only: send them as data: URIs")
                })?;
                let format = mime.strip_prefix("image/").unwrap_or(mime);
                let format = if format == "jpg" { "jpeg" } else { format };
                if !matches!(format, "png" | "jpeg" | "gif" | "webp") {
                    return Err(bad(format!("bedrock does not take {mime} images")));
                }
                blocks.push(json!({"image": {"format": format, "source": {"bytes": data}}}));
            }
            "file" => {
                let file = part.get("file").unwrap_or(part);
                let (mime, data) = file
                    .get("file_data")
                    .and_then(Value::as_str)
                    .and_then(data_url)
                    .ok_or_else(|| bad("bedrock takes files inline only, as file_data"))?;
                let format = match mime {
                    "application/pdf" => "pdf",
                    "text/csv" => "csv",
                    "text/html" => "html",
                    "text/markdown" => "md",
                    "text/plain" => "txt",
                    "application/msword" => "doc",
                    _ => return Err(bad(format!("bedrock does not take {mime} documents"))),
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
                return Err(bad(format!(
                    "bedrock does not take `{other}` content parts"
                )))
            }
        }
    }
    Ok(blocks)
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
                bad(format!(
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
        .ok_or_else(|| bad("a tool message needs tool_call_id"))?;
    let mut content = text_blocks(message.get("content").unwrap_or(&Value::Null))?;
    if content.is_empty() {
        // A tool result must carry something; an empty answer is still an answer.
        content.push(json!({"text": "(empty)"}));
    }
    Ok(json!({"toolResult": {"toolUseId": id, "content": content}}))
}
