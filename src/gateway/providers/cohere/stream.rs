//! Cohere v2 chat stream → OpenAI chunks (providers.md 7). Every event's JSON names its `type`:
//! `message-start`, `content-delta` (text), `tool-call-start`/`-delta` (one call, an object),
//! and `message-end` with the finish reason and usage, which ends the stream.

use serde_json::Value;

use super::{failed, finish_reason, usage_json, usage_of};
use crate::gateway::providers::adapter::{Endpoint, StreamError, Usage};
use crate::gateway::providers::translation::{
    finish_with_calls, new_id, ChunkWriter, Form, TypedEvents,
};

pub struct Translator {
    /// Tool calls are keyed by Cohere's tool-call `index`.
    chunks: ChunkWriter,
    done: bool,
    usage: Option<Usage>,
}

impl Translator {
    pub fn new(endpoint: Endpoint, model: &str) -> Translator {
        Translator {
            chunks: ChunkWriter::new(Form::of(endpoint), new_id("chatcmpl-"), model),
            done: false,
            usage: None,
        }
    }
}

impl TypedEvents for Translator {
    const PROVIDER: &'static str = "Cohere";
    const LAST_EVENT: &'static str = "message-end";

    fn event(&mut self, kind: &str, v: &Value, out: &mut Vec<String>) -> Result<(), StreamError> {
        let message = &v["delta"]["message"];
        match kind {
            "message-start" => {
                if let Some(id) = v
                    .get("id")
                    .and_then(Value::as_str)
                    .filter(|_| !self.chunks.started())
                {
                    self.chunks.id = id.to_string();
                }
                self.chunks.start(out);
            }
            "content-start" | "content-delta" => {
                // Reasoning models stream `thinking` here too: not exposed.
                let text = message["content"]["text"].as_str().unwrap_or("");
                self.chunks.text(out, text);
            }
            "tool-call-start" => {
                let call = &message["tool_calls"];
                let key = v["index"]
                    .as_u64()
                    .unwrap_or(self.chunks.tool_calls() as u64);
                let f = &call["function"];
                let arguments = f["arguments"].as_str().unwrap_or("");
                let (id, name) = (call["id"].clone(), f["name"].clone());
                self.chunks.tool_call_start(out, key, id, name, arguments);
            }
            "tool-call-delta" => {
                let fragment = message["tool_calls"]["function"]["arguments"]
                    .as_str()
                    .unwrap_or("");
                let k = v["index"]
                    .as_u64()
                    .and_then(|i| self.chunks.tool_call(i))
                    .or(self.chunks.last_tool_call());
                if let Some(k) = k {
                    self.chunks.tool_call_args(out, k, fragment);
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
                let reason =
                    finish_with_calls(finish_reason(upstream), self.chunks.tool_calls() > 0);
                self.chunks.finish(out, reason);
                out.push(
                    self.chunks
                        .usage(usage_json(delta.get("usage").unwrap_or(&Value::Null))),
                );
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

    fn done(&self) -> bool {
        self.done
    }

    fn usage(&self) -> Option<Usage> {
        self.usage
    }
}
