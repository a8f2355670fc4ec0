//! The migration routes an admin configures: named server profiles (where and how to
//! connect) and routes (from which profile to which). End users choose among routes only,
//! so the portal never connects to a host the admin did not name.

use crate::engine::{Auth, Endpoint, Password, Security, Side, TokenHandle};
use crate::oauth::{AuthKind, OAuthSettings, Provider};
use mailferry_shared::{AccountSide, RouteInfo, TargetUserRule};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub mod pacing;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// TLS from the first byte (port 993).
    #[default]
    Tls,
    /// STARTTLS on the plain port (143).
    Starttls,
    /// No encryption: only with `allow_plaintext = true`.
    Plain,
}

/// How a master (admin) login acts for a user.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MasterLogin {
    /// SASL PLAIN with the user as authorization identity (most servers).
    #[default]
    Plain,
    /// Dovecot's `LOGIN user*master password`.
    Star,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerProfile {
    /// The IMAP server. May be left out with an OAuth provider preset (Microsoft:
    /// outlook.office365.com, Google: imap.gmail.com).
    #[serde(default)]
    pub host: String,
    pub port: Option<u16>,
    #[serde(default)]
    pub tls: TlsMode,
    /// Must be set explicitly to send passwords over an unencrypted connection.
    #[serde(default)]
    pub allow_plaintext: bool,
    /// Extra CA certificates (PEM) to trust for this server.
    pub ca_file: Option<PathBuf>,
    pub master_user: Option<String>,
    pub master_password: Option<String>,
    pub master_password_file: Option<PathBuf>,
    #[serde(default)]
    pub master_login: MasterLogin,
    /// Jobs using this server at once (all nodes together). Default 10.
    pub max_jobs: Option<u32>,
    /// Connections per job. Default 3.
    pub connections_per_job: Option<u32>,
    /// Longest wait for one network step, in seconds. Default 60.
    pub timeout_seconds: Option<u64>,
    /// How the server compares login names: `case_insensitive` (default) or `case_sensitive`.
    #[serde(default)]
    pub user_names: crate::user_names::UserNameCase,
    /// How this server is logged in to: `password`, `master` (the default when
    /// master_user is set), `oauth2` (the user signs in with the provider; the portal
    /// holds their tokens) or `oauth2_app` (the organisation's app acts for every
    /// mailbox).
    pub auth: Option<AuthKind>,
    /// The OAuth 2.0 / OpenID Connect provider, for `oauth2` and `oauth2_app`.
    pub oauth: Option<OAuthSettings>,
    /// Caps per account on this server, all nodes together: `pacing = "gmail"` or
    /// `"microsoft365"` (implied by the `google`/`microsoft` OAuth presets), `"none"`, or a
    /// `[servers.NAME.pacing]` table (see [`pacing::PacingTable`]).
    pub pacing: Option<pacing::PacingConfig>,
}

impl ServerProfile {
    /// The login kind, with the default applied.
    pub fn auth_kind(&self) -> AuthKind {
        self.auth.unwrap_or(if self.master_user.is_some() {
            AuthKind::Master
        } else {
            AuthKind::Password
        })
    }
}

impl std::fmt::Debug for ServerProfile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerProfile")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("master_user", &self.master_user)
            .field("auth", &self.auth_kind())
            .field("oauth", &self.oauth)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    pub source: String,
    pub target: String,
    /// What users see, e.g. "Old mail server → Microsoft 365".
    pub label: Option<String>,
    /// How the target account follows from the source account: `"typed"` (the user types
    /// it and proves it with its password), `"same"` (the same user name), or a template
    /// such as `"{local}@new.example.org"` (`{user}`, `{local}`, `{domain}`). Default:
    /// `"same"` when the target server logs in with a master user (a typed name would let
    /// anyone write into anyone's mailbox), `"typed"` otherwise.
    pub target_user: Option<String>,
    /// A label-style source (Gmail): `"auto"` (default: when the source offers X-GM-EXT-1
    /// or has a \All folder), `"on"` or `"off"`.
    #[serde(default)]
    pub labels: Option<String>,
    /// One copy per label folder instead of one copy per message with keywords.
    #[serde(default)]
    pub labels_as_folders: bool,
    /// Target folder for mail archived without a label (default `Archive`).
    #[serde(default)]
    pub archive_folder: Option<String>,
}

