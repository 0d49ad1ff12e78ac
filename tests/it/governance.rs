//! Budgets, rate limits and model access through the real server and CLI, against a local
//! OpenAI-compatible upstream that reports usage the test controls.

use std::time::Duration;

use serde_json::{json, Value};

use crate::common::{gateway_env, http_send, openai_chat_json, HttpReply, TestEnv};
use crate::upstream::{Reply, Upstream};

pub const CHAT: &str = "/v1/chat/completions";
/// The integration's price override: $0.001 a token, in and out.
const PER_TOKEN: f64 = 0.001;

/// A request of a fixed size, so its reservation is known: (its length + max_tokens) tokens.
pub fn body(model: &str) -> String {
    json!({"model": model, "max_tokens": 3, "messages": [{"role": "user", "content": "hello"}]})
        .to_string()
}

/// The most (and, with [`exact_upstream`], exactly what) one request of [`body`] costs.
pub fn cost_of(model: &str) -> f64 {
    (body(model).len() + 3) as f64 * PER_TOKEN
}

/// Answers after `delay`, reporting the usage a request of [`body`] for `model` is bounded by,
/// so each request uses exactly what it reserved.
pub fn exact_upstream(model: &'static str, delay: Duration) -> Upstream {
    let prompt = body(model).len();
    Upstream::start(move |r| {
        let m = r.json()["model"].as_str().unwrap_or_default().to_string();
        let mut answer = openai_chat_json(&m, "hi");
        answer["usage"] =
            json!({"prompt_tokens": prompt, "completion_tokens": 3, "total_tokens": prompt + 3});
        Reply::Delay(delay, Box::new(Reply::ok(answer)))
    })
}

/// An OpenAI integration `slug` at `upstream`, priced at [`PER_TOKEN`].
pub fn priced_integration(env: &TestEnv, slug: &str, upstream: &Upstream, extra: Value) {
    let mut body = json!({
        "slug": slug, "ai_provider_id": "openai", "key": "sk-upstream-test",
        "configurations": {
            "custom_host": format!("{}/v1", upstream.url),
            "models": ["m1", "m1-mini", "m2", "m3"],
            "pricing": {"m1": {"input": 1000.0, "output": 1000.0}, "m2": {"input": 1000.0, "output": 1000.0}}
        }
    });
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let reply = env.admin("POST", "/v1/integrations", Some(body));
    assert_eq!(reply.status, 200, "{}", reply.body);
}

fn chat(env: &TestEnv, key: &str, text: &str, headers: &[(&str, &str)]) -> HttpReply {
    let mut all = vec![("x-portkey-api-key", key)];
    all.extend_from_slice(headers);
    http_send(&env.url, "POST", CHAT, &all, Some(text))
}

/// Sends `n` requests at once; returns their replies.
fn concurrently(env: &TestEnv, key: &str, text: &str, n: usize) -> Vec<HttpReply> {
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|_| s.spawn(|| chat(env, key, text, &[])))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

pub fn budget_status(env: &TestEnv) -> Vec<Value> {
    let out = env.run(&["budgets", "status", "-o", "json"]).ok();
    out.json().as_array().cloned().unwrap()
}

/// The key's budget counter: (used, reserved).
pub fn key_counter(env: &TestEnv, key_name: &str) -> (f64, f64) {
    let status = budget_status(env);
    let b = status
        .iter()
        .find(|b| b["name"] == format!("key {key_name} budget"))
        .unwrap_or_else(|| panic!("no budget of key {key_name}: {status:#?}"));
    let e = &b["entities"][0];
    (
        e["current_usage"].as_f64().unwrap(),
        e["reserved"].as_f64().unwrap(),
    )
}

/// The cost of every answered request, as the request log records it.
pub fn recorded_spend(env: &TestEnv) -> f64 {
    env.admin("GET", "/v1/logs?limit=1000&status=200", None)
        .json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["cost"].as_f64().unwrap())
        .sum()
}

