pub mod analytics;
pub mod audit;
pub mod cache;
pub mod configs;
pub mod guardrails;
pub mod health;
pub mod integrations;
pub mod keys;
pub mod logs;
pub mod policies;
pub mod prompts;
pub mod traces;
pub mod workspaces;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The body of a successful delete.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Deleted {
    pub success: bool,
}

pub const DELETED: Deleted = Deleted { success: true };

/// Slugs: lower-case letters, digits, `-` and `_`, starting with a letter or digit, at most 64.
pub fn check_slug(what: &str, slug: &str) -> Result<(), super::error::ApiError> {
    let ok = !slug.is_empty()
        && slug.len() <= 64
        && slug.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && slug
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(super::error::ApiError::invalid(format!(
            "{what} {slug:?} is not a valid slug: use 1-64 lower-case letters, digits, '-' or '_', starting with a letter or digit"
        )))
    }
}

pub fn check_name(name: &str) -> Result<(), super::error::ApiError> {
    if name.trim().is_empty() {
        Err(super::error::ApiError::invalid("name must not be empty"))
    } else {
        Ok(())
    }
}
