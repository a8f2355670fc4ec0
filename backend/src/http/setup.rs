//! First run: while no staff account exists, the node holds a one-time setup token and
//! prints a link with it (`PUBLIC_URL/setup#TOKEN`) on its terminal and in its log.
//! Opening the link and choosing a user name and password creates the first admin and
//! signs them in. The token is good once, only on the node that printed it, and only
//! until that node restarts; it lives in memory only (erased when used) and travels in
//! the link's fragment, which browsers never send to a server or a proxy's log.

use super::account::reserve;
use super::auth::{self, Who};
use super::client_address::ClientAddress;
use super::error::ApiFailure;
use super::rate_limit::{AttemptKeys, Outcome};
use super::AppState;
use crate::staff::StaffError;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine;
use mailferry_shared::{FirstAdmin, Me, SetupStatus, StaffRole};
use std::sync::Mutex;
use subtle::ConstantTimeEq;
use tower_sessions::Session;
use zeroize::Zeroizing;

pub fn routes() -> Router<AppState> {
    Router::new().route("/setup", get(status).post(create_first_admin))
}

/// The one-time setup token of this node, if it still waits for its first admin.
#[derive(Default)]
pub struct SetupToken(Mutex<Option<Zeroizing<String>>>);

impl std::fmt::Debug for SetupToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SetupToken(..)")
    }
}

impl SetupToken {
    /// A fresh random token (256 bits, base64url), held until used or the node stops.
    pub fn issue() -> Result<(Self, Zeroizing<String>), getrandom::Error> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        getrandom::getrandom(bytes.as_mut())?;
        let token = Zeroizing::new(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(*bytes));
        Ok((Self(Mutex::new(Some(token.clone()))), token))
    }

    fn held(&self) -> bool {
        self.lock().is_some()
    }

    /// Takes the token out if `given` is it (compared in constant time); nobody else can
    /// use it meanwhile. [`SetupToken::put_back`] returns it when the sign-up failed.
    fn take_if(&self, given: &str) -> Option<Zeroizing<String>> {
        let mut held = self.lock();
        let matches = held
            .as_ref()
            .is_some_and(|t| bool::from(t.as_bytes().ct_eq(given.as_bytes())));
        if matches {
            held.take()
        } else {
            None
        }
    }

    fn put_back(&self, token: Zeroizing<String>) {
        *self.lock() = Some(token);
    }

    fn erase(&self) {
        self.lock().take();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Zeroizing<String>>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Whether the setup page has anything to do: this node holds a token and still no
/// staff account exists (one made meanwhile, e.g. with `mailferry staff add`, ends it).
async fn setup_needed(state: &AppState) -> Result<bool, ApiFailure> {
    if !state.setup.held() {
        return Ok(false);
    }
    if crate::staff::any(state.db.pool()).await.map_err(internal)? {
        state.setup.erase();
        return Ok(false);
    }
    Ok(true)
}

async fn status(State(state): State<AppState>) -> Result<Json<SetupStatus>, ApiFailure> {
    Ok(Json(SetupStatus {
        needed: setup_needed(&state).await?,
    }))
}

const ALREADY_SET_UP: &str =
    "This server is already set up: sign in on the staff page, or ask an administrator for an account.";
const NOT_THIS_LINK: &str = "This setup link is not valid: it works once, on the server that printed it, until that server restarts. Use the link the server printed when it last started.";

async fn create_first_admin(
    State(state): State<AppState>,
    client: ClientAddress,
    session: Session,
    Json(request): Json<FirstAdmin>,
) -> Result<Json<Me>, ApiFailure> {
    let attempt = reserve(
        &state,
        AttemptKeys {
            account: "setup".into(),
            address: client.group(),
            server: None,
        },
    )
    .await?;
    if !setup_needed(&state).await? {
        state.limiter.finish(attempt, Outcome::NotCounted).await;
        return Err(ApiFailure::Conflict(ALREADY_SET_UP.into()));
    }
    let Some(token) = state.setup.take_if(request.token.trim()) else {
        state
            .limiter
            .finish(attempt, Outcome::WrongCredentials)
            .await;
        tracing::warn!(target: "mailferry::sign_in", %client, "a first-admin setup with a wrong token was refused");
        return Err(ApiFailure::Forbidden(NOT_THIS_LINK.into()));
    };
    let username = request.username.trim().to_string();
    let created = crate::staff::add(
        state.db.pool(),
        &username,
        &request.password,
        StaffRole::Admin,
        false,
    )
    .await;
    match created {
        Ok(()) => drop(token),
        Err(err) => {
            state.limiter.finish(attempt, Outcome::NotCounted).await;
            return Err(match err {
                StaffError::BadName | StaffError::WeakPassword => {
                    state.setup.put_back(token);
                    ApiFailure::BadRequest(err.to_string())
                }
                // Somebody made a staff account meanwhile: setup is over.
                StaffError::Exists(_) => ApiFailure::Conflict(ALREADY_SET_UP.into()),
                other => {
                    state.setup.put_back(token);
                    internal(other)
                }
            });
        }
    }
    state.limiter.finish(attempt, Outcome::Succeeded).await;
    tracing::info!(target: "mailferry::sign_in", %client, staff = %username, "the first admin was created from the setup link");
    state
        .store
        .audit(
            &username,
            "first_admin",
            None,
            "created from the setup link",
        )
        .await?;
    auth::sign_in(
        &session,
        Who::Staff {
            username: username.clone(),
            role: StaffRole::Admin,
        },
    )
    .await?;
    Ok(Json(Me::Staff {
        username,
        role: StaffRole::Admin,
    }))
}

fn internal(err: StaffError) -> ApiFailure {
    ApiFailure::Internal(err.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_taken_once_and_only_by_its_own_value() {
        let (held, token) = SetupToken::issue().unwrap();
        assert_eq!(token.len(), 43, "256 bits in base64url");
        assert!(held.take_if("").is_none());
        assert!(held.take_if(&token[..42]).is_none());
        let taken = held.take_if(&token).expect("the right token");
        assert!(held.take_if(&token).is_none(), "used once");
        held.put_back(taken);
        assert!(
            held.take_if(&token).is_some(),
            "returned after a failed sign-up"
        );
        assert!(!held.held());
    }

    #[test]
    fn two_tokens_differ() {
        let (_, a) = SetupToken::issue().unwrap();
        let (_, b) = SetupToken::issue().unwrap();
        assert_ne!(*a, *b);
    }
}
