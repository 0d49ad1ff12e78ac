//! Guardrails through the real server: input and output hooks from configs and saved
//! guardrails, against local upstreams that record what they were sent. PII redaction, 446 and
//! 246 answers, fallback on 446, webhooks with their timeout, streams, async hooks, records,
//! and the `guardrails` CLI.

use std::time::Duration;

use serde_json::{json, Value};

use crate::common::{
    add_openai_integration, gateway_env, http_send, openai_chat_json, openai_chat_sse,
    streamed_text, wait_for_logs, HttpReply, TestEnv,
};
use crate::logs_cli::Tail;
use crate::upstream::{Reply, Upstream};

const CHAT: &str = "/v1/chat/completions";
const EMAIL: &str = "ann.lee@example.com";
/// A Visa test number: passes the Luhn check.
const CARD: &str = "4111 1111 1111 1111";

/// Answers every chat request with `text` (streamed when asked).
fn answering(text: &'static str) -> Upstream {
    Upstream::start(move |req| {
        let body = req.json();
        let model = body["model"].as_str().unwrap_or("?").to_string();
        if body["stream"] == true {
            let events = openai_chat_sse(&model, &[text]);
            let events: Vec<&str> = events.iter().map(String::as_str).collect();
            Reply::sse(&events)
        } else {
            Reply::ok(openai_chat_json(&model, text))
        }
    })
}

fn env_with(upstreams: &[(&str, &Upstream)]) -> TestEnv {
    let env = gateway_env(&[]);
    for (slug, upstream) in upstreams {
        add_openai_integration(&env, slug, &upstream.url);
    }
    env
}

fn chat(env: &TestEnv, config: &Value, body: &Value) -> HttpReply {
    let config = config.to_string();
    http_send(
        &env.url,
        "POST",
        CHAT,
        &[
            ("x-portkey-api-key", env.admin_key.as_str()),
            ("x-portkey-config", &config),
        ],
        Some(&body.to_string()),
    )
}

fn ask(text: &str) -> Value {
    json!({"model": "gpt-4o", "messages": [
        {"role": "system", "content": format!("The user's card is {CARD}.")},
        {"role": "user", "content": text}
    ]})
}

/// The check results of the first hook of `stage` in a `hook_results` object.
fn checks(results: &Value, stage: &str) -> Vec<(String, bool)> {
    results[stage][0]["checks"]
        .as_array()
        .unwrap_or_else(|| panic!("no {stage} in {results}"))
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap().to_string(),
                c["verdict"].as_bool().unwrap(),
            )
        })
        .collect()
}

