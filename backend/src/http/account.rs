//! Signing in and out: end users with their two accounts (checked by real logins),
//! staff with their portal password.

use super::auth::{self, Who};
use super::error::ApiFailure;
use super::AppState;
use crate::account_check;
use crate::jobs::Credentials;
use axum::extract::{ConnectInfo, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use mailferry_shared::{
    AccountSide, CheckRequest, CheckResult, Me, RouteInfo, SignInRequest, SignInResult, StaffSignIn,
};
use std::net::SocketAddr;
use tower_sessions::Session;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/routes", get(list_routes))
        .route("/check", post(check))
        .route("/session", post(sign_in).delete(sign_out))
        .route("/me", get(me))
        .route("/staff/session", post(staff_sign_in))
}

async fn list_routes(State(state): State<AppState>) -> Json<Vec<RouteInfo>> {
    Json(state.routes.infos())
}

fn known_route(state: &AppState, route: &str) -> Result<(), ApiFailure> {
    if state.routes.route(route).is_some() {
        Ok(())
    } else {
        Err(ApiFailure::BadRequest(format!(
            "There is no migration route named {route:?}; choose one of: {}.",
            state.routes.names().collect::<Vec<_>>().join(", ")
        )))
    }
}

async fn limited(state: &AppState, account: &str, address: &str) -> Result<(), ApiFailure> {
    let verdict = state
        .limiter
        .check(account, address)
        .await
        .map_err(|e| ApiFailure::Internal(e.into()))?;
    verdict.map_err(|minutes| {
        ApiFailure::TooManyRequests(format!(
            "Too many failed sign-in attempts. Wait {minutes} minutes, then try again."
        ))
    })
}

/// Records a failed check against the limiter when it was a wrong password.
async fn count_failure(state: &AppState, result: &CheckResult, account: &str, address: &str) {
    if result.code == "wrong_password" {
        state.limiter.failed(account, address).await;
    }
}

fn account_key(route: &str, side: AccountSide, user: &str) -> String {
    format!("{route}:{side:?}:{}", user.trim().to_lowercase())
}

async fn check(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Json(request): Json<CheckRequest>,
) -> Result<Json<CheckResult>, ApiFailure> {
    known_route(&state, &request.route)?;
    let account = account_key(&request.route, request.side, &request.user);
    let address = peer.ip().to_string();
    limited(&state, &account, &address).await?;
    let result = account_check::check(
        &state.routes,
        &request.route,
        request.side,
        request.user.trim(),
        &request.password,
    )
    .await;
    count_failure(&state, &result, &account, &address).await;
    Ok(Json(result))
}

async fn sign_in(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    session: Session,
    Json(request): Json<SignInRequest>,
) -> Result<Json<SignInResult>, ApiFailure> {
    known_route(&state, &request.route)?;
    let route = request.route.as_str();
    let source_user = request.source_user.trim();
    let target_user = request.target_user.trim();
    let address = peer.ip().to_string();
    let source_key = account_key(route, AccountSide::Source, source_user);
    let target_key = account_key(route, AccountSide::Target, target_user);
    limited(&state, &source_key, &address).await?;
    limited(&state, &target_key, &address).await?;
    let (source, target) = tokio::join!(
        account_check::check(
            &state.routes,
            route,
            AccountSide::Source,
            source_user,
            &request.source_password
        ),
        account_check::check(
            &state.routes,
            route,
            AccountSide::Target,
            target_user,
            &request.target_password
        ),
    );
    count_failure(&state, &source, &source_key, &address).await;
    count_failure(&state, &target, &target_key, &address).await;
    if !(source.ok && target.ok) {
        return Ok(Json(SignInResult {
            source,
            target,
            job_id: None,
        }));
    }
    state.limiter.succeeded(&source_key).await;
    state.limiter.succeeded(&target_key).await;
    let endpoints = (
        state
            .routes
            .endpoint(route, AccountSide::Source, source_user, ""),
        state
            .routes
            .endpoint(route, AccountSide::Target, target_user, ""),
    );
    let (Some(source_endpoint), Some(target_endpoint)) = endpoints else {
        return Err(ApiFailure::BadRequest(
            "This migration route is not configured.".into(),
        ));
    };
    let job_id = state
        .store
        .open_job(
            &source_endpoint.account_key(),
            &target_endpoint.account_key(),
            route,
            source_user,
            target_user,
            None,
        )
        .await?;
    let sealed = Credentials {
        source_password: request.source_password,
        target_password: request.target_password,
    }
    .seal(&state.vault, &job_id)
    .map_err(|e| ApiFailure::Internal(e.into()))?;
    state.store.set_credentials(&job_id, &sealed).await?;
    state
        .store
        .log_action(&job_id, source_user, "signed in")
        .await?;
    auth::sign_in(
        &session,
        Who::User {
            job_id: job_id.clone(),
            route: route.to_owned(),
            source_user: source_user.to_owned(),
            target_user: target_user.to_owned(),
        },
    )
    .await?;
    Ok(Json(SignInResult {
        source,
        target,
        job_id: Some(job_id),
    }))
}

async fn sign_out(session: Session) -> Result<Json<Me>, ApiFailure> {
    auth::sign_out(&session).await?;
    Ok(Json(Me::Anonymous))
}

async fn me(session: Session) -> Result<Json<Me>, ApiFailure> {
    Ok(Json(match auth::current(&session).await? {
        None => Me::Anonymous,
        Some(Who::User {
            job_id,
            route,
            source_user,
            target_user,
        }) => Me::User {
            job_id,
            source_user,
            target_user,
            route,
        },
        Some(Who::Staff { username, role }) => Me::Staff { username, role },
    }))
}

async fn staff_sign_in(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    session: Session,
    Json(request): Json<StaffSignIn>,
) -> Result<Json<Me>, ApiFailure> {
    let account = format!("staff:{}", request.username.to_lowercase());
    let address = peer.ip().to_string();
    limited(&state, &account, &address).await?;
    let role = crate::staff::verify(state.db.pool(), &request.username, &request.password)
        .await
        .map_err(|e| ApiFailure::Internal(e.into()))?;
    let Some(role) = role else {
        state.limiter.failed(&account, &address).await;
        return Err(ApiFailure::WrongCredentials);
    };
    state.limiter.succeeded(&account).await;
    auth::sign_in(
        &session,
        Who::Staff {
            username: request.username.clone(),
            role,
        },
    )
    .await?;
    Ok(Json(Me::Staff {
        username: request.username,
        role,
    }))
}
