//! App mode (`auth = "oauth2_app"`): the organisation's app gets tokens with no user
//! involved, either by the client-credentials grant (Microsoft's `IMAP.AccessAsApp`: one
//! token opens every mailbox the app was granted) or by a service account's signed
//! assertion naming the user (RFC 7523; Google's domain-wide delegation).

use super::provider::{Provider, ProviderError};
use super::tokens::{unix_now, TokenSet};
use crate::engine::{AccessToken, Password, TokenError, TokenSource};
use futures::future::BoxFuture;
use openidconnect::core::CoreErrorResponseType;
use serde::Serialize;
use std::sync::Arc;
use tokio::sync::Mutex;

/// Assertions last this long (Google accepts at most an hour).
const ASSERTION_SECONDS: u64 = 3600;
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

#[derive(Serialize)]
struct AssertionClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    scope: String,
    iat: u64,
    exp: u64,
}

/// Signs the RFC 7523 assertion that lets the service account act as `user`.
pub fn sign_assertion(provider: &Provider, user: &str, audience: &str) -> Result<String, String> {
    let key = provider
        .settings
        .private_key
        .as_ref()
        .ok_or("no private_key_file is configured")?;
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = key.key_id.clone();
    let now = unix_now();
    let claims = AssertionClaims {
        iss: &key.issuer,
        sub: user,
        aud: audience,
        scope: provider.settings.app_scopes.join(" "),
        iat: now,
        exp: now + ASSERTION_SECONDS,
    };
    jsonwebtoken::encode(&header, &claims, &key.key).map_err(|e| format!("signing failed: {e}"))
}

/// Tokens for one mailbox in app mode, cached until shortly before they expire.
pub struct AppTokens {
    provider: Arc<Provider>,
    /// The mailbox the assertion names (ignored by client credentials).
    user: String,
    cached: Mutex<Option<TokenSet>>,
}

impl std::fmt::Debug for AppTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppTokens")
            .field("server", &self.provider.server)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl AppTokens {
    pub fn new(provider: Arc<Provider>, user: &str) -> Self {
        AppTokens {
            provider,
            user: user.to_owned(),
            cached: Mutex::new(None),
        }
    }

    async fn fetch(&self) -> Result<TokenSet, ProviderError> {
        if self.provider.settings.private_key.is_some() {
            self.assertion_grant().await
        } else {
            self.provider.client_credentials().await
        }
    }

    async fn assertion_grant(&self) -> Result<TokenSet, ProviderError> {
        let provider = &self.provider;
        let token_uri = match provider
            .settings
            .private_key
            .as_ref()
            .and_then(|k| k.token_uri.clone())
        {
            Some(uri) => uri,
            None => provider.discovered().await?.token_endpoint.clone(),
        };
        let assertion = zeroize::Zeroizing::new(
            sign_assertion(provider, &self.user, &token_uri)
                .map_err(|e| provider.misconfigured(e))?,
        );
        let scope = provider.settings.app_scopes.join(" ");
        let mut form = vec![
            ("grant_type", JWT_BEARER),
            ("assertion", assertion.as_str()),
        ];
        // Google reads the scopes from the assertion; RFC 7523 providers (Keycloak,
        // oidc-provider) from the request's `scope` parameter, as RFC 6749 has it.
        if provider.settings.preset != Some(super::Preset::Google) && !scope.is_empty() {
            form.push(("scope", scope.as_str()));
        }
        let response = provider
            .http()
            .post(&token_uri)
            .form(&form)
            .send()
            .await
            .map_err(|e| ProviderError::Unreachable {
                server: provider.server.clone(),
                issuer: provider.settings.issuer.clone(),
                reason: super::provider::chain(&e),
            })?;
        let status = response.status();
        let body = response.bytes().await.unwrap_or_default();
        if status.is_success() {
            let parsed: openidconnect::core::CoreTokenResponse = serde_json::from_slice(&body)
                .map_err(|e| {
                    provider.misconfigured(format!("the token answer is not valid: {e}"))
                })?;
            return Ok(Provider::token_set(&parsed, None));
        }
        match serde_json::from_slice::<openidconnect::StandardErrorResponse<CoreErrorResponseType>>(
            &body,
        )
        {
            // In app mode no consent was given that could be withdrawn: a refused
            // assertion means the key or the delegation is wrong.
            Ok(error) if *error.error() == CoreErrorResponseType::InvalidGrant => {
                Err(provider.misconfigured(format!(
                    "{} refused the service account's assertion for {}{}: check that \
                     private_key_file is the key of the service account and that the account \
                     may act for this mailbox with the scopes {:?} (Google: domain-wide delegation)",
                    provider.label(),
                    self.user,
                    error
                        .error_description()
                        .map(|d| format!(" ({d})"))
                        .unwrap_or_default(),
                    provider.settings.app_scopes,
                )))
            }
            Ok(error) => Err(provider.classify::<reqwest::Error>(
                openidconnect::RequestTokenError::ServerResponse(error),
            )),
            Err(_) if status.is_server_error() => Err(ProviderError::Unreachable {
                server: provider.server.clone(),
                issuer: provider.settings.issuer.clone(),
                reason: format!("it answered HTTP {status}"),
            }),
            Err(_) => {
                Err(provider.misconfigured(format!("the token endpoint answered HTTP {status}")))
            }
        }
    }
}

impl TokenSource for AppTokens {
    fn token(&self, force_refresh: bool) -> BoxFuture<'_, Result<AccessToken, TokenError>> {
        Box::pin(async move {
            let mut cached = self.cached.lock().await;
            if let Some(tokens) = cached.as_ref().filter(|t| !force_refresh && t.fresh()) {
                return Ok(access(tokens));
            }
            let fresh = self.fetch().await.map_err(|e| match e {
                // An app refused is the administrator's to fix, never the user's.
                ProviderError::Refused(words) => TokenError::Misconfigured(words),
                other => other.into_token_error(),
            })?;
            let token = access(&fresh);
            *cached = Some(fresh);
            Ok(token)
        })
    }

    fn provider_label(&self) -> &str {
        self.provider.label()
    }
}

pub fn access(tokens: &TokenSet) -> AccessToken {
    AccessToken {
        secret: Password::new(tokens.access_token.clone()),
        expires_at: tokens.expires_at(),
    }
}
