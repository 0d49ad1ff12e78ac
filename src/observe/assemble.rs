//! Rebuilds a whole answer from the chunks of a streamed one, so the request log can store a
//! streamed response body the way it stores an unstreamed one.
//!
//! Chunks are read into borrowed, typed views: unescaped text is appended without an
//! allocation of its own and fields the answer does not need are skipped, not built.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{json, Map, Value};

/// Collects `chat.completion.chunk` (or `text_completion`) chunks; [`finish`](Self::finish)
/// gives the `chat.completion` (or `text_completion`) object they add up to.
#[derive(Default)]
pub struct Assembler {
    id: Option<String>,
    created: Option<i64>,
    model: Option<String>,
    system_fingerprint: Option<String>,
    text_form: bool,
    choices: BTreeMap<u64, Choice>,
    usage: Option<Value>,
}

#[derive(Default)]
struct Choice {
    role: Option<String>,
    /// The chat form's `content`, or the text form's `text`.
    content: String,
    refusal: Option<String>,
    reasoning_content: Option<String>,
    tool_calls: BTreeMap<u64, ToolCall>,
    finish_reason: Option<String>,
}

#[derive(Default)]
struct ToolCall {
    id: Option<String>,
    kind: Option<String>,
    name: String,
    arguments: String,
}

#[derive(Deserialize)]
struct Chunk<'a> {
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    object: Option<Cow<'a, str>>,
    created: Option<i64>,
    #[serde(borrow)]
    model: Option<Cow<'a, str>>,
    #[serde(borrow)]
    system_fingerprint: Option<Cow<'a, str>>,
    #[serde(borrow)]
    choices: Option<Vec<ChoiceChunk<'a>>>,
    usage: Option<Value>,
}

#[derive(Deserialize)]
struct ChoiceChunk<'a> {
    #[serde(default)]
    index: u64,
    #[serde(borrow)]
    delta: Option<Delta<'a>>,
    #[serde(borrow)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow)]
    finish_reason: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Delta<'a> {
    #[serde(borrow)]
    role: Option<Cow<'a, str>>,
    #[serde(borrow)]
    content: Option<Cow<'a, str>>,
    #[serde(borrow)]
    refusal: Option<Cow<'a, str>>,
    #[serde(borrow)]
    reasoning_content: Option<Cow<'a, str>>,
    #[serde(borrow)]
    tool_calls: Option<Vec<ToolCallChunk<'a>>>,
}

#[derive(Deserialize)]
struct ToolCallChunk<'a> {
    index: Option<u64>,
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(rename = "type", borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    function: Option<FunctionChunk<'a>>,
}

#[derive(Deserialize)]
struct FunctionChunk<'a> {
    #[serde(borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    arguments: Option<Cow<'a, str>>,
}

fn set_once(slot: &mut Option<String>, value: Option<Cow<str>>) {
    if slot.is_none() {
        *slot = value.map(Cow::into_owned);
    }
}

fn append(slot: &mut Option<String>, fragment: Option<Cow<str>>) {
    if let Some(fragment) = fragment {
        slot.get_or_insert_with(String::new).push_str(&fragment);
    }
}

impl Assembler {
    /// Takes the JSON text of one chunk; text that is not a JSON object in the chunk's shape
    /// is ignored.
    pub fn push(&mut self, chunk_json: &str) {
        // Typed views would also accept a JSON array as a struct's fields in order.
        if !chunk_json.trim_start().starts_with('{') {
            return;
        }
        let Ok(chunk) = serde_json::from_str::<Chunk>(chunk_json) else {
            return;
        };
        set_once(&mut self.id, chunk.id);
        set_once(&mut self.model, chunk.model);
        set_once(&mut self.system_fingerprint, chunk.system_fingerprint);
        self.created = self.created.or(chunk.created);
        if chunk.object.as_deref() == Some("text_completion") {
            self.text_form = true;
        }
        if let Some(usage) = chunk.usage {
            self.usage = Some(usage);
        }
        for part in chunk.choices.into_iter().flatten() {
            let choice = self.choices.entry(part.index).or_default();
            if let Some(text) = part.text {
                self.text_form |= part.delta.is_none();
                choice.content.push_str(&text);
            }
            if let Some(delta) = part.delta {
                choice.add(delta);
            }
            if let Some(reason) = part.finish_reason {
                choice.finish_reason = Some(reason.into_owned());
            }
        }
    }

    /// The whole answer: choices and tool calls in index order, with `usage` and
    /// `system_fingerprint` when the stream carried them.
    pub fn finish(self) -> Value {
        let mut answer = Map::new();
        answer.insert("id".into(), json!(self.id));
        let object = if self.text_form {
            "text_completion"
        } else {
            "chat.completion"
        };
        answer.insert("object".into(), json!(object));
        answer.insert("created".into(), json!(self.created));
        answer.insert("model".into(), json!(self.model));
        if let Some(fingerprint) = self.system_fingerprint {
            answer.insert("system_fingerprint".into(), json!(fingerprint));
        }
        let text_form = self.text_form;
        let choices = self
            .choices
            .into_iter()
            .map(|(index, choice)| choice.into_value(index, text_form));
        answer.insert("choices".into(), Value::Array(choices.collect()));
        if let Some(usage) = self.usage {
            answer.insert("usage".into(), usage);
        }
        Value::Object(answer)
    }
}

