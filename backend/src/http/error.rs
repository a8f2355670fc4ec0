//! The one error type at the HTTP edge: each failure maps to a status code and a JSON
//! body a person can act on. Internal details are logged, never sent.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use mailferry_shared::ApiError;

#[derive(Debug, thiserror::Error)]
pub enum ApiFailure {
    #[error("not found: {0}")]
    NotFound(String),
    #[error("internal error: {0}")]
    Internal(#[from] anyhow::Error),
}

impl IntoResponse for ApiFailure {
    fn into_response(self) -> Response {
        let (status, code, message) = match &self {
            ApiFailure::NotFound(what) => (StatusCode::NOT_FOUND, "not_found", what.clone()),
            ApiFailure::Internal(err) => {
                tracing::error!(error = %format!("{err:#}"), "request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "The server hit an unexpected problem; it has been logged. Try again, \
                     and tell your administrator if it persists."
                        .to_owned(),
                )
            }
        };
        let body = ApiError {
            code: code.to_owned(),
            message,
        };
        (status, Json(body)).into_response()
    }
}

/// `OriginalUri`: inside the nested `/api` router the plain URI has lost its prefix.
pub async fn api_not_found(
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
) -> ApiFailure {
    ApiFailure::NotFound(format!("There is no API endpoint at {}.", uri.path()))
}
