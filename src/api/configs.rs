use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// A saved routing config (the Portkey config JSON) and its current version.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Config {
    pub id: String,
    pub slug: String,
    pub name: String,
    #[schema(value_type = Object)]
    pub config: Value,
    pub is_default: bool,
    pub status: String,
    pub version_id: String,
    pub version: u32,
    pub created_at: String,
    pub last_updated_at: String,
    pub object: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreateConfig {
    pub name: String,
    #[schema(value_type = Object)]
    pub config: Value,
    #[serde(default, rename = "isDefault", alias = "is_default")]
    pub is_default: u8,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct UpdateConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub config: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ConfigCreated {
    pub id: String,
    pub slug: String,
    pub version_id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ConfigUpdated {
    pub version_id: String,
    pub version: u32,
}

/// One version of a config. As in Portkey, `config` is the JSON text of that version.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ConfigVersion {
    pub version_id: String,
    pub version: u32,
    pub slug: String,
    pub name: String,
    pub config: String,
    pub format: String,
    pub created_at: String,
    pub object: String,
}
