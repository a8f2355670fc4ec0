//! Calls to the backend's JSON API. Types come from `mailferry-shared`, never re-declared.

use gloo_net::http::Request;
use mailferry_shared::{ApiError, Health};

/// A failed API call, in words the page can show.
pub fn describe(err: gloo_net::Error) -> String {
    format!("The server could not be reached ({err}).")
}

pub async fn health() -> Result<Health, String> {
    let response = Request::get("/api/health").send().await.map_err(describe)?;
    if response.ok() || response.status() == 503 {
        response.json::<Health>().await.map_err(describe)
    } else {
        let api_error = response.json::<ApiError>().await.map_err(describe)?;
        Err(api_error.message)
    }
}
