//! `POST /v1/responses` served from a Chat Completions upstream (stateless): the Responses request
//! becomes a chat request, and the chat answer (whole or streamed) becomes a `response` object or
//! Responses SSE events. Pure translation; see the wire reference section 1.4.

use crate::gateway::providers::adapter::Usage;
use serde_json::{json, Map, Value};
use std::fmt::Write as _;

type Obj = Map<String, Value>;

/// `prefix` + 48 random hex digits (`resp_…`, `msg_…`, `fc_…`).
fn new_id(prefix: &str) -> String {
    let bytes: [u8; 24] = rand::random();
    let mut id = String::with_capacity(prefix.len() + 48);
    id.push_str(prefix);
    for b in bytes {
        let _ = write!(id, "{b:02x}");
    }
    id
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn unsupported(what: &str) -> String {
    format!("{what} is not supported by /v1/responses for this provider")
}

/// Responses request → Chat Completions request. Errors (-> HTTP 400) name the unsupported
/// field: built-in tools (web_search, file_search, ...), previous_response_id, background.
pub fn to_chat(request: &Obj) -> Result<Obj, String> {
    for key in ["previous_response_id", "conversation", "prompt"] {
        if request.get(key).is_some_and(|v| !v.is_null()) {
            return Err(unsupported(&format!(
                "`{key}` (tollgate does not store responses)"
            )));
        }
    }
    if request.get("background").and_then(Value::as_bool) == Some(true) {
        return Err(unsupported("`background`"));
    }
    let mut messages = Vec::new();
    match request.get("instructions") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => messages.push(json!({"role": "system", "content": s})),
        Some(_) => return Err("`instructions` must be a string".into()),
    }
    match request.get("input") {
        Some(Value::String(s)) => messages.push(json!({"role": "user", "content": s})),
        Some(Value::Array(items)) => {
            for item in items {
                push_item(&mut messages, item)?;
            }
        }
        _ => return Err("`input` must be a string or an array of items".into()),
    }

    let mut chat = Obj::new();
    if let Some(model) = request.get("model") {
        chat.insert("model".into(), model.clone());
    }
    chat.insert("messages".into(), Value::Array(messages));
    let present = |key: &str| request.get(key).filter(|v| !v.is_null());
    for key in [
        "temperature",
        "top_p",
        "parallel_tool_calls",
        "user",
        "stream",
    ] {
        if let Some(v) = present(key) {
            chat.insert(key.into(), v.clone());
        }
    }
    if let Some(v) = present("max_output_tokens") {
        chat.insert("max_completion_tokens".into(), v.clone());
    }
    if let Some(effort) = present("reasoning").and_then(|r| r.get("effort")) {
        if !effort.is_null() {
            chat.insert("reasoning_effort".into(), effort.clone());
        }
    }
    if let Some(format) = present("text").and_then(|t| t.get("format")) {
        match format.get("type").and_then(Value::as_str) {
            None | Some("text") => {}
            Some("json_object") => {
                chat.insert("response_format".into(), json!({"type": "json_object"}));
            }
            Some("json_schema") => {
                let mut schema = Obj::new();
                for key in ["name", "description", "schema", "strict"] {
                    if let Some(v) = format.get(key).filter(|v| !v.is_null()) {
                        schema.insert(key.into(), v.clone());
                    }
                }
                chat.insert(
                    "response_format".into(),
                    json!({"type": "json_schema", "json_schema": schema}),
                );
            }
            Some(other) => return Err(unsupported(&format!("text.format `{other}`"))),
        }
    }
    if let Some(tools) = present("tools").and_then(Value::as_array) {
        let mut out = Vec::with_capacity(tools.len());
        for tool in tools {
            let kind = tool.get("type").and_then(Value::as_str).unwrap_or("");
            if kind != "function" {
                return Err(unsupported(&format!(
                    "built-in tool `{kind}` (only function tools are)"
                )));
            }
            let mut function = Obj::new();
            for key in ["name", "description", "parameters", "strict"] {
                if let Some(v) = tool.get(key).filter(|v| !v.is_null()) {
                    function.insert(key.into(), v.clone());
                }
            }
            out.push(json!({"type": "function", "function": function}));
        }
        if !out.is_empty() {
            chat.insert("tools".into(), Value::Array(out));
        }
    }
    match present("tool_choice") {
        None => {}
        Some(Value::String(s)) => {
            chat.insert("tool_choice".into(), Value::String(s.clone()));
        }
        Some(choice) => match choice.get("type").and_then(Value::as_str) {
            Some("function") => {
                let name = choice.get("name").cloned().unwrap_or(Value::Null);
                chat.insert(
                    "tool_choice".into(),
                    json!({"type": "function", "function": {"name": name}}),
                );
            }
            other => {
                let other = other.unwrap_or("?");
                return Err(unsupported(&format!("tool_choice `{other}`")));
            }
        },
    }
    if chat.get("stream").and_then(Value::as_bool) == Some(true) {
        chat.insert("stream_options".into(), json!({"include_usage": true}));
    }
    Ok(chat)
}