pub fn wait_for_records(env: &TestEnv, n: usize) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let total = env.admin("GET", "/v1/logs/count", None).json()["total"]
            .as_u64()
            .unwrap_or(0);
        if total as usize >= n || std::time::Instant::now() > deadline {
            assert_eq!(total as usize, n);
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn two_hundred_concurrent_requests_spend_exactly_the_budget_and_a_restart_keeps_it() {
    let mut env = gateway_env(&[]);
    let upstream = exact_upstream("@gov/m1", Duration::from_millis(300));
    priced_integration(&env, "gov", &upstream, json!({}));
    let each = cost_of("@gov/m1");
    let limit = format!("{}", each * 50.0);
    let (key_id, key) = env.create_key("bot", &["--budget", &limit, "--period", "monthly"]);
    let text = body("@gov/m1");

    let replies = concurrently(&env, &key, &text, 200);
    let ok = replies.iter().filter(|r| r.status == 200).count();
    let refused: Vec<&HttpReply> = replies.iter().filter(|r| r.status == 412).collect();
    assert_eq!(ok, 50, "the budget fits exactly 50");
    assert_eq!(refused.len(), 150);
    let e = refused[0].json();
    assert_eq!(e["error"]["code"], "04");
    assert!(e["message"]
        .as_str()
        .unwrap()
        .starts_with("Portkey Error: "));
    let (used, reserved) = key_counter(&env, "bot");
    assert!((used - each * 50.0).abs() < 1e-9, "spent {used}");
    assert!(used <= each * 50.0 + 1e-9, "never past the limit");
    assert_eq!(reserved, 0.0, "no reservation leaked");
    let got = env.run(&["keys", "get", &key_id, "-o", "json"]).ok().json();
    assert_eq!(got["status"], "exhausted");
    assert_eq!(got["usage_limits"]["periodic_reset"], "monthly");
    let status = budget_status(&env);
    let resets = status[0]["resets_at"].as_str().unwrap();
    assert!(
        resets.ends_with("-01T00:00:00.000Z"),
        "a month starts on the 1st: {resets}"
    );
    env.run(&["budgets", "status"])
        .ok()
        .stdout_has("key bot budget")
        .stdout_has("exhausted");

    // The records say the same, and a restart counts them again.
    wait_for_records(&env, 200);
    let spent = recorded_spend(&env);
    assert!(
        (spent - used).abs() < 1e-9,
        "records {spent} against counter {used}"
    );
    env.restart();
    // Sums of the same costs in another order may differ in the last bit.
    let (again, held) = key_counter(&env, "bot");
    assert!(
        (again - used).abs() < 1e-9 && held == 0.0,
        "after a restart {again}, {held} against {used}"
    );
    assert_eq!(chat(&env, &key, &text, &[]).status, 412);

    // A reset starts the window over; the reset survives another restart.
    env.run(&["keys", "update", &key_id, "--reset-usage"]).ok();
    assert_eq!(chat(&env, &key, &text, &[]).status, 200);
    env.restart();
    let (used, _) = key_counter(&env, "bot");
    assert!(
        (used - each).abs() < 1e-9,
        "only the request after the reset: {used}"
    );
}

#[test]
fn a_request_rate_limit_admits_exactly_its_count_and_says_when_to_retry() {
    let env = gateway_env(&[]);
    let upstream = exact_upstream("@gov/m1", Duration::from_millis(100));
    priced_integration(&env, "gov", &upstream, json!({}));
    let (_, key) = env.create_key("limited", &["--rate", "5/day"]);
    let replies = concurrently(&env, &key, &body("@gov/m1"), 20);
    assert_eq!(replies.iter().filter(|r| r.status == 200).count(), 5);
    let limited: Vec<&HttpReply> = replies.iter().filter(|r| r.status == 429).collect();
    assert_eq!(limited.len(), 15);
    assert_eq!(limited[0].json()["error"]["code"], "05");
    let wait: u64 = limited[0]
        .header("retry-after")
        .expect("a Retry-After header")
        .parse()
        .unwrap();
    assert!((1..=86_400).contains(&wait), "{wait}");
}

#[test]
fn budgets_alert_once_then_exhaust_and_the_webhook_hears_both_once() {
    let hook = Upstream::start(|_| Reply::ok(json!({"ok": true})));
    let env = gateway_env(&["--alert-webhook", &format!("{}/hook", hook.url)]);
    let upstream = exact_upstream("@gov/m1", Duration::ZERO);
    priced_integration(&env, "gov", &upstream, json!({}));
    let each = cost_of("@gov/m1");
    let (_, key) = env.create_key(
        "alerted",
        &["--budget", &format!("{}", each * 4.0), "--alert", "50"],
    );
    let text = body("@gov/m1");
    let statuses: Vec<u16> = (0..6)
        .map(|_| chat(&env, &key, &text, &[]).status)
        .collect();
    assert_eq!(statuses, [200, 200, 200, 200, 412, 412]);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while hook.requests().len() < 2 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(200));
    let posts: Vec<Value> = hook.requests().iter().map(|r| r.json()).collect();
    let kinds: Vec<&str> = posts.iter().map(|p| p["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["budget.alert", "budget.exhausted"], "{posts:#?}");
    assert_eq!(posts[0]["percent_used"], 50.0);
    let policy = posts[0]["policy_id"].as_str().unwrap();
    let events = env.admin(
        "GET",
        &format!("/v1/policies/usage-limits/{policy}/events"),
        None,
    );
    let events = events.json();
    let recorded: Vec<(&str, bool)> = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["kind"].as_str().unwrap(), e["delivered"] == true))
        .collect();
    assert_eq!(recorded, [("exhausted", true), ("alert", true)]);
}

#[test]
fn a_per_user_policy_limits_each_user_separately() {
    let env = gateway_env(&[]);
    let upstream = exact_upstream("@gov/m1", Duration::ZERO);
    priced_integration(&env, "gov", &upstream, json!({}));
    let each = cost_of("@gov/m1");
    let out = env
        .run(&[
            "budgets",
            "create",
            "--name",
            "per-user",
            "--budget",
            &format!("{}", each * 2.0),
            "--period",
            "monthly",
            "--group-by",
            "metadata._user",
            "-o",
            "json",
        ])
        .ok();
    let policy = out.json()["id"].as_str().unwrap().to_string();
    let (_, key) = env.create_key("app", &[]);
    let text = body("@gov/m1");
    let as_user = |u: &str| {
        let meta = json!({"_user": u}).to_string();
        chat(&env, &key, &text, &[("x-portkey-metadata", &meta)])
    };
    assert_eq!(as_user("alice").status, 200);
    assert_eq!(as_user("alice").status, 200);
    let refused = as_user("alice");
    assert_eq!(refused.status, 412);
    let message = refused.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.contains("per-user") && message.contains("metadata._user=alice"),
        "{message}"
    );
    assert_eq!(as_user("bob").status, 200, "bob has a budget of his own");
    let entities = env.admin(
        "GET",
        &format!("/v1/policies/usage-limits/{policy}/entities"),
        None,
    );
    let by_user: Vec<(String, String)> = entities.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["value_key"].as_str().unwrap().into(),
                e["status"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        by_user,
        [
            ("metadata._user=alice".to_string(), "exhausted".to_string()),
            ("metadata._user=bob".to_string(), "active".to_string())
        ]
    );
    env.run(&[
        "budgets",
        "reset",
        &policy,
        "--value",
        "metadata._user=alice",
    ])
    .ok();
    assert_eq!(as_user("alice").status, 200);
}

