use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The error body of every admin route: `{"error":{"message","type","param","code"}}`, plus an
/// `errors` list where one request had several problems (config validation).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    pub message: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub param: Option<String>,
    /// Portkey's admin error codes: AB01 validation, AB03 not allowed, AB04 server error,
    /// AB05 unauthorized, AB07 already exists, AB08 not found; tollgate adds AB09: the
    /// database is unreachable (503).
    pub code: Option<String>,
}
