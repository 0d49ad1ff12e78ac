//! What every request shares. Hot objects (keys, integrations, configs) live in memory and are
//! reloaded after each admin write, on every node (server/cluster.rs), so a gateway request
//! never waits on the database.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use serde_json::{Map, Value};

use super::auth::KeyIndex;
use super::cluster::Cluster;
use super::prompt_library::Library;
use crate::cache::{Cache, Write as CacheWrite};
use crate::gateway::providers::{self, Provider};
use crate::gateway::routing::Node;
use crate::governance::{Event, Governor};
use crate::guardrails::Hook;
use crate::observe::metrics::Metrics;
use crate::observe::otlp::{OtlpConfig, OtlpExporter};
use crate::observe::pricing::{self, Price};
use crate::observe::recorder::{Limit as RecordLimit, Recorder};
use crate::store::{Store, StoreResult};
use tokio::sync::mpsc::UnboundedReceiver;

/// An integration as the gateway uses it: the provider, its decrypted key, its settings.
pub struct IntegrationEntry {
    pub provider: &'static Provider,
    pub secret: Option<String>,
    /// Shared with every request that uses the integration, so none copies it.
    pub configurations: Arc<Map<String, Value>>,
    /// `configurations.pricing`, read once.
    pub prices: HashMap<String, Price>,
    /// Model patterns the integration may serve; `None`: every model.
    pub allowed_models: Option<Vec<String>>,
}

/// A workspace as the gateway uses it: what its keys' requests get.
pub struct WorkspaceEntry {
    pub slug: String,
    /// Wins over the key's and the request's metadata.
    pub metadata: Map<String, Value>,
    /// A saved config's slug, used when neither the request nor the key names a config.
    pub config_id: Option<String>,
    /// Model patterns such as `@openai-dev/gpt-4o*`; `None`: every model.
    pub allowed_models: Option<Vec<String>>,
}

/// Tunables of the gateway; the defaults are Portkey's.
#[derive(Debug, Clone)]
pub struct GatewaySettings {
    /// The first retry waits about this long, doubling each time.
    pub retry_base_ms: u64,
    /// Seeds load balancing, so a test can check proportions exactly.
    pub lb_seed: Option<u64>,
    /// Whether request records keep request and response bodies (a key can turn it off).
    pub log_bodies: bool,
    /// Where budget alerts are posted.
    pub alert_webhook: Option<String>,
    /// The most the response cache holds in memory, in bytes.
    pub cache_bytes: usize,
    /// The most request records held in memory while the store refuses them.
    pub record_queue: RecordLimit,
}

impl Default for GatewaySettings {
    fn default() -> Self {
        GatewaySettings {
            retry_base_ms: 1000,
            lb_seed: None,
            log_bodies: true,
            alert_webhook: None,
            cache_bytes: (crate::cache::DEFAULT_SIZE_MB * 1024 * 1024) as usize,
            record_queue: RecordLimit::default(),
        }
    }
}

pub struct AppState {
    pub store: Store,
    pub keys: KeyIndex,
    pub integrations: RwLock<HashMap<String, Arc<IntegrationEntry>>>,
    pub configs: RwLock<HashMap<String, Arc<Node>>>,
    /// Saved guardrails by slug, compiled.
    pub guardrails: RwLock<HashMap<String, Arc<Hook>>>,
    /// By workspace id.
    pub workspaces: RwLock<HashMap<String, Arc<WorkspaceEntry>>>,
    pub http: reqwest::Client,
    pub settings: GatewaySettings,
    pub lb_rng: Option<std::sync::Mutex<rand::rngs::StdRng>>,
    /// Vertex AI access tokens minted from service-account keys.
    pub google_tokens: super::gateway::GoogleTokens,
    pub recorder: Arc<Recorder>,
    pub governor: Arc<Governor>,
    /// Prompts and partials, for rendering.
    pub library: RwLock<Arc<Library>>,
    /// Budget events, until the server's delivery task takes them.
    pub governor_events: std::sync::Mutex<Option<UnboundedReceiver<Event>>>,
    pub cache: Arc<Cache>,
    /// The cache's writes, until the server's writer task takes them.
    pub cache_writes: std::sync::Mutex<Option<UnboundedReceiver<CacheWrite>>>,
    /// Turns true when the server starts shutting down, so endless streams (log tails) end.
    pub closing: tokio::sync::watch::Sender<bool>,
    /// On Postgres: how this node keeps in step with the others sharing the database.
    pub cluster: Option<Cluster>,
}

