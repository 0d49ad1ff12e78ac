use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use super::*;

/// A local server: `/allow`, `/deny`, `/transform` and `/slow` webhooks, `/log` (keeps what
/// it was sent), `/ok` and 404 elsewhere. Returns its base URL and the logged bodies.
pub(super) async fn server() -> (String, Arc<Mutex<Vec<Value>>>) {
    let logged = Arc::new(Mutex::new(Vec::new()));
    let keep = logged.clone();
    let app = Router::new()
        .route(
            "/allow",
            post(|| async { Json(json!({"verdict": true, "data": {"why": "ok"}})) }),
        )
        .route("/deny", post(|| async { Json(json!({"verdict": false})) }))
        .route(
            "/transform",
            post(|Json(ctx): Json<Value>| async move {
                let mut req = ctx["request"]["json"].clone();
                req["messages"][3]["content"] =
                    json!("rewritten by the hook, write to ann@example.com");
                Json(json!({"verdict": true, "transformedData": {"request": {"json": req}}}))
            }),
        )
        .route(
            "/slow",
            post(|| async {
                tokio::time::sleep(Duration::from_millis(800)).await;
                Json(json!({"verdict": true}))
            }),
        )
        .route(
            "/log",
            post(move |Json(ctx): Json<Value>| async move {
                keep.lock().unwrap().push(ctx);
                ""
            }),
        )
        .route("/ok", get(|| async { "fine" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, logged)
}

fn webhook(url: String) -> Value {
    json!({"webhook": {"webhookURL": url, "headers": "{\"x-token\": \"t\"}", "timeout": 200}})
}

#[tokio::test]
async fn webhook_verdicts() {
    let (base, _) = server().await;
    let allow = run_before(webhook(format!("{base}/allow")), "hi").await;
    assert!(allow.result.verdict);
    assert_eq!(
        allow.result.checks[0].data.to_value()["responseData"],
        json!({"why": "ok"})
    );
    let deny = run_before(webhook(format!("{base}/deny")), "hi").await;
    assert!(!deny.result.verdict && deny.result.checks[0].error.is_none());
}

#[tokio::test]
async fn webhook_transformed_data_replaces_the_body() {
    let (base, _) = server().await;
    let url = format!("{base}/transform");
    let content = |v: Verdict| v.transformed.unwrap()["messages"][3]["content"].clone();
    let v = run_before(webhook(url.clone()), "hi").await;
    assert!(v.result.transformed);
    assert_eq!(
        content(v),
        "rewritten by the hook, write to ann@example.com"
    );
    // Checks run concurrently; the redaction still lands on top of the webhook's body.
    let both = json!({"pii": {"redact": true}, "webhook": {"webhookURL": url}});
    let v = run_before(both, "mine: bob@example.com").await;
    assert_eq!(
        content(v),
        "rewritten by the hook, write to [EMAIL_ADDRESS]"
    );
}

#[tokio::test]
async fn webhook_errors_pass_unless_fail_on_error() {
    let (base, _) = server().await;
    let slow = run_before(webhook(format!("{base}/slow")), "hi").await;
    assert!(slow.result.verdict, "a timed-out webhook passes");
    let error = slow.result.checks[0].error.clone().unwrap();
    assert!(error.contains("did not answer within 200 ms"), "{error}");
    let mut strict = webhook(format!("{base}/slow"));
    strict["webhook"]["failOnError"] = json!(true);
    assert!(!run_before(strict, "hi").await.result.verdict);
    let missing = run_before(webhook(format!("{base}/nope")), "hi").await;
    assert!(missing.result.checks[0]
        .error
        .as_deref()
        .unwrap()
        .ends_with("answered HTTP 404"));
}

#[tokio::test]
async fn log_posts_the_context_and_passes() {
    let (base, logged) = server().await;
    let h = hook(json!({"log": {"logURL": format!("{base}/log")}}));
    let req = chat("question");
    let v = run_on(&h, Stage::After, &req, Some(&answer("the answer"))).await;
    assert!(v.result.verdict);
    let ctx = logged.lock().unwrap().pop().unwrap();
    assert_eq!(ctx["eventType"], "afterRequestHook");
    assert_eq!(ctx["requestType"], "chatComplete");
    assert_eq!(ctx["request"]["text"], "question");
    assert_eq!(ctx["response"]["text"], "the answer");
    assert_eq!(ctx["response"]["statusCode"], 200);
    assert_eq!(ctx["provider"], "openai");
}

#[tokio::test]
async fn valid_urls() {
    let (base, _) = server().await;
    let urls =
        |only_dns: bool, not: bool| hook(json!({"validUrls": {"onlyDNS": only_dns, "not": not}}));
    let ok = format!("see {base}/ok.");
    assert!(after(json!({"validUrls": {}}), &ok).await);
    assert!(!after(json!({"validUrls": {}}), &format!("see {base}/missing")).await);
    let v = run_on(
        &urls(true, false),
        Stage::After,
        &chat("q"),
        Some(&answer(&format!("{base}/missing"))),
    )
    .await;
    assert!(v.result.verdict, "onlyDNS: localhost resolves");
    let bad = answer("at http://no-such-host.invalid/x");
    assert!(
        !run_on(&urls(true, false), Stage::After, &chat("q"), Some(&bad))
            .await
            .result
            .verdict
    );
    assert!(
        run_on(&urls(true, true), Stage::After, &chat("q"), Some(&bad))
            .await
            .result
            .verdict
    );
}
