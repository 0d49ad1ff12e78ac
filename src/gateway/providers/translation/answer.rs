//! Whole OpenAI answers: `chat.completion`, `text_completion` and the embeddings list.

use serde_json::{json, Value};

use super::{now, Form};

/// One choice of a whole answer.
pub struct Choice {
    pub index: u64,
    pub text: String,
    /// [`tool_call`] entries; the text form has no place for them.
    pub tool_calls: Vec<Value>,
    pub finish_reason: &'static str,
}

/// A whole answer, before it takes its [`Form`].
pub struct Answer {
    pub id: String,
    pub model: String,
    pub choices: Vec<Choice>,
    /// OpenAI's usage object (`Usage::to_openai`, plus any provider extras).
    pub usage: Value,
}

impl Answer {
    /// The `chat.completion` or `text_completion` object, `created` now. A chat message that
    /// only calls tools has `null` content.
    pub fn into_openai(self, form: Form) -> Value {
        let choices: Vec<Value> = self
            .choices
            .into_iter()
            .map(|c| match form {
                Form::Chat => {
                    let calls = c.tool_calls;
                    let content = if c.text.is_empty() && !calls.is_empty() {
                        Value::Null
                    } else {
                        c.text.into()
                    };
                    let mut message =
                        json!({"role": "assistant", "content": content, "refusal": null});
                    if !calls.is_empty() {
                        message["tool_calls"] = Value::Array(calls);
                    }
                    json!({"index": c.index, "message": message, "logprobs": null,
                           "finish_reason": c.finish_reason})
                }
                Form::Text => json!({"text": c.text, "index": c.index, "logprobs": null,
                                     "finish_reason": c.finish_reason}),
            })
            .collect();
        match form {
            Form::Chat => json!({
                "id": self.id,
                "object": "chat.completion",
                "created": now(),
                "model": self.model,
                "system_fingerprint": null,
                "choices": choices,
                "usage": self.usage,
            }),
            Form::Text => json!({
                "id": self.id,
                "object": "text_completion",
                "created": now(),
                "model": self.model,
                "choices": choices,
                "usage": self.usage,
            }),
        }
    }
}

/// One `tool_calls[]` entry of a whole answer; `arguments` is JSON text.
pub fn tool_call(id: impl Into<Value>, name: impl Into<Value>, arguments: String) -> Value {
    json!({
        "id": id.into(),
        "type": "function",
        "function": {"name": name.into(), "arguments": arguments},
    })
}

/// OpenAI's finish reason (as `adapter::finish_reason` maps it) made to agree with whether the
/// choice made tool calls: a tool-use stop without calls (Anthropic's JSON-answer tool) is a
/// plain `stop`, a plain stop with calls (Gemini says `STOP`) is `tool_calls`.
pub fn finish_with_calls(reason: &'static str, has_calls: bool) -> &'static str {
    match reason {
        "tool_calls" if !has_calls => "stop",
        "stop" if has_calls => "tool_calls",
        other => other,
    }
}

/// OpenAI's embeddings answer: the vectors in input order, `prompt_tokens` as counted upstream.
pub fn embeddings_list(vectors: Vec<Value>, model: &str, prompt_tokens: u64) -> Value {
    let data: Vec<Value> = vectors
        .into_iter()
        .enumerate()
        .map(|(i, e)| json!({"object": "embedding", "index": i, "embedding": e}))
        .collect();
    json!({
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::providers::translation::test_support::without_created;

    fn answer(text: &str, calls: Vec<Value>, reason: &'static str) -> Answer {
        Answer {
            id: "id1".into(),
            model: "m".into(),
            choices: vec![Choice {
                index: 0,
                text: text.into(),
                tool_calls: calls,
                finish_reason: reason,
            }],
            usage: json!({"prompt_tokens": 1}),
        }
    }

    #[test]
    fn chat_and_text_forms() {
        let call = tool_call("call_1", "f", "{}".into());
        assert_eq!(
            without_created(answer("", vec![call.clone()], "tool_calls").into_openai(Form::Chat)),
            json!({"id": "id1", "object": "chat.completion", "model": "m", "system_fingerprint": null,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": null, "refusal": null,
                    "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
                    "logprobs": null, "finish_reason": "tool_calls"}],
                "usage": {"prompt_tokens": 1}})
        );
        assert_eq!(
            answer("", vec![], "stop").into_openai(Form::Chat)["choices"][0]["message"]["content"],
            ""
        );
        assert_eq!(
            without_created(answer("Hi", vec![call], "length").into_openai(Form::Text)),
            json!({"id": "id1", "object": "text_completion", "model": "m",
                "choices": [{"text": "Hi", "index": 0, "logprobs": null, "finish_reason": "length"}],
                "usage": {"prompt_tokens": 1}})
        );
    }

    #[test]
    fn finish_reason_agrees_with_calls() {
        assert_eq!(finish_with_calls("tool_calls", false), "stop");
        assert_eq!(finish_with_calls("stop", true), "tool_calls");
        assert_eq!(finish_with_calls("length", true), "length");
        assert_eq!(finish_with_calls("tool_calls", true), "tool_calls");
    }
}