/// One Responses input item appended to the chat messages.
fn push_item(messages: &mut Vec<Value>, item: &Value) -> Result<(), String> {
    let str_of = |key: &str| item.get(key).and_then(Value::as_str);
    // `{role, content}` without `type` is the easy-input form of a message.
    let kind = str_of("type").unwrap_or(if item.get("role").is_some() {
        "message"
    } else {
        ""
    });
    match kind {
        "message" => {
            let role = match str_of("role") {
                Some("system" | "developer") => "system",
                Some("user") => "user",
                Some("assistant") => "assistant",
                other => return Err(format!("unsupported message role {other:?}")),
            };
            let content = message_content(role, item.get("content"))?;
            messages.push(json!({"role": role, "content": content}));
        }
        "function_call" => {
            let call = json!({
                "id": str_of("call_id").ok_or("a `function_call` item needs `call_id`")?,
                "type": "function",
                "function": {
                    "name": str_of("name").ok_or("a `function_call` item needs `name`")?,
                    "arguments": str_of("arguments").unwrap_or("{}"),
                },
            });
            // Consecutive calls (and the assistant text right before them) form one message.
            match messages.last_mut().and_then(Value::as_object_mut) {
                Some(last) if last.get("role") == Some(&json!("assistant")) => {
                    let calls = last.entry("tool_calls").or_insert_with(|| json!([]));
                    if let Some(calls) = calls.as_array_mut() {
                        calls.push(call);
                    }
                }
                _ => messages
                    .push(json!({"role": "assistant", "content": null, "tool_calls": [call]})),
            }
        }
        "function_call_output" => {
            let call_id =
                str_of("call_id").ok_or("a `function_call_output` item needs `call_id`")?;
            let content = match item.get("output") {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Array(parts)) => {
                    let mut text = String::new();
                    for part in parts {
                        text.push_str(part_text(part).ok_or_else(|| {
                            unsupported("non-text `function_call_output` content")
                        })?);
                    }
                    text
                }
                None | Some(Value::Null) => String::new(),
                Some(other) => other.to_string(),
            };
            messages.push(json!({"role": "tool", "tool_call_id": call_id, "content": content}));
        }
        "reasoning" => {}
        other => return Err(unsupported(&format!("input item type `{other}`"))),
    }
    Ok(())
}

/// The text of an `input_text` / `output_text` / `text` / `refusal` part.
fn part_text(part: &Value) -> Option<&str> {
    match part.get("type").and_then(Value::as_str)? {
        "input_text" | "output_text" | "text" => part.get("text").and_then(Value::as_str),
        "refusal" => part.get("refusal").and_then(Value::as_str),
        _ => None,
    }
}

/// Message content: assistant and system become one string; user keeps chat parts
/// (a lone text part collapses to a string).
fn message_content(role: &str, content: Option<&Value>) -> Result<Value, String> {
    let parts = match content {
        Some(Value::String(s)) => return Ok(Value::String(s.clone())),
        Some(Value::Array(parts)) => parts,
        _ => return Err("a `message` item needs `content`".into()),
    };
    if role != "user" {
        let mut texts = Vec::new();
        for part in parts {
            let kind = part.get("type").and_then(Value::as_str).unwrap_or("?");
            texts.push(part_text(part).ok_or_else(|| {
                unsupported(&format!("content part `{kind}` in a {role} message"))
            })?);
        }
        return Ok(Value::String(texts.join("\n\n")));
    }
    let mut out = Vec::with_capacity(parts.len());
    for part in parts {
        let kind = part.get("type").and_then(Value::as_str).unwrap_or("?");
        if let Some(text) = part_text(part) {
            out.push(json!({"type": "text", "text": text}));
            continue;
        }
        match kind {
            "input_image" => {
                let Some(url) = part.get("image_url").and_then(Value::as_str) else {
                    return Err(unsupported("`input_image` by `file_id`"));
                };
                let mut image = json!({"url": url});
                if let Some(detail) = part.get("detail").filter(|d| !d.is_null()) {
                    image["detail"] = detail.clone();
                }
                out.push(json!({"type": "image_url", "image_url": image}));
            }
            "input_file" => {
                let Some(data) = part.get("file_data").and_then(Value::as_str) else {
                    return Err(unsupported("`input_file` by `file_id` or `file_url`"));
                };
                let mut file = json!({"file_data": data});
                if let Some(name) = part.get("filename").filter(|n| !n.is_null()) {
                    file["filename"] = name.clone();
                }
                out.push(json!({"type": "file", "file": file}));
            }
            _ => return Err(unsupported(&format!("content part `{kind}`"))),
        }
    }
    if let [only] = out.as_slice() {
        if let Some(text) = only.get("text").filter(|_| only["type"] == "text") {
            return Ok(text.clone());
        }
    }
    Ok(Value::Array(out))
}

