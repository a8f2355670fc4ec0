//! An end user's own migration: see it, start it, cancel it, sync again, and give a
//! password that changed. A user reaches only the job bound to their session.

use super::account;
use super::auth::UserAuth;
use super::client_address::ClientAddress;
use super::error::ApiFailure;
use super::events;
use super::AppState;
use crate::jobs::credentials::Update;
use crate::jobs::Credentials;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use mailferry_shared::{AccountSide, CheckResult, JobStatus, JobView, PasswordUpdate};
use zeroize::Zeroize;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/my/job", get(view))
        .route("/my/job/events", get(stream))
        .route("/my/job/start", post(start))
        .route("/my/job/sync", post(start))
        .route("/my/job/cancel", post(cancel))
        .route("/my/job/password", post(password))
        .route("/my/job/skipped", get(skipped))
        .route("/my/job/history", get(history))
}

async fn view(State(state): State<AppState>, user: UserAuth) -> Result<Json<JobView>, ApiFailure> {
    Ok(Json(state.store.view(&user.job_id).await?))
}

async fn stream(
    State(state): State<AppState>,
    user: UserAuth,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiFailure> {
    events::stream(state, user.job_id, &headers).await
}

async fn start(State(state): State<AppState>, user: UserAuth) -> Result<Json<JobView>, ApiFailure> {
    if !state.store.has_credentials(&user.job_id).await? {
        return Err(ApiFailure::Conflict(
            "Your passwords are no longer stored (they are erased after a migration ends). \
             Sign in again to run another pass."
                .into(),
        ));
    }
    if state.store.queue(&user.job_id).await? {
        state
            .store
            .log_action(&user.job_id, &user.source_user, "started")
            .await?;
    }
    Ok(Json(state.store.view(&user.job_id).await?))
}

async fn cancel(
    State(state): State<AppState>,
    user: UserAuth,
) -> Result<Json<JobView>, ApiFailure> {
    state
        .store
        .log_action(&user.job_id, &user.source_user, "cancelled")
        .await?;
    state.store.cancel(&user.job_id).await?;
    Ok(Json(state.store.view(&user.job_id).await?))
}

async fn skipped(
    State(state): State<AppState>,
    user: UserAuth,
) -> Result<Json<Vec<mailferry_shared::SkippedMessageView>>, ApiFailure> {
    Ok(Json(state.store.skipped_messages(&user.job_id).await?))
}

/// The job's progress over time (the speed chart of a page opened mid-run or later).
async fn history(
    State(state): State<AppState>,
    user: UserAuth,
) -> Result<Json<Vec<mailferry_shared::ProgressPoint>>, ApiFailure> {
    Ok(Json(state.store.history(&user.job_id).await?))
}

/// Checks the new password with a real login first (rate-limited like a sign-in); only
/// a working one is stored.
async fn password(
    State(state): State<AppState>,
    user: UserAuth,
    client: ClientAddress,
    Json(update): Json<PasswordUpdate>,
) -> Result<Json<CheckResult>, ApiFailure> {
    let login = match update.side {
        AccountSide::Source => &user.source_user,
        AccountSide::Target => &user.target_user,
    };
    if let Some(provider) = state.routes.oauth_provider(&user.route, update.side) {
        return Ok(Json(CheckResult {
            side: update.side,
            ok: false,
            code: "not_needed".into(),
            message: format!(
                "This mailbox signs in with {}, not with a password: use \"Sign in again with {}\".",
                provider.label(),
                provider.label()
            ),
        }));
    }
    if state.routes.uses_master_user(&user.route, update.side) {
        return Ok(Json(CheckResult {
            side: update.side,
            ok: false,
            code: "not_needed".into(),
            message: "This mailbox is copied with an administrator login: your password is \
                      not needed for it."
                .into(),
        }));
    }
    let keys = account::attempt_keys(&state, &user.route, update.side, login, client);
    let attempt = account::reserve(&state, keys).await?;
    let claim = account::Claim {
        route: &user.route,
        side: update.side,
        user: login,
        password: &update.password,
    };
    let result = account::prove(&state, "password change", claim, attempt, client).await;
    if !result.ok {
        return Ok(Json(result));
    }
    Credentials::update(
        &state.store,
        &state.vault,
        &user.job_id,
        Update::Replace,
        |credentials| {
            let slot = match update.side {
                AccountSide::Source => &mut credentials.source_password,
                AccountSide::Target => &mut credentials.target_password,
            };
            // The old password is wiped, not just dropped.
            slot.zeroize();
            *slot = update.password;
        },
    )
    .await?;
    let side = match update.side {
        AccountSide::Source => "source",
        AccountSide::Target => "target",
    };
    state
        .store
        .log_action(
            &user.job_id,
            &user.source_user,
            &format!("updated the {side} password"),
        )
        .await?;
    state
        .store
        .resume_if(&user.job_id, &[JobStatus::PausedPasswordChanged])
        .await?;
    Ok(Json(result))
}
