//! Who is signed in: an end user (bound to one job) or a staff member. Stored in the
//! server-side session (tower-sessions); the browser holds only an opaque HttpOnly cookie.

use super::error::ApiFailure;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use mailferry_shared::StaffRole;
use serde::{Deserialize, Serialize};
use tower_sessions::Session;

const KEY: &str = "who";

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

/// Signs in: a fresh session id (no fixation) holding `who`.
pub async fn sign_in(session: &Session, who: Who) -> Result<(), ApiFailure> {
    session.cycle_id().await?;
    session.insert(KEY, who).await?;
    Ok(())
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
