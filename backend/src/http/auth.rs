//! Who is signed in: an end user (bound to one job) or a staff member. Stored in the
//! server-side session (tower-sessions); the browser holds only an opaque HttpOnly cookie.
//!
//! [`guard`] checks every API request's session before any handler sees it: a session
//! older than `session_lifetime_seconds` (however busy) ends; a staff session ends when
//! its account is removed or its password changed after the sign-in, and follows a role
//! change at once. Live-progress streams are re-checked every few seconds against the
//! session store, so they end at sign-out, also when it happened on another node.

use super::error::ApiFailure;
use super::AppState;
use axum::body::Body;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::header;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use mailferry_shared::StaffRole;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use tower_sessions::session::Id;
use tower_sessions::Session;

const KEY: &str = "who";
/// Unix milliseconds of the sign-in.
const SIGNED_IN_AT: &str = "signed_in_at";
/// How often a live stream checks that its session still stands.
pub const STREAM_RECHECK: Duration = Duration::from_secs(3);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Who {
    User {
        job_id: String,
        route: String,
        source_user: String,
        target_user: String,
    },
    Staff {
        username: String,
        role: StaffRole,
    },
}

pub async fn current(session: &Session) -> Result<Option<Who>, ApiFailure> {
    Ok(session.get::<Who>(KEY).await?)
}

/// Signs in: a fresh session id (no fixation) holding `who` and the sign-in time.
pub async fn sign_in(session: &Session, who: Who) -> Result<(), ApiFailure> {
    session.cycle_id().await?;
    session.insert(KEY, who).await?;
    session
        .insert(SIGNED_IN_AT, crate::clock::unix_millis())
        .await?;
    Ok(())
}

/// What [`standing`] found out about a session.
#[derive(Debug, PartialEq, Eq)]
enum Standing {
    Valid,
    /// Valid, but the staff role changed since the sign-in.
    Changed(Who),
    Ended(&'static str),
}

/// Whether a session holding `who`, signed in at `signed_in_at`, may still act.
async fn standing(
    state: &AppState,
    who: &Who,
    signed_in_at: Option<i64>,
) -> Result<Standing, ApiFailure> {
    let Some(signed_in_at) = signed_in_at else {
        return Ok(Standing::Ended("it has no sign-in time"));
    };
    let age_ms = crate::clock::unix_millis().saturating_sub(signed_in_at);
    if age_ms > state.edge.session_lifetime.as_millis() as i64 {
        return Ok(Standing::Ended("it reached session_lifetime_seconds"));
    }
    let Who::Staff { username, role } = who else {
        return Ok(Standing::Valid);
    };
    let current = crate::staff::standing(state.db.pool(), username)
        .await
        .map_err(|e| ApiFailure::Internal(e.into()))?;
    Ok(match current {
        None => Standing::Ended("its staff account was removed"),
        Some(now) if now.password_changed_at >= signed_in_at => {
            Standing::Ended("its staff password changed after the sign-in")
        }
        Some(now) if now.role != *role => Standing::Changed(Who::Staff {
            username: username.clone(),
            role: now.role,
        }),
        Some(_) => Standing::Valid,
    })
}

/// Checks the request's session (see the module text); a session that no longer stands
/// is deleted, so the handler sees nobody signed in. Event streams end when it stops
/// standing.
pub async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let session = request.extensions().get::<Session>().cloned();
    if let Some(session) = &session {
        if let Err(err) = check(&state, session).await {
            return err.into_response();
        }
    }
    let response = next.run(request).await;
    let streaming = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    match session.and_then(|s| s.id()) {
        Some(id) if streaming => {
            let (parts, body) = response.into_parts();
            let watched = body
                .into_data_stream()
                .take_until(Box::pin(until_session_ends(state, id)));
            Response::from_parts(parts, Body::from_stream(watched))
        }
        _ => response,
    }
}

