//! OpenAI chat request → Gemini `generateContent` body (providers.md 4.2).

use std::collections::HashMap;

use serde_json::{json, Map, Value};

use super::schema;
use crate::gateway::providers::adapter::AdapterError;
use crate::gateway::providers::translation::{
    bad, data_url, max_tokens, messages, prompt_as_chat, push_turn, stop_sequences, texts,
};

/// Google's documented stand-in for a lost `thoughtSignature` on a replayed Gemini 3 call.
const SKIP_SIGNATURE: &str = "skip_thought_signature_validator";

/// Builds the `generateContent` body for an OpenAI chat body.
pub fn chat(body: &Value, model: &str) -> Result<Value, AdapterError> {
    let messages = messages(body)?;
    let mut system: Vec<Value> = Vec::new();
    let mut contents: Vec<Value> = Vec::new();
    // tool_call id → function name, for `functionResponse.name`.
    let mut call_names: HashMap<String, String> = HashMap::new();
    let gemini3 = model.starts_with("gemini-3");
    for (i, m) in messages.iter().enumerate() {
        let role = m.get("role").and_then(Value::as_str).unwrap_or("");
        let content = m.get("content").unwrap_or(&Value::Null);
        let (turn, parts) = match role {
            "system" | "developer" => {
                system.extend(text_parts(content)?);
                continue;
            }
            "user" => ("user", user_parts(content)?),
            "assistant" => ("model", assistant_parts(m, gemini3, &mut call_names)?),
            "tool" => {
                let id = m.get("tool_call_id").and_then(Value::as_str).unwrap_or("");
                let name = call_names
                    .get(id)
                    .map(String::as_str)
                    .or_else(|| m.get("name").and_then(Value::as_str))
                    .ok_or_else(|| {
                        bad(format!(
                            "messages[{i}]: no earlier assistant tool call has id `{id}`; \
                             Gemini needs the function's name for a tool result"
                        ))
                    })?;
                ("user", vec![function_response(name, content)])
            }
            // Legacy function-calling result (Portkey bug #1761).
            "function" => {
                let name = m.get("name").and_then(Value::as_str).ok_or_else(|| {
                    bad(format!("messages[{i}]: a `function` message needs `name`"))
                })?;
                ("user", vec![function_response(name, content)])
            }
            other => return Err(bad(format!("messages[{i}]: unsupported role `{other}`"))),
        };
        // Gemini expects user/model alternation.
        push_turn(&mut contents, turn, "parts", parts);
    }

    let mut out = Map::new();
    out.insert("contents".into(), Value::Array(contents));
    if !system.is_empty() {
        out.insert("systemInstruction".into(), json!({"parts": system}));
    }
    if let Some(tools) = tools(body)? {
        out.insert("tools".into(), tools);
    }
    if let Some(config) = tool_config(body)? {
        out.insert("toolConfig".into(), config);
    }
    let generation = generation_config(body, gemini3)?;
    if !generation.is_empty() {
        out.insert("generationConfig".into(), Value::Object(generation));
    }
    // Native pass-through (Portkey accepts it too).
    if let Some(s) = body
        .get("safety_settings")
        .or_else(|| body.get("safetySettings"))
    {
        out.insert("safetySettings".into(), s.clone());
    }
    Ok(Value::Object(out))
}

/// `prompt` of a legacy completions request as one user message.
pub fn completion(body: &Value, model: &str) -> Result<Value, AdapterError> {
    chat(&prompt_as_chat(body, "Gemini")?, model)
}

/// The non-empty texts of `content` as text parts.
fn text_parts(content: &Value) -> Result<Vec<Value>, AdapterError> {
    let texts = texts(content)
        .ok_or_else(|| bad("message `content` must be a string or an array of parts"))?;
    Ok(texts
        .into_iter()
        .filter(|t| !t.is_empty())
        .map(|t| json!({"text": t}))
        .collect())
}

