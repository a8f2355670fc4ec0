//! One OAuth 2.0 / OpenID Connect provider as a server profile names it: discovered once
//! (and again after a failure), then asked for authorization URLs, code exchanges,
//! refreshes and app tokens. All HTTP goes through one client that follows no redirects.

use super::settings::Resolved;
use super::tokens::TokenSet;
use crate::engine::TokenError;
use openidconnect::core::{CoreClient, CoreProviderMetadata, CoreTokenResponse};
use openidconnect::{
    ClientId, ClientSecret, EndpointMaybeSet, EndpointNotSet, EndpointSet, IssuerUrl,
    OAuth2TokenResponse, RefreshToken, Scope,
};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

/// The client as discovery builds it: authorization endpoint known, token and user-info
/// endpoints as the provider listed them.
pub type OidcClient = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// How long any one request to the provider may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

pub struct Provider {
    /// The server profile it belongs to (named in every error).
    pub server: String,
    pub settings: Resolved,
    http: reqwest::Client,
    discovered: Mutex<Option<Arc<Discovered>>>,
}

pub struct Discovered {
    pub client: OidcClient,
    pub token_endpoint: String,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider")
            .field("server", &self.server)
            .field("issuer", &self.settings.issuer)
            .finish_non_exhaustive()
    }
}

/// What went wrong talking to the provider, in words for an administrator.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProviderError {
    #[error("the sign-in service of server {server} ({issuer}) cannot be reached: {reason}")]
    Unreachable {
        server: String,
        issuer: String,
        reason: String,
    },
    #[error("server {server}: {reason}")]
    Misconfigured { server: String, reason: String },
    /// The provider refused the grant itself (code used, refresh token revoked...).
    #[error("{0}")]
    Refused(String),
}

impl ProviderError {
    pub fn into_token_error(self) -> TokenError {
        match self {
            ProviderError::Unreachable { .. } => TokenError::Unavailable(self.to_string()),
            ProviderError::Misconfigured { .. } => TokenError::Misconfigured(self.to_string()),
            ProviderError::Refused(words) => TokenError::Revoked(words),
        }
    }
}

impl Provider {
    pub fn new(server: &str, settings: Resolved) -> Self {
        let http = reqwest::Client::builder()
            // A token endpoint that redirects could send our secrets elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(Duration::from_secs(10))
            .build()
            .expect("the HTTP client's settings are valid");
        Provider {
            server: server.to_owned(),
            settings,
            http,
            discovered: Mutex::new(None),
        }
    }

    pub fn label(&self) -> &str {
        &self.settings.label
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The discovered client, discovering now if not done yet (or if it failed before).
    pub async fn discovered(&self) -> Result<Arc<Discovered>, ProviderError> {
        let mut slot = self.discovered.lock().await;
        if let Some(found) = slot.as_ref() {
            return Ok(found.clone());
        }
        let issuer = IssuerUrl::new(self.settings.issuer.clone()).map_err(|e| {
            ProviderError::Misconfigured {
                server: self.server.clone(),
                reason: format!("issuer {:?} is not a URL: {e}", self.settings.issuer),
            }
        })?;
        let metadata = CoreProviderMetadata::discover_async(issuer, &self.http)
            .await
            .map_err(|e| self.discovery_error(e))?;
        let token_endpoint = metadata
            .token_endpoint()
            .map(|u| u.as_str().to_owned())
            .ok_or_else(|| ProviderError::Misconfigured {
                server: self.server.clone(),
                reason: format!(
                    "the provider at {} lists no token endpoint",
                    self.settings.issuer
                ),
            })?;
        let client = CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(self.settings.client_id.clone()),
            self.settings.client_secret.clone().map(ClientSecret::new),
        );
        let found = Arc::new(Discovered {
            client,
            token_endpoint,
        });
        *slot = Some(found.clone());
        Ok(found)
    }

    fn discovery_error<E: std::error::Error>(
        &self,
        err: openidconnect::DiscoveryError<E>,
    ) -> ProviderError {
        use openidconnect::DiscoveryError as D;
        let issuer = self.settings.issuer.clone();
        match err {
            D::Request(e) => ProviderError::Unreachable {
                server: self.server.clone(),
                issuer,
                reason: chain(&e),
            },
            D::Response(status, _, _) if status.is_server_error() => ProviderError::Unreachable {
                server: self.server.clone(),
                issuer,
                reason: format!("it answered HTTP {status}"),
            },
            other => ProviderError::Misconfigured {
                server: self.server.clone(),
                reason: format!(
                    "{issuer} is not an OpenID Connect issuer (discovery failed: {}); check oauth.issuer / tenant",
                    chain(&other)
                ),
            },
        }
    }

