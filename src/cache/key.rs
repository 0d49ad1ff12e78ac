//! What makes two requests the same question: the resolved target, the endpoint, the stream
//! flag, the caller's partition and namespace, and the body as sent, with object keys in a
//! canonical order and without the fields that do not change the answer.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// A SHA-256 of a request's normalised parts.
pub type Key = [u8; 32];

/// Body fields that say who asked or how to file the answer, not what to answer.
const IGNORED: &[&str] = &["user", "metadata", "store"];

/// Body fields that hold the prompt: a semantic lookup compares them by meaning instead.
const PROMPT: &[&str] = &["messages", "prompt", "input"];

/// The parts of a request that decide its answer.
pub struct Parts<'a> {
    /// The caller's workspace id (empty for organisation keys): answers never cross it.
    pub partition: &'a str,
    /// `x-portkey-cache-namespace`, if given.
    pub namespace: Option<&'a str>,
    pub provider: &'a str,
    pub integration: Option<&'a str>,
    pub base_url: &'a str,
    /// Provider settings of the target (deployment, region, version, ...).
    pub settings: &'a Map<String, Value>,
    pub endpoint: &'a str,
    pub stream: bool,
    /// The body as it is sent upstream.
    pub body: &'a Value,
}

impl Parts<'_> {
    /// The exact-match key.
    pub fn exact(&self) -> Key {
        self.digest(IGNORED)
    }

    /// What semantic neighbours share: everything but the prompt.
    pub fn group(&self) -> Key {
        let skip: Vec<&str> = IGNORED.iter().chain(PROMPT).copied().collect();
        self.digest(&skip)
    }

    fn digest(&self, skip: &[&str]) -> Key {
        let mut out = Vec::with_capacity(512);
        for text in [
            self.partition,
            self.namespace.unwrap_or(""),
            self.provider,
            self.integration.unwrap_or(""),
            self.base_url,
            self.endpoint,
            if self.stream { "stream" } else { "whole" },
        ] {
            serde_json::to_writer(&mut out, text).expect("a string serialises");
        }
        // A namespace of "" and no namespace differ.
        out.push(u8::from(self.namespace.is_some()));
        canonical_map(self.settings, &[], &mut out);
        canonical(self.body, skip, &mut out);
        Sha256::digest(&out).into()
    }
}

/// JSON with object keys sorted at every level; `skip` names top-level keys to leave out.
fn canonical(v: &Value, skip: &[&str], out: &mut Vec<u8>) {
    match v {
        Value::Object(map) => canonical_map(map, skip, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                canonical(item, &[], out);
            }
            out.push(b']');
        }
        leaf => {
            serde_json::to_writer(&mut *out, leaf).expect("a JSON leaf serialises");
        }
    }
}

fn canonical_map(map: &Map<String, Value>, skip: &[&str], out: &mut Vec<u8>) {
    let mut keys: Vec<&String> = map.keys().filter(|k| !skip.contains(&k.as_str())).collect();
    keys.sort_unstable();
    out.push(b'{');
    for (i, k) in keys.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        serde_json::to_writer(&mut *out, k).expect("a string serialises");
        out.push(b':');
        canonical(&map[k], &[], out);
    }
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parts<'a>(body: &'a Value, settings: &'a Map<String, Value>) -> Parts<'a> {
        Parts {
            partition: "ws-1",
            namespace: None,
            provider: "openai",
            integration: Some("oai"),
            base_url: "https://api.openai.com/v1",
            settings,
            endpoint: "/chat/completions",
            stream: false,
            body,
        }
    }

    #[test]
    fn key_order_and_bookkeeping_fields_do_not_matter() {
        let none = Map::new();
        let a = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": 0.2});
        let b = json!({"temperature": 0.2, "user": "u-1", "metadata": {"x": "y"},
            "messages": [{"content": "hi", "role": "user"}], "model": "m"});
        assert_eq!(parts(&a, &none).exact(), parts(&b, &none).exact());
        let c = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": 0.3});
        assert_ne!(parts(&a, &none).exact(), parts(&c, &none).exact());
    }

    #[test]
    fn target_stream_partition_and_namespace_split_the_cache() {
        let none = Map::new();
        let body = json!({"model": "m", "messages": []});
        let base = parts(&body, &none).exact();
        let variants = [
            Parts {
                stream: true,
                ..parts(&body, &none)
            },
            Parts {
                partition: "ws-2",
                ..parts(&body, &none)
            },
            Parts {
                namespace: Some("team-a"),
                ..parts(&body, &none)
            },
            Parts {
                namespace: Some(""),
                ..parts(&body, &none)
            },
            Parts {
                integration: Some("other"),
                ..parts(&body, &none)
            },
            Parts {
                endpoint: "/completions",
                ..parts(&body, &none)
            },
        ];
        for v in variants {
            assert_ne!(v.exact(), base);
        }
        let deployment = json!({"deployment_id": "d1"}).as_object().cloned().unwrap();
        assert_ne!(parts(&body, &deployment).exact(), base);
    }

    #[test]
    fn the_group_leaves_the_prompt_out() {
        let none = Map::new();
        let a = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
        let b = json!({"model": "m", "messages": [{"role": "user", "content": "hello"}]});
        let c = json!({"model": "m2", "messages": [{"role": "user", "content": "hi"}]});
        assert_ne!(parts(&a, &none).exact(), parts(&b, &none).exact());
        assert_eq!(parts(&a, &none).group(), parts(&b, &none).group());
        assert_ne!(parts(&a, &none).group(), parts(&c, &none).group());
    }
}
