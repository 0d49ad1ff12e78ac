//! The prompt library's admin API through the real server: versions are never lost, the
//! published version and labels move, and `ID@VERSION` / `ID@LABEL` / `ID@latest` resolve.

use serde_json::{json, Value};

use crate::common::{http_send, HttpReply, TestEnv};

#[track_caller]
fn ok(reply: HttpReply) -> Value {
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.json()
}

fn template(text: &str) -> Value {
    json!({"model": "@openai-dev/gpt-4o-mini", "parameters": {"temperature": 0.2},
           "messages": [{"role": "system", "content": "You help {{team}}."},
                        {"role": "user", "content": text}]})
}

#[test]
fn versions_are_never_lost_and_labels_and_the_published_version_move() {
    let env = TestEnv::new();
    let mut body = template("v1: {{question}}");
    body["name"] = json!("support agent");
    let created = ok(env.admin("POST", "/v1/prompts", Some(body)));
    let id = created["id"].as_str().unwrap().to_string();
    let slug = created["slug"].as_str().unwrap().to_string();
    assert!(slug.starts_with("pp-"), "{slug}");
    assert_eq!(created["version"], 1);
    for n in 2..=3 {
        let v = ok(env.admin(
            "PUT",
            &format!("/v1/prompts/{slug}"),
            Some(template(&format!("v{n}: {{{{question}}}}"))),
        ));
        assert_eq!(v["version"], n);
    }
    let versions = ok(env.admin("GET", &format!("/v1/prompts/{id}/versions"), None));
    let texts: Vec<&str> = versions["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["messages"][1]["content"].as_str().unwrap())
        .collect();
    assert_eq!(
        texts,
        ["v3: {{question}}", "v2: {{question}}", "v1: {{question}}"]
    );

    // Updating never changes what was published.
    let p = ok(env.admin("GET", &format!("/v1/prompts/{slug}"), None));
    assert_eq!(
        (p["published_version"].clone(), p["latest_version"].clone()),
        (json!(1), json!(3))
    );
    assert_eq!(p["messages"][1]["content"], "v1: {{question}}");
    assert_eq!(p["prompt_version_status"], "published");

    // Labels point at versions, and move.
    ok(env.admin(
        "PUT",
        &format!("/v1/prompts/{slug}/versions/2"),
        Some(json!({"label_id": "staging"})),
    ));
    let staged = ok(env.admin("GET", &format!("/v1/prompts/{slug}@staging"), None));
    assert_eq!(staged["prompt_version"], 2);
    assert_eq!(staged["prompt_version_status"], "draft");
    ok(env.admin(
        "PUT",
        &format!("/v1/prompts/{slug}/versions/3"),
        Some(json!({"label_id": "staging"})),
    ));
    let staged = ok(env.admin("GET", &format!("/v1/prompts/{slug}@staging"), None));
    assert_eq!(staged["prompt_version"], 3);
    assert_eq!(staged["labels"], json!({"staging": 3}));

    // Promote: publish what staging had.
    ok(env.admin(
        "PUT",
        &format!("/v1/prompts/{slug}/makeDefault"),
        Some(json!({"version": 3})),
    ));
    assert_eq!(
        ok(env.admin("GET", &format!("/v1/prompts/{slug}"), None))["prompt_version"],
        3
    );
    assert_eq!(
        ok(env.admin("GET", &format!("/v1/prompts/{slug}@2"), None))["messages"][1]["content"],
        "v2: {{question}}"
    );
    assert_eq!(
        ok(env.admin("GET", &format!("/v1/prompts/{slug}@latest"), None))["prompt_version"],
        3
    );
    let versions = ok(env.admin("GET", &format!("/v1/prompts/{slug}/versions"), None));
    let v3 = &versions["data"][0];
    assert_eq!(
        (v3["published"].clone(), v3["labels"].clone()),
        (json!(true), json!(["staging"]))
    );

    // What does not exist is named.
    let missing = env.admin("GET", &format!("/v1/prompts/{slug}@production"), None);
    assert_eq!(missing.status, 404);
    assert!(missing.body.contains("production"), "{}", missing.body);
    assert_eq!(
        env.admin("GET", &format!("/v1/prompts/{slug}@9"), None)
            .status,
        404
    );
    assert_eq!(
        env.admin(
            "PUT",
            &format!("/v1/prompts/{slug}/makeDefault"),
            Some(json!({"version": 9}))
        )
        .status,
        404
    );
}

#[test]
fn templates_and_labels_are_checked() {
    let env = TestEnv::new();
    let bad = env.admin(
        "POST",
        "/v1/prompts",
        Some(
            json!({"name": "x", "model": "gpt-4o", "messages": [{"role": "robot", "content": 3}]}),
        ),
    );
    assert_eq!(bad.status, 400);
    let errors = bad.json()["errors"].to_string();
    assert!(
        errors.contains("messages[0].role")
            && errors.contains("messages[0].content")
            && errors.contains("@integration-slug/model"),
        "{errors}"
    );
    let unclosed = env.admin(
        "POST",
        "/v1/prompts",
        Some(json!({"name": "y", "messages": [{"role": "user", "content": "{{#items}} never closed"}]})),
    );
    assert_eq!(unclosed.status, 400);
    assert!(
        unclosed.body.contains("messages[0].content") && unclosed.body.contains("never closed"),
        "{}",
        unclosed.body
    );
    let partial = env.admin(
        "POST",
        "/v1/prompts/partials",
        Some(json!({"name": "p", "string": "{{/x}}"})),
    );
    assert_eq!(partial.status, 400);
    let mut body = template("hi");
    body["name"] = json!("dup");
    ok(env.admin("POST", "/v1/prompts", Some(body.clone())));
    assert_eq!(env.admin("POST", "/v1/prompts", Some(body)).status, 409);

    let labels = ok(env.admin("GET", "/v1/labels", None));
    let names: Vec<&str> = labels["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    for default in ["production", "staging", "development"] {
        assert!(names.contains(&default), "{names:?}");
    }
    let canary = ok(env.admin(
        "POST",
        "/v1/labels",
        Some(json!({"name": "canary", "color_code": "#ffaa00"})),
    ));
    assert_eq!(
        env.admin("POST", "/v1/labels", Some(json!({"name": "canary"})))
            .status,
        409
    );
    assert_eq!(
        env.admin("POST", "/v1/labels", Some(json!({"name": "7"})))
            .status,
        400
    );
    assert_eq!(
        env.admin("DELETE", "/v1/labels/production", None).status,
        409
    );
    ok(env.admin(
        "DELETE",
        &format!("/v1/labels/{}", canary["id"].as_str().unwrap()),
        None,
    ));
}

#[test]
fn partials_keep_their_versions_and_collections_hold_prompts() {
    let env = TestEnv::new();
    let made = ok(env.admin(
        "POST",
        "/v1/prompts/partials",
        Some(json!({"name": "tone", "string": "Be brief."})),
    ));
    let slug = made["slug"].as_str().unwrap().to_string();
    assert!(slug.starts_with("ppt-"), "{slug}");
    assert_eq!(made["object"], "partial");
    let v2 = ok(env.admin(
        "PUT",
        &format!("/v1/prompts/partials/{slug}"),
        Some(json!({"string": "Be brief and kind."})),
    ));
    assert_eq!(v2["version"], 2);
    let shown =
        |reference: &str| ok(env.admin("GET", &format!("/v1/prompts/partials/{reference}"), None));
    assert_eq!(
        shown(&slug)["string"],
        "Be brief.",
        "version 1 stays published"
    );
    assert_eq!(shown(&format!("{slug}@2"))["string"], "Be brief and kind.");
    assert_eq!(
        shown("tone@latest")["version"],
        2,
        "a partial is also found by name"
    );
    ok(env.admin(
        "PUT",
        &format!("/v1/prompts/partials/{slug}/makeDefault"),
        Some(json!({"version": 2})),
    ));
    assert_eq!(shown(&slug)["string"], "Be brief and kind.");
    let versions = ok(env.admin(
        "GET",
        &format!("/v1/prompts/partials/{slug}/versions"),
        None,
    ));
    assert_eq!(versions["total"], 2);
    // A prompt and a partial may share a name: they are different kinds.
    let mut body = template("hi");
    body["name"] = json!("tone");
    ok(env.admin("POST", "/v1/prompts", Some(body)));

    let folder = ok(env.admin("POST", "/v1/collections", Some(json!({"name": "support"}))));
    let mut body = template("hi");
    body["name"] = json!("triage");
    body["collection_id"] = json!("support");
    let p = ok(env.admin("POST", "/v1/prompts", Some(body.clone())));
    let got = ok(env.admin(
        "GET",
        &format!("/v1/prompts/{}", p["id"].as_str().unwrap()),
        None,
    ));
    assert_eq!(got["collection_id"], folder["id"]);
    body["name"] = json!("other");
    body["collection_id"] = json!("nowhere");
    let bad = env.admin("POST", "/v1/prompts", Some(body));
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("nowhere"), "{}", bad.body);
    assert_eq!(
        env.admin("DELETE", "/v1/collections/support", None).status,
        409
    );
    ok(env.admin(
        "DELETE",
        &format!("/v1/prompts/{}", p["id"].as_str().unwrap()),
        None,
    ));
    ok(env.admin("DELETE", "/v1/collections/support", None));
}

