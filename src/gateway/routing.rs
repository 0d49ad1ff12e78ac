//! A routing config as the gateway runs it: the validated JSON turned into a tree of nodes
//! (camelCase keys normalised), with Portkey's inheritance from parent to child.

use serde_json::{Map, Value};

use super::config::check::snake_case;
use super::hook_set::HookSet;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Single,
    Fallback,
    Loadbalance,
    Conditional,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Retry {
    pub attempts: u32,
    /// `None`: Portkey's default `[429, 500, 502, 503, 504]`.
    pub on_status_codes: Option<Vec<u16>>,
    pub use_retry_after_header: bool,
}

pub const DEFAULT_RETRY_CODES: [u16; 5] = [429, 500, 502, 503, 504];

impl Retry {
    pub fn retries_on(&self, status: u16) -> bool {
        match &self.on_status_codes {
            Some(codes) => codes.contains(&status),
            None => DEFAULT_RETRY_CODES.contains(&status),
        }
    }
}

/// A target's `cache`: answers kept for `max_age` seconds, found by exact match and, in the
/// semantic mode, by a prompt embedding's similarity.
#[derive(Debug, Clone, PartialEq)]
pub struct Cache {
    pub max_age: u64,
    pub semantic: Option<Semantic>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Semantic {
    /// `@integration-slug/model`, called through the gateway itself.
    pub embedding_model: String,
    /// The least cosine similarity that counts as the same question.
    pub threshold: f64,
}

/// When a cache config gives no `max_age`: seven days.
pub const DEFAULT_CACHE_MAX_AGE: u64 = 7 * 24 * 3600;
pub const DEFAULT_SEMANTIC_THRESHOLD: f64 = 0.95;

/// What a node passes down to its targets (Portkey's `tryTargetsRecursively`): override params
/// merge shallowly (child wins); retry and cache are replaced when the child has one; the others apply
/// only where the child sets nothing.
#[derive(Debug, Clone, Default)]
pub struct Inherited {
    pub override_params: Map<String, Value>,
    pub retry: Option<Retry>,
    pub cache: Option<Cache>,
    pub request_timeout: Option<u64>,
    pub custom_host: Option<String>,
    pub forward_headers: Option<Vec<String>>,
    pub hooks: HookSet,
}

#[derive(Debug, Clone, Default)]
pub struct Node {
    pub mode: Option<Mode>,
    pub on_status_codes: Option<Vec<u16>>,
    pub conditions: Vec<(Value, String)>,
    pub default: Option<String>,
    pub targets: Vec<Node>,
    pub name: Option<String>,
    pub weight: f64,
    pub provider: Option<String>,
    pub api_key: Option<String>,
    pub virtual_key: Option<String>,
    pub override_params: Map<String, Value>,
    pub default_params: Map<String, Value>,
    pub drop_params: Vec<String>,
    pub custom_host: Option<String>,
    pub forward_headers: Option<Vec<String>>,
    pub request_timeout: Option<u64>,
    pub retry: Option<Retry>,
    pub cache: Option<Cache>,
    /// Provider-specific fields (`aws_region`, `vertex_project_id`, `resource_name`, ...).
    pub settings: Map<String, Value>,
    pub hooks: HookSet,
}

const SETTING_PREFIXES: &[&str] = &["aws_", "vertex_", "azure_", "openai_", "anthropic_"];
const SETTINGS: &[&str] = &[
    "resource_name",
    "deployment_id",
    "api_version",
    "deployments",
];

fn u16s(v: &Value) -> Option<Vec<u16>> {
    v.as_array().map(|a| {
        a.iter()
            .filter_map(Value::as_u64)
            .filter_map(|n| u16::try_from(n).ok())
            .collect()
    })
}

fn strings(v: &Value) -> Option<Vec<String>> {
    v.as_array().map(|a| {
        a.iter()
            .filter_map(Value::as_str)
            .map(String::from)
            .collect()
    })
}

fn string(v: &Value) -> Option<String> {
    v.as_str().map(String::from)
}

fn object(v: &Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

/// A field of a config object, by its snake_case name, in whichever case it was written.
fn field<'v>(obj: &'v Map<String, Value>, name: &str) -> Option<&'v Value> {
    obj.iter()
        .find(|(key, _)| snake_case(key) == name)
        .map(|(_, v)| v)
}

