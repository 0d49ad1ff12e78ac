//! The text slots of every endpoint's bodies: which ones checks read (the current part) and
//! which ones redactions rewrite (all of them), in document order.

use serde_json::{json, Value};

use super::super::text::{current, rewrite_all};
use super::super::{Body, RawAnswer, Stage};
use crate::gateway::providers::adapter::Endpoint;

/// `body` with every text slot rewritten to its position in the walk (`<0>`, `<1>`, ...).
fn numbered(stage: Stage, endpoint: Endpoint, body: Body) -> Option<Value> {
    let mut n = 0;
    rewrite_all(stage, endpoint, body, |_| {
        n += 1;
        Some(format!("<{}>", n - 1))
    })
}

/// Each case: the body, its current text, and the body with all its slots numbered (None when
/// it has none).
fn cases() -> Vec<(Stage, Endpoint, Value, &'static str, Option<Value>)> {
    let parts = |a: &str, b: &str| json!([{"type": "text", "text": a}, {"type": "image_url"}, {"type": "text", "text": b}]);
    vec![
        (
            Stage::Before,
            Endpoint::Chat,
            json!({"messages": [{"role": "system", "content": "sys"}, {"role": "user", "content": parts("a", "b")}]}),
            "a\nb",
            Some(
                json!({"messages": [{"role": "system", "content": "<0>"}, {"role": "user", "content": [{"type": "text", "text": "<1>"}, {"type": "image_url"}, {"type": "text", "text": "<2>"}]}]}),
            ),
        ),
        (
            Stage::Before,
            Endpoint::Chat,
            json!({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": null, "tool_calls": []}]}),
            "",
            Some(
                json!({"messages": [{"role": "user", "content": "<0>"}, {"role": "assistant", "content": null, "tool_calls": []}]}),
            ),
        ),
        (
            Stage::Before,
            Endpoint::Chat,
            json!({"messages": "not a list"}),
            "",
            None,
        ),
        (
            Stage::Before,
            Endpoint::Completions,
            json!({"prompt": ["one", [1, 2], "", "two"]}),
            "one\ntwo",
            Some(json!({"prompt": ["<0>", [1, 2], "<1>", "<2>"]})),
        ),
        (
            Stage::Before,
            Endpoint::Completions,
            json!({"prompt": "p"}),
            "p",
            Some(json!({"prompt": "<0>"})),
        ),
        (
            Stage::Before,
            Endpoint::Embeddings,
            json!({"input": ["e1", 7]}),
            "e1",
            Some(json!({"input": ["<0>", 7]})),
        ),
        (
            Stage::Before,
            Endpoint::Responses,
            json!({"instructions": "be brief", "input": "hello"}),
            "hello",
            Some(json!({"instructions": "<0>", "input": "<1>"})),
        ),
        (
            Stage::Before,
            Endpoint::Responses,
            json!({"instructions": "i", "input": [{"role": "user", "content": "first"}, {"role": "user", "content": [{"type": "input_text", "text": "x"}, {"type": "input_text", "text": "y"}]}]}),
            "x\ny",
            Some(
                json!({"instructions": "<0>", "input": [{"role": "user", "content": "<1>"}, {"role": "user", "content": [{"type": "input_text", "text": "<2>"}, {"type": "input_text", "text": "<3>"}]}]}),
            ),
        ),
        (
            Stage::After,
            Endpoint::Chat,
            json!({"choices": [{"message": {"content": "c0"}}, {"message": {"content": parts("c1", "c2")}}, {"message": {}}]}),
            "c0",
            Some(
                json!({"choices": [{"message": {"content": "<0>"}}, {"message": {"content": [{"type": "text", "text": "<1>"}, {"type": "image_url"}, {"type": "text", "text": "<2>"}]}}, {"message": {}}]}),
            ),
        ),
        (
            Stage::After,
            Endpoint::Completions,
            json!({"choices": [{"text": "t0"}, {"text": 5}, {"text": "t2"}]}),
            "t0",
            Some(json!({"choices": [{"text": "<0>"}, {"text": 5}, {"text": "<1>"}]})),
        ),
        (
            Stage::After,
            Endpoint::Chat,
            json!({"id": "x", "choices": [{"index": 0, "logprobs": null, "message": {"role": "assistant", "content": "say \"hi\"\n\u{e9}", "tool_calls": [{"function": {"arguments": "{}"}}]}, "text": "not chat's"}], "usage": {"total_tokens": 3}}),
            "say \"hi\"\n\u{e9}",
            Some(
                json!({"id": "x", "choices": [{"index": 0, "logprobs": null, "message": {"role": "assistant", "content": "<0>", "tool_calls": [{"function": {"arguments": "{}"}}]}, "text": "not chat's"}], "usage": {"total_tokens": 3}}),
            ),
        ),
        (
            Stage::After,
            Endpoint::Chat,
            json!({"choices": [{"message": {"content": null, "tool_calls": []}}, {"message": null}, {"message": {"content": [{"text": 1}, {"text": ""}, {"text": "p"}]}}]}),
            "",
            Some(
                json!({"choices": [{"message": {"content": null, "tool_calls": []}}, {"message": null}, {"message": {"content": [{"text": 1}, {"text": "<0>"}, {"text": "<1>"}]}}]}),
            ),
        ),
        (
            Stage::After,
            Endpoint::Completions,
            json!({"choices": [], "object": "text_completion"}),
            "",
            None,
        ),
        (
            Stage::After,
            Endpoint::Responses,
            json!({"output": [{"type": "reasoning"}, {"type": "message", "content": [{"type": "output_text", "text": "o1"}, {"type": "output_text", "text": "o2"}]}]}),
            "o1\no2",
            Some(
                json!({"output": [{"type": "reasoning"}, {"type": "message", "content": [{"type": "output_text", "text": "<0>"}, {"type": "output_text", "text": "<1>"}]}]}),
            ),
        ),
        (
            Stage::After,
            Endpoint::Embeddings,
            json!({"data": [{"embedding": [0.1]}]}),
            "",
            None,
        ),
    ]
}

#[test]
fn slots_of_every_endpoint() {
    for (stage, endpoint, body, text, all) in cases() {
        let case = format!("{stage:?} {endpoint:?} {body}");
        assert_eq!(current(stage, endpoint, Body::Json(&body)), text, "{case}");
        assert_eq!(numbered(stage, endpoint, Body::Json(&body)), all, "{case}");
    }
}

/// Output hooks read answers from their JSON text: the same slots as the decoded answer's.
#[test]
fn raw_answers_have_the_decoded_slots() {
    let answers = cases()
        .into_iter()
        .filter(|c| c.0 == Stage::After && matches!(c.1, Endpoint::Chat | Endpoint::Completions));
    let mut n = 0;
    for (stage, endpoint, body, text, all) in answers {
        let json = body.to_string();
        let raw = RawAnswer::parse(json.as_bytes()).unwrap_or_else(|| panic!("{json}"));
        assert_eq!(current(stage, endpoint, Body::Raw(&raw)), text, "{json}");
        assert_eq!(numbered(stage, endpoint, Body::Raw(&raw)), all, "{json}");
        n += 1;
    }
    assert_eq!(n, 5);
}

/// Answers of an unusual shape are left to the decoded walk.
#[test]
fn unusual_answers_are_not_read_raw() {
    for odd in [
        r#"[{"choices": []}]"#,
        r#"{"choices": {"message": {"content": "x"}}}"#,
        r#"{"choices": [{"message": "x"}]}"#,
        r#"{"choices": [{"message": {"content": "a", "content": "b"}}]}"#,
        r#"{"choices": []} trailing"#,
        r#"{"choices": null}"#,
        "not json",
    ] {
        assert!(RawAnswer::parse(odd.as_bytes()).is_none(), "{odd}");
    }
    let raw = RawAnswer::parse(b"\n {\"object\": \"chat.completion\"}").expect("no choices");
    assert_eq!(current(Stage::After, Endpoint::Chat, Body::Raw(&raw)), "");
}

#[test]
fn only_changed_slots_are_rewritten() {
    let body = json!({"messages": [{"role": "user", "content": "keep"}, {"role": "user", "content": "swap"}]});
    let swapped = rewrite_all(Stage::Before, Endpoint::Chat, Body::Json(&body), |s| {
        (s == "swap").then(|| "done".to_string())
    });
    assert_eq!(
        swapped,
        Some(
            json!({"messages": [{"role": "user", "content": "keep"}, {"role": "user", "content": "done"}]})
        )
    );
    assert_eq!(
        rewrite_all(Stage::Before, Endpoint::Chat, Body::Json(&body), |_| None),
        None
    );
}
