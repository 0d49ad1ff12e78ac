//! What the adapters' unit tests share.

use serde_json::Value;

use crate::gateway::providers::adapter::{StreamError, StreamTranslator, UpstreamRequest, Usage};

/// Feeds `bytes` to `stream` in pieces of the given sizes (cycled), then finishes it unless a
/// feed failed. Returns the chunks written (parsed), the first error and the usage seen.
pub fn feed(
    stream: &mut dyn StreamTranslator,
    bytes: &[u8],
    sizes: &[usize],
) -> (Vec<Value>, Result<(), StreamError>, Option<Usage>) {
    let mut out = Vec::new();
    let mut rest = bytes;
    let mut i = 0;
    let mut result = Ok(());
    while !rest.is_empty() && result.is_ok() {
        let n = sizes[i % sizes.len()].min(rest.len());
        result = stream.feed(&rest[..n], &mut out);
        rest = &rest[n..];
        i += 1;
    }
    if result.is_ok() {
        result = stream.finish(&mut out);
    }
    let chunks = out
        .iter()
        .map(|c| serde_json::from_str(c).unwrap())
        .collect();
    (chunks, result, stream.usage())
}

/// Checks every chunk carries `id` and the first chunk's `created`, then strips both so the
/// rest compares exactly.
pub fn strip_id_and_created(chunks: Vec<Value>, id: &str) -> Vec<Value> {
    let created = chunks[0]["created"].clone();
    chunks
        .into_iter()
        .map(|mut c| {
            assert_eq!(c["id"], id);
            assert_eq!(c["created"], created);
            let o = c.as_object_mut().unwrap();
            o.remove("id");
            o.remove("created");
            c
        })
        .collect()
}

/// `created` is "now": checked, then removed so the rest compares exactly.
pub fn without_created(mut v: Value) -> Value {
    assert!(v["created"].as_i64().unwrap() > 1_700_000_000);
    v.as_object_mut().unwrap().remove("created");
    v
}

/// The value of the request's header `name`.
pub fn header<'a>(req: &'a UpstreamRequest, name: &str) -> Option<&'a str> {
    req.headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}
