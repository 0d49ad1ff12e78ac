//! Contexts, login/logout/whoami, the plain-HTTP guard, ndjson and broken pipes.

use std::process::Stdio;

use serde_json::Value;

use crate::common::{mode, TestEnv};

fn contexts(env: &TestEnv) -> Vec<Value> {
    let out = env.run(&["context", "list", "-o", "json"]).ok();
    out.json()
        .as_array()
        .cloned()
        .unwrap_or_else(|| panic!("an array\n{out}"))
}

fn context<'a>(list: &'a [Value], name: &str) -> &'a Value {
    list.iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no context {name}: {list:?}"))
}

fn credentials_file(env: &TestEnv) -> String {
    std::fs::read_to_string(env.config_dir().join("credentials.yaml")).unwrap_or_default()
}

#[test]
fn add_list_and_use() {
    let env = TestEnv::new();
    env.run(&["context", "add", "prod", "--url", &env.url])
        .ok()
        .stderr_has("added context prod");
    let list = contexts(&env);
    assert_eq!(list.len(), 2, "{list:?}");
    let local = context(&list, "local");
    assert_eq!(local["url"], env.url.as_str());
    assert_eq!(local["current"], true);
    assert!(local["credential"]
        .as_str()
        .unwrap()
        .ends_with("credentials.yaml"));
    let prod = context(&list, "prod");
    assert_eq!(prod["url"], env.url.as_str());
    assert_eq!(prod["current"], false);
    assert_eq!(prod["credential"], Value::Null);

    env.run(&["context", "use", "prod"])
        .ok()
        .stderr_has("now using context prod");
    let list = contexts(&env);
    assert_eq!(context(&list, "prod")["current"], true);
    assert_eq!(context(&list, "local")["current"], false);
    // prod has no key yet: exit 3 naming it, with a hint to log in.
    let out = env.run(&["keys", "list"]).code(3).error_and_hint();
    assert_eq!(
        out.error_line(),
        "no API key is stored for the context \"prod\""
    );
    assert!(out.stderr.contains("tollgate login"), "{out}");
    // --context picks another one for one command.
    env.run(&["--context", "local", "keys", "list"]).ok();
    env.run(&["context", "use", "nope"])
        .code(4)
        .error_and_hint();
    env.run(&["--context", "nope", "keys", "list"])
        .code(2)
        .error_and_hint();

    // The table marks the current one.
    let out = env.run(&["context", "ls"]).ok();
    let current = out
        .stdout
        .lines()
        .find(|l| l.contains(" prod "))
        .expect("a prod row");
    assert!(current.contains('*'), "{out}");
    // An invalid URL is refused.
    env.run(&["context", "add", "bad", "--url", "ftp://example.com"])
        .code(2);
    assert_eq!(contexts(&env).len(), 2);
}

#[cfg(unix)]
#[test]
fn login_with_token_stores_the_key_in_a_private_file() {
    let env = TestEnv::new();
    env.run(&["context", "add", "prod", "--url", &env.url, "--use"])
        .ok();
    let out = env
        .run_stdin(&["login", "--with-token"], &format!("{}\n", env.admin_key))
        .ok()
        .never_shows(&env.admin_key);
    assert!(out.stderr.contains("logged in to prod"), "{out}");
    assert!(out.stderr.contains("local-admin"), "{out}");

    let path = env.config_dir().join("credentials.yaml");
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(&env.config_dir().join("contexts.yaml")), 0o600);
    let text = credentials_file(&env);
    assert!(text.contains(&format!("prod: {}", env.admin_key)), "{text}");

    let list = contexts(&env);
    let prod = context(&list, "prod");
    assert_eq!(prod["credential"], path.display().to_string());

    env.run(&["--context", "prod", "keys", "list"]).ok();
    env.run(&["keys", "list"]).ok();
    // stdin that is not a terminal is read without --with-token as well.
    env.run(&["context", "add", "staging", "--url", &env.url])
        .ok();
    env.run_stdin(
        &["--context", "staging", "login"],
        &format!("{}\n", env.admin_key),
    )
    .ok();
    env.run(&["--context", "staging", "whoami"]).ok();
}

#[test]
fn login_with_a_bad_key_stores_nothing() {
    let env = TestEnv::new();
    env.run(&["context", "add", "prod", "--url", &env.url]).ok();
    let before = credentials_file(&env);
    let out = env
        .run_stdin(
            &["--context", "prod", "login", "--with-token"],
            "tgk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n",
        )
        .code(3)
        .error_and_hint();
    assert_eq!(out.error_line(), "invalid API key");
    assert_eq!(credentials_file(&env), before, "a rejected key was stored");
    assert_eq!(context(&contexts(&env), "prod")["credential"], Value::Null);
    // Nothing on stdin at all.
    env.run_stdin(&["--context", "prod", "login", "--with-token"], "")
        .code(2)
        .error_and_hint();
    // A deleted key is rejected too.
    let (id, key) = env.create_key("gone", &[]);
    env.run(&["keys", "delete", &id, "--yes"]).ok();
    env.run_stdin(&["--context", "prod", "login"], &format!("{key}\n"))
        .code(3);
    assert_eq!(credentials_file(&env), before);
}

