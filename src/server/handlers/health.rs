use axum::Json;

use crate::api::Health;

/// Liveness and version; needs no key.
#[utoipa::path(get, path = "/v1/health", tag = "health",
    responses((status = 200, body = Health)))]
pub async fn health() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
        version: env!("CARGO_PKG_VERSION").into(),
    })
}
