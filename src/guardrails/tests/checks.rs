use serde_json::{json, Map, Value};

use super::*;

#[tokio::test]
async fn regex_match_and_not() {
    table(vec![
        (
            json!({"regexMatch": {"rule": "order #\\d+"}}),
            "where is order #123?",
            true,
        ),
        (
            json!({"regexMatch": {"rule": "order #\\d+"}}),
            "where is my order?",
            false,
        ),
        (
            json!({"regexMatch": {"rule": "\\d", "not": true}}),
            "a 1",
            false,
        ),
        // Only the last message counts: "Earlier" is in an older turn.
        (json!({"regexMatch": {"rule": "Earlier"}}), "now", false),
    ])
    .await;
    let v = run_before(json!({"regexMatch": {"rule": "x"}}), "").await;
    assert!(v.result.verdict, "an errored check passes");
    assert_eq!(
        v.result.checks[0].error.as_deref(),
        Some("no text to match")
    );
    let v = run_before(
        json!({"regexMatch": {"rule": "x", "failOnError": true}}),
        "",
    )
    .await;
    assert!(!v.result.verdict, "failOnError makes the error fail");
    assert!(v.result.checks[0].fail_on_error);
}

#[tokio::test]
async fn counts() {
    table(vec![
        (
            json!({"sentenceCount": {"minSentences": 2, "maxSentences": 3}}),
            "One. Two! Three?",
            true,
        ),
        (
            json!({"sentenceCount": {"minSentences": 2}}),
            "Just one.",
            false,
        ),
        (
            json!({"wordCount": {"minWords": 3, "maxWords": 4}}),
            "  three  little words ",
            true,
        ),
        (
            json!({"wordCount": {"maxWords": 2}}),
            "three little words",
            false,
        ),
        (
            json!({"wordCount": {"maxWords": 2, "not": true}}),
            "three little words",
            true,
        ),
        (
            json!({"characterCount": {"maxCharacters": 5}}),
            "héllo",
            true,
        ),
        (
            json!({"characterCount": {"maxCharacters": 4}}),
            "héllo",
            false,
        ),
    ])
    .await;
}

#[tokio::test]
async fn ends_with_and_case() {
    assert!(after(json!({"endsWith": {"suffix": "Bye"}}), "Thanks. Bye.").await);
    assert!(after(json!({"endsWith": {"suffix": "Bye"}}), "Thanks. Bye").await);
    assert!(!after(json!({"endsWith": {"suffix": "Bye"}}), "Bye then").await);
    assert!(
        after(
            json!({"endsWith": {"suffix": "Bye", "not": true}}),
            "Bye then"
        )
        .await
    );
    assert!(after(json!({"alllowercase": {}}), "all lower, 123").await);
    assert!(!after(json!({"alllowercase": {}}), "Not lower").await);
    assert!(after(json!({"alluppercase": {}}), "LOUD 1!").await);
    assert!(!after(json!({"alluppercase": {}}), "Quiet").await);
    assert!(after(json!({"alluppercase": {"not": true}}), "Quiet").await);
}

#[tokio::test]
async fn contains_operators() {
    let c = |op: &str| json!({"contains": {"words": ["apple", "pear"], "operator": op}});
    assert!(after(c("any"), "an apple").await);
    assert!(!after(c("all"), "an apple").await);
    assert!(after(c("all"), "an apple and a pear").await);
    assert!(after(c("none"), "a plum").await);
    assert!(!after(c("none"), "a pear").await);
    assert!(
        after(json!({"contains": {"words": "apple, pear"}}), "pear").await,
        "comma-separated words"
    );
}

#[tokio::test]
async fn not_null() {
    assert!(after(json!({"notNull": {}}), "something").await);
    assert!(!after(json!({"notNull": {}}), "  ").await);
    assert!(after(json!({"notNull": {"not": true}}), "").await);
}

