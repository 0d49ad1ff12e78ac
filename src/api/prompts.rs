//! Versioned prompts and their labels, Portkey's paths and fields (portkey-wire.md section 6,
//! "Prompts"). A prompt's versions are never overwritten: an update adds one. One version is
//! published (the default); labels (`production`, `staging`, `development` and custom ones)
//! each point at one version of a prompt.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// What a version holds: Mustache-templated messages, the model and its parameters.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PromptTemplate {
    /// Chat messages (`system`, `user`, `assistant`), each `{role, content}`; string contents
    /// (and text parts) are Mustache templates.
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub messages: Vec<Value>,
    /// `@slug/model`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Request parameters (`temperature`, `max_tokens`, …); the request's own win.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    #[schema(value_type = Object)]
    pub parameters: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub tools: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub tool_choice: Option<Value>,
}

/// A prompt with the version asked for (the published one by default).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Prompt {
    pub id: String,
    /// `pp-…`.
    pub slug: String,
    pub name: String,
    pub collection_id: Option<String>,
    /// The published version's number.
    pub published_version: u32,
    /// The newest version's number.
    pub latest_version: u32,
    /// Label name → the version it points at.
    #[schema(value_type = Object)]
    pub labels: Map<String, Value>,
    /// The version shown: its number, id and template.
    pub prompt_version: u32,
    pub prompt_version_id: String,
    /// `published` when the version shown is the published one, else `draft`.
    pub prompt_version_status: String,
    #[serde(flatten)]
    pub template: PromptTemplate,
    pub created_at: String,
    pub last_updated_at: String,
    pub object: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PromptVersion {
    /// The version's id.
    pub id: String,
    pub prompt_id: String,
    pub version: u32,
    pub description: Option<String>,
    /// The labels pointing at this version.
    pub labels: Vec<String>,
    pub published: bool,
    #[serde(flatten)]
    pub template: PromptTemplate,
    pub created_at: String,
    pub object: String,
}

/// Portkey's way of writing a template, accepted on create and update: `string` is the chat
/// messages as JSON text, `virtual_key` the integration a bare `model` is served by.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PortkeyTemplate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub string: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub virtual_key: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct CreatePrompt {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collection_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_description: Option<String>,
    #[serde(flatten)]
    pub template: PromptTemplate,
    #[serde(flatten)]
    pub portkey: PortkeyTemplate,
}

/// A new version (never an overwrite) with this template; `name` and `collection_id` change
/// the prompt itself.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct UpdatePrompt {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collection_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_description: Option<String>,
    #[serde(flatten)]
    pub template: PromptTemplate,
    #[serde(flatten)]
    pub portkey: PortkeyTemplate,
}

/// A prompt's or a partial's new version.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PromptCreated {
    pub id: String,
    pub slug: String,
    pub version_id: String,
    /// The new version's number.
    pub version: u32,
    pub object: String,
}

/// A reusable piece of template text, included with `{{>slug}}` or `{{>slug@VERSION}}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Partial {
    pub id: String,
    /// `ppt-…`.
    pub slug: String,
    pub name: String,
    /// The text of the version shown (the published one unless another was asked for).
    pub string: String,
    pub version: u32,
    pub version_id: String,
    pub published_version: u32,
    pub latest_version: u32,
    pub description: Option<String>,
    pub created_at: String,
    pub last_updated_at: String,
    pub object: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct CreatePartial {
    pub name: String,
    pub string: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_description: Option<String>,
}

/// A new version of the partial with this text.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct UpdatePartial {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub string: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_description: Option<String>,
}

/// `PUT /v1/prompts/{id}/makeDefault`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MakeDefault {
    pub version: u32,
}

/// `PUT /v1/prompts/{id}/versions/{version_id}`: points a label at the version.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AssignLabel {
    /// A label's id or name.
    pub label_id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Label {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub color_code: Option<String>,
    pub created_at: String,
    pub last_updated_at: String,
    pub object: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct CreateLabel {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color_code: Option<String>,
}

/// A folder of prompts.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Collection {
    pub id: String,
    pub name: String,
    pub parent_collection_id: Option<String>,
    pub created_at: String,
    pub last_updated_at: String,
    pub object: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct CreateCollection {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_collection_id: Option<String>,
}

/// Fields left out are unchanged.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct UpdateLabel {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color_code: Option<String>,
}

/// Fields left out are unchanged.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct UpdateCollection {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_collection_id: Option<String>,
}

/// The labels every install has; they cannot be deleted.
pub const DEFAULT_LABELS: [&str; 3] = ["production", "staging", "development"];

/// How a request names a prompt: `ID`, `ID@VERSION`, `ID@latest` or `ID@LABEL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PromptRef<'a> {
    Published(&'a str),
    Version(&'a str, u32),
    Latest(&'a str),
    Label(&'a str, &'a str),
}

impl<'a> PromptRef<'a> {
    /// The prompt's id, slug or name, without the version or label.
    pub fn id(&self) -> &'a str {
        match *self {
            PromptRef::Published(id)
            | PromptRef::Version(id, _)
            | PromptRef::Latest(id)
            | PromptRef::Label(id, _) => id,
        }
    }

    pub fn parse(text: &'a str) -> PromptRef<'a> {
        match text.rsplit_once('@') {
            None => PromptRef::Published(text),
            Some((id, "latest")) => PromptRef::Latest(id),
            Some((id, v)) => match v.parse() {
                Ok(n) => PromptRef::Version(id, n),
                Err(_) => PromptRef::Label(id, v),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_name_a_version_a_label_or_the_published_one() {
        assert_eq!(PromptRef::parse("pp-a"), PromptRef::Published("pp-a"));
        assert_eq!(PromptRef::parse("pp-a@12"), PromptRef::Version("pp-a", 12));
        assert_eq!(PromptRef::parse("pp-a@latest"), PromptRef::Latest("pp-a"));
        assert_eq!(
            PromptRef::parse("pp-a@staging"),
            PromptRef::Label("pp-a", "staging")
        );
    }
}
