//! `tollgate configs`: validated before anything is stored, versioned, applied idempotently.

use serde_json::{json, Value};

use crate::common::{normalise_slugs, TestEnv, DOWN_URL};

const GOOD_YAML: &str = "\
strategy:
  mode: loadbalance
targets:
  - provider: openai
    weight: 0.7
  - provider: anthropic
    weight: 0.3
retry:
  attempts: 3
";

/// GOOD_YAML with one more retry attempt.
const CHANGED_YAML: &str = "\
strategy:
  mode: loadbalance
targets:
  - provider: openai
    weight: 0.7
  - provider: anthropic
    weight: 0.3
retry:
  attempts: 4
";

const GOOD_JSON: &str = r#"{"strategy":{"mode":"fallback"},"targets":[{"provider":"openai"},{"provider":"anthropic"}]}"#;

/// Three errors at three paths: a bad mode, too many retry attempts, a negative weight.
const BAD_YAML: &str = "\
strategy:
  mode: bogus
retry:
  attempts: 9
targets:
  - provider: openai
    weight: 1
  - provider: anthropic
    weight: -1
";

const BAD_ERRORS: [&str; 3] = [
    "strategy.mode: unknown mode \"bogus\"; expected one of single, loadbalance, fallback, conditional",
    "retry.attempts: must be between 0 and 5, found 9",
    "targets[1].weight: must be >= 0",
];

fn good_value() -> Value {
    json!({
        "strategy": {"mode": "loadbalance"},
        "targets": [
            {"provider": "openai", "weight": 0.7},
            {"provider": "anthropic", "weight": 0.3}
        ],
        "retry": {"attempts": 3}
    })
}

fn list(env: &TestEnv) -> Vec<Value> {
    let out = env.run(&["configs", "list", "-o", "json"]).ok();
    out.json()
        .as_array()
        .cloned()
        .unwrap_or_else(|| panic!("an array\n{out}"))
}

/// Creates a config from YAML text; returns its slug.
fn create(env: &TestEnv, name: &str, yaml: &str) -> String {
    let file = env.write(&format!("{name}-create.yaml"), yaml);
    let out = env
        .run(&[
            "configs", "create", "--name", name, "-f", &file, "-o", "json",
        ])
        .ok();
    out.json()["slug"].as_str().unwrap().to_string()
}

#[test]
fn validate_a_valid_file_needs_no_server() {
    let env = TestEnv::offline();
    let yaml = env.write("good.yaml", GOOD_YAML);
    let json = env.write("good.json", GOOD_JSON);
    let out = env
        .run(&["--url", DOWN_URL, "configs", "validate", "-f", &yaml])
        .ok();
    assert_eq!(out.stdout, "");
    assert_eq!(out.stderr, "good.yaml: valid\n");
    let out = env
        .run(&[
            "--url", DOWN_URL, "configs", "validate", "-f", &json, "-o", "json",
        ])
        .ok();
    assert_eq!(out.json(), json!({"file": "good.json", "valid": true}));
    // And from stdin.
    env.cmd(&["--url", DOWN_URL, "configs", "validate", "-f", "-"])
        .stdin(GOOD_YAML)
        .run()
        .ok()
        .stderr_has("-: valid");
}

