//! The web layer: JSON API under `/api`, the single-page app for everything else.
//! It knows nothing of IMAP: it reads and writes the job store, and asks
//! `account_check` to try credentials.

mod account;
mod admin_import;
mod auth;
pub mod client_address;
mod error;
mod events;
pub mod headers;
mod health;
mod helpdesk;
pub mod metrics;
mod my_job;
pub mod oauth;
pub mod origin;
pub mod rate_limit;
pub mod setup;
mod spa;

pub use error::ApiFailure;
pub use origin::origin_of_url;

use crate::db::Database;
use crate::jobs::JobStore;
use crate::profiles::Routes;
use crate::vault::Vault;
use axum::Router;
use origin::AllowedOrigins;
use rate_limit::RateLimiter;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tower_sessions::SessionStore;

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
    /// What the web edge enforces: origins, session lifetime.
    pub edge: Arc<Edge>,
    /// The first-run setup link's token, while no staff account exists.
    pub setup: Arc<setup::SetupToken>,
}

/// The web edge's rules, fixed at start-up.
#[derive(Debug)]
pub struct Edge {
    /// Origins whose pages may send state-changing requests.
    pub origins: AllowedOrigins,
    /// A session ends this long after its sign-in, however busy.
    pub session_lifetime: Duration,
    /// The session store, read by live streams to notice a sign-out on any node.
    pub sessions: Arc<dyn SessionStore>,
    /// The redirect URI registered with OAuth providers (`PUBLIC_URL/api/oauth/callback`).
    pub oauth_redirect: String,
}

/// The whole application (without the session layer, which startup adds because its
/// store type depends on the database): API routes, then the web app.
pub fn router(state: AppState, static_dir: &Path) -> Router {
    let api = Router::new()
        .merge(health::routes())
        .merge(account::routes())
        .merge(oauth::routes())
        .merge(my_job::routes())
        .merge(helpdesk::routes())
        .merge(admin_import::routes())
        .merge(setup::routes())
        .route(
            "/csp-report",
            axum::routing::post(headers::csp_report)
                .layer(axum::extract::DefaultBodyLimit::max(16 * 1024)),
        )
        .fallback(error::api_not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::guard,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            origin::same_origin_only,
        ))
        .with_state(state);
    Router::new()
        .nest("/api", api)
        .fallback_service(spa::service(static_dir))
        .layer(tower_http::trace::TraceLayer::new_for_http())
}