impl Choice {
    fn add(&mut self, delta: Delta) {
        set_once(&mut self.role, delta.role);
        if let Some(content) = delta.content {
            self.content.push_str(&content);
        }
        append(&mut self.refusal, delta.refusal);
        append(&mut self.reasoning_content, delta.reasoning_content);
        for part in delta.tool_calls.into_iter().flatten() {
            let index = match part.index {
                Some(index) => index,
                None => self.unindexed_call(part.id.as_deref()),
            };
            let call = self.tool_calls.entry(index).or_default();
            set_once(&mut call.id, part.id);
            set_once(&mut call.kind, part.kind);
            if let Some(function) = part.function {
                if let Some(name) = function.name {
                    call.name.push_str(&name);
                }
                if let Some(arguments) = function.arguments {
                    call.arguments.push_str(&arguments);
                }
            }
        }
    }

    /// Where a tool-call fragment without an index belongs (a few OpenAI-compatible providers
    /// omit it): a new id starts the next call, anything else continues the last.
    fn unindexed_call(&self, id: Option<&str>) -> u64 {
        match self.tool_calls.last_key_value() {
            None => 0,
            Some((&last, call)) if id.is_none() || call.id.as_deref() == id => last,
            Some((&last, _)) => last + 1,
        }
    }

    fn into_value(mut self, index: u64, text_form: bool) -> Value {
        if text_form {
            return json!({"index": index, "text": self.content,
                          "finish_reason": self.finish_reason});
        }
        let finish_reason = self.finish_reason.take();
        json!({"index": index, "message": self.message(), "finish_reason": finish_reason})
    }

    fn message(self) -> Value {
        let mut message = Map::new();
        message.insert(
            "role".into(),
            json!(self.role.as_deref().unwrap_or("assistant")),
        );
        let answered_otherwise = !self.tool_calls.is_empty() || self.refusal.is_some();
        let content = if self.content.is_empty() && answered_otherwise {
            Value::Null
        } else {
            Value::String(self.content)
        };
        message.insert("content".into(), content);
        if !self.tool_calls.is_empty() {
            let calls = self.tool_calls.into_values().map(|call| {
                json!({"id": call.id, "type": call.kind.as_deref().unwrap_or("function"),
                       "function": {"name": call.name, "arguments": call.arguments}})
            });
            message.insert("tool_calls".into(), Value::Array(calls.collect()));
        }
        if let Some(refusal) = self.refusal {
            message.insert("refusal".into(), json!(refusal));
        }
        if let Some(reasoning) = self.reasoning_content {
            message.insert("reasoning_content".into(), json!(reasoning));
        }
        Value::Object(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assembled(chunks: &[Value]) -> Value {
        let mut assembler = Assembler::default();
        for chunk in chunks {
            assembler.push(&chunk.to_string());
        }
        assembler.finish()
    }

    fn chat_chunk(choices: Value) -> Value {
        json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1735689600,
               "model": "m", "system_fingerprint": "fp_1", "choices": choices, "usage": null})
    }

    #[test]
    fn text_deltas_of_several_choices_are_concatenated_in_index_order() {
        let delta = |index: u64, delta: Value, reason: Value| {
            chat_chunk(json!([{"index": index, "delta": delta, "logprobs": null,
                               "finish_reason": reason}]))
        };
        let answer = assembled(&[
            delta(1, json!({"role": "assistant", "content": ""}), Value::Null),
            delta(0, json!({"role": "assistant", "content": ""}), Value::Null),
            delta(0, json!({"content": "Hel"}), Value::Null),
            delta(1, json!({"content": "Bon"}), Value::Null),
            delta(0, json!({"content": "lo \"there\""}), Value::Null),
            delta(
                1,
                json!({"content": "jour", "reasoning_content": "French"}),
                Value::Null,
            ),
            delta(1, json!({}), json!("length")),
            delta(0, json!({}), json!("stop")),
        ]);
        assert_eq!(
            answer,
            json!({"id": "chatcmpl-1", "object": "chat.completion", "created": 1735689600,
                   "model": "m", "system_fingerprint": "fp_1", "choices": [
                {"index": 0, "message": {"role": "assistant", "content": "Hello \"there\""},
                 "finish_reason": "stop"},
                {"index": 1, "message": {"role": "assistant", "content": "Bonjour",
                                         "reasoning_content": "French"},
                 "finish_reason": "length"}
            ]})
        );
    }

