//! The handlers of the browser flow (see the module's documentation).

use super::proofs::{self, PendingFlow, Purpose};
use crate::account_check;
use crate::engine::{Password, StaticToken, TokenHandle};
use crate::http::auth::{self, Who};
use crate::http::client_address::ClientAddress;
use crate::http::error::ApiFailure;
use crate::http::AppState;
use crate::jobs::credentials::{Update, WAITING_FOR_CREDENTIALS};
use crate::jobs::Credentials;
use crate::oauth::browser::{self, Ask, FlowError};
use crate::oauth::{AuthKind, ProviderError};
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{delete, get};
use axum::{Json, Router};
use mailferry_shared::{AccountSide, OAuthNotice, OAuthSignedIn, OAuthStatus};
use serde::Deserialize;
use tower_sessions::Session;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/oauth/start", get(start))
        .route("/oauth/callback", get(callback))
        .route("/oauth/complete", get(complete))
        .route("/oauth/status", get(status))
        .route("/oauth/proof", delete(forget))
}

/// The scopes a user-identity sign-in asks for in app mode: who the user is, nothing more.
const IDENTITY_SCOPES: [&str; 3] = ["openid", "email", "profile"];

#[derive(Deserialize)]
struct StartQuery {
    route: String,
    side: AccountSide,
    /// New consent for the signed-in user's paused job.
    #[serde(default)]
    renew: bool,
}

/// "old" or "new", as users call their two mailboxes.
pub(crate) fn side_words(side: AccountSide) -> &'static str {
    match side {
        AccountSide::Source => "old",
        AccountSide::Target => "new",
    }
}

fn back_to(purpose: Purpose, route: &str) -> String {
    match purpose {
        Purpose::SignIn => format!(
            "/?route={}",
            url::form_urlencoded::byte_serialize(route.as_bytes()).collect::<String>()
        ),
        Purpose::Renew => "/migration".to_owned(),
    }
}

async fn notice_and_return(
    session: &Session,
    purpose: Purpose,
    route: &str,
    side: AccountSide,
    code: &str,
    message: String,
) -> Result<Response, ApiFailure> {
    proofs::set_notice(
        session,
        OAuthNotice {
            route: route.to_owned(),
            side,
            ok: code == "ok",
            code: code.to_owned(),
            message,
        },
    )
    .await?;
    Ok(Redirect::to(&back_to(purpose, route)).into_response())
}

fn provider_failure(err: &ProviderError) -> (&'static str, String) {
    match err {
        ProviderError::Unreachable { .. } => (
            "unreachable",
            "The sign-in service cannot be reached right now. Try again in a few minutes; if it persists, tell your administrator.".to_owned(),
        ),
        ProviderError::Misconfigured { .. } => (
            "misconfigured",
            "Signing in with this provider is not set up correctly on the portal. Tell your administrator (the portal's log names the problem).".to_owned(),
        ),
        ProviderError::Refused(words) => ("refused", format!("The sign-in was refused: {words}.")),
    }
}

async fn start(
    State(state): State<AppState>,
    session: Session,
    Query(query): Query<StartQuery>,
) -> Result<Response, ApiFailure> {
    let purpose = if query.renew {
        Purpose::Renew
    } else {
        Purpose::SignIn
    };
    let Some(provider) = state.routes.oauth_provider(&query.route, query.side) else {
        return Err(ApiFailure::BadRequest(format!(
            "The {} side of route {:?} does not sign in with a provider.",
            side_words(query.side),
            query.route
        )));
    };
    if purpose == Purpose::Renew {
        match auth::current(&session).await? {
            Some(Who::User { route, .. }) if route == query.route => {}
            _ => return Err(ApiFailure::Unauthorized),
        }
    }
    let identity: Vec<String> = IDENTITY_SCOPES.iter().map(|s| s.to_string()).collect();
    let ask = match state.routes.auth_kind(&query.route, query.side) {
        Some(AuthKind::OAuth2App) => Ask {
            scopes: &identity,
            extra: &[],
        },
        _ => Ask {
            scopes: &provider.settings.scopes,
            extra: &provider.settings.extra_auth_params,
        },
    };
    match browser::begin(&provider, &state.edge.oauth_redirect, ask).await {
        Ok((url, secrets)) => {
            proofs::add_flow(
                &session,
                PendingFlow {
                    route: query.route,
                    side: query.side,
                    purpose,
                    secrets,
                    started_at: crate::clock::unix_seconds(),
                },
            )
            .await?;
            Ok(Redirect::to(&url).into_response())
        }
        Err(err) => {
            tracing::error!(target: "mailferry::sign_in", error = %err, "cannot start the sign-in with the provider");
            let (code, message) = provider_failure(&err);
            notice_and_return(&session, purpose, &query.route, query.side, code, message).await
        }
    }
}