#[test]
fn pii_is_redacted_before_the_provider_and_before_the_client_sees_it() {
    let upstream = answering("Call me on +1 415 555 0100 or write to bob@example.org.");
    let env = env_with(&[("oa", &upstream)]);
    let config = json!({
        "provider": "@oa",
        "input_guardrails": [{"portkey.pii": {"redact": true}}],
        "output_guardrails": [{"portkey.pii": {"redact": true}}]
    });
    let reply = chat(&env, &config, &ask(&format!("Mail {EMAIL} please")));
    assert_eq!(reply.status, 200, "{reply}");

    let sent = upstream.requests()[0].body.clone();
    let sent = String::from_utf8_lossy(&sent);
    assert!(!sent.contains(EMAIL), "the provider saw the e-mail: {sent}");
    assert!(!sent.contains(CARD), "the provider saw the card: {sent}");
    assert!(sent.contains("Mail ") && sent.contains(" please"), "{sent}");

    let body = reply.json();
    let answer = body["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(!answer.contains("555 0100"), "{answer}");
    assert!(!answer.contains("bob@example.org"), "{answer}");
    assert!(answer.starts_with("Call me on "), "{answer}");
    let results = &body["hook_results"];
    assert_eq!(results["before_request_hooks"][0]["transformed"], true);
    assert_eq!(results["after_request_hooks"][0]["transformed"], true);
    assert_eq!(results["before_request_hooks"][0]["verdict"], true);

    let records = wait_for_logs(&env, "", 1);
    let recorded = &records[0]["hook_results"];
    assert_eq!(recorded["before_request_hooks"][0]["transformed"], true);
    assert_eq!(recorded["after_request_hooks"][0]["transformed"], true);
}

#[test]
fn a_denying_input_guardrail_answers_446_without_calling_the_provider() {
    let upstream = answering("never sent");
    let env = env_with(&[("oa", &upstream)]);
    let config = json!({
        "provider": "@oa",
        "input_guardrails": [{
            "regexMatch": {"rule": "project[- ]titan", "not": true},
            "wordCount": {"maxWords": 50},
            "deny": true
        }]
    });
    let reply = chat(&env, &config, &ask("Tell me about project titan"));
    assert_eq!(reply.status, 446, "{reply}");
    let body = reply.json();
    assert_eq!(body["error"]["type"], "hooks_failed");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("hook_results"));
    assert_eq!(
        checks(&body["hook_results"], "before_request_hooks"),
        [
            ("default.regexMatch".to_string(), false),
            ("default.wordCount".to_string(), true)
        ]
    );
    assert_eq!(
        body["hook_results"]["before_request_hooks"][0]["deny"],
        true
    );
    assert_eq!(body["hook_results"]["after_request_hooks"], json!([]));
    assert!(upstream.requests().is_empty(), "the provider was called");

    // A request that passes goes through.
    let reply = chat(&env, &config, &ask("Tell me about project apollo"));
    assert_eq!(reply.status, 200, "{reply}");
    assert_eq!(upstream.requests().len(), 1);

    let records = wait_for_logs(&env, "status=446", 1);
    assert_eq!(
        records[0]["hook_results"]["before_request_hooks"][0]["verdict"],
        false
    );
    assert!(records[0]["attempts"].as_array().unwrap().is_empty());

    // The trace shows the hook as a span of the request.
    let trace_id = records[0]["trace_id"].as_str().unwrap();
    let trace = env
        .admin("GET", &format!("/v1/traces/{trace_id}"), None)
        .json();
    let hook = &trace["spans"][0]["children"][0];
    assert_eq!(hook["kind"], "guardrail", "{trace}");
    assert_eq!(hook["status"], 446);
    assert_eq!(hook["error"], "failed: default.regexMatch");
    env.run(&["trace", "show", trace_id])
        .ok()
        .stdout_has("input guardrail")
        .stdout_has("failed: default.regexMatch");
}

#[test]
fn a_failed_check_without_deny_answers_246_with_the_body() {
    let upstream = answering("This answer is certainly longer than five words.");
    let env = env_with(&[("oa", &upstream)]);
    let config = json!({
        "provider": "@oa",
        "output_guardrails": [{"wordCount": {"maxWords": 5}, "endsWith": {"suffix": "."}}]
    });
    let reply = chat(&env, &config, &ask("hi"));
    assert_eq!(reply.status, 246, "{reply}");
    assert_eq!(reply.header("x-portkey-provider"), Some("openai"));
    let body = reply.json();
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "This answer is certainly longer than five words."
    );
    assert_eq!(
        checks(&body["hook_results"], "after_request_hooks"),
        [
            ("default.wordCount".to_string(), false),
            ("default.endsWith".to_string(), true)
        ]
    );
    assert_eq!(
        body["hook_results"]["after_request_hooks"][0]["deny"],
        false
    );
}

#[test]
fn an_output_refusal_falls_back_only_where_446_is_listed() {
    let rude = answering("I WILL NOT ANSWER THAT");
    let polite = answering("Here is the answer.");
    let env = env_with(&[("rude", &rude), ("polite", &polite)]);
    let strict = json!({"alluppercase": {"not": true}, "deny": true});
    let config = |codes: Option<Value>| {
        let mut strategy = json!({"mode": "fallback"});
        if let Some(codes) = codes {
            strategy["on_status_codes"] = codes;
        }
        json!({
            "strategy": strategy,
            "output_guardrails": [strict.clone()],
            "targets": [{"provider": "@rude"}, {"provider": "@polite"}]
        })
    };

    let reply = chat(&env, &config(None), &ask("hi"));
    assert_eq!(
        reply.status, 446,
        "without on_status_codes a 446 is final: {reply}"
    );
    assert_eq!(polite.requests().len(), 0);

    let reply = chat(&env, &config(Some(json!([446, 500]))), &ask("hi"));
    assert_eq!(reply.status, 200, "{reply}");
    assert_eq!(
        reply.header("x-portkey-last-used-option-index"),
        Some("config.targets[1]")
    );
    assert_eq!(
        reply.json()["choices"][0]["message"]["content"],
        "Here is the answer."
    );
    assert_eq!(polite.requests().len(), 1);
    assert_eq!(rude.requests().len(), 2);
}

