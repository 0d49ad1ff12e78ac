//! The server itself: health, OpenAPI, first start and restart, graceful shutdown, secrets at
//! rest, `status`, the server being down, and how callers authenticate.

use crate::common::{http_request, mode, strings, TestEnv, DOWN_URL};

#[test]
fn health_answers_without_a_key() {
    let env = TestEnv::new();
    let out = env.run(&["api", "GET", "/v1/health"]).ok();
    let health = out.json();
    assert_eq!(health["status"], "ok", "{out}");
    assert_eq!(health["version"], env!("CARGO_PKG_VERSION"), "{out}");

    // No key at all: health is public.
    let (status, body) = env.http("GET", "/v1/health", &[]);
    assert_eq!(status, 200, "{body}");
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["status"], "ok");
}

#[test]
fn openapi_document_lists_the_admin_routes() {
    let env = TestEnv::new();
    let out = env.run(&["api", "GET", "/v1/openapi.json"]).ok();
    let doc = out.json();
    assert!(
        doc["openapi"].as_str().is_some_and(|v| v.starts_with('3')),
        "{out}"
    );
    let paths = doc["paths"].as_object().expect("paths is an object");
    for path in [
        "/v1/health",
        "/v1/integrations",
        "/v1/integrations/{slug}",
        "/v1/configs",
        "/v1/configs/{slug}",
        "/v1/configs/{slug}/versions",
        "/v1/api-keys",
        "/v1/api-keys/self",
        "/v1/api-keys/{id}",
        "/v1/api-keys/{id}/rotate",
        "/v1/api-keys/{type}/{sub_type}",
        "/v1/audit-logs",
    ] {
        assert!(
            paths.contains_key(path),
            "openapi.json lacks {path}: {:?}",
            paths.keys()
        );
    }
    let schemes = &doc["components"]["securitySchemes"];
    assert!(schemes.get("x-portkey-api-key").is_some(), "{schemes}");
    assert!(schemes.get("bearer").is_some(), "{schemes}");

    // Served without a key, as JSON.
    let (status, body) = env.http("GET", "/v1/openapi.json", &[]);
    assert_eq!(status, 200);
    serde_json::from_str::<serde_json::Value>(&body).expect("valid JSON");
}

#[test]
fn first_start_prints_a_key_and_a_restart_prints_none() {
    let mut env = TestEnv::new();
    let first = env.admin_key.clone();
    assert!(first.starts_with("tgk_") && first.len() == 44, "{first:?}");

    // The first start stored the key for the `local` context: `keys list` just works.
    let out = env.run(&["keys", "list", "-o", "json"]).ok();
    assert_eq!(out.json().as_array().unwrap().len(), 1, "{out}");

    let printed = env.restart();
    assert_eq!(printed, None, "a restart must not create another admin key");
    let exit = env.stop();
    assert!(exit.status.success(), "{exit:?}");
    assert_eq!(
        exit.stdout, "",
        "a restart printed something on stdout: {exit:?}"
    );
    assert!(
        !exit.stderr.contains("Created the first admin API key"),
        "{exit:?}"
    );

    // And once more, this time checking the old key against the new process.
    assert_eq!(env.restart(), None);
    assert_ne!(env.url, "");
    let me = env
        .run_with_key(&first, &["--url", &env.url, "whoami", "-o", "json"])
        .ok()
        .json();
    assert_eq!(me["name"], "local-admin");
    // Still exactly one key: nothing new was created by the restarts.
    let out = env.run(&["keys", "list", "-o", "json"]).ok();
    assert_eq!(out.json().as_array().unwrap().len(), 1, "{out}");
}

#[test]
fn sigterm_shuts_down_gracefully() {
    let mut env = TestEnv::new();
    env.run(&["keys", "list"]).ok();
    let exit = env.stop();
    assert_eq!(exit.status.code(), Some(0), "{exit:?}");
    assert!(exit.stderr.contains("tollgate stopped"), "{exit:?}");
    // It no longer answers.
    env.run(&["keys", "list"]).code(6).error_and_hint();
}

#[test]
fn database_holds_no_secret_in_plain_text() {
    const PROVIDER_SECRET: &str = "sk-live-SECRETVALUE123456";
    let mut env = TestEnv::new();
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
        &format!("{PROVIDER_SECRET}\n"),
    )
    .ok();
    // A second provider secret, replaced by an update: neither may be on disk.
    env.run_stdin(
        &[
            "integrations",
            "create",
            "--slug",
            "claude",
            "--provider",
            "anthropic",
            "--api-key-stdin",
        ],
        "sk-ant-FIRSTSECRET0000001\n",
    )
    .ok();
    env.run_stdin(
        &["integrations", "update", "claude", "--api-key-stdin"],
        "sk-ant-SECONDSECRET000002\n",
    )
    .ok();
    let (id, created) = env.create_key("ci-bot", &[]);
    let rotated = env
        .run(&["keys", "rotate", &id, "--grace", "1h", "-o", "json"])
        .ok()
        .json()["key"]
        .as_str()
        .unwrap()
        .to_string();
    let exit = env.stop();
    assert!(exit.status.success(), "{exit:?}");

    let secrets = [
        PROVIDER_SECRET,
        "SECRETVALUE123456",
        "sk-ant-FIRSTSECRET0000001",
        "sk-ant-SECONDSECRET000002",
        env.admin_key.as_str(),
        &env.admin_key[4..],
        created.as_str(),
        rotated.as_str(),
    ];
    let bytes = env.stored_bytes();
    for secret in secrets {
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "the store holds {secret:?} in plain text"
        );
    }
    // The masked forms are there (proof that the store was read at all).
    assert!(bytes
        .windows(b"openai-dev".len())
        .any(|w| w == b"openai-dev"));
}

