//! Two nodes on one Postgres database: admin changes made through one are in force on the
//! other, the other reloads everything when its listener reconnects, and a tail on either
//! shows the requests both finish. Skipped (with a note) without a Postgres test cluster.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::{add_openai_integration, gateway_env, post_json, HttpAnswer, TestEnv};
use crate::logs_cli::{chat, upstream, Tail};
use crate::upstream::Upstream;

/// Changes are meant to be in force on the other node within a second; the margin is for a
/// loaded test machine.
const PROPAGATION: Duration = Duration::from_secs(5);

/// Node A (which printed the admin key) and node B, started on A's database; `None` on SQLite.
fn two_nodes() -> Option<(TestEnv, TestEnv)> {
    let a = gateway_env(&[]);
    let Some(mut b) = a.peer() else {
        eprintln!("note: skipped, two nodes need Postgres (set TOLLGATE_TEST_DATABASE_URL)");
        return None;
    };
    assert_eq!(b.start_server(&[]), None, "B finds A's admin key");
    Some((a, b))
}

/// Polls `check` until it holds, failing after [`PROPAGATION`]; returns how long it took.
#[track_caller]
fn eventually(what: &str, mut check: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    loop {
        if check() {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < PROPAGATION,
            "{what}: not seen within {PROPAGATION:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn chat_with_key(env: &TestEnv, key: &str) -> HttpAnswer {
    let body = json!({"model": "@openai-dev/gpt-4o",
                      "messages": [{"role": "user", "content": "hello"}]});
    post_json(
        env,
        "/v1/chat/completions",
        &[("x-portkey-api-key", key)],
        &body,
    )
}

/// The model the upstream answered for, through the saved config `slug`.
fn model_through(env: &TestEnv, slug: &str) -> Option<String> {
    let answer = chat(env, "gpt-4o", "config", &[("x-portkey-config", slug)]);
    (answer.status == 200).then(|| answer.json()["model"].as_str().unwrap_or("").to_string())
}

fn cache_status(env: &TestEnv, slug: &str) -> String {
    let answer = chat(env, "gpt-4o", "cached", &[("x-portkey-config", slug)]);
    assert_eq!(answer.status, 200, "{answer}");
    answer
        .header("x-portkey-cache-status")
        .unwrap_or("(none)")
        .to_string()
}

fn save_config(env: &TestEnv, name: &str, config: Value) -> String {
    let reply = env.admin(
        "POST",
        "/v1/configs",
        Some(json!({"name": name, "config": config})),
    );
    assert_eq!(reply.status, 200, "{reply}");
    reply.json()["data"]["slug"].as_str().unwrap().to_string()
}

fn with_integration(a: &TestEnv, b: &TestEnv, up: &Upstream) {
    add_openai_integration(a, "openai-dev", &up.url);
    eventually("the integration on B", || {
        chat(b, "gpt-4o", "integration", &[]).status == 200
    });
}

#[test]
fn admin_changes_made_on_one_node_are_in_force_on_the_other() {
    let Some((a, b)) = two_nodes() else { return };
    let up = upstream();
    // Unknown on B until the change reaches it.
    assert_ne!(chat(&b, "gpt-4o", "before", &[]).status, 200);
    with_integration(&a, &b, &up);

    let (key_id, key) = a.create_key("agent", &[]);
    let took = eventually("the new key on B", || chat_with_key(&b, &key).status == 200);
    eprintln!("a new key worked on B after {took:?}");

    let slug = save_config(
        &a,
        "override",
        json!({"provider": "@openai-dev", "override_params": {"model": "model-one"}}),
    );
    eventually("the new config on B", || {
        model_through(&b, &slug).as_deref() == Some("model-one")
    });
    let reply = a.admin(
        "PUT",
        &format!("/v1/configs/{slug}"),
        Some(json!({"config": {"provider": "@openai-dev",
                               "override_params": {"model": "model-two"}}})),
    );
    assert_eq!(reply.status, 200, "{reply}");
    eventually("the updated config on B", || {
        model_through(&b, &slug).as_deref() == Some("model-two")
    });

    let made = a.admin(
        "POST",
        "/v1/prompts",
        Some(json!({"name": "greeter", "model": "@openai-dev/gpt-4o",
                    "messages": [{"role": "user", "content": "Hello {{name}}."}]})),
    );
    assert_eq!(made.status, 200, "{made}");
    let render = format!(
        "/v1/prompts/{}/render",
        made.json()["slug"].as_str().unwrap()
    );
    eventually("the new prompt on B", || {
        let reply = b.admin("POST", &render, Some(json!({"variables": {"name": "Ada"}})));
        reply.status == 200 && reply.json()["data"]["messages"][0]["content"] == "Hello Ada."
    });

    a.run(&["keys", "delete", &key_id, "--yes"]).ok();
    eventually("the revoked key refused on B", || {
        chat_with_key(&b, &key).status == 401
    });

    let cached = save_config(
        &a,
        "cached",
        json!({"provider": "@openai-dev", "cache": {"mode": "simple", "max_age": 600}}),
    );
    eventually("the cached config on B", || {
        model_through(&b, &cached).is_some()
    });
    cache_status(&b, &cached);
    assert_eq!(cache_status(&b, &cached), "HIT");
    a.run(&["cache", "purge", "--yes"]).ok();
    eventually("the purge on B", || cache_status(&b, &cached) == "MISS");
}

#[test]
fn a_node_whose_listener_reconnects_reloads_what_it_missed() {
    let Some((a, mut b)) = two_nodes() else {
        return;
    };
    let up = upstream();
    with_integration(&a, &b, &up);
    let b_address = b.url.trim_start_matches("http://").to_string();
    a.sql(&format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE application_name = 'tollgate-listen {b_address}'"
    ));
    // Made while B is not listening: B reconnects about a second later.
    let (_, key) = a.create_key("made-while-away", &[]);
    eventually("the key on B after its listener came back", || {
        chat_with_key(&b, &key).status == 200
    });
    let exit = b.stop();
    assert!(
        exit.stderr.contains("the listening connection was lost")
            && exit
                .stderr
                .contains("the listening connection to the database is back"),
        "B noticed the loss and the return: {}",
        exit.stderr
    );
}

#[test]
fn a_tail_on_one_node_shows_requests_finished_on_either() {
    let Some((a, b)) = two_nodes() else { return };
    let up = upstream();
    with_integration(&a, &b, &up);
    // Another model than the requests above, whose records may still be on their way.
    let mut tail = Tail::start(&a, &["logs", "tail", "--model", "followed", "-o", "ndjson"]);
    tail.wait_note("following records");
    for (node, trace) in [(&b, "on-b-1"), (&a, "on-a"), (&b, "on-b-2")] {
        assert_eq!(chat(node, "followed", trace, &[]).status, 200);
        tail.wait_record(trace);
    }
    let traces: Vec<String> = tail
        .seen
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["trace_id"].to_string())
        .collect();
    assert_eq!(
        traces,
        ["\"on-b-1\"", "\"on-a\"", "\"on-b-2\""],
        "once each, in order"
    );
}
