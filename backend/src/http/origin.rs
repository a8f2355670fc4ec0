//! Refuses state-changing requests sent from another site's pages (CSRF): a browser
//! always sends `Origin` on such requests, and it must be this server's own.

use super::error::ApiFailure;
use axum::extract::Request;
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

pub async fn same_origin_only(request: Request, next: Next) -> Response {
    let safe = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    if !safe {
        let origin = request
            .headers()
            .get(header::ORIGIN)
            .and_then(|v| v.to_str().ok());
        let host = request
            .headers()
            .get(header::HOST)
            .and_then(|v| v.to_str().ok());
        if let Some(origin) = origin {
            let ours = host.is_some_and(|host| {
                origin == format!("http://{host}") || origin == format!("https://{host}")
            });
            if !ours {
                tracing::warn!(%origin, "refused a request from a foreign origin");
                return ApiFailure::Forbidden(
                    "This request came from another web site and was refused.".into(),
                )
                .into_response();
            }
        }
    }
    next.run(request).await
}