#[test]
fn validate_an_invalid_file_prints_every_error_with_its_path() {
    let env = TestEnv::offline();
    let bad = env.write("bad.yaml", BAD_YAML);
    let out = env
        .run(&["--url", DOWN_URL, "configs", "validate", "-f", &bad])
        .code(1);
    assert_eq!(out.stdout, "");
    let expected = format!(
        "error: bad.yaml: invalid config (3 errors)\n  {}\n  {}\n  {}\nhint: fix the fields named above; `tollgate configs validate -f FILE` checks offline\n",
        BAD_ERRORS[0], BAD_ERRORS[1], BAD_ERRORS[2]
    );
    assert_eq!(out.stderr, expected, "\n{out}");

    // -o json: the same errors as one JSON object on stderr.
    let out = env
        .run(&[
            "--url", DOWN_URL, "configs", "validate", "-f", &bad, "-o", "json",
        ])
        .code(1);
    let line = out
        .stderr
        .lines()
        .find(|l| l.starts_with('{'))
        .expect("JSON error");
    let err: Value = serde_json::from_str(line).unwrap();
    assert_eq!(err["error"]["details"], json!(BAD_ERRORS));
    assert_eq!(err["error"]["exit_code"], 1);

    // Not YAML at all: the line and column.
    let broken = env.write("broken.json", "{\"retry\": ");
    env.run(&["configs", "validate", "-f", &broken])
        .code(1)
        .stderr_has("broken.json: invalid JSON at line 1");
    // A file that does not exist.
    env.run(&["configs", "validate", "-f", "missing.yaml"])
        .code(1)
        .error_and_hint()
        .stderr_has("cannot read missing.yaml");
}

#[test]
fn create_of_an_invalid_file_stores_nothing() {
    let env = TestEnv::new();
    let bad = env.write("bad.yaml", BAD_YAML);
    let out = env
        .run(&["configs", "create", "--name", "prod", "-f", &bad])
        .code(1)
        .error_and_hint();
    for error in BAD_ERRORS {
        assert!(
            out.stderr.contains(&format!("  {error}\n")),
            "lacks {error:?}\n{out}"
        );
    }
    assert!(out.stdout.is_empty(), "{out}");
    assert!(list(&env).is_empty(), "an invalid config was stored");

    // --dry-run validates locally with the same paths.
    let out = env
        .run(&[
            "configs",
            "create",
            "--name",
            "prod",
            "-f",
            &bad,
            "--dry-run",
        ])
        .code(1);
    for error in BAD_ERRORS {
        assert!(out.stderr.contains(error), "{out}");
    }
    // The raw API rejects it with every error too (400, exit 1).
    let body = json!({"name": "prod", "config": serde_yaml_like_bad()}).to_string();
    let out = env
        .run(&["api", "POST", "/v1/configs", "-d", &body])
        .code(1);
    let answer = out.json();
    assert_eq!(answer["error"]["code"], "AB01", "{out}");
    assert_eq!(answer["errors"], json!(BAD_ERRORS), "{out}");
    assert!(list(&env).is_empty());
}

/// BAD_YAML as JSON.
fn serde_yaml_like_bad() -> Value {
    json!({
        "strategy": {"mode": "bogus"},
        "retry": {"attempts": 9},
        "targets": [{"provider": "openai", "weight": 1}, {"provider": "anthropic", "weight": -1}]
    })
}

