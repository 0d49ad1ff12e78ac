//! OpenAI chat body → Anthropic Messages body (providers.md 3.1). Built field by field, so
//! everything Anthropic would reject (`seed`, penalties, `logprobs`, `stream_options`, ...) is
//! left out.

use serde_json::{json, Map, Value};

use super::{DEFAULT_MAX_TOKENS, JSON_TOOL};
use crate::gateway::providers::adapter::AdapterError;
use crate::gateway::providers::translation::{
    bad, data_url, function_tools, json_format, max_tokens, messages, model, one_choice,
    prompt_as_chat, push_turn, stop_sequences, tool_call_id, tool_choice, JsonFormat, ToolChoice,
};

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
    let model = model(body)?;
    one_choice(body, "Anthropic")?;
    let (system, turns) = messages_of(messages(body)?)?;
    if turns.is_empty() {
        return Err(bad(
            "Anthropic needs at least one user or assistant message",
        ));
    }

    let mut out = Map::new();
    out.insert("model".into(), model.into());
    let asked = max_tokens(body).and_then(Value::as_u64);
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

    if let Some(stops) = stop_sequences(body)? {
        // Anthropic rejects blank stop sequences.
        let stops: Vec<&str> = stops.into_iter().filter(|s| !s.trim().is_empty()).collect();
        if !stops.is_empty() {
            out.insert("stop_sequences".into(), json!(stops));
        }
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

    let json_schema = json_format(body)?.map(|format| match format {
        JsonFormat::Any => json!({"type": "object"}),
        JsonFormat::Schema(schema) => schema.clone(),
    });
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
    chat(&prompt_as_chat(body, "Anthropic")?, stream)
}

/// `tools` and `tool_choice`; a JSON `response_format` adds the answer tool (the tool trick).
fn tools_and_choice(
    body: &Value,
    json_schema: Option<Value>,
    thinking: bool,
) -> Result<(Vec<Value>, Option<Value>), AdapterError> {
    let mut tools = Vec::new();
    for f in function_tools(body, "Anthropic")? {
        let mut tool = json!({"name": f.name});
        if let Some(d) = f.description {
            tool["description"] = d.into();
        }
        tool["input_schema"] = f.parameters;
        if let Some(cc) = f
            .tool
            .get("cache_control")
            .or_else(|| f.function.get("cache_control"))
        {
            tool["cache_control"] = cc.clone();
        }
        tools.push(tool);
    }
    let mut choice = tool_choice(body)?.unwrap_or(ToolChoice::Auto);
    if thinking && matches!(choice, ToolChoice::Required | ToolChoice::Function(_)) {
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
        if matches!(choice, ToolChoice::None) {
            tools.clear();
        }
        choice = match (tools.is_empty(), choice, thinking) {
            (_, _, true) => ToolChoice::Auto,
            (true, _, false) => ToolChoice::Function(JSON_TOOL),
            // With the client's tools: call one of them or answer through the JSON tool.
            (false, ToolChoice::Auto, false) => ToolChoice::Required,
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
        ToolChoice::Auto => json!({"type": "auto"}),
        ToolChoice::None => return Ok((tools, Some(json!({"type": "none"})))),
        ToolChoice::Required => json!({"type": "any"}),
        ToolChoice::Function(name) => json!({"type": "tool", "name": name}),
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
                let id = tool_call_id(m, i)?;
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
        push_turn(&mut turns, role, "content", blocks);
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
    if url.starts_with("data:") {
        let (media_type, data) = data_url(url)
            .filter(|(media_type, _)| !media_type.is_empty())
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
