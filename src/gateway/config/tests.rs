//! Whole-config tests for [`validate`] and [`parse_document`]. The pieces (conditions, hooks,
//! policies, strategy, type checks) have their own tests beside their code.

use serde_json::{json, Value};

use super::*;

fn errors(config: Value) -> Vec<String> {
    match validate(&config) {
        Ok(()) => Vec::new(),
        Err(errs) => errs.iter().map(|e| e.to_string()).collect(),
    }
}

fn assert_valid(config: Value) {
    assert_eq!(errors(config), Vec::<String>::new());
}

#[test]
fn reference_examples_validate() {
    assert_valid(json!({"strategy":{"mode":"single"},
        "targets":[{"provider":"@openai-prod","override_params":{"model":"gpt-4o"}}]}));
    assert_valid(
        json!({"strategy":{"mode":"fallback","on_status_codes":[429,500,502,503,504,446]},
        "request_timeout":15000,
        "retry":{"attempts":2,"on_status_codes":[429,503],"use_retry_after_header":true},
        "targets":[
            {"provider":"openai","api_key":"sk-...","override_params":{"model":"gpt-4o"}},
            {"override_params":{"model":"@anthropic-prod/claude-sonnet-4-20250514"}}]}),
    );
    assert_valid(json!({"strategy":{"mode":"loadbalance"},
        "cache":{"mode":"simple","max_age":3600},
        "targets":[
            {"provider":"@openai-a","weight":0.7},
            {"weight":0.3,"strategy":{"mode":"fallback"},
             "targets":[{"provider":"@azure-east"},{"provider":"@azure-west"}]}]}));
    assert_valid(json!({"strategy":{"mode":"conditional",
        "conditions":[
            {"query":{"$and":[{"metadata.tier":{"$eq":"pro"}},{"params.model":{"$in":["smart","smartest"]}}]},"then":"big"},
            {"query":{"url.pathname":{"$regex":"embeddings$"}},"then":"embed"},
            {"query":{"params.max_tokens":{"$gt":4000}},"then":"big"}],
        "default":"small"},
        "targets":[
            {"name":"big","provider":"@anthropic-prod","override_params":{"model":"claude-opus-4"}},
            {"name":"small","provider":"@openai-prod","override_params":{"model":"gpt-4o-mini"}},
            {"name":"embed","provider":"@openai-prod"}]}));
    assert_valid(json!({"retry":{"attempts":3,"on_status_codes":[446]},
        "output_guardrails":[{"default.contains":{"operator":"none","words":["Apple"]},"deny":true}]}));
}

#[test]
fn both_retry_flag_spellings() {
    assert_valid(json!({"retry": {"attempts": 3, "use_retry_after_header": true}}));
    assert_valid(json!({"retry": {"attempts": 3, "use_retry_after_headers": true}}));
    assert_eq!(
        errors(
            json!({"retry": {"attempts": 3, "use_retry_after_headers": true, "useRetryAfterHeader": false}})
        ),
        [
            r#"retry.useRetryAfterHeader: conflicts with "use_retry_after_headers": both spellings are accepted, but they must agree"#
        ]
    );
}

#[test]
fn camel_case_keys_are_accepted() {
    assert_valid(json!({
        "strategy": {"mode": "fallback", "onStatusCodes": [429]},
        "requestTimeout": 5000,
        "retry": {"attempts": 1, "onStatusCodes": [503], "useRetryAfterHeader": true},
        "beforeRequestHooks": [{"checks": [{"id": "default.modelWhitelist", "parameters": {"models": ["x"]}}], "onFail": {}}],
        "targets": [
            {"provider": "openai", "apiKey": "sk", "overrideParams": {"max_tokens": 5},
             "defaultParams": {"top_p": 1}, "dropParams": ["user"], "customHost": "https://llm.example.com/v1",
             "forwardHeaders": ["x-user"], "strictOpenAiCompliance": false, "cbConfig": {"cooldown_interval": 60000}},
            {"provider": "bedrock", "awsAccessKeyId": "a", "awsSecretAccessKey": "b", "awsRegion": "us-east-1"},
            {"provider": "azure-openai", "resourceName": "r", "deploymentId": "d", "apiVersion": "2024-06-01",
             "azureAuthMode": "entra", "deployments": [{"deploymentId": "d2", "alias": "gpt4", "isDefault": true}]},
            {"provider": "vertex-ai", "vertexProjectId": "p", "vertexRegion": "us-central1",
             "vertexServiceAccountJson": {"private_key_id": "k"}}
        ]
    }));
}

