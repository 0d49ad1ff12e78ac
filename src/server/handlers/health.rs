use std::sync::Arc;

use axum::extract::State;
use axum::Json;

use crate::api::{Health, StoreHealth, STORE_AVAILABLE, STORE_UNAVAILABLE};
use crate::observe::record::format_ms;
use crate::server::state::AppState;
use crate::store::db::Backend;

/// Liveness, version and the store's state; needs no key. Reads only memory, so it answers
/// at once whatever the database does.
#[utoipa::path(get, path = "/v1/health", tag = "health",
    description = "Liveness (200 while the server runs) and the store's state: `status` is `degraded` while the store refuses writes, with why, since when, and the request records held and dropped meanwhile.",
    responses((status = 200, body = Health)))]
pub async fn health(State(state): State<Arc<AppState>>) -> Json<Health> {
    let store = state.recorder.store_state();
    Json(Health {
        status: if store.refused.is_none() {
            "ok"
        } else {
            "degraded"
        }
        .into(),
        version: env!("CARGO_PKG_VERSION").into(),
        store: Some(StoreHealth {
            backend: match state.store.backend() {
                Backend::Sqlite => "sqlite",
                Backend::Postgres => "postgres",
            }
            .into(),
            state: if store.refused.is_none() {
                STORE_AVAILABLE
            } else {
                STORE_UNAVAILABLE
            }
            .into(),
            since: format_ms(store.since_ms),
            error: store.refused,
            queued_records: store.held as u64,
            dropped_records: store.dropped,
            queue_limit: store.limit.records as u64,
        }),
    })
}
