//! A user's tokens (`auth = "oauth2"`): the access token while it is fresh, a new one
//! from the refresh token before it expires. A provider that rotates refresh tokens
//! hands back a new one each time: it is stored (sealed) at once, or the next run would
//! present a spent one.

use super::app::access;
use super::provider::Provider;
use super::tokens::TokenSet;
use crate::engine::{AccessToken, TokenError, TokenSource};
use futures::future::BoxFuture;
use std::sync::Arc;
use tokio::sync::Mutex;

/// Called with the new tokens after every refresh (to seal them into the job).
pub type OnRefresh = Arc<dyn Fn(TokenSet) -> BoxFuture<'static, ()> + Send + Sync>;

pub struct UserTokens {
    provider: Arc<Provider>,
    tokens: Mutex<TokenSet>,
    on_refresh: Option<OnRefresh>,
}

impl std::fmt::Debug for UserTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserTokens")
            .field("server", &self.provider.server)
            .finish_non_exhaustive()
    }
}

impl UserTokens {
    pub fn new(provider: Arc<Provider>, tokens: TokenSet, on_refresh: Option<OnRefresh>) -> Self {
        UserTokens {
            provider,
            tokens: Mutex::new(tokens),
            on_refresh,
        }
    }

    fn sign_in_again(&self, why: &str) -> TokenError {
        TokenError::Revoked(format!(
            "{why}: sign in again with {} to continue",
            self.provider.label()
        ))
    }
}

impl TokenSource for UserTokens {
    fn token(&self, force_refresh: bool) -> BoxFuture<'_, Result<AccessToken, TokenError>> {
        Box::pin(async move {
            let mut tokens = self.tokens.lock().await;
            if !force_refresh && tokens.fresh() {
                return Ok(access(&tokens));
            }
            let Some(refresh_token) = tokens.refresh_token.clone() else {
                return Err(self.sign_in_again(&format!(
                    "{} gave no refresh token and the sign-in has expired",
                    self.provider.label()
                )));
            };
            let refresh_token = zeroize::Zeroizing::new(refresh_token);
            match self.provider.refresh(&refresh_token).await {
                Ok(fresh) => {
                    *tokens = fresh.clone();
                    tracing::debug!(server = %self.provider.server, "access token refreshed");
                    if let Some(store) = &self.on_refresh {
                        store(fresh).await;
                    }
                    Ok(access(&tokens))
                }
                Err(super::provider::ProviderError::Refused(words)) => {
                    Err(self.sign_in_again(&words))
                }
                Err(other) => Err(other.into_token_error()),
            }
        })
    }

    fn provider_label(&self) -> &str {
        self.provider.label()
    }
}