#[test]
fn create_from_yaml_json_and_stdin() {
    let env = TestEnv::new();
    let yaml = env.write("prod.yaml", GOOD_YAML);
    let json_file = env.write("fallback.json", GOOD_JSON);

    let out = env
        .run(&[
            "configs", "create", "--name", "prod", "-f", &yaml, "-o", "json",
        ])
        .ok()
        .stderr_has("created config pc-prod-");
    let prod = out.json();
    let prod_slug = prod["slug"].as_str().unwrap().to_string();
    assert!(
        prod_slug.starts_with("pc-prod-") && prod_slug.len() == 14,
        "{prod_slug}"
    );
    assert_eq!(prod["name"], "prod");
    assert_eq!(prod["version"], 1);
    assert_eq!(prod["config"], good_value());

    let out = env
        .run(&[
            "configs", "create", "--name", "fallback", "-f", &json_file, "-o", "json",
        ])
        .ok();
    let fallback = out.json();
    assert!(
        fallback["slug"].as_str().unwrap().starts_with("pc-fallb-"),
        "{out}"
    );
    assert_eq!(
        fallback["config"],
        serde_json::from_str::<Value>(GOOD_JSON).unwrap()
    );

    let out = env
        .cmd(&[
            "configs",
            "create",
            "--name",
            "From Stdin",
            "-f",
            "-",
            "-o",
            "json",
        ])
        .stdin(GOOD_YAML)
        .run()
        .ok();
    let piped = out.json();
    assert!(
        piped["slug"].as_str().unwrap().starts_with("pc-froms-"),
        "{out}"
    );
    assert_eq!(piped["config"], good_value());

    // list: all three; get: each.
    let all = list(&env);
    let mut names: Vec<&str> = all.iter().map(|c| c["name"].as_str().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["From Stdin", "fallback", "prod"]);
    let got = env
        .run(&["configs", "get", &prod_slug, "-o", "json"])
        .ok()
        .json();
    assert_eq!(got["slug"], prod_slug.as_str());
    assert_eq!(got["config"], good_value());
    assert_eq!(got["status"], "active");

    // Table output of list carries the slug, name and version.
    let out = env.run(&["configs", "ls"]).ok();
    assert!(out.stdout.contains(&prod_slug), "{out}");
    assert!(
        out.stdout.contains("SLUG") && out.stdout.contains("VERSION"),
        "{out}"
    );
    // ndjson: one object per line.
    let out = env.run(&["configs", "list", "-o", "ndjson"]).ok();
    assert_eq!(out.stdout.lines().count(), 3, "{out}");
    for line in out.stdout.lines() {
        let v: Value = serde_json::from_str(line).expect("a JSON object per line");
        assert!(v["slug"].as_str().unwrap().starts_with("pc-"));
    }
}

#[test]
fn get_yaml_fed_to_apply_is_unchanged() {
    let env = TestEnv::new();
    let slug = create(&env, "prod", GOOD_YAML);
    let out = env.run(&["configs", "get", &slug, "-o", "yaml"]).ok();
    let saved = env.write("saved.yaml", &out.stdout);
    for _ in 0..2 {
        let out = env
            .run(&["configs", "apply", "-f", &saved, "-o", "json"])
            .ok();
        assert_eq!(
            out.json(),
            json!([{"name": "prod", "slug": slug, "action": "unchanged", "version": 1, "source": "saved.yaml"}]),
            "\n{out}"
        );
    }
    let got = env
        .run(&["configs", "get", &slug, "-o", "json"])
        .ok()
        .json();
    assert_eq!(got["version"], 1);
    let versions = env
        .run(&["configs", "versions", &slug, "-o", "json"])
        .ok()
        .json();
    assert_eq!(versions.as_array().unwrap().len(), 1);

    // The table form of the same plan, with the slug's random part normalised.
    let out = env.run(&["configs", "apply", "-f", &saved]).ok();
    let expected = "\
┌──────────────────────────────────────────────────────────┐
│ NAME   SLUG             ACTION      VERSION   SOURCE     │
╞══════════════════════════════════════════════════════════╡
│ prod   pc-prod-XXXXXX   unchanged   1         saved.yaml │
└──────────────────────────────────────────────────────────┘
";
    assert_eq!(normalise_slugs(&out.stdout), expected, "\n{out}");
}

#[test]
fn apply_creates_then_updates_by_name() {
    let env = TestEnv::new();
    let file = env.write("prod.yaml", GOOD_YAML);
    let out = env
        .run(&["configs", "apply", "-f", &file, "-o", "json"])
        .ok();
    let plan = out.json();
    assert_eq!(
        plan[0]["name"], "prod",
        "a bare config is named after its file"
    );
    assert_eq!(plan[0]["action"], "create");
    assert_eq!(plan[0]["version"], 1);
    let slug = plan[0]["slug"].as_str().unwrap().to_string();

    let out = env
        .run(&["configs", "apply", "-f", &file, "-o", "json"])
        .ok();
    assert_eq!(out.json()[0]["action"], "unchanged");

    env.write("prod.yaml", CHANGED_YAML);
    let out = env
        .run(&["configs", "apply", "-f", &file, "--dry-run", "-o", "json"])
        .ok();
    assert_eq!(out.json()[0]["action"], "update");
    assert_eq!(out.json()[0]["version"], 1, "a dry run changes nothing");
    assert_eq!(
        env.run(&["configs", "get", &slug, "-o", "json"])
            .ok()
            .json()["version"],
        1
    );

    let out = env
        .run(&["configs", "apply", "-f", &file, "-o", "json"])
        .ok();
    assert_eq!(out.json()[0]["action"], "update");
    assert_eq!(out.json()[0]["version"], 2);
    assert_eq!(out.json()[0]["slug"], slug.as_str());
    let got = env
        .run(&["configs", "get", &slug, "-o", "json"])
        .ok()
        .json();
    assert_eq!(got["config"]["retry"]["attempts"], 4);
    assert_eq!(list(&env).len(), 1);
}

