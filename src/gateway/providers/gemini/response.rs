//! Gemini `GenerateContentResponse` → OpenAI chat / text completion (providers.md 4.3), and
//! embeddings answers (4.6, 4.7).

use serde_json::{json, Value};

use crate::gateway::providers::adapter::{finish_reason, AdapterError, Usage};
use crate::gateway::providers::translation::{
    embeddings_list, finish_with_calls, new_id, Answer, Choice, Form,
};

/// `usageMetadata` → usage: thoughts count as completion (and reasoning) tokens, tool-use
/// prompt tokens as prompt tokens; cached ⊂ prompt already.
pub fn usage(meta: &Value) -> Usage {
    let n = |k: &str| meta.get(k).and_then(Value::as_u64).unwrap_or(0);
    Usage {
        prompt_tokens: n("promptTokenCount") + n("toolUsePromptTokenCount"),
        completion_tokens: n("candidatesTokenCount") + n("thoughtsTokenCount"),
        cached_tokens: n("cachedContentTokenCount"),
        reasoning_tokens: n("thoughtsTokenCount"),
    }
}

/// A candidate's position: proto3 JSON omits `index` when it is 0.
pub fn candidate_index(c: &Value, position: usize) -> u64 {
    c.get("index")
        .and_then(Value::as_u64)
        .unwrap_or(position as u64)
}

/// One function call as an OpenAI `tool_calls[]` entry (without a stream `index`).
pub fn tool_call(part: &Value) -> Value {
    let call = &part["functionCall"];
    let id = call
        .get("id")
        .and_then(Value::as_str)
        .map_or_else(|| new_id("call_"), String::from);
    let args = call.get("args").cloned().unwrap_or_else(|| json!({}));
    let name = call.get("name").and_then(Value::as_str).unwrap_or("");
    let mut call = crate::gateway::providers::translation::tool_call(id, name, args.to_string());
    // Gemini 3 wants it back on the next turn (Portkey's extension field).
    if let Some(sig) = part.get("thoughtSignature") {
        call["function"]["thought_signature"] = sig.clone();
    }
    call
}

/// The visible text of a candidate's parts (thought parts skipped) and its function calls.
pub fn split_parts(candidate: &Value) -> (String, Vec<&Value>) {
    let mut text = String::new();
    let mut calls = Vec::new();
    let parts = candidate
        .pointer("/content/parts")
        .and_then(Value::as_array);
    for part in parts.into_iter().flatten() {
        if part.get("functionCall").is_some() {
            calls.push(part);
        } else if part.get("thought").and_then(Value::as_bool) != Some(true) {
            if let Some(t) = part.get("text").and_then(Value::as_str) {
                text.push_str(t);
            }
        }
    }
    (text, calls)
}

/// The OpenAI finish reason for a Gemini one, given whether the choice made tool calls.
pub fn finish(upstream: &str, has_calls: bool) -> &'static str {
    finish_with_calls(finish_reason(upstream), has_calls)
}

fn parse(body: &[u8]) -> Result<Value, AdapterError> {
    serde_json::from_slice(body)
        .map_err(|e| AdapterError(format!("Gemini answered with malformed JSON: {e}")))
}

/// Choices `(index, text, calls, finish_reason)`; a prompt blocked before any candidate gives
/// one empty `content_filter` choice.
fn choices(body: &Value) -> Vec<Choice> {
    let candidates = body.get("candidates").and_then(Value::as_array);
    let Some(candidates) = candidates.filter(|c| !c.is_empty()) else {
        let blocked = body.pointer("/promptFeedback/blockReason").is_some();
        return vec![Choice {
            index: 0,
            text: String::new(),
            tool_calls: Vec::new(),
            finish_reason: if blocked { "content_filter" } else { "stop" },
        }];
    };
    candidates
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let (text, calls) = split_parts(c);
            let reason = c
                .get("finishReason")
                .and_then(Value::as_str)
                .unwrap_or("STOP");
            Choice {
                index: candidate_index(c, i),
                text,
                finish_reason: finish(reason, !calls.is_empty()),
                tool_calls: calls.into_iter().map(tool_call).collect(),
            }
        })
        .collect()
}

/// A whole `GenerateContentResponse`, as chat or text completion.
pub fn answer(body: &[u8], model: &str, form: Form) -> Result<Value, AdapterError> {
    let body = parse(body)?;
    let answer = Answer {
        id: body
            .get("responseId")
            .and_then(Value::as_str)
            .map_or_else(|| new_id("chatcmpl-"), |r| format!("chatcmpl-{r}")),
        model: body
            .get("modelVersion")
            .and_then(Value::as_str)
            .unwrap_or(model)
            .to_string(),
        choices: choices(&body),
        usage: usage(body.get("usageMetadata").unwrap_or(&Value::Null)).to_openai(),
    };
    Ok(answer.into_openai(form))
}