#[tokio::test]
async fn json_schema_and_keys() {
    let schema = json!({"jsonSchema": {"schema": {
        "type": "object", "required": ["name", "age"], "additionalProperties": false,
        "properties": {"name": {"type": "string", "minLength": 1}, "age": {"type": "integer", "minimum": 0},
                       "tags": {"type": "array", "items": {"enum": ["a", "b"]}, "maxItems": 2}}
    }}});
    assert!(after(schema.clone(), r#"{"name": "Ann", "age": 3}"#).await);
    assert!(
        after(
            schema.clone(),
            "Here:\n```json\n{\"name\": \"Ann\", \"age\": 3, \"tags\": [\"a\"]}\n```"
        )
        .await
    );
    let extra = r#"Result {"name": "Ann", "age": 3, "x": {"nested": 1}} ok"#;
    assert!(!after(schema.clone(), extra).await, "additionalProperties");
    assert!(after(schema.clone(), r#"Result {"name": "Ann", "age": 3} ok"#).await);
    let h = hook(schema.clone());
    let v = run_on(
        &h,
        Stage::After,
        &chat("q"),
        Some(&answer(r#"{"name": "", "age": -1, "tags": ["c"]}"#)),
    )
    .await;
    assert!(!v.result.verdict);
    let errors = v.result.checks[0].data.to_value()["validationErrors"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert!(!after(schema, "no json here").await);
    let one_of = json!({"jsonSchema": {"schema": {"oneOf": [{"type": "string"}, {"type": "object", "required": ["a"]}]}}});
    assert!(after(one_of.clone(), r#"{"a": 1}"#).await);
    assert!(!after(one_of, r#"{"b": 1}"#).await);

    let keys = |op: &str| json!({"jsonKeys": {"keys": ["a", "b"], "operator": op}});
    assert!(after(keys("all"), r#"{"a": 1, "b": 2}"#).await);
    assert!(!after(keys("all"), r#"{"a": 1}"#).await);
    assert!(after(keys("any"), r#"text {"b": 1} text"#).await);
    assert!(after(keys("none"), r#"{"c": 1}"#).await);
}

#[tokio::test]
async fn request_checks() {
    let m = |not: bool| hook(json!({"modelWhitelist": {"models": ["gpt-4o-mini"], "not": not}}));
    assert!(
        run_on(&m(false), Stage::Before, &chat("x"), None)
            .await
            .result
            .verdict
    );
    assert!(
        !run_on(&m(true), Stage::Before, &chat("x"), None)
            .await
            .result
            .verdict
    );

    let keys = hook(json!({"requiredMetadataKeys": {"metadataKeys": ["team", "user"]}}));
    let mut md = Map::new();
    md.insert("team".into(), json!("a"));
    let partial = run_with(&keys, Stage::Before, Endpoint::Chat, &chat("x"), None, &md).await;
    assert!(!partial.result.verdict);
    md.insert("user".into(), json!("u"));
    assert!(verdict_on(&keys, Endpoint::Chat, &chat("x"), &md).await);

    let types = hook(json!({"allowedRequestTypes": {"allowedTypes": ["chatComplete", "embed"]}}));
    let embed = json!({"model": "e", "input": "hi"});
    assert!(verdict_on(&types, Endpoint::Embeddings, &embed, &Map::new()).await);
    let prompt = json!({"model": "m", "prompt": "hi"});
    assert!(!verdict_on(&types, Endpoint::Completions, &prompt, &Map::new()).await);
    let blocked = hook(json!({"allowedRequestTypes": {"blockedTypes": ["embed"]}}));
    assert!(!verdict_on(&blocked, Endpoint::Embeddings, &embed, &Map::new()).await);
    let from_metadata = hook(json!({"allowedRequestTypes": {}}));
    let md: Map<String, Value> = json!({"blocked_endpoints": "chatComplete"})
        .as_object()
        .unwrap()
        .clone();
    assert!(!verdict_on(&from_metadata, Endpoint::Chat, &chat("x"), &md).await);
}

#[tokio::test]
async fn text_of_other_endpoints() {
    let h = hook(json!({"contains": {"words": ["needle"]}}));
    let prompt = json!({"model": "m", "prompt": ["hay", "needle"]});
    assert!(verdict_on(&h, Endpoint::Completions, &prompt, &Map::new()).await);
    let responses = json!({"model": "m", "input": [{"role": "user", "content": [{"type": "input_text", "text": "a needle"}]}]});
    assert!(verdict_on(&h, Endpoint::Responses, &responses, &Map::new()).await);
    let out = json!({"output": [{"type": "message", "content": [{"type": "output_text", "text": "needle"}]}]});
    assert!(
        run_with(
            &h,
            Stage::After,
            Endpoint::Responses,
            &responses,
            Some(&out),
            &Map::new()
        )
        .await
        .result
        .verdict
    );
    let completion = json!({"choices": [{"text": "no"}]});
    assert!(
        !run_with(
            &h,
            Stage::After,
            Endpoint::Completions,
            &prompt,
            Some(&completion),
            &Map::new()
        )
        .await
        .result
        .verdict
    );
}

#[tokio::test]
async fn regex_replace_rewrites_every_message() {
    let h = hook(json!({"regexReplace": {"rule": "/secret-\\d+/i", "redactText": "[X]"}}));
    let mut req = chat("my SECRET-42 is here");
    req["messages"][1]["content"] = json!("also secret-7");
    let v = run_on(&h, Stage::Before, &req, None).await;
    assert!(v.result.verdict && v.result.transformed);
    let body = v.transformed.unwrap();
    assert_eq!(body["messages"][3]["content"], "my [X] is here");
    assert_eq!(body["messages"][1]["content"], "also [X]");
    let strict = hook(json!({"regexReplace": {"rule": "secret", "failOnDetection": true}}));
    assert!(
        !run_on(&strict, Stage::Before, &chat("secret"), None)
            .await
            .result
            .verdict
    );
}

#[tokio::test]
async fn words_are_counted_as_split_whitespace_counts_them() {
    let texts = [
        "",
        "   ",
        "one",
        "  two   words ",
        "tab\tnew\nline\rcr\x0bvt\x0cff end",
        "no\x1cbreak\x1fhere",
        "non-breaking\u{a0}space and\u{2003}em\u{3000}ideographic",
        "caf\u{e9} ol\u{e9}\n",
        // Longer than the 255-byte runs the count goes by, with words across their ends.
        &"ab ".repeat(300),
        &" x\t".repeat(200),
        &format!("{}y z", "w".repeat(254)),
    ];
    for text in texts {
        let v = run_before(json!({"wordCount": {}}), text).await;
        let counted = &v.result.checks[0].data.to_value()["wordCount"];
        assert_eq!(counted, text.split_whitespace().count(), "{text:?}");
    }
}
