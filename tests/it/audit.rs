//! The audit log: every admin change recorded with its actor, resource, status, client address
//! and masked states before and after; reads, anonymous calls and telemetry left out; filters,
//! paging, the scope, and `tollgate audit list`.

use serde_json::{json, Value};

use crate::common::{http_full, post_json, TestEnv};

const PROVIDER_KEY: &str = "sk-proj-audit-provider-secret-0001";
const NEW_PROVIDER_KEY: &str = "sk-proj-audit-provider-secret-0002";
const INLINE_KEY: &str = "sk-inline-config-secret-abcdef123456";

/// Every audit record, oldest first.
fn records(env: &TestEnv, query: &str) -> Vec<Value> {
    let out = env
        .run(&[
            "api",
            "GET",
            &format!("/v1/audit-logs?page_size=1000&{query}"),
        ])
        .ok();
    let list = out.json();
    assert_eq!(list["object"], "list", "{out}");
    let mut records = list["records"].as_array().expect("records").clone();
    assert_eq!(list["total"], records.len(), "{out}");
    records.reverse();
    records
}

/// `ACTION RESOURCE_TYPE/RESOURCE_ID STATUS` of each record.
fn summary(records: &[Value]) -> Vec<String> {
    records
        .iter()
        .map(|r| {
            format!(
                "{} {}/{} {}",
                r["action"].as_str().unwrap(),
                r["resource_type"].as_str().unwrap(),
                r["resource_id"].as_str().unwrap_or("-"),
                r["response_status_code"]
            )
        })
        .collect()
}

fn admin_id(env: &TestEnv, key: &str) -> String {
    let me = env.run_with_key(key, &["whoami", "-o", "json"]).ok().json();
    me["id"].as_str().unwrap().to_string()
}

fn create_config(env: &TestEnv, key: &str, name: &str, yaml: &str) -> String {
    let file = env.write(&format!("{name}.yaml"), yaml);
    let out = env
        .run_with_key(
            key,
            &[
                "configs", "create", "--name", name, "-f", &file, "-o", "json",
            ],
        )
        .ok();
    out.json()["slug"].as_str().unwrap().to_string()
}

