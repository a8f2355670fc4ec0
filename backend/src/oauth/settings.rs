//! What a server profile says about OAuth 2.0: the provider (a preset or an issuer URL),
//! the app registration (client id, secret file or private key file), scopes, and which
//! ID-token claim names the mailbox. Presets fill in what Microsoft and Google need.

use serde::Deserialize;
use std::path::PathBuf;

/// `[servers.NAME.oauth]` in the config file.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuthSettings {
    /// `"microsoft"`, `"google"`, or absent for any OpenID Connect provider (then
    /// `issuer` is required).
    pub provider: Option<Preset>,
    /// The issuer URL (OpenID discovery at `ISSUER/.well-known/openid-configuration`).
    pub issuer: Option<String>,
    /// Microsoft: the Directory (tenant) ID of the organisation, a GUID.
    pub tenant: Option<String>,
    pub client_id: String,
    /// A file holding the client secret (user sign-in, Microsoft app mode).
    pub client_secret_file: Option<PathBuf>,
    /// A service account key for app mode with a signed assertion (RFC 7523): Google's
    /// JSON key file, or a PEM private key (RS256) for other providers.
    pub private_key_file: Option<PathBuf>,
    /// The assertion's issuer for a PEM `private_key_file` (the service account's id);
    /// default the client id. Google's JSON key names its own (`client_email`).
    pub service_account: Option<String>,
    /// Scopes asked for when a user signs in (defaults per preset).
    pub scopes: Option<Vec<String>>,
    /// Scopes of app-mode tokens (defaults per preset).
    pub app_scopes: Option<Vec<String>>,
    /// The ID-token claim holding the mailbox name: `email` (Google, default) or
    /// `preferred_username` (Microsoft: the user principal name).
    pub user_claim: Option<String>,
    /// What the sign-in button says: "Sign in with LABEL".
    pub label: Option<String>,
    /// Allow an `http://` issuer that is not on loopback (never in production).
    #[serde(default)]
    pub allow_insecure_issuer: bool,
}

impl std::fmt::Debug for OAuthSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthSettings")
            .field("provider", &self.provider)
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    Microsoft,
    Google,
}

/// How a side of a route logs in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthKind {
    /// The user's own password (LOGIN).
    #[default]
    Password,
    /// An admin login acting for the user (master_user); the user proves ownership with
    /// their own password.
    Master,
    /// The user consents in the browser; the portal holds their tokens.
    #[serde(rename = "oauth2")]
    OAuth2,
    /// The organisation's app acts for every mailbox (client credentials, or a signed
    /// assertion per user); self-service users prove who they are by signing in.
    #[serde(rename = "oauth2_app")]
    OAuth2App,
}

impl AuthKind {
    pub fn is_oauth(self) -> bool {
        matches!(self, AuthKind::OAuth2 | AuthKind::OAuth2App)
    }
}

/// The settings with the preset applied and the secrets read.
#[derive(Clone)]
pub struct Resolved {
    pub preset: Option<Preset>,
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Option<String>,
    pub private_key: Option<ServiceKey>,
    pub scopes: Vec<String>,
    pub app_scopes: Vec<String>,
    pub user_claim: String,
    pub label: String,
    /// Extra parameters of the authorization request (Google: offline access).
    pub extra_auth_params: Vec<(String, String)>,
}

impl std::fmt::Debug for Resolved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolved")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("label", &self.label)
            .finish_non_exhaustive()
    }
}

/// A service account's signing key (app mode by assertion).
#[derive(Clone)]
pub struct ServiceKey {
    /// The assertion's issuer: Google's `client_email`, else the client id.
    pub issuer: String,
    pub key_id: Option<String>,
    /// The RSA private key, parsed once when the config is read.
    pub key: jsonwebtoken::EncodingKey,
    /// Where the assertion is sent (Google's `token_uri`); else the discovered endpoint.
    pub token_uri: Option<String>,
}

/// The IMAP server a preset implies (host, port), used when the profile names none.
pub fn preset_host(preset: Preset) -> (&'static str, u16) {
    match preset {
        Preset::Microsoft => ("outlook.office365.com", 993),
        Preset::Google => ("imap.gmail.com", 993),
    }
}

