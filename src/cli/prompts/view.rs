//! How prompts, versions and partials look in a table.

use serde_json::Value;

use crate::api::prompts::{Partial, Prompt, PromptCreated, PromptTemplate, PromptVersion};
use crate::output::{cell, Fields, Row};

/// Label names and the versions they point at: `production=2, staging=3`.
fn labels(prompt: &Prompt) -> String {
    let text: Vec<String> = prompt
        .labels
        .iter()
        .map(|(name, v)| {
            format!(
                "{name}={}",
                v.as_u64().map_or(v.to_string(), |n| n.to_string())
            )
        })
        .collect();
    if text.is_empty() {
        "-".into()
    } else {
        text.join(", ")
    }
}

/// One `role: content` paragraph per message.
fn messages(template: &PromptTemplate) -> String {
    template
        .messages
        .iter()
        .map(|m| {
            let content = match &m["content"] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            format!("{}: {content}", m["role"].as_str().unwrap_or("?"))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn template_fields(t: &PromptTemplate) -> Vec<(&'static str, String)> {
    vec![
        ("model", cell(t.model.as_deref())),
        (
            "parameters",
            Value::Object(t.parameters.clone()).to_string(),
        ),
        (
            "tools",
            t.tools.as_ref().map_or("-".into(), Value::to_string),
        ),
        ("messages", messages(t)),
    ]
}

impl Row for Prompt {
    const HEADERS: &'static [&'static str] =
        &["SLUG", "NAME", "PUBLISHED", "LATEST", "LABELS", "UPDATED"];
    fn cells(&self) -> Vec<String> {
        vec![
            self.slug.clone(),
            self.name.clone(),
            self.published_version.to_string(),
            self.latest_version.to_string(),
            labels(self),
            self.last_updated_at.clone(),
        ]
    }
}

impl Fields for Prompt {
    fn fields(&self) -> Vec<(&'static str, String)> {
        let mut fields = vec![
            ("id", self.id.clone()),
            ("slug", self.slug.clone()),
            ("name", self.name.clone()),
            (
                "version",
                format!("{} ({})", self.prompt_version, self.prompt_version_status),
            ),
            ("published version", self.published_version.to_string()),
            ("latest version", self.latest_version.to_string()),
            ("labels", labels(self)),
        ];
        fields.extend(template_fields(&self.template));
        fields.push(("last_updated_at", self.last_updated_at.clone()));
        fields
    }
}

impl Row for PromptVersion {
    const HEADERS: &'static [&'static str] =
        &["VERSION", "PUBLISHED", "LABELS", "DESCRIPTION", "CREATED"];
    fn cells(&self) -> Vec<String> {
        vec![
            self.version.to_string(),
            if self.published { "yes" } else { "-" }.into(),
            cell(
                Some(&self.labels.join(", "))
                    .filter(|l| !l.is_empty())
                    .map(String::as_str),
            ),
            cell(self.description.as_deref()),
            self.created_at.clone(),
        ]
    }
}

impl Fields for PromptVersion {
    fn fields(&self) -> Vec<(&'static str, String)> {
        let mut fields = vec![
            ("prompt", self.prompt_id.clone()),
            ("version", self.version.to_string()),
            ("published", self.published.to_string()),
            ("labels", self.labels.join(", ")),
            ("description", cell(self.description.as_deref())),
        ];
        fields.extend(template_fields(&self.template));
        fields
    }
}

impl Fields for PromptCreated {
    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("id", self.id.clone()),
            ("slug", self.slug.clone()),
            ("version", self.version.to_string()),
            ("version_id", self.version_id.clone()),
        ]
    }
}

impl Row for Partial {
    const HEADERS: &'static [&'static str] = &["SLUG", "NAME", "PUBLISHED", "LATEST", "UPDATED"];
    fn cells(&self) -> Vec<String> {
        vec![
            self.slug.clone(),
            self.name.clone(),
            self.published_version.to_string(),
            self.latest_version.to_string(),
            self.last_updated_at.clone(),
        ]
    }
}

impl Fields for Partial {
    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("id", self.id.clone()),
            ("slug", self.slug.clone()),
            ("name", self.name.clone()),
            ("version", self.version.to_string()),
            ("published version", self.published_version.to_string()),
            ("latest version", self.latest_version.to_string()),
            ("description", cell(self.description.as_deref())),
            ("string", self.string.clone()),
        ]
    }
}
