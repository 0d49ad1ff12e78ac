//! Anthropic's named SSE events → OpenAI chunks (providers.md 3.3). `message_start` gives the
//! id and input usage, blocks stream by content index, `message_delta` carries the stop reason
//! and cumulative usage, `message_stop` ends the stream; `ping` is noise, `error` is fatal.

use std::collections::HashSet;

use serde_json::Value;

use super::{finish, status_of, RawUsage, JSON_TOOL};
use crate::gateway::providers::adapter::{normalised_error, Endpoint, StreamError, Usage};
use crate::gateway::providers::find;
use crate::gateway::providers::translation::{new_id, ChunkWriter, Form, TypedEvents};

pub struct Translator {
    chunks: ChunkWriter,
    /// Content blocks (by Anthropic's index) of the `response_format` tool: their JSON is the
    /// answer text. Other tool blocks are tool calls, keyed by the same index.
    json_blocks: HashSet<u64>,
    done: bool,
    usage: Option<RawUsage>,
}

/// An `error` event's `{"type","message"}` → the stream error, typed as section 0.2 says.
fn stream_error(err: &Value) -> StreamError {
    let kind = err
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("api_error");
    let message = err
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or(kind)
        .to_string();
    let provider = find("anthropic").expect("anthropic is catalogued");
    let (_, body) = normalised_error(provider, status_of(kind).unwrap_or(500), &message, None);
    let kind = body["error"]["type"]
        .as_str()
        .unwrap_or("server_error")
        .to_string();
    StreamError { message, kind }
}

impl Translator {
    pub fn new(endpoint: Endpoint, model: &str) -> Translator {
        Translator {
            chunks: ChunkWriter::new(Form::of(endpoint), new_id("chatcmpl-"), model),
            json_blocks: HashSet::new(),
            done: false,
            usage: None,
        }
    }

    fn finish_chunk(&mut self, stop_reason: Option<&str>, out: &mut Vec<String>) {
        if !self.chunks.finished() {
            let reason = finish(stop_reason, self.chunks.tool_calls() > 0);
            self.chunks.finish(out, reason);
        }
    }
}

impl TypedEvents for Translator {
    const PROVIDER: &'static str = "Anthropic";
    const LAST_EVENT: &'static str = "message_stop";

    fn event(&mut self, kind: &str, v: &Value, out: &mut Vec<String>) -> Result<(), StreamError> {
        let index = v.get("index").and_then(Value::as_u64).unwrap_or(0);
        match kind {
            "message_start" => {
                let m = &v["message"];
                if !self.chunks.started() {
                    if let Some(id) = m.get("id").and_then(Value::as_str) {
                        self.chunks.id = id.to_string();
                    }
                    if let Some(model) = m.get("model").and_then(Value::as_str) {
                        self.chunks.model = model.to_string();
                    }
                }
                self.usage
                    .get_or_insert_with(RawUsage::default)
                    .update(&m["usage"]);
                self.chunks.start(out);
            }
            "content_block_start" => {
                let b = &v["content_block"];
                match b.get("type").and_then(Value::as_str) {
                    Some("tool_use") if b["name"] == JSON_TOOL => {
                        self.json_blocks.insert(index);
                    }
                    Some("tool_use") => {
                        let (id, name) = (b["id"].clone(), b["name"].clone());
                        self.chunks.tool_call_start(out, index, id, name, "");
                    }
                    Some("text") => {
                        let text = b.get("text").and_then(Value::as_str).unwrap_or("");
                        self.chunks.text(out, text);
                    }
                    _ => {}
                }
            }
            "content_block_delta" => {
                let d = &v["delta"];
                match d.get("type").and_then(Value::as_str) {
                    Some("text_delta") => self.chunks.text(out, d["text"].as_str().unwrap_or("")),
                    Some("input_json_delta") => {
                        let fragment = d["partial_json"].as_str().unwrap_or("");
                        if self.json_blocks.contains(&index) {
                            self.chunks.text(out, fragment);
                        } else if let Some(k) = self.chunks.tool_call(index) {
                            self.chunks.tool_call_args(out, k, fragment);
                        }
                    }
                    // thinking_delta, signature_delta, citations_delta: not exposed.
                    _ => {}
                }
            }
            "message_delta" => {
                if let Some(u) = v.get("usage") {
                    self.usage.get_or_insert_with(RawUsage::default).update(u);
                }
                if let Some(reason) = v.pointer("/delta/stop_reason").and_then(Value::as_str) {
                    self.finish_chunk(Some(reason), out);
                }
            }
            "message_stop" => {
                self.finish_chunk(None, out);
                out.push(
                    self.chunks
                        .usage(self.usage.unwrap_or_default().to_openai()),
                );
                self.done = true;
            }
            "error" => return Err(stream_error(v.get("error").unwrap_or(v))),
            // ping, content_block_stop, and event types added later.
            _ => {}
        }
        Ok(())
    }

