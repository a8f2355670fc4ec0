//! Builds the application from its configuration and runs it until a shutdown signal.

use crate::config::Config;
use crate::db::{redact_url, Database};
use crate::http::{self, AppState};
use anyhow::Context;

pub async fn serve(config: Config) -> anyhow::Result<()> {
    let db = Database::open(&config.database_url).await?;
    tracing::info!(database = %redact_url(&config.database_url), "database ready");
    let app = http::router(AppState { db }, &config.static_dir);
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!("Mailferry portal listening on http://{addr}");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("the web server stopped unexpectedly")?;
    tracing::info!("shut down cleanly");
    Ok(())
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