fn cache(v: &Value) -> Option<Cache> {
    let obj = v.as_object()?;
    let get = |k: &str| field(obj, k);
    let semantic = (get("mode")?.as_str()? == "semantic").then(|| Semantic {
        embedding_model: get("embedding_model").and_then(string).unwrap_or_default(),
        threshold: get("threshold")
            .and_then(Value::as_f64)
            .unwrap_or(DEFAULT_SEMANTIC_THRESHOLD),
    });
    Some(Cache {
        max_age: get("max_age")
            .and_then(Value::as_u64)
            .unwrap_or(DEFAULT_CACHE_MAX_AGE),
        semantic,
    })
}

fn retry(v: &Value) -> Option<Retry> {
    let obj = v.as_object()?;
    let get = |k: &str| field(obj, k);
    Some(Retry {
        attempts: get("attempts").and_then(Value::as_u64).unwrap_or(0) as u32,
        on_status_codes: get("on_status_codes").and_then(u16s),
        use_retry_after_header: get("use_retry_after_header")
            .or_else(|| get("use_retry_after_headers"))
            .and_then(Value::as_bool)
            .unwrap_or(false),
    })
}

impl Node {
    /// Builds the tree from a config that passed `config::validate`.
    pub fn parse(config: &Value) -> Node {
        let mut node = Node {
            weight: 1.0,
            ..Node::default()
        };
        let Some(obj) = config.as_object() else {
            return node;
        };
        for (key, value) in obj {
            let key = snake_case(key);
            match key.as_str() {
                "strategy" => node.strategy(value),
                "targets" => {
                    node.targets = value
                        .as_array()
                        .map(|t| t.iter().map(Node::parse).collect())
                        .unwrap_or_default()
                }
                "name" => node.name = string(value),
                "weight" => node.weight = value.as_f64().unwrap_or(1.0),
                "provider" => node.provider = string(value),
                "api_key" => node.api_key = string(value),
                "virtual_key" => node.virtual_key = string(value),
                "override_params" => node.override_params = object(value),
                "default_params" => node.default_params = object(value),
                "drop_params" => node.drop_params = strings(value).unwrap_or_default(),
                "custom_host" => node.custom_host = string(value),
                "forward_headers" => node.forward_headers = strings(value),
                "request_timeout" => node.request_timeout = value.as_u64(),
                "retry" => node.retry = retry(value),
                "cache" => node.cache = cache(value),
                k if node.hooks.read(k, value) => {}
                k if SETTINGS.contains(&k) || SETTING_PREFIXES.iter().any(|p| k.starts_with(p)) => {
                    node.settings.insert(k.to_string(), value.clone());
                }
                _ => {}
            }
        }
        node
    }

