//! `tollgate prompts`: versions, labels, render, run, diff and an idempotent apply.

use serde_json::{json, Value};

use crate::common::{add_openai_integration, openai_chat_json, openai_chat_sse, TestEnv};
use crate::upstream::{Reply, Upstream};

const GREETER: &str = "\
name: greeter
model: '@up/gpt-4o-mini'
parameters:
  temperature: 0.1
  max_tokens: 50
messages:
  - role: system
    content: You greet people.
  - role: user
    content: Say hello to {{name}}.
";

/// GREETER with a warmer user message.
const WARMER: &str = "\
name: greeter
model: '@up/gpt-4o-mini'
parameters:
  temperature: 0.1
  max_tokens: 50
messages:
  - role: system
    content: You greet people.
  - role: user
    content: Greet {{name}} warmly.
";

/// Creates the greeter prompt; returns its slug.
fn create(env: &TestEnv) -> String {
    let file = env.write("greeter.yaml", GREETER);
    let out = env
        .run(&["prompts", "create", "-f", &file, "-o", "json"])
        .ok();
    out.json()["slug"].as_str().unwrap().to_string()
}

fn versions(env: &TestEnv, slug: &str) -> Vec<Value> {
    env.run(&["prompts", "versions", slug, "-o", "json"])
        .ok()
        .json()
        .as_array()
        .cloned()
        .unwrap()
}

#[test]
fn create_update_publish_label_and_get_by_label() {
    let env = TestEnv::new();
    let slug = create(&env);
    let warmer = env.write("warmer.yaml", WARMER);
    let dry = env
        .run(&[
            "prompts",
            "update",
            &slug,
            "-f",
            &warmer,
            "--dry-run",
            "-o",
            "json",
        ])
        .ok();
    assert_eq!(dry.json()["method"], "PUT");
    assert_eq!(versions(&env, &slug).len(), 1, "a dry run sends nothing");

    let out = env
        .run(&["prompts", "update", &slug, "-f", &warmer, "-o", "json"])
        .ok();
    assert_eq!(out.json()["version"], 2);
    let all = versions(&env, &slug);
    assert_eq!(
        all.iter().map(|v| v["version"].clone()).collect::<Vec<_>>(),
        [json!(2), json!(1)]
    );

    // Version 1 stays published until `publish`; a label points at version 2.
    let get = |extra: &[&str]| {
        let mut args = vec!["prompts", "get", &slug, "-o", "json"];
        args.extend_from_slice(extra);
        env.run(&args).ok().json()
    };
    assert_eq!(get(&[])["prompt_version"], 1);
    env.run(&["prompts", "label", &slug, "--version", "2", "staging"])
        .ok()
        .stderr_has("staging now points at version 2");
    let staged = get(&["--label", "staging"]);
    assert_eq!(staged["prompt_version"], 2);
    assert_eq!(staged["messages"][1]["content"], "Greet {{name}} warmly.");
    assert_eq!(
        get(&["--version", "1"])["messages"][1]["content"],
        "Say hello to {{name}}."
    );

    env.run(&["prompts", "publish", &slug, "--version", "2"])
        .ok();
    assert_eq!(get(&[])["prompt_version"], 2);

    // The table view shows the messages.
    env.run(&["prompts", "get", &slug])
        .ok()
        .stdout_has("user: Greet {{name}} warmly.");
    env.run(&["prompts", "list"]).ok().stdout_has("greeter");

    // Delete asks for --yes off a terminal.
    env.run(&["prompts", "delete", &slug]).code(2);
    env.run(&["prompts", "delete", &slug, "--yes"]).ok();
    env.run(&["prompts", "get", &slug]).code(4);
}

#[test]
fn render_fills_variables_and_names_the_missing_ones() {
    let env = TestEnv::new();
    let slug = create(&env);
    let vars = env.write("vars.yaml", "name: Grace\n");
    let out = env
        .run(&[
            "prompts", "render", &slug, "--var", "name=Ada", "-o", "json",
        ])
        .ok();
    assert_eq!(out.json()["messages"][1]["content"], "Say hello to Ada.");
    assert_eq!(out.json()["model"], "@up/gpt-4o-mini");
    let from_file = env
        .run(&[
            "prompts",
            "render",
            &format!("{slug}@1"),
            "--vars-file",
            &vars,
            "-o",
            "json",
        ])
        .ok();
    assert_eq!(
        from_file.json()["messages"][1]["content"],
        "Say hello to Grace."
    );
    env.run(&["prompts", "render", &slug])
        .code(1)
        .stderr_has("\n  missing variable name\n")
        .stderr_has("hint: give each with --var NAME=VALUE");
}

