//! What the translating adapters (Anthropic, Cohere, Gemini / Vertex, Bedrock) share, defined
//! once: reading OpenAI request bodies ([`request`]), writing OpenAI's whole answers
//! ([`answer`]) and stream chunks ([`chunks`]), and reading streams of typed JSON events
//! ([`events`]). An adapter keeps only what is its provider's own.

mod answer;
mod chunks;
mod events;
mod request;
#[cfg(test)]
pub(crate) mod test_support;

use rand::distributions::{Alphanumeric, DistString};

pub use answer::{embeddings_list, finish_with_calls, tool_call, Answer, Choice};
pub use chunks::ChunkWriter;
pub use events::{EventStream, TypedEvents};
pub use request::{
    api_key, base_url, data_url, function_tools, json_format, max_tokens, messages, model,
    one_choice, prompt_as_chat, push_turn, stop_sequences, texts, tool_call_id, tool_choice,
    JsonFormat, ToolChoice,
};

use super::adapter::{AdapterError, Endpoint};

/// Which OpenAI object an answer takes: `chat.completion` (streamed as
/// `chat.completion.chunk`s), or the legacy `text_completion` of `/v1/completions`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    Chat,
    Text,
}

impl Form {
    /// The form the client's endpoint answers in.
    pub fn of(endpoint: Endpoint) -> Form {
        if endpoint == Endpoint::Completions {
            Form::Text
        } else {
            Form::Chat
        }
    }
}

/// A request (or answer) the adapter cannot express: answered 400.
pub fn bad(msg: impl Into<String>) -> AdapterError {
    AdapterError(msg.into())
}

/// Now, in Unix seconds (`created`).
pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// `prefix` + 24 random alphanumerics (`chatcmpl-…`, `cmpl-…`, `call_…`).
pub fn new_id(prefix: &str) -> String {
    let random = Alphanumeric.sample_string(&mut rand::thread_rng(), 24);
    format!("{prefix}{random}")
}

/// The start of an error body that holds no message the adapter can read: trimmed, at most 500
/// characters; `None` when nothing is left.
pub fn error_body_text(body: &[u8]) -> Option<String> {
    let text: String = String::from_utf8_lossy(body)
        .trim()
        .chars()
        .take(500)
        .collect();
    (!text.is_empty()).then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_forms_and_error_text() {
        let id = new_id("cmpl-");
        assert!(id.starts_with("cmpl-") && id.len() == 29, "{id}");
        assert_eq!(Form::of(Endpoint::Completions), Form::Text);
        assert_eq!(Form::of(Endpoint::Chat), Form::Chat);
        assert_eq!(
            error_body_text(b"  <html>x</html>\n"),
            Some("<html>x</html>".into())
        );
        assert_eq!(error_body_text(b" \n"), None);
        assert_eq!(
            error_body_text("é".repeat(600).as_bytes())
                .unwrap()
                .chars()
                .count(),
            500
        );
    }
}