    fn strategy(&mut self, value: &Value) {
        let Some(obj) = value.as_object() else {
            return;
        };
        for (key, value) in obj {
            match snake_case(key).as_str() {
                "mode" => {
                    self.mode = match value.as_str() {
                        Some("single") => Some(Mode::Single),
                        Some("fallback") => Some(Mode::Fallback),
                        Some("loadbalance") => Some(Mode::Loadbalance),
                        Some("conditional") => Some(Mode::Conditional),
                        _ => None,
                    }
                }
                "on_status_codes" => self.on_status_codes = u16s(value),
                "default" => self.default = string(value),
                "conditions" => {
                    self.conditions = value
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|c| {
                            Some((
                                c.get("query")?.clone(),
                                c.get("then")?.as_str()?.to_string(),
                            ))
                        })
                        .collect()
                }
                _ => {}
            }
        }
    }

    /// What this node's targets inherit, given what it inherited itself.
    pub fn inherit(&self, parent: &Inherited) -> Inherited {
        let mut override_params = parent.override_params.clone();
        override_params.extend(self.override_params.clone());
        Inherited {
            override_params,
            retry: self.retry.clone().or_else(|| parent.retry.clone()),
            cache: self.cache.clone().or_else(|| parent.cache.clone()),
            request_timeout: self.request_timeout.or(parent.request_timeout),
            custom_host: self
                .custom_host
                .clone()
                .or_else(|| parent.custom_host.clone()),
            forward_headers: self
                .forward_headers
                .clone()
                .or_else(|| parent.forward_headers.clone()),
            hooks: self.hooks.inherit(&parent.hooks),
        }
    }

    /// Weighted pick for loadbalance: weights are relative, 0 gets no traffic. `roll` is
    /// uniform in [0, 1).
    pub fn pick_weighted(&self, roll: f64) -> Option<usize> {
        let total: f64 = self.targets.iter().map(|t| t.weight.max(0.0)).sum();
        if total <= 0.0 {
            return None;
        }
        let mut point = roll * total;
        for (i, t) in self.targets.iter().enumerate() {
            let w = t.weight.max(0.0);
            if point < w {
                return Some(i);
            }
            point -= w;
        }
        self.targets.iter().rposition(|t| t.weight > 0.0)
    }

    /// The slugs of the saved guardrails this node and its targets name, each once.
    pub fn saved_guardrails(&self) -> Vec<String> {
        let mut slugs: Vec<String> = self.hooks.saved().map(String::from).collect();
        for t in &self.targets {
            slugs.extend(t.saved_guardrails());
        }
        slugs.sort();
        slugs.dedup();
        slugs
    }

    pub fn target_named(&self, name: &str) -> Option<usize> {
        self.targets
            .iter()
            .position(|t| t.name.as_deref() == Some(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_nested_configs_in_either_case() {
        let node = Node::parse(&json!({
            "strategy": {"mode": "fallback", "onStatusCodes": [429, 503]},
            "retry": {"attempts": 2, "use_retry_after_headers": true},
            "requestTimeout": 1500,
            "overrideParams": {"temperature": 0.2},
            "targets": [
                {"provider": "@a", "weight": 0.7, "aws_region": "eu-west-1"},
                {"strategy": {"mode": "loadbalance"}, "targets": [{"provider": "@b"}]}
            ]
        }));
        assert_eq!(node.mode, Some(Mode::Fallback));
        assert_eq!(node.on_status_codes, Some(vec![429, 503]));
        assert_eq!(
            node.retry,
            Some(Retry {
                attempts: 2,
                on_status_codes: None,
                use_retry_after_header: true
            })
        );
        assert_eq!(node.request_timeout, Some(1500));
        assert_eq!(node.targets[0].weight, 0.7);
        assert_eq!(node.targets[0].settings["aws_region"], "eu-west-1");
        assert_eq!(node.targets[1].targets[0].provider.as_deref(), Some("@b"));
        assert_eq!(node.targets[1].weight, 1.0);
    }

    #[test]
    fn inheritance_follows_portkey() {
        let parent = Node::parse(&json!({
            "retry": {"attempts": 3},
            "request_timeout": 100,
            "override_params": {"model": "a", "temperature": 1},
            "strategy": {"mode": "single"}, "targets": [{}]
        }));
        let child = Node::parse(&json!({
            "override_params": {"model": "b"},
            "request_timeout": 50,
            "custom_host": "http://h"
        }));
        let inherited = child.inherit(&parent.inherit(&Inherited::default()));
        assert_eq!(
            inherited.override_params,
            json!({"model": "b", "temperature": 1})
                .as_object()
                .unwrap()
                .clone()
        );
        assert_eq!(inherited.retry.unwrap().attempts, 3);
        assert_eq!(inherited.request_timeout, Some(50));
        assert_eq!(inherited.custom_host.as_deref(), Some("http://h"));
    }

    #[test]
    fn a_child_cache_replaces_the_parents_wholesale() {
        let parent = Node::parse(&json!({
            "cache": {"mode": "semantic", "maxAge": 60, "embeddingModel": "@e/m"},
            "strategy": {"mode": "single"}, "targets": [{}]
        }));
        let inherited = parent.inherit(&Inherited::default());
        assert_eq!(
            inherited.cache,
            Some(Cache {
                max_age: 60,
                semantic: Some(Semantic {
                    embedding_model: "@e/m".into(),
                    threshold: DEFAULT_SEMANTIC_THRESHOLD
                })
            })
        );
        let child = Node::parse(&json!({"cache": {"mode": "simple"}}));
        assert_eq!(
            child.inherit(&inherited).cache,
            Some(Cache {
                max_age: DEFAULT_CACHE_MAX_AGE,
                semantic: None
            })
        );
        assert_eq!(
            Node::parse(&json!({})).inherit(&inherited).cache,
            inherited.cache
        );
    }

    #[test]
    fn weighted_pick_and_names() {
        let node = Node::parse(&json!({
            "strategy": {"mode": "loadbalance"},
            "targets": [{"name": "a", "weight": 3}, {"name": "z", "weight": 0}, {"name": "b", "weight": 1}]
        }));
        assert_eq!(node.pick_weighted(0.0), Some(0));
        assert_eq!(node.pick_weighted(0.74), Some(0));
        assert_eq!(node.pick_weighted(0.76), Some(2));
        assert_eq!(node.pick_weighted(0.999_999), Some(2));
        assert_eq!(node.target_named("b"), Some(2));
        let zero =
            Node::parse(&json!({"strategy": {"mode": "loadbalance"}, "targets": [{"weight": 0}]}));
        assert_eq!(zero.pick_weighted(0.5), None);
    }
}
