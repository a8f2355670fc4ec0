use super::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use mailferry_shared::{Health, HealthStatus};

pub fn routes() -> Router<AppState> {
    Router::new().route("/health", get(health))
}

/// 200 when the database answers, 503 (with the reason) when it does not.
async fn health(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    let (status, code, problem) = match state.db.ping().await {
        Ok(()) => (HealthStatus::Ok, StatusCode::OK, None),
        Err(err) => {
            tracing::warn!(error = %err, "health check: database unreachable");
            (
                HealthStatus::Degraded,
                StatusCode::SERVICE_UNAVAILABLE,
                Some("The database does not answer.".to_owned()),
            )
        }
    };
    let body = Health {
        status,
        version: env!("CARGO_PKG_VERSION").to_owned(),
        database: state.db.kind().name().to_owned(),
        node: state.node.to_string(),
        problem,
    };
    (code, Json(body))
}