#[test]
fn every_admin_change_is_recorded_with_its_actor_and_masked_states() {
    let env = TestEnv::new();
    let a = env.admin_key.clone();
    let a_id = admin_id(&env, &a);
    let (b_id, b) = env.create_key("ops", &["--type", "admin"]);

    // Integrations: created by A, updated (with a new provider key) by B, deleted at the end.
    env.cmd(&[
        "integrations",
        "create",
        "--slug",
        "openai-dev",
        "--provider",
        "openai",
        "--api-key-stdin",
    ])
    .key(&a)
    .stdin(PROVIDER_KEY)
    .run()
    .ok();
    env.cmd(&[
        "integrations",
        "update",
        "openai-dev",
        "--name",
        "OpenAI dev",
        "--api-key-stdin",
    ])
    .key(&b)
    .stdin(NEW_PROVIDER_KEY)
    .run()
    .ok();

    // Configs: one that carries a provider key inline.
    let yaml = format!("provider: openai\napi_key: {INLINE_KEY}\n");
    let slug = create_config(&env, &a, "inline", &yaml);
    let file = env.write("retry.yaml", "retry:\n  attempts: 2\n");
    env.run_with_key(&b, &["configs", "update", &slug, "-f", &file])
        .ok();
    env.run_with_key(&a, &["configs", "delete", &slug, "--yes"])
        .ok();

    // Keys: created by A, updated by B, rotated by A, deleted by B.
    let out = env
        .run_with_key(&a, &["keys", "create", "--name", "agent", "-o", "json"])
        .ok();
    let (k_id, k_secret) = (
        out.json()["id"].as_str().unwrap().to_string(),
        out.json()["key"].as_str().unwrap().to_string(),
    );
    env.run_with_key(&b, &["keys", "update", &k_id, "--name", "agent-2"])
        .ok();
    let out = env
        .run_with_key(&a, &["keys", "rotate", &k_id, "-o", "json"])
        .ok();
    let rotated_secret = out.json()["key"].as_str().unwrap().to_string();
    env.run_with_key(&b, &["keys", "delete", &k_id, "--yes"])
        .ok();
    env.run_with_key(&b, &["integrations", "delete", "openai-dev", "--yes"])
        .ok();

    let all = records(&env, "");
    assert_eq!(
        summary(&all),
        vec![
            format!("create api-keys/{b_id} 200"),
            "create integrations/openai-dev 200".to_string(),
            "update integrations/openai-dev 200".to_string(),
            format!("create configs/{slug} 200"),
            format!("update configs/{slug} 200"),
            format!("delete configs/{slug} 200"),
            format!("create api-keys/{k_id} 200"),
            format!("update api-keys/{k_id} 200"),
            format!("rotate api-keys/{k_id} 200"),
            format!("delete api-keys/{k_id} 200"),
            "delete integrations/openai-dev 200".to_string(),
        ]
    );
    let actors: Vec<&str> = all.iter().map(|r| r["user_id"].as_str().unwrap()).collect();
    let (a_id, b_id) = (a_id.as_str(), b_id.as_str());
    assert_eq!(
        actors,
        vec![a_id, a_id, b_id, a_id, b_id, a_id, a_id, b_id, a_id, b_id, b_id]
    );
    for r in &all {
        assert_eq!(r["client_ip"], "127.0.0.1", "{r}");
        assert_eq!(r["user_type"], "organisation-service", "{r}");
        assert_eq!(r["object"], "audit-log", "{r}");
        assert!(
            r["user_agent"].as_str().unwrap().starts_with("tollgate/"),
            "{r}"
        );
        assert_eq!(r["request_id"].as_str().unwrap().len(), 36, "{r}");
        let expected_name = if r["user_id"] == a_id {
            "local-admin"
        } else {
            "ops"
        };
        assert_eq!(r["user_name"], expected_name, "{r}");
        match r["action"].as_str().unwrap() {
            "create" => assert!(r["before"].is_null() && r["after"].is_object(), "{r}"),
            "delete" => assert!(r["before"].is_object() && r["after"].is_null(), "{r}"),
            _ => assert!(r["before"].is_object() && r["after"].is_object(), "{r}"),
        }
    }

    // The states are the API's own shapes.
    let integration_update = &all[2];
    assert_eq!(integration_update["method"], "PUT");
    assert_eq!(integration_update["uri"], "/v1/integrations/openai-dev");
    assert_eq!(integration_update["before"]["name"], "openai-dev");
    assert_eq!(integration_update["after"]["name"], "OpenAI dev");
    assert_eq!(integration_update["before"]["masked_key"], "sk-…0001");
    assert_eq!(integration_update["after"]["masked_key"], "sk-…0002");
    let config_update = &all[4];
    assert_eq!(config_update["before"]["version"], 1);
    assert_eq!(config_update["after"]["version"], 2);
    assert_eq!(config_update["before"]["config"]["api_key"], "sk-…3456");
    assert_eq!(config_update["after"]["config"]["retry"]["attempts"], 2);
    let key_update = &all[7];
    assert_eq!(key_update["before"]["name"], "agent");
    assert_eq!(key_update["after"]["name"], "agent-2");
    let rotation = &all[8];
    assert_eq!(rotation["method"], "POST");
    assert_ne!(rotation["before"]["key"], rotation["after"]["key"]);

    // No secret appears anywhere in the log.
    let text = serde_json::to_string(&all).unwrap();
    for secret in [
        PROVIDER_KEY,
        NEW_PROVIDER_KEY,
        INLINE_KEY,
        &k_secret,
        &rotated_secret,
        &b,
        &a,
    ] {
        assert!(!text.contains(secret), "the audit log shows {secret:?}");
    }
}