#[test]
fn update_makes_a_new_version() {
    let env = TestEnv::new();
    let slug = create(&env, "prod", GOOD_YAML);
    let changed = env.write("changed.yaml", CHANGED_YAML);
    let out = env
        .run(&["configs", "update", &slug, "-f", &changed, "-o", "json"])
        .ok()
        .stderr_has("to version 2");
    assert_eq!(out.json()["version"], 2);

    let out = env.run(&["configs", "versions", &slug, "-o", "json"]).ok();
    let versions = out.json();
    let numbers: Vec<u64> = versions
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, [2, 1], "newest first\n{out}");
    // Each version keeps its own config (as JSON text, as in Portkey).
    let v1: Value = serde_json::from_str(versions[1]["config"].as_str().unwrap()).unwrap();
    let v2: Value = serde_json::from_str(versions[0]["config"].as_str().unwrap()).unwrap();
    assert_eq!(v1["retry"]["attempts"], 3);
    assert_eq!(v2["retry"]["attempts"], 4);

    let got = env
        .run(&["configs", "get", &slug, "-o", "json"])
        .ok()
        .json();
    assert_eq!(got["version"], 2);
    assert_eq!(got["config"]["retry"]["attempts"], 4);
    assert_eq!(got["version_id"], versions[0]["version_id"]);

    // An invalid update is refused with its paths and makes no version.
    let bad = env.write("bad.yaml", BAD_YAML);
    let out = env.run(&["configs", "update", &slug, "-f", &bad]).code(1);
    assert!(out.stderr.contains(BAD_ERRORS[2]), "{out}");
    let versions = env
        .run(&["configs", "versions", &slug, "-o", "json"])
        .ok()
        .json();
    assert_eq!(versions.as_array().unwrap().len(), 2);

    // Nothing to update is a usage error.
    env.run(&["configs", "update", &slug])
        .code(2)
        .error_and_hint();
    // Renaming works and keeps the slug.
    env.run(&["configs", "update", &slug, "--name", "production"])
        .ok();
    let got = env
        .run(&["configs", "get", &slug, "-o", "json"])
        .ok()
        .json();
    assert_eq!(got["name"], "production");
}

#[test]
fn diff_exits_0_when_equal_and_1_with_a_unified_diff() {
    let env = TestEnv::new();
    let slug = create(&env, "prod", GOOD_YAML);
    let same = env.write("prod.yaml", GOOD_YAML);
    let out = env
        .run(&["configs", "diff", "-f", &same])
        .ok()
        .stderr_has("prod: no changes");
    assert_eq!(out.stdout, "");

    env.write("prod.yaml", CHANGED_YAML);
    let out = env.run(&["configs", "diff", "-f", &same]).code(1);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], format!("--- prod {slug}"), "{out}");
    assert_eq!(lines[1], "+++ prod.yaml", "{out}");
    assert!(lines.contains(&"-  attempts: 3"), "{out}");
    assert!(lines.contains(&"+  attempts: 4"), "{out}");
    assert!(lines.iter().any(|l| l.starts_with("@@ ")), "{out}");
    assert!(
        !out.stdout.contains('\x1b'),
        "no colour with NO_COLOR\n{out}"
    );
    assert!(
        !out.stderr.contains("error"),
        "a diff is not an error\n{out}"
    );

    // Not saved yet: everything is an addition.
    let new = env.write("other.yaml", GOOD_YAML);
    let out = env.run(&["configs", "diff", "-f", &new]).code(1);
    assert!(out.stdout.starts_with("--- other (not saved)\n"), "{out}");
    assert!(out.stdout.contains("+retry:"), "{out}");

    // The saved config did not move.
    let got = env
        .run(&["configs", "get", &slug, "-o", "json"])
        .ok()
        .json();
    assert_eq!(got["version"], 1);
}