#[test]
fn render_and_completions_use_the_labelled_version_through_the_gateway() {
    use crate::common::{add_openai_integration, gateway_env, openai_chat_json};
    use crate::upstream::{Reply, Upstream};

    let env = gateway_env(&[]);
    // The first target fails, so the fallback config's second one answers.
    let failing = Upstream::start(|_| Reply::status(500, json!({"error": {"message": "down"}})));
    let working = Upstream::start(|r| {
        let model = r.json()["model"].as_str().unwrap_or_default().to_string();
        Reply::ok(openai_chat_json(&model, "Hello Ada"))
    });
    add_openai_integration(&env, "down", &failing.url);
    add_openai_integration(&env, "up", &working.url);
    ok(env.admin(
        "POST",
        "/v1/prompts/partials",
        Some(json!({"name": "tone", "string": "Be \"brief\"."})),
    ));
    let mut body = json!({"name": "greeter", "model": "@up/gpt-4o-mini",
        "parameters": {"temperature": 0.1, "max_tokens": 50},
        "messages": [{"role": "system", "content": "You greet people. {{>tone}}"},
                     {"role": "user", "content": "Say hello to {{name}}{{#title}}, {{title}}{{/title}}."}]});
    let made = ok(env.admin("POST", "/v1/prompts", Some(body.clone())));
    let slug = made["slug"].as_str().unwrap().to_string();
    body["messages"][1]["content"] = json!("Greet {{name}} warmly.");
    ok(env.admin("PUT", &format!("/v1/prompts/{slug}"), Some(body)));
    ok(env.admin(
        "PUT",
        &format!("/v1/prompts/{slug}/versions/2"),
        Some(json!({"label_id": "staging"})),
    ));

    let render = |reference: &str, request: Value| {
        env.admin(
            "POST",
            &format!("/v1/prompts/{reference}/render"),
            Some(request),
        )
    };
    let published = render(
        &slug,
        json!({"variables": {"name": "Ada \"the\" first\n", "title": "Countess"}, "max_tokens": 5}),
    );
    let data = &ok(published)["data"];
    assert_eq!(
        data["messages"][0]["content"],
        "You greet people. Be \"brief\"."
    );
    assert_eq!(
        data["messages"][1]["content"],
        "Say hello to Ada \"the\" first\n, Countess."
    );
    assert_eq!(
        (data["max_tokens"].clone(), data["temperature"].clone()),
        (json!(5), json!(0.1))
    );
    assert_eq!(data["model"], "@up/gpt-4o-mini");
    let staged = ok(render(
        &format!("{slug}@staging"),
        json!({"variables": {"name": "Ada"}}),
    ));
    assert_eq!(
        staged["data"]["messages"][1]["content"],
        "Greet Ada warmly."
    );
    let missing = render(&slug, json!({"variables": {}}));
    assert_eq!(missing.status, 400);
    assert!(
        missing.body.contains("missing variable name"),
        "{}",
        missing.body
    );
    assert_eq!(render("pp-nothing", json!({})).status, 404);

    let config = json!({"strategy": {"mode": "fallback"}, "targets": [
        {"provider": "@down"}, {"provider": "@up"}]})
    .to_string();
    let reply = http_send(
        &env.url,
        "POST",
        &format!("/v1/prompts/{slug}@staging/completions"),
        &[
            ("x-portkey-api-key", &env.admin_key),
            ("x-portkey-config", &config),
        ],
        Some(&json!({"variables": {"name": "Ada"}}).to_string()),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.json()["choices"][0]["message"]["content"],
        "Hello Ada"
    );
    assert_eq!(
        reply.header("x-portkey-last-used-option-index"),
        Some("config.targets[1]")
    );
    let sent = working.requests().last().unwrap().json();
    assert_eq!(sent["messages"][1]["content"], "Greet Ada warmly.");
    assert_eq!(sent["model"], "gpt-4o-mini");

    // The record names the prompt and the version used.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let logs = ok(env.admin("GET", "/v1/logs?limit=5", None));
        if let Some(r) = logs["data"].as_array().and_then(|d| d.first()) {
            assert_eq!(r["metadata"]["_prompt"], format!("{slug}@2"));
            assert_eq!(r["status"], 200);
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no record");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn prompt_completions_stream_when_asked() {
    use crate::common::{add_openai_integration, gateway_env, openai_chat_sse, streamed_text};
    use crate::upstream::{Reply, Upstream};

    let env = gateway_env(&[]);
    let upstream = Upstream::start(|_| {
        let events = openai_chat_sse("gpt-4o-mini", &["Hel", "lo"]);
        let events: Vec<&str> = events.iter().map(String::as_str).collect();
        Reply::sse(&events)
    });
    add_openai_integration(&env, "up", &upstream.url);
    let made = ok(env.admin(
        "POST",
        "/v1/prompts",
        Some(json!({"name": "streamer", "model": "@up/gpt-4o-mini",
                    "parameters": {"stream": false},
                    "messages": [{"role": "user", "content": "Hi {{name}}"}]})),
    ));
    let slug = made["slug"].as_str().unwrap();
    let reply = http_send(
        &env.url,
        "POST",
        &format!("/v1/prompts/{slug}/completions"),
        &[("x-portkey-api-key", &env.admin_key)],
        Some(&json!({"variables": {"name": "Ada"}, "stream": true}).to_string()),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.header("content-type"), Some("text/event-stream"));
    assert_eq!(streamed_text(&reply.sse_data()), "Hello");
    let sent = upstream.requests().last().unwrap().json();
    assert_eq!(
        sent["stream"], true,
        "the request's stream wins over the template's"
    );
    assert_eq!(sent["messages"][0]["content"], "Hi Ada");
}

#[test]
fn portkeys_string_and_virtual_key_form_is_accepted() {
    let env = TestEnv::new();
    let made = ok(env.admin(
        "POST",
        "/v1/prompts",
        Some(
            json!({"name": "pk", "virtual_key": "openai-dev", "model": "gpt-4o-mini",
                    "parameters": {"max_tokens": 10},
                    "string": "[{\"role\":\"user\",\"content\":\"Hi {{name}}\"}]"}),
        ),
    ));
    let p = ok(env.admin(
        "GET",
        &format!("/v1/prompts/{}", made["slug"].as_str().unwrap()),
        None,
    ));
    assert_eq!(p["model"], "@openai-dev/gpt-4o-mini");
    assert_eq!(
        p["messages"],
        json!([{"role": "user", "content": "Hi {{name}}"}])
    );
    let bad = env.admin(
        "POST",
        "/v1/prompts",
        Some(json!({"name": "pk2", "string": "not json"})),
    );
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("JSON array of messages"), "{}", bad.body);
}

#[test]
fn a_saved_prompt_renders_after_a_restart() {
    let mut env = TestEnv::new();
    let made = ok(env.admin(
        "POST",
        "/v1/prompts",
        Some(json!({"name": "kept", "model": "@up/gpt-4o-mini",
                    "messages": [{"role": "user", "content": "Hello {{name}}."}]})),
    ));
    let slug = made["slug"].as_str().unwrap().to_string();
    env.restart();
    let rendered = ok(env.admin(
        "POST",
        &format!("/v1/prompts/{slug}/render"),
        Some(json!({"variables": {"name": "Ada"}})),
    ));
    assert_eq!(rendered["data"]["messages"][0]["content"], "Hello Ada.");
}
