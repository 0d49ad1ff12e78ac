//! ConverseStream's event-stream messages as OpenAI chunks (providers.md section 5.4).

use serde_json::{json, Value};

use super::super::adapter::{finish_reason, StreamError, StreamTranslator, Usage};
use super::super::translation::{ChunkWriter, Form};
use super::eventstream::{Decoder, Message};

pub struct Stream {
    /// Tool calls are keyed by their content-block index.
    chunks: ChunkWriter,
    decoder: Decoder,
    messages: Vec<Message>,
    usage: Option<Usage>,
}

fn server_error(message: impl Into<String>) -> StreamError {
    StreamError {
        message: message.into(),
        kind: "server_error".into(),
    }
}

impl Stream {
    /// `legacy`: legacy completions, streamed as `text_completion` chunks.
    pub fn new(legacy: bool, model: &str) -> Self {
        let form = if legacy { Form::Text } else { Form::Chat };
        Stream {
            chunks: ChunkWriter::new(form, super::new_id(form), model),
            decoder: Decoder::default(),
            messages: Vec::new(),
            usage: None,
        }
    }

    fn handle(&mut self, message: &Message, out: &mut Vec<String>) -> Result<(), StreamError> {
        let payload: Value = if message.payload.is_empty() {
            json!({})
        } else {
            serde_json::from_slice(&message.payload).map_err(|e| {
                server_error(format!("bedrock sent an unreadable stream event: {e}"))
            })?
        };
        match message.header(":message-type").unwrap_or("event") {
            "event" => {}
            "exception" => return Err(exception(message, &payload)),
            other => {
                let code = message.header(":error-code").unwrap_or(other);
                let text = message
                    .header(":error-message")
                    .unwrap_or("the stream failed");
                return Err(server_error(format!("{code}: {text}")));
            }
        }
        let block = payload
            .get("contentBlockIndex")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        match message.header(":event-type").unwrap_or("") {
            "messageStart" => self.chunks.start(out),
            "contentBlockStart" => {
                if let Some(tool) = payload.pointer("/start/toolUse") {
                    let id = tool.get("toolUseId").cloned().unwrap_or(json!(""));
                    let name = tool.get("name").cloned().unwrap_or(json!(""));
                    self.chunks.tool_call_start(out, block, id, name, "");
                }
            }
            "contentBlockDelta" => {
                let delta = payload.get("delta").unwrap_or(&Value::Null);
                if let Some(text) = delta.get("text").and_then(Value::as_str) {
                    self.chunks.text(out, text);
                } else if let Some(input) = delta.pointer("/toolUse/input").and_then(Value::as_str)
                {
                    let ordinal = self.chunks.tool_call(block).ok_or_else(|| {
                        server_error(format!(
                            "bedrock sent tool input for block {block}, which started no tool call"
                        ))
                    })?;
                    self.chunks.tool_call_args(out, ordinal, input);
                }
                // Reasoning deltas are not forwarded.
            }
            "messageStop" => {
                let reason = payload
                    .get("stopReason")
                    .and_then(Value::as_str)
                    .unwrap_or("end_turn");
                if matches!(reason, "malformed_model_output" | "malformed_tool_use") {
                    return Err(server_error(format!(
                        "bedrock stopped the answer: {reason}"
                    )));
                }
                self.chunks.finish(out, finish_reason(reason));
            }
            "metadata" => {
                let usage = super::usage(payload.get("usage").unwrap_or(&Value::Null));
                self.usage = Some(usage);
                out.push(self.chunks.usage(usage.to_openai()));
            }
            // contentBlockStop and anything newer carry nothing to forward.
            _ => {}
        }
        Ok(())
    }
}

/// An exception frame as the stream's error, typed as OpenAI would type it.
fn exception(message: &Message, payload: &Value) -> StreamError {
    let kind = message.header(":exception-type").unwrap_or("exception");
    let text = payload
        .get("message")
        .or_else(|| payload.get("Message"))
        .and_then(Value::as_str)
        .unwrap_or("the stream failed");
    let openai_kind = match kind {
        "throttlingException" | "modelNotReadyException" => "rate_limit_error",
        "validationException" => "invalid_request_error",
        _ => "server_error",
    };
    StreamError {
        message: format!("{kind}: {text}"),
        kind: openai_kind.into(),
    }
}

impl StreamTranslator for Stream {
    fn feed(&mut self, bytes: &[u8], out: &mut Vec<String>) -> Result<(), StreamError> {
        let mut messages = std::mem::take(&mut self.messages);
        let decoded = self
            .decoder
            .feed(bytes, &mut messages)
            .map_err(|e| server_error(format!("bedrock sent a bad stream frame: {e}")));
        for message in messages.drain(..) {
            self.handle(&message, out)?;
        }
        self.messages = messages;
        decoded
    }

