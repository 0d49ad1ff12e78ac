//! OpenAI chat body → Anthropic Messages body (providers.md 3.1). Built field by field, so
//! everything Anthropic would reject (`seed`, penalties, `logprobs`, `stream_options`, ...) is
//! left out.

use serde_json::{json, Map, Value};

use super::{bad, DEFAULT_MAX_TOKENS, JSON_TOOL};
use crate::gateway::providers::adapter::AdapterError;

/// `reasoning_effort` → `thinking.budget_tokens` (policy).
fn thinking_budget(effort: Option<&str>) -> Result<Option<u64>, AdapterError> {
    Ok(match effort {
        None | Some("none") => None,
        Some("minimal" | "low") => Some(1024),
        Some("medium") => Some(4096),
        Some("high") => Some(16384),
        Some(other) => return Err(bad(format!("unknown `reasoning_effort` `{other}`"))),
    })
}

pub fn chat(body: &Value, stream: bool) -> Result<Value, AdapterError> {
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty())
        .ok_or_else(|| bad("`model` is required"))?;
    if body.get("n").and_then(Value::as_u64).is_some_and(|n| n > 1) {
        return Err(bad(
            "Anthropic returns one choice per request: `n` must be 1",
        ));
    }
    let messages = body
        .get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("`messages` must be an array"))?;
    let (system, turns) = messages_of(messages)?;
    if turns.is_empty() {
        return Err(bad(
            "Anthropic needs at least one user or assistant message",
        ));
    }

    let mut out = Map::new();
    out.insert("model".into(), model.into());
    let asked = body
        .get("max_completion_tokens")
        .filter(|v| !v.is_null())
        .or_else(|| body.get("max_tokens"))
        .and_then(Value::as_u64);
    let mut max_tokens = asked.unwrap_or(DEFAULT_MAX_TOKENS);

    let effort = body.get("reasoning_effort").and_then(Value::as_str);
    let thinking = match (
        body.get("thinking").filter(|t| t.is_object()),
        thinking_budget(effort)?,
    ) {
        // An Anthropic-native `thinking` object passes as sent.
        (Some(native), _) => Some(native.clone()),
        (None, Some(budget)) => {
            let budget = match asked {
                Some(max) => budget.min(max.saturating_sub(1)),
                None => {
                    max_tokens = DEFAULT_MAX_TOKENS + budget;
                    budget
                }
            };
            if budget < 1024 {
                return Err(bad(
                    "`reasoning_effort` on Anthropic needs `max_tokens` above 1024",
                ));
            }
            Some(json!({"type": "enabled", "budget_tokens": budget}))
        }
        (None, None) => None,
    };
    let thinking_on = thinking
        .as_ref()
        .is_some_and(|t| t.get("type").and_then(Value::as_str) != Some("disabled"));
    out.insert("max_tokens".into(), max_tokens.into());
    if let Some(system) = system {
        out.insert("system".into(), system);
    }
    out.insert("messages".into(), Value::Array(turns));
    if let Some(t) = thinking {
        out.insert("thinking".into(), t);
    }

    if let Some(stops) = stop_sequences(body.get("stop"))? {
        out.insert("stop_sequences".into(), stops);
    }
    // Extended thinking refuses custom sampling.
    if !thinking_on {
        if let Some(t) = body.get("temperature").and_then(Value::as_f64) {
            out.insert("temperature".into(), t.clamp(0.0, 1.0).into());
        }
        for key in ["top_p", "top_k"] {
            if let Some(v) = body.get(key).filter(|v| v.is_number()) {
                out.insert(key.into(), v.clone());
            }
        }
    }

    let json_schema = response_format(body.get("response_format"))?;
    let (tools, choice) = tools_and_choice(body, json_schema, thinking_on)?;
    if !tools.is_empty() {
        out.insert("tools".into(), Value::Array(tools));
    }
    if let Some(choice) = choice {
        out.insert("tool_choice".into(), choice);
    }

    let user = body.get("user").or_else(|| body.get("safety_identifier"));
    if let Some(user) = user.and_then(Value::as_str).filter(|u| !u.is_empty()) {
        out.insert("metadata".into(), json!({"user_id": user}));
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
        _ => return Err(bad("Anthropic completions take `prompt` as one string")),
    };
    if body.get("echo").and_then(Value::as_bool) == Some(true)
        || body
            .get("best_of")
            .and_then(Value::as_u64)
            .is_some_and(|n| n > 1)
        || body.get("suffix").is_some_and(|s| !s.is_null())
    {
        return Err(bad(
            "`echo`, `best_of` and `suffix` are not supported by Anthropic",
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

fn stop_sequences(stop: Option<&Value>) -> Result<Option<Value>, AdapterError> {
    let list: Vec<Value> = match stop {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => vec![s.as_str().into()],
        Some(Value::Array(items)) => {
            let strings: Option<Vec<&str>> = items.iter().map(Value::as_str).collect();
            let strings = strings.ok_or_else(|| bad("`stop` must be a string or strings"))?;
            strings.into_iter().map(Value::from).collect()
        }
        Some(_) => return Err(bad("`stop` must be a string or strings")),
    };
    // Anthropic rejects blank stop sequences.
    let list: Vec<Value> = list
        .into_iter()
        .filter(|s| s.as_str().is_some_and(|s| !s.trim().is_empty()))
        .collect();
    Ok((!list.is_empty()).then_some(Value::Array(list)))
}

/// The schema the answer must follow, if `response_format` asks for JSON.
fn response_format(format: Option<&Value>) -> Result<Option<Value>, AdapterError> {
    let Some(format) = format.filter(|f| !f.is_null()) else {
        return Ok(None);
    };
    match format.get("type").and_then(Value::as_str) {
        Some("text") => Ok(None),
        Some("json_object") => Ok(Some(json!({"type": "object"}))),
        Some("json_schema") => {
            let schema = format
                .pointer("/json_schema/schema")
                .filter(|s| s.is_object())
                .ok_or_else(|| bad("`response_format.json_schema.schema` must be an object"))?;
            Ok(Some(schema.clone()))
        }
        _ => Err(bad(
            "`response_format.type` must be text, json_object or json_schema",
        )),
    }
}

enum Choice {
    Auto,
    None,
    Any,
    Tool(String),
}

/// `tools` and `tool_choice`; a JSON `response_format` adds the answer tool (the tool trick).
fn tools_and_choice(
    body: &Value,
    json_schema: Option<Value>,
    thinking: bool,
) -> Result<(Vec<Value>, Option<Value>), AdapterError> {
    let mut tools = Vec::new();
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
                "tools[{i}]: only `function` tools are supported by Anthropic"
            )));
        }
        let f = t.get("function").unwrap_or(t);
        let name = f
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| bad(format!("tools[{i}]: `function.name` is required")))?;
        let schema = f
            .get("parameters")
            .filter(|p| p.is_object())
            .cloned()
            .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
        let mut tool = json!({"name": name});
        if let Some(d) = f.get("description").and_then(Value::as_str) {
            tool["description"] = d.into();
        }
        tool["input_schema"] = schema;
        if let Some(cc) = t.get("cache_control").or_else(|| f.get("cache_control")) {
            tool["cache_control"] = cc.clone();
        }
        tools.push(tool);
    }
    let mut choice = match body.get("tool_choice") {
        None | Some(Value::Null) => Choice::Auto,
        Some(Value::String(s)) => match s.as_str() {
            "auto" => Choice::Auto,
            "none" => Choice::None,
            "required" => Choice::Any,
            other => return Err(bad(format!("unknown `tool_choice` `{other}`"))),
        },
        Some(named) => match named.pointer("/function/name").and_then(Value::as_str) {
            Some(name) => Choice::Tool(name.to_string()),
            None => return Err(bad("`tool_choice` must name a function")),
        },
    };
    if thinking && matches!(choice, Choice::Any | Choice::Tool(_)) {
        return Err(bad(
            "Anthropic cannot force a tool call while extended thinking is on; use tool_choice auto",
        ));
    }
    if let Some(schema) = json_schema {
        if tools.iter().any(|t| t["name"] == JSON_TOOL) {
            return Err(bad(format!(
                "the tool name `{JSON_TOOL}` is reserved with `response_format`"
            )));
        }
        if matches!(choice, Choice::None) {
            tools.clear();
        }
        choice = match (tools.is_empty(), choice, thinking) {
            (_, _, true) => Choice::Auto,
            (true, _, false) => Choice::Tool(JSON_TOOL.into()),
            // With the client's tools: call one of them or answer through the JSON tool.
            (false, Choice::Auto, false) => Choice::Any,
            (false, other, false) => other,
        };
        tools.push(json!({
            "name": JSON_TOOL,
            "description": "Give the final answer as JSON matching this schema.",
            "input_schema": schema,
        }));
    }
    if tools.is_empty() {
        return Ok((tools, None));
    }
    let mut choice = match choice {
        Choice::Auto => json!({"type": "auto"}),
        Choice::None => return Ok((tools, Some(json!({"type": "none"})))),
        Choice::Any => json!({"type": "any"}),
        Choice::Tool(name) => json!({"type": "tool", "name": name}),
    };
    if body.get("parallel_tool_calls").and_then(Value::as_bool) == Some(false) {
        choice["disable_parallel_tool_use"] = true.into();
    }
    Ok((tools, Some(choice)))
}

