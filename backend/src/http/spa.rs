//! Serves the built web app. Client-side routes (`/helpdesk/jobs/7`) get index.html,
//! so a reload or a bookmarked link works.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse};
use axum::routing::{get_service, MethodRouter};
use std::path::Path;
use tower_http::services::{ServeDir, ServeFile};

pub fn service(static_dir: &Path) -> MethodRouter {
    let index = static_dir.join("index.html");
    if !index.is_file() {
        tracing::warn!(
            dir = %static_dir.display(),
            "the web app is not built here: the portal pages will explain how to build it"
        );
        return axum::routing::any(not_built);
    }
    get_service(
        ServeDir::new(static_dir)
            .precompressed_br()
            .precompressed_gzip()
            .fallback(ServeFile::new(index)),
    )
}

async fn not_built() -> impl IntoResponse {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Html(
            "<!doctype html><title>Mailferry</title><h1>Mailferry</h1>\
             <p>The web app has not been built. Run <code>trunk build --release</code> in the \
             repository (or <code>scripts/run-portal.sh</code>), or point \
             <code>--static-dir</code> at the built files.</p>",
        ),
    )
}
