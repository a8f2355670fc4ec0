//! The one error type at the HTTP edge: each failure maps to a status code and a JSON
//! body a person can act on. Internal details are logged, never sent.

use crate::jobs::StoreError;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use mailferry_shared::ApiError;

#[derive(Debug, thiserror::Error)]
pub enum ApiFailure {
    #[error("not found: {0}")]
    NotFound(String),
    #[error("sign in first")]
    Unauthorized,
    #[error("wrong user name or password")]
    WrongCredentials,
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("too many attempts: {0}")]
    TooManyRequests(String),
    #[error("internal error: {0}")]
    Internal(#[from] anyhow::Error),
}

impl From<StoreError> for ApiFailure {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound => ApiFailure::NotFound("There is no such migration job.".into()),
            other => ApiFailure::Internal(other.into()),
        }
    }
}

impl From<tower_sessions::session::Error> for ApiFailure {
    fn from(err: tower_sessions::session::Error) -> Self {
        ApiFailure::Internal(anyhow::anyhow!("session store: {err}"))
    }
}

impl IntoResponse for ApiFailure {
    fn into_response(self) -> Response {
        let (status, code, message) = match self {
            ApiFailure::NotFound(what) => (StatusCode::NOT_FOUND, "not_found", what),
            ApiFailure::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "Sign in first.".to_owned(),
            ),
            ApiFailure::WrongCredentials => (
                StatusCode::UNAUTHORIZED,
                "wrong_credentials",
                "The user name or password is wrong.".to_owned(),
            ),
            ApiFailure::Forbidden(why) => (StatusCode::FORBIDDEN, "forbidden", why),
            ApiFailure::BadRequest(why) => (StatusCode::BAD_REQUEST, "bad_request", why),
            ApiFailure::Conflict(why) => (StatusCode::CONFLICT, "conflict", why),
            ApiFailure::TooManyRequests(why) => {
                (StatusCode::TOO_MANY_REQUESTS, "rate_limited", why)
            }
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
