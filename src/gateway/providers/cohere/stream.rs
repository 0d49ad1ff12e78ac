//! Cohere v2 chat stream → OpenAI chunks (providers.md 7). Every event's JSON names its `type`:
//! `message-start`, `content-delta` (text), `tool-call-start`/`-delta` (one call, an object),
//! and `message-end` with the finish reason and usage, which ends the stream.

use std::collections::HashMap;

use serde_json::{json, Value};

use super::{failed, finish_reason, new_id, now, usage_json, usage_of};
use crate::gateway::providers::adapter::{Endpoint, StreamError, StreamTranslator, Usage};
use crate::gateway::sse::{Decoder, Event};

pub struct Translator {
    chat: bool,
    decoder: Decoder,
    id: String,
    created: i64,
    model: String,
    started: bool,
    /// Cohere's tool-call `index` → the OpenAI ordinal.
    calls: HashMap<u64, usize>,
    last_call: Option<usize>,
    done: bool,
    usage: Option<Usage>,
}

fn malformed(detail: impl std::fmt::Display) -> StreamError {
    StreamError {
        message: format!("Cohere sent a malformed stream event: {detail}"),
        kind: "server_error".into(),
    }
}

impl Translator {
    pub fn new(endpoint: Endpoint, model: &str) -> Translator {
        Translator {
            chat: endpoint != Endpoint::Completions,
            decoder: Decoder::default(),
            id: new_id("chatcmpl-"),
            created: now(),
            model: model.to_string(),
            started: false,
            calls: HashMap::new(),
            last_call: None,
            done: false,
            usage: None,
        }
    }

    fn chunk(&self, choices: Value) -> Value {
        let object = if self.chat {
            "chat.completion.chunk"
        } else {
            "text_completion"
        };
        json!({"id": self.id, "object": object, "created": self.created, "model": self.model,
               "choices": choices})
    }

    fn emit(&mut self, delta: Value, reason: Option<&str>, out: &mut Vec<String>) {
        if !self.started {
            self.started = true;
            if self.chat {
                let role = json!({"role": "assistant", "content": ""});
                let first =
                    json!([{"index": 0, "delta": role, "logprobs": null, "finish_reason": null}]);
                out.push(self.chunk(first).to_string());
            }
        }
        if delta.as_object().is_some_and(|d| d.is_empty()) && reason.is_none() {
            return;
        }
        let choice = if self.chat {
            json!({"index": 0, "delta": delta, "logprobs": null, "finish_reason": reason})
        } else {
            if delta.get("tool_calls").is_some() {
                return;
            }
            let text = delta.get("content").and_then(Value::as_str).unwrap_or("");
            json!({"text": text, "index": 0, "logprobs": null, "finish_reason": reason})
        };
        out.push(self.chunk(json!([choice])).to_string());
    }

    fn events(&mut self, events: Vec<Event>, out: &mut Vec<String>) -> Result<(), StreamError> {
        for event in events {
            let data = event.data.trim();
            if data.is_empty() || data == "[DONE]" || self.done {
                continue;
            }
            let v: Value = serde_json::from_str(data).map_err(malformed)?;
            let kind = v
                .get("type")
                .and_then(Value::as_str)
                .or(event.event.as_deref());
            self.event(kind.unwrap_or(""), &v, out)?;
        }
        Ok(())
    }

    fn event(&mut self, kind: &str, v: &Value, out: &mut Vec<String>) -> Result<(), StreamError> {
        let message = &v["delta"]["message"];
        match kind {
            "message-start" => {
                if let Some(id) = v
                    .get("id")
                    .and_then(Value::as_str)
                    .filter(|_| !self.started)
                {
                    self.id = id.to_string();
                }
                self.emit(json!({}), None, out);
            }
            "content-start" | "content-delta" => {
                // Reasoning models stream `thinking` here too: not exposed.
                let text = message["content"]["text"].as_str().unwrap_or("");
                if !text.is_empty() {
                    self.emit(json!({"content": text}), None, out);
                }
            }
            "tool-call-start" => {
                let call = &message["tool_calls"];
                let k = self.calls.len();
                self.calls
                    .insert(v["index"].as_u64().unwrap_or(k as u64), k);
                self.last_call = Some(k);
                let f = &call["function"];
                let header = json!({"index": k, "id": call["id"], "type": "function",
                    "function": {"name": f["name"], "arguments": f["arguments"].as_str().unwrap_or("")}});
                self.emit(json!({"tool_calls": [header]}), None, out);
            }
            "tool-call-delta" => {
                let fragment = message["tool_calls"]["function"]["arguments"]
                    .as_str()
                    .unwrap_or("");
                let k = v["index"]
                    .as_u64()
                    .and_then(|i| self.calls.get(&i).copied())
                    .or(self.last_call);
                if let (Some(k), false) = (k, fragment.is_empty()) {
                    let call = json!({"index": k, "function": {"arguments": fragment}});
                    self.emit(json!({"tool_calls": [call]}), None, out);
                }
            }
            "message-end" => {
                let delta = &v["delta"];
                let upstream = delta["finish_reason"].as_str().unwrap_or("COMPLETE");
                if let Some(u) = delta.get("usage").filter(|u| u.is_object()) {
                    self.usage = Some(usage_of(u));
                }
                if let Some((kind, message)) = failed(upstream) {
                    return Err(StreamError {
                        message,
                        kind: kind.into(),
                    });
                }
                let reason = match finish_reason(upstream) {
                    "tool_calls" if self.calls.is_empty() => "stop",
                    r => r,
                };
                self.emit(json!({}), Some(reason), out);
                let mut chunk = self.chunk(json!([]));
                chunk["usage"] = usage_json(delta.get("usage").unwrap_or(&Value::Null));
                out.push(chunk.to_string());
                self.done = true;
            }
            "error" | "" if v.get("message").is_some() => {
                let message = v["message"].as_str().unwrap_or("Cohere failed mid-stream");
                return Err(StreamError {
                    message: message.into(),
                    kind: "server_error".into(),
                });
            }
            // content-end, tool-plan-delta, tool-call-end, citation-*, debug.
            _ => {}
        }
        Ok(())
    }
}

impl StreamTranslator for Translator {
    fn feed(&mut self, bytes: &[u8], out: &mut Vec<String>) -> Result<(), StreamError> {
        let mut events = Vec::new();
        let fed = self.decoder.feed(bytes, &mut events);
        self.events(events, out)?;
        fed.map_err(|_| malformed("an event exceeds the size limit"))
    }

    fn finish(&mut self, out: &mut Vec<String>) -> Result<(), StreamError> {
        let mut events = Vec::new();
        self.decoder.finish(&mut events);
        self.events(events, out)?;
        if self.done {
            Ok(())
        } else {
            Err(StreamError {
                message: "Cohere closed the stream before message-end".into(),
                kind: "server_error".into(),
            })
        }
    }

    fn usage(&self) -> Option<Usage> {
        self.usage
    }
}
