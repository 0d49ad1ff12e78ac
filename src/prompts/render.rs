//! A prompt version and a request's variables and parameters → the body of a chat completions
//! request (portkey-wire.md section 4). Each string content and text part is a Mustache
//! template; the template's parameters go under the request's own (the request wins), and the
//! template's `stream` is dropped.

use serde_json::{Map, Value};

use super::mustache::{self, PartialResolver, RenderErrors};
use crate::api::prompts::PromptTemplate;

/// `request` is the body of a render or completions call: `variables` and any parameters.
pub fn chat_body(
    template: &PromptTemplate,
    request: &Map<String, Value>,
    partials: PartialResolver,
) -> Result<Map<String, Value>, RenderErrors> {
    let no_variables = Value::Object(Map::new());
    let variables = request.get("variables").unwrap_or(&no_variables);
    if !variables.is_object() {
        return Err(RenderErrors(vec![
            "variables must be an object such as {\"name\": \"Ada\"}".into(),
        ]));
    }
    let mut errors = Vec::new();
    let messages: Vec<Value> = template
        .messages
        .iter()
        .map(|m| message(m, variables, partials, &mut errors))
        .collect();
    if !errors.is_empty() {
        let mut seen = std::collections::HashSet::new();
        errors.retain(|e| seen.insert(e.clone()));
        return Err(RenderErrors(errors));
    }
    let mut body = Map::new();
    if let Some(model) = &template.model {
        body.insert("model".into(), Value::String(model.clone()));
    }
    body.extend(
        template
            .parameters
            .iter()
            .filter(|(k, _)| *k != "stream")
            .map(|(k, v)| (k.clone(), v.clone())),
    );
    for (key, value) in [
        ("tools", &template.tools),
        ("tool_choice", &template.tool_choice),
    ] {
        if let Some(v) = value {
            body.insert(key.into(), v.clone());
        }
    }
    body.insert("messages".into(), Value::Array(messages));
    body.extend(
        request
            .iter()
            .filter(|(k, _)| *k != "variables")
            .map(|(k, v)| (k.clone(), v.clone())),
    );
    Ok(body)
}

fn message(
    m: &Value,
    variables: &Value,
    partials: PartialResolver,
    errors: &mut Vec<String>,
) -> Value {
    let mut m = m.clone();
    let mut render = |text: &mut String| match mustache::render(text, variables, partials) {
        Ok(out) => *text = out,
        Err(e) => errors.extend(e.0),
    };
    match m.get_mut("content") {
        Some(Value::String(text)) => render(text),
        Some(Value::Array(parts)) => {
            for part in parts {
                if part.get("type").and_then(Value::as_str) == Some("text") {
                    if let Some(Value::String(text)) = part.get_mut("text") {
                        render(text);
                    }
                }
            }
        }
        _ => {}
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn template() -> PromptTemplate {
        serde_json::from_value(json!({
            "model": "@openai-dev/gpt-4o-mini",
            "parameters": {"temperature": 0.2, "max_tokens": 100, "stream": true},
            "messages": [
                {"role": "system", "content": "You help {{team}}.{{>tone}}"},
                {"role": "user", "content": [{"type": "text", "text": "Q: {{question}}"},
                                             {"type": "image_url", "image_url": {"url": "{{x}}"}}]}
            ]
        }))
        .unwrap()
    }

    fn tone(name: &str, _: Option<u32>) -> Option<String> {
        (name == "tone").then(|| " Be \"brief\".".to_string())
    }

    #[test]
    fn variables_fill_the_messages_and_the_request_wins_over_parameters() {
        let request =
            json!({"variables": {"team": "support", "question": "a\nb"}, "max_tokens": 5});
        let body = chat_body(&template(), request.as_object().unwrap(), &tone).unwrap();
        assert_eq!(
            Value::Object(body),
            json!({
                "model": "@openai-dev/gpt-4o-mini", "temperature": 0.2, "max_tokens": 5,
                "messages": [
                    {"role": "system", "content": "You help support. Be \"brief\"."},
                    {"role": "user", "content": [{"type": "text", "text": "Q: a\nb"},
                                                 {"type": "image_url", "image_url": {"url": "{{x}}"}}]}
                ]
            })
        );
    }

    #[test]
    fn every_missing_variable_and_partial_is_named_once() {
        let no_partials = |_: &str, _: Option<u32>| None;
        let request = json!({"variables": {}});
        let errors =
            chat_body(&template(), request.as_object().unwrap(), &no_partials).unwrap_err();
        let text = errors.to_string();
        for name in ["team", "tone", "question"] {
            assert!(text.contains(name), "{text}");
        }
        let bad = json!({"variables": [1]});
        assert!(chat_body(&template(), bad.as_object().unwrap(), &tone).is_err());
    }
}