/// `batchEmbedContents` (`embeddings[].values`, no usage: reported as 0) or Vertex `predict`
/// (`predictions[].embeddings.values`, usage from `statistics.token_count`).
pub fn embeddings(body: &[u8], model: &str) -> Result<Value, AdapterError> {
    let body = parse(body)?;
    let mut prompt_tokens = 0;
    let vectors: Vec<Value> = if let Some(list) = body.get("embeddings").and_then(Value::as_array) {
        list.iter()
            .map(|e| e.get("values").cloned().unwrap_or(json!([])))
            .collect()
    } else if let Some(list) = body.get("predictions").and_then(Value::as_array) {
        list.iter()
            .map(|p| {
                let e = &p["embeddings"];
                prompt_tokens += e
                    .pointer("/statistics/token_count")
                    .and_then(Value::as_f64)
                    .unwrap_or(0.0) as u64;
                e.get("values").cloned().unwrap_or(json!([]))
            })
            .collect()
    } else if let Some(v) = body.pointer("/embedding/values") {
        vec![v.clone()]
    } else {
        return Err(AdapterError(
            "Gemini's embeddings answer has no `embeddings`".into(),
        ));
    };
    Ok(embeddings_list(vectors, model, prompt_tokens))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chat(body: &[u8], model: &str) -> Result<Value, AdapterError> {
        answer(body, model, Form::Chat)
    }

    fn completion(body: &[u8], model: &str) -> Result<Value, AdapterError> {
        answer(body, model, Form::Text)
    }

    #[test]
    fn maps_text_function_call_and_usage_with_thoughts() {
        let body = json!({
            "candidates": [{
                "content": {"role": "model", "parts": [
                    {"text": "Let me think", "thought": true},
                    {"text": "Checking."},
                    {"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}},
                     "thoughtSignature": "c2ln"}
                ]},
                "finishReason": "STOP"
            }],
            "usageMetadata": {"promptTokenCount": 120, "cachedContentTokenCount": 100,
                              "candidatesTokenCount": 30, "thoughtsTokenCount": 50, "totalTokenCount": 200},
            "modelVersion": "gemini-2.5-flash",
            "responseId": "AdVRa"
        });
        let out = chat(body.to_string().as_bytes(), "gemini-2.5-flash").unwrap();
        assert_eq!(out["id"], "chatcmpl-AdVRa");
        assert_eq!(out["object"], "chat.completion");
        assert_eq!(out["model"], "gemini-2.5-flash");
        let choice = &out["choices"][0];
        assert_eq!(choice["index"], 0);
        assert_eq!(choice["finish_reason"], "tool_calls");
        assert_eq!(choice["message"]["content"], "Checking.");
        let call = &choice["message"]["tool_calls"][0];
        assert!(call["id"].as_str().unwrap().starts_with("call_"));
        assert_eq!(call["id"].as_str().unwrap().len(), 29);
        assert_eq!(call["type"], "function");
        assert_eq!(call["function"]["name"], "get_weather");
        assert_eq!(call["function"]["arguments"], r#"{"city":"Oslo"}"#);
        assert_eq!(call["function"]["thought_signature"], "c2ln");
        assert_eq!(
            out["usage"],
            json!({"prompt_tokens": 120, "completion_tokens": 80, "total_tokens": 200,
                   "prompt_tokens_details": {"cached_tokens": 100},
                   "completion_tokens_details": {"reasoning_tokens": 50}})
        );
    }

    #[test]
    fn several_candidates_and_finish_reasons() {
        let body = json!({"candidates": [
            {"content": {"parts": [{"text": "a"}]}, "finishReason": "MAX_TOKENS"},
            {"content": {"parts": [{"text": "b"}]}, "finishReason": "SAFETY", "index": 1}
        ], "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 2}});
        let out = chat(body.to_string().as_bytes(), "gemini-2.5-pro").unwrap();
        assert_eq!(out["model"], "gemini-2.5-pro");
        assert!(out["id"].as_str().unwrap().starts_with("chatcmpl-"));
        assert_eq!(out["choices"][0]["finish_reason"], "length");
        assert_eq!(out["choices"][1]["index"], 1);
        assert_eq!(out["choices"][1]["message"]["content"], "b");
        assert_eq!(out["choices"][1]["finish_reason"], "content_filter");
        assert!(out["choices"][0]["message"].get("tool_calls").is_none());
    }

    #[test]
    fn blocked_prompt_is_an_empty_content_filter_choice() {
        let body = json!({"promptFeedback": {"blockReason": "SAFETY", "safetyRatings": []},
                          "usageMetadata": {"promptTokenCount": 7, "totalTokenCount": 7}});
        let out = chat(body.to_string().as_bytes(), "gemini-2.5-flash").unwrap();
        assert_eq!(out["choices"][0]["finish_reason"], "content_filter");
        assert_eq!(out["choices"][0]["message"]["content"], "");
        assert_eq!(out["usage"]["prompt_tokens"], 7);
    }

    #[test]
    fn legacy_completion_shape() {
        let body = json!({"candidates": [{"content": {"parts": [{"text": "Hi"}]}, "finishReason": "STOP"}]});
        let out = completion(body.to_string().as_bytes(), "gemini-2.5-flash").unwrap();
        assert_eq!(out["object"], "text_completion");
        assert_eq!(
            out["choices"][0],
            json!({"text": "Hi", "index": 0, "logprobs": null, "finish_reason": "stop"})
        );
        assert!(chat(b"not json", "m").is_err());
    }

    #[test]
    fn embeddings_from_batch_and_vertex_predict() {
        let batch = json!({"embeddings": [{"values": [0.1, 0.2]}, {"values": [0.3, 0.4]}]});
        let out = embeddings(batch.to_string().as_bytes(), "gemini-embedding-001").unwrap();
        assert_eq!(
            out,
            json!({"object": "list", "data": [
                {"object": "embedding", "index": 0, "embedding": [0.1, 0.2]},
                {"object": "embedding", "index": 1, "embedding": [0.3, 0.4]}],
                "model": "gemini-embedding-001", "usage": {"prompt_tokens": 0, "total_tokens": 0}})
        );
        let vertex = json!({"predictions": [
            {"embeddings": {"values": [1.0], "statistics": {"token_count": 5, "truncated": false}}},
            {"embeddings": {"values": [2.0], "statistics": {"token_count": 4.0, "truncated": false}}}]});
        let out = embeddings(vertex.to_string().as_bytes(), "text-embedding-005").unwrap();
        assert_eq!(out["data"][1]["embedding"], json!([2.0]));
        assert_eq!(out["usage"], json!({"prompt_tokens": 9, "total_tokens": 9}));
    }
}
