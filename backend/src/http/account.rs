//! Signing in and out: end users with their two accounts (checked by real logins),
//! staff with their portal password.

use super::auth::{self, Who};
use super::client_address::ClientAddress;
use super::error::ApiFailure;
use super::rate_limit::{Attempt, AttemptKeys, Outcome};
use super::AppState;
use crate::account_check;
use crate::jobs::Credentials;
use crate::oauth::AuthKind;
use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use mailferry_shared::{
    AccountSide, CheckRequest, CheckResult, Me, RouteInfo, SignInRequest, SignInResult, StaffSignIn,
};
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

/// The account a sign-in attempt counts against, and the server it logs in to.
pub(super) fn attempt_keys(
    state: &AppState,
    route: &str,
    side: AccountSide,
    user: &str,
    client: ClientAddress,
) -> AttemptKeys {
    AttemptKeys {
        account: format!("{route}:{side:?}:{}", user.trim().to_lowercase()),
        address: client.group(),
        server: state.routes.server_address(route, side),
    }
}

/// Reserves a sign-in attempt before the slow login starts, or answers 429.
pub(super) async fn reserve(state: &AppState, keys: AttemptKeys) -> Result<Attempt, ApiFailure> {
    let account = keys.account.clone();
    match state.limiter.begin(keys).await {
        Ok(Ok(attempt)) => Ok(attempt),
        Ok(Err(refusal)) => {
            tracing::warn!(target: "mailferry::sign_in", %account, ?refusal, "sign-in attempt refused by the rate limit");
            Err(ApiFailure::TooManyRequests(refusal.message()))
        }
        Err(err) => Err(ApiFailure::Internal(err.into())),
    }
}

pub(super) fn outcome(result: &CheckResult) -> Outcome {
    if result.ok {
        Outcome::Succeeded
    } else if account_check::is_credential_failure(result) {
        Outcome::WrongCredentials
    } else {
        Outcome::NotCounted
    }
}

/// Every sign-in check, good or bad, goes to the log with the client's address (never
/// with the password).
pub(super) fn log_check(
    what: &str,
    route: &str,
    user: &str,
    client: ClientAddress,
    result: &CheckResult,
) {
    if result.ok {
        tracing::info!(target: "mailferry::sign_in", %client, route, side = ?result.side, user, what, "sign-in succeeded");
    } else {
        tracing::warn!(target: "mailferry::sign_in", %client, route, side = ?result.side, user, what, code = %result.code, "sign-in failed");
    }
}

/// Who claims to own which mailbox, with what password.
pub(super) struct Claim<'a> {
    pub route: &'a str,
    pub side: AccountSide,
    pub user: &'a str,
    pub password: &'a str,
}

/// One proof of ownership: a real login as the user (its attempt already reserved),
/// settled with the rate limiter and logged.
pub(super) async fn prove(
    state: &AppState,
    what: &str,
    claim: Claim<'_>,
    attempt: Attempt,
    client: ClientAddress,
) -> CheckResult {
    let result = account_check::check(
        &state.routes,
        claim.route,
        claim.side,
        claim.user,
        claim.password,
    )
    .await;
    state.limiter.finish(attempt, outcome(&result)).await;
    log_check(what, claim.route, claim.user, client, &result);
    result
}

async fn check(
    State(state): State<AppState>,
    client: ClientAddress,
    Json(request): Json<CheckRequest>,
) -> Result<Json<CheckResult>, ApiFailure> {
    known_route(&state, &request.route)?;
    let user: &str = &state
        .routes
        .normalize_user(&request.route, request.side, &request.user);
    let keys = attempt_keys(&state, &request.route, request.side, user, client);
    let attempt = reserve(&state, keys).await?;
    let claim = Claim {
        route: &request.route,
        side: request.side,
        user,
        password: &request.password,
    };
    let result = prove(&state, "check", claim, attempt, client).await;
    Ok(Json(result))
}

/// The target account of a sign-in: the route's rule decides where it has one (a request
/// that names another account is refused); otherwise the user typed it.
/// Both names come back normalised by the target server's rule.
fn target_user_of(
    state: &AppState,
    route: &str,
    source_user: &str,
    typed: &str,
) -> Result<String, ApiFailure> {
    let normalize = |name: &str| {
        state
            .routes
            .normalize_user(route, AccountSide::Target, name)
    };
    let typed = normalize(typed);
    let rule = state
        .routes
        .target_rule(route)
        .ok_or_else(|| ApiFailure::BadRequest("This migration route is not configured.".into()))?;
    match rule.derive(source_user).map(|name| normalize(&name)) {
        None => Ok(typed),
        Some(derived) if typed.is_empty() || typed == derived => Ok(derived),
        Some(derived) => Err(ApiFailure::BadRequest(format!(
            "On this migration route your new mailbox is {derived}: it follows from your old \
             user name ({}) and cannot be chosen.",
            rule.describe()
        ))),
    }
}