/// Messages → (`system`, Anthropic turns). Consecutive turns of one role are merged, so all
/// tool results of one assistant turn land in one user message.
fn messages_of(messages: &[Value]) -> Result<(Option<Value>, Vec<Value>), AdapterError> {
    let mut system: Vec<Value> = Vec::new();
    let mut turns: Vec<Value> = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        let at = |e: AdapterError| bad(format!("messages[{i}]: {}", e.0));
        let content = m.get("content").unwrap_or(&Value::Null);
        let (role, blocks) = match m.get("role").and_then(Value::as_str).unwrap_or("") {
            "system" | "developer" => {
                system.extend(blocks_of(content, false).map_err(at)?);
                continue;
            }
            "user" => ("user", blocks_of(content, true).map_err(at)?),
            "assistant" => {
                let mut blocks = blocks_of(content, false).map_err(at)?;
                for call in m
                    .get("tool_calls")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    blocks.push(tool_use(call).map_err(at)?);
                }
                ("assistant", blocks)
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
                let mut result = json!({"type": "tool_result", "tool_use_id": id});
                match content {
                    Value::String(s) if !s.is_empty() => result["content"] = s.as_str().into(),
                    Value::Array(_) => {
                        let parts = blocks_of(content, true).map_err(at)?;
                        if !parts.is_empty() {
                            result["content"] = Value::Array(parts);
                        }
                    }
                    _ => {}
                }
                ("user", vec![result])
            }
            other => return Err(bad(format!("messages[{i}]: unsupported role `{other}`"))),
        };
        if blocks.is_empty() {
            continue;
        }
        match turns.last_mut() {
            Some(last) if last["role"] == role => {
                if let Some(content) = last["content"].as_array_mut() {
                    content.extend(blocks);
                }
            }
            _ => turns.push(json!({"role": role, "content": blocks})),
        }
    }
    let system = if system.is_empty() {
        None
    } else if system.iter().any(|b| b.get("cache_control").is_some()) {
        Some(Value::Array(system))
    } else {
        let texts: Vec<&str> = system.iter().filter_map(|b| b["text"].as_str()).collect();
        Some(texts.join("\n\n").into())
    };
    Ok((system, turns))
}