    #[test]
    fn tool_calls_split_across_chunks_are_joined_by_index() {
        let calls =
            |calls: Value| chat_chunk(json!([{"index": 0, "delta": {"tool_calls": calls}}]));
        let answer = assembled(&[
            chat_chunk(json!([{"index": 0, "delta": {"role": "assistant", "content": ""}}])),
            calls(json!([{"index": 0, "id": "call_1", "type": "function",
                          "function": {"name": "get_weather", "arguments": "{\"city\":"}}])),
            calls(json!([{"index": 1, "id": "call_2", "type": "function",
                          "function": {"name": "get_time", "arguments": ""}}])),
            calls(json!([{"index": 0, "function": {"arguments": "\"Paris\"}"}}])),
            calls(json!([{"index": 1, "function": {"arguments": "{}"}}])),
            chat_chunk(json!([{"index": 0, "delta": {}, "finish_reason": "tool_calls"}])),
        ]);
        assert_eq!(
            answer["choices"],
            json!([{"index": 0, "message": {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function",
                 "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                {"id": "call_2", "type": "function",
                 "function": {"name": "get_time", "arguments": "{}"}}
            ]}, "finish_reason": "tool_calls"}])
        );
    }

    #[test]
    fn tool_calls_without_an_index_are_told_apart_by_id() {
        let calls =
            |calls: Value| chat_chunk(json!([{"index": 0, "delta": {"tool_calls": calls}}]));
        let answer = assembled(&[
            calls(json!([{"id": "a", "function": {"name": "f", "arguments": "{"}}])),
            calls(json!([{"function": {"arguments": "}"}}])),
            calls(json!([{"id": "b", "function": {"name": "g", "arguments": "[]"}}])),
        ]);
        let calls = &answer["choices"][0]["message"]["tool_calls"];
        assert_eq!(
            calls[0]["function"],
            json!({"name": "f", "arguments": "{}"})
        );
        assert_eq!(
            calls[1]["function"],
            json!({"name": "g", "arguments": "[]"})
        );
    }

    #[test]
    fn a_refusal_leaves_content_null() {
        let answer = assembled(&[
            chat_chunk(json!([{"index": 0, "delta": {"role": "assistant", "refusal": "I can"}}])),
            chat_chunk(json!([{"index": 0, "delta": {"refusal": "not."}}])),
        ]);
        assert_eq!(
            answer["choices"][0]["message"],
            json!({"role": "assistant", "content": null, "refusal": "I cannot."})
        );
    }

    #[test]
    fn usage_comes_from_the_usage_chunk() {
        let usage = json!({"prompt_tokens": 12, "completion_tokens": 9, "total_tokens": 21});
        let mut last = chat_chunk(json!([]));
        last["usage"] = usage.clone();
        let answer = assembled(&[
            chat_chunk(json!([{"index": 0, "delta": {"content": "Hi"}, "finish_reason": "stop"}])),
            last,
        ]);
        assert_eq!(answer["usage"], usage);
        assert_eq!(answer["choices"][0]["message"]["content"], "Hi");
        assert!(assembled(&[chat_chunk(json!([]))]).get("usage").is_none());
    }

    #[test]
    fn completions_chunks_give_a_text_completion() {
        let chunk = |index: u64, text: &str, reason: Value| {
            json!({"id": "cmpl-1", "object": "text_completion", "created": 1, "model": "m",
                   "choices": [{"text": text, "index": index, "logprobs": null,
                                "finish_reason": reason}]})
        };
        let answer = assembled(&[
            chunk(0, "Once", Value::Null),
            chunk(1, "Twice", Value::Null),
            chunk(0, " upon", Value::Null),
            chunk(0, "", json!("length")),
            chunk(1, "", json!("stop")),
            json!({"id": "cmpl-1", "object": "text_completion", "created": 1, "model": "m",
                   "choices": [], "usage": {"prompt_tokens": 1}}),
        ]);
        assert_eq!(
            answer,
            json!({"id": "cmpl-1", "object": "text_completion", "created": 1, "model": "m",
                   "choices": [
                       {"index": 0, "text": "Once upon", "finish_reason": "length"},
                       {"index": 1, "text": "Twice", "finish_reason": "stop"}
                   ], "usage": {"prompt_tokens": 1}})
        );
    }

    #[test]
    fn garbage_is_ignored() {
        let mut assembler = Assembler::default();
        for garbage in [
            "",
            "[DONE]",
            "not json",
            "[\"chatcmpl-x\", \"chat.completion.chunk\"]",
            "42",
            "{\"choices\": [{\"index\": 0, \"delta\": {\"content\": \"trunc",
            "{\"choices\": \"nope\"}",
        ] {
            assembler.push(garbage);
        }
        assembler.push(&chat_chunk(json!([{"index": 0, "delta": {"content": "ok"}}])).to_string());
        let answer = assembler.finish();
        assert_eq!(answer["id"], "chatcmpl-1");
        assert_eq!(
            answer["choices"],
            json!([{"index": 0, "message": {"role": "assistant", "content": "ok"},
                    "finish_reason": null}])
        );
    }

    #[test]
    fn nothing_pushed_gives_an_empty_answer() {
        assert_eq!(
            Assembler::default().finish(),
            json!({"id": null, "object": "chat.completion", "created": null, "model": null,
                   "choices": []})
        );
    }
}
