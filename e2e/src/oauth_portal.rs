//! A portal whose sides sign in with a real OpenID Connect provider (the kit's
//! oidc-provider) and reach bearer-only Dovecot servers (tokens checked by
//! introspection), or password Dovecots: what the OAuth tests, over HTTP and in
//! Chromium, start from.

use crate::compare::{compare, snapshot, FolderMap};
use crate::dovecot::{Dovecot, DovecotOptions};
use crate::imap_client::Account;
use crate::oidc::{token_id, OidcClient, OidcOptions, OidcProvider, OidcUser, ServiceAccountKey};
use crate::portal::Portal;
use crate::ports::free_port;
use crate::proxy::{FaultProxy, Faults};
use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

pub const CLIENT_SECRET: &str = "portal-client-secret-7";
pub const DOVECOT_SECRET: &str = "dovecot-introspects-3";
pub const ALICE_PW: &str = "alice-at-the-provider";
pub const BOB_PW: &str = "bob-at-the-provider";
/// The service account the test uses to seed and read bearer-only mailboxes (and, in
/// app mode, the portal uses to act for users).
pub const KIT_SA: &str = "kit-service-account";

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Login {
    Password,
    OAuth,
    App,
}

pub struct Kit {
    pub provider: OidcProvider,
    pub key: ServiceAccountKey,
    pub old: Dovecot,
    pub new: Dovecot,
    pub portal: Portal,
    _dir: tempfile::TempDir,
    _slow: Option<FaultProxy>,
}

pub struct Options {
    pub source: Login,
    pub target: Login,
    pub ttl: Duration,
    pub target_user: Option<&'static str>,
    /// The portal reaches the (password) source through a proxy that pauses this long
    /// after every command.
    pub slow_source: Option<Duration>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            source: Login::OAuth,
            target: Login::OAuth,
            ttl: Duration::from_secs(3600),
            target_user: None,
            slow_source: None,
        }
    }
}

fn dovecot(login: Login, dovecot_oauth2: &crate::dovecot::DovecotOAuth2) -> Dovecot {
    match login {
        Login::Password => {
            let d = Dovecot::start(DovecotOptions::default()).unwrap();
            d.add_user("alice", "alice-imap-pw").unwrap();
            d.add_user("bob", "bob-imap-pw").unwrap();
            d
        }
        Login::OAuth | Login::App => Dovecot::start(DovecotOptions {
            oauth2: Some(dovecot_oauth2.clone()),
            ..DovecotOptions::default()
        })
        .unwrap(),
    }
}

fn server_toml(
    name: &str,
    d: &Dovecot,
    login: Login,
    issuer: &str,
    dir: &std::path::Path,
) -> String {
    let mut text = format!(
        "[servers.{name}]\nhost = \"localhost\"\nport = {}\ntls = \"tls\"\nca_file = \"{}\"\n",
        d.imaps_port(),
        d.ca_pem_path().display()
    );
    match login {
        Login::Password => {}
        Login::OAuth => {
            let secret = dir.join("client.secret");
            text.push_str(&format!(
                "auth = \"oauth2\"\n[servers.{name}.oauth]\nissuer = \"{issuer}\"\nclient_id = \"mailferry\"\n\
                 client_secret_file = \"{}\"\nscopes = [\"openid\", \"email\", \"profile\", \"offline_access\", \"imap\"]\n\
                 user_claim = \"preferred_username\"\nlabel = \"Kit ID\"\n",
                secret.display()
            ));
        }
        Login::App => {
            let key = dir.join("service-account.pem");
            let secret = dir.join("client.secret");
            // The portal signs users in with its web client (to learn who they are)
            // and copies with the service account's assertions.
            text.push_str(&format!(
                "auth = \"oauth2_app\"\n[servers.{name}.oauth]\nissuer = \"{issuer}\"\nclient_id = \"mailferry\"\n\
                 service_account = \"{KIT_SA}\"\n\
                 private_key_file = \"{}\"\nclient_secret_file = \"{}\"\napp_scopes = [\"imap\"]\n\
                 user_claim = \"preferred_username\"\nlabel = \"Kit ID\"\n",
                key.display(),
                secret.display()
            ));
        }
    }
    text
}