#[derive(Deserialize)]
struct CallbackQuery {
    state: Option<String>,
    code: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// The provider's redirect lands here, cross-site: the session cookie is not sent.
/// A same-site navigation to `complete` carries it.
async fn callback(Query(query): Query<CallbackQuery>) -> Response {
    let mut next = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in [
        ("state", &query.state),
        ("code", &query.code),
        ("error", &query.error),
        ("error_description", &query.error_description),
    ] {
        if let Some(value) = value {
            next.append_pair(name, value);
        }
    }
    let target = format!("/api/oauth/complete?{}", next.finish());
    let attr = target.replace('&', "&amp;").replace('"', "&quot;");
    let page = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><meta name=\"referrer\" content=\"no-referrer\">\
         <meta http-equiv=\"refresh\" content=\"0;url={attr}\"><title>Signing in…</title></head>\
         <body><p>Signing you in… <a href=\"{attr}\">Continue</a></p></body></html>"
    );
    (
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        Html(page),
    )
        .into_response()
}

fn refused_page(message: &str) -> Response {
    let page = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Sign-in not completed</title></head>\
         <body><h1>Sign-in not completed</h1><p id=\"oauth-refused\">{}</p><p><a href=\"/\">Start again</a></p></body></html>",
        message.replace('&', "&amp;").replace('<', "&lt;")
    );
    (
        StatusCode::BAD_REQUEST,
        [(header::CACHE_CONTROL, "no-store")],
        Html(page),
    )
        .into_response()
}

async fn complete(
    State(state): State<AppState>,
    session: Session,
    client: ClientAddress,
    Query(query): Query<CallbackQuery>,
) -> Result<Response, ApiFailure> {
    let flow = match &query.state {
        Some(given) => proofs::take_flow(&session, given).await?,
        None => None,
    };
    let Some(flow) = flow else {
        tracing::warn!(target: "mailferry::sign_in", %client, "OAuth callback refused: its state matches no sign-in this browser started");
        return Ok(refused_page(
            "This sign-in answer does not belong to a sign-in started in this browser (or it expired). Nothing was signed in.",
        ));
    };
    let (route, side, purpose) = (flow.route.clone(), flow.side, flow.purpose);
    let Some(provider) = state.routes.oauth_provider(&route, side) else {
        return Ok(refused_page(
            "This migration route is no longer configured.",
        ));
    };
    let label = provider.label().to_owned();
    if let Some(error) = &query.error {
        tracing::info!(target: "mailferry::sign_in", %client, route, ?side, error, "OAuth sign-in not completed at the provider");
        let (code, message) = if error == "access_denied" {
            ("cancelled", format!("The sign-in with {label} was cancelled; nothing was changed. Sign in again when you are ready."))
        } else {
            (
                "refused",
                format!(
                    "{label} did not complete the sign-in ({error}{}).",
                    query
                        .error_description
                        .as_deref()
                        .map(|d| format!(": {d}"))
                        .unwrap_or_default()
                ),
            )
        };
        return notice_and_return(&session, purpose, &route, side, code, message).await;
    }
    let Some(code) = query.code.as_deref().filter(|c| !c.is_empty()) else {
        return Ok(refused_page("The sign-in answer carries no code."));
    };
    let consented = match browser::finish(
        &provider,
        &state.edge.oauth_redirect,
        &flow.secrets,
        code,
    )
    .await
    {
        Ok(consented) => consented,
        Err(err) => {
            tracing::warn!(target: "mailferry::sign_in", %client, route, ?side, error = %err, "OAuth sign-in failed");
            let (code, message) = match &err {
                FlowError::Provider(p) => provider_failure(p),
                FlowError::Verification { .. } => (
                    "refused",
                    format!("The sign-in with {label} could not be verified; start again."),
                ),
                FlowError::NoMailbox(words) => ("refused", format!("{words}.")),
            };
            return notice_and_return(&session, purpose, &route, side, code, message).await;
        }
    };
    let user = state.routes.normalize_user(&route, side, &consented.user);
    let kind = state.routes.auth_kind(&route, side);
    // The proof: a real IMAP login to this mailbox, with the user's own token (or, in
    // app mode, the organisation's app acting for the user who just signed in).
    let tokens = (kind == Some(AuthKind::OAuth2)).then(|| {
        TokenHandle::new(StaticToken {
            token: Password::new(consented.tokens.access_token.clone()),
            label: label.clone(),
        })
    });
    let Some(endpoint) = state.routes.endpoint(&route, side, &user, "", tokens) else {
        return Ok(refused_page(
            "This migration route is no longer configured.",
        ));
    };
    let result = account_check::check_endpoint(side, &endpoint).await;
    crate::http::account::log_check("oauth sign-in", &route, &user, client, &result);
    if !result.ok {
        return notice_and_return(
            &session,
            purpose,
            &route,
            side,
            &result.code,
            result.message,
        )
        .await;
    }
    let kept = (kind == Some(AuthKind::OAuth2)).then_some(&consented.tokens);
    match purpose {
        Purpose::SignIn => {
            proofs::add_proof(&session, &state.vault, &route, side, &user, &label, kept).await?;
            let message = format!("Signed in with {label} as {user}.");
            notice_and_return(&session, purpose, &route, side, "ok", message).await
        }
        Purpose::Renew => renew(&state, &session, &route, side, &user, &label, kept.cloned()).await,
    }
}

