use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

use super::governance::{OwnedLimits, OwnedLimitsChange, RateLimit, UsageLimits};

/// The workspace every install has, made by the migration that added workspaces. Workspace keys
/// created without a `workspace_id` belong to it; it cannot be deleted.
pub const DEFAULT_WORKSPACE_ID: &str = "00000000-0000-7000-8000-000000000000";
pub const DEFAULT_WORKSPACE_SLUG: &str = "ws-default";

/// A group of workspace keys sharing defaults that apply to every request made with them.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Workspace {
    pub id: String,
    /// `ws-…`, generated from the name when not given.
    pub slug: String,
    pub name: String,
    pub description: Option<String>,
    pub defaults: WorkspaceDefaults,
    /// Model patterns this workspace's keys may use, e.g. `@openai-dev/gpt-4o*`; null: every
    /// model.
    pub allowed_models: Option<Vec<String>>,
    /// The workspace's own budget, over all its keys' requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage_limits: Option<UsageLimits>,
    #[serde(default)]
    pub rate_limits: Vec<RateLimit>,
    /// `active`, or `exhausted` while its budget is used up.
    pub status: String,
    pub created_at: String,
    pub last_updated_at: String,
    pub object: String,
}

/// Applied to every gateway request made with one of the workspace's keys. Its metadata wins
/// over the key's and the request's; its config applies when neither the request nor the key
/// names one.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WorkspaceDefaults {
    /// A saved config's slug.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_id: Option<String>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    #[schema(value_type = Object)]
    pub metadata: Map<String, Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct CreateWorkspace {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slug: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub defaults: Option<WorkspaceDefaults>,
    /// Its budget, rate limits and model allow-list.
    #[serde(flatten)]
    pub limits: OwnedLimits,
}

/// Fields left out are unchanged. `defaults` are merged as a key's are: a `config_id` replaces
/// the workspace's (`""` removes it), metadata keys are set (a null value removes one).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct UpdateWorkspace {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub defaults: Option<WorkspaceDefaults>,
    #[serde(flatten)]
    pub limits: OwnedLimitsChange,
}

/// `GET /v1/admin/workspaces` filters.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WorkspaceFilter {
    /// Names containing this text, any case.
    #[serde(default)]
    pub name: Option<String>,
    /// The workspace with exactly this name.
    #[serde(default)]
    pub exact_name: Option<String>,
}
