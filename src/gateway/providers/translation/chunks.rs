//! OpenAI stream chunks: `chat.completion.chunk`, or `text_completion` for legacy completions.

use std::collections::HashMap;

use serde_json::{json, Value};

use super::{now, Form};

/// Writes the chunks of one stream. [`choice`](Self::choice) and [`usage`](Self::usage) build
/// any chunk; the one-choice methods below them keep the bookkeeping of a provider that streams
/// a single choice: a chat stream opens with the assistant's role, tool calls are numbered in
/// the order they start, and tool calls have no place in the text form.
pub struct ChunkWriter {
    /// Every chunk's `id`; an adapter may set the provider's (and `model`) before the first.
    pub id: String,
    pub model: String,
    created: i64,
    form: Form,
    started: bool,
    finished: bool,
    /// The provider's key for a tool call (content-block or call index) → the call's ordinal.
    tool_calls: HashMap<u64, usize>,
    tool_calls_started: usize,
}

impl ChunkWriter {
    pub fn new(form: Form, id: String, model: &str) -> ChunkWriter {
        ChunkWriter {
            id,
            model: model.to_string(),
            created: now(),
            form,
            started: false,
            finished: false,
            tool_calls: HashMap::new(),
            tool_calls_started: 0,
        }
    }

    fn chunk(&self, choices: Value) -> Value {
        let object = match self.form {
            Form::Chat => "chat.completion.chunk",
            Form::Text => "text_completion",
        };
        json!({"id": self.id, "object": object, "created": self.created, "model": self.model,
               "choices": choices})
    }

    /// A chunk of one choice: `delta` as it is in the chat form, its `content` as `text` in the
    /// text form.
    pub fn choice(&self, index: u64, delta: Value, finish_reason: Option<&str>) -> String {
        let choice = match self.form {
            Form::Chat => json!({"index": index, "delta": delta, "logprobs": null,
                                 "finish_reason": finish_reason}),
            Form::Text => {
                let text = delta.get("content").and_then(Value::as_str).unwrap_or("");
                json!({"text": text, "index": index, "logprobs": null,
                       "finish_reason": finish_reason})
            }
        };
        self.chunk(json!([choice])).to_string()
    }

    /// The usage chunk that ends a stream: no choices, OpenAI's usage object (with any
    /// provider extras).
    pub fn usage(&self, usage: Value) -> String {
        let mut chunk = self.chunk(json!([]));
        chunk["usage"] = usage;
        chunk.to_string()
    }

    /// Opens the stream the first time anything is written: the chat form's first chunk is
    /// the assistant's role with empty content.
    pub fn start(&mut self, out: &mut Vec<String>) {
        if !self.started {
            self.started = true;
            if self.form == Form::Chat {
                let role = json!({"role": "assistant", "content": ""});
                out.push(self.choice(0, role, None));
            }
        }
    }

    pub fn started(&self) -> bool {
        self.started
    }

    /// New answer text; nothing when empty.
    pub fn text(&mut self, out: &mut Vec<String>, text: &str) {
        if !text.is_empty() {
            self.start(out);
            out.push(self.choice(0, json!({"content": text}), None));
        }
    }

    /// Starts the next tool call under the provider's `key` and returns its ordinal (its OpenAI
    /// `index`). `arguments` is what the provider sent with the start (usually nothing).
    pub fn tool_call_start(
        &mut self,
        out: &mut Vec<String>,
        key: u64,
        id: Value,
        name: Value,
        arguments: &str,
    ) -> usize {
        let ordinal = self.tool_calls_started;
        self.tool_calls_started += 1;
        self.tool_calls.insert(key, ordinal);
        self.start(out);
        if self.form == Form::Chat {
            let call = json!({"index": ordinal, "id": id, "type": "function",
                              "function": {"name": name, "arguments": arguments}});
            out.push(self.choice(0, json!({"tool_calls": [call]}), None));
        }
        ordinal
    }

