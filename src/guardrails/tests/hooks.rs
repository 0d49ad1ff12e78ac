use serde_json::json;

use super::*;
use crate::api::guardrails::{Actions, CheckSpec};

#[tokio::test]
async fn sequential_checks_see_earlier_edits() {
    let checks = json!({"regexReplace": {"rule": "apple", "redactText": "pear"}, "contains": {"words": ["pear"]}});
    let mut seq = checks.clone();
    seq["sequential"] = json!(true);
    let v = run_on(&hook(seq), Stage::Before, &chat("an apple"), None).await;
    assert!(v.result.verdict);
    assert_eq!(v.transformed.unwrap()["messages"][3]["content"], "an pear");
    let v = run_on(&hook(checks), Stage::Before, &chat("an apple"), None).await;
    assert!(
        !v.result.verdict,
        "without sequential every check sees the original"
    );
    assert_eq!(v.transformed.unwrap()["messages"][3]["content"], "an pear");
}

#[tokio::test]
async fn verdict_deny_and_feedback() {
    let h = Hook::from_raw(&json!({
        "id": "h1", "type": "mutator", "deny": true, "async": true,
        "checks": [
            {"id": "default.contains", "parameters": {"words": ["x"]}},
            {"id": "default.wordCount", "parameters": {"maxWords": 10}},
            {"id": "default.regexMatch", "parameters": {"rule": "y"}},
            {"id": "default.notNull", "is_enabled": false}
        ],
        "onFail": {"feedback": {"value": -1, "weight": 2, "metadata": {"team": "a"}}},
        "on_success": {"feedback": {"value": 1}}
    }))
    .unwrap();
    let v = run_on(&h, Stage::Before, &chat("a b c"), None).await;
    let r = v.result;
    assert_eq!((&*r.id, &*r.r#type, r.r#async), ("h1", "mutator", true));
    assert!(!r.verdict && r.deny);
    assert_eq!(r.checks.len(), 3, "disabled checks do not run");
    assert_eq!(
        r.feedback.unwrap(),
        json!({"value": -1, "weight": 2, "metadata": {"team": "a",
            "successfulChecks": "default.wordCount",
            "failedChecks": "default.contains,default.regexMatch", "erroredChecks": ""}})
    );
    assert!(r.execution_time >= 0.0 && r.created_at.ends_with('Z'));
    let pass = run_on(&h, Stage::Before, &chat("x y"), None).await.result;
    assert!(pass.verdict && !pass.deny);
    assert_eq!(pass.feedback.unwrap()["value"], 1);
}

#[test]
fn constructor_errors_name_the_path() {
    let e = Hook::from_raw(&json!({"type": "filter", "dny": true})).unwrap_err();
    assert_eq!(
        e,
        [
            r#"type: expected "guardrail" or "mutator""#,
            "dny: unknown field; expected one of checks, deny, async, sequential, on_fail, on_success, id, type, guardrail_version_id",
            r#"checks: required: a non-empty array of {"id": "plugin.check", "parameters": {...}}"#,
        ]
    );
    let e = Hook::from_raw(&json!({"checks": [
        {"id": "default.regexMatch", "parameters": {"rule": "(a"}},
        {"id": "default.webhook", "parameters": {"webhookURL": "ftp://x", "headers": 3}},
        {"id": "default.jsonSchema", "parameters": {"schema": {"type": "obj", "properties": {"a": {"$ref": "#/x"}}}}}
    ]}))
    .unwrap_err();
    assert!(
        e[0].starts_with("checks[0].parameters.rule: invalid regular expression: "),
        "{e:?}"
    );
    assert_eq!(
        e[1],
        r#"checks[1].parameters.webhookURL: expected an http or https URL, found scheme "ftp""#
    );
    assert_eq!(
        e[2],
        "checks[1].parameters.headers: expected an object of header names to values, found 3"
    );
    assert!(
        e[3].starts_with(r#"checks[2].parameters.schema.type: unknown type "obj""#),
        "{e:?}"
    );
    assert_eq!(e[4], "checks[2].parameters.schema.properties.a.$ref: $ref is not supported; write the referenced schema inline");

    let e = Hook::from_shorthand(&json!({"deny": "yes", "moderateContent": {}}), "g".into())
        .unwrap_err();
    assert_eq!(e[0], "deny: expected a boolean");
    assert!(e[1].starts_with(
        r#"moderateContent: unsupported check "default.moderateContent"; supported: "#
    ));
    assert!(e[1].ends_with("default.regexReplace, portkey.pii"));

    let spec = |id: &str, params: Value| CheckSpec {
        id: id.into(),
        parameters: params.as_object().unwrap().clone(),
        name: None,
        is_enabled: true,
    };
    let checks = [
        spec("default.contains", json!({})),
        spec("acme.scan", json!({})),
    ];
    let e = Hook::from_saved("pg-x", &checks, &Actions::default()).unwrap_err();
    assert_eq!(
        e[0],
        "checks[0].parameters.words: required: a non-empty array of words or phrases to look for"
    );
    assert!(e[1].starts_with(r#"checks[1].id: unsupported check "acme.scan""#));
    let ok = Hook::from_saved(
        "pg-x",
        &[spec("default.pii", json!({"redact": true}))],
        &Actions {
            deny: true,
            ..Actions::default()
        },
    )
    .unwrap();
    assert_eq!((&*ok.id, ok.deny), ("pg-x", true));
}

#[test]
fn shorthand_takes_its_own_id() {
    let h = Hook::from_shorthand(
        &json!({"id": "mine", "contains": {"words": ["a"]}}),
        "gen".into(),
    )
    .unwrap();
    assert_eq!(&*h.id, "mine");
    assert_eq!(
        Hook::from_shorthand(&json!({"notNull": {}}), "gen".into())
            .unwrap()
            .id,
        "gen".into()
    );
}
