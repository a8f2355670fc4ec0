//! `mailferry migrate` with OAuth 2.0, against the kit's real OpenID provider and
//! bearer-only Dovecot servers that check every token by introspection:
//! an app-mode server profile of the config file (`auth = "oauth2_app"`, a service
//! account's RFC 7523 assertion per mailbox) on either side, an access token from a file,
//! and the errors an operator meets (a refused token, a loose file, a wrong issuer).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use mailferry_e2e::compare::{compare, snapshot, FolderMap, Snapshot};
use mailferry_e2e::dovecot::{Dovecot, DovecotOptions};
use mailferry_e2e::imap_client::Account;
use mailferry_e2e::oidc::{OidcClient, OidcOptions, OidcProvider, OidcUser, ServiceAccountKey};
use mailferry_e2e::portal::mailferry_bin;
use mailferry_e2e::ports::free_port;
use mailferry_e2e::seed::{seed_mailbox, SeedSpec};

/// The service account the organisation's app signs its assertions as.
const SERVICE_ACCOUNT: &str = "mailferry-migrator";
const USER: &str = "alice";
const PASSWORD: &str = "pw-alice";
/// The bearer-only server's profile in the config file.
const PROFILE: &str = "workspace";

struct Kit {
    provider: OidcProvider,
    key: ServiceAccountKey,
    /// Takes only XOAUTH2/OAUTHBEARER tokens with the scope `imap`.
    bearer: Dovecot,
    /// Takes passwords (user alice).
    plain: Dovecot,
    dir: tempfile::TempDir,
    postgres: Option<mailferry_e2e::postgres::SuitePostgres>,
}

impl Kit {
    async fn start() -> Kit {
        let key = ServiceAccountKey::generate().unwrap();
        let provider = OidcProvider::start(OidcOptions {
            clients: vec![
                OidcClient::introspector("dovecot", "dovecot-secret"),
                OidcClient::service_account(SERVICE_ACCOUNT, &key),
            ],
            users: vec![
                OidcUser::new(USER, PASSWORD),
                OidcUser::new("bob", "pw-bob"),
            ],
            ..Default::default()
        })
        .unwrap();
        let mut oauth2 = provider
            .dovecot_oauth2("dovecot", "dovecot-secret")
            .await
            .unwrap();
        // A token without the scope the app was configured for is refused.
        oauth2.scope = Some("imap".into());
        let bearer = Dovecot::start(DovecotOptions {
            oauth2: Some(oauth2),
            ..Default::default()
        })
        .unwrap();
        let plain = Dovecot::start(DovecotOptions::default()).unwrap();
        plain.add_user(USER, PASSWORD).unwrap();
        Kit {
            provider,
            key,
            bearer,
            plain,
            dir: tempfile::tempdir().unwrap(),
            postgres: mailferry_e2e::postgres::SuitePostgres::for_suite().unwrap(),
        }
    }

    fn db_url(&self) -> String {
        mailferry_e2e::postgres::map_url(self.postgres.as_ref(), self.dir.path())
    }

