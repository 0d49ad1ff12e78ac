//! Budgets and rate limits held across two nodes on one Postgres database: each node admits
//! against the counters they share, so together they never pass a limit. Skipped (with a note)
//! without `TOLLGATE_TEST_DATABASE_URL`, as SQLite serves one node only.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::{gateway_env, http_send, HttpReply, TestEnv};
use crate::governance::{
    body, cost_of, exact_upstream, key_counter, priced_integration, recorded_spend,
    wait_for_records, CHAT,
};
use crate::upstream::Upstream;

/// A server on Postgres with an integration `gov` at an upstream answering after `delay`, or
/// `None` with a note saying why the test does not run.
fn postgres_env(test: &str, delay: Duration) -> Option<(TestEnv, Upstream)> {
    if crate::common::test_database_url().is_none() {
        eprintln!("note: {test} skipped: two nodes need Postgres; set TOLLGATE_TEST_DATABASE_URL");
        return None;
    }
    let env = gateway_env(&[]);
    let upstream = exact_upstream("@gov/m1", delay);
    priced_integration(&env, "gov", &upstream, json!({}));
    Some((env, upstream))
}

/// Sends `n` requests at once, the even ones to `a`, the odd ones to `b`.
fn spread(a: &str, b: &str, key: &str, text: &str, n: usize) -> Vec<HttpReply> {
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|i| {
                let url = if i % 2 == 0 { a } else { b };
                s.spawn(move || {
                    http_send(url, "POST", CHAT, &[("x-portkey-api-key", key)], Some(text))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// `used` of the key's budget as node `url` shows it, once it shows at least `at_least`
/// (a node takes the others' spend into its own counters every few seconds).
fn used_on(env: &TestEnv, url: &str, key_name: &str, at_least: f64) -> f64 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let reply = http_send(
            url,
            "GET",
            "/v1/policies/usage-limits/status",
            &[("x-portkey-api-key", &env.admin_key)],
            None,
        );
        assert_eq!(reply.status, 200, "{}", reply.body);
        let used = reply.json()["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|b| b["name"] == format!("key {key_name} budget"))
            .flat_map(|b| b["entities"].as_array().cloned().unwrap_or_default())
            .map(|e| e["current_usage"].as_f64().unwrap())
            .sum::<f64>();
        if used >= at_least - 1e-9 || Instant::now() > deadline {
            return used;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A second node on `env`'s database.
fn node_b(env: &TestEnv) -> TestEnv {
    let mut b = env.peer().expect("a Postgres environment");
    assert_eq!(b.start_server(&[]), None, "B finds A's admin key");
    b
}

#[test]
fn two_nodes_together_never_spend_past_a_budget() {
    let Some((env, _upstream)) = postgres_env(
        "two_nodes_together_never_spend_past_a_budget",
        Duration::from_millis(200),
    ) else {
        return;
    };
    let each = cost_of("@gov/m1");
    let limit = each * 50.0;
    let (_, key) = env.create_key("shared", &["--budget", &limit.to_string()]);
    let b = node_b(&env);

    let replies = spread(&env.url, &b.url, &key, &body("@gov/m1"), 200);
    let ok = replies.iter().filter(|r| r.status == 200).count();
    assert!(
        ok > 0 && ok <= 50,
        "{ok} admitted against a budget that fits 50"
    );
    let refused: Vec<&HttpReply> = replies.iter().filter(|r| r.status != 200).collect();
    assert!(
        refused.iter().all(|r| r.status == 412),
        "every other request is refused by the budget: {:?}",
        refused.iter().find(|r| r.status != 412)
    );
    let on_b = replies.iter().skip(1).step_by(2);
    assert!(
        on_b.filter(|r| r.status == 200).count() > 0,
        "node B admitted some"
    );

    // What the records say was spent, on both nodes, stays within the limit.
    wait_for_records(&env, 200);
    let spent = recorded_spend(&env);
    assert!(
        spent <= limit + 1e-9,
        "recorded spend {spent} passes {limit}"
    );
    assert!((spent - ok as f64 * each).abs() < 1e-9, "{spent} for {ok}");
    // Each node's usage shows what both spent.
    for (node, url) in [("A", &env.url), ("B", &b.url)] {
        let used = used_on(&env, url, "shared", spent);
        assert!(
            (used - spent).abs() < 1e-9,
            "node {node} shows {used}, spent {spent}"
        );
    }
    let (_, reserved) = key_counter(&env, "shared");
    assert_eq!(reserved, 0.0, "no reservation left held");
}

/// Starts early in a minute, so that the next `secs` seconds fall in one.
fn early_in_a_minute(secs: u64) {
    let into_minute = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        % 60;
    if into_minute + secs > 59 {
        std::thread::sleep(Duration::from_secs(61 - into_minute));
    }
}

#[test]
fn two_nodes_together_never_pass_a_rate_limit() {
    let Some((env, _upstream)) = postgres_env(
        "two_nodes_together_never_pass_a_rate_limit",
        Duration::from_millis(100),
    ) else {
        return;
    };
    let (_, key) = env.create_key("paced", &["--rate", "20/minute"]);
    let b = node_b(&env);
    early_in_a_minute(20);
    let replies = spread(&env.url, &b.url, &key, &body("@gov/m1"), 60);
    let ok = replies.iter().filter(|r| r.status == 200).count();
    // A node refuses only when neither its lease nor the database can fit a request; what is
    // left unused then is at most each node's last lease (a quarter of the headroom, 5) and a
    // fraction of one request (docs/postgres.md, "Leases of allowance").
    assert!(
        (8..=20).contains(&ok),
        "{ok} admitted against a limit of 20"
    );
    let limited: Vec<&HttpReply> = replies.iter().filter(|r| r.status == 429).collect();
    assert_eq!(limited.len(), 60 - ok);
    assert!(limited[0].header("retry-after").is_some());
}

/// Sends `n` requests to `url` one after another; how many were admitted.
fn one_by_one(url: &str, key: &str, text: &str, n: usize) -> usize {
    let send = || http_send(url, "POST", CHAT, &[("x-portkey-api-key", key)], Some(text));
    (0..n)
        .filter(|_| {
            let ok = send().status == 200;
            // Time for the node to refill its lease as its demand grows.
            std::thread::sleep(Duration::from_millis(100));
            ok
        })
        .count()
}

/// Sends requests to `url` one after another until `wanted` were admitted, or one is refused
/// after `within` has passed, then one more; how many were admitted, and the status of the one
/// more.
fn admit_until(url: &str, key: &str, text: &str, wanted: usize, within: Duration) -> (usize, u16) {
    let send = || http_send(url, "POST", CHAT, &[("x-portkey-api-key", key)], Some(text));
    let deadline = Instant::now() + within;
    let mut ok = 0;
    while ok < wanted {
        match send().status {
            200 => ok += 1,
            _ if Instant::now() >= deadline => break,
            _ => std::thread::sleep(Duration::from_millis(50)),
        }
    }
    (ok, send().status)
}

#[test]
fn a_nodes_unused_lease_goes_back_when_it_idles_or_stops() {
    let Some((env, _upstream)) = postgres_env(
        "a_nodes_unused_lease_goes_back_when_it_idles_or_stops",
        Duration::ZERO,
    ) else {
        return;
    };
    let (_, idle_key) = env.create_key("idle", &["--rate", "20/minute"]);
    let (_, stop_key) = env.create_key("stop", &["--rate", "20/minute"]);
    let mut b = node_b(&env);
    let text = body("@gov/m1");
    early_in_a_minute(30);

    // B's lease grows with its demand; while B holds it, A cannot use all of the limit.
    assert_eq!(one_by_one(&b.url, &idle_key, &text, 8), 8);
    let (at_once, _) = admit_until(&env.url, &idle_key, &text, 12, Duration::ZERO);
    assert!(at_once < 12, "B held no lease: A admitted all {at_once}");
    // Once B has admitted nothing for a whole sync period (2 s), its lease goes back.
    let (later, after) = admit_until(
        &env.url,
        &idle_key,
        &text,
        12 - at_once,
        Duration::from_secs(8),
    );
    assert_eq!(at_once + later, 12, "A admits all B left");
    assert_eq!(after, 429, "and no more");

    // B stops cleanly: its lease goes back at once.
    assert_eq!(one_by_one(&b.url, &stop_key, &text, 8), 8);
    b.stop();
    let (ok, after) = admit_until(&env.url, &stop_key, &text, 12, Duration::from_millis(1500));
    assert_eq!(
        ok, 12,
        "A admits all B left, without waiting for B to be taken for dead"
    );
    assert_eq!(after, 429, "and no more");
}

#[test]
fn a_reset_through_one_node_lets_the_other_admit_again() {
    let Some((env, _upstream)) = postgres_env(
        "a_reset_through_one_node_lets_the_other_admit_again",
        Duration::ZERO,
    ) else {
        return;
    };
    let each = cost_of("@gov/m1");
    let (_, key) = env.create_key("reset", &["--budget", &(each * 2.0).to_string()]);
    let b = node_b(&env);
    let text = body("@gov/m1");
    let on_b = || {
        http_send(
            &b.url,
            "POST",
            CHAT,
            &[("x-portkey-api-key", &key)],
            Some(&text),
        )
    };
    for _ in 0..2 {
        let admitted = on_b();
        assert_eq!(admitted.status, 200, "{}", admitted.body);
    }
    let refused = on_b();
    assert_eq!(refused.status, 412, "{}", refused.body);
    let message = refused.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(message.contains("is exhausted"), "{message}");
    // Node A never served this key, yet refuses it too.
    let on_a = http_send(
        &env.url,
        "POST",
        CHAT,
        &[("x-portkey-api-key", &key)],
        Some(&text),
    );
    assert_eq!(on_a.status, 412, "{}", on_a.body);

    // B sends its settlements off the request path: A shows them once they are in.
    used_on(&env, &env.url, "reset", each * 2.0);
    // Through node A's admin API (the CLI's context names the node that started last).
    let status = env
        .admin("GET", "/v1/policies/usage-limits/status", None)
        .json();
    let id = status["data"][0]["id"].as_str().unwrap().to_string();
    let reply = env.admin(
        "POST",
        &format!("/v1/policies/usage-limits/{id}/reset"),
        Some(json!({})),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    let again = on_b();
    assert_eq!(again.status, 200, "{}", again.body);
    let used = used_on(&env, &env.url, "reset", each);
    assert!(
        (used - each).abs() < 1e-9,
        "only the request after the reset: {used}"
    );
}