    fn finish(&mut self, _out: &mut Vec<String>) -> Result<(), StreamError> {
        if self.decoder.pending() > 0 {
            return Err(server_error(format!(
                "bedrock closed the stream mid-frame ({} bytes left over)",
                self.decoder.pending()
            )));
        }
        // `metadata` normally follows `messageStop`; without it the answer is whole but
        // its usage unknown (the gateway estimates it).
        if !self.chunks.finished() {
            return Err(server_error("bedrock closed the stream before it finished"));
        }
        Ok(())
    }

    fn usage(&self) -> Option<Usage> {
        self.usage
    }
}

#[cfg(test)]
mod tests {
    use super::super::eventstream::tests::encode;
    use super::*;
    use crate::gateway::providers::translation::test_support::feed;

    fn event(kind: &str, payload: Value) -> Vec<u8> {
        encode(
            &[
                (":event-type", kind),
                (":content-type", "application/json"),
                (":message-type", "event"),
            ],
            payload.to_string().as_bytes(),
        )
    }

    fn conversation() -> Vec<u8> {
        [
            event("messageStart", json!({"role": "assistant"})),
            event("contentBlockDelta", json!({"contentBlockIndex": 0, "delta": {"text": "Let me check "}})),
            event("contentBlockDelta", json!({"contentBlockIndex": 0, "delta": {"text": "Oslo ☀️"}})),
            event("contentBlockStop", json!({"contentBlockIndex": 0})),
            event("contentBlockStart", json!({"contentBlockIndex": 1, "start": {"toolUse": {"toolUseId": "tu_1", "name": "get_weather"}}})),
            event("contentBlockDelta", json!({"contentBlockIndex": 1, "delta": {"toolUse": {"input": "{\"city\":"}}})),
            event("contentBlockDelta", json!({"contentBlockIndex": 1, "delta": {"toolUse": {"input": "\"Oslo\"}"}}})),
            event("contentBlockStop", json!({"contentBlockIndex": 1})),
            event("contentBlockStart", json!({"contentBlockIndex": 2, "start": {"toolUse": {"toolUseId": "tu_2", "name": "get_time"}}})),
            event("contentBlockDelta", json!({"contentBlockIndex": 2, "delta": {"toolUse": {"input": "{}"}}})),
            event("contentBlockStop", json!({"contentBlockIndex": 2})),
            event("messageStop", json!({"stopReason": "tool_use"})),
            event("metadata", json!({"usage": {"inputTokens": 10, "outputTokens": 7, "totalTokens": 47, "cacheReadInputTokens": 30, "cacheWriteInputTokens": 0}, "metrics": {"latencyMs": 5}})),
        ]
        .concat()
    }

    fn run(stream: &mut Stream, bytes: &[u8], size: usize) -> Result<Vec<Value>, StreamError> {
        let (chunks, result, _) = feed(stream, bytes, &[size]);
        result.map(|()| chunks)
    }

