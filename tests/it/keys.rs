//! `tollgate keys`: secrets shown once, masked everywhere else, scopes enforced, rotation with
//! and without a grace period.

use std::time::Duration;

use serde_json::{json, Value};

use crate::common::{masked, strings, TestEnv};

const CONFIG_YAML: &str = "retry:\n  attempts: 2\n";

fn rfc3339(text: &str) -> time::OffsetDateTime {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("{text:?} is not RFC 3339: {e}"))
}

fn key_count(env: &TestEnv) -> usize {
    env.run(&["keys", "list", "-o", "json"])
        .ok()
        .json()
        .as_array()
        .unwrap()
        .len()
}

/// `whoami` as `key`: its exit code and output.
fn whoami(env: &TestEnv, key: &str) -> crate::common::Output {
    env.run_with_key(key, &["whoami", "-o", "json"])
}

#[test]
fn create_prints_the_secret_once_in_every_format() {
    let env = TestEnv::new();
    let out = env
        .run(&["keys", "create", "--name", "ci-bot", "-o", "json"])
        .ok();
    let created = out.json();
    let key = created["key"].as_str().unwrap();
    let id = created["id"].as_str().unwrap();
    assert!(key.starts_with("tgk_") && key.len() == 44, "{out}");
    assert_eq!(id.len(), 36, "{out}");
    assert!(
        !out.stderr.contains(key),
        "the secret goes to stdout only\n{out}"
    );

    // Table: the secret appears exactly once, with its id, on stdout.
    let out = env.run(&["keys", "create", "--name", "ci-bot-2"]).ok();
    let key_line = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("key: "))
        .unwrap_or_else(|| panic!("no `key:` line\n{out}"));
    assert!(
        key_line.starts_with("tgk_") && key_line.len() == 44,
        "{out}"
    );
    assert_eq!(out.stdout.matches(key_line).count(), 1, "{out}");
    assert!(!out.stderr.contains(key_line), "{out}");
    assert!(out.stdout.lines().any(|l| l.starts_with("id:  ")), "{out}");
    assert!(out.stderr.contains("shown only once"), "{out}");

    // YAML and ndjson carry it too.
    let out = env
        .run(&["keys", "create", "--name", "ci-bot-3", "-o", "yaml"])
        .ok();
    assert!(
        out.stdout.lines().any(|l| l.starts_with("key: tgk_")),
        "{out}"
    );
    let out = env
        .run(&["keys", "create", "--name", "ci-bot-4", "-o", "ndjson"])
        .ok();
    assert_eq!(out.stdout.lines().count(), 1, "{out}");
    let v: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert!(v["key"].as_str().unwrap().starts_with("tgk_"));

    // The new key works at once.
    let me = whoami(&env, key).ok().json();
    assert_eq!(me["name"], "ci-bot");
    assert_eq!(me["id"], id);
}

#[test]
fn list_and_get_show_the_key_masked_only() {
    let env = TestEnv::new();
    let (id, key) = env.create_key("ci-bot", &[]);
    let mask = masked(&key);
    for args in [
        vec!["keys", "list"],
        vec!["keys", "list", "-o", "json"],
        vec!["keys", "list", "-o", "yaml"],
        vec!["keys", "list", "-o", "ndjson"],
        vec!["keys", "get", &id],
        vec!["keys", "get", &id, "-o", "json"],
        vec!["keys", "get", &id, "-o", "yaml"],
        vec!["whoami"],
    ] {
        let out = if args[0] == "whoami" {
            env.run_with_key(&key, &args)
        } else {
            env.run(&args)
        };
        let out = out.ok().never_shows(&key).never_shows(&env.admin_key);
        assert!(out.stdout.contains(&mask), "no {mask:?}\n{out}");
    }
    let got = env.run(&["keys", "get", &id, "-o", "json"]).ok().json();
    assert_eq!(got["key"], mask.as_str());
    assert_eq!(got["name"], "ci-bot");
    assert_eq!(got["status"], "active");
}