#[cfg(unix)]
#[test]
fn master_key_file_is_private() {
    let env = TestEnv::new();
    let path = env.data_dir().join("master.key");
    assert_eq!(mode(&path), 0o600, "{}", path.display());
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.trim().len(), 64, "32 bytes as hex");
}

#[cfg(unix)]
#[test]
fn a_data_dir_created_by_serve_is_private() {
    let mut env = TestEnv::offline();
    let key = env.start_server(&["--data-dir", "fresh-data"]);
    assert!(key.is_some());
    let exit = env.stop();
    assert!(exit.status.success(), "{exit:?}");
    let data = env.root().join("fresh-data");
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join("master.key")), 0o600);
    assert_eq!(data.join("tollgate.db").exists(), !env.on_postgres());
}

#[test]
fn status_shows_url_health_version_and_key() {
    let env = TestEnv::new();
    let out = env.run(&["status", "-o", "json"]).ok();
    let status = out.json();
    assert_eq!(status["context"], "local", "{out}");
    assert_eq!(status["url"], env.url.as_str(), "{out}");
    assert_eq!(status["health"], "ok", "{out}");
    assert_eq!(status["version"], env!("CARGO_PKG_VERSION"), "{out}");
    assert_eq!(status["key_name"], "local-admin", "{out}");
    assert_eq!(status["key_type"], "organisation-service", "{out}");
    let scopes = strings(&status["scopes"]);
    assert!(scopes.contains(&"configs.create".to_string()), "{scopes:?}");
    assert!(
        status["credential"]
            .as_str()
            .is_some_and(|c| c.ends_with("credentials.yaml")),
        "{out}"
    );

    // The table shows the same facts, one field a row.
    let out = env.run(&["status"]).ok();
    for needle in [
        env.url.as_str(),
        "health",
        "ok",
        env!("CARGO_PKG_VERSION"),
        "local-admin",
        "configs.create",
    ] {
        assert!(
            out.stdout.contains(needle),
            "status lacks {needle:?}\n{out}"
        );
    }

    // A workspace key sees its own name and scopes.
    let (_, key) = env.create_key("ci-bot", &[]);
    let status = env
        .run_with_key(&key, &["status", "-o", "json"])
        .ok()
        .json();
    assert_eq!(status["key_name"], "ci-bot");
    assert_eq!(
        strings(&status["scopes"]),
        ["completions.write", "prompts.render"]
    );
    assert!(
        status["credential"]
            .as_str()
            .is_some_and(|c| c.contains("TOLLGATE_API_KEY")),
        "{status}"
    );
}

#[test]
fn server_down_exits_6_with_error_and_hint() {
    let env = TestEnv::offline();
    let out = env
        .run(&["status", "--url", DOWN_URL])
        .code(6)
        .error_and_hint();
    assert!(out.error_line().contains("unreachable"), "{out}");
    assert!(
        out.stdout.contains("unreachable"),
        "status still shows its table\n{out}"
    );

    // Any command: with a key (from the environment) and without one.
    for args in [
        vec!["keys", "list"],
        vec!["integrations", "list"],
        vec!["configs", "list"],
        vec!["whoami"],
        vec!["api", "GET", "/v1/health"],
    ] {
        let mut all = args.clone();
        all.extend(["--url", DOWN_URL]);
        let out = env
            .run_with_key("tgk_whatever", &all)
            .code(6)
            .error_and_hint();
        assert!(out.error_line().contains("127.0.0.1:1"), "{out}");
        assert!(out.stdout.is_empty(), "{out}");
    }
    env.run(&["api", "GET", "/v1/health", "--url", DOWN_URL])
        .code(6)
        .error_and_hint();
}

