//! Builds the application from its configuration and runs it until a shutdown signal:
//! database, key vault, job store, worker pool, sessions, web server.

use crate::config::Config;
use crate::db::{redact_url, Database, DatabaseKind};
use crate::http::{self, rate_limit::RateLimiter, AppState};
use crate::jobs::{JobStore, Notifier, WorkerPool, WorkerSettings};
use crate::vault::Vault;
use anyhow::Context;
use axum::Router;
use std::net::SocketAddr;
use std::sync::Arc;
use tower_sessions::cookie::SameSite;
use tower_sessions::session_store::ExpiredDeletion;
use tower_sessions::{Expiry, SessionManagerLayer, SessionStore};
use tower_sessions_sqlx_store::{PostgresStore, SqliteStore};

pub async fn serve(config: Config) -> anyhow::Result<()> {
    let db = Database::open(&config.database_url).await?;
    tracing::info!(database = %redact_url(&config.database_url), "database ready");
    let vault = Vault::open(config.secret_key.as_deref(), &config.secret_key_file)?;
    vault.check_against(db.pool()).await?;
    let notifier = Notifier::default();
    let store = JobStore::new(db.pool().clone(), db.kind(), notifier.clone());
    if db.kind() == DatabaseKind::Postgres {
        // News of jobs run by other nodes reaches this node's streams and workers at once.
        tokio::spawn(crate::jobs::relay::listen(
            config.database_url.clone(),
            notifier,
        ));
    }
    if db.kind() == DatabaseKind::Sqlite {
        // SQLite means one node: any lease left is from this server's previous life.
        let released = store.release_all_leases().await?;
        if released > 0 {
            tracing::info!(
                jobs = released,
                "resuming jobs interrupted by the last shutdown"
            );
        }
    }
    if config.routes.is_empty() {
        tracing::warn!("no migration routes are configured: end users cannot sign in until the config file names servers and routes");
    }
    let routes = Arc::new(config.routes.clone());
    tracing::info!(node = %config.node_name, "this node's name");
    let mut worker_settings = WorkerSettings::new(config.node_name.clone(), config.workers);
    worker_settings.lease_seconds = config.lease_seconds;
    worker_settings.delta_sync_minutes = config.delta_sync_minutes;
    worker_settings.credential_retention_hours = config.credential_retention_hours;
    let workers = WorkerPool::new(
        store.clone(),
        routes.clone(),
        vault.clone(),
        worker_settings,
    );
    tokio::spawn(workers.run());

    let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
    let state = AppState {
        db: db.clone(),
        store,
        routes,
        vault,
        limiter: Arc::new(RateLimiter::new(db.pool().clone())),
        trusted_proxies: config.trusted_proxies.clone().into(),
        node: config.node_name.as_str().into(),
        shutdown: shutdown_rx,
    };
    let app = http::router(state, &config.static_dir);
    let app = match db.kind() {
        DatabaseKind::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&config.database_url).await?;
            let sessions = SqliteStore::new(pool);
            sessions
                .migrate()
                .await
                .context("create the session table")?;
            with_sessions(app, sessions, config.secure_cookies)
        }
        DatabaseKind::Postgres => {
            let pool = sqlx::PgPool::connect(&config.database_url).await?;
            let sessions = PostgresStore::new(pool);
            sessions
                .migrate()
                .await
                .context("create the session table")?;
            with_sessions(app, sessions, config.secure_cookies)
        }
    };

    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!("Mailferry portal listening on http://{addr}");
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        shutdown_signal().await;
        let _ = shutdown_tx.send(true);
    })
    .await
    .context("the web server stopped unexpectedly")?;
    tracing::info!("shut down cleanly");
    Ok(())
}

/// Server-side sessions: the browser gets an opaque, HttpOnly, SameSite=Strict cookie.
/// Expired sessions are deleted every ten minutes.
fn with_sessions<S>(app: Router, store: S, secure: bool) -> Router
where
    S: SessionStore + ExpiredDeletion + Clone,
{
    let sweeper = store.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(600));
        loop {
            every.tick().await;
            if let Err(err) = sweeper.delete_expired().await {
                tracing::warn!(error = %err, "cannot delete expired sessions");
            }
        }
    });
    let layer = SessionManagerLayer::new(store)
        .with_name("mailferry_session")
        .with_http_only(true)
        .with_same_site(SameSite::Strict)
        .with_secure(secure)
        .with_expiry(Expiry::OnInactivity(time::Duration::hours(12)));
    app.layer(layer)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sig) => {
                sig.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