/// New consent for the signed-in user's job: only for the same mailbox, then the job
/// resumes.
async fn renew(
    state: &AppState,
    session: &Session,
    route: &str,
    side: AccountSide,
    user: &str,
    label: &str,
    tokens: Option<crate::oauth::TokenSet>,
) -> Result<Response, ApiFailure> {
    let Some(Who::User {
        job_id,
        source_user,
        target_user,
        ..
    }) = auth::current(session).await?
    else {
        return Err(ApiFailure::Unauthorized);
    };
    let mailbox = match side {
        AccountSide::Source => &source_user,
        AccountSide::Target => &target_user,
    };
    if mailbox != user {
        tracing::warn!(target: "mailferry::sign_in", route, ?side, consented = user, job_user = %mailbox, "renewed sign-in refused: another account");
        let message = format!(
            "You signed in with {label} as {user}, but this migration's {} mailbox is {mailbox}. Sign in as {mailbox}.",
            side_words(side)
        );
        return notice_and_return(
            session,
            Purpose::Renew,
            route,
            side,
            "wrong_account",
            message,
        )
        .await;
    }
    Credentials::update(&state.store, &state.vault, &job_id, Update::Replace, |c| {
        *c.tokens_mut(side) = tokens
    })
    .await?;
    state
        .store
        .log_action(
            &job_id,
            &source_user,
            &format!(
                "signed in again with {label} ({} mailbox)",
                side_words(side)
            ),
        )
        .await?;
    state
        .store
        .resume_if(&job_id, &WAITING_FOR_CREDENTIALS)
        .await?;
    let message = format!("Signed in with {label} as {user}; the migration goes on.");
    notice_and_return(session, Purpose::Renew, route, side, "ok", message).await
}

async fn status(session: Session) -> Result<Json<OAuthStatus>, ApiFailure> {
    let signed_in = proofs::proofs(&session)
        .await?
        .into_iter()
        .map(|p| OAuthSignedIn {
            route: p.route.clone(),
            side: p.side,
            user: p.user.clone(),
            provider: p.provider.clone(),
        })
        .collect();
    Ok(Json(OAuthStatus {
        signed_in,
        notice: proofs::take_notice(&session).await?,
    }))
}

#[derive(Deserialize)]
struct ForgetQuery {
    route: String,
    side: AccountSide,
}

/// "Use another account": forgets one proven side.
async fn forget(
    session: Session,
    Query(query): Query<ForgetQuery>,
) -> Result<Json<OAuthStatus>, ApiFailure> {
    proofs::forget_proof(&session, &query.route, query.side).await?;
    status(session).await
}
