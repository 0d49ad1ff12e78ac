//! The most a request can cost, reserved before it is sent.
//!
//! Prompt tokens are bounded by the request body's size in bytes: the tokenizers of every
//! supported provider are byte-level (a token is at least one byte of text), and the JSON
//! around the text is longer than the few tokens of framing each message adds. Images are not
//! text: each one reserves [`IMAGE_TOKENS`]. Output is bounded by `max_tokens` (or
//! `max_completion_tokens`, `max_output_tokens`), else the model's output limit from the
//! pricing table, else [`DEFAULT_OUTPUT_TOKENS`].

use serde_json::{Map, Value};

use crate::gateway::providers::adapter::Endpoint;
use crate::observe::pricing::Price;

pub const IMAGE_TOKENS: u64 = 3_000;
pub const DEFAULT_OUTPUT_TOKENS: u64 = 16_384;

/// What admission reserves for one upstream call.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Demand {
    pub tokens: u64,
    /// `None` when the model has no price: a cost budget cannot admit it.
    pub cost: Option<f64>,
}

fn count_images(body: &Map<String, Value>) -> u64 {
    let parts = |v: &Value| -> u64 {
        v.as_array().map_or(0, |parts| {
            parts
                .iter()
                .filter(|p| {
                    matches!(
                        p.get("type").and_then(Value::as_str),
                        Some("image_url" | "image" | "input_image")
                    )
                })
                .count() as u64
        })
    };
    ["messages", "input"]
        .iter()
        .filter_map(|k| body.get(*k).and_then(Value::as_array))
        .flatten()
        .map(|m| m.get("content").map_or(0, parts))
        .sum()
}

fn output_bound(endpoint: Endpoint, body: &Map<String, Value>, model_max: Option<u64>) -> u64 {
    if endpoint == Endpoint::Embeddings {
        return 0;
    }
    ["max_tokens", "max_completion_tokens", "max_output_tokens"]
        .iter()
        .find_map(|k| body.get(*k).and_then(Value::as_u64))
        .or(model_max)
        .unwrap_or(DEFAULT_OUTPUT_TOKENS)
}

/// The bound for a request whose body is `body_len` bytes and parses as `body`.
pub fn demand(
    endpoint: Endpoint,
    body_len: usize,
    body: &Map<String, Value>,
    price: Option<Price>,
    model_max_output: Option<u64>,
) -> Demand {
    let input = body_len as u64 + count_images(body) * IMAGE_TOKENS;
    let output = output_bound(endpoint, body, model_max_output);
    Demand {
        tokens: input + output,
        cost: price.map(|p| (input as f64 * p.input + output as f64 * p.output) / 1_000_000.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn the_bound_covers_the_body_images_and_the_output() {
        let body = map(json!({"model": "m", "max_tokens": 100, "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "hi"},
                {"type": "image_url", "image_url": {"url": "https://x/y.png"}}
            ]}
        ]}));
        let price = Price {
            input: 1.0,
            output: 10.0,
            cache_read: None,
            cache_write: None,
        };
        let d = demand(Endpoint::Chat, 200, &body, Some(price), Some(4096));
        assert_eq!(d.tokens, 200 + IMAGE_TOKENS + 100);
        let expected = ((200 + IMAGE_TOKENS) as f64 * 1.0 + 100.0 * 10.0) / 1e6;
        assert!((d.cost.unwrap() - expected).abs() < 1e-12);
    }

    #[test]
    fn without_max_tokens_the_model_limit_then_a_default_applies() {
        let body = map(json!({"messages": []}));
        assert_eq!(
            demand(Endpoint::Chat, 10, &body, None, Some(4096)).tokens,
            4106
        );
        let d = demand(Endpoint::Chat, 10, &body, None, None);
        assert_eq!(d.tokens, 10 + DEFAULT_OUTPUT_TOKENS);
        assert_eq!(d.cost, None);
        assert_eq!(
            demand(Endpoint::Embeddings, 10, &body, None, None).tokens,
            10
        );
    }
}
