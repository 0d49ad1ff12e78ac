use std::sync::Arc;

use axum::extract::State;
use axum::Json;

use super::logs::read;
use crate::api::audit::{AuditFilter, AuditLogList};
use crate::api::error::ErrorBody;
use crate::api::scopes;
use crate::server::auth::Caller;
use crate::server::error::ApiResult;
use crate::server::extract::Query;
use crate::server::state::AppState;

/// Admin changes, newest first: every POST, PUT, PATCH and DELETE made with a valid key, with
/// its actor, status, client address and the resource before and after.
#[utoipa::path(get, path = "/v1/audit-logs", tag = "audit", params(AuditFilter),
    responses((status = 200, body = AuditLogList), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Query(filter): Query<AuditFilter>,
) -> ApiResult<Json<AuditLogList>> {
    caller.require(scopes::AUDIT_LOGS_LIST)?;
    let now = time::OffsetDateTime::now_utc();
    let (total, records) = read(&state, move |s| s.audit_logs(&filter, now)).await?;
    Ok(Json(AuditLogList {
        object: "list".into(),
        total,
        records,
    }))
}
