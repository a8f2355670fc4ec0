//! The web layer: JSON API under `/api`, the single-page app for everything else.
//! It knows nothing of IMAP; it talks to the job store and the database.

mod error;
mod health;
mod spa;

pub use error::ApiFailure;

use crate::db::Database;
use axum::Router;
use std::path::Path;

#[derive(Debug, Clone)]
pub struct AppState {
    pub db: Database,
}

/// The whole application: API routes, then the web app with an index.html fallback.
pub fn router(state: AppState, static_dir: &Path) -> Router {
    let api = Router::new()
        .merge(health::routes())
        .fallback(error::api_not_found)
        .with_state(state);
    Router::new()
        .nest("/api", api)
        .fallback_service(spa::service(static_dir))
        .layer(tower_http::trace::TraceLayer::new_for_http())
}
