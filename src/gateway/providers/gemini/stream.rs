//! `streamGenerateContent?alt=sse` → OpenAI chunks (providers.md 4.4). Each event is a whole
//! `GenerateContentResponse` holding only new parts; `usageMetadata` is cumulative; the stream
//! ends at EOF after an event with a `finishReason`.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::error_status;
use super::response::{candidate_index, finish, new_id, now, split_parts, tool_call, usage};
use crate::gateway::providers::adapter::{
    normalised_error, Endpoint, StreamError, StreamTranslator, Usage,
};
use crate::gateway::sse::{Decoder, Event};

#[derive(Default)]
struct Choice {
    started: bool,
    calls: usize,
    finished: bool,
}

pub struct Translator {
    chat: bool,
    decoder: Decoder,
    id: Option<String>,
    created: i64,
    model: String,
    choices: BTreeMap<u64, Choice>,
    usage: Option<Usage>,
}

impl Translator {
    pub fn new(endpoint: Endpoint, model: &str) -> Translator {
        Translator {
            chat: endpoint != Endpoint::Completions,
            decoder: Decoder::default(),
            id: None,
            created: now(),
            model: model.to_string(),
            choices: BTreeMap::new(),
            usage: None,
        }
    }

    fn chunk(&self, choices: Value) -> String {
        let object = if self.chat {
            "chat.completion.chunk"
        } else {
            "text_completion"
        };
        json!({
            "id": self.id.as_deref().unwrap_or(""),
            "object": object,
            "created": self.created,
            "model": self.model,
            "choices": choices,
        })
        .to_string()
    }

    fn choice_chunk(&self, index: u64, delta: Value, reason: Option<&str>) -> String {
        let choice = if self.chat {
            json!({"index": index, "delta": delta, "logprobs": null, "finish_reason": reason})
        } else {
            let text = delta.get("content").and_then(Value::as_str).unwrap_or("");
            json!({"text": text, "index": index, "logprobs": null, "finish_reason": reason})
        };
        self.chunk(json!([choice]))
    }

    fn events(&mut self, events: Vec<Event>, out: &mut Vec<String>) -> Result<(), StreamError> {
        for event in events {
            let data = event.data.trim();
            if data.is_empty() || data == "[DONE]" {
                continue;
            }
            let value: Value = serde_json::from_str(data).map_err(|e| StreamError {
                message: format!("malformed Gemini stream event: {e}"),
                kind: "server_error".into(),
            })?;
            // Without `alt=sse` (or on some errors) Google sends an array of responses.
            let items = match value {
                Value::Array(items) => items,
                other => vec![other],
            };
            for item in &items {
                self.response(item, out)?;
            }
        }
        Ok(())
    }

    fn response(&mut self, r: &Value, out: &mut Vec<String>) -> Result<(), StreamError> {
        if let Some(err) = r.get("error") {
            return Err(stream_error(err));
        }
        if self.id.is_none() {
            self.id = Some(
                r.get("responseId")
                    .and_then(Value::as_str)
                    .map_or_else(|| new_id("chatcmpl-"), |id| format!("chatcmpl-{id}")),
            );
            if let Some(m) = r.get("modelVersion").and_then(Value::as_str) {
                self.model = m.to_string();
            }
        }
        if let Some(meta) = r.get("usageMetadata") {
            self.usage = Some(usage(meta));
        }
        let candidates = r.get("candidates").and_then(Value::as_array);
        let Some(candidates) = candidates.filter(|c| !c.is_empty()) else {
            if r.pointer("/promptFeedback/blockReason").is_some() {
                self.emit(0, String::new(), &[], Some("content_filter"), out);
            }
            return Ok(());
        };
        for (pos, c) in candidates.iter().enumerate() {
            let (text, calls) = split_parts(c);
            let reason = c.get("finishReason").and_then(Value::as_str);
            self.emit(candidate_index(c, pos), text, &calls, reason, out);
        }
        Ok(())
    }

    /// Emits one candidate's new text and calls, then its finish chunk if it finished.
    fn emit(
        &mut self,
        index: u64,
        text: String,
        calls: &[&Value],
        reason: Option<&str>,
        out: &mut Vec<String>,
    ) {
        let state = self.choices.entry(index).or_default();
        if state.finished {
            return;
        }
        let first = !state.started;
        let has_content = !text.is_empty() || !calls.is_empty();
        let mut chunks = Vec::new();
        if has_content || (first && reason.is_some()) {
            state.started = true;
            let mut delta = json!({});
            if first {
                delta["role"] = "assistant".into();
            }
            if !text.is_empty() || calls.is_empty() {
                delta["content"] = text.into();
            }
            if !calls.is_empty() && self.chat {
                let list: Vec<Value> = calls
                    .iter()
                    .map(|part| {
                        let mut call = tool_call(part);
                        call["index"] = state.calls.into();
                        state.calls += 1;
                        call
                    })
                    .collect();
                delta["tool_calls"] = Value::Array(list);
            }
            chunks.push((delta, None));
        }
        if let Some(reason) = reason {
            state.finished = true;
            chunks.push((json!({}), Some(finish(reason, state.calls > 0))));
        }
        for (delta, reason) in chunks {
            out.push(self.choice_chunk(index, delta, reason));
        }
    }
}

/// A Google error object (`{"code","message","status"}`) met inside a stream.
fn stream_error(err: &Value) -> StreamError {
    let (status, message, _) = error_status(err, 500);
    let provider = crate::gateway::providers::find("google").expect("google is catalogued");
    let (_, body) = normalised_error(provider, status, "", None);
    let kind = body["error"]["type"]
        .as_str()
        .unwrap_or("server_error")
        .to_string();
    StreamError { message, kind }
}

impl StreamTranslator for Translator {
    fn feed(&mut self, bytes: &[u8], out: &mut Vec<String>) -> Result<(), StreamError> {
        let mut events = Vec::new();
        self.decoder
            .feed(bytes, &mut events)
            .map_err(|_| StreamError {
                message: "Gemini stream event exceeds the size limit".into(),
                kind: "server_error".into(),
            })?;
        self.events(events, out)
    }

    fn finish(&mut self, out: &mut Vec<String>) -> Result<(), StreamError> {
        let mut events = Vec::new();
        self.decoder.finish(&mut events);
        self.events(events, out)?;
        if !self.choices.values().any(|c| c.finished) {
            return Err(StreamError {
                message: "Gemini stream ended before a finishReason (truncated)".into(),
                kind: "server_error".into(),
            });
        }
        if let Some(u) = self.usage {
            let mut chunk: Value = serde_json::from_str(&self.chunk(json!([]))).unwrap_or_default();
            chunk["usage"] = u.to_openai();
            out.push(chunk.to_string());
        }
        Ok(())
    }

    fn usage(&self) -> Option<Usage> {
        self.usage
    }
}