#[test]
fn model_allow_lists_refuse_with_the_rule_named_and_a_fallback_moves_on() {
    let env = gateway_env(&[]);
    let upstream = exact_upstream("@gov/m1", Duration::ZERO);
    priced_integration(
        &env,
        "gov",
        &upstream,
        json!({"allowed_models": ["m1", "m2"]}),
    );
    let (key_id, key) = env.create_key(
        "narrow",
        &[
            "--budget", "50", "--period", "monthly", "--alert", "80", "--rate", "60/min",
            "--models", "@gov/m1*",
        ],
    );
    let got = env.run(&["keys", "get", &key_id, "-o", "json"]).ok().json();
    assert_eq!(got["allowed_models"], json!(["@gov/m1*"]));
    assert_eq!(got["usage_limits"]["alert_threshold"], 80.0);
    assert_eq!(
        got["rate_limits"],
        json!([{"type": "requests", "unit": "rpm", "value": 60}])
    );

    assert_eq!(chat(&env, &key, &body("@gov/m1"), &[]).status, 200);
    let denied = chat(&env, &key, &body("@gov/m2"), &[]);
    assert_eq!(denied.status, 403);
    let message = denied.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.contains("@gov/m2")
            && message.contains("\"narrow\"")
            && message.contains("@gov/m1*"),
        "{message}"
    );
    let (_, open_key) = env.create_key("open", &[]);
    let denied = chat(&env, &open_key, &body("@gov/m3"), &[]);
    assert_eq!(denied.status, 403);
    assert!(denied.body.contains("integration @gov"), "{}", denied.body);

    // A fallback past a refused target reaches the allowed one.
    let config = json!({"strategy": {"mode": "fallback"}, "targets": [
        {"provider": "@gov", "override_params": {"model": "m2"}},
        {"provider": "@gov", "override_params": {"model": "m1"}}
    ]})
    .to_string();
    let reply = chat(&env, &key, &body("m2"), &[("x-portkey-config", &config)]);
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.header("x-portkey-last-used-option-index"),
        Some("config.targets[1]")
    );
    assert_eq!(upstream.requests().last().unwrap().json()["model"], "m1");

    // /v1/models lists only what the key may use.
    let ids = |key: &str| -> Vec<String> {
        let reply = http_send(
            &env.url,
            "GET",
            "/v1/models",
            &[("x-portkey-api-key", key)],
            None,
        );
        reply.json()["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_string())
            .collect()
    };
    let narrow_ids = ids(&key);
    // m1-mini matches the key's @gov/m1* but not the integration's list.
    assert_eq!(narrow_ids, ["@gov/m1"]);
    assert_eq!(ids(&open_key), ["@gov/m1", "@gov/m2"]);
}