fn user_parts(content: &Value) -> Result<Vec<Value>, AdapterError> {
    let Value::Array(items) = content else {
        return text_parts(content);
    };
    let mut parts = Vec::new();
    for item in items {
        match item.get("type").and_then(Value::as_str) {
            Some("text") => parts.extend(text_parts(&Value::Array(vec![item.clone()]))?),
            Some("image_url") => {
                let url = match &item["image_url"] {
                    Value::String(s) => s.as_str(),
                    v => v.get("url").and_then(Value::as_str).unwrap_or(""),
                };
                parts.push(media_part(url)?);
            }
            Some("input_audio") => {
                let a = &item["input_audio"];
                let format = a.get("format").and_then(Value::as_str).unwrap_or("wav");
                parts.push(json!({"inlineData": {
                    "mimeType": format!("audio/{format}"),
                    "data": a.get("data").and_then(Value::as_str).unwrap_or(""),
                }}));
            }
            Some("file") => {
                let f = &item["file"];
                let data = f.get("file_data").and_then(Value::as_str).unwrap_or("");
                if data.is_empty() {
                    return Err(bad(
                        "Gemini needs `file.file_data`; uploaded `file_id`s are not supported",
                    ));
                }
                parts.push(media_part(data)?);
            }
            other => {
                return Err(bad(format!(
                    "unsupported content part type `{}`",
                    other.unwrap_or("?")
                )));
            }
        }
    }
    Ok(parts)
}

/// A data URL → `inlineData`; an http(s) or `gs://` URL → `fileData`.
fn media_part(url: &str) -> Result<Value, AdapterError> {
    if url.starts_with("data:") {
        let (mime, data) = data_url(url).ok_or_else(|| bad("data URLs must be base64"))?;
        return Ok(json!({"inlineData": {"mimeType": mime, "data": data}}));
    }
    if url.starts_with("https://") || url.starts_with("http://") || url.starts_with("gs://") {
        return Ok(json!({"fileData": {"mimeType": mime_from_path(url), "fileUri": url}}));
    }
    Err(bad("image URLs must be data:, http(s):// or gs:// URLs"))
}

fn mime_from_path(url: &str) -> &'static str {
    let path = url
        .split(['?', '#'])
        .next()
        .unwrap_or(url)
        .to_ascii_lowercase();
    let ext = path.rsplit_once('.').map_or("", |(_, e)| e);
    match ext {
        "png" => "image/png",
        "webp" => "image/webp",
        "gif" => "image/gif",
        "heic" => "image/heic",
        "heif" => "image/heif",
        "pdf" => "application/pdf",
        "mp3" => "audio/mp3",
        "wav" => "audio/wav",
        "mp4" => "video/mp4",
        _ => "image/jpeg",
    }
}

fn assistant_parts(
    m: &Value,
    gemini3: bool,
    call_names: &mut HashMap<String, String>,
) -> Result<Vec<Value>, AdapterError> {
    let mut parts = text_parts(m.get("content").unwrap_or(&Value::Null))?;
    let mut calls: Vec<(&Value, Option<&str>)> = Vec::new();
    for call in m
        .get("tool_calls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let f = &call["function"];
        let name = f.get("name").and_then(Value::as_str).unwrap_or("");
        if let Some(id) = call.get("id").and_then(Value::as_str) {
            call_names.insert(id.to_string(), name.to_string());
        }
        let signature = f
            .get("thought_signature")
            .or_else(|| call.pointer("/extra_content/google/thought_signature"))
            .and_then(Value::as_str);
        calls.push((f, signature));
    }
    if let Some(f) = m.get("function_call") {
        calls.push((f, None));
    }
    let any_signed = calls.iter().any(|(_, s)| s.is_some());
    for (n, (f, signature)) in calls.into_iter().enumerate() {
        let name = f.get("name").and_then(Value::as_str).unwrap_or("");
        let text = f.get("arguments").and_then(Value::as_str).unwrap_or("");
        let args = if text.trim().is_empty() {
            json!({})
        } else {
            serde_json::from_str::<Value>(text)
                .ok()
                .filter(Value::is_object)
                .ok_or_else(|| {
                    bad(format!(
                        "tool call `{name}`: `arguments` is not a JSON object"
                    ))
                })?
        };
        let mut part = json!({"functionCall": {"name": name, "args": args}});
        // Gemini 3 rejects a replayed call turn without a signature on its first call.
        let signature = signature.or((gemini3 && !any_signed && n == 0).then_some(SKIP_SIGNATURE));
        if let Some(s) = signature {
            part["thoughtSignature"] = s.into();
        }
        parts.push(part);
    }
    Ok(parts)
}

fn function_response(name: &str, content: &Value) -> Value {
    let text = texts(content).map_or_else(|| content.to_string(), |t| t.concat());
    let response = match serde_json::from_str::<Value>(&text) {
        Ok(v @ Value::Object(_)) => v,
        _ => json!({"content": text}),
    };
    json!({"functionResponse": {"name": name, "response": response}})
}