#[test]
fn diff_of_a_broken_file_is_an_error_not_a_change() {
    let env = TestEnv::offline();
    let bad = env.write("bad.yaml", BAD_YAML);
    let out = env.run(&["--url", DOWN_URL, "configs", "diff", "-f", "missing.yaml"]);
    assert!(
        out.code > 1,
        "a missing file must not read as `changes`\n{out}"
    );
    let out = env.run(&["--url", DOWN_URL, "configs", "diff", "-f", &bad]);
    assert!(
        out.code > 1,
        "an invalid file must not read as `changes`\n{out}"
    );
}

#[test]
fn apply_a_folder_of_files() {
    let env = TestEnv::new();
    env.write("dir/alpha.yaml", GOOD_YAML);
    env.write("dir/beta.json", GOOD_JSON);
    env.write("dir/README.md", "not a config, skipped");

    let out = env
        .run(&["configs", "apply", "-f", "dir", "--dry-run", "-o", "json"])
        .ok();
    let plan = out.json();
    assert_eq!(plan.as_array().unwrap().len(), 2, "{out}");
    assert_eq!(plan[0]["name"], "alpha");
    assert_eq!(plan[0]["action"], "create");
    assert_eq!(plan[0]["slug"], Value::Null);
    assert_eq!(plan[1]["name"], "beta");
    assert_eq!(plan[1]["action"], "create");
    assert!(out.stderr.contains("dry run"), "{out}");
    assert!(list(&env).is_empty(), "a dry run created something");

    let out = env
        .run(&["configs", "apply", "-f", "dir", "-o", "json"])
        .ok();
    let plan = out.json();
    for (i, name) in ["alpha", "beta"].into_iter().enumerate() {
        assert_eq!(plan[i]["name"], name);
        assert_eq!(plan[i]["action"], "create");
        assert_eq!(plan[i]["version"], 1);
        assert!(plan[i]["slug"].as_str().unwrap().starts_with("pc-"));
    }
    let mut names: Vec<String> = list(&env)
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    assert_eq!(names, ["alpha", "beta"]);

    // Again: nothing to do.
    let out = env
        .run(&["configs", "apply", "-f", "dir", "-o", "json"])
        .ok();
    assert!(
        out.json()
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o["action"] == "unchanged"),
        "{out}"
    );
}

#[test]
fn apply_with_one_invalid_file_applies_nothing() {
    let env = TestEnv::new();
    env.write("dir/alpha.yaml", GOOD_YAML);
    env.write("dir/beta.yaml", BAD_YAML);
    let out = env
        .run(&["configs", "apply", "-f", "dir"])
        .code(1)
        .error_and_hint();
    assert_eq!(
        out.error_line(),
        "some config files are invalid; nothing was changed"
    );
    for error in BAD_ERRORS {
        assert!(
            out.stderr.contains(&format!("dir/beta.yaml: {error}")),
            "{out}"
        );
    }
    assert!(!out.stderr.contains("alpha"), "{out}");
    assert!(
        list(&env).is_empty(),
        "alpha was applied although beta is invalid"
    );

    // Two files naming the same config are refused too.
    env.write(
        "dir/beta.yaml",
        "name: alpha\nconfig:\n  retry:\n    attempts: 1\n",
    );
    env.run(&["configs", "apply", "-f", "dir"])
        .code(1)
        .stderr_has("both define the config \"alpha\"");
    assert!(list(&env).is_empty());
}

