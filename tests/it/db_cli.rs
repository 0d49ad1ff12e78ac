//! `tollgate db migrate|status|copy`: the real binary on a real SQLite store and, when
//! `TOLLGATE_TEST_DATABASE_URL` is set, a real Postgres database; a copied store served by a
//! real server.

use serde_json::{json, Value};

use crate::common::{
    add_openai_integration, http_send, openai_chat_json, wait_for_logs, Output, TestEnv,
};
use crate::upstream::{Reply, Upstream};

/// Runs `tollgate db ARGS` against the SQLite store in the data dir, even where the harness
/// points the commands at Postgres.
#[must_use]
fn on_sqlite(env: &TestEnv, args: &[&str]) -> Output {
    let mut all = vec!["db"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--database-url", ""]);
    env.run(&all)
}

fn rows(status: &Value, table: &str) -> u64 {
    status["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["table"] == table)
        .unwrap_or_else(|| panic!("no {table} in {status:#}"))["rows"]
        .as_u64()
        .unwrap()
}

/// A chat request, through the saved `guardrail` when one is given.
fn chat(env: &TestEnv, key: &str, text: &str, guardrail: Option<&str>) -> Value {
    let body = json!({"model": "@up/gpt-4o-mini",
                      "messages": [{"role": "user", "content": text}]});
    let config = guardrail.map(|slug| json!({"input_guardrails": [slug]}).to_string());
    let mut headers = vec![("x-portkey-api-key", key)];
    if let Some(config) = &config {
        headers.push(("x-portkey-config", config));
    }
    let reply = http_send(
        &env.url,
        "POST",
        "/v1/chat/completions",
        &headers,
        Some(&body.to_string()),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.json()
}

fn admin_get(env: &TestEnv, path: &str) -> Value {
    let reply = env.admin("GET", path, None);
    assert_eq!(reply.status, 200, "GET {path}: {}", reply.body);
    reply.json()
}

/// The advisory lock a copy holds on its target (src/store/copy.rs).
const COPY_LOCK: i64 = 0x746f_6c6c_636f_7079;

const PROMPT: &str = "\
name: greeter
model: '@up/gpt-4o-mini'
messages:
  - role: user
    content: Say hello to {{name}}.
";

/// What the source server was given and answered, to find again on the copy.
struct Written {
    key: String,
    config: String,
    prompt: String,
    guardrail: String,
    record: Value,
}

/// Runs a `create` command; returns the slug of what it made.
fn created(env: &TestEnv, args: &[&str]) -> String {
    let mut all = args.to_vec();
    all.extend_from_slice(&["-o", "json"]);
    let made = env.run(&all).ok().json();
    made["slug"].as_str().expect("a slug").to_string()
}

/// Admin writes of every kind and three gateway requests, on a server keeping SQLite.
fn fill(env: &TestEnv, upstream: &Upstream) -> Written {
    add_openai_integration(env, "up", &upstream.url);
    let file = env.write("config.json", r#"{"retry": {"attempts": 2}}"#);
    let config = created(env, &["configs", "create", "--name", "prod", "-f", &file]);
    let (_, key) = env.create_key("ci-bot", &[]);
    let file = env.write("greeter.yaml", PROMPT);
    let prompt = created(env, &["prompts", "create", "-f", &file]);
    let check = r#"regexMatch={"rule":"password","not":true}"#;
    let guardrail = created(
        env,
        &["guardrails", "create", "--name", "g", "--check", check],
    );
    env.run(&["budgets", "create", "--name", "team", "--budget", "50"])
        .ok();
    chat(env, &key, "one", None);
    chat(env, &key, "two", None);
    // The newest record carries hook results, which SQLite keeps in the records' payloads with
    // their bodies (store/payloads.rs).
    chat(env, &key, "three", Some(&guardrail));
    let listed = wait_for_logs(env, "", 3);
    let id = listed[0]["id"].as_str().unwrap();
    let record = admin_get(env, &format!("/v1/logs/{id}"));
    assert!(record["request_body"].is_object(), "{record:#}");
    let checks = &record["hook_results"]["before_request_hooks"][0]["checks"];
    assert_eq!(checks[0]["id"], "default.regexMatch", "{record:#}");
    Written {
        key,
        config,
        prompt,
        guardrail,
        record,
    }
}

#[test]
fn a_sqlite_store_copied_into_postgres_serves_the_same_keys_secrets_and_records() {
    let upstream = Upstream::start(|_| Reply::ok(openai_chat_json("gpt-4o-mini", "hi")));
    let mut env = TestEnv::offline();
    env.admin_key = env
        .start_server(&["--database-url", ""])
        .expect("a first start prints the admin key");
    let written = fill(&env, &upstream);
    assert!(env.stop().status.success());

    let status = on_sqlite(&env, &["status", "-o", "json"]).ok().json();
    assert_eq!(status["backend"], "sqlite");
    assert_eq!(status["pending_migrations"], 0, "{status:#}");
    assert_eq!(rows(&status, "logs"), 3);
    assert_eq!(rows(&status, "api_keys"), 2);

    let Some(target) = env.database_url().map(String::from) else {
        eprintln!(
            "note: the Postgres part of this test is skipped: TOLLGATE_TEST_DATABASE_URL is unset"
        );
        return;
    };
    let from = format!("sqlite:{}", env.data_dir().display());

    // A body without its record cannot be placed in a partition: the counts differ, nothing is
    // kept, and once the source is mended the same command copies everything.
    let db = rusqlite::Connection::open(env.data_dir().join("tollgate.db")).unwrap();
    let (marks, bodies, payloads): (i64, i64, i64) = db
        .query_row(
            "SELECT (SELECT COUNT(*) FROM logs WHERE hook_results = x''), \
             (SELECT COUNT(*) FROM log_bodies), (SELECT COUNT(*) FROM log_payloads)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(
        (marks, bodies),
        (1, 0),
        "hook results and bodies are kept in payloads"
    );
    assert!(payloads >= 1, "{payloads} payload rows");
    db.execute(
        "INSERT INTO log_bodies (seq, request) VALUES (999999, x'00')",
        [],
    )
    .unwrap();
    let failed = env
        .run(&["db", "copy", "--from", &from, "--to", &target])
        .code(1)
        .error_and_hint()
        .stderr_has("log_bodies: 4 rows in the source, 3 copied");
    assert!(failed.error_line().contains("nothing was kept"), "{failed}");
    let empty = env.run(&["db", "status", "-o", "json"]).ok().json();
    assert_eq!(rows(&empty, "logs"), 0, "{empty:#}");
    assert_eq!(rows(&empty, "api_keys"), 0, "{empty:#}");
    db.execute("DELETE FROM log_bodies WHERE seq = 999999", [])
        .unwrap();
    drop(db);

    // A copy running into the target (it holds this lock until it ends) makes another wait.
    let mut running = postgres::Client::connect(&target, postgres::NoTls).unwrap();
    let mut tx = running.transaction().unwrap();
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&COPY_LOCK])
        .unwrap();
    env.run(&["db", "copy", "--from", &from, "--to", &target])
        .code(5)
        .error_and_hint()
        .stderr_has("another `tollgate db copy`");
    drop(tx);

    let out = env
        .run(&["db", "copy", "--from", &from, "--to", &target, "-o", "json"])
        .ok()
        .stderr_has("master.key");
    let copied = out.json();
    let tables = copied["tables"].as_array().unwrap();
    for t in tables {
        assert_eq!(t["source"], t["target"], "{copied:#}");
        if t["table"] == "log_bodies" {
            // Copied from SQLite's payloads, which `db status` counts as rows of their own.
            continue;
        }
        assert_eq!(
            t["source"].as_u64(),
            Some(rows(&status, t["table"].as_str().unwrap())),
            "the copy read what `db status` counts: {copied:#}"
        );
    }
    let count = |table: &str| {
        tables.iter().find(|t| t["table"] == table).unwrap()["target"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(count("logs"), 3);
    assert_eq!(count("log_bodies"), 3);
    assert_eq!(count("api_keys"), 2);
    assert_eq!(count("integrations"), 1);
    assert_eq!(count("prompts"), 1);
    assert_eq!(count("guardrails"), 1);
    assert_eq!(count("policies"), 1);
    assert!(count("audit_logs") >= 6, "{copied:#}");
    assert_eq!(copied["records"], 3);

    // The same data dir (so the same master.key), the database now Postgres.
    assert_eq!(env.start_server(&[]), None, "the copied admin key is used");
    let reply = http_send(
        &env.url,
        "GET",
        "/v1/api-keys/self",
        &[("x-portkey-api-key", &written.key)],
        None,
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["name"], "ci-bot");
    chat(&env, &written.key, "four", None);
    let sent = upstream.requests();
    assert_eq!(sent.len(), 4);
    assert_eq!(
        sent[3].header("authorization"),
        Some("Bearer sk-upstream-test"),
        "the provider key was decrypted on the copy"
    );
    wait_for_logs(&env, "", 4);
    let id = written.record["id"].as_str().unwrap();
    assert_eq!(admin_get(&env, &format!("/v1/logs/{id}")), written.record);
    env.run(&["configs", "get", &written.config]).ok();
    env.run(&["prompts", "get", &written.prompt]).ok();
    env.run(&["guardrails", "get", &written.guardrail]).ok();
    let budgets = env.run(&["budgets", "list", "-o", "json"]).ok().json();
    assert_eq!(budgets.as_array().unwrap().len(), 1, "{budgets:#}");
    let audited = || {
        let audit = admin_get(&env, "/v1/audit-logs?page_size=100");
        audit["total"].as_u64().unwrap()
    };
    assert_eq!(audited(), count("audit_logs"));
    // The audit log's numbering continues after the copied rows.
    env.create_key("after-copy", &[]);
    assert_eq!(audited(), count("audit_logs") + 1);

    let again = env
        .run(&["db", "copy", "--from", &from, "--to", &target])
        .code(5)
        .error_and_hint()
        .stderr_has("createdb");
    assert!(again.error_line().contains("not empty"), "{again}");

    let status = env.run(&["db", "status", "-o", "json"]).ok().json();
    assert_eq!(status["backend"], "postgres");
    assert_eq!(rows(&status, "logs"), 4);
    assert_eq!(
        status["record_partitions"]["days"].as_u64().map(|d| d >= 1),
        Some(true)
    );
    env.run(&["db", "status"])
        .ok()
        .stdout_has("record partitions")
        .stdout_has("schema_version");
}

#[test]
fn db_status_and_migrate_on_each_backend() {
    let env = TestEnv::offline();
    on_sqlite(&env, &["status"])
        .code(4)
        .error_and_hint()
        .stderr_has("no tollgate store");
    // An empty file is a store at schema version 0.
    std::fs::write(env.data_dir().join("tollgate.db"), b"").unwrap();
    // The harness points commands at this environment's Postgres database, if it has one.
    let mut stores = vec![("sqlite", vec!["--database-url", ""])];
    if env.on_postgres() {
        stores.push(("postgres", vec![]));
    } else {
        eprintln!("note: db status and migrate on Postgres are skipped: TOLLGATE_TEST_DATABASE_URL is unset");
    }
    for (backend, location) in stores {
        let run = |args: &[&str]| {
            let mut all = vec!["db"];
            all.extend_from_slice(args);
            all.extend_from_slice(&location);
            env.run(&all)
        };
        let before = run(&["status", "-o", "json"]).ok().json();
        assert_eq!(before["backend"], backend);
        let latest = before["latest_version"].as_u64().unwrap();
        assert_eq!(before["schema_version"], 0, "{before:#}");
        assert_eq!(before["pending_migrations"], latest, "{before:#}");
        let migrated = run(&["migrate", "-o", "json"]).ok().json();
        assert_eq!(migrated["from"], 0);
        assert_eq!(migrated["to"], latest);
        run(&["migrate"])
            .ok()
            .stderr_has("nothing to do")
            .stdout_has(&format!("{latest}"));
        let after = run(&["status", "-o", "json"]).ok().json();
        assert_eq!(after["schema_version"], latest, "{after:#}");
        assert_eq!(after["pending_migrations"], 0);
        assert_eq!(rows(&after, "workspaces"), 1, "the default workspace");
        assert_eq!(rows(&after, "logs"), 0);
    }
}

#[test]
fn db_copy_says_what_is_wrong_with_its_source_and_target() {
    let env = TestEnv::offline();
    let data = env.data_dir();
    let from = format!("sqlite:{}", data.display());
    let copy = |from: &str, to: &str| env.run(&["db", "copy", "--from", from, "--to", to]);
    copy("mysql://x", "postgres://127.0.0.1:1/x")
        .code(2)
        .error_and_hint()
        .stderr_has("sqlite:PATH");
    copy(&from, "postgres://127.0.0.1:1/x")
        .code(4)
        .error_and_hint()
        .stderr_has("no tollgate store");
    copy(&from, "sqlite:elsewhere")
        .code(2)
        .error_and_hint()
        .stderr_has("Postgres");
    std::fs::write(data.join("tollgate.db"), b"").unwrap();
    copy(&from, "postgres://127.0.0.1:1/x")
        .code(1)
        .error_and_hint()
        .stderr_has("schema is at version 0")
        .stderr_has("tollgate db migrate --data-dir");
    on_sqlite(&env, &["migrate"]).ok();
    // The database file itself names the store as well as its data dir.
    let file = format!("sqlite:{}", data.join("tollgate.db").display());
    copy(&file, "postgres://u:secret@127.0.0.1:1/x")
        .code(1)
        .error_and_hint()
        .stderr_has("cannot connect to Postgres")
        .never_shows("secret");
}
