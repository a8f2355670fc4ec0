//! The web layer: JSON API under `/api`, the single-page app for everything else.
//! It knows nothing of IMAP: it reads and writes the job store, and asks
//! `account_check` to try credentials.

mod account;
mod admin_import;
mod auth;
pub mod client_address;
mod error;
mod events;
mod health;
mod helpdesk;
mod my_job;
mod origin;
pub mod rate_limit;
mod spa;

pub use error::ApiFailure;

use crate::db::Database;
use crate::jobs::JobStore;
use crate::profiles::Routes;
use crate::vault::Vault;
use axum::Router;
use rate_limit::RateLimiter;
use std::path::Path;
use std::sync::Arc;
use tokio::sync::watch;

#[derive(Debug, Clone)]
pub struct AppState {
    pub db: Database,
    pub store: JobStore,
    pub routes: Arc<Routes>,
    pub vault: Vault,
    pub limiter: Arc<RateLimiter>,
    /// Reverse proxies whose `X-Forwarded-For` names the client (see `client_address`).
    pub trusted_proxies: Arc<[ipnet::IpNet]>,
    /// This node's name (in leases, job runs and `/api/health`).
    pub node: Arc<str>,
    /// Flips to true when the server shuts down, ending live-progress streams.
    pub shutdown: watch::Receiver<bool>,
}

/// The whole application (without the session layer, which startup adds because its
/// store type depends on the database): API routes, then the web app.
pub fn router(state: AppState, static_dir: &Path) -> Router {
    let api = Router::new()
        .merge(health::routes())
        .merge(account::routes())
        .merge(my_job::routes())
        .merge(helpdesk::routes())
        .merge(admin_import::routes())
        .fallback(error::api_not_found)
        .layer(axum::middleware::from_fn(origin::same_origin_only))
        .with_state(state);
    Router::new()
        .nest("/api", api)
        .fallback_service(spa::service(static_dir))
        .layer(tower_http::trace::TraceLayer::new_for_http())
}