#[test]
fn duplicate_name_is_a_conflict() {
    let env = TestEnv::new();
    let slug = create(&env, "prod", GOOD_YAML);
    let file = env.write("again.yaml", CHANGED_YAML);
    let out = env
        .run(&["configs", "create", "--name", "prod", "-f", &file])
        .code(5)
        .error_and_hint();
    assert_eq!(out.error_line(), "a config named \"prod\" already exists");
    assert_eq!(list(&env).len(), 1);
    // Renaming another config onto the name conflicts as well.
    let other = create(&env, "other", GOOD_YAML);
    env.run(&["configs", "update", &other, "--name", "prod"])
        .code(5);
    let got = env
        .run(&["configs", "get", &slug, "-o", "json"])
        .ok()
        .json();
    assert_eq!(got["config"]["retry"]["attempts"], 3);
}

#[test]
fn delete_needs_yes_when_not_at_a_terminal() {
    let env = TestEnv::new();
    let slug = create(&env, "prod", GOOD_YAML);
    env.run(&["configs", "delete", &slug])
        .code(2)
        .error_and_hint()
        .stderr_has("--yes");
    assert_eq!(list(&env).len(), 1, "a refused delete deleted");
    env.run(&["configs", "delete", &slug, "--dry-run"]).ok();
    assert_eq!(list(&env).len(), 1);
    env.run(&["configs", "delete", &slug, "--yes"])
        .ok()
        .stderr_has(&format!("deleted config {slug}"));
    assert!(list(&env).is_empty());
    env.run(&["configs", "get", &slug]).code(4);
    env.run(&["configs", "versions", &slug]).code(4);
}

#[test]
fn unknown_slug_is_not_found() {
    let env = TestEnv::new();
    let file = env.write("prod.yaml", GOOD_YAML);
    for args in [
        vec!["configs", "get", "pc-nope-000000"],
        vec!["configs", "versions", "pc-nope-000000"],
        vec!["configs", "update", "pc-nope-000000", "-f", &file],
        vec!["configs", "delete", "pc-nope-000000", "--yes"],
    ] {
        let out = env.run(&args).code(4).error_and_hint();
        assert_eq!(
            out.error_line(),
            "no config with slug \"pc-nope-000000\"",
            "{out}"
        );
    }
}

#[test]
fn a_workspace_key_cannot_touch_configs() {
    let env = TestEnv::new();
    let (_, key) = env.create_key("ci-bot", &[]);
    let file = env.write("prod.yaml", GOOD_YAML);
    env.run_with_key(&key, &["configs", "create", "--name", "prod", "-f", &file])
        .code(3)
        .error_and_hint()
        .stderr_has("lacks the configs.create scope");
    env.run_with_key(&key, &["configs", "list"]).code(3);
    env.run_with_key(&key, &["configs", "apply", "-f", &file])
        .code(3);
    assert!(list(&env).is_empty());
}

#[test]
fn help_ends_with_examples() {
    let env = TestEnv::offline();
    for group in ["configs", "integrations", "keys", "context"] {
        let out = env.run(&[group, "--help"]).ok();
        let text = out.stdout.trim_end();
        let (_, examples) = text
            .rsplit_once("\nExamples:\n")
            .unwrap_or_else(|| panic!("`{group} --help` has no Examples block\n{out}"));
        assert!(
            examples.lines().count() >= 3,
            "`{group} --help` has too few examples\n{out}"
        );
        assert!(
            examples.contains(&format!("tollgate {group} ")),
            "`{group} --help` examples do not use the group\n{out}"
        );
    }
    let out = env.run(&["configs", "--help"]).ok();
    assert!(
        out.stdout
            .trim_end()
            .ends_with("tollgate configs diff -f prod.yaml || echo 'prod has drifted'"),
        "\n{out}"
    );
    // Top-level help too, with the line for scripts.
    let out = env.run(&["--help"]).ok();
    assert!(out.stdout.contains("Examples:"), "{out}");
    assert!(out.stdout.contains("-o json | jq -r .key"), "{out}");
}