fn tools(body: &Value) -> Result<Option<Value>, AdapterError> {
    let mut declarations = Vec::new();
    for tool in body
        .get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if tool
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("function")
            != "function"
        {
            return Err(bad(format!(
                "Gemini supports only function tools, not `{}`",
                tool["type"]
            )));
        }
        declarations.push(declaration(&tool["function"]));
    }
    // Legacy `functions`.
    for f in body
        .get("functions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        declarations.push(declaration(f));
    }
    Ok((!declarations.is_empty()).then(|| json!([{"functionDeclarations": declarations}])))
}

fn declaration(f: &Value) -> Value {
    let mut d = Map::new();
    d.insert("name".into(), f.get("name").cloned().unwrap_or(Value::Null));
    if let Some(desc) = f.get("description") {
        d.insert("description".into(), desc.clone());
    }
    if let Some(p) = f.get("parameters").and_then(schema::clean_parameters) {
        d.insert("parameters".into(), p);
    }
    Value::Object(d)
}

fn tool_config(body: &Value) -> Result<Option<Value>, AdapterError> {
    let choice = match body
        .get("tool_choice")
        .or_else(|| body.get("function_call"))
    {
        None | Some(Value::Null) => return Ok(None),
        Some(c) => c,
    };
    let (mode, names): (&str, Vec<Value>) = match choice {
        Value::String(s) => match s.as_str() {
            "auto" => ("AUTO", vec![]),
            "none" => ("NONE", vec![]),
            "required" | "any" => ("ANY", vec![]),
            other => return Err(bad(format!("unsupported tool_choice `{other}`"))),
        },
        Value::Object(o) if o.get("type").and_then(Value::as_str) == Some("allowed_tools") => {
            let allowed = &o["allowed_tools"];
            let names = allowed["tools"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|t| t.pointer("/function/name").cloned())
                .collect();
            match allowed.get("mode").and_then(Value::as_str) {
                Some("required") => ("ANY", names),
                _ => ("AUTO", vec![]),
            }
        }
        Value::Object(o) => {
            let name = o
                .get("function")
                .and_then(|f| f.get("name"))
                .or_else(|| o.get("name"))
                .and_then(Value::as_str)
                .ok_or_else(|| bad("tool_choice names no function"))?;
            ("ANY", vec![name.into()])
        }
        _ => return Err(bad("tool_choice must be a string or an object")),
    };
    let mut config = json!({"mode": mode});
    if !names.is_empty() {
        config["allowedFunctionNames"] = Value::Array(names);
    }
    Ok(Some(json!({"functionCallingConfig": config})))
}

fn generation_config(body: &Value, gemini3: bool) -> Result<Map<String, Value>, AdapterError> {
    let mut g = Map::new();
    let mut put = |to: &str, value: Option<&Value>| {
        if let Some(v) = value.filter(|v| !v.is_null()) {
            g.insert(to.into(), v.clone());
        }
    };
    put("temperature", body.get("temperature"));
    put("topP", body.get("top_p"));
    put("topK", body.get("top_k"));
    put("maxOutputTokens", max_tokens(body));
    put("candidateCount", body.get("n"));
    put("seed", body.get("seed"));
    put("presencePenalty", body.get("presence_penalty"));
    put("frequencyPenalty", body.get("frequency_penalty"));
    put("responseLogprobs", body.get("logprobs"));
    put("logprobs", body.get("top_logprobs"));
    if let Some(stops) = stop_sequences(body)?.filter(|s| !s.is_empty()) {
        g.insert("stopSequences".into(), json!(stops));
    }
    if let Some(format) = body.get("response_format") {
        match format.get("type").and_then(Value::as_str) {
            Some("json_object") => {
                g.insert("responseMimeType".into(), "application/json".into());
            }
            Some("json_schema") => {
                g.insert("responseMimeType".into(), "application/json".into());
                if let Some(s) = format.pointer("/json_schema/schema") {
                    g.insert("responseSchema".into(), schema::clean(s));
                }
            }
            Some("text") | None => {}
            Some(other) => return Err(bad(format!("unsupported response_format `{other}`"))),
        }
    }
    if let Some(effort) = body.get("reasoning_effort").and_then(Value::as_str) {
        let thinking = if gemini3 {
            let level = if matches!(effort, "none" | "minimal") {
                "minimal"
            } else {
                effort
            };
            json!({"thinkingLevel": level})
        } else {
            // Google's own OpenAI-compatible mapping for 2.5 models.
            let budget = match effort {
                "none" | "minimal" => 0,
                "low" => 1024,
                "medium" => 8192,
                _ => 24576,
            };
            json!({"thinkingBudget": budget})
        };
        g.insert("thinkingConfig".into(), thinking);
    }
    Ok(g)
}
