//! Reading OpenAI request bodies the same way in every adapter, and the upstream address and key
//! the adapters that take them from the target share.

use serde_json::{json, Map, Value};

use super::bad;
use crate::gateway::providers::adapter::{AdapterError, Target};

/// A request body: the JSON object, as a `Value` or as its `Map`.
pub trait Body {
    fn field(&self, key: &str) -> Option<&Value>;
}

impl Body for Value {
    fn field(&self, key: &str) -> Option<&Value> {
        self.get(key)
    }
}

impl Body for Map<String, Value> {
    fn field(&self, key: &str) -> Option<&Value> {
        self.get(key)
    }
}

/// The required, non-empty `model`.
pub fn model(body: &impl Body) -> Result<&str, AdapterError> {
    body.field("model")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty())
        .ok_or_else(|| bad("`model` is required"))
}

/// The required `messages` array.
pub fn messages(body: &impl Body) -> Result<&[Value], AdapterError> {
    body.field("messages")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .ok_or_else(|| bad("`messages` must be an array"))
}

/// Refuses `n` above 1 for a provider that answers one choice per request.
pub fn one_choice(body: &impl Body, provider: &str) -> Result<(), AdapterError> {
    if body
        .field("n")
        .and_then(Value::as_u64)
        .is_some_and(|n| n > 1)
    {
        return Err(bad(format!(
            "{provider} returns one choice per request: `n` must be 1"
        )));
    }
    Ok(())
}

/// The output limit: `max_completion_tokens`, else (absent or null) the older `max_tokens`.
pub fn max_tokens(body: &impl Body) -> Option<&Value> {
    body.field("max_completion_tokens")
        .filter(|v| !v.is_null())
        .or_else(|| body.field("max_tokens"))
}

/// `stop` as a list (a string is a list of one); `None` when absent or null.
pub fn stop_sequences(body: &impl Body) -> Result<Option<Vec<&str>>, AdapterError> {
    let not_strings = || bad("`stop` must be a string or strings");
    match body.field("stop") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(vec![s.as_str()])),
        Some(Value::Array(items)) => items
            .iter()
            .map(|s| s.as_str().ok_or_else(not_strings))
            .collect::<Result<_, _>>()
            .map(Some),
        Some(_) => Err(not_strings()),
    }
}

/// The JSON answer `response_format` asks for.
pub enum JsonFormat<'a> {
    /// `json_object`: any JSON object.
    Any,
    /// `json_schema`: following this schema (an object).
    Schema(&'a Value),
}

/// What `response_format` asks for; `None` for text (or no format).
pub fn json_format(body: &impl Body) -> Result<Option<JsonFormat<'_>>, AdapterError> {
    let Some(format) = body.field("response_format").filter(|f| !f.is_null()) else {
        return Ok(None);
    };
    match format.get("type").and_then(Value::as_str) {
        Some("text") => Ok(None),
        Some("json_object") => Ok(Some(JsonFormat::Any)),
        Some("json_schema") => format
            .pointer("/json_schema/schema")
            .filter(|s| s.is_object())
            .map(|s| Some(JsonFormat::Schema(s)))
            .ok_or_else(|| bad("`response_format.json_schema.schema` must be an object")),
        _ => Err(bad(
            "`response_format.type` must be text, json_object or json_schema",
        )),
    }
}

/// One `tools[]` entry, a function.
pub struct FunctionTool<'a> {
    /// The entry and its `function`: extension fields (`cache_control`, `strict`) sit on either.
    pub tool: &'a Value,
    pub function: &'a Value,
    pub name: &'a str,
    pub description: Option<&'a str>,
    /// `parameters`, or an empty object schema when absent or not an object.
    pub parameters: Value,
}