#[test]
fn a_stream_settles_to_its_usage_and_metrics_show_the_headroom() {
    let env = gateway_env(&[]);
    let upstream = Upstream::start(|_| {
        let events = crate::common::openai_chat_sse("m1", &["Hel", "lo"]);
        let events: Vec<&str> = events.iter().map(String::as_str).collect();
        Reply::sse(&events)
    });
    priced_integration(&env, "gov", &upstream, json!({}));
    let (_, key) = env.create_key("streamer", &["--budget", "1", "--period", "weekly"]);
    let mut request: Value = serde_json::from_str(&body("@gov/m1")).unwrap();
    request["stream"] = json!(true);
    let reply = chat(&env, &key, &request.to_string(), &[]);
    assert_eq!(reply.status, 200);
    assert!(reply.body.contains("[DONE]"));
    // The stream's usage chunk says 7 + 3 tokens: $0.01 at this price, far below the bound.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut counter = key_counter(&env, "streamer");
    while counter.0 == 0.0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        counter = key_counter(&env, "streamer");
    }
    assert!((counter.0 - 0.01).abs() < 1e-9, "{counter:?}");
    assert_eq!(counter.1, 0.0);

    let metrics = http_send(
        &env.url,
        "GET",
        "/metrics",
        &[("authorization", &format!("Bearer {}", env.admin_key))],
        None,
    );
    let line = metrics
        .body
        .lines()
        .find(|l| l.starts_with("tollgate_budget_remaining{") && l.contains("key streamer budget"))
        .unwrap_or_else(|| panic!("no headroom gauge in {}", metrics.body));
    let remaining: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!((remaining - 0.99).abs() < 1e-9, "{line}");
}

#[test]
fn a_budget_added_later_counts_what_the_key_already_spent_in_its_window() {
    let env = gateway_env(&[]);
    let upstream = exact_upstream("@gov/m1", Duration::ZERO);
    priced_integration(&env, "gov", &upstream, json!({}));
    let each = cost_of("@gov/m1");
    let (key_id, key) = env.create_key("late", &[]);
    let (_, other) = env.create_key("other", &[]);
    let text = body("@gov/m1");
    for k in [&key, &key, &other] {
        assert_eq!(chat(&env, k, &text, &[]).status, 200);
    }
    wait_for_records(&env, 3);
    let limit = format!("{}", each * 3.0);
    env.run(&[
        "keys", "update", &key_id, "--budget", &limit, "--period", "monthly",
    ])
    .ok();
    let (used, _) = key_counter(&env, "late");
    assert!(
        (used - each * 2.0).abs() < 1e-9,
        "its own two requests: {used}"
    );
    assert_eq!(chat(&env, &key, &text, &[]).status, 200);
    assert_eq!(chat(&env, &key, &text, &[]).status, 412);
}