impl OAuthSettings {
    /// Applies the preset and reads the secret files. `kind` says which secrets are needed.
    pub fn resolve(&self, server: &str, kind: AuthKind) -> Result<Resolved, String> {
        let issuer = match (self.provider, &self.issuer) {
            (_, Some(issuer)) => issuer.trim_end_matches('/').to_owned(),
            (Some(Preset::Microsoft), None) => {
                let tenant = self.tenant.as_deref().map(str::trim).unwrap_or("");
                if tenant.is_empty() || tenant.contains('/') {
                    return Err(format!(
                        "server {server}: provider = \"microsoft\" needs tenant = \"<Directory (tenant) ID>\" (a GUID from the app registration's overview page)"
                    ));
                }
                format!("https://login.microsoftonline.com/{tenant}/v2.0")
            }
            (Some(Preset::Google), None) => "https://accounts.google.com".to_owned(),
            (None, None) => {
                return Err(format!(
                    "server {server}: oauth needs provider = \"microsoft\" or \"google\", or an issuer URL"
                ))
            }
        };
        check_issuer(server, &issuer, self.allow_insecure_issuer)?;
        if self.client_id.trim().is_empty() {
            return Err(format!("server {server}: oauth.client_id is empty"));
        }
        let client_secret = match &self.client_secret_file {
            Some(file) => Some(read_secret(server, file)?),
            None => None,
        };
        let private_key = match &self.private_key_file {
            Some(file) => Some(read_service_key(
                server,
                file,
                self.service_account.as_deref().unwrap_or(&self.client_id),
            )?),
            None => None,
        };
        match kind {
            AuthKind::OAuth2 if client_secret.is_none() => {
                return Err(format!(
                    "server {server}: auth = \"oauth2\" needs oauth.client_secret_file (the app registration's client secret)"
                ))
            }
            AuthKind::OAuth2App if client_secret.is_none() && private_key.is_none() => {
                return Err(format!(
                    "server {server}: auth = \"oauth2_app\" needs oauth.client_secret_file (client credentials, as for Microsoft) \
                     or oauth.private_key_file (a service account's key, as for Google)"
                ))
            }
            _ => {}
        }
        let (scopes, app_scopes, user_claim, label, extra) = match self.provider {
            Some(Preset::Microsoft) => (
                vec![
                    "openid",
                    "email",
                    "profile",
                    "offline_access",
                    "https://outlook.office.com/IMAP.AccessAsUser.All",
                ],
                vec!["https://outlook.office365.com/.default"],
                "preferred_username",
                "Microsoft",
                vec![],
            ),
            Some(Preset::Google) => (
                vec!["openid", "email", "https://mail.google.com/"],
                vec!["https://mail.google.com/"],
                "email",
                "Google",
                vec![
                    ("access_type".to_owned(), "offline".to_owned()),
                    ("prompt".to_owned(), "consent".to_owned()),
                ],
            ),
            None => (
                vec!["openid", "email", "offline_access"],
                vec![],
                "email",
                "your organisation's sign-in",
                vec![],
            ),
        };
        let owned = |v: Vec<&str>| v.into_iter().map(str::to_owned).collect::<Vec<_>>();
        let scopes = self.scopes.clone().unwrap_or_else(|| owned(scopes));
        let mut extra_auth_params = extra;
        // A refresh token needs the user's consent to offline access.
        if scopes.iter().any(|s| s == "offline_access")
            && !extra_auth_params.iter().any(|(k, _)| k == "prompt")
            && self.provider != Some(Preset::Microsoft)
        {
            extra_auth_params.push(("prompt".to_owned(), "consent".to_owned()));
        }
        Ok(Resolved {
            preset: self.provider,
            issuer,
            client_id: self.client_id.trim().to_owned(),
            client_secret,
            private_key,
            scopes,
            app_scopes: self.app_scopes.clone().unwrap_or_else(|| owned(app_scopes)),
            user_claim: self
                .user_claim
                .clone()
                .unwrap_or_else(|| user_claim.to_owned()),
            label: self.label.clone().unwrap_or_else(|| label.to_owned()),
            extra_auth_params,
        })
    }
}

