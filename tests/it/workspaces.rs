//! Workspaces: CRUD through the admin API and `tollgate workspaces`, keys belonging to one, and
//! their defaults applied by the gateway in Portkey's precedence.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::{
    add_openai_integration, gateway_env, http_send, openai_chat_json, HttpReply, TestEnv,
};
use crate::upstream::{Reply, Upstream};

const WORKSPACES: &str = "/v1/admin/workspaces";
const DEFAULT_ID: &str = "00000000-0000-7000-8000-000000000000";

fn admin(env: &TestEnv, method: &str, path: &str, body: Option<Value>) -> HttpReply {
    let body = body.map(|b| b.to_string());
    http_send(
        &env.url,
        method,
        path,
        &[("x-portkey-api-key", &env.admin_key)],
        body.as_deref(),
    )
}

#[track_caller]
fn ok(reply: HttpReply) -> Value {
    assert_eq!(reply.status, 200, "{reply}");
    reply.json()
}

#[track_caller]
fn refused(reply: HttpReply, status: u16, needle: &str) {
    assert_eq!(reply.status, status, "{reply}");
    let message = reply.json()["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(message.contains(needle), "{needle:?} not in {message:?}");
}

/// `tollgate workspaces create ARGS -o json`: the workspace.
#[track_caller]
fn create_workspace(env: &TestEnv, args: &[&str]) -> Value {
    let mut all = vec!["workspaces", "create", "-o", "json"];
    all.extend_from_slice(args);
    env.run(&all).ok().json()
}

#[track_caller]
fn create_config(env: &TestEnv, name: &str, config: Value) -> String {
    let file = env.write(&format!("{name}.json"), &config.to_string());
    let out = env
        .run(&[
            "configs", "create", "--name", name, "-f", &file, "-o", "json",
        ])
        .ok();
    out.json()["slug"].as_str().expect("a slug").to_string()
}

#[test]
fn crud_through_the_api() {
    let env = TestEnv::new();
    // Every install has the default workspace.
    let list = ok(admin(&env, "GET", WORKSPACES, None));
    assert_eq!(list["object"], "list");
    assert_eq!(list["total"], 1);
    assert_eq!(list["data"][0]["id"], DEFAULT_ID);
    assert_eq!(list["data"][0]["slug"], "ws-default");
    assert_eq!(list["data"][0]["name"], "Default");

    let created = ok(admin(
        &env,
        "POST",
        WORKSPACES,
        Some(
            json!({"name": "Search Team", "description": "search agents",
                    "defaults": {"metadata": {"team": "search", "env": "ci"}},
                    "allowed_models": ["@openai-dev/gpt-4o*"]}),
        ),
    ));
    assert_eq!(created["object"], "workspace");
    assert_eq!(created["name"], "Search Team");
    assert_eq!(created["status"], "active");
    assert_eq!(created["description"], "search agents");
    assert_eq!(
        created["defaults"],
        json!({"metadata": {"team": "search", "env": "ci"}})
    );
    assert_eq!(created["allowed_models"], json!(["@openai-dev/gpt-4o*"]));
    let slug = created["slug"].as_str().unwrap().to_string();
    assert!(slug.starts_with("ws-searc-") && slug.len() == 15, "{slug}");
    let id = created["id"].as_str().unwrap().to_string();
    assert!(created["created_at"].is_string() && created["last_updated_at"].is_string());

    // By id or slug.
    assert_eq!(
        ok(admin(&env, "GET", &format!("{WORKSPACES}/{id}"), None))["slug"],
        slug.as_str()
    );
    assert_eq!(
        ok(admin(&env, "GET", &format!("{WORKSPACES}/{slug}"), None))["id"],
        id.as_str()
    );
    refused(
        admin(&env, "GET", &format!("{WORKSPACES}/ws-nope"), None),
        404,
        "ws-nope",
    );

    // A given slug is kept; bad slugs, empty names, unknown configs and taken names are refused.
    let given = ok(admin(
        &env,
        "POST",
        WORKSPACES,
        Some(json!({"name": "Research", "slug": "ws-research"})),
    ));
    assert_eq!(given["slug"], "ws-research");
    assert_eq!(given["defaults"], json!({}));
    assert_eq!(given["allowed_models"], Value::Null, "every model");
    refused(
        admin(
            &env,
            "POST",
            WORKSPACES,
            Some(json!({"name": "x", "slug": "Bad Slug"})),
        ),
        400,
        "not a valid slug",
    );
    refused(
        admin(&env, "POST", WORKSPACES, Some(json!({"name": "  "}))),
        400,
        "name",
    );
    refused(
        admin(
            &env,
            "POST",
            WORKSPACES,
            Some(json!({"name": "x", "defaults": {"config_id": "pc-nope-000000"}})),
        ),
        400,
        "pc-nope-000000",
    );
    refused(
        admin(
            &env,
            "POST",
            WORKSPACES,
            Some(json!({"name": "x", "defaults": {"metadata": {"n": 1}}})),
        ),
        400,
        "must be strings",
    );
    refused(
        admin(
            &env,
            "POST",
            WORKSPACES,
            Some(json!({"name": "x", "allowed_models": [""]})),
        ),
        400,
        "allowed_models",
    );
    refused(
        admin(&env, "POST", WORKSPACES, Some(json!({"name": "Research"}))),
        409,
        "a workspace named \"Research\"",
    );
    refused(
        admin(
            &env,
            "POST",
            WORKSPACES,
            Some(json!({"name": "Other", "slug": "ws-research"})),
        ),
        409,
        "slug \"ws-research\"",
    );

    // Filters and paging.
    let list = ok(admin(&env, "GET", &format!("{WORKSPACES}?name=TEAM"), None));
    assert_eq!(list["total"], 1);
    assert_eq!(list["data"][0]["id"], id.as_str());
    let list = ok(admin(
        &env,
        "GET",
        &format!("{WORKSPACES}?exact_name=Search"),
        None,
    ));
    assert_eq!(list["total"], 0);
    let list = ok(admin(
        &env,
        "GET",
        &format!("{WORKSPACES}?exact_name=Research"),
        None,
    ));
    assert_eq!(list["data"][0]["slug"], "ws-research");
    let list = ok(admin(
        &env,
        "GET",
        &format!("{WORKSPACES}?current_page=1&page_size=2"),
        None,
    ));
    assert_eq!(list["total"], 3);
    assert_eq!(list["data"].as_array().unwrap().len(), 1);

    // PUT merges defaults as a key update does, and replaces allowed_models.
    let config = create_config(&env, "prod", json!({"retry": {"attempts": 2}}));
    let updated = ok(admin(
        &env,
        "PUT",
        &format!("{WORKSPACES}/{slug}"),
        Some(
            json!({"defaults": {"config_id": config, "metadata": {"env": null, "tier": "pro"}},
                    "allowed_models": ["@claude/*", "@openai-dev/gpt-4o-mini"]}),
        ),
    ));
    assert_eq!(
        updated["defaults"],
        json!({"config_id": config, "metadata": {"team": "search", "tier": "pro"}})
    );
    assert_eq!(
        updated["allowed_models"],
        json!(["@claude/*", "@openai-dev/gpt-4o-mini"])
    );
    assert_eq!(updated["name"], "Search Team", "unchanged");
    assert_eq!(updated["description"], "search agents", "unchanged");
    let updated = ok(admin(
        &env,
        "PUT",
        &format!("{WORKSPACES}/{id}"),
        Some(json!({"name": "Search", "defaults": {"config_id": ""}, "allowed_models": null})),
    ));
    assert_eq!(updated["name"], "Search");
    assert_eq!(
        updated["defaults"],
        json!({"metadata": {"team": "search", "tier": "pro"}})
    );
    assert_eq!(updated["allowed_models"], Value::Null);
    refused(
        admin(
            &env,
            "PUT",
            &format!("{WORKSPACES}/{id}"),
            Some(json!({"name": "Research"})),
        ),
        409,
        "Research",
    );
    refused(
        admin(
            &env,
            "PUT",
            &format!("{WORKSPACES}/ws-nope"),
            Some(json!({"name": "y"})),
        ),
        404,
        "ws-nope",
    );

    // Delete: once, and never the default workspace.
    ok(admin(
        &env,
        "DELETE",
        &format!("{WORKSPACES}/ws-research"),
        None,
    ));
    refused(
        admin(&env, "DELETE", &format!("{WORKSPACES}/ws-research"), None),
        404,
        "ws-research",
    );
    refused(
        admin(&env, "DELETE", &format!("{WORKSPACES}/ws-default"), None),
        409,
        "default workspace",
    );
    assert_eq!(ok(admin(&env, "GET", WORKSPACES, None))["total"], 2);

    // The scopes: a key without them is refused.
    let (_, key) = env.create_key("ci-bot", &[]);
    let reply = http_send(
        &env.url,
        "GET",
        WORKSPACES,
        &[("x-portkey-api-key", &key)],
        None,
    );
    refused(reply, 403, "workspaces.list");
    let (_, reader) = env.create_key(
        "reader",
        &[
            "--type",
            "admin",
            "--scopes",
            "workspaces.list,workspaces.read",
        ],
    );
    let reply = http_send(
        &env.url,
        "GET",
        WORKSPACES,
        &[("x-portkey-api-key", &reader)],
        None,
    );
    assert_eq!(reply.status, 200, "{reply}");
    let reply = http_send(
        &env.url,
        "POST",
        WORKSPACES,
        &[("x-portkey-api-key", &reader)],
        Some(r#"{"name":"z"}"#),
    );
    refused(reply, 403, "workspaces.create");

    let doc = ok(admin(&env, "GET", "/v1/openapi.json", None));
    for path in [WORKSPACES, "/v1/admin/workspaces/{id}"] {
        assert!(
            doc["paths"].get(path).is_some(),
            "openapi.json lacks {path}"
        );
    }
}

#[test]
fn crud_through_the_cli() {
    let env = TestEnv::new();
    let config = create_config(&env, "prod", json!({"retry": {"attempts": 2}}));
    let out = env
        .run(&[
            "workspaces",
            "create",
            "--name",
            "search",
            "--slug",
            "ws-search",
            "--description",
            "search agents",
            "--metadata",
            "team=search",
            "--metadata",
            "env=ci",
            "--config",
            &config,
            "--models",
            "@openai-dev/gpt-4o*,@claude/*",
            "--models",
            "@groq/llama*",
        ])
        .ok()
        .stderr_has("created workspace search (ws-search)");
    assert!(
        out.stdout.contains("ws-search") && out.stdout.contains(&config),
        "{out}"
    );
    let got = env
        .run(&["workspaces", "get", "ws-search", "-o", "json"])
        .ok()
        .json();
    assert_eq!(
        got["defaults"],
        json!({"config_id": config, "metadata": {"team": "search", "env": "ci"}})
    );
    assert_eq!(
        got["allowed_models"],
        json!(["@openai-dev/gpt-4o*", "@claude/*", "@groq/llama*"])
    );
    assert_eq!(got["description"], "search agents");

    // The table lists both, the default first; every format works.
    let out = env.run(&["workspaces", "list"]).ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(
        out.stdout.contains("SLUG") && out.stdout.contains("MODELS"),
        "{out}"
    );
    let default_at = lines
        .iter()
        .position(|l| l.contains("ws-default"))
        .expect("ws-default");
    let search_at = lines
        .iter()
        .position(|l| l.contains("ws-search"))
        .expect("ws-search");
    assert!(default_at < search_at, "{out}");
    assert_eq!(
        env.run(&["workspaces", "ls", "-o", "json"])
            .ok()
            .json()
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        env.run(&["workspaces", "ls", "-o", "ndjson"])
            .ok()
            .stdout
            .lines()
            .count(),
        2
    );
    env.run(&["workspaces", "list", "-o", "yaml"])
        .ok()
        .stdout_has("slug: ws-search");
    let filtered = env
        .run(&["workspaces", "list", "--name", "SEAR", "-o", "json"])
        .ok()
        .json();
    assert_eq!(filtered.as_array().unwrap().len(), 1, "{filtered}");
    env.run(&["workspaces", "get", "ws-search"])
        .ok()
        .stdout_has("allowed models");

    // Update: metadata merged, config removed with '', models replaced.
    let got = env
        .run(&[
            "workspaces",
            "update",
            "ws-search",
            "--metadata",
            "env=prod",
            "--config",
            "",
            "--models",
            "@claude/*",
            "--name",
            "Search",
            "-o",
            "json",
        ])
        .ok()
        .json();
    assert_eq!(got["name"], "Search");
    assert_eq!(
        got["defaults"],
        json!({"metadata": {"team": "search", "env": "prod"}})
    );
    assert_eq!(got["allowed_models"], json!(["@claude/*"]));
    let got = env
        .run(&[
            "workspaces",
            "update",
            "ws-search",
            "--all-models",
            "-o",
            "json",
        ])
        .ok()
        .json();
    assert_eq!(got["allowed_models"], Value::Null, "every model again");

    // Conflicts exit 5, unknown workspaces 4.
    env.run(&["workspaces", "create", "--name", "Search"])
        .code(5)
        .stderr_has("already exists");
    env.run(&["workspaces", "get", "ws-nope"]).code(4);
    // --dry-run sends nothing.
    let out = env
        .run(&[
            "workspaces",
            "create",
            "--name",
            "dry",
            "--dry-run",
            "-o",
            "json",
        ])
        .ok();
    assert_eq!(out.json()["body"], json!({"name": "dry"}));
    assert_eq!(
        env.run(&["workspaces", "list", "-o", "json"])
            .ok()
            .json()
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // Delete asks on a terminal and needs --yes otherwise.
    env.run(&["workspaces", "delete", "ws-search"])
        .code(2)
        .error_and_hint()
        .stderr_has("--yes");
    env.run(&["workspaces", "rm", "ws-search", "--yes"])
        .ok()
        .stderr_has("deleted workspace ws-search");
    env.run(&["workspaces", "get", "ws-search"]).code(4);
}

#[test]
fn keys_belong_to_one_workspace() {
    let env = TestEnv::new();
    // Without --workspace: the default workspace.
    let (id, _) = env.create_key("ci-bot", &[]);
    let key = env.run(&["keys", "get", &id, "-o", "json"]).ok().json();
    assert_eq!(key["workspace_id"], DEFAULT_ID);
    env.run(&["keys", "get", &id]).ok().stdout_has(DEFAULT_ID);

    // By slug or id; stored as the id.
    let ws = create_workspace(&env, &["--name", "search"]);
    let (ws_id, ws_slug) = (ws["id"].as_str().unwrap(), ws["slug"].as_str().unwrap());
    let (by_slug, _) = env.create_key("a", &["--workspace", ws_slug]);
    let (by_id, _) = env.create_key("b", &["--workspace", ws_id]);
    for key in [&by_slug, &by_id] {
        let got = env.run(&["keys", "get", key, "-o", "json"]).ok().json();
        assert_eq!(got["workspace_id"], ws_id);
    }

    // Unknown workspaces and organisation keys with one are refused.
    let out = env
        .run(&["keys", "create", "--name", "x", "--workspace", "ws-nope"])
        .code(1);
    assert_eq!(
        out.error_line(),
        "workspace_id: no workspace with id or slug \"ws-nope\""
    );
    env.run(&[
        "keys",
        "create",
        "--name",
        "x",
        "--type",
        "admin",
        "--workspace",
        ws_slug,
    ])
    .code(1)
    .stderr_has("organisation keys belong to no workspace");
    let reply = admin(
        &env,
        "POST",
        "/v1/api-keys/workspace/service",
        Some(json!({"name": "x", "workspace_id": "ws-gone"})),
    );
    refused(reply, 400, "ws-gone");
    // The first admin key has none.
    let keys = env.run(&["keys", "list", "-o", "json"]).ok().json();
    let first = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "local-admin")
        .unwrap();
    assert_eq!(first["workspace_id"], Value::Null);

    // A workspace with keys is not deleted: 409 naming how many and what to do.
    let out = env.run(&["workspaces", "delete", ws_slug, "--yes"]).code(5);
    assert_eq!(
        out.error_line(),
        format!("the workspace {ws_slug:?} still has 2 API keys: delete them first (`tollgate keys list -o json` shows each key's workspace_id)")
    );
    env.run(&["keys", "delete", &by_slug, "--yes"]).ok();
    refused(
        admin(&env, "DELETE", &format!("{WORKSPACES}/{ws_id}"), None),
        409,
        "still has 1 API key: delete it first",
    );
    env.run(&["keys", "delete", &by_id, "--yes"]).ok();
    env.run(&["workspaces", "delete", ws_slug, "--yes"]).ok();
}

/// An upstream answering every chat request with `text`.
fn answering(text: &'static str) -> Upstream {
    Upstream::start(move |req| {
        let model = req.json()["model"].as_str().unwrap_or("?").to_string();
        Reply::ok(openai_chat_json(&model, text))
    })
}

/// A chat request as `key`, with a trace id to find its record by; returns the answer's text.
fn chat(env: &TestEnv, key: &str, trace: &str, headers: &[(&str, &str)]) -> String {
    let mut all = vec![("x-portkey-api-key", key), ("x-portkey-trace-id", trace)];
    all.extend_from_slice(headers);
    let body = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hello"}]});
    let reply = http_send(
        &env.url,
        "POST",
        "/v1/chat/completions",
        &all,
        Some(&body.to_string()),
    );
    assert_eq!(reply.status, 200, "{reply}");
    reply.json()["choices"][0]["message"]["content"]
        .as_str()
        .unwrap_or_else(|| panic!("no content\n{reply}"))
        .to_string()
}

/// The metadata of the request with this trace id, once its record is written.
#[track_caller]
fn recorded_metadata(env: &TestEnv, trace: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let page = ok(admin(
            env,
            "GET",
            &format!("/v1/logs?trace_id={trace}"),
            None,
        ));
        if let Some(record) = page["data"].as_array().and_then(|d| d.first()) {
            return record["metadata"].clone();
        }
        assert!(Instant::now() < deadline, "no record for {trace}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn workspace_metadata_wins_over_the_key_and_the_request() {
    let env = gateway_env(&[]);
    let up = answering("hi");
    add_openai_integration(&env, "up", &up.url);
    create_workspace(
        &env,
        &[
            "--name",
            "search",
            "--slug",
            "ws-search",
            "--metadata",
            "team=workspace",
        ],
    );
    let (_, key) = env.create_key(
        "agent",
        &[
            "--workspace",
            "ws-search",
            "--config",
            &create_config(&env, "up", json!({"provider": "@up"})),
            "--metadata",
            "team=key",
            "--metadata",
            "env=key",
        ],
    );
    let request = r#"{"team":"request","env":"request","run":"request"}"#;
    chat(&env, &key, "t-1", &[("x-portkey-metadata", request)]);
    assert_eq!(
        recorded_metadata(&env, "t-1"),
        json!({"team": "workspace", "env": "key", "run": "request"}),
        "workspace > key > request"
    );

    // A workspace update reaches the gateway at once.
    env.run(&[
        "workspaces",
        "update",
        "ws-search",
        "--metadata",
        "env=workspace",
    ])
    .ok();
    chat(&env, &key, "t-2", &[("x-portkey-metadata", request)]);
    assert_eq!(
        recorded_metadata(&env, "t-2"),
        json!({"team": "workspace", "env": "workspace", "run": "request"})
    );
    // Keys of the default workspace, which has no metadata, keep their own.
    let (_, other) = env.create_key(
        "other",
        &[
            "--config",
            &create_config(&env, "up2", json!({"provider": "@up"})),
            "--metadata",
            "team=key",
        ],
    );
    chat(&env, &other, "t-3", &[("x-portkey-metadata", request)]);
    assert_eq!(
        recorded_metadata(&env, "t-3"),
        json!({"team": "key", "env": "request", "run": "request"})
    );
}

#[test]
fn the_config_is_the_requests_then_the_keys_then_the_workspaces() {
    let env = gateway_env(&[]);
    let (a, b, c) = (
        answering("workspace"),
        answering("key"),
        answering("request"),
    );
    add_openai_integration(&env, "a", &a.url);
    add_openai_integration(&env, "b", &b.url);
    add_openai_integration(&env, "c", &c.url);
    let ws_config = create_config(&env, "ws", json!({"provider": "@a"}));
    let key_config = create_config(&env, "key", json!({"provider": "@b"}));
    create_workspace(
        &env,
        &[
            "--name",
            "search",
            "--slug",
            "ws-search",
            "--config",
            &ws_config,
        ],
    );
    let (_, with_config) = env.create_key(
        "with",
        &["--workspace", "ws-search", "--config", &key_config],
    );
    let (_, without) = env.create_key("without", &["--workspace", "ws-search"]);
    let own = json!({"provider": "@c"}).to_string();

    assert_eq!(
        chat(&env, &with_config, "c-1", &[("x-portkey-config", &own)]),
        "request"
    );
    assert_eq!(chat(&env, &with_config, "c-2", &[]), "key");
    assert_eq!(chat(&env, &without, "c-3", &[]), "workspace");
    assert_eq!(
        chat(&env, &without, "c-4", &[("x-portkey-config", &own)]),
        "request"
    );

    // Without the workspace's config the request needs its own routing.
    env.run(&["workspaces", "update", "ws-search", "--config", ""])
        .ok();
    let body = json!({"model": "@c/gpt-4o", "messages": [{"role": "user", "content": "hello"}]});
    let reply = http_send(
        &env.url,
        "POST",
        "/v1/chat/completions",
        &[("x-portkey-api-key", &without)],
        Some(&body.to_string()),
    );
    assert_eq!(
        reply.json()["choices"][0]["message"]["content"],
        "request",
        "{reply}"
    );
}

#[test]
fn a_workspace_model_list_refuses_other_models() {
    let env = gateway_env(&[]);
    let up = answering("hi");
    add_openai_integration(&env, "up", &up.url);
    create_workspace(
        &env,
        &[
            "--name",
            "mini",
            "--slug",
            "ws-mini",
            "--models",
            "@up/gpt-4o-mini*",
        ],
    );
    let (_, key) = env.create_key("k", &["--workspace", "ws-mini"]);
    let send = |model: &str| {
        let body = json!({"model": model, "messages": [{"role": "user", "content": "hello"}]});
        http_send(
            &env.url,
            "POST",
            "/v1/chat/completions",
            &[("x-portkey-api-key", &key)],
            Some(&body.to_string()),
        )
    };
    assert_eq!(send("@up/gpt-4o-mini").status, 200);
    let reply = send("@up/gpt-4o");
    assert_eq!(reply.status, 403, "{reply}");
    assert!(reply.body.contains("workspace ws-mini"), "{reply}");
    env.run(&["workspaces", "update", "ws-mini", "--all-models"])
        .ok();
    assert_eq!(send("@up/gpt-4o").status, 200);
}