#[test]
fn key_workspace_and_policy_budgets_all_hold_and_the_tightest_refuses() {
    let env = gateway_env(&[]);
    let upstream = exact_upstream("@gov/m1", Duration::ZERO);
    priced_integration(&env, "gov", &upstream, json!({}));
    let each = cost_of("@gov/m1");
    let amount = |n: f64| format!("{}", each * n);
    let ws = env
        .run(&[
            "workspaces",
            "create",
            "--name",
            "Research",
            "--slug",
            "ws-research",
            "--budget",
            &amount(4.0),
            "--period",
            "monthly",
            "-o",
            "json",
        ])
        .ok()
        .json();
    assert_eq!(
        ws["usage_limits"]["credit_limit"].as_f64(),
        Some(each * 4.0)
    );
    let (_, a) = env.create_key(
        "a",
        &["--workspace", "ws-research", "--budget", &amount(2.0)],
    );
    let (_, b) = env.create_key("b", &["--workspace", "ws-research"]);
    let (_, c) = env.create_key("c", &[]);
    // A policy on the workspace by slug (kept by id), per end user.
    let out = env
        .run(&[
            "budgets",
            "create",
            "--name",
            "research-users",
            "--budget",
            &amount(1.0),
            "--condition",
            "workspace_id=ws-research",
            "--group-by",
            "metadata._user",
            "-o",
            "json",
        ])
        .ok();
    let policy = out.json()["id"].as_str().unwrap().to_string();
    let got = env
        .admin("GET", &format!("/v1/policies/usage-limits/{policy}"), None)
        .json();
    assert_eq!(got["conditions"][0]["value"], ws["id"]);

    let text = body("@gov/m1");
    let send = |key: &str, user: &str| {
        let meta = json!({"_user": user}).to_string();
        let reply = chat(&env, key, &text, &[("x-portkey-metadata", &meta)]);
        let rule = reply.json()["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        (reply.status, rule)
    };
    assert_eq!(send(&a, "u1").0, 200);
    let (status, why) = send(&a, "u1");
    assert_eq!(status, 412, "u1's own $1 share is used");
    assert!(why.contains("research-users"), "{why}");
    assert_eq!(send(&a, "u2").0, 200);
    let (status, why) = send(&a, "u3");
    assert_eq!(status, 412, "key a's budget of 2 is used");
    assert!(why.contains("key a budget"), "{why}");
    assert_eq!(send(&b, "u3").0, 200);
    assert_eq!(send(&b, "u4").0, 200);
    let (status, why) = send(&b, "u5");
    assert_eq!(status, 412, "the workspace's 4 are used");
    assert!(why.contains("workspace ws-research budget"), "{why}");
    assert_eq!(
        send(&c, "u5").0,
        200,
        "a key outside the workspace is not held"
    );
    let got = env
        .run(&["workspaces", "get", "ws-research", "-o", "json"])
        .ok()
        .json();
    assert_eq!(got["status"], "exhausted");
}

#[test]
fn governance_changes_are_in_the_audit_log_with_their_actor_and_states() {
    let env = gateway_env(&[]);
    let (ops_id, ops) = env.create_key("ops", &["--type", "admin"]);
    let as_ops = |args: &[&str]| env.run_with_key(&ops, args).ok();
    let created = as_ops(&[
        "budgets", "create", "--name", "team", "--budget", "5", "-o", "json",
    ]);
    let policy = created.json()["id"].as_str().unwrap().to_string();
    as_ops(&["budgets", "update", &policy, "--limit", "7"]);
    as_ops(&["budgets", "reset", &policy]);
    as_ops(&[
        "workspaces",
        "create",
        "--name",
        "Ads",
        "--slug",
        "ws-ads",
        "--budget",
        "9",
    ]);
    env.run(&["budgets", "delete", &policy, "--yes"]).ok();

    let page = env.admin(
        "GET",
        "/v1/audit-logs?page_size=100&resource_type=usage-limits",
        None,
    );
    let records = page.json()["records"].as_array().cloned().unwrap();
    let seen: Vec<(&str, &str)> = records
        .iter()
        .map(|r| {
            (
                r["action"].as_str().unwrap(),
                r["user_name"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("delete", "local-admin"),
            ("reset", "ops"),
            ("update", "ops"),
            ("create", "ops")
        ],
        "newest first"
    );
    let update = &records[2];
    assert_eq!(update["user_id"], ops_id.as_str());
    assert_eq!(update["resource_id"], policy.as_str());
    assert_eq!(update["before"]["credit_limit"], 5.0);
    assert_eq!(update["after"]["credit_limit"], 7.0);
    assert_eq!(records[0]["before"]["name"], "team");

    let page = env.admin("GET", "/v1/audit-logs?resource_type=workspaces", None);
    let ws = &page.json()["records"][0];
    assert_eq!(ws["action"], "create");
    assert_eq!(ws["after"]["slug"], "ws-ads");
    assert_eq!(ws["after"]["usage_limits"]["credit_limit"], 9.0);
}