fn check_issuer(server: &str, issuer: &str, allow_insecure: bool) -> Result<(), String> {
    let url = url::Url::parse(issuer)
        .map_err(|e| format!("server {server}: oauth issuer {issuer:?} is not a URL: {e}"))?;
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    };
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback || allow_insecure => Ok(()),
        _ => Err(format!(
            "server {server}: oauth issuer {issuer:?} must use https:// (tokens would travel unencrypted)"
        )),
    }
}

fn read_secret(server: &str, file: &std::path::Path) -> Result<String, String> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        format!(
            "server {server}: cannot read oauth.client_secret_file {}: {e}",
            file.display()
        )
    })?;
    let secret = text.trim().to_owned();
    if secret.is_empty() {
        return Err(format!(
            "server {server}: oauth.client_secret_file {} is empty",
            file.display()
        ));
    }
    Ok(secret)
}

/// A Google JSON key file (`client_email`, `private_key`, `private_key_id`, `token_uri`)
/// or a bare PEM key (then the assertion's issuer is the client id).
fn read_service_key(
    server: &str,
    file: &std::path::Path,
    client_id: &str,
) -> Result<ServiceKey, String> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        format!(
            "server {server}: cannot read oauth.private_key_file {}: {e}",
            file.display()
        )
    })?;
    let (issuer, key_id, pem, token_uri) = if text.trim_start().starts_with('{') {
        #[derive(Deserialize)]
        struct GoogleKey {
            client_email: String,
            private_key: String,
            private_key_id: Option<String>,
            token_uri: Option<String>,
        }
        let parsed: GoogleKey = serde_json::from_str(&text).map_err(|e| {
            format!(
                "server {server}: oauth.private_key_file {} is not a service account key: {e}",
                file.display()
            )
        })?;
        (
            parsed.client_email,
            parsed.private_key_id,
            zeroize::Zeroizing::new(parsed.private_key),
            parsed.token_uri,
        )
    } else {
        let issuer = client_id.trim().to_owned();
        (issuer, None, zeroize::Zeroizing::new(text), None)
    };
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(pem.as_bytes()).map_err(|e| {
        format!(
            "server {server}: oauth.private_key_file {} holds no RSA private key: {e}",
            file.display()
        )
    })?;
    Ok(ServiceKey {
        issuer,
        key_id,
        key,
        token_uri,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(text: &str) -> OAuthSettings {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn presets_fill_in_the_provider() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("s");
        std::fs::write(&secret, "shh\n").unwrap();
        let ms = settings(&format!(
            "provider='microsoft'\ntenant='0000-1111'\nclient_id='app'\nclient_secret_file='{}'",
            secret.display()
        ))
        .resolve("m365", AuthKind::OAuth2)
        .unwrap();
        assert_eq!(
            ms.issuer,
            "https://login.microsoftonline.com/0000-1111/v2.0"
        );
        assert!(ms
            .scopes
            .iter()
            .any(|s| s.ends_with("IMAP.AccessAsUser.All")));
        assert!(ms.scopes.iter().any(|s| s == "offline_access"));
        assert_eq!(ms.user_claim, "preferred_username");
        assert_eq!(ms.client_secret.as_deref(), Some("shh"));
        let err = settings("provider='microsoft'\nclient_id='app'")
            .resolve("m365", AuthKind::OAuth2App)
            .unwrap_err();
        assert!(err.contains("tenant"), "{err}");
        let google = settings(&format!(
            "provider='google'\nclient_id='app'\nclient_secret_file='{}'",
            secret.display()
        ))
        .resolve("g", AuthKind::OAuth2)
        .unwrap();
        assert!(google
            .extra_auth_params
            .contains(&("access_type".into(), "offline".into())));
        assert_eq!(google.label, "Google");
    }

    #[test]
    fn an_issuer_without_tls_is_refused_unless_on_loopback() {
        let s = settings("issuer='http://idp.example.org'\nclient_id='c'");
        assert!(s
            .resolve("x", AuthKind::Password)
            .unwrap_err()
            .contains("https"));
        let s = settings("issuer='http://127.0.0.1:4000/'\nclient_id='c'");
        assert_eq!(
            s.resolve("x", AuthKind::Password).unwrap().issuer,
            "http://127.0.0.1:4000"
        );
        let s = settings("issuer='https://idp.example.org'\nclient_id='c'");
        assert!(s
            .resolve("x", AuthKind::OAuth2)
            .unwrap_err()
            .contains("client_secret_file"));
    }
}