#[test]
fn webhook_checks_decide_and_time_out() {
    let upstream = answering("fine");
    // Refuses texts that mention "refund"; takes 2 s on texts that mention "slow".
    let hook = Upstream::start(|req| {
        let text = req.json()["request"]["text"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let verdict = !text.contains("refund");
        let reply = Reply::ok(json!({"verdict": verdict}));
        if text.contains("slow") {
            Reply::Delay(Duration::from_secs(2), Box::new(reply))
        } else {
            reply
        }
    });
    let env = env_with(&[("oa", &upstream)]);
    let config = |fail_on_error: bool| {
        json!({
            "provider": "@oa",
            "input_guardrails": [{
                "webhook": {"webhookURL": format!("{}/check", hook.url), "timeout": 300,
                            "headers": {"x-team": "billing"}, "failOnError": fail_on_error},
                "deny": true
            }]
        })
    };
    assert_eq!(chat(&env, &config(false), &ask("hello")).status, 200);
    let refused = chat(&env, &config(false), &ask("I want a refund"));
    assert_eq!(refused.status, 446, "{refused}");
    let seen = &hook.requests()[1];
    assert_eq!(seen.header("x-team"), Some("billing"));
    assert_eq!(seen.json()["eventType"], "beforeRequestHook");

    // A webhook that times out is an error: it passes unless failOnError.
    let slow = chat(&env, &config(false), &ask("slow please"));
    assert_eq!(slow.status, 200, "{slow}");
    let check = &slow.json()["hook_results"]["before_request_hooks"][0]["checks"][0];
    assert!(
        check["error"]
            .as_str()
            .unwrap()
            .contains("did not answer within 300 ms"),
        "{check}"
    );
    assert_eq!(check["verdict"], true);
    let strict = chat(&env, &config(true), &ask("slow please"));
    assert_eq!(strict.status, 446, "{strict}");
}

#[test]
fn streams_carry_hook_results_before_and_after_the_answer() {
    let upstream = answering("Streamed answer here");
    let env = env_with(&[("oa", &upstream)]);
    let config = json!({
        "provider": "@oa",
        "input_guardrails": [{"characterCount": {"maxCharacters": 5}}],
        "output_guardrails": [{"contains": {"words": ["answer"], "operator": "any"}}]
    });
    let mut body = ask("a request longer than five characters");
    body["stream"] = json!(true);
    let reply = chat(&env, &config, &body);
    assert_eq!(reply.status, 246, "the input check failed: {reply}");
    let data = reply.sse_data();
    let first: Value = serde_json::from_str(&data[0]).unwrap();
    assert_eq!(
        checks(&first["hook_results"], "before_request_hooks"),
        [("default.characterCount".to_string(), false)]
    );
    let done = data.iter().position(|d| d == "[DONE]").expect("[DONE]");
    assert_eq!(done, data.len() - 2, "one chunk after [DONE]: {data:?}");
    let last: Value = serde_json::from_str(&data[done + 1]).unwrap();
    assert_eq!(
        checks(&last["hook_results"], "after_request_hooks"),
        [("default.contains".to_string(), true)]
    );
    assert_eq!(streamed_text(&data[1..done]), "Streamed answer here");

    let records = wait_for_logs(&env, "", 1);
    let recorded = &records[0]["hook_results"];
    assert_eq!(recorded["before_request_hooks"][0]["verdict"], false);
    assert_eq!(recorded["after_request_hooks"][0]["verdict"], true);
}

#[test]
fn async_hooks_hold_nothing_up_and_reach_only_the_record() {
    let upstream = answering("ok");
    let env = env_with(&[("oa", &upstream)]);
    let config = json!({
        "provider": "@oa",
        "input_guardrails": [{"contains": {"words": ["please"]}, "async": true, "deny": true}]
    });
    let reply = chat(&env, &config, &ask("no magic word"));
    assert_eq!(reply.status, 200, "an async hook never refuses: {reply}");
    assert!(reply.json().get("hook_results").is_none(), "{reply}");
    let records = wait_for_logs(&env, "", 1);
    let hook = &records[0]["hook_results"]["before_request_hooks"][0];
    assert_eq!(hook["async"], true);
    assert_eq!(hook["verdict"], false);

    // The same for a stream replayed from the cache.
    let mut cached = config.clone();
    cached["cache"] = json!({"mode": "simple"});
    let mut body = ask("no magic word");
    body["stream"] = json!(true);
    assert_eq!(
        chat(&env, &cached, &body).header("x-portkey-cache-status"),
        Some("MISS")
    );
    let replay = chat(&env, &cached, &body);
    assert_eq!(
        replay.header("x-portkey-cache-status"),
        Some("HIT"),
        "{replay}"
    );
    let records = wait_for_logs(&env, "cache_status=HIT", 1);
    let hook = &records[0]["hook_results"]["before_request_hooks"][0];
    assert_eq!(hook["async"], true, "{:#}", records[0]);
}

/// The record keeps a guarded request's results as the JSON the client got; a live tail gets
/// them back as the same object, and so does a read from the store.
#[test]
fn live_tails_get_the_results_the_client_got() {
    let upstream = answering("A short answer.");
    let env = env_with(&[("oa", &upstream)]);
    let mut tail = Tail::start(&env, &["logs", "tail", "-o", "ndjson"]);
    tail.wait_note("following records");
    let config = json!({
        "provider": "@oa",
        "input_guardrails": [{"pii": {"redact": true}, "wordCount": {"maxWords": 50}}],
        "output_guardrails": [{"endsWith": {"suffix": "."}}]
    });
    let config = config.to_string();
    let reply = http_send(
        &env.url,
        "POST",
        CHAT,
        &[
            ("x-portkey-api-key", env.admin_key.as_str()),
            ("x-portkey-config", &config),
            ("x-portkey-trace-id", "guarded-tail"),
        ],
        Some(&ask(&format!("Mail me at {EMAIL}")).to_string()),
    );
    assert_eq!(reply.status, 200, "{reply}");
    let sent = reply.json()["hook_results"].clone();
    assert_eq!(checks(&sent, "before_request_hooks").len(), 2, "{sent}");
    assert_eq!(checks(&sent, "after_request_hooks").len(), 1, "{sent}");
    assert_eq!(tail.wait_record("guarded-tail")["hook_results"], sent);
    let stored = wait_for_logs(&env, "trace_id=guarded-tail", 1);
    assert_eq!(stored[0]["hook_results"], sent);
}

#[test]
fn saved_guardrails_are_managed_tried_and_used_by_slug() {
    let upstream = answering("ok");
    let env = env_with(&[("oa", &upstream)]);
    let out = env
        .run(&[
            "guardrails",
            "create",
            "--name",
            "no secrets",
            "--check",
            r#"regexMatch={"rule":"sk-[A-Za-z0-9]{8,}","not":true}"#,
            "--deny",
            "-o",
            "json",
        ])
        .ok();
    let created = out.json();
    let slug = created["slug"].as_str().unwrap().to_string();
    assert!(slug.starts_with("pg-nosec-"), "{slug}");
    assert_eq!(created["actions"]["deny"], true);

    let list = env.run(&["guardrails", "list"]).ok();
    assert!(list.stdout.contains(&slug), "{}", list.stdout);

    // Tried locally: a pass exits 0, a failure exits 1 and says the request would be refused.
    env.run(&["guardrails", "test", &slug, "--text", "nothing to see"])
        .ok()
        .stderr_has("passed");
    env.run(&["guardrails", "test", &slug, "--text", "key sk-abcdefgh1234"])
        .code(1)
        .stdout_has("FAIL")
        .stderr_has("refused (446)");
    let file = env.write(
        "pii.yaml",
        "checks:\n  - id: portkey.pii\n    parameters: {redact: true}\n",
    );
    env.run(&[
        "guardrails",
        "test",
        &file,
        "--text",
        &format!("write {EMAIL}"),
    ])
    .ok()
    .stdout_has("transformed: write [EMAIL_ADDRESS]");

    // Used from a saved config; the config cannot name one that does not exist.
    let bad = env.admin(
        "POST",
        "/v1/configs",
        Some(json!({"name": "bad", "config": {"provider": "@oa", "input_guardrails": ["pg-nope-000000"]}})),
    );
    assert_eq!(bad.status, 400, "{bad}");
    assert!(bad.body.contains("pg-nope-000000"), "{bad}");
    let saved = env.admin(
        "POST",
        "/v1/configs",
        Some(json!({"name": "guarded", "config": {"provider": "@oa", "input_guardrails": [slug]}})),
    );
    assert_eq!(saved.status, 200, "{saved}");
    let config_slug = saved.json()["data"]["slug"].as_str().unwrap().to_string();
    let send = |text: &str| {
        http_send(
            &env.url,
            "POST",
            CHAT,
            &[
                ("x-portkey-api-key", env.admin_key.as_str()),
                ("x-portkey-config", config_slug.as_str()),
            ],
            Some(&ask(text).to_string()),
        )
    };
    assert_eq!(send("my key is sk-abcdefgh1234").status, 446);
    assert_eq!(send("hello").status, 200);

    // An update applies from the next request on.
    env.run(&["guardrails", "update", &slug, "--deny", "false"])
        .ok();
    assert_eq!(send("my key is sk-abcdefgh1234").status, 246);

    // It cannot be deleted while the config names it.
    env.run(&["guardrails", "delete", &slug, "--yes"])
        .code(5)
        .stderr_has(&config_slug);
    env.run(&["configs", "delete", &config_slug, "--yes"]).ok();
    env.run(&["guardrails", "delete", &slug, "--yes"]).ok();
    env.run(&["guardrails", "get", &slug]).code(4);

    // Bad checks are refused with the reason.
    env.run(&[
        "guardrails",
        "create",
        "--name",
        "broken",
        "--check",
        r#"regexMatch={"rule":"("}"#,
    ])
    .code(1)
    .stderr_has("rule");
}

#[test]
fn cache_hits_get_this_request_s_hook_results_and_flagged_answers_are_not_cached() {
    let upstream = answering("Hello there.");
    let env = env_with(&[("oa", &upstream)]);
    let config = json!({
        "provider": "@oa",
        "cache": {"mode": "simple"},
        "input_guardrails": [{"wordCount": {"maxWords": 3}}]
    });
    let short = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "one two"}]});
    let first = chat(&env, &config, &short);
    assert_eq!(first.status, 200, "{first}");
    assert_eq!(first.header("x-portkey-cache-status"), Some("MISS"));
    let again = chat(&env, &config, &short);
    assert_eq!(
        again.header("x-portkey-cache-status"),
        Some("HIT"),
        "{again}"
    );
    assert_eq!(upstream.requests().len(), 1);
    let body = again.json();
    assert_eq!(
        checks(&body["hook_results"], "before_request_hooks"),
        [("default.wordCount".to_string(), true)]
    );
    assert_eq!(body["choices"][0]["message"]["content"], "Hello there.");

    // Flagged by its input: answered (246) but not kept, so it is asked again.
    let long =
        json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "one two three four"}]});
    for _ in 0..2 {
        let reply = chat(&env, &config, &long);
        assert_eq!(reply.status, 246, "{reply}");
        assert_eq!(reply.header("x-portkey-cache-status"), Some("MISS"));
    }
    assert_eq!(upstream.requests().len(), 3);
}