    fn done(&self) -> bool {
        self.done
    }

    fn usage(&self) -> Option<Usage> {
        self.usage.map(RawUsage::usage)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::Anthropic;
    use super::*;
    use crate::gateway::providers::adapter::Adapter;
    use crate::gateway::providers::translation::test_support::{
        feed, strip_id_and_created as strip,
    };

    fn run(
        endpoint: Endpoint,
        text: &str,
        sizes: &[usize],
    ) -> (Vec<Value>, Result<(), StreamError>, Option<Usage>) {
        feed(
            Anthropic.stream(endpoint, "claude-sonnet-4-5").as_mut(),
            text.as_bytes(),
            sizes,
        )
    }

    const TOOL_STREAM: &str = concat!(
        "event: message_start\r\n",
        "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_01X\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude-sonnet-4-5\",\"stop_reason\":null,\"usage\":{\"input_tokens\":20,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":100,\"output_tokens\":1}}}\r\n\r\n",
        "event: content_block_start\n",
        "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
        "event: ping\n",
        "data: {\"type\": \"ping\"}\n\n",
        "event: content_block_delta\n",
        "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Checking ☁️ \"}}\n\n",
        "event: content_block_stop\n",
        "data: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
        "event: content_block_start\n",
        "data: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_01\",\"name\":\"get_weather\",\"input\":{}}}\n\n",
        "event: content_block_delta\n",
        "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"\"}}\n\n",
        "event: content_block_delta\n",
        "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"city\\\":\"}}\n\n",
        "event: content_block_delta\n",
        "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\" \\\"Oslo\\\"}\"}}\n\n",
        "event: content_block_stop\n",
        "data: {\"type\":\"content_block_stop\",\"index\":1}\n\n",
        "event: content_block_start\n",
        "data: {\"type\":\"content_block_start\",\"index\":2,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_02\",\"name\":\"get_time\",\"input\":{}}}\n\n",
        "event: content_block_delta\n",
        "data: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{}\"}}\n\n",
        "event: content_block_stop\n",
        "data: {\"type\":\"content_block_stop\",\"index\":2}\n\n",
        ": keep-alive\n\n",
        "event: message_delta\n",
        "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":30}}\n\n",
        "event: message_stop\n",
        "data: {\"type\":\"message_stop\"}\n\n",
    );

    fn tool_stream_expected() -> Vec<Value> {
        let chunk = |delta: Value, reason: Value| {
            json!({"object": "chat.completion.chunk", "model": "claude-sonnet-4-5",
                   "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": reason}]})
        };
        vec![
            chunk(json!({"role": "assistant", "content": ""}), Value::Null),
            chunk(json!({"content": "Checking ☁️ "}), Value::Null),
            chunk(
                json!({"tool_calls": [{"index": 0, "id": "toolu_01", "type": "function",
                "function": {"name": "get_weather", "arguments": ""}}]}),
                Value::Null,
            ),
            chunk(
                json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"city\":"}}]}),
                Value::Null,
            ),
            chunk(
                json!({"tool_calls": [{"index": 0, "function": {"arguments": " \"Oslo\"}"}}]}),
                Value::Null,
            ),
            chunk(
                json!({"tool_calls": [{"index": 1, "id": "toolu_02", "type": "function",
                "function": {"name": "get_time", "arguments": ""}}]}),
                Value::Null,
            ),
            chunk(
                json!({"tool_calls": [{"index": 1, "function": {"arguments": "{}"}}]}),
                Value::Null,
            ),
            chunk(json!({}), json!("tool_calls")),
            json!({"object": "chat.completion.chunk", "model": "claude-sonnet-4-5", "choices": [],
                "usage": {"prompt_tokens": 120, "completion_tokens": 30, "total_tokens": 150,
                    "prompt_tokens_details": {"cached_tokens": 100}, "completion_tokens_details": {"reasoning_tokens": 0}}}),
        ]
    }

    #[test]
    fn stream_with_tool_calls_survives_any_chunking() {
        let expected = tool_stream_expected();
        let usage = Usage {
            prompt_tokens: 120,
            completion_tokens: 30,
            cached_tokens: 100,
            reasoning_tokens: 0,
        };
        let patterns: Vec<Vec<usize>> = (1..=24)
            .map(|n| vec![n])
            .chain([
                vec![1, 7, 2, 64, 3, 5, 1, 13],
                vec![4096],
                vec![2, 1, 11, 97, 1],
            ])
            .collect();
        for sizes in patterns {
            let (chunks, result, got) = run(Endpoint::Chat, TOOL_STREAM, &sizes);
            assert_eq!(result, Ok(()), "sizes {sizes:?}");
            assert_eq!(strip(chunks, "msg_01X"), expected, "sizes {sizes:?}");
            assert_eq!(got, Some(usage));
        }
    }

    #[test]
    fn stream_json_tool_becomes_text_and_completions_stream_text_chunks() {
        let text = concat!(
            "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_2\",\"model\":\"m\",\"usage\":{\"input_tokens\":5,\"output_tokens\":1}}}\n\n",
            "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":\"json_response\",\"input\":{}}}\n\n",
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"answer\\\": 4}\"}}\n\n",
            "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\"},\"usage\":{\"output_tokens\":9}}\n\n",
            "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
        );
        let (chunks, result, _) = run(Endpoint::Chat, text, &[5]);
        result.unwrap();
        let deltas: Vec<(Value, Value)> = chunks[..3]
            .iter()
            .map(|c| {
                (
                    c["choices"][0]["delta"].clone(),
                    c["choices"][0]["finish_reason"].clone(),
                )
            })
            .collect();
        assert_eq!(
            deltas,
            vec![
                (json!({"role": "assistant", "content": ""}), Value::Null),
                (json!({"content": "{\"answer\": 4}"}), Value::Null),
                (json!({}), json!("stop")),
            ]
        );
        let completion = concat!(
            "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_4\",\"model\":\"m\",\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\n",
            "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\" a time\"}}\n\n",
            "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"max_tokens\"},\"usage\":{\"output_tokens\":16}}\n\n",
            "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
        );
        let (chunks, result, _) = run(Endpoint::Completions, completion, &[1]);
        result.unwrap();
        let choice = |text: &str, reason: Value| {
            json!({"object": "text_completion", "model": "m",
                   "choices": [{"text": text, "index": 0, "logprobs": null, "finish_reason": reason}]})
        };
        let chunks = strip(chunks, "msg_4");
        assert_eq!(
            chunks[..2],
            [choice(" a time", Value::Null), choice("", json!("length"))]
        );
        assert_eq!(chunks[2]["choices"], json!([]));
        assert_eq!(chunks[2]["usage"]["completion_tokens"], 16);
        assert_eq!(chunks.len(), 3);
    }

    #[test]
    fn stream_error_event_and_early_eof_fail() {
        let start = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_3\",\"model\":\"m\",\"usage\":{\"input_tokens\":4,\"output_tokens\":1}}}\n\n\
                     event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n";
        let overloaded = format!(
            "{start}event: error\ndata: {{\"type\": \"error\", \"error\": {{\"type\": \"overloaded_error\", \"message\": \"Overloaded\"}}}}\n\n"
        );
        for sizes in [vec![1], vec![3, 50], vec![10_000]] {
            let (chunks, result, usage) = run(Endpoint::Chat, &overloaded, &sizes);
            assert_eq!(chunks.len(), 2);
            assert_eq!(
                result,
                Err(StreamError {
                    message: "Overloaded".into(),
                    kind: "server_error".into()
                })
            );
            assert_eq!(usage.map(|u| u.prompt_tokens), Some(4));
        }
        let limited = format!(
            "{start}event: error\ndata: {{\"type\":\"error\",\"error\":{{\"type\":\"rate_limit_error\",\"message\":\"Slow down\"}}}}\n\n"
        );
        let (_, result, _) = run(Endpoint::Chat, &limited, &[7]);
        assert_eq!(result.unwrap_err().kind, "rate_limit_error");
        let (chunks, result, _) = run(Endpoint::Chat, start, &[2]);
        assert_eq!(chunks.len(), 2);
        assert_eq!(
            result.unwrap_err().message,
            "Anthropic closed the stream before message_stop"
        );
        let (_, result, _) = run(Endpoint::Chat, "data: {not json\n\n", &[4]);
        assert!(result
            .unwrap_err()
            .message
            .starts_with("Anthropic sent a malformed stream event"));
    }
}
