//! Key scopes, Portkey's `resource.action` names. Every admin route names the scope it needs.

pub const COMPLETIONS_WRITE: &str = "completions.write";
pub const PROMPTS_RENDER: &str = "prompts.render";
pub const LOGS_LIST: &str = "logs.list";
pub const LOGS_VIEW: &str = "logs.view";
pub const LOGS_WRITE: &str = "logs.write";
pub const FEEDBACK_WRITE: &str = "feedback.write";
pub const ANALYTICS_VIEW: &str = "analytics.view";
pub const AUDIT_LOGS_LIST: &str = "audit_logs.list";

/// What a workspace service key gets when created without `scopes`: enough to call the gateway.
pub const WORKSPACE_DEFAULT: &[&str] = &[COMPLETIONS_WRITE, PROMPTS_RENDER];

/// Every scope tollgate knows. An admin key created without `scopes` gets all of them.
pub const ALL: &[&str] = &[
    COMPLETIONS_WRITE,
    PROMPTS_RENDER,
    LOGS_LIST,
    LOGS_VIEW,
    LOGS_WRITE,
    FEEDBACK_WRITE,
    ANALYTICS_VIEW,
    AUDIT_LOGS_LIST,
    "cache.read",
    "cache.delete",
    "configs.create",
    "configs.read",
    "configs.update",
    "configs.delete",
    "configs.list",
    "guardrails.create",
    "guardrails.read",
    "guardrails.update",
    "guardrails.delete",
    "guardrails.list",
    "integrations.create",
    "integrations.read",
    "integrations.update",
    "integrations.delete",
    "integrations.list",
    "organisation_service_api_keys.create",
    "organisation_service_api_keys.read",
    "organisation_service_api_keys.update",
    "organisation_service_api_keys.delete",
    "organisation_service_api_keys.list",
    "organisation_service_api_keys.rotate",
    "prompts.create",
    "prompts.read",
    "prompts.update",
    "prompts.delete",
    "prompts.list",
    "prompts.publish",
    "policies.create",
    "policies.read",
    "policies.update",
    "policies.delete",
    "policies.list",
    "workspace_service_api_keys.create",
    "workspace_service_api_keys.read",
    "workspace_service_api_keys.update",
    "workspace_service_api_keys.delete",
    "workspace_service_api_keys.list",
    "workspace_service_api_keys.rotate",
    "workspaces.create",
    "workspaces.read",
    "workspaces.update",
    "workspaces.delete",
    "workspaces.list",
];

pub fn is_known(scope: &str) -> bool {
    ALL.contains(&scope)
}

/// The scope that governs `action` on keys of `key_type` (`organisation-service` or
/// `workspace-service`).
pub fn for_key_type(key_type: &str, action: &str) -> String {
    let resource = if key_type.starts_with("organisation") {
        "organisation_service_api_keys"
    } else {
        "workspace_service_api_keys"
    };
    format!("{resource}.{action}")
}
