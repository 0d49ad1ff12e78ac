//! OpenAI's `encoding_format: "base64"` for embeddings: providers that answer float arrays get
//! their vectors encoded by the gateway (little-endian f32, base64), as OpenAI would send them.

use base64::Engine;
use serde_json::Value;

/// Encodes every float-array `data[].embedding` of an embeddings list in place.
pub fn encode_base64(list: &mut Value) {
    let Some(items) = list.get_mut("data").and_then(Value::as_array_mut) else {
        return;
    };
    for item in items {
        let Some(floats) = item.get("embedding").and_then(Value::as_array) else {
            continue;
        };
        let bytes: Vec<u8> = floats
            .iter()
            .flat_map(|f| (f.as_f64().unwrap_or(0.0) as f32).to_le_bytes())
            .collect();
        item["embedding"] = Value::String(base64::engine::general_purpose::STANDARD.encode(bytes));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn floats_become_little_endian_base64_and_strings_stay() {
        let mut list = json!({"data": [{"embedding": [1.0, -2.5]}, {"embedding": "AACAPw=="}]});
        encode_base64(&mut list);
        let expected: Vec<u8> = [1.0f32, -2.5]
            .iter()
            .flat_map(|f| f.to_le_bytes())
            .collect();
        assert_eq!(
            list["data"][0]["embedding"],
            base64::engine::general_purpose::STANDARD.encode(expected)
        );
        assert_eq!(list["data"][1]["embedding"], "AACAPw==");
    }
}