/// `tools`, all of which must be named functions.
pub fn function_tools<'a>(
    body: &'a impl Body,
    provider: &str,
) -> Result<Vec<FunctionTool<'a>>, AdapterError> {
    let mut tools = Vec::new();
    for (i, tool) in body
        .field("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        if tool
            .get("type")
            .and_then(Value::as_str)
            .is_some_and(|k| k != "function")
        {
            return Err(bad(format!(
                "tools[{i}]: only `function` tools are supported by {provider}"
            )));
        }
        let function = tool.get("function").unwrap_or(tool);
        let name = function
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| bad(format!("tools[{i}]: `function.name` is required")))?;
        tools.push(FunctionTool {
            tool,
            function,
            name,
            description: function.get("description").and_then(Value::as_str),
            parameters: function
                .get("parameters")
                .filter(|p| p.is_object())
                .cloned()
                .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
        });
    }
    Ok(tools)
}

/// `tool_choice`.
pub enum ToolChoice<'a> {
    Auto,
    None,
    Required,
    Function(&'a str),
}

/// `tool_choice`: `auto`, `none`, `required` or a named function; `None` when absent or null.
pub fn tool_choice(body: &impl Body) -> Result<Option<ToolChoice<'_>>, AdapterError> {
    let choice = match body.field("tool_choice") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => match s.as_str() {
            "auto" => ToolChoice::Auto,
            "none" => ToolChoice::None,
            "required" => ToolChoice::Required,
            other => return Err(bad(format!("unknown `tool_choice` `{other}`"))),
        },
        Some(named) => match named.pointer("/function/name").and_then(Value::as_str) {
            Some(name) => ToolChoice::Function(name),
            None => return Err(bad("`tool_choice` must name a function")),
        },
    };
    Ok(Some(choice))
}

/// The `tool_call_id` of tool message number `i`.
pub fn tool_call_id(message: &Value, i: usize) -> Result<&str, AdapterError> {
    message
        .get("tool_call_id")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            bad(format!(
                "messages[{i}]: a tool message needs `tool_call_id`"
            ))
        })
}

/// Legacy completions: the body as a chat body whose one user message is the `prompt` (one
/// string). `echo`, `best_of` and `suffix` have no chat equivalent and are refused.
pub fn prompt_as_chat(body: &Value, provider: &str) -> Result<Value, AdapterError> {
    let prompt = match body.get("prompt") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(a)) if a.len() == 1 && a[0].is_string() => {
            a[0].as_str().unwrap_or("").into()
        }
        _ => {
            return Err(bad(format!(
                "{provider} completions take `prompt` as one string"
            )))
        }
    };
    if body.get("echo").and_then(Value::as_bool) == Some(true)
        || body
            .get("best_of")
            .and_then(Value::as_u64)
            .is_some_and(|n| n > 1)
        || body.get("suffix").is_some_and(|s| !s.is_null())
    {
        return Err(bad(format!(
            "`echo`, `best_of` and `suffix` are not supported by {provider}"
        )));
    }
    let mut chat_body = body.clone();
    if let Some(o) = chat_body.as_object_mut() {
        o.remove("prompt");
        o.insert(
            "messages".into(),
            json!([{"role": "user", "content": prompt}]),
        );
    }
    Ok(chat_body)
}

/// The texts of a message's `content`: the string, or the `text` of each part that has one;
/// none for `null`. `None` when `content` is another JSON type.
pub fn texts(content: &Value) -> Option<Vec<&str>> {
    match content {
        Value::Null => Some(Vec::new()),
        Value::String(s) => Some(vec![s.as_str()]),
        Value::Array(parts) => Some(
            parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect(),
        ),
        _ => None,
    }
}

/// `data:<media type>;base64,<data>` → (media type, data).
pub fn data_url(url: &str) -> Option<(&str, &str)> {
    let (meta, data) = url.strip_prefix("data:")?.split_once(',')?;
    Some((meta.strip_suffix(";base64")?, data))
}

/// Adds a message's `items` (under `key`: `content`, `parts`) to the conversation, merged into
/// the last turn when that has the same role: for providers that want the roles to alternate.
/// Nothing when there are no items.
pub fn push_turn(turns: &mut Vec<Value>, role: &str, key: &str, items: Vec<Value>) {
    if items.is_empty() {
        return;
    }
    match turns.last_mut() {
        Some(last) if last["role"] == role => {
            if let Some(list) = last[key].as_array_mut() {
                list.extend(items);
            }
        }
        _ => turns.push(json!({"role": role, key: items})),
    }
}