    /// A file only its owner may read, as secrets must be.
    fn private_file(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, contents).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        path
    }

    /// A config file whose profile `workspace` is the bearer-only server in app mode with
    /// this issuer; `oauth_extra` adds lines to its `oauth` table.
    fn config(&self, name: &str, auth: &str, issuer: &str, oauth_extra: &str) -> PathBuf {
        self.config_with_key(name, auth, issuer, &self.key.private_key_pem, oauth_extra)
    }

    fn config_with_key(
        &self,
        name: &str,
        auth: &str,
        issuer: &str,
        key_pem: &str,
        oauth_extra: &str,
    ) -> PathBuf {
        let key = self.private_file(&format!("{name}.key.pem"), key_pem);
        self.private_file(
            name,
            &format!(
                "[servers.{PROFILE}]\nhost = \"localhost\"\nport = {}\ntls = \"tls\"\n\
                 ca_file = \"{}\"\nauth = \"{auth}\"\n\
                 [servers.{PROFILE}.oauth]\nissuer = \"{issuer}\"\nclient_id = \"{SERVICE_ACCOUNT}\"\n\
                 private_key_file = \"{}\"\napp_scopes = [\"imap\"]\n{oauth_extra}",
                self.bearer.imaps_port(),
                self.bearer.ca_pem_path().display(),
                key.display(),
            ),
        )
    }

    /// The plain server's account as `migrate` names it.
    fn plain_url(&self) -> String {
        format!("imaps://{USER}@localhost:{}", self.plain.imaps_port())
    }

    fn bearer_url(&self) -> String {
        format!("imaps://{USER}@localhost:{}", self.bearer.imaps_port())
    }

    /// Both servers' CAs in one file (for --ca-file, which URL-named sides share).
    fn both_cas(&self) -> PathBuf {
        let path = self.dir.path().join("cas.pem");
        let mut pem = std::fs::read(self.plain.ca_pem_path()).unwrap();
        pem.extend(std::fs::read(self.bearer.ca_pem_path()).unwrap());
        std::fs::write(&path, pem).unwrap();
        path
    }

    /// An access token for alice, as the service account gets one (scope `imap`).
    async fn token(&self) -> String {
        self.provider
            .jwt_bearer_token(SERVICE_ACCOUNT, &self.key.private_key_pem, USER, "imap")
            .await
            .unwrap()
    }

    /// Alice's mailbox on the bearer-only server, logged in to with a fresh token.
    async fn bearer_account(&self) -> Account {
        self.bearer
            .account_tls(USER, "")
            .with_bearer(&self.token().await)
    }

    async fn bearer_snapshot(&self) -> Snapshot {
        snapshot(&self.bearer_account().await).await.unwrap()
    }

    async fn plain_snapshot(&self) -> Snapshot {
        snapshot(&self.plain.account_tls(USER, PASSWORD))
            .await
            .unwrap()
    }

    /// Runs `mailferry migrate ARGS --db .. --json` to its end.
    async fn migrate(&self, args: &[&str]) -> Run {
        let out = tokio::process::Command::new(mailferry_bin())
            .arg("migrate")
            .args(args)
            .arg("--db")
            .arg(self.db_url())
            .args(["--timeout", "15", "--json"])
            .env("MAILFERRY_LOG", "warn")
            .env_remove("MAILFERRY_DATABASE_URL")
            .env_remove("MAILFERRY_CONFIG")
            // The password side's; a side logging in with a token never reads it.
            .env("MAILFERRY_FROM_PASSWORD", PASSWORD)
            .env("MAILFERRY_TO_PASSWORD", PASSWORD)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .output()
            .await
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let json = serde_json::from_str(stdout.lines().last().unwrap_or(""))
            .unwrap_or_else(|_| panic!("no JSON on stdout: {stdout}\nstderr:\n{stderr}"));
        Run {
            code: out.status.code(),
            json,
            output: format!("{stdout}\n{stderr}"),
        }
    }
}

#[derive(Debug)]
struct Run {
    code: Option<i32>,
    json: serde_json::Value,
    /// Everything printed, to check no secret is.
    output: String,
}

impl Run {
    fn count(&self, field: &str) -> u64 {
        self.json[field]
            .as_u64()
            .unwrap_or_else(|| panic!("{field} missing in {}", self.json))
    }

    fn error(&self) -> String {
        self.json["error"].as_str().unwrap_or_default().to_owned()
    }

    /// A successful run: exit 0, the counts it reports.
    fn assert_complete(&self) -> (u64, u64) {
        assert_eq!(self.code, Some(0), "{}", self.output);
        (self.count("copied"), self.count("already_present"))
    }
}

