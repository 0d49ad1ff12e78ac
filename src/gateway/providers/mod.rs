//! The one list of providers tollgate supports. Everything that names a provider (integration
//! create, config validation, the gateway's adapters) checks against this table.

pub mod adapter;
mod anthropic;
mod bedrock;
mod cohere;
mod gemini;
mod openai;
mod translation;

use adapter::Adapter;

/// How a provider speaks on the wire; one adapter per variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireFormat {
    OpenAi,
    AzureOpenAi,
    Anthropic,
    Gemini,
    VertexAi,
    Bedrock,
    Cohere,
}

#[derive(Debug)]
pub struct Provider {
    /// Portkey's slug for the provider, as used in `provider` fields and `--provider`.
    pub slug: &'static str,
    pub name: &'static str,
    pub wire: WireFormat,
    /// Empty where the URL is built from the integration's settings (Azure, Vertex, Bedrock).
    pub base_url: &'static str,
    pub needs_api_key: bool,
}

const fn p(
    slug: &'static str,
    name: &'static str,
    wire: WireFormat,
    base_url: &'static str,
) -> Provider {
    Provider {
        slug,
        name,
        wire,
        base_url,
        needs_api_key: true,
    }
}

use WireFormat::*;

pub const PROVIDERS: &[Provider] = &[
    p("openai", "OpenAI", OpenAi, "https://api.openai.com/v1"),
    p("azure-openai", "Azure OpenAI", AzureOpenAi, ""),
    p(
        "anthropic",
        "Anthropic",
        Anthropic,
        "https://api.anthropic.com/v1",
    ),
    p(
        "google",
        "Google Gemini",
        Gemini,
        "https://generativelanguage.googleapis.com/v1beta",
    ),
    p("vertex-ai", "Google Vertex AI", VertexAi, ""),
    p("bedrock", "AWS Bedrock", Bedrock, ""),
    p(
        "mistral-ai",
        "Mistral AI",
        OpenAi,
        "https://api.mistral.ai/v1",
    ),
    p("cohere", "Cohere", Cohere, "https://api.cohere.com"),
    p("groq", "Groq", OpenAi, "https://api.groq.com/openai/v1"),
    p(
        "together-ai",
        "Together AI",
        OpenAi,
        "https://api.together.xyz/v1",
    ),
    p(
        "fireworks-ai",
        "Fireworks AI",
        OpenAi,
        "https://api.fireworks.ai/inference/v1",
    ),
    p(
        "deepseek",
        "DeepSeek",
        OpenAi,
        "https://api.deepseek.com/v1",
    ),
    p("x-ai", "xAI", OpenAi, "https://api.x.ai/v1"),
    p(
        "openrouter",
        "OpenRouter",
        OpenAi,
        "https://openrouter.ai/api/v1",
    ),
    p(
        "perplexity-ai",
        "Perplexity",
        OpenAi,
        "https://api.perplexity.ai",
    ),
    p(
        "deepinfra",
        "DeepInfra",
        OpenAi,
        "https://api.deepinfra.com/v1/openai",
    ),
    p("cerebras", "Cerebras", OpenAi, "https://api.cerebras.ai/v1"),
    Provider {
        needs_api_key: false,
        ..p("ollama", "Ollama", OpenAi, "http://localhost:11434/v1")
    },
    p(
        "sambanova",
        "SambaNova",
        OpenAi,
        "https://api.sambanova.ai/v1",
    ),
    p(
        "nebius",
        "Nebius AI Studio",
        OpenAi,
        "https://api.studio.nebius.ai/v1",
    ),
    p(
        "hyperbolic",
        "Hyperbolic",
        OpenAi,
        "https://api.hyperbolic.xyz/v1",
    ),
    p("lambda", "Lambda", OpenAi, "https://api.lambda.ai/v1"),
    p(
        "moonshot",
        "Moonshot AI",
        OpenAi,
        "https://api.moonshot.ai/v1",
    ),
    p(
        "novita-ai",
        "Novita AI",
        OpenAi,
        "https://api.novita.ai/v3/openai",
    ),
];

/// The adapter that speaks `wire`.
pub fn adapter(wire: WireFormat) -> &'static dyn Adapter {
    match wire {
        WireFormat::OpenAi | WireFormat::AzureOpenAi => &openai::OpenAi,
        WireFormat::Anthropic => &anthropic::Anthropic,
        WireFormat::Gemini | WireFormat::VertexAi => &gemini::Gemini,
        WireFormat::Bedrock => &bedrock::Bedrock,
        WireFormat::Cohere => &cohere::Cohere,
    }
}

pub fn find(slug: &str) -> Option<&'static Provider> {
    PROVIDERS.iter().find(|p| p.slug == slug)
}

/// Comma-separated slugs, for error messages that list the valid names.
pub fn slugs() -> String {
    PROVIDERS
        .iter()
        .map(|p| p.slug)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_unique_and_found() {
        for (i, a) in PROVIDERS.iter().enumerate() {
            assert!(
                PROVIDERS[i + 1..].iter().all(|b| b.slug != a.slug),
                "{}",
                a.slug
            );
            assert_eq!(find(a.slug).unwrap().slug, a.slug);
        }
        assert!(find("openai-dev").is_none());
        assert!(slugs().starts_with("openai, azure-openai,"));
    }
}