    /// A standard token response in our form.
    pub fn token_set(response: &CoreTokenResponse, keep_refresh: Option<&str>) -> TokenSet {
        TokenSet::new(
            response.access_token().secret().clone(),
            response
                .refresh_token()
                .map(|r| r.secret().clone())
                // Providers that do not rotate refresh tokens send none back: keep ours.
                .or_else(|| keep_refresh.map(str::to_owned)),
            response.expires_in(),
        )
    }

    /// A token error response (or failure to get one) in words.
    pub fn classify<RE: std::error::Error + 'static>(
        &self,
        err: openidconnect::RequestTokenError<
            RE,
            openidconnect::StandardErrorResponse<openidconnect::core::CoreErrorResponseType>,
        >,
    ) -> ProviderError {
        use openidconnect::core::CoreErrorResponseType as T;
        use openidconnect::RequestTokenError as R;
        match err {
            R::ServerResponse(response) => {
                let detail = response
                    .error_description()
                    .map(|d| format!(": {d}"))
                    .unwrap_or_default();
                match response.error() {
                    T::InvalidGrant => ProviderError::Refused(format!(
                        "{} no longer accepts the sign-in (consent withdrawn or expired{detail})",
                        self.label()
                    )),
                    T::InvalidClient | T::UnauthorizedClient => ProviderError::Misconfigured {
                        server: self.server.clone(),
                        reason: format!(
                            "{} refused the app's credentials (client id or secret wrong or expired{detail})",
                            self.label()
                        ),
                    },
                    T::InvalidScope => ProviderError::Misconfigured {
                        server: self.server.clone(),
                        reason: format!(
                            "{} refused the scopes {:?}{detail}",
                            self.label(),
                            self.settings.scopes
                        ),
                    },
                    T::Extension(code)
                        if code == "temporarily_unavailable" || code == "server_error" =>
                    {
                        self.unreachable(format!("it answered {code}{detail}"))
                    }
                    other => ProviderError::Misconfigured {
                        server: self.server.clone(),
                        reason: format!("{} refused the request: {}{detail}", self.label(), other.as_ref()),
                    },
                }
            }
            R::Request(e) => self.unreachable(chain(&e)),
            R::Parse(_, body) => self.unreachable(format!(
                "its answer was not a token response ({} bytes)",
                body.len()
            )),
            R::Other(words) => self.unreachable(words),
        }
    }

    fn unreachable(&self, reason: String) -> ProviderError {
        ProviderError::Unreachable {
            server: self.server.clone(),
            issuer: self.settings.issuer.clone(),
            reason,
        }
    }

    /// Exchanges a refresh token for a new access token (and maybe a new refresh token).
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenSet, ProviderError> {
        let found = self.discovered().await?;
        let refresh = RefreshToken::new(refresh_token.to_owned());
        let request = found
            .client
            .exchange_refresh_token(&refresh)
            .map_err(|e| self.misconfigured(e.to_string()))?;
        let response = request
            .request_async(&self.http)
            .await
            .map_err(|e| self.classify(e))?;
        Ok(Provider::token_set(&response, Some(refresh_token)))
    }

    /// An app token by the client-credentials grant (Microsoft's `IMAP.AccessAsApp`).
    pub async fn client_credentials(&self) -> Result<TokenSet, ProviderError> {
        let found = self.discovered().await?;
        let mut request = found
            .client
            .exchange_client_credentials()
            .map_err(|e| self.misconfigured(e.to_string()))?;
        for scope in &self.settings.app_scopes {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let response = request
            .request_async(&self.http)
            .await
            .map_err(|e| self.classify(e))?;
        Ok(Provider::token_set(&response, None))
    }

    pub fn misconfigured(&self, reason: String) -> ProviderError {
        ProviderError::Misconfigured {
            server: self.server.clone(),
            reason,
        }
    }

    /// At start-up and in `mailferry check`: the issuer answers discovery, and the client
    /// secret is accepted. The secret is probed with a refresh grant for a token that
    /// cannot exist: a provider checks the client first (`invalid_client` means a wrong
    /// secret) and only then the grant (`invalid_grant`, expected).
    pub async fn check(&self) -> Result<(), ProviderError> {
        self.discovered().await?;
        if self.settings.client_secret.is_some() {
            match self.refresh("mailferry-configuration-check").await {
                Ok(_) | Err(ProviderError::Refused(_)) => {}
                Err(err) => return Err(err),
            }
        }
        Ok(())
    }
}

/// An error and its sources in one line.
pub fn chain(err: &dyn std::error::Error) -> String {
    let mut words = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let next = s.to_string();
        if !words.contains(&next) {
            words.push_str(": ");
            words.push_str(&next);
        }
        source = s.source();
    }
    words
}