#[test]
fn json_errors_are_also_a_json_object_on_stderr() {
    let env = TestEnv::offline();
    let out = env
        .run_with_key(
            "tgk_whatever",
            &["keys", "list", "--url", DOWN_URL, "-o", "json"],
        )
        .code(6)
        .error_and_hint();
    let line = out
        .stderr
        .lines()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("no JSON object on stderr\n{out}"));
    let err: serde_json::Value = serde_json::from_str(line).expect("valid JSON");
    assert_eq!(err["error"]["exit_code"], 6, "{line}");
    assert!(err["error"]["message"]
        .as_str()
        .unwrap()
        .contains("unreachable"));
    assert!(err["error"]["hint"]
        .as_str()
        .unwrap()
        .contains("tollgate serve"));
    assert!(out.stdout.is_empty(), "errors never go to stdout\n{out}");

    // A server-side error too (not found, exit 4).
    let env = TestEnv::new();
    let out = env.run(&["keys", "get", "nope", "-o", "json"]).code(4);
    let line = out
        .stderr
        .lines()
        .find(|l| l.starts_with('{'))
        .expect("JSON on stderr");
    let err: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(err["error"]["exit_code"], 4);
    // Without -o json there is no JSON object.
    let out = env.run(&["keys", "get", "nope"]).code(4).error_and_hint();
    assert!(!out.stderr.lines().any(|l| l.starts_with('{')), "{out}");
}

#[test]
fn a_request_without_a_valid_key_is_refused() {
    let env = TestEnv::new();
    let out = env
        .run_with_key("garbage", &["api", "GET", "/v1/api-keys"])
        .code(3)
        .error_and_hint();
    assert_eq!(out.error_line(), "invalid API key");
    let body = out.json();
    assert_eq!(body["error"]["type"], "authentication_error", "{out}");
    assert_eq!(body["error"]["code"], "AB05", "{out}");

    let (status, body) = env.http("GET", "/v1/api-keys", &[]);
    assert_eq!(status, 401, "{body}");
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("missing API key"));
    let (status, _) = env.http("GET", "/v1/api-keys", &[("x-portkey-api-key", "tgk_wrong")]);
    assert_eq!(status, 401);
    let (status, _) = env.http(
        "GET",
        "/v1/api-keys",
        &[("Authorization", "Bearer tgk_wrong")],
    );
    assert_eq!(status, 401);
    // An unknown route is a 404 in the admin error shape.
    let (status, body) = env.http("GET", "/v1/nothing-here", &[]);
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("AB08"), "{body}");
}

#[test]
fn bearer_and_portkey_headers_both_authenticate() {
    let env = TestEnv::new();
    let bearer = format!("Bearer {}", env.admin_key);
    let (status, body) = env.http("GET", "/v1/api-keys/self", &[("Authorization", &bearer)]);
    assert_eq!(status, 200, "{body}");
    let me: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(me["name"], "local-admin");

    let (status, body) = env.http(
        "GET",
        "/v1/api-keys",
        &[("x-portkey-api-key", &env.admin_key)],
    );
    assert_eq!(status, 200, "{body}");
    let list: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(list["object"], "list");
    assert_eq!(list["total"], 1);

    // x-portkey-api-key wins over a placeholder bearer token (the Portkey SDK sends both).
    let (status, _) = env.http(
        "GET",
        "/v1/api-keys/self",
        &[
            ("x-portkey-api-key", &env.admin_key),
            ("Authorization", "Bearer OPENAI_API_KEY"),
        ],
    );
    assert_eq!(status, 200);

    // A POST with a bearer key works too.
    let (status, body) = http_request(
        &env.url,
        "POST",
        "/v1/configs",
        &[("Authorization", &bearer)],
        Some(r#"{"name":"raw","config":{"retry":{"attempts":2}}}"#),
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"slug\":\"pc-raw-"), "{body}");
}

#[test]
fn version_flag() {
    let env = TestEnv::offline();
    let out = env.run(&["--version"]).ok();
    assert_eq!(
        out.stdout.trim(),
        format!("tollgate {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn usage_errors_exit_2() {
    let env = TestEnv::offline();
    env.run(&["keys", "frobnicate"]).code(2);
    env.run(&["keys", "list", "--no-such-flag"]).code(2);
    env.run(&["api", "NOT A METHOD", "/v1/health", "--url", DOWN_URL])
        .code(2)
        .stderr_has("is not an HTTP method");
    env.run_with_key("tgk_whatever", &["keys", "list", "--url", "not a url"])
        .code(2)
        .stderr_has("is not a valid URL");
}

#[test]
fn an_unreachable_database_stops_serve_with_what_to_check() {
    let env = TestEnv::offline();
    let out = env.run(&[
        "serve",
        "--addr",
        "127.0.0.1:0",
        "--database-url",
        "postgres://tollgate:hunter2secret@127.0.0.1:1/tollgate",
    ]);
    let out = out.code(1).error_and_hint().never_shows("hunter2secret");
    assert!(
        out.error_line().starts_with(
            "cannot connect to Postgres at postgres://tollgate:***@127.0.0.1:1/tollgate"
        ),
        "{out}"
    );
    assert!(out.stderr.contains("--database-url"), "{out}");
    env.run(&["serve", "--database-url", "mysql://nope"])
        .code(1)
        .stderr_has("not a valid Postgres URL");
}