#[test]
fn a_refused_answer_is_asked_again_where_retry_lists_446() {
    // Shouts on its first answer, then answers calmly.
    let calls = std::sync::atomic::AtomicUsize::new(0);
    let upstream = Upstream::start(move |req| {
        let model = req.json()["model"].as_str().unwrap_or("?").to_string();
        let text = match calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) {
            0 => "NO.",
            _ => "Here you are.",
        };
        Reply::ok(openai_chat_json(&model, text))
    });
    let env = env_with(&[("oa", &upstream)]);
    let config = json!({
        "provider": "@oa",
        "retry": {"attempts": 2, "on_status_codes": [446]},
        "input_guardrails": [{"wordCount": {"maxWords": 100}}],
        "output_guardrails": [{"alluppercase": {"not": true}, "deny": true}]
    });
    let reply = chat(&env, &config, &ask("hi"));
    assert_eq!(reply.status, 200, "{reply}");
    assert_eq!(reply.header("x-portkey-retry-attempt-count"), Some("1"));
    let body = reply.json();
    assert_eq!(body["choices"][0]["message"]["content"], "Here you are.");
    // The input hook ran once, before the first attempt; the retried answer carries it too.
    let results = &body["hook_results"];
    assert_eq!(
        checks(results, "before_request_hooks"),
        [("default.wordCount".to_string(), true)]
    );
    assert_eq!(
        checks(results, "after_request_hooks"),
        [("default.alluppercase".to_string(), true)]
    );
    assert_eq!(upstream.requests().len(), 2);
}