/// OpenAI content (string or parts) → Anthropic blocks; empty text dropped. `media` allows
/// images and files (user turns, tool results).
fn blocks_of(content: &Value, media: bool) -> Result<Vec<Value>, AdapterError> {
    let parts = match content {
        Value::Null => return Ok(Vec::new()),
        Value::String(s) if s.is_empty() => return Ok(Vec::new()),
        Value::String(s) => return Ok(vec![json!({"type": "text", "text": s})]),
        Value::Array(parts) => parts,
        _ => return Err(bad("`content` must be a string or an array of parts")),
    };
    let mut blocks = Vec::new();
    for part in parts {
        let mut block = match part.get("type").and_then(Value::as_str).unwrap_or("") {
            "text" => match part.get("text").and_then(Value::as_str) {
                Some(t) if !t.is_empty() => json!({"type": "text", "text": t}),
                _ => continue,
            },
            // An assistant's earlier refusal carries nothing Anthropic can replay.
            "refusal" if !media => continue,
            "image_url" if media => {
                let url = part.get("image_url").and_then(|i| i.get("url").or(Some(i)));
                let url = url
                    .and_then(Value::as_str)
                    .ok_or_else(|| bad("`image_url.url` is required"))?;
                json!({"type": "image", "source": source(url)?})
            }
            "file" if media => {
                let file = &part["file"];
                let data = file
                    .get("file_data")
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        bad("Anthropic takes files as `file_data` data URLs (not `file_id`)")
                    })?;
                json!({"type": "document", "source": source(data)?})
            }
            other => {
                return Err(bad(format!(
                    "content parts of type `{other}` are not supported here"
                )))
            }
        };
        if let Some(cc) = part.get("cache_control") {
            block["cache_control"] = cc.clone();
        }
        blocks.push(block);
    }
    Ok(blocks)
}

/// A data URL → base64 source; an http(s) URL → url source.
fn source(url: &str) -> Result<Value, AdapterError> {
    if let Some(rest) = url.strip_prefix("data:") {
        let (meta, data) = rest
            .split_once(',')
            .ok_or_else(|| bad("malformed data URL"))?;
        let media_type = meta
            .strip_suffix(";base64")
            .filter(|m| !m.is_empty())
            .ok_or_else(|| bad("data URLs must be base64 with a media type"))?;
        return Ok(json!({"type": "base64", "media_type": media_type, "data": data}));
    }
    if url.starts_with("https://") || url.starts_with("http://") {
        return Ok(json!({"type": "url", "url": url}));
    }
    Err(bad(
        "image and file URLs must be http(s) or base64 data URLs",
    ))
}

/// An assistant's OpenAI tool call → a `tool_use` block (arguments parsed; "" → `{}`).
fn tool_use(call: &Value) -> Result<Value, AdapterError> {
    let f = &call["function"];
    let name = f
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("a tool call needs `function.name`"))?;
    let id = call
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("a tool call needs `id`"))?;
    let input = match f.get("arguments") {
        None | Some(Value::Null) => json!({}),
        Some(Value::String(s)) if s.trim().is_empty() => json!({}),
        Some(Value::String(s)) => serde_json::from_str(s).map_err(|_| {
            bad(format!(
                "the arguments of tool call `{id}` are not valid JSON"
            ))
        })?,
        Some(other) => other.clone(),
    };
    if !input.is_object() {
        return Err(bad(format!(
            "the arguments of tool call `{id}` must be a JSON object"
        )));
    }
    Ok(json!({"type": "tool_use", "id": id, "name": name, "input": input}))
}
