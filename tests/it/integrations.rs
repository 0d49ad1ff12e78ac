//! `tollgate integrations`: provider credentials, whose secrets never come back out.

use crate::common::{TestEnv, DOWN_URL};

const SECRET: &str = "sk-live-SECRETVALUE123456";
const SECRET_MASK: &str = "sk-…3456";
const NEW_SECRET: &str = "sk-live-OTHERSECRET987654";
const NEW_MASK: &str = "sk-…7654";

fn create(env: &TestEnv, slug: &str, provider: &str, secret: &str) {
    env.run_stdin(
        &[
            "integrations",
            "create",
            "--slug",
            slug,
            "--provider",
            provider,
            "--api-key-stdin",
        ],
        &format!("{secret}\n"),
    )
    .ok()
    .never_shows(secret);
}

fn slugs(env: &TestEnv) -> Vec<String> {
    let out = env.run(&["integrations", "list", "-o", "json"]).ok();
    out.json()
        .as_array()
        .unwrap_or_else(|| panic!("a JSON array\n{out}"))
        .iter()
        .map(|i| i["slug"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn create_list_get_update_delete() {
    let env = TestEnv::new();
    let out = env
        .run_stdin(
            &[
                "integrations",
                "create",
                "--slug",
                "openai-dev",
                "--provider",
                "openai",
                "--name",
                "OpenAI dev",
                "--api-key-stdin",
                "-o",
                "json",
            ],
            &format!("{SECRET}\n"),
        )
        .ok()
        .never_shows(SECRET)
        .stderr_has("created integration openai-dev");
    let created = out.json();
    assert_eq!(created["slug"], "openai-dev");
    assert_eq!(created["name"], "OpenAI dev");
    assert_eq!(created["ai_provider_id"], "openai");
    assert_eq!(created["masked_key"], SECRET_MASK);
    assert_eq!(created["object"], "integration");

    // list (json): one, masked.
    let out = env
        .run(&["integrations", "list", "-o", "json"])
        .ok()
        .never_shows(SECRET);
    let list = out.json();
    let list = list.as_array().expect("an array");
    assert_eq!(list.len(), 1, "{out}");
    assert_eq!(list[0]["slug"], "openai-dev");
    assert_eq!(list[0]["masked_key"], SECRET_MASK);

    // get, in every format: masked, never the secret.
    let got = env
        .run(&["integrations", "get", "openai-dev", "-o", "json"])
        .ok()
        .never_shows(SECRET);
    assert_eq!(got.json()["masked_key"], SECRET_MASK);
    assert_eq!(got.json()["id"], created["id"]);
    for format in ["table", "yaml", "ndjson"] {
        env.run(&["integrations", "get", "openai-dev", "-o", format])
            .ok()
            .never_shows(SECRET)
            .stdout_has(SECRET_MASK);
    }
    env.run(&["integrations", "list"])
        .ok()
        .never_shows(SECRET)
        .stdout_has(SECRET_MASK);

    // update: name, base URL, and a new key from stdin (which changes the mask).
    let out = env
        .run_stdin(
            &[
                "integrations",
                "update",
                "openai-dev",
                "--name",
                "OpenAI staging",
                "--base-url",
                "http://localhost:9999/v1",
                "--api-key-stdin",
                "-o",
                "json",
            ],
            &format!("{NEW_SECRET}\n"),
        )
        .ok()
        .never_shows(NEW_SECRET);
    let updated = out.json();
    assert_eq!(updated["name"], "OpenAI staging");
    assert_eq!(
        updated["configurations"]["custom_host"],
        "http://localhost:9999/v1"
    );
    assert_eq!(updated["masked_key"], NEW_MASK);
    let got = env
        .run(&["integrations", "get", "openai-dev", "-o", "json"])
        .ok()
        .json();
    assert_eq!(got["masked_key"], NEW_MASK);
    assert_eq!(got["name"], "OpenAI staging");

    // update of the name only keeps the key and base URL.
    let got = env
        .run(&[
            "integrations",
            "update",
            "openai-dev",
            "--name",
            "again",
            "-o",
            "json",
        ])
        .ok()
        .json();
    assert_eq!(got["masked_key"], NEW_MASK);
    assert_eq!(
        got["configurations"]["custom_host"],
        "http://localhost:9999/v1"
    );
    // An empty base URL removes it.
    let got = env
        .run(&[
            "integrations",
            "update",
            "openai-dev",
            "--base-url",
            "",
            "-o",
            "json",
        ])
        .ok()
        .json();
    assert!(got["configurations"].get("custom_host").is_none(), "{got}");

    // delete --yes.
    env.run(&["integrations", "delete", "openai-dev", "--yes"])
        .ok()
        .stderr_has("deleted integration openai-dev");
    assert!(slugs(&env).is_empty());
    env.run(&["integrations", "get", "openai-dev"]).code(4);
}

#[test]
fn list_table_is_stable() {
    let env = TestEnv::new();
    let empty = env.run(&["integrations", "list"]).ok();
    assert_eq!(empty.stdout, "");
    assert_eq!(empty.stderr, "(none)\n");
    create(&env, "openai-dev", "openai", SECRET);
    env.run_stdin(
        &[
            "integrations",
            "create",
            "--slug",
            "prod-claude",
            "--provider",
            "anthropic",
            "--name",
            "Claude",
            "--base-url",
            "https://proxy.example.com/v1",
            "--api-key-stdin",
        ],
        "sk-ant-api03-abcdefghijklmnopWXYZ\n",
    )
    .ok();
    let out = env.run(&["integrations", "list"]).ok();
    let expected = "\
┌────────────────────────────────────────────────────────────────────────────────┐
│ SLUG          PROVIDER    NAME         KEY        BASE URL                     │
╞════════════════════════════════════════════════════════════════════════════════╡
│ openai-dev    openai      openai-dev   sk-…3456   -                            │
│ prod-claude   anthropic   Claude       sk-…WXYZ   https://proxy.example.com/v1 │
└────────────────────────────────────────────────────────────────────────────────┘
";
    assert_eq!(out.stdout, expected, "\n{out}");
}

#[test]
fn create_without_api_key_stdin_and_no_terminal_is_a_usage_error() {
    let env = TestEnv::new();
    let out = env
        .run(&[
            "integrations",
            "create",
            "--slug",
            "openai-dev",
            "--provider",
            "openai",
        ])
        .code(2)
        .error_and_hint();
    assert!(out.stderr.contains("--api-key-stdin"), "{out}");
    assert!(slugs(&env).is_empty());

    // --no-input refuses the same way, even with the key on stdin (no flag, no prompt).
    env.run_stdin(
        &[
            "integrations",
            "create",
            "--slug",
            "openai-dev",
            "--provider",
            "openai",
            "--no-input",
        ],
        "sk-whatever-123456789\n",
    )
    .code(2)
    .stderr_has("--api-key-stdin");
    assert!(slugs(&env).is_empty());

    // --api-key-stdin with nothing on stdin.
    env.run_stdin(
        &[
            "integrations",
            "create",
            "--slug",
            "openai-dev",
            "--provider",
            "openai",
            "--api-key-stdin",
        ],
        "",
    )
    .code(2)
    .error_and_hint()
    .stderr_has("no API key on standard input");
    assert!(slugs(&env).is_empty());
}

#[test]
fn unknown_provider_lists_the_valid_ones() {
    let env = TestEnv::new();
    let out = env
        .run_stdin(
            &[
                "integrations",
                "create",
                "--slug",
                "x",
                "--provider",
                "openia",
                "--api-key-stdin",
            ],
            "sk-whatever-123456789\n",
        )
        .code(1)
        .error_and_hint();
    assert_eq!(out.error_line(), "unknown provider \"openia\"");
    for provider in ["openai", "anthropic", "google", "bedrock"] {
        assert!(out.stderr.contains(provider), "{out}");
    }
    assert!(slugs(&env).is_empty());

    // The server checks too: a raw request gets a 400 that lists them (exit 1).
    let out = env
        .run(&[
            "api",
            "POST",
            "/v1/integrations",
            "-d",
            r#"{"slug":"x","ai_provider_id":"openia","key":"sk-whatever-123456789"}"#,
        ])
        .code(1);
    assert!(out.error_line().contains("valid providers"), "{out}");
    assert!(out.error_line().contains("anthropic"), "{out}");
}

#[test]
fn duplicate_slug_is_a_conflict() {
    let env = TestEnv::new();
    create(&env, "openai-dev", "openai", SECRET);
    let out = env
        .run_stdin(
            &[
                "integrations",
                "create",
                "--slug",
                "openai-dev",
                "--provider",
                "anthropic",
                "--api-key-stdin",
            ],
            "sk-ant-another-123456789\n",
        )
        .code(5)
        .error_and_hint();
    assert!(out.error_line().contains("already exists"), "{out}");
    // The first one is untouched.
    let got = env
        .run(&["integrations", "get", "openai-dev", "-o", "json"])
        .ok()
        .json();
    assert_eq!(got["ai_provider_id"], "openai");
    assert_eq!(got["masked_key"], SECRET_MASK);
}

#[test]
fn unknown_slug_is_not_found() {
    let env = TestEnv::new();
    for args in [
        vec!["integrations", "get", "nope"],
        vec!["integrations", "delete", "nope", "--yes"],
        vec!["integrations", "update", "nope", "--name", "x"],
    ] {
        let out = env.run(&args).code(4).error_and_hint();
        assert_eq!(
            out.error_line(),
            "no integration with slug \"nope\"",
            "{out}"
        );
    }
}

#[test]
fn delete_without_yes_is_refused_when_not_at_a_terminal() {
    let env = TestEnv::new();
    create(&env, "openai-dev", "openai", SECRET);
    let out = env
        .run(&["integrations", "delete", "openai-dev"])
        .code(2)
        .error_and_hint()
        .stderr_has("--yes");
    assert!(out.error_line().contains("refusing"), "{out}");
    assert_eq!(slugs(&env), ["openai-dev"]);
    // --no-input refuses too, and `rm` is the same command.
    env.run(&["integrations", "rm", "openai-dev", "--no-input"])
        .code(2);
    assert_eq!(slugs(&env), ["openai-dev"]);
    env.run(&["integrations", "rm", "openai-dev", "-y"]).ok();
    assert!(slugs(&env).is_empty());
}

#[test]
fn dry_run_sends_nothing_and_masks_the_key() {
    let env = TestEnv::new();
    let out = env
        .run_stdin(
            &[
                "integrations",
                "create",
                "--slug",
                "openai-dev",
                "--provider",
                "openai",
                "--api-key-stdin",
                "--dry-run",
                "-o",
                "json",
            ],
            &format!("{SECRET}\n"),
        )
        .ok()
        .never_shows(SECRET)
        .stderr_has("dry run");
    let plan = out.json();
    assert_eq!(plan["dry_run"], true);
    assert_eq!(plan["method"], "POST");
    assert_eq!(plan["path"], "/v1/integrations");
    assert_eq!(plan["body"]["key"], SECRET_MASK);
    assert_eq!(plan["body"]["slug"], "openai-dev");
    assert!(slugs(&env).is_empty(), "a dry run created something");

    // Update and delete dry runs change nothing either.
    create(&env, "openai-dev", "openai", SECRET);
    env.run_stdin(
        &[
            "integrations",
            "update",
            "openai-dev",
            "--api-key-stdin",
            "--dry-run",
        ],
        &format!("{NEW_SECRET}\n"),
    )
    .ok()
    .never_shows(NEW_SECRET)
    .stdout_has(NEW_MASK);
    env.run(&["integrations", "delete", "openai-dev", "--dry-run"])
        .ok();
    let got = env
        .run(&["integrations", "get", "openai-dev", "-o", "json"])
        .ok()
        .json();
    assert_eq!(got["masked_key"], SECRET_MASK);

    // A dry run needs no server at all.
    env.run_stdin(
        &[
            "integrations",
            "create",
            "--slug",
            "x",
            "--provider",
            "openai",
            "--api-key-stdin",
            "--dry-run",
            "--url",
            DOWN_URL,
        ],
        &format!("{SECRET}\n"),
    )
    .ok()
    .never_shows(SECRET);
}

#[test]
fn a_key_without_integration_scopes_is_refused() {
    let env = TestEnv::new();
    let (_, key) = env.create_key("ci-bot", &[]);
    env.cmd(&[
        "integrations",
        "create",
        "--slug",
        "x",
        "--provider",
        "openai",
        "--api-key-stdin",
    ])
    .key(&key)
    .stdin("sk-whatever-123456789\n")
    .run()
    .code(3)
    .stderr_has("lacks the integrations.create scope");
    env.run_with_key(&key, &["integrations", "list"])
        .code(3)
        .stderr_has("integrations.list");
    assert!(slugs(&env).is_empty());
}

#[test]
fn create_needs_only_the_create_scope() {
    let env = TestEnv::new();
    let (_, key) = env.create_key(
        "ops",
        &["--scopes", "integrations.create,integrations.list"],
    );
    env.cmd(&[
        "integrations",
        "create",
        "--slug",
        "x",
        "--provider",
        "openai",
        "--api-key-stdin",
    ])
    .key(&key)
    .stdin("sk-whatever-123456789\n")
    .run()
    .ok()
    .stderr_has("created integration x");
    assert_eq!(slugs(&env), ["x"]);
}