#[test]
fn several_errors_are_all_reported_in_document_order() {
    let config = json!({
        "strategy": {"mode": "fallbak", "on_status_codes": [429, "500"]},
        "targets": [
            {"provider": "openai", "weight": 1},
            {"provider": "opnai", "weight": -1, "request_timeout": 0},
            {"virtual_key": 5, "retry": {"attempts": 9}, "custom_host": "llm.example.com"}
        ],
        "cache": {"mode": "simple", "max_age": 10},
        "stratgy": {}
    });
    let got = errors(config);
    let slugs = providers::slugs();
    assert_eq!(
        got,
        [
            r#"strategy.mode: unknown mode "fallbak"; expected one of single, loadbalance, fallback, conditional"#.to_string(),
            r#"strategy.on_status_codes[1]: expected an integer, found string "500""#.to_string(),
            format!(r#"targets[1].provider: unknown provider "opnai"; did you mean "openai"?; expected one of {slugs}, or "@<integration-slug>""#),
            "targets[1].weight: must be >= 0".to_string(),
            "targets[1].request_timeout: must be a positive integer, found 0".to_string(),
            "targets[2].virtual_key: expected a string, found number 5".to_string(),
            "targets[2].retry.attempts: must be between 0 and 5, found 9".to_string(),
            r#"targets[2].custom_host: must be an absolute http(s) URL, found "llm.example.com""#.to_string(),
            r#"stratgy: unknown field "stratgy"; did you mean "strategy"?"#.to_string(),
        ]
    );
    let errs = validate(&json!({"strategy": {"mode": "loadbalance"}, "targets": [{"weight": -1}]}))
        .unwrap_err();
    assert_eq!(
        errs[0],
        ValidationError {
            path: "targets[0].weight".into(),
            message: "must be >= 0".into()
        }
    );
}

#[test]
fn nested_targets_three_deep() {
    let config = json!({
        "strategy": {"mode": "loadbalance"},
        "targets": [{
            "strategy": {"mode": "fallback"},
            "targets": [
                {"provider": "anthropic"},
                {"provider": "openai"},
                {"strategy": {"mode": "single"},
                 "targets": [{"provider": "@groq-main", "retry": {"attempts": "2"}, "foo": 1}]}
            ]
        }]
    });
    assert_eq!(
        errors(config),
        [
            r#"targets[0].targets[2].targets[0].retry.attempts: expected an integer, found string "2""#,
            r#"targets[0].targets[2].targets[0].foo: unknown field "foo""#,
        ]
    );
    assert_eq!(
        errors(
            json!({"strategy": {"mode": "fallback"}, "targets": [{"targets": [{"provider": "openai"}]}]})
        ),
        [r#"targets[0].targets: "targets" needs a "strategy", e.g. {"mode": "fallback"}"#]
    );
}

#[test]
fn strategy_and_targets_go_together() {
    assert_eq!(
        errors(json!({"strategy": {"mode": "fallback"}})),
        ["targets: required when \"strategy\" is set: a non-empty array of targets"]
    );
    assert_eq!(
        errors(json!({"strategy": {"mode": "fallback"}, "targets": []})),
        ["targets: must not be empty"]
    );
    assert_eq!(
        errors(json!({"strategy": {"mode": "single"}, "targets": ["openai", 1]})),
        [
            r#"targets[0]: expected an object, found string "openai""#,
            "targets[1]: expected an object, found number 1",
        ]
    );
}

#[test]
fn conditional_target_names() {
    let config = json!({
        "strategy": {"mode": "conditional", "conditions": [{"query": {"metadata.a": 1}, "then": "a"}], "default": "b"},
        "targets": [{"name": "a", "provider": "openai"}, {"provider": "openai"}, {"name": "a", "provider": "groq"}]
    });
    assert_eq!(
        errors(config),
        [
            r#"strategy.default: no target named "b"; target names here are a, a"#,
            "targets[1].name: required: a conditional strategy picks its targets by name",
            r#"targets[2].name: duplicate target name "a"; targets[0] already uses it"#,
        ]
    );
}

#[test]
fn query_errors_carry_full_paths() {
    let config = json!({
        "strategy": {"mode": "conditional", "conditions": [
            {"query": {"$and": [{"metadata.tier": "pro"}, {"metadata.a.b": {"$eq": 1}}]}, "then": "t"}
        ]},
        "targets": [{"name": "t", "strategy": {"mode": "conditional", "conditions": [
            {"query": {"params.n": {"$gt": "x"}}, "then": "u"}]}, "targets": [{"name": "u", "provider": "openai"}]}]
    });
    assert_eq!(
        errors(config),
        [
            r#"strategy.conditions[0].query.$and[1].metadata.a.b: field path "metadata.a.b" has 3 segments; only two segments are supported (metadata.<key>)"#,
            r#"targets[0].strategy.conditions[0].query.params.n.$gt: expected a number (or a string holding one), found string "x""#,
        ]
    );
}

#[test]
fn loadbalance_weights() {
    let zero = json!({"strategy": {"mode": "loadbalance"},
        "targets": [{"provider": "openai", "weight": 0}, {"provider": "groq", "weight": 0.0}]});
    assert_eq!(
        errors(zero),
        ["strategy: at least one target needs a weight above 0"]
    );
    assert_valid(json!({"strategy": {"mode": "loadbalance"},
        "targets": [{"provider": "openai", "weight": 0}, {"provider": "groq"}]}));
    assert_eq!(
        errors(
            json!({"strategy": {"mode": "loadbalance"}, "targets": [{"provider": "openai", "weight": "1"}]})
        ),
        [r#"targets[0].weight: expected a number, found string "1""#]
    );
}

#[test]
fn provider_forms() {
    for p in [
        "openai",
        "azure-openai",
        "@openai-prod",
        "@my_team-2",
        "@0x",
    ] {
        assert_valid(json!({"provider": p}));
    }
    assert_eq!(
        errors(json!({"provider": "@openai-prod/gpt-4o"})),
        [
            r#"provider: "@openai-prod/gpt-4o" includes a model; "provider" takes only "@openai-prod" (put the model in override_params.model)"#
        ]
    );
    let bad_slug =
        r#""@" must be followed by an integration slug of lowercase letters, digits, "-" and "_""#;
    assert_eq!(
        errors(json!({"provider": "@"})),
        [format!(r#"provider: invalid provider "@": {bad_slug}"#)]
    );
    assert_eq!(
        errors(json!({"provider": "@OpenAI"})),
        [format!(
            r#"provider: invalid provider "@OpenAI": {bad_slug}"#
        )]
    );
    assert_eq!(
        errors(json!({"provider": "@-x"})),
        [format!(r#"provider: invalid provider "@-x": {bad_slug}"#)]
    );
    let got = errors(json!({"provider": "nosuch"}));
    assert_eq!(
        got,
        [format!(
            r#"provider: unknown provider "nosuch"; expected one of {}, or "@<integration-slug>""#,
            providers::slugs()
        )]
    );
}

#[test]
fn simple_field_types() {
    let config = json!({
        "provider": "openai",
        "custom_host": "ftp://x", "forward_headers": ["x-a", "X-Portkey-Forward-Headers", ""],
        "drop_params": "user", "override_params": [], "passthrough": "yes", "prompt_id": 1,
        "cb_config": {"cooldown_interval": 10}, "name": "",
        "metadata": "x", "deployments": [{"deployment_id": 1, "is_default": "y", "extra": 1}]
    });
    assert_eq!(
        errors(config),
        [
            r#"custom_host: must be an absolute http(s) URL, found "ftp://x""#,
            r#"forward_headers[1]: "x-portkey-forward-headers" cannot itself be forwarded"#,
            "forward_headers[2]: must not be empty",
            r#"drop_params: expected an array, found string "user""#,
            "override_params: expected an object, found an array",
            r#"passthrough: expected a boolean, found string "yes""#,
            "prompt_id: expected a string, found number 1",
            "cb_config.cooldown_interval: must be >= 30000, found 10",
            "name: must not be empty",
            r#"metadata: expected an object, found string "x""#,
            "deployments[0].deployment_id: expected a string, found number 1",
            r#"deployments[0].is_default: expected a boolean, found string "y""#,
        ]
    );
    assert!(is_http_url("http://localhost:11434/v1"));
    assert!(is_http_url("HTTPS://Example.com"));
    assert!(!is_http_url("https://"));
    assert!(!is_http_url("https://a b.com"));
}

#[test]
fn guardrails_and_hooks_in_a_config() {
    assert_valid(json!({
        "provider": "openai",
        "input_guardrails": ["pg-abc-123", {"wordCount": {"minWords": 1}, "deny": true}],
        "outputMutators": [{"default.regexReplace": {"rule": "/secret/i"}, "type": "mutator"}],
        "after_request_hooks": [{"id": "h1", "type": "guardrail", "checks": [{"id": "default.notNull"}]}]
    }));
    assert_eq!(
        errors(
            json!({"input_guardrails": [{"deny": true}], "before_request_hooks": [{"checks": [{"id": "x"}]}]})
        ),
        [
            r#"input_guardrails[0]: guardrail has no checks; add one such as "default.contains": {"words": [...]}, or give a saved guardrail id as a string"#,
            r#"before_request_hooks[0].checks[0].id: invalid check id "x"; expected "plugin.check", e.g. "default.contains""#,
        ]
    );
}

#[test]
fn unknown_fields_and_duplicates() {
    assert_eq!(
        errors(json!({"provider": "openai", "overide_params": {}, "apiKeys": "x", "zzz": 1})),
        [
            r#"overide_params: unknown field "overide_params"; did you mean "override_params"?"#,
            r#"apiKeys: unknown field "apiKeys"; did you mean "api_key"?"#,
            r#"zzz: unknown field "zzz""#,
        ]
    );
    assert_eq!(
        errors(json!({"provider": "openai", "api_key": "a", "apiKey": "b"})),
        [r#"apiKey: duplicate field: "api_key" and "apiKey" are the same setting"#]
    );
}

#[test]
fn root_rules() {
    assert_eq!(
        errors(json!({"options": [{"provider": "openai"}], "mode": "fallback"})),
        [r#"options: legacy v1 "options" configs are not supported; use strategy + targets"#]
    );
    assert_eq!(
        errors(json!([1])),
        ["config must be a JSON object, found an array"]
    );
    let nothing = "config does nothing: give a provider, a strategy with targets, or retry/cache/request_timeout settings";
    assert_eq!(errors(json!({})), [nothing]);
    assert_eq!(
        errors(json!({"name": "x", "api_key": "sk", "weight": 1})),
        [nothing]
    );
    let errs = validate(&json!({"name": "x"})).unwrap_err();
    assert_eq!(errs[0].path, "");
    for ok in [
        json!({"virtual_key": "vk"}),
        json!({"cache": {"mode": "simple"}}),
        json!({"request_timeout": 1}),
        json!({"aws_region": "us-east-1"}),
        json!({"vertexProjectId": "p"}),
        json!({"azure_auth_mode": "entra"}),
        json!({"custom_host": "http://localhost:8080"}),
        json!({"passthrough": true}),
        json!({"prompt_id": "pp-1"}),
        json!({"forward_headers": ["x-a"]}),
        json!({"drop_params": []}),
        json!({"default_params": {}}),
        json!({"input_mutators": ["pg-m"]}),
    ] {
        assert_valid(ok);
    }
}

#[test]
fn display_of_root_and_nested_errors() {
    let root = ValidationError {
        path: String::new(),
        message: "config does nothing".into(),
    };
    assert_eq!(root.to_string(), "config does nothing");
    let nested = ValidationError {
        path: "targets[1].weight".into(),
        message: "must be >= 0".into(),
    };
    assert_eq!(nested.to_string(), "targets[1].weight: must be >= 0");
}

#[test]
fn parse_document_json_and_yaml() {
    let json_text = r#"  {"strategy": {"mode": "single"}, "targets": [{"provider": "openai"}]}"#;
    let v = parse_document(json_text).unwrap();
    assert_eq!(v["targets"][0]["provider"], "openai");
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["strategy", "targets"]);

    let yaml_text =
        "strategy:\n  mode: fallback\ntargets:\n  - provider: openai\n    weight: 0.5\n";
    let v = parse_document(yaml_text).unwrap();
    assert_eq!(
        v,
        json!({"strategy": {"mode": "fallback"}, "targets": [{"provider": "openai", "weight": 0.5}]})
    );
    assert_eq!(parse_document("- a\n- b\n").unwrap(), json!(["a", "b"]));

    let err = parse_document("{\n  \"provider\": \"openai\",\n}").unwrap_err();
    assert_eq!(err, "invalid JSON at line 3, column 1: trailing comma");
    let err = parse_document("{mode: single}").unwrap_err();
    assert_eq!(
        err,
        "invalid JSON at line 1, column 2: key must be a string"
    );
    let err = parse_document("strategy:\n  mode: [single\n").unwrap_err();
    println!("{err}");
    assert!(err.starts_with("invalid YAML at line "), "{err}");
    assert!(!err.contains(" at line 2"), "location given twice: {err}");
}