    #[test]
    fn text_and_tool_calls_in_any_split() {
        let bytes = conversation();
        let mut first: Option<Vec<Value>> = None;
        for size in [1, 7, 64, bytes.len()] {
            let mut s = Stream::new(false, "claude");
            let chunks = run(&mut s, &bytes, size).unwrap();
            let without_ids: Vec<Value> = chunks.iter().map(|c| c["choices"].clone()).collect();
            match &first {
                Some(f) => assert_eq!(f, &without_ids, "split {size}"),
                None => first = Some(without_ids),
            }
            assert!(chunks.iter().all(|c| c["id"] == chunks[0]["id"]
                && c["created"] == chunks[0]["created"]
                && c["object"] == "chat.completion.chunk"
                && c["model"] == "claude"));
            assert_eq!(
                s.usage(),
                Some(Usage {
                    prompt_tokens: 40,
                    completion_tokens: 7,
                    cached_tokens: 30,
                    reasoning_tokens: 0
                })
            );
            let deltas: Vec<&Value> = chunks
                .iter()
                .filter_map(|c| c["choices"].get(0))
                .map(|c| &c["delta"])
                .collect();
            assert_eq!(deltas[0], &json!({"role": "assistant", "content": ""}));
            assert_eq!(deltas[1], &json!({"content": "Let me check "}));
            assert_eq!(deltas[2], &json!({"content": "Oslo ☀️"}));
            assert_eq!(
                deltas[3],
                &json!({"tool_calls": [{"index": 0, "id": "tu_1", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]})
            );
            assert_eq!(
                deltas[4],
                &json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"city\":"}}]})
            );
            assert_eq!(
                deltas[5],
                &json!({"tool_calls": [{"index": 0, "function": {"arguments": "\"Oslo\"}"}}]})
            );
            assert_eq!(deltas[6]["tool_calls"][0]["index"], 1);
            assert_eq!(deltas[6]["tool_calls"][0]["id"], "tu_2");
            assert_eq!(
                deltas[7],
                &json!({"tool_calls": [{"index": 1, "function": {"arguments": "{}"}}]})
            );
            let n = chunks.len();
            assert_eq!(n, 10);
            assert_eq!(chunks[n - 2]["choices"][0]["finish_reason"], "tool_calls");
            assert!(chunks[..n - 2]
                .iter()
                .all(|c| c["choices"][0]["finish_reason"].is_null()));
            assert_eq!(chunks[n - 1]["choices"], json!([]));
            assert_eq!(chunks[n - 1]["usage"]["prompt_tokens"], 40);
            assert_eq!(chunks[n - 1]["usage"]["total_tokens"], 47);
            assert_eq!(
                chunks[n - 1]["usage"]["prompt_tokens_details"]["cached_tokens"],
                30
            );
        }
    }

    #[test]
    fn legacy_completions_stream_text_completion_chunks() {
        let bytes = [
            event("messageStart", json!({"role": "assistant"})),
            event(
                "contentBlockDelta",
                json!({"contentBlockIndex": 0, "delta": {"text": "Hi"}}),
            ),
            event("messageStop", json!({"stopReason": "max_tokens"})),
            event(
                "metadata",
                json!({"usage": {"inputTokens": 2, "outputTokens": 1}}),
            ),
        ]
        .concat();
        let chunks = run(&mut Stream::new(true, "m"), &bytes, 7).unwrap();
        assert_eq!(chunks.len(), 3);
        assert!(chunks.iter().all(|c| c["object"] == "text_completion"));
        assert_eq!(chunks[0]["choices"][0]["text"], "Hi");
        assert_eq!(chunks[1]["choices"][0]["finish_reason"], "length");
        assert_eq!(chunks[2]["usage"]["completion_tokens"], 1);
    }

    #[test]
    fn corrupted_checksum_is_an_error() {
        let mut bytes = conversation();
        let at = bytes.len() / 2;
        bytes[at] ^= 0x40;
        let err = run(&mut Stream::new(false, "m"), &bytes, 64).unwrap_err();
        assert!(err.message.contains("checksum"), "{}", err.message);
        assert_eq!(err.kind, "server_error");
    }

    #[test]
    fn exception_frame_is_an_error() {
        let mut bytes = event("messageStart", json!({"role": "assistant"}));
        bytes.extend(encode(
            &[
                (":exception-type", "throttlingException"),
                (":content-type", "application/json"),
                (":message-type", "exception"),
            ],
            br#"{"message":"Too many tokens, please wait before trying again."}"#,
        ));
        let mut s = Stream::new(false, "m");
        let mut out = Vec::new();
        let err = s.feed(&bytes, &mut out).unwrap_err();
        assert_eq!(err.kind, "rate_limit_error");
        assert_eq!(
            err.message,
            "throttlingException: Too many tokens, please wait before trying again."
        );
        assert_eq!(
            out.len(),
            1,
            "the role chunk before the exception still goes out"
        );

        let malformed = event("messageStop", json!({"stopReason": "malformed_tool_use"}));
        assert!(Stream::new(false, "m").feed(&malformed, &mut out).is_err());
    }

    #[test]
    fn truncated_streams_fail_at_finish() {
        let bytes = conversation();
        // Cut before messageStop: the answer never finished.
        let stop_at = bytes.windows(11).position(|w| w == b"messageStop").unwrap();
        let mut s = Stream::new(false, "m");
        let mut out = Vec::new();
        s.feed(&bytes[..stop_at - 40], &mut out).unwrap();
        assert!(s.finish(&mut out).is_err());
        // Cut mid-frame.
        let mut s = Stream::new(false, "m");
        s.feed(&bytes[..bytes.len() - 3], &mut out).unwrap();
        assert!(s
            .finish(&mut out)
            .unwrap_err()
            .message
            .contains("mid-frame"));
        // messageStop then EOF without metadata: whole answer, usage unknown.
        let metadata = event(
            "metadata",
            json!({"usage": {"inputTokens": 10, "outputTokens": 7, "totalTokens": 47, "cacheReadInputTokens": 30, "cacheWriteInputTokens": 0}, "metrics": {"latencyMs": 5}}),
        );
        assert!(bytes.ends_with(&metadata));
        let without_metadata = &bytes[..bytes.len() - metadata.len()];
        let mut s = Stream::new(false, "m");
        let chunks = run(&mut s, without_metadata, 64).unwrap();
        assert_eq!(
            chunks.last().unwrap()["choices"][0]["finish_reason"],
            "tool_calls"
        );
        assert_eq!(s.usage(), None);
    }
}
