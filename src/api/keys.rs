use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::governance::{OwnedLimits, OwnedLimitsChange, RateLimit, UsageLimits};

pub const TYPE_ORGANISATION: &str = "organisation-service";
pub const TYPE_WORKSPACE: &str = "workspace-service";

/// An API key as listed: the secret is masked.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ApiKey {
    pub id: String,
    /// Masked: the prefix and last four characters.
    pub key: String,
    pub name: String,
    pub description: Option<String>,
    /// `organisation-service` (admin) or `workspace-service`.
    #[serde(rename = "type")]
    pub key_type: String,
    pub workspace_id: Option<String>,
    pub status: String,
    pub scopes: Vec<String>,
    pub defaults: KeyDefaults,
    /// The key's own budget; `status` is `exhausted` while it is used up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage_limits: Option<UsageLimits>,
    #[serde(default)]
    pub rate_limits: Vec<RateLimit>,
    /// Model patterns the key may use (`@openai-dev/gpt-4o*`); absent: every model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_models: Option<Vec<String>>,
    pub creation_mode: String,
    pub expires_at: Option<String>,
    /// While a rotated-out secret still works, when it stops.
    pub key_transition_expires_at: Option<String>,
    pub created_at: String,
    pub last_updated_at: String,
    pub object: String,
}

/// Applied to every gateway request made with the key.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct KeyDefaults {
    /// A saved config's slug, used when the request names none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_id: Option<String>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    #[schema(value_type = Object)]
    pub metadata: Map<String, Value>,
    /// `false`: the request log keeps no request or response bodies for this key's requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_bodies: Option<bool>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct CreateApiKey {
    pub name: String,
    /// Defaults: every scope for an organisation key; `completions.write` and
    /// `prompts.render` for a workspace key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub defaults: Option<KeyDefaults>,
    /// RFC 3339 time after which the key stops working.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    #[serde(flatten)]
    pub limits: OwnedLimits,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct UpdateApiKey {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    /// Merged into the key's defaults: a `config_id` replaces it (`""` removes it), metadata
    /// keys are set (a null value removes one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub defaults: Option<KeyDefaults>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    #[serde(flatten)]
    pub limits: OwnedLimitsChange,
}

/// Returned once, at creation: the only time the secret is shown.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ApiKeyCreated {
    pub id: String,
    pub key: String,
    pub object: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct RotateApiKey {
    /// How long the old secret keeps working, in milliseconds (default 0: at once).
    #[serde(default)]
    pub key_transition_period_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ApiKeyRotated {
    pub id: String,
    pub key: String,
    pub key_transition_expires_at: Option<String>,
}