async fn check(state: &AppState, session: &Session) -> Result<(), ApiFailure> {
    let Some(who) = session.get::<Who>(KEY).await? else {
        return Ok(());
    };
    let signed_in_at = session.get::<i64>(SIGNED_IN_AT).await?;
    match standing(state, &who, signed_in_at).await? {
        Standing::Valid => {}
        Standing::Changed(who) => session.insert(KEY, who).await?,
        Standing::Ended(why) => {
            tracing::info!(reason = why, "a session ended");
            session.flush().await?;
        }
    }
    Ok(())
}

/// Returns once the session `id` is gone from the store (signed out here or on another
/// node, expired) or no longer stands.
async fn until_session_ends(state: AppState, id: Id) {
    loop {
        tokio::time::sleep(STREAM_RECHECK).await;
        let record = match state.edge.sessions.load(&id).await {
            Ok(Some(record)) => record,
            Ok(None) => return,
            Err(err) => {
                tracing::warn!(error = %err, "live progress: cannot read the session store");
                continue;
            }
        };
        let who = record
            .data
            .get(KEY)
            .and_then(|v| serde_json::from_value::<Who>(v.clone()).ok());
        let signed_in_at = record.data.get(SIGNED_IN_AT).and_then(|v| v.as_i64());
        let Some(who) = who else { return };
        match standing(&state, &who, signed_in_at).await {
            Ok(Standing::Ended(why)) => {
                tracing::info!(
                    reason = why,
                    "a live-progress stream ended with its session"
                );
                return;
            }
            Ok(_) => {}
            Err(err) => tracing::warn!(error = %err, "live progress: cannot check the session"),
        }
    }
}

pub async fn sign_out(session: &Session) -> Result<(), ApiFailure> {
    session.flush().await?;
    Ok(())
}

/// Who the request's session belongs to, if anyone.
async fn who<S: Send + Sync>(parts: &mut Parts, state: &S) -> Result<Option<Who>, ApiFailure> {
    let session = Session::from_request_parts(parts, state)
        .await
        .map_err(|_| ApiFailure::Unauthorized)?;
    current(&session).await
}

/// An end user, signed in for one job.
#[derive(Debug, Clone)]
pub struct UserAuth {
    pub job_id: String,
    pub route: String,
    pub source_user: String,
    pub target_user: String,
}

impl<S: Send + Sync> FromRequestParts<S> for UserAuth {
    type Rejection = ApiFailure;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match who(parts, state).await? {
            Some(Who::User {
                job_id,
                route,
                source_user,
                target_user,
            }) => Ok(UserAuth {
                job_id,
                route,
                source_user,
                target_user,
            }),
            Some(Who::Staff { .. }) => Err(ApiFailure::Forbidden(
                "This page is for users migrating their own mailbox; staff use the helpdesk."
                    .into(),
            )),
            None => Err(ApiFailure::Unauthorized),
        }
    }
}

/// A helpdesk or admin staff member.
#[derive(Debug, Clone)]
pub struct StaffAuth {
    pub username: String,
    pub role: StaffRole,
}

impl<S: Send + Sync> FromRequestParts<S> for StaffAuth {
    type Rejection = ApiFailure;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match who(parts, state).await? {
            Some(Who::Staff { username, role }) => Ok(StaffAuth { username, role }),
            Some(Who::User { .. }) => Err(ApiFailure::Forbidden(
                "Only helpdesk and admin staff may do this.".into(),
            )),
            None => Err(ApiFailure::Unauthorized),
        }
    }
}

/// An admin (a staff member with the admin role).
#[derive(Debug, Clone)]
pub struct AdminAuth(pub StaffAuth);

impl<S: Send + Sync> FromRequestParts<S> for AdminAuth {
    type Rejection = ApiFailure;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let staff = StaffAuth::from_request_parts(parts, state).await?;
        if staff.role == StaffRole::Admin {
            Ok(AdminAuth(staff))
        } else {
            Err(ApiFailure::Forbidden(
                "Only administrators may do this.".into(),
            ))
        }
    }
}