pub async fn kit(options: Options) -> Kit {
    let dir = tempfile::tempdir().unwrap();
    let key = ServiceAccountKey::generate().unwrap();
    let port = free_port();
    let redirect = format!("http://127.0.0.1:{port}/api/oauth/callback");
    let provider = OidcProvider::start(OidcOptions {
        clients: vec![
            OidcClient::web("mailferry", CLIENT_SECRET, &[&redirect]),
            OidcClient::introspector("dovecot", DOVECOT_SECRET),
            OidcClient::service_account(KIT_SA, &key),
        ],
        users: vec![
            OidcUser::new("alice", ALICE_PW),
            OidcUser::new("bob", BOB_PW),
        ],
        access_token_ttl: options.ttl,
        ..OidcOptions::default()
    })
    .unwrap();
    let introspection = provider
        .dovecot_oauth2("dovecot", DOVECOT_SECRET)
        .await
        .unwrap();
    let old = dovecot(options.source, &introspection);
    let new = dovecot(options.target, &introspection);
    for (file, text) in [
        ("client.secret", CLIENT_SECRET.to_owned()),
        ("service-account.pem", key.private_key_pem.clone()),
    ] {
        let path = dir.path().join(file);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let issuer = provider.issuer();
    let mut config = String::from("workers = 2\n");
    let slow = match options.slow_source {
        Some(delay) => Some(
            FaultProxy::start(
                old.imap_port(),
                Faults {
                    command_delay: Some(delay),
                    ..Faults::default()
                },
            )
            .await
            .unwrap(),
        ),
        None => None,
    };
    match &slow {
        Some(proxy) => config.push_str(&format!(
            "[servers.old]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"plain\"\nallow_plaintext = true\n",
            proxy.port()
        )),
        None => config.push_str(&server_toml("old", &old, options.source, &issuer, dir.path())),
    }
    config.push_str(&server_toml(
        "new",
        &new,
        options.target,
        &issuer,
        dir.path(),
    ));
    config.push_str("[routes.default]\nsource = \"old\"\ntarget = \"new\"\n");
    if let Some(rule) = options.target_user {
        config.push_str(&format!("target_user = \"{rule}\"\n"));
    }
    let portal = Portal::start_with_config_on_port(&config, port)
        .await
        .unwrap();
    Kit {
        provider,
        key,
        old,
        new,
        portal,
        _dir: dir,
        _slow: slow,
    }
}

impl Kit {
    /// How the test itself reaches `user`'s mailbox on `d` (a service-account token on a
    /// bearer-only server).
    pub async fn account(&self, d: &Dovecot, user: &str) -> Account {
        if d.options().oauth2.is_some() {
            let token = self
                .provider
                .jwt_bearer_token(KIT_SA, &self.key.private_key_pem, user, "imap")
                .await
                .unwrap();
            d.account_tls(user, "").with_bearer(&token)
        } else {
            d.account_tls(user, &format!("{user}-imap-pw"))
        }
    }

    pub fn start_url(&self, side: &str, renew: bool) -> String {
        let mut url = self
            .portal
            .url(&format!("/api/oauth/start?route=default&side={side}"));
        if renew {
            url.push_str("&renew=true");
        }
        url
    }

    pub async fn assert_exact(&self, user: &str) {
        let source = snapshot(&self.account(&self.old, user).await)
            .await
            .unwrap();
        let target = snapshot(&self.account(&self.new, user).await)
            .await
            .unwrap();
        let differences = compare(&source, &target, &FolderMap::identity());
        assert!(differences.is_empty(), "{differences:#?}");
    }

    /// Every token the provider issued to the portal's client, by [`token_id`].
    pub fn portal_token_ids(&self) -> BTreeSet<String> {
        self.provider
            .output()
            .lines()
            .filter(|l| l.contains("issued") && l.contains("client=mailferry"))
            .filter_map(|l| l.split("token_id=").nth(1))
            .filter_map(|rest| rest.split_whitespace().next())
            .map(str::to_owned)
            .collect()
    }

    /// Fails if any token issued to the portal appears in `text` (answers, logs, the
    /// database file): every token-like run of characters is hashed and compared.
    pub fn assert_no_token_in(&self, what: &str, text: &str) {
        let issued = self.portal_token_ids();
        assert!(
            !issued.is_empty(),
            "the provider issued no token to the portal"
        );
        for word in text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_')) {
            if word.len() >= 20 {
                assert!(
                    !issued.contains(&token_id(word)),
                    "a token issued to the portal appears in {what}"
                );
            }
        }
    }
}
