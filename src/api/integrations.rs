use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::governance::{OwnedLimits, OwnedLimitsChange, RateLimit, UsageLimits};

/// A provider credential. The secret itself is never returned, only `masked_key`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Integration {
    pub id: String,
    pub slug: String,
    pub name: String,
    /// The provider slug, e.g. `openai` (Portkey calls it `ai_provider_id`).
    pub ai_provider_id: String,
    pub description: Option<String>,
    /// Non-secret provider settings, e.g. `custom_host`, `aws_region`, `resource_name`.
    #[schema(value_type = Object)]
    pub configurations: Map<String, Value>,
    /// The secret's first and last characters, e.g. `sk-…wxyz`; null when none is stored.
    pub masked_key: Option<String>,
    /// The integration's own budget; `status` is `exhausted` while it is used up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage_limits: Option<UsageLimits>,
    #[serde(default)]
    pub rate_limits: Vec<RateLimit>,
    /// Model patterns the integration may serve (`gpt-4o*`); absent: every model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_models: Option<Vec<String>>,
    pub status: String,
    pub created_at: String,
    pub last_updated_at: String,
    pub object: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct CreateIntegration {
    pub slug: String,
    pub ai_provider_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The provider's API key; stored encrypted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    #[schema(value_type = Object)]
    pub configurations: Map<String, Value>,
    #[serde(flatten)]
    pub limits: OwnedLimits,
}

/// Fields left out are unchanged. `configurations` keys are merged; a null value removes one.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct UpdateIntegration {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub configurations: Option<Map<String, Value>>,
    #[serde(flatten)]
    pub limits: OwnedLimitsChange,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct IntegrationCreated {
    pub id: String,
    pub slug: String,
}
