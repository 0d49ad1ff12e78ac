//! The semantic side of the cache: which text of a request is embedded, and how close two
//! embeddings are.

use serde_json::Value;

/// The text a semantic lookup embeds: the text of every chat message (string content and text
/// parts, in order, one per line), else a completion's `prompt`, else a Responses `input`.
/// `None` when the request carries no text.
pub fn prompt_text(body: &Value) -> Option<String> {
    let mut lines = Vec::new();
    if let Some(messages) = body.get("messages").and_then(Value::as_array) {
        for m in messages {
            push_text(m.get("content"), &mut lines);
        }
    } else if let Some(prompt) = body.get("prompt") {
        push_text(Some(prompt), &mut lines);
    } else if let Some(input) = body.get("input") {
        match input.as_array() {
            Some(items) if items.iter().all(Value::is_object) => {
                for item in items {
                    push_text(item.get("content"), &mut lines);
                }
            }
            _ => push_text(Some(input), &mut lines),
        }
    }
    let text = lines.join("\n");
    (!text.trim().is_empty()).then_some(text)
}

/// A string, an array of strings, or content parts (`{"type":"text","text":...}` and the
/// Responses API's `input_text`).
fn push_text(content: Option<&Value>, lines: &mut Vec<String>) {
    match content {
        Some(Value::String(s)) => lines.push(s.clone()),
        Some(Value::Array(parts)) => {
            for p in parts {
                match p {
                    Value::String(s) => lines.push(s.clone()),
                    Value::Object(o) => {
                        if let Some(t) = o.get("text").and_then(Value::as_str) {
                            lines.push(t.to_string());
                        }
                    }
                    _ => {}
                }
            }
        }
        _ => {}
    }
}

/// Cosine similarity; 0 for vectors of different lengths or of zero length.
pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    if a.len() != b.len() || a.is_empty() {
        return 0.0;
    }
    let (mut dot, mut na, mut nb) = (0.0f64, 0.0f64, 0.0f64);
    for (x, y) in a.iter().zip(b) {
        let (x, y) = (f64::from(*x), f64::from(*y));
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    if na == 0.0 || nb == 0.0 {
        return 0.0;
    }
    dot / (na.sqrt() * nb.sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn text_comes_from_messages_prompt_or_input() {
        let chat = json!({"messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "What is Rust?"},
                {"type": "image_url", "image_url": {"url": "x"}}]}
        ]});
        assert_eq!(prompt_text(&chat).unwrap(), "Be brief.\nWhat is Rust?");
        assert_eq!(prompt_text(&json!({"prompt": ["a", "b"]})).unwrap(), "a\nb");
        assert_eq!(prompt_text(&json!({"input": "hi"})).unwrap(), "hi");
        let items =
            json!({"input": [{"role": "user", "content": [{"type": "input_text", "text": "yo"}]}]});
        assert_eq!(prompt_text(&items).unwrap(), "yo");
        assert_eq!(
            prompt_text(&json!({"messages": [{"role": "user", "content": " "}]})),
            None
        );
        assert_eq!(prompt_text(&json!({"model": "m"})), None);
    }

    #[test]
    fn cosine_of_vectors() {
        assert!((cosine(&[1.0, 0.0], &[2.0, 0.0]) - 1.0).abs() < 1e-9);
        assert!(cosine(&[1.0, 0.0], &[0.0, 1.0]).abs() < 1e-9);
        assert!((cosine(&[1.0, 1.0], &[1.0, 0.0]) - 0.5f64.sqrt()).abs() < 1e-9);
        assert_eq!(cosine(&[1.0], &[1.0, 2.0]), 0.0);
        assert_eq!(cosine(&[0.0, 0.0], &[1.0, 0.0]), 0.0);
    }
}