/// The integration's API key, required.
pub fn api_key<'a>(target: &Target<'a>) -> Result<&'a str, AdapterError> {
    target
        .api_key
        .filter(|k| !k.trim().is_empty())
        .ok_or_else(|| {
            bad(format!(
                "the {} integration has no API key",
                target.provider.name
            ))
        })
}

/// The target's base URL (`custom_host`), else the provider's; no trailing `/`.
pub fn base_url<'a>(target: &Target<'a>) -> &'a str {
    match target.base_url.trim_end_matches('/') {
        "" => target.provider.base_url.trim_end_matches('/'),
        b => b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_prompt_becomes_one_user_message() {
        let chat = prompt_as_chat(
            &json!({"model": "m", "prompt": ["Once"], "echo": false}),
            "X",
        );
        assert_eq!(
            chat.unwrap(),
            json!({"model": "m", "echo": false, "messages": [{"role": "user", "content": "Once"}]})
        );
        for refused in [
            json!({"prompt": "x", "echo": true}),
            json!({"prompt": "x", "best_of": 2}),
            json!({"prompt": "x", "suffix": ""}),
        ] {
            assert_eq!(
                prompt_as_chat(&refused, "X").unwrap_err().0,
                "`echo`, `best_of` and `suffix` are not supported by X"
            );
        }
        for prompt in [json!(["a", "b"]), json!([1]), json!(null)] {
            assert_eq!(
                prompt_as_chat(&json!({"prompt": prompt}), "X")
                    .unwrap_err()
                    .0,
                "X completions take `prompt` as one string"
            );
        }
    }

    #[test]
    fn option_checks() {
        let body = json!({"n": 2, "max_completion_tokens": null, "max_tokens": 9, "stop": "END"});
        assert!(one_choice(&body, "X")
            .unwrap_err()
            .0
            .contains("`n` must be 1"));
        assert_eq!(max_tokens(&body), Some(&json!(9)));
        assert_eq!(stop_sequences(&body).unwrap(), Some(vec!["END"]));
        assert!(stop_sequences(&json!({"stop": [1]})).is_err());
        assert_eq!(stop_sequences(&json!({"stop": null})).unwrap(), None);
        assert_eq!(
            model(&json!({"model": ""})).unwrap_err().0,
            "`model` is required"
        );
        let map = json!({"model": "m", "tool_choice": "required"})
            .as_object()
            .cloned()
            .unwrap();
        assert_eq!(model(&map).unwrap(), "m");
        assert!(matches!(tool_choice(&map), Ok(Some(ToolChoice::Required))));
        assert!(matches!(tool_choice(&json!({})), Ok(None)));
        assert!(tool_choice(&json!({"tool_choice": "any"})).is_err());
        assert!(tool_choice(&json!({"tool_choice": {"type": "function"}})).is_err());
        let schema =
            json!({"response_format": {"type": "json_schema", "json_schema": {"schema": {}}}});
        assert!(matches!(
            json_format(&schema),
            Ok(Some(JsonFormat::Schema(_)))
        ));
        assert!(json_format(&json!({"response_format": {"type": "xml"}})).is_err());
    }

    #[test]
    fn content_helpers() {
        assert_eq!(texts(&json!(null)), Some(vec![]));
        assert_eq!(
            texts(&json!([{"type": "text", "text": "a"}, {"type": "image_url"}, {"text": "b"}])),
            Some(vec!["a", "b"])
        );
        assert_eq!(texts(&json!(3)), None);
        assert_eq!(
            data_url("data:image/png;base64,AAA"),
            Some(("image/png", "AAA"))
        );
        assert_eq!(data_url("data:image/png,AAA"), None);
        assert_eq!(data_url("https://x/y.png"), None);
        let mut turns = Vec::new();
        push_turn(&mut turns, "user", "parts", vec![json!(1)]);
        push_turn(&mut turns, "user", "parts", vec![json!(2)]);
        push_turn(&mut turns, "model", "parts", vec![]);
        push_turn(&mut turns, "model", "parts", vec![json!(3)]);
        assert_eq!(
            turns,
            vec![
                json!({"role": "user", "parts": [1, 2]}),
                json!({"role": "model", "parts": [3]})
            ]
        );
    }
}