/// A side proven by signing in with its OAuth provider (kept in the session), or an
/// answer saying that sign-in is still missing.
async fn oauth_side(
    state: &AppState,
    session: &Session,
    route: &str,
    side: AccountSide,
) -> Result<Option<super::oauth::proofs::ProvenSide>, ApiFailure> {
    let Some(provider) = state.routes.oauth_provider(route, side) else {
        return Ok(None);
    };
    match super::oauth::proofs::proof(session, route, side).await? {
        Some(proof) => Ok(Some(proof)),
        None => Err(ApiFailure::BadRequest(format!(
            "Sign in with {} for your {} mailbox first.",
            provider.label(),
            super::oauth::side_words(side)
        ))),
    }
}

fn proven(side: AccountSide, proof: &super::oauth::proofs::ProvenSide) -> CheckResult {
    CheckResult {
        side,
        ok: true,
        code: "ok".into(),
        message: format!("Signed in with {} as {}.", proof.provider, proof.user),
    }
}

/// One side's proof at sign-in: the provider sign-in already made, or a login with the
/// user's password (its attempt reserved before).
async fn prove_side(
    state: &AppState,
    claim: Claim<'_>,
    proof: Option<&super::oauth::proofs::ProvenSide>,
    attempt: Option<Attempt>,
    client: ClientAddress,
) -> CheckResult {
    match (proof, attempt) {
        (Some(proof), _) => proven(claim.side, proof),
        (None, Some(attempt)) => prove(state, "sign-in", claim, attempt, client).await,
        (None, None) => unreachable!("a password side has a reserved attempt"),
    }
}