#[test]
fn apply_is_idempotent_and_dry_run_changes_nothing() {
    let env = TestEnv::new();
    env.write("prompts/greeter.yaml", GREETER);
    env.write(
        "prompts/farewell.json",
        r#"{"name": "farewell", "messages": [{"role": "user", "content": "Bye {{name}}"}]}"#,
    );
    let actions = |out: &crate::common::Output| -> Vec<(String, String)> {
        out.json()
            .as_array()
            .unwrap()
            .iter()
            .map(|o| {
                (
                    o["name"].as_str().unwrap().into(),
                    o["action"].as_str().unwrap().into(),
                )
            })
            .collect()
    };
    let pair = |n: &str, a: &str| (n.to_string(), a.to_string());

    let dry = env
        .run(&[
            "prompts",
            "apply",
            "-f",
            "prompts",
            "--dry-run",
            "-o",
            "json",
        ])
        .ok();
    assert_eq!(
        actions(&dry),
        [pair("farewell", "create"), pair("greeter", "create")]
    );
    env.run(&["prompts", "list"]).ok().stderr_has("(none)");

    let first = env
        .run(&["prompts", "apply", "-f", "prompts", "-o", "json"])
        .ok();
    assert_eq!(
        actions(&first),
        [pair("farewell", "create"), pair("greeter", "create")]
    );
    let again = env
        .run(&["prompts", "apply", "-f", "prompts", "-o", "json"])
        .ok();
    assert_eq!(
        actions(&again),
        [pair("farewell", "unchanged"), pair("greeter", "unchanged")]
    );

    env.write("prompts/greeter.yaml", WARMER);
    let dry = env
        .run(&[
            "prompts",
            "apply",
            "-f",
            "prompts",
            "--dry-run",
            "-o",
            "json",
        ])
        .ok();
    assert_eq!(
        actions(&dry),
        [pair("farewell", "unchanged"), pair("greeter", "update")]
    );
    let slug = first.json()[1]["slug"].as_str().unwrap().to_string();
    assert_eq!(versions(&env, &slug).len(), 1, "a dry run adds no version");
    let updated = env
        .run(&["prompts", "apply", "-f", "prompts", "-o", "json"])
        .ok();
    assert_eq!(updated.json()[1]["version"], 2);
    let again = env
        .run(&["prompts", "apply", "-f", "prompts", "-o", "json"])
        .ok();
    assert_eq!(actions(&again)[1], pair("greeter", "unchanged"));
    assert_eq!(versions(&env, &slug).len(), 2);
}

#[test]
fn diff_exits_0_when_equal_and_1_with_a_unified_diff() {
    let env = TestEnv::new();
    let slug = create(&env);
    let same = env.write("same.yaml", GREETER);
    env.run(&["prompts", "update", &slug, "-f", &same]).ok();
    let warmer = env.write("warmer.yaml", WARMER);
    env.run(&["prompts", "update", &slug, "-f", &warmer]).ok();
    env.run(&["prompts", "diff", &slug, "1", "2"])
        .ok()
        .stderr_has("are the same");
    let out = env.run(&["prompts", "diff", &slug, "1", "3"]).code(1);
    assert!(
        out.stdout.contains("-  content: Say hello to {{name}}."),
        "{out}"
    );
    assert!(
        out.stdout.contains("+  content: Greet {{name}} warmly."),
        "{out}"
    );
    assert!(
        !out.stdout.contains("\x1b["),
        "no colour off a terminal\n{out}"
    );
    env.run(&["prompts", "diff", &slug, "1", "9"]).code(4);
}

#[test]
fn partials_are_created_updated_and_included() {
    let env = TestEnv::new();
    let made = env
        .run(&[
            "prompts",
            "partials",
            "create",
            "--name",
            "tone",
            "--string",
            "Be brief.",
            "-o",
            "json",
        ])
        .ok()
        .json();
    let partial = made["slug"].as_str().unwrap().to_string();
    let text = env.write("tone.txt", "Be very brief.");
    env.run(&["prompts", "partials", "update", &partial, "-f", &text])
        .ok();
    let got = env
        .run(&[
            "prompts",
            "partials",
            "get",
            &partial,
            "--version",
            "2",
            "-o",
            "json",
        ])
        .ok()
        .json();
    assert_eq!(got["string"], "Be very brief.");
    env.run(&["prompts", "partials", "list"])
        .ok()
        .stdout_has("tone");
    env.run(&["prompts", "partials", "create", "--name", "x"])
        .code(2);
}

#[test]
fn run_sends_the_rendered_prompt_and_prints_the_answer() {
    let env = TestEnv::new();
    let upstream = Upstream::start(|r| {
        let body = r.json();
        let model = body["model"].as_str().unwrap_or_default().to_string();
        if body["stream"] == json!(true) {
            let events = openai_chat_sse(&model, &["Hello", " Ada"]);
            Reply::sse(&events.iter().map(String::as_str).collect::<Vec<_>>())
        } else {
            Reply::ok(openai_chat_json(&model, "Hello Ada"))
        }
    });
    add_openai_integration(&env, "up", &upstream.url);
    let slug = create(&env);

    let out = env
        .run(&["prompts", "run", &slug, "--var", "name=Ada"])
        .ok();
    assert_eq!(out.stdout, "Hello Ada\n");
    let sent = upstream.requests().last().unwrap().json();
    assert_eq!(sent["messages"][1]["content"], "Say hello to Ada.");
    assert_eq!(sent["model"], "gpt-4o-mini");

    let streamed = env
        .run(&["prompts", "run", &slug, "--var", "name=Ada", "--stream"])
        .ok();
    assert_eq!(streamed.stdout, "Hello Ada\n");
    assert_eq!(upstream.requests().last().unwrap().json()["stream"], true);

    let whole = env
        .run(&["prompts", "run", &slug, "--var", "name=Ada", "-o", "json"])
        .ok();
    assert_eq!(
        whole.json()["choices"][0]["message"]["content"],
        "Hello Ada"
    );

    env.run(&["prompts", "run", &slug])
        .code(1)
        .stderr_has("missing variable name");
}