    /// The ordinal of the tool call started under `key`.
    pub fn tool_call(&self, key: u64) -> Option<usize> {
        self.tool_calls.get(&key).copied()
    }

    /// The ordinal of the tool call started last.
    pub fn last_tool_call(&self) -> Option<usize> {
        self.tool_calls_started.checked_sub(1)
    }

    /// How many tool calls have started.
    pub fn tool_calls(&self) -> usize {
        self.tool_calls_started
    }

    /// More arguments (JSON text) of the tool call `ordinal`; nothing when empty.
    pub fn tool_call_args(&mut self, out: &mut Vec<String>, ordinal: usize, fragment: &str) {
        if fragment.is_empty() {
            return;
        }
        self.start(out);
        if self.form == Form::Chat {
            let call = json!({"index": ordinal, "function": {"arguments": fragment}});
            out.push(self.choice(0, json!({"tool_calls": [call]}), None));
        }
    }

    /// The chunk with the finish reason (OpenAI's).
    pub fn finish(&mut self, out: &mut Vec<String>, reason: &str) {
        self.start(out);
        self.finished = true;
        out.push(self.choice(0, json!({}), Some(reason)));
    }

    pub fn finished(&self) -> bool {
        self.finished
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(out: &[String]) -> Vec<Value> {
        out.iter()
            .map(|c| {
                let mut c: Value = serde_json::from_str(c).unwrap();
                assert_eq!(c["id"], "c1");
                assert_eq!(c["model"], "m");
                c.as_object_mut().unwrap().remove("created");
                c
            })
            .collect()
    }

    fn a_stream(w: &mut ChunkWriter) -> Vec<String> {
        let mut out = Vec::new();
        w.start(&mut out);
        w.text(&mut out, "");
        w.text(&mut out, "Hi");
        let k = w.tool_call_start(&mut out, 7, json!("call_1"), json!("f"), "");
        w.tool_call_args(&mut out, k, "");
        w.tool_call_args(&mut out, w.tool_call(7).unwrap(), "{}");
        w.finish(&mut out, "tool_calls");
        out.push(w.usage(json!({"prompt_tokens": 1})));
        out
    }

    #[test]
    fn chat_stream() {
        let mut w = ChunkWriter::new(Form::Chat, "c1".into(), "m");
        let out = a_stream(&mut w);
        let chunk = |delta: Value, reason: Value| {
            json!({"id": "c1", "object": "chat.completion.chunk", "model": "m",
                   "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": reason}]})
        };
        assert_eq!(
            parsed(&out),
            vec![
                chunk(json!({"role": "assistant", "content": ""}), Value::Null),
                chunk(json!({"content": "Hi"}), Value::Null),
                chunk(
                    json!({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                                           "function": {"name": "f", "arguments": ""}}]}),
                    Value::Null
                ),
                chunk(
                    json!({"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]}),
                    Value::Null
                ),
                chunk(json!({}), json!("tool_calls")),
                json!({"id": "c1", "object": "chat.completion.chunk", "model": "m", "choices": [],
                       "usage": {"prompt_tokens": 1}}),
            ]
        );
        assert!(w.started() && w.finished());
        assert_eq!((w.tool_calls(), w.last_tool_call()), (1, Some(0)));
        assert_eq!(w.tool_call(8), None);
    }

    #[test]
    fn text_stream_has_no_role_or_tool_call_chunks() {
        let mut w = ChunkWriter::new(Form::Text, "c1".into(), "m");
        let out = a_stream(&mut w);
        let chunk = |text: &str, reason: Value| {
            json!({"id": "c1", "object": "text_completion", "model": "m",
                   "choices": [{"text": text, "index": 0, "logprobs": null, "finish_reason": reason}]})
        };
        assert_eq!(
            parsed(&out),
            vec![
                chunk("Hi", Value::Null),
                chunk("", json!("tool_calls")),
                json!({"id": "c1", "object": "text_completion", "model": "m", "choices": [],
                       "usage": {"prompt_tokens": 1}}),
            ]
        );
        assert_eq!(w.tool_calls(), 1);
    }
}
