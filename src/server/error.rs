//! Every admin error leaves as Portkey's `{"error":{"message","type","param","code"}}` body.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::api::error::{ErrorBody, ErrorDetail};
use crate::store::StoreError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub kind: &'static str,
    pub message: String,
    pub errors: Vec<String>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    fn new(status: StatusCode, code: &'static str, kind: &'static str, message: String) -> Self {
        ApiError {
            status,
            code,
            kind,
            message,
            errors: Vec::new(),
        }
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "AB01",
            "invalid_request_error",
            message.into(),
        )
    }
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "AB05",
            "authentication_error",
            message.into(),
        )
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "AB03",
            "permission_error",
            message.into(),
        )
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "AB08",
            "not_found_error",
            message.into(),
        )
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "AB07",
            "conflict_error",
            message.into(),
        )
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "AB04",
            "server_error",
            message.into(),
        )
    }
    /// The store is unreachable: the request needs it and was not done.
    pub fn unavailable(cause: &str) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "AB09",
            "service_unavailable_error",
            format!(
                "the database is unreachable, so this request could not be done: {cause}. \
                 The gateway keeps serving with what it holds in memory; retry once \
                 `tollgate status` shows the store available again"
            ),
        )
    }
    pub fn with_errors(mut self, errors: Vec<String>) -> Self {
        self.errors = errors;
        self
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(m) => ApiError::not_found(m),
            StoreError::Conflict(m) => ApiError::conflict(m),
            StoreError::Invalid(m) => ApiError::invalid(m),
            StoreError::Unavailable(m) => ApiError::unavailable(&m),
            StoreError::Other(m) => ApiError::internal(m),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                message: self.message,
                kind: self.kind.into(),
                param: None,
                code: Some(self.code.into()),
            },
            errors: self.errors,
        };
        (self.status, Json(body)).into_response()
    }
}
