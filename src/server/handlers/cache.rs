//! The response cache's stats and purge. A workspace key sees and purges its workspace's
//! entries only.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;

use super::logs::read;
use crate::api::cache::{CacheStats, NamespaceStats, PurgeQuery, Purged, StatsQuery};
use crate::api::error::ErrorBody;
use crate::api::logs::parse_time_bound;
use crate::server::auth::Caller;
use crate::server::cluster::Topic;
use crate::server::error::{ApiError, ApiResult};
use crate::server::extract::Query;
use crate::server::state::AppState;

const DEFAULT_WINDOW: &str = "7d";

/// Entries, bytes and the bound; lookups since start by outcome; entries per namespace; and
/// what hits saved, from the request records of a window.
#[utoipa::path(get, path = "/v1/cache/stats", tag = "cache", params(StatsQuery),
    responses((status = 200, body = CacheStats), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn stats(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Query(query): Query<StatsQuery>,
) -> ApiResult<Json<CacheStats>> {
    caller.require("cache.read")?;
    let window = query.since.as_deref().unwrap_or(DEFAULT_WINDOW);
    let since = parse_time_bound(window, time::OffsetDateTime::now_utc())
        .map_err(|e| ApiError::invalid(format!("since: {e}")))?;
    let since_ms = (since.unix_timestamp_nanos() / 1_000_000) as i64;
    let (cost_saved, saved_requests) = read(&state, move |s| s.cost_saved_since(since_ms)).await?;
    let snapshot = state.cache.snapshot(caller.0.workspace_id.as_deref());
    let mut namespaces: Vec<NamespaceStats> = snapshot
        .namespaces
        .into_iter()
        .map(|(namespace, t)| NamespaceStats {
            namespace,
            entries: t.entries,
            bytes: t.bytes,
        })
        .collect();
    namespaces.sort_by_key(|n| std::cmp::Reverse(n.entries));
    let count = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
    let c = &state.cache.counters;
    Ok(Json(CacheStats {
        entries: snapshot.total.entries,
        bytes: snapshot.total.bytes,
        max_bytes: snapshot.max_bytes,
        hits: count(&c.hits),
        semantic_hits: count(&c.semantic_hits),
        misses: count(&c.misses),
        semantic_misses: count(&c.semantic_misses),
        refreshes: count(&c.refreshes),
        namespaces,
        cost_saved,
        saved_requests,
        since: crate::store::format_time(since),
    }))
}

/// Deletes cached answers, from memory and from the store: those of one namespace, or all.
#[utoipa::path(delete, path = "/v1/cache", tag = "cache", params(PurgeQuery),
    responses((status = 200, body = Purged), (status = 403, body = ErrorBody)))]
pub async fn purge(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Query(query): Query<PurgeQuery>,
) -> ApiResult<Json<Purged>> {
    caller.require("cache.delete")?;
    let workspace = caller.0.workspace_id.clone();
    let purged = state
        .cache
        .purge(workspace.as_deref(), query.namespace.as_deref());
    state.announce(Topic::CachePurge {
        workspace,
        namespace: query.namespace,
    });
    Ok(Json(Purged {
        success: true,
        purged,
    }))
}