impl RouteConfig {
    /// The route's label settings for the engine.
    pub fn label_options(&self) -> Result<crate::engine::gmail::LabelOptions, String> {
        let mut options = crate::engine::gmail::LabelOptions::default();
        if let Some(mode) = &self.labels {
            options.mode = mode.parse()?;
        }
        options.labels_as_folders = self.labels_as_folders;
        if let Some(folder) = self.archive_folder.as_deref().map(|f| f.trim_matches('/')) {
            if folder.is_empty() {
                return Err("archive_folder may not be empty".into());
            }
            options.archive_folder = folder.to_owned();
        }
        Ok(options)
    }

    fn target_rule(&self, target_has_master: bool) -> Result<TargetUserRule, String> {
        match self.target_user.as_deref().map(str::trim) {
            None if target_has_master => Ok(TargetUserRule::SameAsSource),
            None | Some("typed") => Ok(TargetUserRule::Typed),
            Some("same") => Ok(TargetUserRule::SameAsSource),
            Some(template) if template.contains('{') => {
                let unknown = template
                    .replace("{user}", "")
                    .replace("{local}", "")
                    .replace("{domain}", "");
                if unknown.contains(['{', '}']) {
                    Err(format!(
                        "target_user template {template:?} may only use {{user}}, {{local}} and {{domain}}"
                    ))
                } else {
                    Ok(TargetUserRule::Template {
                        template: template.to_owned(),
                    })
                }
            }
            Some(other) => Err(format!(
                "target_user = {other:?} is not a rule: use \"typed\", \"same\", or a template such as \"{{local}}@new.example.org\""
            )),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("route {route}: no server profile named {server} (configured: {known})")]
    UnknownServer {
        route: String,
        server: String,
        known: String,
    },
    #[error("server {0}: tls = \"plain\" sends passwords unencrypted; set allow_plaintext = true to allow it")]
    PlaintextNotAllowed(String),
    #[error("server {0}: master_user needs master_password or master_password_file")]
    MasterWithoutPassword(String),
    #[error("route {route}: {message}")]
    TargetRule { route: String, message: String },
    #[error(
        "route {0}: the target server logs in with a master user, so the target account must \
         follow from the source account (target_user = \"same\" or a template such as \
         \"{{local}}@new.example.org\"); a typed name would let anyone write into any mailbox"
    )]
    TypedTargetWithMaster(String),
    #[error("{0}")]
    OAuth(String),
    #[error("server {server}: {message}")]
    Pacing { server: String, message: String },
    #[error("server {0}: no host is set (host = \"imap.example.org\")")]
    NoHost(String),
    #[error("server {server}: cannot read master_password_file: {source}")]
    MasterPasswordFile {
        server: String,
        source: std::io::Error,
    },
}

/// The validated set of profiles and routes.
#[derive(Debug, Clone, Default)]
pub struct Routes {
    servers: BTreeMap<String, ServerProfile>,
    routes: BTreeMap<String, RouteConfig>,
    /// Each route's rule binding the target account to the source account.
    target_rules: BTreeMap<String, TargetUserRule>,
    /// The OAuth provider of each server profile that has one.
    providers: BTreeMap<String, Arc<Provider>>,
    /// The pacing caps of each server profile (none for a generic server).
    pacing: BTreeMap<String, crate::engine::pacing::Caps>,
}

