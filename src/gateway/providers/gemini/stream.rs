//! `streamGenerateContent?alt=sse` → OpenAI chunks (providers.md 4.4). Each event is a whole
//! `GenerateContentResponse` holding only new parts; `usageMetadata` is cumulative; the stream
//! ends at EOF after an event with a `finishReason`.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::error_status;
use super::response::{candidate_index, finish, split_parts, tool_call, usage};
use crate::gateway::providers::adapter::{
    normalised_error, Endpoint, StreamError, StreamTranslator, Usage,
};
use crate::gateway::providers::translation::{new_id, ChunkWriter, Form};
use crate::gateway::sse::{Decoder, Event};

#[derive(Default)]
struct Choice {
    started: bool,
    calls: usize,
    finished: bool,
}

/// Several candidates stream side by side, so the per-choice bookkeeping is kept here; the
/// writer only shapes the chunks.
pub struct Translator {
    chat: bool,
    decoder: Decoder,
    /// The id is the first response's (empty until then).
    chunks: ChunkWriter,
    choices: BTreeMap<u64, Choice>,
    usage: Option<Usage>,
}

impl Translator {
    pub fn new(endpoint: Endpoint, model: &str) -> Translator {
        let form = Form::of(endpoint);
        Translator {
            chat: form == Form::Chat,
            decoder: Decoder::default(),
            chunks: ChunkWriter::new(form, String::new(), model),
            choices: BTreeMap::new(),
            usage: None,
        }
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
        if self.chunks.id.is_empty() {
            self.chunks.id = r
                .get("responseId")
                .and_then(Value::as_str)
                .map_or_else(|| new_id("chatcmpl-"), |id| format!("chatcmpl-{id}"));
            if let Some(m) = r.get("modelVersion").and_then(Value::as_str) {
                self.chunks.model = m.to_string();
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
            out.push(self.chunks.choice(index, delta, reason));
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
        let truncated = || StreamError {
            message: "Gemini stream ended before a finishReason (truncated)".into(),
            kind: "server_error".into(),
        };
        // A half-sent last event is a truncation too.
        let malformed = |e: StreamError| {
            if e.message.starts_with("malformed") {
                truncated()
            } else {
                e
            }
        };
        self.events(events, out).map_err(malformed)?;
        if !self.choices.values().any(|c| c.finished) {
            return Err(truncated());
        }
        if let Some(u) = self.usage {
            out.push(self.chunks.usage(u.to_openai()));
        }
        Ok(())
    }

    fn usage(&self) -> Option<Usage> {
        self.usage
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::providers::translation::test_support::feed;

    /// A Vertex-style stream (CRLF line ends): text in two events, then a function call with
    /// the finish reason and the final cumulative usage.
    const STREAM: &str = concat!(
        "data: {\"candidates\": [{\"content\": {\"role\": \"model\",\"parts\": [{\"text\": \"Let me\",\"thought\":true}]}}],",
        "\"usageMetadata\": {\"promptTokenCount\": 9,\"totalTokenCount\": 9},\"modelVersion\": \"gemini-2.5-flash\",\"responseId\": \"r1\"}\r\n\r\n",
        "data: {\"candidates\": [{\"content\": {\"role\": \"model\",\"parts\": [{\"text\": \"Héllo 🌍\"}]}}],",
        "\"usageMetadata\": {\"promptTokenCount\": 9,\"candidatesTokenCount\": 2,\"totalTokenCount\": 11},\"modelVersion\": \"gemini-2.5-flash\",\"responseId\": \"r1\"}\r\n\r\n",
        "data: {\"candidates\": [{\"content\": {\"role\": \"model\",\"parts\": [{\"text\": \" there\"},",
        "{\"functionCall\": {\"name\": \"get_weather\",\"args\": {\"city\": \"Oslo\"}}},",
        "{\"functionCall\": {\"name\": \"get_time\",\"args\": {}}}]},\"finishReason\": \"STOP\"}],",
        "\"usageMetadata\": {\"promptTokenCount\": 9,\"candidatesTokenCount\": 12,\"thoughtsTokenCount\": 5,\"totalTokenCount\": 26},",
        "\"modelVersion\": \"gemini-2.5-flash\",\"responseId\": \"r1\"}\r\n\r\n",
    );

    fn run(
        endpoint: Endpoint,
        text: &str,
        size: usize,
    ) -> (Result<(), StreamError>, Vec<Value>, Option<Usage>) {
        let mut t = Translator::new(endpoint, "gemini-2.5-flash");
        let (chunks, result, usage) = feed(&mut t, text.as_bytes(), &[size]);
        (result, chunks, usage)
    }

    #[test]
    fn translates_a_stream_under_any_chunking() {
        let mut first: Option<Vec<Value>> = None;
        for size in [1, 5, STREAM.len()] {
            let (result, chunks, usage) = run(Endpoint::Chat, STREAM, size);
            result.unwrap();
            assert!(chunks
                .iter()
                .all(|c| c["id"] == "chatcmpl-r1" && c["object"] == "chat.completion.chunk"));
            assert!(chunks.iter().all(|c| c["created"] == chunks[0]["created"]));
            let deltas: Vec<&Value> = chunks
                .iter()
                .filter_map(|c| c["choices"].get(0))
                .map(|c| &c["delta"])
                .collect();
            assert_eq!(
                deltas[0],
                &json!({"role": "assistant", "content": "Héllo 🌍"})
            );
            assert_eq!(deltas[1]["content"], " there");
            let calls = deltas[1]["tool_calls"].as_array().unwrap();
            assert_eq!(calls[0]["index"], 0);
            assert_eq!(
                calls[0]["function"],
                json!({"name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"})
            );
            assert_eq!(calls[1]["index"], 1);
            assert!(calls[1]["id"].as_str().unwrap().starts_with("call_"));
            assert_eq!(deltas[2], &json!({}));
            let last_choice = &chunks[chunks.len() - 2]["choices"][0];
            assert_eq!(last_choice["finish_reason"], "tool_calls");
            let usage_chunk = chunks.last().unwrap();
            assert_eq!(usage_chunk["choices"], json!([]));
            assert_eq!(usage_chunk["usage"]["prompt_tokens"], 9);
            assert_eq!(usage_chunk["usage"]["completion_tokens"], 17);
            assert_eq!(
                usage_chunk["usage"]["completion_tokens_details"]["reasoning_tokens"],
                5
            );
            assert_eq!(usage.unwrap().completion_tokens, 17);
            assert_eq!(chunks.len(), 4);
            // Ids are random per stream; everything else is identical whatever the chunking.
            let strip = |cs: Vec<Value>| -> Vec<Value> {
                cs.into_iter()
                    .map(|mut c| {
                        c["created"] = 0.into();
                        if let Some(calls) = c
                            .pointer_mut("/choices/0/delta/tool_calls")
                            .and_then(Value::as_array_mut)
                        {
                            calls.iter_mut().for_each(|call| call["id"] = "x".into());
                        }
                        c
                    })
                    .collect()
            };
            let chunks = strip(chunks);
            match &first {
                None => first = Some(chunks),
                Some(f) => assert_eq!(f, &chunks, "chunk size {size}"),
            }
        }
    }

    #[test]
    fn plain_text_stream_and_legacy_completions() {
        let text = "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Hi\"}]},\"finishReason\":\"MAX_TOKENS\"}],\"usageMetadata\":{\"promptTokenCount\":1,\"candidatesTokenCount\":1}}\n\n";
        let (result, chunks, _) = run(Endpoint::Chat, text, 7);
        result.unwrap();
        assert_eq!(chunks[1]["choices"][0]["finish_reason"], "length");
        assert!(chunks[0]["id"].as_str().unwrap().starts_with("chatcmpl-"));
        let (result, chunks, _) = run(Endpoint::Completions, text, 7);
        result.unwrap();
        assert_eq!(chunks[0]["object"], "text_completion");
        assert_eq!(
            chunks[0]["choices"][0],
            json!({"text": "Hi", "index": 0, "logprobs": null, "finish_reason": null})
        );
        assert_eq!(chunks[1]["choices"][0]["finish_reason"], "length");
        assert_eq!(chunks[2]["choices"], json!([]));
    }

    #[test]
    fn blocked_prompt_finishes_with_content_filter() {
        let text = "data: {\"promptFeedback\":{\"blockReason\":\"PROHIBITED_CONTENT\"},\"usageMetadata\":{\"promptTokenCount\":4}}\r\n\r\n";
        let (result, chunks, _) = run(Endpoint::Chat, text, 3);
        result.unwrap();
        assert_eq!(
            chunks[0]["choices"][0]["delta"],
            json!({"role": "assistant", "content": ""})
        );
        assert_eq!(chunks[1]["choices"][0]["finish_reason"], "content_filter");
    }

    #[test]
    fn error_event_ends_the_stream() {
        let text = concat!(
            "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Hi\"}]}}]}\r\n\r\n",
            "data: {\"error\":{\"code\":429,\"message\":\"Resource has been exhausted\",\"status\":\"RESOURCE_EXHAUSTED\"}}\r\n\r\n",
        );
        let (result, chunks, _) = run(Endpoint::Chat, text, 5);
        let err = result.unwrap_err();
        assert_eq!(err.kind, "rate_limit_error");
        assert_eq!(err.message, "Resource has been exhausted");
        assert_eq!(chunks.len(), 1);
        // Vertex's array-wrapped form.
        let text = "event: error\ndata: [{\"error\":{\"code\":503,\"message\":\"overloaded\",\"status\":\"UNAVAILABLE\"}}]\n\n";
        assert_eq!(
            run(Endpoint::Chat, text, 4).0.unwrap_err().kind,
            "server_error"
        );
        let text = "data: {not json\n\n";
        assert!(run(Endpoint::Chat, text, 4).0.is_err());
    }

    #[test]
    fn truncated_stream_is_an_error() {
        let cut = &STREAM[..STREAM.find("\"finishReason\"").unwrap()];
        let (result, chunks, usage) = run(Endpoint::Chat, cut, 5);
        assert!(result.unwrap_err().message.contains("truncated"));
        assert_eq!(chunks.len(), 1);
        assert_eq!(usage.unwrap().completion_tokens, 2);
        let (result, chunks, _) = run(Endpoint::Chat, "", 1);
        assert!(result.is_err() && chunks.is_empty());
    }
}