#[test]
fn logout_forgets_the_key() {
    let env = TestEnv::new();
    env.run(&["context", "add", "prod", "--url", &env.url]).ok();
    env.run_stdin(
        &["--context", "prod", "login"],
        &format!("{}\n", env.admin_key),
    )
    .ok();
    env.run(&["--context", "prod", "logout"])
        .ok()
        .stderr_has("removed the stored key of prod");
    assert!(
        !credentials_file(&env).contains("prod:"),
        "{}",
        credentials_file(&env)
    );
    env.run(&["--context", "prod", "keys", "list"]).code(3);
    // Logging out twice is fine.
    env.run(&["--context", "prod", "logout"])
        .ok()
        .stderr_has("no key was stored");
    // The local context is untouched.
    env.run(&["keys", "list"]).ok();
}

#[test]
fn remove_needs_yes() {
    let env = TestEnv::new();
    env.run(&["context", "add", "prod", "--url", &env.url, "--use"])
        .ok();
    env.run_stdin(&["login"], &format!("{}\n", env.admin_key))
        .ok();
    env.run(&["context", "remove", "prod"])
        .code(2)
        .error_and_hint()
        .stderr_has("--yes");
    assert_eq!(contexts(&env).len(), 2, "a refused remove removed");
    assert!(credentials_file(&env).contains("prod:"));

    env.run(&["context", "rm", "prod", "--yes"]).ok();
    let list = contexts(&env);
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(context(&list, "local")["current"], true, "back to local");
    assert!(
        !credentials_file(&env).contains("prod:"),
        "the stored key stays behind"
    );
    env.run(&["context", "remove", "prod", "--yes"]).code(4);
    env.run(&["keys", "list"]).ok();
}

#[test]
fn plain_http_to_a_remote_host_is_refused_before_any_network_use() {
    let env = TestEnv::new();
    // The stored local key would be sent: refused (exit 3, not 6: no DNS lookup happened).
    let out = env
        .run(&["--url", "http://example.invalid:8787", "keys", "list"])
        .code(3)
        .error_and_hint();
    assert!(out.error_line().contains("plain HTTP"), "{out}");
    assert!(out.stderr.contains("https://"), "{out}");
    env.run_with_key(
        &env.admin_key,
        &["--url", "http://example.invalid:8787", "status"],
    )
    .code(3)
    .stderr_has("plain HTTP");

    // Login to such a context is refused too, and stores nothing.
    env.run(&[
        "context",
        "add",
        "remote",
        "--url",
        "http://example.invalid:8787",
    ])
    .ok();
    let before = credentials_file(&env);
    env.run_stdin(
        &["--context", "remote", "login", "--with-token"],
        &format!("{}\n", env.admin_key),
    )
    .code(3)
    .stderr_has("plain HTTP");
    assert_eq!(credentials_file(&env), before);

    // localhost is this machine: allowed.
    let port = env.url.rsplit(':').next().unwrap();
    env.run(&["--url", &format!("http://localhost:{port}"), "keys", "list"])
        .ok();
}

#[test]
fn whoami_names_the_key() {
    let env = TestEnv::new();
    let me = env.run(&["whoami", "-o", "json"]).ok().json();
    assert_eq!(me["name"], "local-admin");
    assert_eq!(me["type"], "organisation-service");
    assert_eq!(me["creation_mode"], "auto");
    assert!(me["key"].as_str().unwrap().starts_with("tgk_…"));
    let out = env.run(&["whoami"]).ok().never_shows(&env.admin_key);
    assert!(out.stdout.contains("local-admin"), "{out}");

    let (_, key) = env.create_key("ci-bot", &[]);
    let me = env.run_with_key(&key, &["whoami", "-o", "yaml"]).ok();
    assert!(me.stdout.contains("name: ci-bot"), "{me}");
    assert!(me.stdout.contains("type: workspace-service"), "{me}");
}

#[test]
fn ndjson_lists_one_object_per_line() {
    let env = TestEnv::new();
    for name in ["a", "b", "c"] {
        env.create_key(name, &[]);
    }
    let out = env.run(&["keys", "list", "-o", "ndjson"]).ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    for line in lines {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(v.is_object());
        assert!(v["id"].is_string() && v["name"].is_string());
    }
    // The same for contexts.
    let out = env.run(&["context", "list", "-o", "ndjson"]).ok();
    assert_eq!(out.stdout.lines().count(), 1, "{out}");
    // TOLLGATE_OUTPUT sets the format too.
    let out = env
        .cmd(&["keys", "list"])
        .var("TOLLGATE_OUTPUT", "ndjson")
        .run()
        .ok();
    assert_eq!(out.stdout.lines().count(), 4, "{out}");
    // And a context's default output.
    env.run(&[
        "context",
        "add",
        "local",
        "--url",
        &env.url,
        "--default-output",
        "json",
    ])
    .ok();
    let out = env.run(&["keys", "list"]).ok();
    assert_eq!(out.json().as_array().unwrap().len(), 4, "{out}");
}

#[test]
fn a_closed_pipe_ends_quietly_with_success() {
    let env = TestEnv::new();
    for name in ["a", "b", "c"] {
        env.create_key(name, &[]);
    }
    for format in ["ndjson", "table", "json"] {
        // The reader is gone before the command writes anything.
        let mut child = env
            .command(&["keys", "list", "-o", format])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{format}: {stderr}");
        assert!(!stderr.contains("error"), "{format}: {stderr}");
    }
}
