//! Errors as the HTTP API answers them: a 4xx/5xx status and `{"error": "…"}`, never
//! an empty or plain-text body.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::http::{Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

/// An error answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }

    /// 404 for `path` (shown at most 200 characters long).
    pub fn not_found(path: &str) -> ApiError {
        let path: String = path.chars().take(200).collect();
        ApiError::new(StatusCode::NOT_FOUND, format!("not found: {path}"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.message }).to_string();
        (
            self.status,
            [
                (header::CONTENT_TYPE, "application/json"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            body,
        )
            .into_response()
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> ApiError {
        ApiError::new(rejection.status(), rejection.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> ApiError {
        ApiError::new(rejection.status(), rejection.body_text())
    }
}

impl From<crate::Error> for ApiError {
    fn from(err: crate::Error) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, err.to_string())
    }
}

/// The answer for a path nothing serves.
pub async fn not_found(uri: Uri) -> ApiError {
    ApiError::not_found(uri.path())
}

/// The answer for a method a route does not take.
pub async fn method_not_allowed(method: Method) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("method {method} not allowed; use GET"),
    )
}