#[test]
fn a_workspace_key_gets_the_gateway_scopes_only() {
    let env = TestEnv::new();
    let (id, key) = env.create_key("ci-bot", &[]);
    let got = env.run(&["keys", "get", &id, "-o", "json"]).ok().json();
    assert_eq!(got["type"], "workspace-service");
    assert_eq!(
        strings(&got["scopes"]),
        ["completions.write", "prompts.render"]
    );

    // The CLI: exit 3 with the scope named.
    let file = env.write("c.yaml", CONFIG_YAML);
    let out = env
        .run_with_key(&key, &["configs", "create", "--name", "c", "-f", &file])
        .code(3)
        .error_and_hint();
    assert_eq!(
        out.error_line(),
        "the API key \"ci-bot\" lacks the configs.create scope"
    );
    // The API: 403 (exit 3 from `api`), Portkey's error body.
    let out = env
        .run_with_key(
            &key,
            &[
                "api",
                "POST",
                "/v1/configs",
                "-d",
                r#"{"name":"c","config":{"retry":{"attempts":2}}}"#,
            ],
        )
        .code(3);
    let body = out.json();
    assert_eq!(body["error"]["type"], "permission_error", "{out}");
    assert_eq!(body["error"]["code"], "AB03", "{out}");
    let (status, _) = crate::common::http_request(
        &env.url,
        "POST",
        "/v1/configs",
        &[("x-portkey-api-key", &key)],
        Some(r#"{"name":"c","config":{"retry":{"attempts":2}}}"#),
    );
    assert_eq!(status, 403);
    // Nor can it list keys or manage integrations.
    env.run_with_key(&key, &["keys", "list"]).code(3);
    env.run_with_key(&key, &["integrations", "list"]).code(3);
    assert!(env
        .run(&["configs", "list", "-o", "json"])
        .ok()
        .json()
        .as_array()
        .unwrap()
        .is_empty());
}

#[test]
fn a_key_with_config_scopes_can_create_configs() {
    let env = TestEnv::new();
    let (_, key) = env.create_key("ops", &["--scopes", "configs.create,configs.list"]);
    let out = env
        .run_with_key(
            &key,
            &[
                "api",
                "POST",
                "/v1/configs",
                "-d",
                r#"{"name":"c","config":{"retry":{"attempts":2}}}"#,
            ],
        )
        .ok();
    assert!(
        out.json()["data"]["slug"]
            .as_str()
            .unwrap()
            .starts_with("pc-c-"),
        "{out}"
    );
    let out = env
        .run_with_key(&key, &["configs", "list", "-o", "json"])
        .ok();
    assert_eq!(out.json().as_array().unwrap().len(), 1, "{out}");
    // It may not delete.
    let slug = out.json()[0]["slug"].as_str().unwrap().to_string();
    env.run_with_key(&key, &["configs", "delete", &slug, "--yes"])
        .code(3)
        .stderr_has("configs.delete");

    // With configs.read as well, the CLI's create (which reads the config back) works.
    let (_, reader) = env.create_key(
        "ops2",
        &["--scopes", "configs.create,configs.read,configs.list"],
    );
    let file = env.write("d.yaml", CONFIG_YAML);
    let out = env
        .run_with_key(
            &reader,
            &[
                "configs", "create", "--name", "d", "-f", &file, "-o", "json",
            ],
        )
        .ok();
    assert_eq!(out.json()["name"], "d");
}

#[test]
fn configs_create_needs_only_the_create_scope() {
    let env = TestEnv::new();
    let (_, key) = env.create_key("ops", &["--scopes", "configs.create,configs.list"]);
    let file = env.write("c.yaml", CONFIG_YAML);
    env.run_with_key(&key, &["configs", "create", "--name", "c", "-f", &file])
        .ok()
        .stderr_has("created config pc-c-");
    assert_eq!(
        env.run(&["configs", "list", "-o", "json"])
            .ok()
            .json()
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn a_key_cannot_grant_scopes_it_lacks() {
    let env = TestEnv::new();
    let (id, key) = env.create_key(
        "key-admin",
        &[
            "--scopes",
            "completions.write,workspace_service_api_keys.create,workspace_service_api_keys.update,workspace_service_api_keys.read,workspace_service_api_keys.list",
        ],
    );
    let before = key_count(&env);
    let out = env
        .run_with_key(
            &key,
            &[
                "keys",
                "create",
                "--name",
                "sneaky",
                "--scopes",
                "configs.create",
            ],
        )
        .code(3)
        .error_and_hint();
    assert_eq!(
        out.error_line(),
        "cannot grant the configs.create scope: the calling key does not hold it"
    );
    // Not to itself either.
    env.run_with_key(
        &key,
        &[
            "keys",
            "update",
            &id,
            "--scopes",
            "completions.write,configs.create",
        ],
    )
    .code(3)
    .stderr_has("cannot grant the configs.create scope");
    let me = whoami(&env, &key).ok().json();
    assert!(!strings(&me["scopes"]).contains(&"configs.create".to_string()));
    // Nor an admin key.
    env.run_with_key(
        &key,
        &["keys", "create", "--name", "boss", "--type", "admin"],
    )
    .code(3)
    .stderr_has("organisation_service_api_keys.create");
    // A workspace key without --scopes gets prompts.render, which it lacks: refused as well.
    env.run_with_key(&key, &["keys", "create", "--name", "default-scopes"])
        .code(3)
        .stderr_has("prompts.render");
    assert_eq!(key_count(&env), before);

    // What it holds, it may grant.
    let out = env
        .run_with_key(
            &key,
            &[
                "keys",
                "create",
                "--name",
                "ok",
                "--scopes",
                "completions.write",
                "-o",
                "json",
            ],
        )
        .ok();
    let new_id = out.json()["id"].as_str().unwrap().to_string();
    let got = env.run(&["keys", "get", &new_id, "-o", "json"]).ok().json();
    assert_eq!(strings(&got["scopes"]), ["completions.write"]);

    // An unknown scope is a validation error, with the valid ones listed.
    env.run(&[
        "keys",
        "create",
        "--name",
        "typo",
        "--scopes",
        "configs.craete",
    ])
    .code(1)
    .stderr_has("unknown scope \"configs.craete\"")
    .stderr_has("configs.create");
}

#[test]
fn rotate_cannot_mint_a_stronger_key() {
    let env = TestEnv::new();
    let admin_id = env.run(&["whoami", "-o", "json"]).ok().json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, rotator) = env.create_key(
        "rotator",
        &["--scopes", "organisation_service_api_keys.rotate"],
    );
    // Rotating the all-scopes admin key would give this one-scope key an admin secret.
    let out = env.run_with_key(
        &rotator,
        &["keys", "rotate", &admin_id, "--grace", "1h", "-o", "json"],
    );
    assert_eq!(
        out.code, 3,
        "a key with one scope obtained an admin secret\n{out}"
    );
}

#[test]
fn admin_keys_get_every_scope() {
    let env = TestEnv::new();
    let (id, key) = env.create_key("ops", &["--type", "admin"]);
    let got = env.run(&["keys", "get", &id, "-o", "json"]).ok().json();
    assert_eq!(got["type"], "organisation-service");
    let admin = env.run(&["whoami", "-o", "json"]).ok().json();
    assert_eq!(got["scopes"], admin["scopes"]);
    assert_eq!(
        strings(&got["scopes"]).len(),
        tollgate::api::scopes::ALL.len()
    );
    // It can manage configs and keys.
    let file = env.write("c.yaml", CONFIG_YAML);
    env.run_with_key(&key, &["configs", "create", "--name", "c", "-f", &file])
        .ok();
    env.run_with_key(&key, &["keys", "list"]).ok();
}

#[test]
fn defaults_metadata_and_expiry_are_stored() {
    let env = TestEnv::new();
    let file = env.write("prod.yaml", CONFIG_YAML);
    let slug = env
        .run(&[
            "configs", "create", "--name", "prod", "-f", &file, "-o", "json",
        ])
        .ok()
        .json()["slug"]
        .as_str()
        .unwrap()
        .to_string();
    let (id, _) = env.create_key(
        "agent",
        &[
            "--config",
            &slug,
            "--metadata",
            "team=search",
            "--metadata",
            "env=ci",
            "--expires",
            "30d",
        ],
    );
    let got = env.run(&["keys", "get", &id, "-o", "json"]).ok().json();
    assert_eq!(
        got["defaults"],
        json!({"config_id": slug, "metadata": {"team": "search", "env": "ci"}})
    );
    let expires = rfc3339(got["expires_at"].as_str().expect("expires_at is set"));
    let in_30_days = time::OffsetDateTime::now_utc() + time::Duration::days(30);
    assert!(
        (expires - in_30_days).abs() < time::Duration::minutes(5),
        "expires_at {expires} is not 30 days from now"
    );
    // The table shows them as well.
    let out = env.run(&["keys", "get", &id]).ok();
    assert!(
        out.stdout.contains(&slug) && out.stdout.contains("team"),
        "{out}"
    );

    // A config that does not exist is refused.
    env.run(&[
        "keys",
        "create",
        "--name",
        "x",
        "--config",
        "pc-nope-000000",
    ])
    .code(1)
    .stderr_has("defaults.config_id");
    // Metadata must be key=value.
    env.run(&["keys", "create", "--name", "x", "--metadata", "novalue"])
        .code(2);
}

#[test]
fn update_of_metadata_keeps_the_config() {
    let env = TestEnv::new();
    let file = env.write("prod.yaml", CONFIG_YAML);
    let slug = env
        .run(&[
            "configs", "create", "--name", "prod", "-f", &file, "-o", "json",
        ])
        .ok()
        .json()["slug"]
        .as_str()
        .unwrap()
        .to_string();
    let (id, _) = env.create_key("agent", &["--config", &slug, "--metadata", "team=search"]);
    let got = env
        .run(&[
            "keys",
            "update",
            &id,
            "--metadata",
            "team=other",
            "-o",
            "json",
        ])
        .ok()
        .json();
    assert_eq!(got["defaults"]["config_id"], slug.as_str(), "{got}");
    assert_eq!(got["defaults"]["metadata"], json!({"team": "other"}));
}

#[test]
fn update_changes_the_name() {
    let env = TestEnv::new();
    let (id, key) = env.create_key("ci-bot", &[]);
    let out = env
        .run(&["keys", "update", &id, "--name", "deploy-bot", "-o", "json"])
        .ok();
    assert_eq!(out.json()["name"], "deploy-bot");
    assert_eq!(
        env.run(&["keys", "get", &id, "-o", "json"]).ok().json()["name"],
        "deploy-bot"
    );
    // Scopes and secret are unchanged.
    let me = whoami(&env, &key).ok().json();
    assert_eq!(me["name"], "deploy-bot");
    assert_eq!(
        strings(&me["scopes"]),
        ["completions.write", "prompts.render"]
    );
    // Scopes can be narrowed by the admin.
    let out = env
        .run(&[
            "keys",
            "update",
            &id,
            "--scopes",
            "completions.write",
            "-o",
            "json",
        ])
        .ok();
    assert_eq!(strings(&out.json()["scopes"]), ["completions.write"]);
    // An update dry run sends nothing.
    env.run(&["keys", "update", &id, "--name", "other", "--dry-run"])
        .ok();
    assert_eq!(
        env.run(&["keys", "get", &id, "-o", "json"]).ok().json()["name"],
        "deploy-bot"
    );
}

#[test]
fn delete_revokes_at_once() {
    let env = TestEnv::new();
    let (id, key) = env.create_key("ci-bot", &[]);
    env.run(&["keys", "delete", &id])
        .code(2)
        .error_and_hint()
        .stderr_has("--yes");
    whoami(&env, &key).ok();
    env.run(&["keys", "delete", &id, "--dry-run"]).ok();
    whoami(&env, &key).ok();

    env.run(&["keys", "rm", &id, "--yes"])
        .ok()
        .stderr_has(&format!("revoked key {id}"));
    let out = whoami(&env, &key).code(3).error_and_hint();
    assert_eq!(out.error_line(), "invalid API key");
    env.run(&["keys", "get", &id]).code(4);
    env.run(&["keys", "delete", &id, "--yes"]).code(4);
}

#[test]
fn rotate_without_grace_stops_the_old_secret_at_once() {
    let env = TestEnv::new();
    let (id, old) = env.create_key("ci-bot", &[]);
    let out = env
        .run(&["keys", "rotate", &id, "-o", "json"])
        .ok()
        .stderr_has("the old secret no longer works");
    let rotated = out.json();
    let new = rotated["key"].as_str().unwrap();
    assert!(new.starts_with("tgk_") && new != old, "{out}");
    assert_eq!(rotated["id"], id.as_str());
    assert_eq!(rotated["key_transition_expires_at"], Value::Null);

    whoami(&env, &old).code(3);
    let me = whoami(&env, new).ok().json();
    assert_eq!(me["id"], id.as_str());
    assert_eq!(me["key"], masked(new).as_str());

    // The table shows the new secret once.
    let out = env.run(&["keys", "rotate", &id]).ok();
    let newer = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("key: "))
        .expect("key line");
    whoami(&env, newer).ok();
    whoami(&env, new).code(3);
}

#[test]
fn rotate_with_grace_keeps_both_secrets_working() {
    let env = TestEnv::new();
    let (id, old) = env.create_key("ci-bot", &[]);
    let out = env
        .run(&["keys", "rotate", &id, "--grace", "1h", "-o", "json"])
        .ok()
        .stderr_has("the old secret works until");
    let rotated = out.json();
    let new = rotated["key"].as_str().unwrap().to_string();
    let until = rfc3339(
        rotated["key_transition_expires_at"]
            .as_str()
            .expect("an end"),
    );
    let in_an_hour = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
    assert!(
        (until - in_an_hour).abs() < time::Duration::minutes(1),
        "{until}"
    );

    assert_eq!(whoami(&env, &old).ok().json()["id"], id.as_str());
    assert_eq!(whoami(&env, &new).ok().json()["id"], id.as_str());
    let got = env.run(&["keys", "get", &id, "-o", "json"]).ok().json();
    assert_eq!(
        got["key_transition_expires_at"],
        rotated["key_transition_expires_at"]
    );
    assert_eq!(got["key"], masked(&new).as_str());
}

#[test]
fn a_rotated_secret_stops_when_its_grace_ends() {
    let env = TestEnv::new();
    let (id, old) = env.create_key("ci-bot", &[]);
    // Two seconds of grace (a shorter one can end before it starts: see the ignored test below).
    let out = env
        .run(&[
            "api",
            "POST",
            &format!("/v1/api-keys/{id}/rotate"),
            "-d",
            r#"{"key_transition_period_ms":2000}"#,
        ])
        .ok();
    let rotated = out.json();
    let new = rotated["key"].as_str().unwrap().to_string();
    let until = rfc3339(
        rotated["key_transition_expires_at"]
            .as_str()
            .expect("an end"),
    );

    whoami(&env, &old).ok();
    whoami(&env, &new).ok();

    let wait = until - time::OffsetDateTime::now_utc() + time::Duration::milliseconds(300);
    std::thread::sleep(Duration::from_millis(
        wait.whole_milliseconds().max(0) as u64
    ));
    let out = whoami(&env, &old).code(3).error_and_hint();
    assert_eq!(
        out.error_line(),
        "this API key was rotated and its grace period has ended"
    );
    whoami(&env, &new).ok();
    let got = env.run(&["keys", "get", &id, "-o", "json"]).ok().json();
    assert_eq!(
        got["key_transition_expires_at"],
        Value::Null,
        "the grace is over"
    );
}

#[test]
fn a_short_grace_period_is_not_cut_short() {
    let env = TestEnv::new();
    let (id, _) = env.create_key("ci-bot", &[]);
    // Start early in a second, so 300 ms later is still the same second.
    loop {
        let ms = time::OffsetDateTime::now_utc().millisecond();
        if (20..300).contains(&ms) {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let asked_at = time::OffsetDateTime::now_utc();
    let out = env
        .run(&[
            "api",
            "POST",
            &format!("/v1/api-keys/{id}/rotate"),
            "-d",
            r#"{"key_transition_period_ms":300}"#,
        ])
        .ok();
    let until = rfc3339(out.json()["key_transition_expires_at"].as_str().unwrap());
    assert!(
        until >= asked_at + time::Duration::milliseconds(300),
        "asked at {asked_at} for 300 ms of grace, which ends at {until}"
    );
}

#[test]
fn wrong_key_and_unknown_id() {
    let env = TestEnv::new();
    let out = env
        .run_with_key(
            "tgk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            &["keys", "list"],
        )
        .code(3)
        .error_and_hint();
    assert_eq!(out.error_line(), "invalid API key");
    env.run_with_key("garbage", &["whoami"]).code(3);

    for args in [
        vec!["keys", "get", "00000000-0000-4000-8000-000000000000"],
        vec![
            "keys",
            "update",
            "00000000-0000-4000-8000-000000000000",
            "--name",
            "x",
        ],
        vec!["keys", "rotate", "00000000-0000-4000-8000-000000000000"],
        vec![
            "keys",
            "delete",
            "00000000-0000-4000-8000-000000000000",
            "--yes",
        ],
    ] {
        let out = env.run(&args).code(4).error_and_hint();
        assert_eq!(
            out.error_line(),
            "no API key with id \"00000000-0000-4000-8000-000000000000\"",
            "{out}"
        );
    }
}

#[test]
fn bad_durations_are_usage_errors() {
    let env = TestEnv::new();
    let before = key_count(&env);
    for value in ["0d", "30", "d", "3y"] {
        let out = env
            .run(&["keys", "create", "--name", "x", "--expires", value])
            .code(2);
        assert!(out.stderr.contains("--expires"), "{out}");
    }
    env.run(&["keys", "rotate", "whatever", "--grace", "0h"])
        .code(2);
    assert_eq!(key_count(&env), before, "a usage error created a key");
}

#[test]
fn dry_run_create_sends_nothing() {
    let env = TestEnv::new();
    let out = env
        .run(&[
            "keys",
            "create",
            "--name",
            "ci-bot",
            "--type",
            "admin",
            "--dry-run",
            "-o",
            "json",
        ])
        .ok();
    let plan = out.json();
    assert_eq!(plan["dry_run"], true);
    assert_eq!(plan["path"], "/v1/api-keys/organisation/service");
    assert_eq!(plan["body"]["name"], "ci-bot");
    assert!(!out.stdout.contains("tgk_"), "{out}");
    assert_eq!(key_count(&env), 1);
}