fn same_mail(source: &Snapshot, target: &Snapshot) {
    let differences = compare(source, target, &FolderMap::identity());
    assert!(
        differences.is_empty(),
        "the target differs from the source:\n{}",
        differences
            .iter()
            .map(|d| format!("  {d}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_profile_target_gets_every_message_byte_exact_and_a_rerun_copies_nothing() {
    let kit = Kit::start().await;
    let seeded = seed_mailbox(
        &kit.plain.account_tls(USER, PASSWORD),
        &SeedSpec::new(11, 40),
    )
    .await
    .unwrap()
    .total_messages() as u64;
    let config = kit.config("mailferry.toml", "oauth2_app", &kit.provider.issuer(), "");
    let run = into_profile(&kit, &config, USER).await;
    assert_eq!(run.assert_complete(), (seeded, 0));
    same_mail(&kit.plain_snapshot().await, &kit.bearer_snapshot().await);

    // The app's tokens were for alice, and Dovecot checked them with the provider.
    let checks = kit.provider.introspections().await.unwrap();
    assert!(
        checks.iter().any(|i| i.active
            && i.sub.as_deref() == Some(USER)
            && i.scope.as_deref() == Some("imap")),
        "{checks:?}"
    );
    assert!(!run.output.contains("PRIVATE KEY"), "{}", run.output);

    // Again, the mailbox named by URL this time (the profile's own host and port):
    // the same job, nothing copied twice.
    let bearer_url = kit.bearer_url();
    let run = into_profile(&kit, &config, &bearer_url).await;
    assert_eq!(run.assert_complete(), (0, seeded));
    same_mail(&kit.plain_snapshot().await, &kit.bearer_snapshot().await);

    // A URL naming another server than the profile's is refused.
    let elsewhere = format!("imaps://{USER}@localhost:{}", kit.plain.imaps_port());
    let run = into_profile(&kit, &config, &elsewhere).await;
    assert_eq!(run.code, Some(2), "{}", run.output);
    assert!(run.error().contains(PROFILE), "{}", run.error());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_profile_source_copies_out_of_a_bearer_only_server() {
    let kit = Kit::start().await;
    let seeded = seed_mailbox(&kit.bearer_account().await, &SeedSpec::new(12, 30))
        .await
        .unwrap()
        .total_messages() as u64;
    let config = kit.config("mailferry.toml", "oauth2_app", &kit.provider.issuer(), "");
    let ca = kit.plain.ca_pem_path().to_owned();
    let plain_url = kit.plain_url();
    let profile_run = |extra: Vec<String>| {
        let mut args = vec![
            "--config".to_owned(),
            path(&config).to_owned(),
            "--from-profile".to_owned(),
            PROFILE.to_owned(),
            "--to".to_owned(),
            plain_url.clone(),
            "--ca-file".to_owned(),
            path(&ca).to_owned(),
        ];
        args.extend(extra);
        args
    };
    let args = profile_run(vec!["--from".into(), USER.into()]);
    let run = kit
        .migrate(&args.iter().map(String::as_str).collect::<Vec<_>>())
        .await;
    assert_eq!(run.assert_complete(), (seeded, 0));
    same_mail(&kit.bearer_snapshot().await, &kit.plain_snapshot().await);

    // A token from a file instead of the app, with the same profile: the same job.
    let token = kit.token().await;
    let token_file = kit.private_file("source.token", &format!("{token}\n"));
    let args = profile_run(vec![
        "--from".into(),
        USER.into(),
        "--from-oauth2-token-file".into(),
        path(&token_file).into(),
    ]);
    let run = kit
        .migrate(&args.iter().map(String::as_str).collect::<Vec<_>>())
        .await;
    assert_eq!(run.assert_complete(), (0, seeded));
    assert!(!run.output.contains(&token), "the token was printed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_file_logs_in_and_a_refused_or_loose_one_is_a_clear_error() {
    let kit = Kit::start().await;
    let seeded = seed_mailbox(
        &kit.plain.account_tls(USER, PASSWORD),
        &SeedSpec::new(13, 25),
    )
    .await
    .unwrap()
    .total_messages() as u64;
    let cas = kit.both_cas();
    let token = kit.token().await;
    let token_file = kit.private_file("target.token", &format!("  {token}\r\n"));
    let (plain_url, bearer_url) = (kit.plain_url(), kit.bearer_url());
    let with_token = |file: &Path| {
        vec![
            "--from".to_owned(),
            plain_url.clone(),
            "--to".to_owned(),
            bearer_url.clone(),
            "--to-oauth2-token-file".to_owned(),
            path(file).to_owned(),
            "--ca-file".to_owned(),
            path(&cas).to_owned(),
        ]
    };
    let args = with_token(&token_file);
    let run = kit
        .migrate(&args.iter().map(String::as_str).collect::<Vec<_>>())
        .await;
    assert_eq!(run.assert_complete(), (seeded, 0));
    assert!(!run.output.contains(&token), "the token was printed");
    same_mail(&kit.plain_snapshot().await, &kit.bearer_snapshot().await);

    // A token the server does not accept: exit 2, saying the token was refused.
    let wrong = kit.private_file("wrong.token", "not-a-token-anyone-issued\n");
    let args = with_token(&wrong);
    let run = kit
        .migrate(&args.iter().map(String::as_str).collect::<Vec<_>>())
        .await;
    assert_eq!(run.code, Some(2), "{}", run.output);
    let error = run.error();
    assert!(
        error.contains("target")
            && error.contains("refused the access token")
            && error.contains(path(&wrong)),
        "{error}"
    );
    assert!(!run.output.contains("not-a-token-anyone-issued"), "{error}");

    // A token file others can read is not used.
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let args = with_token(&token_file);
    let run = kit
        .migrate(&args.iter().map(String::as_str).collect::<Vec<_>>())
        .await;
    assert_eq!(run.code, Some(2), "{}", run.output);
    assert!(run.error().contains("chmod 600"), "{}", run.error());
    assert!(!run.output.contains(&token), "the token was printed");
}

/// Copies the plain server's alice into profile `workspace` of `config`, the mailbox
/// named there by `to`.
async fn into_profile(kit: &Kit, config: &Path, to: &str) -> Run {
    let ca = kit.plain.ca_pem_path().to_owned();
    let plain_url = kit.plain_url();
    kit.migrate(&[
        "--config",
        path(config),
        "--from",
        &plain_url,
        "--ca-file",
        path(&ca),
        "--to-profile",
        PROFILE,
        "--to",
        to,
    ])
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_provider_setting_is_reported_naming_the_profile_before_any_copy() {
    let kit = Kit::start().await;
    // Nothing listens at the issuer.
    let nowhere = format!("http://127.0.0.1:{}", free_port());
    let run = into_profile(
        &kit,
        &kit.config("nowhere.toml", "oauth2_app", &nowhere, ""),
        USER,
    )
    .await;
    assert_eq!(run.code, Some(2), "{}", run.output);
    let error = run.error();
    assert!(
        error.contains(&format!("server {PROFILE}")) && error.contains("cannot be reached"),
        "{error}"
    );

    // The provider's address with a wrong path: not an issuer.
    let wrong_path = format!("{}/tenant-that-is-not-there", kit.provider.issuer());
    let run = into_profile(
        &kit,
        &kit.config("path.toml", "oauth2_app", &wrong_path, ""),
        USER,
    )
    .await;
    assert_eq!(run.code, Some(2), "{}", run.output);
    let error = run.error();
    assert!(
        error.contains(&format!("server {PROFILE}"))
            && error.contains("not an OpenID Connect issuer"),
        "{error}"
    );

    // A key the provider does not know: no token, the profile named.
    let other_key = ServiceAccountKey::generate().unwrap();
    let config = kit.config_with_key(
        "other-key.toml",
        "oauth2_app",
        &kit.provider.issuer(),
        &other_key.private_key_pem,
        "",
    );
    let run = into_profile(&kit, &config, USER).await;
    assert_eq!(run.code, Some(2), "{}", run.output);
    let error = run.error();
    assert!(
        error.contains(&format!("server profile {PROFILE}")) && error.contains("no access token"),
        "{error}"
    );

    // User consent cannot happen on a command line: the way out is named.
    let secret = kit.private_file("client.secret", "portal-secret\n");
    let consent = kit.config(
        "consent.toml",
        "oauth2",
        &kit.provider.issuer(),
        &format!("client_secret_file = \"{}\"\n", secret.display()),
    );
    let run = into_profile(&kit, &consent, USER).await;
    assert_eq!(run.code, Some(2), "{}", run.output);
    let error = run.error();
    assert!(
        error.contains(PROFILE) && error.contains("--to-oauth2-token-file"),
        "{error}"
    );

    // None of these got as far as the mail server.
    assert_eq!(kit.bearer.login_count(), 0, "{}", kit.bearer.log_text());
    assert_eq!(kit.plain.login_count(), 0, "{}", kit.plain.log_text());
}