impl AppState {
    /// Must be called inside a tokio runtime (the OTLP exporter spawns its task).
    pub fn new(
        store: Store,
        settings: GatewaySettings,
        otlp: Option<OtlpConfig>,
    ) -> StoreResult<AppState> {
        use rand::SeedableRng;
        let http = reqwest::Client::builder()
            .user_agent(concat!("tollgate/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(std::time::Duration::from_secs(10))
            .pool_max_idle_per_host(256)
            .tcp_nodelay(true)
            .build()
            .map_err(|e| crate::store::StoreError::Other(format!("HTTP client: {e}")))?;
        let metrics = Arc::new(Metrics::new());
        let exporter = otlp.map(|c| OtlpExporter::start(c, http.clone(), metrics.clone()));
        let recorder = Arc::new(Recorder::start(
            &store,
            metrics,
            exporter,
            settings.record_queue,
        )?);
        let (events, governor_events) = tokio::sync::mpsc::unbounded_channel();
        let (cache, cache_writes) = Cache::new(settings.cache_bytes);
        // Listening before the first load, so no change made meanwhile is missed.
        let cluster = store.listener()?.map(Cluster::new);
        let shared_counters = store.shared_counters()?;
        let state = AppState {
            store,
            keys: KeyIndex::default(),
            integrations: RwLock::default(),
            configs: RwLock::default(),
            guardrails: RwLock::default(),
            workspaces: RwLock::default(),
            http,
            lb_rng: settings
                .lb_seed
                .map(|s| std::sync::Mutex::new(rand::rngs::StdRng::seed_from_u64(s))),
            settings,
            google_tokens: Default::default(),
            recorder,
            governor: Arc::new(Governor::new(Some(events), shared_counters)),
            library: RwLock::default(),
            governor_events: std::sync::Mutex::new(Some(governor_events)),
            cache: Arc::new(cache),
            cache_writes: std::sync::Mutex::new(Some(cache_writes)),
            closing: tokio::sync::watch::Sender::new(false),
            cluster,
        };
        state.reload_all()?;
        Ok(state)
    }

    /// Reads everything held in memory from the store again.
    pub fn reload_all(&self) -> StoreResult<()> {
        self.reload_keys()?;
        self.reload_integrations()?;
        self.reload_configs()?;
        self.reload_guardrails()?;
        self.reload_policies()?;
        self.reload_workspaces()?;
        self.reload_library()?;
        self.reload_cache()
    }

    /// Fills the response cache from the store's copy.
    pub fn reload_cache(&self) -> StoreResult<()> {
        let left_out = self
            .cache
            .load(self.store.cache_entries(crate::observe::record::now_ms())?);
        if !left_out.is_empty() {
            self.store
                .apply_cache_writes(&[CacheWrite::Delete(left_out)])?;
        }
        Ok(())
    }

    /// Refreshes the in-memory key index after a write to the keys table.
    pub fn reload_keys(&self) -> StoreResult<()> {
        self.keys.replace(self.store.key_records()?);
        Ok(())
    }

    pub fn reload_integrations(&self) -> StoreResult<()> {
        let map = self
            .store
            .integration_entries()?
            .into_iter()
            .filter_map(|(i, secret)| {
                let provider = providers::find(&i.ai_provider_id)?;
                Some((
                    i.slug.clone(),
                    Arc::new(IntegrationEntry {
                        provider,
                        secret,
                        prices: pricing::parse_overrides(&i.configurations).unwrap_or_default(),
                        allowed_models: i.allowed_models.clone(),
                        configurations: Arc::new(i.configurations),
                    }),
                ))
            })
            .collect();
        *self.integrations.write().unwrap_or_else(|e| e.into_inner()) = map;
        Ok(())
    }

    pub fn reload_library(&self) -> StoreResult<()> {
        let library = Arc::new(Library::load(&self.store)?);
        *self.library.write().unwrap_or_else(|e| e.into_inner()) = library;
        Ok(())
    }

    pub fn library(&self) -> Arc<Library> {
        self.library
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn reload_configs(&self) -> StoreResult<()> {
        let map = self
            .store
            .all_configs()?
            .into_iter()
            .map(|c| (c.slug, Arc::new(Node::parse(&c.config))))
            .collect();
        *self.configs.write().unwrap_or_else(|e| e.into_inner()) = map;
        Ok(())
    }

    pub fn reload_guardrails(&self) -> StoreResult<()> {
        let map = self
            .store
            .all_guardrails()?
            .into_iter()
            .filter_map(|g| {
                let hook = Hook::from_saved(&g.slug, &g.checks, &g.actions).ok()?;
                Some((g.slug, Arc::new(hook)))
            })
            .collect();
        *self.guardrails.write().unwrap_or_else(|e| e.into_inner()) = map;
        Ok(())
    }

    pub fn guardrail(&self, slug: &str) -> Option<Arc<Hook>> {
        self.guardrails
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(slug)
            .cloned()
    }

    /// The slugs of the saved configs that name the guardrail `slug`, sorted.
    pub fn configs_naming_guardrail(&self, slug: &str) -> Vec<String> {
        let configs = self.configs.read().unwrap_or_else(|e| e.into_inner());
        let mut users: Vec<String> = configs
            .iter()
            .filter(|(_, node)| node.saved_guardrails().iter().any(|s| s == slug))
            .map(|(config, _)| config.clone())
            .collect();
        users.sort();
        users
    }

    pub fn reload_workspaces(&self) -> StoreResult<()> {
        let map = self
            .store
            .all_workspaces()?
            .into_iter()
            .map(|w| {
                (
                    w.id,
                    Arc::new(WorkspaceEntry {
                        slug: w.slug,
                        metadata: w.defaults.metadata,
                        config_id: w.defaults.config_id,
                        allowed_models: w.allowed_models,
                    }),
                )
            })
            .collect();
        *self.workspaces.write().unwrap_or_else(|e| e.into_inner()) = map;
        Ok(())
    }

    pub fn integration(&self, slug: &str) -> Option<Arc<IntegrationEntry>> {
        self.integrations
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(slug)
            .cloned()
    }

    pub fn config(&self, slug: &str) -> Option<Arc<Node>> {
        self.configs
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(slug)
            .cloned()
    }

    /// By id, as keys name their workspace.
    pub fn workspace(&self, id: &str) -> Option<Arc<WorkspaceEntry>> {
        self.workspaces
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    }

    /// Uniform in [0, 1): seeded and sequential when a seed is set, else thread-local.
    pub fn roll(&self) -> f64 {
        use rand::Rng;
        match &self.lb_rng {
            Some(rng) => rng.lock().unwrap_or_else(|e| e.into_inner()).gen(),
            None => rand::thread_rng().gen(),
        }
    }
}
