//! Bearer tokens for OAuth 2.0 logins, as the engine sees them: something it asks for a
//! valid access token before every login. Where the token comes from (a refresh token, a
//! client-credentials grant, a signed assertion, a file) is the caller's business; the
//! engine only knows how long a token lasts and whether a failure is worth a retry.

use crate::engine::imap::endpoint::Password;
use futures::future::BoxFuture;
use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

/// One access token and when it stops working (`None`: not said).
#[derive(Clone, Debug)]
pub struct AccessToken {
    pub secret: Password,
    pub expires_at: Option<SystemTime>,
}

/// Why no token could be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The provider refused for good (consent withdrawn, refresh token expired or revoked,
    /// account disabled): only the user signing in again helps.
    #[error("{0}")]
    Revoked(String),
    /// The provider could not be reached or answered with a server error: retry later.
    #[error("{0}")]
    Unavailable(String),
    /// The profile is wrong (client secret, issuer, key): only the administrator helps.
    #[error("{0}")]
    Misconfigured(String),
}

/// Which kind of [`TokenError`] it was, without its words: what callers decide by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenErrorKind {
    Revoked,
    Unavailable,
    Misconfigured,
}

impl fmt::Display for TokenErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TokenErrorKind::Revoked => "revoked",
            TokenErrorKind::Unavailable => "unavailable",
            TokenErrorKind::Misconfigured => "misconfigured",
        })
    }
}

impl TokenError {
    pub fn kind(&self) -> TokenErrorKind {
        match self {
            TokenError::Revoked(_) => TokenErrorKind::Revoked,
            TokenError::Unavailable(_) => TokenErrorKind::Unavailable,
            TokenError::Misconfigured(_) => TokenErrorKind::Misconfigured,
        }
    }

    /// The words, as the token source gave them.
    pub fn message(&self) -> &str {
        match self {
            TokenError::Revoked(m) | TokenError::Unavailable(m) | TokenError::Misconfigured(m) => m,
        }
    }
}

/// Gives access tokens on demand, refreshing them as needed.
pub trait TokenSource: Send + Sync + fmt::Debug {
    /// A token valid for a while yet. With `force_refresh`, a new one even if the cached
    /// one looks valid (the server just refused it).
    fn token(&self, force_refresh: bool) -> BoxFuture<'_, Result<AccessToken, TokenError>>;

    /// What to call the provider in messages ("Microsoft", "Google", "the sign-in service").
    fn provider_label(&self) -> &str;
}

/// A shared token source, comparable by identity (so [`super::super::Auth`] stays `Eq`).
#[derive(Clone)]
pub struct TokenHandle(pub Arc<dyn TokenSource>);

impl TokenHandle {
    pub fn new(source: impl TokenSource + 'static) -> Self {
        TokenHandle(Arc::new(source))
    }
}

impl std::ops::Deref for TokenHandle {
    type Target = dyn TokenSource;
    fn deref(&self) -> &Self::Target {
        &*self.0
    }
}

impl PartialEq for TokenHandle {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}
impl Eq for TokenHandle {}

impl fmt::Debug for TokenHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenHandle({})", self.0.provider_label())
    }
}

/// A fixed token (from a file, for one-off command-line runs): never refreshed.
#[derive(Debug)]
pub struct StaticToken {
    pub token: Password,
    pub label: String,
}

impl TokenSource for StaticToken {
    fn token(&self, _force_refresh: bool) -> BoxFuture<'_, Result<AccessToken, TokenError>> {
        Box::pin(async move {
            Ok(AccessToken {
                secret: self.token.clone(),
                expires_at: None,
            })
        })
    }
    fn provider_label(&self) -> &str {
        &self.label
    }
}
