//! The response cache's admin resources: `GET /v1/cache/stats` and `DELETE /v1/cache`.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// `GET /v1/cache/stats`. A workspace key sees its workspace's entries only; the lookup counts
/// are the whole server's.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CacheStats {
    /// Entries held now.
    pub entries: u64,
    /// Their size in memory.
    pub bytes: u64,
    /// The bound (`tollgate serve --cache-size`), in bytes.
    pub max_bytes: u64,
    /// Lookups since the server started, by outcome.
    pub hits: u64,
    pub semantic_hits: u64,
    pub misses: u64,
    pub semantic_misses: u64,
    pub refreshes: u64,
    /// Entries per `x-portkey-cache-namespace`, most entries first.
    pub namespaces: Vec<NamespaceStats>,
    /// What cache hits saved (USD), from the request records since `since`.
    pub cost_saved: f64,
    /// The records of hits since `since` that saved a known cost.
    pub saved_requests: u64,
    /// The start of the window of `cost_saved`, RFC 3339.
    pub since: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct NamespaceStats {
    /// `null`: requests without a namespace.
    pub namespace: Option<String>,
    pub entries: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatsQuery {
    /// The window of `cost_saved`: RFC 3339 or a duration before now such as 24h [default: 7d]
    pub since: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PurgeQuery {
    /// Only the entries of this `x-portkey-cache-namespace` [default: every entry]
    pub namespace: Option<String>,
}

/// `DELETE /v1/cache`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Purged {
    pub success: bool,
    /// How many entries were deleted.
    pub purged: u64,
}