#[test]
fn filters_and_paging_return_exactly_the_matching_records() {
    let env = TestEnv::new();
    let a_id = admin_id(&env, &env.admin_key);
    let (b_id, b) = env.create_key("ops", &["--type", "admin"]);
    let first = create_config(&env, &env.admin_key, "first", "retry:\n  attempts: 1\n");
    let second = create_config(&env, &b, "second", "retry:\n  attempts: 1\n");
    let file = env.write("retry.yaml", "retry:\n  attempts: 3\n");
    env.run_with_key(&b, &["configs", "update", &first, "-f", &file])
        .ok();
    env.run(&["configs", "delete", &second, "--yes"]).ok();
    env.run(&["configs", "delete", "pc-missing-000000", "--yes"])
        .code(4);

    let all = records(&env, "");
    assert_eq!(all.len(), 6, "{}", summary(&all).join("\n"));
    let check = |query: &str, keep: &dyn Fn(&Value) -> bool| {
        let expected: Vec<String> =
            summary(&all.iter().filter(|r| keep(r)).cloned().collect::<Vec<_>>());
        assert!(
            !expected.is_empty() || query.contains("workspace"),
            "{query} matches nothing"
        );
        assert_eq!(summary(&records(&env, query)), expected, "filter {query}");
    };
    check("method=DELETE", &|r| r["method"] == "DELETE");
    check("method=put", &|r| r["method"] == "PUT");
    check("resource_type=configs", &|r| {
        r["resource_type"] == "configs"
    });
    check("resource_type=api-keys", &|r| {
        r["resource_type"] == "api-keys"
    });
    check(&format!("resource_id={first}"), &|r| {
        r["resource_id"] == first.as_str()
    });
    check("action=create", &|r| r["action"] == "create");
    check(&format!("user_id={b_id}"), &|r| {
        r["user_id"] == b_id.as_str()
    });
    check(&format!("user_id={a_id}"), &|r| {
        r["user_id"] == a_id.as_str()
    });
    check("response_status_code=404", &|r| {
        r["response_status_code"] == 404
    });
    check("response_status_code=200&action=delete", &|r| {
        r["response_status_code"] == 200 && r["action"] == "delete"
    });
    check("client_ip=127.0.0.1", &|_| true);
    check("start_time=1h", &|_| true);
    check("workspace_id=ws-none", &|_| false);
    assert!(records(&env, "client_ip=10.0.0.1").is_empty());
    assert!(records(&env, "end_time=1h").is_empty());
    let cut = all[3]["created_at"].as_str().unwrap();
    let before_cut = records(&env, &format!("end_time={cut}"));
    assert!(
        before_cut
            .iter()
            .all(|r| r["created_at"].as_str().unwrap() < cut),
        "{before_cut:?}"
    );

    // Paging: newest first, Portkey's current_page from 0.
    let out = env
        .run(&["api", "GET", "/v1/audit-logs?page_size=2&current_page=1"])
        .ok();
    let page = out.json();
    assert_eq!(page["total"], 6, "{out}");
    let newest_first: Vec<Value> = all.iter().rev().cloned().collect();
    assert_eq!(
        summary(page["records"].as_array().unwrap()),
        summary(&newest_first[2..4])
    );

    // Bad filters are 400s (and are reads, so not recorded themselves).
    let out = env.run(&["api", "GET", "/v1/audit-logs?start_time=yesterday"]);
    assert_eq!(out.code, 1, "{out}");
    let out = env.run(&["api", "GET", "/v1/audit-logs?colour=red"]);
    assert_eq!(out.code, 1, "{out}");
    assert_eq!(records(&env, "").len(), 6);
}