fn output_text(text: &str) -> Value {
    json!({"type": "output_text", "text": text, "annotations": []})
}

fn message_item(id: &str, status: &str, content: Vec<Value>) -> Value {
    json!({"id": id, "type": "message", "status": status, "role": "assistant", "content": content})
}

fn call_item(id: &str, status: &str, call_id: &str, name: &str, arguments: &str) -> Value {
    json!({
        "id": id, "type": "function_call", "status": status,
        "arguments": arguments, "call_id": call_id, "name": name,
    })
}

fn usage_json(u: Usage) -> Value {
    json!({
        "input_tokens": u.prompt_tokens,
        "input_tokens_details": {"cached_tokens": u.cached_tokens},
        "output_tokens": u.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
        "total_tokens": u.prompt_tokens + u.completion_tokens,
    })
}

/// Chat `finish_reason` → `incomplete_details.reason` (None = completed).
fn incomplete_reason(finish: Option<&str>) -> Option<&'static str> {
    match finish {
        Some("length") => Some("max_output_tokens"),
        Some("content_filter") => Some("content_filter"),
        _ => None,
    }
}

enum Outcome<'a> {
    InProgress,
    Finished(Option<&'static str>),
    Failed(&'a str),
}

fn response_object(
    id: &str,
    created_at: i64,
    model: &str,
    outcome: Outcome,
    output: Vec<Value>,
    usage: Option<Usage>,
) -> Value {
    let (status, error, incomplete, usage) = match outcome {
        Outcome::InProgress => ("in_progress", Value::Null, Value::Null, Value::Null),
        Outcome::Finished(reason) => (
            if reason.is_some() {
                "incomplete"
            } else {
                "completed"
            },
            Value::Null,
            reason.map_or(Value::Null, |r| json!({"reason": r})),
            usage_json(usage.unwrap_or_default()),
        ),
        Outcome::Failed(message) => (
            "failed",
            json!({"code": "server_error", "message": message}),
            Value::Null,
            usage.map_or(Value::Null, usage_json),
        ),
    };
    json!({
        "id": id, "object": "response", "created_at": created_at, "status": status,
        "error": error, "incomplete_details": incomplete, "model": model,
        "output": output, "usage": usage,
    })
}

/// A whole `chat.completion` → a `response` object (`object:"response"`, `status`, `output`, `usage` with input_tokens/output_tokens/total_tokens and details).
pub fn from_chat(chat: &Value) -> Value {
    let choice = &chat["choices"][0];
    let message = &choice["message"];
    let mut output = Vec::new();
    let mut content = Vec::new();
    if let Some(text) = message["content"].as_str().filter(|t| !t.is_empty()) {
        content.push(output_text(text));
    }
    if let Some(refusal) = message["refusal"].as_str().filter(|t| !t.is_empty()) {
        content.push(json!({"type": "refusal", "refusal": refusal}));
    }
    if !content.is_empty() {
        output.push(message_item(&new_id("msg_"), "completed", content));
    }
    for call in message["tool_calls"].as_array().into_iter().flatten() {
        let f = &call["function"];
        output.push(call_item(
            &new_id("fc_"),
            "completed",
            call["id"].as_str().unwrap_or_default(),
            f["name"].as_str().unwrap_or_default(),
            f["arguments"].as_str().unwrap_or("{}"),
        ));
    }
    let reason = incomplete_reason(choice["finish_reason"].as_str());
    if let (Some(_), Some(last)) = (reason, output.last_mut()) {
        last["status"] = json!("incomplete");
    }
    response_object(
        &new_id("resp_"),
        chat["created"].as_i64().unwrap_or_else(now),
        chat["model"].as_str().unwrap_or_default(),
        Outcome::Finished(reason),
        output,
        Usage::from_openai(&chat["usage"]),
    )
}

struct OpenText {
    output_index: usize,
    id: String,
    text: String,
}

struct ToolSlot {
    chat_index: u64,
    output_index: usize,
    id: String,
    call_id: String,
    name: String,
    arguments: String,
}

/// Turns a stream of chat.completion.chunk JSON strings into Responses SSE events.
pub struct EventStream {
    id: String,
    model: String,
    created_at: i64,
    seq: u64,
    started: bool,
    done: bool,
    /// Every output item by `output_index`; an open item holds its `added` snapshot.
    items: Vec<Value>,
    text: Option<OpenText>,
    tools: Vec<ToolSlot>,
    open_tool: Option<usize>,
    finish_reason: Option<String>,
    usage: Option<Usage>,
}

impl EventStream {
    pub fn new(model: &str) -> EventStream {
        EventStream {
            id: new_id("resp_"),
            model: model.to_string(),
            created_at: now(),
            seq: 0,
            started: false,
            done: false,
            items: Vec::new(),
            text: None,
            tools: Vec::new(),
            open_tool: None,
            finish_reason: None,
            usage: None,
        }
    }

    fn emit(&mut self, out: &mut Vec<String>, kind: &str, fields: Value) {
        let mut event = Obj::new();
        event.insert("type".into(), json!(kind));
        event.insert("sequence_number".into(), json!(self.seq));
        if let Value::Object(fields) = fields {
            event.extend(fields);
        }
        self.seq += 1;
        out.push(format!("event: {kind}\ndata: {}\n\n", Value::Object(event)));
    }

    fn snapshot(&self, outcome: Outcome, usage: Option<Usage>) -> Value {
        let (id, model, output) = (&self.id, &self.model, self.items.clone());
        response_object(id, self.created_at, model, outcome, output, usage)
    }

    /// `response.created` and `response.in_progress`.
    pub fn start(&mut self, out: &mut Vec<String>) {
        if self.started {
            return;
        }
        self.started = true;
        for kind in ["response.created", "response.in_progress"] {
            let response = self.snapshot(Outcome::InProgress, None);
            self.emit(out, kind, json!({"response": response}));
        }
    }

    /// One chat chunk (JSON text) → zero or more events.
    pub fn chunk(&mut self, chunk: &str, out: &mut Vec<String>) {
        if self.done {
            return;
        }
        self.start(out);
        let Ok(chunk) = serde_json::from_str::<Value>(chunk) else {
            return; // `[DONE]` or noise
        };
        if chunk.get("choices").is_none() {
            if let Some(error) = chunk.get("error").filter(|e| !e.is_null()) {
                let message = error["message"].as_str().unwrap_or("upstream error");
                return self.fail(message, out);
            }
        }
        if let Some(usage) = chunk.get("usage").and_then(Usage::from_openai) {
            self.usage = Some(usage);
        }
        for choice in chunk["choices"].as_array().into_iter().flatten() {
            if choice["index"].as_u64().unwrap_or(0) != 0 {
                continue;
            }
            let delta = &choice["delta"];
            if let Some(text) = delta["content"].as_str().filter(|t| !t.is_empty()) {
                self.text_delta(text, out);
            }
            for call in delta["tool_calls"].as_array().into_iter().flatten() {
                self.tool_delta(call, out);
            }
            if let Some(reason) = choice["finish_reason"].as_str() {
                self.finish_reason = Some(reason.to_string());
            }
        }
    }

    fn text_delta(&mut self, delta: &str, out: &mut Vec<String>) {
        if self.text.is_none() {
            self.close_tool("completed", out);
            let (output_index, id) = (self.items.len(), new_id("msg_"));
            let item = message_item(&id, "in_progress", vec![]);
            self.items.push(item.clone());
            self.emit(
                out,
                "response.output_item.added",
                json!({"output_index": output_index, "item": item}),
            );
            self.emit(
                out,
                "response.content_part.added",
                json!({"item_id": id, "output_index": output_index, "content_index": 0,
                       "part": output_text("")}),
            );
            self.text = Some(OpenText {
                output_index,
                id,
                text: String::new(),
            });
        }
        let Some(text) = self.text.as_mut() else {
            return;
        };
        text.text.push_str(delta);
        let fields = json!({"item_id": text.id, "output_index": text.output_index,
                            "content_index": 0, "delta": delta, "logprobs": []});
        self.emit(out, "response.output_text.delta", fields);
    }

    fn tool_delta(&mut self, call: &Value, out: &mut Vec<String>) {
        let chat_index = call["index"].as_u64().unwrap_or(0);
        let args = call["function"]["arguments"].as_str().unwrap_or_default();
        let pos = match self.tools.iter().position(|t| t.chat_index == chat_index) {
            Some(pos) => pos,
            None => {
                self.close_text("completed", out);
                self.close_tool("completed", out);
                let slot = ToolSlot {
                    chat_index,
                    output_index: self.items.len(),
                    id: new_id("fc_"),
                    call_id: call["id"]
                        .as_str()
                        .map_or_else(|| new_id("call_"), str::to_string),
                    name: call["function"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    arguments: String::new(),
                };
                let item = call_item(&slot.id, "in_progress", &slot.call_id, &slot.name, "");
                self.items.push(item.clone());
                let fields = json!({"output_index": slot.output_index, "item": item});
                self.tools.push(slot);
                self.open_tool = Some(self.tools.len() - 1);
                self.emit(out, "response.output_item.added", fields);
                self.tools.len() - 1
            }
        };
        if args.is_empty() {
            return;
        }
        let slot = &mut self.tools[pos];
        slot.arguments.push_str(args);
        if self.open_tool == Some(pos) {
            let fields = json!({"item_id": slot.id, "output_index": slot.output_index,
                                "delta": args});
            self.emit(out, "response.function_call_arguments.delta", fields);
        } else {
            // A late fragment for an already closed call: only the final response sees it.
            self.items[slot.output_index]["arguments"] = json!(slot.arguments);
        }
    }

    fn close_text(&mut self, status: &str, out: &mut Vec<String>) {
        let Some(OpenText {
            output_index,
            id,
            text,
        }) = self.text.take()
        else {
            return;
        };
        let at = json!({"item_id": id, "output_index": output_index, "content_index": 0});
        let mut fields = at.clone();
        fields["text"] = json!(text);
        fields["logprobs"] = json!([]);
        self.emit(out, "response.output_text.done", fields);
        let mut fields = at;
        fields["part"] = output_text(&text);
        self.emit(out, "response.content_part.done", fields);
        let item = message_item(&id, status, vec![output_text(&text)]);
        self.items[output_index] = item.clone();
        let fields = json!({"output_index": output_index, "item": item});
        self.emit(out, "response.output_item.done", fields);
    }

    fn close_tool(&mut self, status: &str, out: &mut Vec<String>) {
        let Some(pos) = self.open_tool.take() else {
            return;
        };
        let slot = &self.tools[pos];
        let (oi, id) = (slot.output_index, slot.id.clone());
        let item = call_item(&id, status, &slot.call_id, &slot.name, &slot.arguments);
        let fields = json!({"item_id": id, "output_index": oi, "name": slot.name,
                            "arguments": slot.arguments});
        self.emit(out, "response.function_call_arguments.done", fields);
        self.items[oi] = item.clone();
        self.emit(
            out,
            "response.output_item.done",
            json!({"output_index": oi, "item": item}),
        );
    }

    /// The upstream finished: close open items and emit `response.completed` (or `.incomplete`
    /// for finish_reason length/content_filter) with the full response object and usage.
    pub fn finish(&mut self, usage: Option<Usage>, out: &mut Vec<String>) {
        if self.done {
            return;
        }
        self.start(out);
        let reason = incomplete_reason(self.finish_reason.as_deref());
        let status = if reason.is_some() {
            "incomplete"
        } else {
            "completed"
        };
        self.close_text(status, out);
        self.close_tool(status, out);
        self.done = true;
        let response = self.snapshot(Outcome::Finished(reason), usage.or(self.usage));
        let kind = format!("response.{status}");
        self.emit(out, &kind, json!({"response": response}));
    }

    /// The upstream failed mid-stream: `response.failed` with the error.
    pub fn fail(&mut self, message: &str, out: &mut Vec<String>) {
        if self.done {
            return;
        }
        self.start(out);
        self.done = true;
        // Open items appear in the failed response as `incomplete`, without closing events.
        if let Some(t) = self.text.take() {
            self.items[t.output_index] =
                message_item(&t.id, "incomplete", vec![output_text(&t.text)]);
        }
        if let Some(slot) = self.open_tool.take().map(|pos| &self.tools[pos]) {
            let item = call_item(
                &slot.id,
                "incomplete",
                &slot.call_id,
                &slot.name,
                &slot.arguments,
            );
            self.items[slot.output_index] = item;
        }
        let response = self.snapshot(Outcome::Failed(message), self.usage);
        self.emit(out, "response.failed", json!({"response": response}));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chat(request: Value) -> Result<Value, String> {
        to_chat(request.as_object().unwrap()).map(Value::Object)
    }

    #[test]
    fn string_input_with_instructions_and_parameters() {
        let out = chat(json!({
            "model": "m", "instructions": "Be brief.", "input": "Hi", "max_output_tokens": 50,
            "temperature": 0.5, "top_p": 0.9, "reasoning": {"effort": "low", "summary": "auto"},
            "store": true, "include": ["reasoning.encrypted_content"], "truncation": "auto",
            "metadata": {"k": "v"}, "user": "u1", "parallel_tool_calls": false, "stream": true,
        }))
        .unwrap();
        assert_eq!(
            out,
            json!({
                "model": "m",
                "messages": [{"role": "system", "content": "Be brief."},
                             {"role": "user", "content": "Hi"}],
                "temperature": 0.5, "top_p": 0.9, "parallel_tool_calls": false, "user": "u1",
                "stream": true, "max_completion_tokens": 50, "reasoning_effort": "low",
                "stream_options": {"include_usage": true},
            })
        );
    }

    #[test]
    fn multi_turn_items() {
        let out = chat(json!({"model": "m", "input": [
            {"role": "user", "content": "Weather in Paris and Rome?"},
            {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "Use C."}]},
            {"type": "reasoning", "id": "rs_1", "summary": []},
            {"type": "function_call", "call_id": "call_1", "name": "w", "arguments": "{\"c\":\"Paris\"}"},
            {"type": "function_call", "call_id": "call_2", "name": "w", "arguments": "{\"c\":\"Rome\"}"},
            {"type": "function_call_output", "call_id": "call_1", "output": "20"},
            {"type": "function_call_output", "call_id": "call_2", "output": [{"type": "input_text", "text": "25"}]},
            {"type": "message", "role": "assistant", "id": "msg_1", "status": "completed",
             "content": [{"type": "output_text", "text": "Paris 20, Rome 25.", "annotations": []}]},
            {"type": "function_call", "call_id": "call_3", "name": "w", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "call_3", "output": {"ok": true}},
            {"type": "message", "role": "user", "content": [
                {"type": "input_text", "text": "And this?"},
                {"type": "input_image", "image_url": "https://x/y.png", "detail": "low"}]},
        ]}))
        .unwrap();
        let call = |id: &str, args: &str| json!({"id": id, "type": "function", "function": {"name": "w", "arguments": args}});
        assert_eq!(
            out["messages"],
            json!([
                {"role": "user", "content": "Weather in Paris and Rome?"},
                {"role": "system", "content": "Use C."},
                {"role": "assistant", "content": null,
                 "tool_calls": [call("call_1", "{\"c\":\"Paris\"}"), call("call_2", "{\"c\":\"Rome\"}")]},
                {"role": "tool", "tool_call_id": "call_1", "content": "20"},
                {"role": "tool", "tool_call_id": "call_2", "content": "25"},
                {"role": "assistant", "content": "Paris 20, Rome 25.", "tool_calls": [call("call_3", "{}")]},
                {"role": "tool", "tool_call_id": "call_3", "content": "{\"ok\":true}"},
                {"role": "user", "content": [
                    {"type": "text", "text": "And this?"},
                    {"type": "image_url", "image_url": {"url": "https://x/y.png", "detail": "low"}}]},
            ])
        );
    }

    #[test]
    fn tools_tool_choice_and_text_format() {
        let out = chat(json!({"model": "m", "input": "x",
            "tools": [{"type": "function", "name": "w", "description": "Weather",
                       "parameters": {"type": "object"}, "strict": true}],
            "tool_choice": {"type": "function", "name": "w"},
            "text": {"format": {"type": "json_schema", "name": "r", "schema": {"type": "object"}, "strict": true}},
        }))
        .unwrap();
        assert_eq!(
            out["tools"],
            json!([{"type": "function", "function": {"name": "w", "description": "Weather",
                    "parameters": {"type": "object"}, "strict": true}}])
        );
        assert_eq!(
            out["tool_choice"],
            json!({"type": "function", "function": {"name": "w"}})
        );
        assert_eq!(
            out["response_format"],
            json!({"type": "json_schema", "json_schema": {"name": "r", "schema": {"type": "object"}, "strict": true}})
        );
        let out = chat(json!({"input": "x", "tool_choice": "required",
                              "text": {"format": {"type": "json_object"}}}))
        .unwrap();
        assert_eq!(out["tool_choice"], json!("required"));
        assert_eq!(out["response_format"], json!({"type": "json_object"}));
        let out = chat(json!({"input": "x", "text": {"format": {"type": "text"}}})).unwrap();
        assert!(out.get("response_format").is_none() && out.get("stream_options").is_none());
    }

    #[test]
    fn unsupported_fields_are_errors() {
        let err = |req: Value| chat(req).unwrap_err();
        let e = err(json!({"input": "x", "tools": [{"type": "web_search"}]}));
        assert!(e.contains("built-in tool `web_search`"), "{e}");
        let e = err(json!({"input": "x", "previous_response_id": "resp_1"}));
        assert!(e.contains("`previous_response_id`"), "{e}");
        let e = err(json!({"input": "x", "background": true}));
        assert!(e.contains("`background`"), "{e}");
        let img = json!([{"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}]);
        assert!(err(json!({"input": img})).contains("file_id"));
        assert!(
            err(json!({"input": [{"type": "item_reference", "id": "x"}]}))
                .contains("item_reference")
        );
        assert!(
            chat(json!({"input": "x", "background": false, "previous_response_id": null})).is_ok()
        );
    }

    fn chat_answer(message: Value, finish: &str) -> Value {
        json!({"id": "chatcmpl-1", "object": "chat.completion", "created": 1735689600, "model": "m",
               "choices": [{"index": 0, "message": message, "finish_reason": finish}],
               "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15,
                         "prompt_tokens_details": {"cached_tokens": 4},
                         "completion_tokens_details": {"reasoning_tokens": 2}}})
    }

    #[test]
    fn from_chat_text() {
        let r = from_chat(&chat_answer(
            json!({"role": "assistant", "content": "Hello", "refusal": null}),
            "stop",
        ));
        assert!(r["id"].as_str().unwrap().starts_with("resp_"));
        assert!(r["output"][0]["id"].as_str().unwrap().starts_with("msg_"));
        assert_eq!(r["object"], "response");
        assert_eq!(r["status"], "completed");
        assert_eq!(r["created_at"], 1735689600);
        assert_eq!(r["model"], "m");
        assert_eq!(r["incomplete_details"], Value::Null);
        assert_eq!(r["output"].as_array().unwrap().len(), 1);
        assert_eq!(r["output"][0]["type"], "message");
        assert_eq!(r["output"][0]["status"], "completed");
        assert_eq!(r["output"][0]["role"], "assistant");
        assert_eq!(r["output"][0]["content"], json!([output_text("Hello")]));
        assert_eq!(
            r["usage"],
            json!({"input_tokens": 10, "input_tokens_details": {"cached_tokens": 4},
                   "output_tokens": 5, "output_tokens_details": {"reasoning_tokens": 2},
                   "total_tokens": 15})
        );
        assert!(r.get("output_text").is_none());
    }

    #[test]
    fn from_chat_tool_calls() {
        let r = from_chat(&chat_answer(
            json!({"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "w", "arguments": "{\"c\":1}"}},
                {"id": "call_2", "type": "function", "function": {"name": "v", "arguments": "{}"}}]}),
            "tool_calls",
        ));
        assert_eq!(r["status"], "completed");
        let output = r["output"].as_array().unwrap();
        assert_eq!(output.len(), 2);
        let first = &output[0];
        assert!(first["id"].as_str().unwrap().starts_with("fc_"));
        assert_eq!(
            (
                &first["type"],
                &first["call_id"],
                &first["name"],
                &first["arguments"],
                &first["status"]
            ),
            (
                &json!("function_call"),
                &json!("call_1"),
                &json!("w"),
                &json!("{\"c\":1}"),
                &json!("completed")
            )
        );
        assert_eq!(
            (&output[1]["call_id"], &output[1]["name"]),
            (&json!("call_2"), &json!("v"))
        );
    }

    #[test]
    fn from_chat_length_is_incomplete() {
        let r = from_chat(&chat_answer(
            json!({"role": "assistant", "content": "Hel"}),
            "length",
        ));
        assert_eq!(r["status"], "incomplete");
        assert_eq!(
            r["incomplete_details"],
            json!({"reason": "max_output_tokens"})
        );
        assert_eq!(r["output"][0]["status"], "incomplete");
        let r = from_chat(&chat_answer(
            json!({"role": "assistant", "content": ""}),
            "content_filter",
        ));
        assert_eq!(r["incomplete_details"], json!({"reason": "content_filter"}));
        assert_eq!(r["output"], json!([]));
    }

    /// Splits each SSE event into (type, data), checking the frame and the increasing sequence.
    fn parse(events: &[String]) -> Vec<(String, Value)> {
        let parsed: Vec<(String, Value)> = events
            .iter()
            .map(|e| {
                assert!(e.ends_with("\n\n"), "{e:?}");
                let mut lines = e.lines();
                let kind = lines.next().unwrap().strip_prefix("event: ").unwrap();
                let data = lines.next().unwrap().strip_prefix("data: ").unwrap();
                let data: Value = serde_json::from_str(data).unwrap();
                assert_eq!(data["type"], kind);
                (kind.to_string(), data)
            })
            .collect();
        for (n, (_, data)) in parsed.iter().enumerate() {
            assert_eq!(data["sequence_number"], n as u64);
        }
        parsed
    }

    fn delta_chunk(delta: Value, finish: Option<&str>) -> String {
        json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
        .to_string()
    }

    fn tool_fragment(first: bool, args: &str) -> Value {
        let mut call = json!({"index": 0, "function": {"arguments": args}});
        if first {
            call["id"] = json!("call_1");
            call["type"] = json!("function");
            call["function"]["name"] = json!("get_weather");
        }
        json!({"tool_calls": [call]})
    }

    #[test]
    fn stream_text_then_tool_call() {
        let mut s = EventStream::new("m");
        let mut out = Vec::new();
        s.start(&mut out);
        for chunk in [
            delta_chunk(json!({"role": "assistant", "content": ""}), None),
            delta_chunk(json!({"content": "Hel"}), None),
            delta_chunk(json!({"content": "lo"}), None),
            delta_chunk(tool_fragment(true, "{\"city\":"), None),
            delta_chunk(tool_fragment(false, "\"Paris\"}"), None),
            delta_chunk(json!({}), Some("tool_calls")),
            json!({"id": "c", "choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 9}})
                .to_string(),
            "[DONE]".to_string(),
        ] {
            s.chunk(&chunk, &mut out);
        }
        s.finish(None, &mut out);
        let events = parse(&out);
        let kinds: Vec<&str> = events.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "response.created",
                "response.in_progress",
                "response.output_item.added",
                "response.content_part.added",
                "response.output_text.delta",
                "response.output_text.delta",
                "response.output_text.done",
                "response.content_part.done",
                "response.output_item.done",
                "response.output_item.added",
                "response.function_call_arguments.delta",
                "response.function_call_arguments.delta",
                "response.function_call_arguments.done",
                "response.output_item.done",
                "response.completed",
            ]
        );
        let created = &events[0].1["response"];
        assert_eq!(
            (&created["status"], &created["output"]),
            (&json!("in_progress"), &json!([]))
        );
        let msg = &events[2].1["item"];
        assert_eq!(
            (&msg["type"], &msg["status"], &msg["content"]),
            (&json!("message"), &json!("in_progress"), &json!([]))
        );
        let msg_id = msg["id"].as_str().unwrap();
        assert_eq!(events[3].1["part"], output_text(""));
        assert_eq!(
            (&events[4].1["delta"], &events[4].1["item_id"]),
            (&json!("Hel"), &json!(msg_id))
        );
        assert_eq!(events[6].1["text"], "Hello");
        assert_eq!(events[7].1["part"], output_text("Hello"));
        assert_eq!(events[8].1["item"]["status"], "completed");
        let fc = &events[9].1;
        assert_eq!(fc["output_index"], 1);
        assert_eq!(
            (
                &fc["item"]["type"],
                &fc["item"]["call_id"],
                &fc["item"]["name"],
                &fc["item"]["arguments"]
            ),
            (
                &json!("function_call"),
                &json!("call_1"),
                &json!("get_weather"),
                &json!("")
            )
        );
        let fc_id = fc["item"]["id"].as_str().unwrap();
        assert!(fc_id.starts_with("fc_"));
        assert_eq!(
            (&events[11].1["delta"], &events[11].1["item_id"]),
            (&json!("\"Paris\"}"), &json!(fc_id))
        );
        assert_eq!(events[12].1["arguments"], "{\"city\":\"Paris\"}");
        assert_eq!(events[13].1["item"]["arguments"], "{\"city\":\"Paris\"}");
        let done = &events[14].1["response"];
        assert_eq!(done["status"], "completed");
        assert_eq!(done["id"], created["id"]);
        assert_eq!(
            done["output"][0],
            message_item(msg_id, "completed", vec![output_text("Hello")])
        );
        assert_eq!(
            done["output"][1],
            call_item(
                fc_id,
                "completed",
                "call_1",
                "get_weather",
                "{\"city\":\"Paris\"}"
            )
        );
        assert_eq!(done["usage"]["input_tokens"], 12);
        assert_eq!(done["usage"]["total_tokens"], 21);
    }

    #[test]
    fn stream_text_after_tool_call_and_length() {
        let mut s = EventStream::new("m");
        let mut out = Vec::new();
        s.start(&mut out);
        s.chunk(&delta_chunk(tool_fragment(true, "{}"), None), &mut out);
        s.chunk(
            &delta_chunk(json!({"content": "Trunc"}), Some("length")),
            &mut out,
        );
        let usage = Usage {
            prompt_tokens: 3,
            completion_tokens: 4,
            cached_tokens: 1,
            reasoning_tokens: 0,
        };
        s.finish(Some(usage), &mut out);
        s.finish(None, &mut out); // no second terminal event
        let events = parse(&out);
        let kinds: Vec<&str> = events.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            kinds[2..],
            [
                "response.output_item.added",
                "response.function_call_arguments.delta",
                "response.function_call_arguments.done",
                "response.output_item.done",
                "response.output_item.added",
                "response.content_part.added",
                "response.output_text.delta",
                "response.output_text.done",
                "response.content_part.done",
                "response.output_item.done",
                "response.incomplete",
            ]
        );
        assert_eq!(events[6].1["output_index"], 1);
        assert_eq!(events[11].1["item"]["status"], "incomplete");
        let r = &events[12].1["response"];
        assert_eq!(
            r["incomplete_details"],
            json!({"reason": "max_output_tokens"})
        );
        assert_eq!(
            (&r["output"][0]["type"], &r["output"][1]["type"]),
            (&json!("function_call"), &json!("message"))
        );
        assert_eq!(r["usage"]["input_tokens_details"]["cached_tokens"], 1);
        assert_eq!(r["usage"]["total_tokens"], 7);
    }

    #[test]
    fn stream_failure() {
        let mut s = EventStream::new("m");
        let mut out = Vec::new();
        s.start(&mut out);
        s.chunk(&delta_chunk(json!({"content": "Hi"}), None), &mut out);
        s.fail("upstream reset", &mut out);
        s.finish(None, &mut out);
        let events = parse(&out);
        assert_eq!(events.len(), 6);
        let (kind, data) = &events[5];
        assert_eq!(kind, "response.failed");
        let r = &data["response"];
        assert_eq!(r["status"], "failed");
        assert_eq!(
            r["error"],
            json!({"code": "server_error", "message": "upstream reset"})
        );
        assert_eq!(r["output"][0]["status"], "incomplete");
        assert_eq!(r["output"][0]["content"][0]["text"], "Hi");
        // An error payload inside the chunk stream also fails the response.
        let mut s = EventStream::new("m");
        let mut out = Vec::new();
        s.chunk(r#"{"error":{"message":"boom"}}"#, &mut out);
        let events = parse(&out);
        assert_eq!(
            events.last().unwrap().1["response"]["error"]["message"],
            "boom"
        );
    }
}
