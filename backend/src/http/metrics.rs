//! The `/metrics` listener: Prometheus text on its own address (`metrics_listen`), apart
//! from the portal, so that a scraper needs no session and the portal's port exposes
//! nothing more. Meant for loopback or a monitoring network.

use crate::jobs::JobStore;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use std::net::SocketAddr;
use tokio::net::TcpListener;

#[derive(Clone)]
struct Scrape {
    handle: PrometheusHandle,
    store: JobStore,
}

/// Binds `metrics_listen` (a wrong or busy address fails the start).
pub async fn bind(listen: SocketAddr) -> anyhow::Result<TcpListener> {
    let listener = TcpListener::bind(listen).await.map_err(|e| {
        anyhow::anyhow!("cannot listen for metrics on {listen} (metrics_listen): {e}")
    })?;
    tracing::info!("metrics on http://{}/metrics", listener.local_addr()?);
    if !listen.ip().is_loopback() {
        tracing::warn!(%listen, "metrics_listen is not a loopback address: anyone who reaches it sees job counts");
    }
    Ok(listener)
}

/// Serves `GET /metrics` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    handle: PrometheusHandle,
    store: JobStore,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let app = Router::new()
        .route("/metrics", get(scrape))
        .with_state(Scrape { handle, store });
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}

async fn scrape(State(scrape): State<Scrape>) -> Response {
    match crate::metrics::render(&scrape.handle, &scrape.store).await {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(err) => {
            tracing::warn!(error = %err, "metrics: the job store could not be read");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "the job store could not be read; see the server log\n",
            )
                .into_response()
        }
    }
}