#[test]
fn refused_changes_are_recorded_but_reads_anonymous_calls_and_telemetry_are_not() {
    let env = TestEnv::new();
    let (w_id, w) = env.create_key("gateway-only", &[]);
    let before = records(&env, "").len();

    // Refused: a missing scope (403), a missing resource (404), an invalid body (400).
    let file = env.write("c.yaml", "retry:\n  attempts: 1\n");
    env.run_with_key(&w, &["configs", "create", "--name", "x", "-f", &file])
        .code(3);
    env.run(&["integrations", "update", "nope", "--name", "n"])
        .code(4);
    let answer = post_json(
        &env,
        "/v1/configs",
        &[
            ("x-portkey-api-key", &env.admin_key),
            ("x-request-id", "req-123"),
        ],
        &json!({"name": "bad", "config": {"retry": {"attempts": "many"}}}),
    );
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert_eq!(answer.header("x-request-id"), Some("req-123"));

    // Not recorded: reads, calls without a valid key, custom records and feedback.
    env.run(&["integrations", "list"]).ok();
    env.run(&["keys", "list"]).ok();
    env.run_with_key(&w, &["whoami"]).ok();
    let (status, _) = env.http("DELETE", "/v1/configs/pc-x", &[]);
    assert_eq!(status, 401);
    let answer = post_json(
        &env,
        "/v1/configs",
        &[("x-portkey-api-key", "tgk_not-a-real-key")],
        &json!({"name": "x", "config": {}}),
    );
    assert_eq!(answer.status, 401);
    let answer = post_json(
        &env,
        "/v1/feedback",
        &[("x-portkey-api-key", &env.admin_key)],
        &json!({"trace_id": "t-1", "value": 1}),
    );
    assert_eq!(answer.status, 200, "{}", answer.body);

    let all = records(&env, "");
    let new = &all[before..];
    assert_eq!(
        summary(new),
        vec![
            "create configs/- 403",
            "update integrations/nope 404",
            "create configs/- 400",
        ]
    );
    assert_eq!(new[0]["user_id"], w_id.as_str());
    assert_eq!(new[0]["user_type"], "workspace-service");
    assert_eq!(new[2]["request_id"], "req-123");
    for r in new {
        assert!(r["before"].is_null() && r["after"].is_null(), "{r}");
    }

    // Listing needs audit_logs.list, which a workspace key lacks.
    let out = env.run_with_key(&w, &["api", "GET", "/v1/audit-logs"]);
    assert_eq!(out.code, 3, "{out}");
    let answer = http_full(
        &env.url,
        "GET",
        "/v1/audit-logs",
        &[("x-portkey-api-key", &w)],
        None,
    );
    assert_eq!(answer.status, 403, "{}", answer.body);
}

#[test]
fn audit_list_shows_the_changes() {
    let env = TestEnv::new();
    let (k_id, _) = env.create_key("agent", &[]);
    env.run(&["keys", "rotate", &k_id]).ok();

    let out = env
        .run(&["audit", "list", "--since", "1d", "-o", "json"])
        .ok();
    let listed = out.json();
    let listed = listed.as_array().expect("an array");
    assert_eq!(
        summary(listed),
        vec![
            format!("rotate api-keys/{k_id} 200"),
            format!("create api-keys/{k_id} 200"),
        ]
    );

    let out = env
        .run(&[
            "audit",
            "list",
            "--action",
            "rotate",
            "--resource-type",
            "api-keys",
            "-o",
            "ndjson",
        ])
        .ok();
    assert_eq!(out.stdout.lines().count(), 1, "{out}");
    let admin = admin_id(&env, &env.admin_key);
    let out = env
        .run(&[
            "audit", "list", "--actor", &admin, "--until", "1h", "-o", "json",
        ])
        .ok();
    assert_eq!(out.json(), json!([]), "{out}");

    let out = env
        .cmd(&["audit", "list", "--limit", "1"])
        .var("COLUMNS", "200")
        .run()
        .ok();
    for header in ["TIME", "ACTOR", "ACTION", "RESOURCE", "STATUS", "IP"] {
        assert!(out.stdout.contains(header), "{out}");
    }
    assert!(
        out.stdout.contains("local-admin") && out.stdout.contains("127.0.0.1"),
        "{out}"
    );
    assert!(out.stdout.contains(&format!("api-keys/{k_id}")), "{out}");
    out.stderr_has("showing the newest 1 of 2 changes");

    env.run(&["audit", "list", "--since", "yesterday"]).code(2);
}