async fn sign_in(
    State(state): State<AppState>,
    client: ClientAddress,
    session: Session,
    Json(request): Json<SignInRequest>,
) -> Result<Json<SignInResult>, ApiFailure> {
    known_route(&state, &request.route)?;
    let route = request.route.as_str();
    // A side that signs in with a provider takes its mailbox from that sign-in (kept in
    // the session), never from the request: whoever consented is whose mailbox it is.
    let source_proof = oauth_side(&state, &session, route, AccountSide::Source).await?;
    let target_proof = oauth_side(&state, &session, route, AccountSide::Target).await?;
    // One mailbox, one job: names in the form the server's rule gives them.
    let source_user = match &source_proof {
        Some(proof) => proof.user.clone(),
        None => state
            .routes
            .normalize_user(route, AccountSide::Source, &request.source_user),
    };
    let source_user = source_user.as_str();
    let target_user = match &target_proof {
        Some(proof) => {
            // Where the route derives the new mailbox from the old one, the account the
            // user signed in with must be that mailbox.
            let derived = target_user_of(&state, route, source_user, "")?;
            if !derived.is_empty() && derived != proof.user {
                tracing::warn!(target: "mailferry::sign_in", %client, route, source_user, consented = %proof.user, "sign-in refused: the provider account is not the route's target");
                return Err(ApiFailure::BadRequest(format!(
                    "You signed in with {} as {}, but on this route your new mailbox is {derived}. \
                     Sign in with {} as {derived}.",
                    proof.provider, proof.user, proof.provider
                )));
            }
            Ok(proof.user.clone())
        }
        None => target_user_of(&state, route, source_user, &request.target_user),
    };
    let target_user = match target_user {
        Ok(user) => user,
        Err(refused) => {
            tracing::warn!(target: "mailferry::sign_in", %client, route, source_user, target_user = request.target_user.trim(), "sign-in refused: the target account does not follow the route's rule");
            return Err(refused);
        }
    };
    let target_user = target_user.as_str();
    // Password sides: reserve both attempts before either slow login starts.
    let reserve_side = |side: AccountSide, user: &str, needed: bool| {
        let keys = attempt_keys(&state, route, side, user, client);
        let state = &state;
        async move {
            if needed {
                reserve(state, keys).await.map(Some)
            } else {
                Ok(None)
            }
        }
    };
    let (source_attempt, target_attempt) = tokio::join!(
        reserve_side(AccountSide::Source, source_user, source_proof.is_none()),
        reserve_side(AccountSide::Target, target_user, target_proof.is_none()),
    );
    let (source_attempt, target_attempt) = match (source_attempt, target_attempt) {
        (Ok(source), Ok(target)) => (source, target),
        (Ok(Some(other)), Err(refused)) | (Err(refused), Ok(Some(other))) => {
            state.limiter.finish(other, Outcome::NotCounted).await;
            return Err(refused);
        }
        (Err(refused), _) | (_, Err(refused)) => return Err(refused),
    };
    // Both sides prove ownership: with the user's own password (also where a master
    // login will do the copying: knowing an address is not owning the mailbox), or by
    // the provider sign-in already made.
    let (source, target) = tokio::join!(
        prove_side(
            &state,
            Claim {
                route,
                side: AccountSide::Source,
                user: source_user,
                password: &request.source_password,
            },
            source_proof.as_ref(),
            source_attempt,
            client,
        ),
        prove_side(
            &state,
            Claim {
                route,
                side: AccountSide::Target,
                user: target_user,
                password: &request.target_password,
            },
            target_proof.as_ref(),
            target_attempt,
            client,
        ),
    );
    if !(source.ok && target.ok) {
        return Ok(Json(SignInResult {
            source,
            target,
            job_id: None,
        }));
    }
    let keys = (
        state
            .routes
            .account_key(route, AccountSide::Source, source_user),
        state
            .routes
            .account_key(route, AccountSide::Target, target_user),
    );
    let (Some(source_account), Some(target_account)) = keys else {
        return Err(ApiFailure::BadRequest(
            "This migration route is not configured.".into(),
        ));
    };
    let job_id = state
        .store
        .open_job(
            &source_account,
            &target_account,
            route,
            source_user,
            target_user,
            None,
        )
        .await?;
    // A password is kept only where the copy logs in with it: where a master login or
    // a provider's token copies, the password has done its work (the proof).
    let kept = |side: AccountSide, password: &str| {
        if state.routes.auth_kind(route, side) == Some(AuthKind::Password) {
            password.to_owned()
        } else {
            String::new()
        }
    };
    let tokens = |proof: &Option<super::oauth::proofs::ProvenSide>| {
        proof
            .as_ref()
            .and_then(|p| super::oauth::proofs::open_tokens(&state.vault, p))
    };
    let sealed = Credentials {
        source_password: kept(AccountSide::Source, &request.source_password),
        target_password: kept(AccountSide::Target, &request.target_password),
        source_tokens: tokens(&source_proof),
        target_tokens: tokens(&target_proof),
    }
    .seal(&state.vault, &job_id)
    .map_err(|e| ApiFailure::Internal(e.into()))?;
    state.store.set_credentials(&job_id, &sealed).await?;
    // The tokens live in the job now, not in the session.
    super::oauth::proofs::clear(&session).await?;
    state
        .store
        .log_action(&job_id, source_user, &format!("signed in from {client}"))
        .await?;
    // A job that waited for new credentials goes on with these.
    state
        .store
        .resume_if(&job_id, &crate::jobs::credentials::WAITING_FOR_CREDENTIALS)
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
    client: ClientAddress,
    session: Session,
    Json(request): Json<StaffSignIn>,
) -> Result<Json<Me>, ApiFailure> {
    let keys = AttemptKeys {
        account: format!("staff:{}", request.username.trim().to_lowercase()),
        address: client.group(),
        server: None,
    };
    let attempt = reserve(&state, keys).await?;
    let role = crate::staff::verify(state.db.pool(), &request.username, &request.password).await;
    let role = match role {
        Ok(role) => role,
        Err(err) => {
            state.limiter.finish(attempt, Outcome::NotCounted).await;
            return Err(ApiFailure::Internal(err.into()));
        }
    };
    let Some(role) = role else {
        state
            .limiter
            .finish(attempt, Outcome::WrongCredentials)
            .await;
        tracing::warn!(target: "mailferry::sign_in", %client, staff = %request.username, "staff sign-in failed");
        return Err(ApiFailure::WrongCredentials);
    };
    state.limiter.finish(attempt, Outcome::Succeeded).await;
    tracing::info!(target: "mailferry::sign_in", %client, staff = %request.username, "staff sign-in succeeded");
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
