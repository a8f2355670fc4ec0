//! The browser sign-in: authorization code with PKCE, `state` and `nonce`. `begin` gives
//! the provider's URL and what the callback must find again; `finish` exchanges the code
//! and verifies the ID token (signature from the provider's keys, issuer, audience,
//! nonce, expiry). The mailbox is the one named in the verified ID token: whoever
//! consents is whose mailbox is opened.

use super::provider::{chain, Provider, ProviderError};
use super::tokens::TokenSet;
use openidconnect::core::CoreAuthenticationFlow;
use openidconnect::{
    AuthorizationCode, CsrfToken, Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
    TokenResponse,
};
use serde::{Deserialize, Serialize};

/// What the callback needs to finish a flow `begin` started (kept in the user's session).
#[derive(Clone, Serialize, Deserialize)]
pub struct FlowSecrets {
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
}

impl std::fmt::Debug for FlowSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FlowSecrets(***)")
    }
}

/// Whose mailbox the consent was for, and its tokens.
#[derive(Debug)]
pub struct Consented {
    /// The mailbox name from the ID token's configured claim.
    pub user: String,
    pub tokens: TokenSet,
}

#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    #[error("{0}")]
    Provider(#[from] ProviderError),
    /// The ID token did not verify (forged, replayed, for another app, expired).
    #[error("the sign-in answer from {label} did not verify: {reason}")]
    Verification { label: String, reason: String },
    /// The ID token carries no usable mailbox name.
    #[error("{0}")]
    NoMailbox(String),
}

/// Scopes and parameters of one kind of sign-in.
pub struct Ask<'a> {
    pub scopes: &'a [String],
    /// Extra authorization parameters (Google's offline access).
    pub extra: &'a [(String, String)],
}

pub async fn begin(
    provider: &Provider,
    redirect_url: &str,
    ask: Ask<'_>,
) -> Result<(String, FlowSecrets), ProviderError> {
    let found = provider.discovered().await?;
    let redirect = RedirectUrl::new(redirect_url.to_owned())
        .map_err(|e| provider.misconfigured(format!("redirect URL {redirect_url:?}: {e}")))?;
    let client = found.client.clone().set_redirect_uri(redirect);
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .set_pkce_challenge(challenge);
    for scope in ask.scopes.iter().filter(|s| s.as_str() != "openid") {
        request = request.add_scope(Scope::new(scope.clone()));
    }
    for (name, value) in ask.extra {
        request = request.add_extra_param(name.clone(), value.clone());
    }
    let (url, state, nonce) = request.url();
    Ok((
        url.to_string(),
        FlowSecrets {
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
        },
    ))
}

pub async fn finish(
    provider: &Provider,
    redirect_url: &str,
    secrets: &FlowSecrets,
    code: &str,
) -> Result<Consented, FlowError> {
    let found = provider.discovered().await?;
    let redirect = RedirectUrl::new(redirect_url.to_owned())
        .map_err(|e| provider.misconfigured(format!("redirect URL {redirect_url:?}: {e}")))?;
    let client = found.client.clone().set_redirect_uri(redirect);
    let response = client
        .exchange_code(AuthorizationCode::new(code.to_owned()))
        .map_err(|e| provider.misconfigured(e.to_string()))?
        .set_pkce_verifier(PkceCodeVerifier::new(secrets.pkce_verifier.clone()))
        .request_async(provider.http())
        .await
        .map_err(|e| match provider.classify(e) {
            // A code refused is a sign-in that did not work (used twice, expired, or not
            // this browser's): the user starts again.
            ProviderError::Refused(_) => FlowError::Verification {
                label: provider.label().to_owned(),
                reason: "the sign-in code was refused (used already, expired, or not issued for this sign-in)".into(),
            },
            other => FlowError::Provider(other),
        })?;
    let verification = |reason: String| FlowError::Verification {
        label: provider.label().to_owned(),
        reason,
    };
    let id_token = response
        .id_token()
        .ok_or_else(|| verification("it carried no ID token".into()))?;
    let claims = id_token
        .claims(
            &client.id_token_verifier(),
            &Nonce::new(secrets.nonce.clone()),
        )
        .map_err(|e| verification(chain(&e)))?;
    let claim = provider.settings.user_claim.as_str();
    let user = match claim {
        "email" => {
            if claims.email_verified() == Some(false) {
                return Err(FlowError::NoMailbox(format!(
                    "{} says the address of this account is not verified",
                    provider.label()
                )));
            }
            claims.email().map(|e| e.as_str().to_owned())
        }
        "preferred_username" => claims.preferred_username().map(|u| u.as_str().to_owned()),
        "sub" => Some(claims.subject().as_str().to_owned()),
        _ => None,
    };
    let user = user
        .map(|u| u.trim().to_owned())
        .filter(|u| !u.is_empty())
        .ok_or_else(|| {
            FlowError::NoMailbox(format!(
                "{} did not say which mailbox this account is (no {claim:?} in the ID token)",
                provider.label()
            ))
        })?;
    Ok(Consented {
        user,
        tokens: Provider::token_set(&response, None),
    })
}
