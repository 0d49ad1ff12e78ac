//! Model strings that name a provider: `@slug/model` (the model may contain `/`), Mastra's
//! `@slug@model`, and the `@cf/` and `@hf/` Workers AI ids, which are models, not slugs.

/// A model string split into the integration slug it names (if any) and the bare model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelRef<'a> {
    pub slug: Option<&'a str>,
    pub model: &'a str,
}

pub fn parse(model: &str) -> ModelRef<'_> {
    let plain = ModelRef { slug: None, model };
    let Some(rest) = model.strip_prefix('@') else {
        return plain;
    };
    if model.starts_with("@cf/") || model.starts_with("@hf/") {
        return plain;
    }
    // The `/` form first: Vertex model ids legitimately contain `@` (claude-3-5-sonnet@20240620).
    if let Some((slug, m)) = rest.split_once('/') {
        if !slug.is_empty() {
            return ModelRef {
                slug: Some(slug),
                model: m,
            };
        }
    }
    if let Some((slug, m)) = rest.split_once('@') {
        if !slug.is_empty() {
            return ModelRef {
                slug: Some(slug),
                model: m,
            };
        }
    }
    if rest.is_empty() || rest.contains('/') {
        return plain;
    }
    ModelRef {
        slug: Some(rest),
        model: "",
    }
}

/// The slug of an `@slug` provider reference (`x-portkey-provider`, a config's `provider`),
/// cut at the first `/`.
pub fn provider_slug(value: &str) -> Option<&str> {
    value
        .strip_prefix('@')
        .map(|s| s.split('/').next().unwrap_or(s))
        .filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r<'a>(slug: Option<&'a str>, model: &'a str) -> ModelRef<'a> {
        ModelRef { slug, model }
    }

    #[test]
    fn splits_slug_and_model() {
        assert_eq!(parse("gpt-4o"), r(None, "gpt-4o"));
        assert_eq!(parse("@openai-dev/gpt-4o"), r(Some("openai-dev"), "gpt-4o"));
        assert_eq!(
            parse("@openrouter/meta-llama/llama-3"),
            r(Some("openrouter"), "meta-llama/llama-3")
        );
        assert_eq!(parse("@openai-dev@gpt-4o"), r(Some("openai-dev"), "gpt-4o"));
        assert_eq!(
            parse("@vertex/claude-3-5-sonnet@20240620"),
            r(Some("vertex"), "claude-3-5-sonnet@20240620")
        );
        assert_eq!(parse("@cf/meta/llama-3"), r(None, "@cf/meta/llama-3"));
        assert_eq!(parse("@hf/thebloke/x"), r(None, "@hf/thebloke/x"));
        assert_eq!(parse("@only-slug"), r(Some("only-slug"), ""));
        assert_eq!(parse("@/x"), r(None, "@/x"));
        assert_eq!(parse("@"), r(None, "@"));
    }

    #[test]
    fn provider_slugs() {
        assert_eq!(provider_slug("@openai-dev"), Some("openai-dev"));
        assert_eq!(provider_slug("@openai-dev/gpt-4o"), Some("openai-dev"));
        assert_eq!(provider_slug("openai"), None);
        assert_eq!(provider_slug("@"), None);
    }
}