impl Routes {
    pub fn new(
        mut servers: BTreeMap<String, ServerProfile>,
        routes: BTreeMap<String, RouteConfig>,
    ) -> Result<Self, ProfileError> {
        let mut providers = BTreeMap::new();
        let mut pacing = BTreeMap::new();
        for (name, profile) in servers.iter_mut() {
            let kind = profile.auth_kind();
            let mut oauth_preset = None;
            match (&profile.oauth, kind) {
                (None, AuthKind::OAuth2 | AuthKind::OAuth2App) => {
                    return Err(ProfileError::OAuth(format!(
                        "server {name}: auth = \"{}\" needs an [servers.{name}.oauth] table (provider or issuer, client_id, ...)",
                        if kind == AuthKind::OAuth2 { "oauth2" } else { "oauth2_app" }
                    )))
                }
                (Some(settings), _) => {
                    let resolved = settings.resolve(name, kind).map_err(ProfileError::OAuth)?;
                    oauth_preset = resolved.preset;
                    if profile.host.trim().is_empty() {
                        if let Some(preset) = resolved.preset {
                            let (host, port) = crate::oauth::settings::preset_host(preset);
                            profile.host = host.to_owned();
                            profile.port = profile.port.or(Some(port));
                        }
                    }
                    providers.insert(name.clone(), Arc::new(Provider::new(name, resolved)));
                }
                (None, _) => {}
            }
            let caps =
                pacing::resolve(profile.pacing.as_ref(), oauth_preset).map_err(|message| {
                    ProfileError::Pacing {
                        server: name.clone(),
                        message,
                    }
                })?;
            pacing.insert(name.clone(), caps);
            if kind == AuthKind::Master && profile.master_user.is_none() {
                return Err(ProfileError::OAuth(format!(
                    "server {name}: auth = \"master\" needs master_user and master_password_file"
                )));
            }
            if profile.host.trim().is_empty() {
                return Err(ProfileError::NoHost(name.clone()));
            }
            if profile.tls == TlsMode::Plain && !profile.allow_plaintext {
                return Err(ProfileError::PlaintextNotAllowed(name.clone()));
            }
            if let Some(file) = &profile.master_password_file {
                let text = std::fs::read_to_string(file).map_err(|source| {
                    ProfileError::MasterPasswordFile {
                        server: name.clone(),
                        source,
                    }
                })?;
                profile.master_password = Some(text.trim_end_matches(['\r', '\n']).to_owned());
            }
            if profile.master_user.is_some() && profile.master_password.is_none() {
                return Err(ProfileError::MasterWithoutPassword(name.clone()));
            }
        }
        let known = servers.keys().cloned().collect::<Vec<_>>().join(", ");
        let mut target_rules = BTreeMap::new();
        for (route, config) in &routes {
            for server in [&config.source, &config.target] {
                if !servers.contains_key(server) {
                    return Err(ProfileError::UnknownServer {
                        route: route.clone(),
                        server: server.clone(),
                        known: known.clone(),
                    });
                }
            }
            // A master login opens any mailbox: the target must follow from the source.
            // (An app-mode target is different: its user proves who they are by signing
            // in with the provider, so the name they consent with is the mailbox.)
            let target_has_master = servers[&config.target].auth_kind() == AuthKind::Master;
            let rule = config.target_rule(target_has_master).map_err(|message| {
                ProfileError::TargetRule {
                    route: route.clone(),
                    message,
                }
            })?;
            if target_has_master && rule == TargetUserRule::Typed {
                return Err(ProfileError::TypedTargetWithMaster(route.clone()));
            }
            config
                .label_options()
                .map_err(|message| ProfileError::TargetRule {
                    route: route.clone(),
                    message,
                })?;
            target_rules.insert(route.clone(), rule);
        }
        Ok(Routes {
            servers,
            routes,
            target_rules,
            providers,
            pacing,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.routes.keys().map(String::as_str)
    }

    pub fn route(&self, name: &str) -> Option<&RouteConfig> {
        self.routes.get(name)
    }

    /// The profile one side of a route uses.
    pub fn profile_for(&self, route: &str, side: AccountSide) -> Option<(&str, &ServerProfile)> {
        let config = self.routes.get(route)?;
        let name = match side {
            AccountSide::Source => &config.source,
            AccountSide::Target => &config.target,
        };
        self.servers
            .get_key_value(name)
            .map(|(k, v)| (k.as_str(), v))
    }

    /// `name` in the form job keys are built from, by the rule of the server on `side` of
    /// `route` (case-insensitive when the route is unknown).
    pub fn normalize_user(&self, route: &str, side: AccountSide, name: &str) -> String {
        let case = self
            .profile_for(route, side)
            .map(|(_, p)| p.user_names)
            .unwrap_or_default();
        crate::user_names::normalize(name, case)
    }

    /// This side of the route copies with a master (admin) login acting for the user.
    pub fn uses_master_user(&self, route: &str, side: AccountSide) -> bool {
        self.auth_kind(route, side) == Some(AuthKind::Master)
    }

    /// How one side logs in (`None` for an unknown route).
    pub fn auth_kind(&self, route: &str, side: AccountSide) -> Option<AuthKind> {
        self.profile_for(route, side).map(|(_, p)| p.auth_kind())
    }

    /// The OAuth provider of one side, if it signs in with one.
    pub fn oauth_provider(&self, route: &str, side: AccountSide) -> Option<Arc<Provider>> {
        let (name, profile) = self.profile_for(route, side)?;
        if !profile.auth_kind().is_oauth() {
            return None;
        }
        self.providers.get(name).cloned()
    }

    /// The pacing of one account on a side of a route: its key and the profile's caps
    /// (see [`Routes::server_pacing`]).
    pub fn pacing(
        &self,
        route: &str,
        side: AccountSide,
        user: &str,
    ) -> Option<(String, crate::engine::pacing::Caps)> {
        let (name, _) = self.profile_for(route, side)?;
        Some(self.server_pacing(name, user))
    }

    /// The pacing of one account on a server profile: its key (`profile/user`, shared by
    /// every job and node) and the profile's caps (none for an unknown name).
    pub fn server_pacing(&self, server: &str, user: &str) -> (String, crate::engine::pacing::Caps) {
        (
            format!("{server}/{user}"),
            self.pacing.get(server).copied().unwrap_or_default(),
        )
    }

    /// Every configured provider (for the start-up check).
    pub fn providers(&self) -> impl Iterator<Item = &Arc<Provider>> {
        self.providers.values()
    }

    /// A server profile's OAuth provider by the profile's name (command line).
    pub fn provider_of_server(&self, server: &str) -> Option<Arc<Provider>> {
        self.providers.get(server).cloned()
    }

    pub fn server(&self, name: &str) -> Option<&ServerProfile> {
        self.servers.get(name)
    }

    pub fn server_names(&self) -> impl Iterator<Item = &str> {
        self.servers.keys().map(String::as_str)
    }

    /// How the route finds the target account from the source account.
    pub fn target_rule(&self, route: &str) -> Option<&TargetUserRule> {
        self.target_rules.get(route)
    }

    /// `user@host:port`: the mailbox's key in the job table (as [`Endpoint::account_key`]
    /// gives it, without needing any credential).
    pub fn account_key(&self, route: &str, side: AccountSide, user: &str) -> Option<String> {
        let (_, profile) = self.profile_for(route, side)?;
        Some(format!("{user}@{}:{}", profile.host, port_of(profile)))
    }

    /// `host:port` of one side's server: the key for counting failed logins there.
    pub fn server_address(&self, route: &str, side: AccountSide) -> Option<String> {
        let (_, profile) = self.profile_for(route, side)?;
        Some(format!("{}:{}", profile.host, port_of(profile)))
    }

    pub fn infos(&self) -> Vec<RouteInfo> {
        self.routes
            .iter()
            .map(|(name, config)| RouteInfo {
                name: name.clone(),
                label: config
                    .label
                    .clone()
                    .unwrap_or_else(|| format!("{} → {}", config.source, config.target)),
                source_server: config.source.clone(),
                target_server: config.target.clone(),
                target_user: self.target_rules[name].clone(),
                source_master: self.uses_master_user(name, AccountSide::Source),
                target_master: self.uses_master_user(name, AccountSide::Target),
                source_oauth: self.oauth_label(name, AccountSide::Source),
                target_oauth: self.oauth_label(name, AccountSide::Target),
            })
            .collect()
    }

    fn oauth_label(&self, route: &str, side: AccountSide) -> Option<String> {
        self.oauth_provider(route, side)
            .map(|p| p.label().to_owned())
    }

    /// How to prove that `user` owns the mailbox on one side: a login as that user with
    /// their own password, even where a master login does the copying (a master login
    /// would open any mailbox, so it proves nothing about who asks).
    pub fn proof_endpoint(
        &self,
        route: &str,
        side: AccountSide,
        user: &str,
        password: &str,
    ) -> Option<Endpoint> {
        let (_, profile) = self.profile_for(route, side)?;
        Some(endpoint_for(
            profile,
            side,
            user.to_owned(),
            password.to_owned(),
            Auth::Login,
        ))
    }

    /// How the engine reaches `user`'s mailbox on one side of a route. With a master user
    /// configured, `password` is ignored and the admin credentials act for the user; in
    /// app mode the organisation's app gets the tokens; with `oauth2`, `tokens` are the
    /// user's (`None` gives no endpoint: the user has to sign in first).
    pub fn endpoint(
        &self,
        route: &str,
        side: AccountSide,
        user: &str,
        password: &str,
        tokens: Option<TokenHandle>,
    ) -> Option<Endpoint> {
        let (name, _) = self.profile_for(route, side)?;
        self.server_endpoint(name, side, user, password, tokens)
    }

    /// As [`Routes::endpoint`], for server profile `server` by its name (the command
    /// line's `--from-profile` / `--to-profile`, which name no route).
    pub fn server_endpoint(
        &self,
        server: &str,
        side: AccountSide,
        user: &str,
        password: &str,
        tokens: Option<TokenHandle>,
    ) -> Option<Endpoint> {
        let (name, profile) = self.servers.get_key_value(server)?;
        match profile.auth_kind() {
            AuthKind::OAuth2 => {
                let auth = Auth::OAuth2 { tokens: tokens? };
                return Some(endpoint_for(
                    profile,
                    side,
                    user.to_owned(),
                    String::new(),
                    auth,
                ));
            }
            AuthKind::OAuth2App => {
                let provider = self.providers.get(name)?.clone();
                let tokens = TokenHandle::new(crate::oauth::app::AppTokens::new(provider, user));
                let auth = Auth::OAuth2 { tokens };
                return Some(endpoint_for(
                    profile,
                    side,
                    user.to_owned(),
                    String::new(),
                    auth,
                ));
            }
            AuthKind::Password | AuthKind::Master => {}
        }
        let (login_user, secret, auth) = match (&profile.master_user, &profile.master_password) {
            (Some(master), Some(master_password)) => match profile.master_login {
                MasterLogin::Plain => (
                    master.clone(),
                    master_password.clone(),
                    Auth::Plain {
                        authzid: Some(user.to_owned()),
                    },
                ),
                MasterLogin::Star => (
                    format!("{user}*{master}"),
                    master_password.clone(),
                    Auth::Login,
                ),
            },
            _ => (user.to_owned(), password.to_owned(), Auth::Login),
        };
        Some(endpoint_for(profile, side, login_user, secret, auth))
    }
}

fn port_of(profile: &ServerProfile) -> u16 {
    profile.port.unwrap_or(match profile.tls {
        TlsMode::Tls => 993,
        _ => 143,
    })
}

fn endpoint_for(
    profile: &ServerProfile,
    side: AccountSide,
    login_user: String,
    secret: String,
    auth: Auth,
) -> Endpoint {
    Endpoint {
        side: match side {
            AccountSide::Source => Side::Source,
            AccountSide::Target => Side::Target,
        },
        host: profile.host.clone(),
        port: port_of(profile),
        security: match profile.tls {
            TlsMode::Tls => Security::ImplicitTls,
            TlsMode::Starttls => Security::StartTls,
            TlsMode::Plain => Security::Plain,
        },
        user: login_user,
        password: Password::new(secret),
        auth,
        ca_file: profile.ca_file.clone(),
        timeout: Duration::from_secs(profile.timeout_seconds.unwrap_or(60)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Routes, ProfileError> {
        #[derive(Deserialize)]
        struct File {
            servers: BTreeMap<String, ServerProfile>,
            routes: BTreeMap<String, RouteConfig>,
        }
        let file: File = toml::from_str(text).unwrap();
        Routes::new(file.servers, file.routes)
    }

    #[test]
    fn plaintext_needs_explicit_permission() {
        let err = parse(
            "[servers.old]\nhost='127.0.0.1'\ntls='plain'\n[servers.new]\nhost='h'\n\
             [routes.r]\nsource='old'\ntarget='new'\n",
        )
        .unwrap_err();
        assert!(err.to_string().contains("allow_plaintext"), "{err}");
    }

    #[test]
    fn routes_carry_the_label_policy() {
        use crate::engine::gmail::{LabelMode, LabelOptions};
        let servers = "[servers.old]\nhost='h'\n[servers.new]\nhost='n'\n";
        let routes = parse(&format!(
            "{servers}[routes.r]\nsource='old'\ntarget='new'\nlabels='on'\n\
             labels_as_folders=true\narchive_folder='/Old mail/Archive/'\n\
             [routes.plain]\nsource='old'\ntarget='new'\n"
        ))
        .unwrap();
        let options = routes.route("r").unwrap().label_options().unwrap();
        assert_eq!(
            options,
            LabelOptions {
                mode: LabelMode::On,
                labels_as_folders: true,
                archive_folder: "Old mail/Archive".into(),
            }
        );
        assert_eq!(
            routes.route("plain").unwrap().label_options().unwrap(),
            LabelOptions::default()
        );
        let err = parse(&format!(
            "{servers}[routes.r]\nsource='old'\ntarget='new'\nlabels='sometimes'\n"
        ))
        .unwrap_err();
        assert!(err.to_string().contains("sometimes"), "{err}");
    }

    #[test]
    fn route_to_an_unknown_server_is_refused() {
        let err = parse("[servers.old]\nhost='h'\n[routes.r]\nsource='old'\ntarget='nope'\n")
            .unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
    }

    #[test]
    fn master_user_acts_for_the_user_with_sasl_plain() {
        let routes = parse(
            "[servers.old]\nhost='old.example'\nmaster_user='admin'\nmaster_password='pw'\n\
             [servers.new]\nhost='new.example'\ntls='starttls'\n\
             [routes.r]\nsource='old'\ntarget='new'\n",
        )
        .unwrap();
        let source = routes
            .endpoint("r", AccountSide::Source, "alice", "", None)
            .unwrap();
        assert_eq!(source.user, "admin");
        assert_eq!(
            source.auth,
            Auth::Plain {
                authzid: Some("alice".into())
            }
        );
        assert_eq!(source.port, 993);
        let target = routes
            .endpoint("r", AccountSide::Target, "alice", "secret", None)
            .unwrap();
        assert_eq!((target.user.as_str(), target.port), ("alice", 143));
        assert_eq!(target.security, Security::StartTls);
        // The route list never exposes hosts' secrets; master sides are flagged.
        let info = &routes.infos()[0];
        assert!(info.source_master && !info.target_master);
        assert_eq!(info.target_user, TargetUserRule::Typed);
        // Proof of ownership is always the user's own login, never the master's.
        let proof = routes
            .proof_endpoint("r", AccountSide::Source, "alice", "own-pw")
            .unwrap();
        assert_eq!(proof.user, "alice");
        assert_eq!(proof.auth, Auth::Login);
        assert!(
            format!("{:?}", routes).contains("admin") && !format!("{:?}", routes).contains("pw\"")
        );
    }

    #[test]
    fn a_master_target_is_bound_to_the_source_never_typed() {
        let servers = "[servers.old]\nhost='old.example'\n\
                       [servers.new]\nhost='new.example'\nmaster_user='admin'\nmaster_password='pw'\n";
        let err = parse(&format!(
            "{servers}[routes.r]\nsource='old'\ntarget='new'\ntarget_user='typed'\n"
        ))
        .unwrap_err();
        assert!(
            matches!(err, ProfileError::TypedTargetWithMaster(_)),
            "{err}"
        );
        let routes = parse(&format!(
            "{servers}[routes.r]\nsource='old'\ntarget='new'\n"
        ))
        .unwrap();
        assert_eq!(routes.target_rule("r"), Some(&TargetUserRule::SameAsSource));
        let routes = parse(&format!(
            "{servers}[routes.r]\nsource='old'\ntarget='new'\ntarget_user='{{local}}@new.example'\n"
        ))
        .unwrap();
        assert_eq!(
            routes.target_rule("r").unwrap().derive("bo@old.example"),
            Some("bo@new.example".into())
        );
        let err = parse(&format!(
            "{servers}[routes.r]\nsource='old'\ntarget='new'\ntarget_user='{{name}}@x'\n"
        ))
        .unwrap_err();
        assert!(err.to_string().contains("{user}"), "{err}");
    }

    #[test]
    fn oauth_profiles_take_the_preset_host_and_need_their_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("s");
        std::fs::write(&secret, "shh").unwrap();
        let routes = parse(&format!(
            "[servers.old]\nhost='old.example'\n\
             [servers.m365]\nauth='oauth2'\n[servers.m365.oauth]\nprovider='microsoft'\ntenant='t-1'\n\
             client_id='app'\nclient_secret_file='{}'\n\
             [routes.r]\nsource='old'\ntarget='m365'\n",
            secret.display()
        ))
        .unwrap();
        assert_eq!(
            routes.account_key("r", AccountSide::Target, "ann@contoso.example"),
            Some("ann@contoso.example@outlook.office365.com:993".into())
        );
        let info = &routes.infos()[0];
        assert_eq!(info.target_oauth.as_deref(), Some("Microsoft"));
        assert_eq!(info.source_oauth, None);
        // Without the user's tokens there is no way in; with them, a bearer login.
        assert!(routes
            .endpoint("r", AccountSide::Target, "ann", "", None)
            .is_none());
        let tokens = TokenHandle::new(crate::engine::StaticToken {
            token: Password::new("t"),
            label: "Microsoft".into(),
        });
        let endpoint = routes
            .endpoint("r", AccountSide::Target, "ann", "", Some(tokens))
            .unwrap();
        assert!(matches!(endpoint.auth, Auth::OAuth2 { .. }));
        assert_eq!(endpoint.user, "ann");
        let err = parse(
            "[servers.m365]\nauth='oauth2'\n[servers.old]\nhost='h'\n[routes.r]\nsource='old'\ntarget='m365'\n",
        )
        .unwrap_err();
        assert!(err.to_string().contains("oauth"), "{err}");
    }
}
