//! The server: admin API (control plane) and, later, the gateway (data plane), on one listener.

mod audit;
mod auth;
mod cluster;
mod error;
mod extract;
mod gateway;
pub(crate) mod governance;
mod handlers;
mod prompt_library;
mod router;
mod state;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::api::keys::{ApiKeyCreated, TYPE_ORGANISATION};
use crate::api::scopes;
pub use crate::observe::otlp::OtlpConfig;
use crate::store::{Cipher, NewKey, Store};
use state::AppState;
pub use state::GatewaySettings;

pub const DEFAULT_ADDR: &str = "127.0.0.1:8787";

pub struct Settings {
    pub addr: String,
    pub data_dir: PathBuf,
    /// A Postgres database to keep everything in instead of SQLite in `data_dir`.
    pub database_url: Option<String>,
    pub gateway: GatewaySettings,
    /// Request records older than this are deleted in the background.
    pub log_retention: Option<Duration>,
    /// Where request records go as OpenTelemetry spans, if anywhere.
    pub otlp: Option<OtlpConfig>,
}

/// A server bound to its address with its store open, not yet serving.
pub struct Server {
    state: Arc<AppState>,
    listener: TcpListener,
    log_retention: Option<Duration>,
    /// Keeps the cache's copy in the store; awaited at shutdown.
    cache_writer: tokio::task::JoinHandle<()>,
}

impl Server {
    pub async fn bind(settings: Settings) -> Result<Server, String> {
        crate::store::secrets::create_private_dir(&settings.data_dir).map_err(|e| {
            format!(
                "cannot create the data directory {}: {e}",
                settings.data_dir.display()
            )
        })?;
        let cipher = Cipher::load(&settings.data_dir).map_err(|e| e.to_string())?;
        let store = match &settings.database_url {
            Some(url) => Store::open_postgres(url, cipher),
            None => Store::open(&settings.data_dir, cipher),
        }
        .map_err(|e| e.to_string())?;
        let state = Arc::new(
            AppState::new(store, settings.gateway, settings.otlp).map_err(|e| e.to_string())?,
        );
        let events = state
            .governor_events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(events) = events {
            tokio::spawn(governance::deliver_events(state.clone(), events));
        }
        let cache_writes = state
            .cache_writes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .expect("a new state holds the cache's writes");
        let cache_writer = tokio::spawn(gateway::persist_cache(state.clone(), cache_writes));
        if state.governor.is_shared() {
            tokio::spawn(governance::share_counters(state.clone()));
        }
        let listener = TcpListener::bind(&settings.addr)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", settings.addr))?;
        let address = listener.local_addr().map_err(|e| e.to_string())?;
        cluster::listen(&state, &address.to_string())?;
        Ok(Server {
            state,
            listener,
            log_retention: settings.log_retention,
            cache_writer,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// On a store with no keys at all, creates the first admin key and returns it (the only
    /// time its secret exists in the clear).
    pub fn bootstrap_admin_key(&self) -> Result<Option<ApiKeyCreated>, String> {
        let store = &self.state.store;
        if store.count_api_keys().map_err(|e| e.to_string())? > 0 {
            return Ok(None);
        }
        let created = store
            .create_api_key(&NewKey {
                name: "local-admin".into(),
                description: Some("created by `tollgate serve` on first start".into()),
                key_type: TYPE_ORGANISATION.into(),
                workspace_id: None,
                scopes: scopes::ALL.iter().map(|s| s.to_string()).collect(),
                defaults: Default::default(),
                expires_at: None,
                allowed_models: None,
                creation_mode: "auto",
            })
            .map_err(|e| e.to_string())?;
        self.state
            .changed(cluster::Topic::Keys)
            .map_err(|e| e.to_string())?;
        Ok(Some(created))
    }

    /// Serves until `shutdown` resolves, then finishes in-flight requests and commits every
    /// request record.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let app = router::router(self.state.clone());
        let pruning = self
            .log_retention
            .map(|keep| tokio::spawn(prune_records(self.state.clone(), keep)));
        // Without TCP_NODELAY each stream event after the first waits for the client's delayed
        // ACK (about 40 ms on Linux).
        let listener = axum::serve::ListenerExt::tap_io(self.listener, |tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let state = self.state.clone();
        let shutdown = async move {
            shutdown.await;
            state.closing.send_replace(true);
        };
        // The peer address is the audit log's client_ip.
        let app = app.into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await?;
        if let Some(task) = pruning {
            task.abort();
        }
        self.state.recorder.shutdown().await;
        // In-flight requests are done: their settlements and this node's unused leases go to
        // the shared counters now, or they stay held there until the other nodes give them back.
        self.state.governor.give_back_all_leases();
        if let Err(e) = self
            .state
            .governor
            .send_settlements(crate::observe::record::now_ms())
        {
            eprintln!("warning: settlements not sent to the shared counters: {e}");
        }
        self.state.cache.close();
        let _ = self.cache_writer.await;
        // A store that refused the last records would refuse (or wait out) this too.
        if self.state.recorder.store_state().refused.is_none() {
            if let Err(e) = self.state.store.checkpoint() {
                eprintln!("warning: final checkpoint failed: {e}");
            }
        }
        Ok(())
    }
}

/// Every ten minutes (and at start), deletes the records older than `keep`.
async fn prune_records(state: Arc<AppState>, keep: Duration) {
    let mut every = tokio::time::interval(Duration::from_secs(600));
    loop {
        every.tick().await;
        let now_ms = crate::observe::record::now_ms();
        let keep_ms = i64::try_from(keep.as_millis()).unwrap_or(i64::MAX);
        state
            .recorder
            .prune_before(now_ms.saturating_sub(keep_ms))
            .await;
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
