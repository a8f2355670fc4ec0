//! A real OpenID Connect provider on loopback, for tests of OAuth 2.0 logins.
//!
//! [`OidcProvider::start`] writes a JSON config into a temporary directory and runs
//! `node e2e/oidc/provider.mjs CONFIG` — the `oidc-provider` npm package (version pinned in
//! `e2e/oidc/package-lock.json`, installed by `scripts/install-test-deps.sh`) on a free
//! 127.0.0.1 port, issuer `http://127.0.0.1:PORT`, plain HTTP. It offers:
//!
//! - the authorization code flow with PKCE (S256, required by default), `state`, `nonce`,
//!   RS256 ID tokens (key at the discovery document's `jwks_uri`), refresh tokens when
//!   `offline_access` is granted (oidc-provider grants it only with `prompt=consent`;
//!   confidential clients keep their refresh token, public ones get a new one each use);
//! - its own login page (`/interaction/UID`: inputs `login`, `password`, button `submit`;
//!   a wrong password re-renders it with `#error`) and consent page (buttons `allow` and
//!   `deny`; deny ends at the redirect URI with `error=access_denied`);
//! - client credentials, token introspection (any confidential client may introspect any
//!   token) and revocation; opaque access tokens with the configured TTL;
//! - the RFC 7523 JWT-bearer grant for service accounts with a registered public `jwks`:
//!   the assertion's `sub` is the user the token is for (Google domain-wide delegation);
//! - test controls: `POST /kit/revoke?account=LOGIN` ([`OidcProvider::revoke_account`])
//!   and `GET /kit/introspections` ([`OidcProvider::introspections`]).
//!
//! Claims: `sub` and `preferred_username` are the login, `email` the user's, and
//! `email_verified` true. Token values are never logged: the provider's log names tokens
//! by [`token_id`] (a hash of the value), and so does its introspection record.
//!
//! A bearer-only Dovecot ([`crate::dovecot::DovecotOptions::oauth2`], made with
//! [`OidcProvider::dovecot_oauth2`]) checks each XOAUTH2/OAUTHBEARER token by POSTing it
//! to the provider's introspection endpoint as the confidential client `dovecot` (HTTP
//! basic credentials in the URL), and accepts the login when the answer says
//! `"active": true` and its `sub` equals the login name. Dovecot caches nothing, so a
//! revoked or expired token is refused at the next login.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context, Result};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::dovecot::DovecotOAuth2;
use crate::portal::workspace_root;
use crate::ports::free_port;

/// The RFC 7523 grant type.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// The scopes a provider knows unless told otherwise.
pub const DEFAULT_SCOPES: [&str; 5] = ["openid", "email", "profile", "offline_access", "imap"];

/// A user who can sign in at the provider's login page (and be a JWT-bearer `sub`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OidcUser {
    pub login: String,
    pub password: String,
    pub email: String,
}

impl OidcUser {
    /// `login` with `password` and the address `login@example.test`.
    pub fn new(login: &str, password: &str) -> OidcUser {
        OidcUser {
            login: login.into(),
            password: password.into(),
            email: format!("{login}@example.test"),
        }
    }
}

/// One registered client: oidc-provider client metadata as JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct OidcClient(pub Value);

impl OidcClient {
    /// A confidential web client (a portal): authorization code and refresh token grants,
    /// `client_secret_basic` (change it with [`with_auth_method`](Self::with_auth_method)).
    pub fn web(client_id: &str, secret: &str, redirect_uris: &[&str]) -> OidcClient {
        OidcClient(json!({
            "client_id": client_id,
            "client_secret": secret,
            "redirect_uris": redirect_uris,
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "client_secret_basic",
        }))
    }

    /// A confidential client that only introspects tokens (Dovecot's `dovecot`).
    pub fn introspector(client_id: &str, secret: &str) -> OidcClient {
        OidcClient(json!({
            "client_id": client_id,
            "client_secret": secret,
            "redirect_uris": [],
            "grant_types": [],
            "response_types": [],
            "token_endpoint_auth_method": "client_secret_basic",
        }))
    }

    /// A confidential client with the client credentials grant (`client_secret_basic`).
    pub fn machine(client_id: &str, secret: &str) -> OidcClient {
        OidcClient(json!({
            "client_id": client_id,
            "client_secret": secret,
            "redirect_uris": [],
            "grant_types": ["client_credentials"],
            "response_types": [],
            "token_endpoint_auth_method": "client_secret_basic",
        }))
    }

    /// A service account: the JWT-bearer grant only, authenticated by its signed
    /// assertion (no secret), verified with `key`'s public half.
    pub fn service_account(client_id: &str, key: &ServiceAccountKey) -> OidcClient {
        OidcClient(json!({
            "client_id": client_id,
            "redirect_uris": [],
            "grant_types": [JWT_BEARER],
            "response_types": [],
            "token_endpoint_auth_method": "none",
            "jwks": { "keys": [key.public_jwk.clone()] },
        }))
    }

    /// Sets `token_endpoint_auth_method` (`client_secret_basic`, `client_secret_post`, ...).
    pub fn with_auth_method(self, method: &str) -> OidcClient {
        self.set("token_endpoint_auth_method", json!(method))
    }

    /// Sets any metadata field.
    pub fn set(mut self, key: &str, value: Value) -> OidcClient {
        if let Some(map) = self.0.as_object_mut() {
            map.insert(key.into(), value);
        }
        self
    }

    /// The `client_id`.
    pub fn id(&self) -> &str {
        self.0["client_id"].as_str().unwrap_or_default()
    }
}

/// How an [`OidcProvider`] is set up.
#[derive(Debug, Clone)]
pub struct OidcOptions {
    pub clients: Vec<OidcClient>,
    pub users: Vec<OidcUser>,
    /// Lifetime of access tokens (also client credentials tokens); whole seconds.
    pub access_token_ttl: Duration,
    /// Lifetime of refresh tokens; whole seconds.
    pub refresh_token_ttl: Duration,
    pub scopes: Vec<String>,
    /// PKCE (S256) required of every client at the authorization endpoint.
    pub pkce_required: bool,
}

impl Default for OidcOptions {
    fn default() -> Self {
        OidcOptions {
            clients: Vec::new(),
            users: Vec::new(),
            access_token_ttl: Duration::from_secs(3600),
            refresh_token_ttl: Duration::from_secs(14 * 24 * 3600),
            scopes: DEFAULT_SCOPES.iter().map(|s| s.to_string()).collect(),
            pkce_required: true,
        }
    }
}

/// One introspection the provider answered (as recorded by `/kit/introspections`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Introspection {
    /// When, in milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// [`token_id`] of the introspected token (never the token itself).
    pub token_id: Option<String>,
    pub active: bool,
    pub sub: Option<String>,
    pub scope: Option<String>,
    /// The client that asked (`dovecot` for Dovecot's checks).
    pub client_id: Option<String>,
}

/// A successful token endpoint answer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: Option<u64>,
    pub scope: Option<String>,
    pub refresh_token: Option<String>,
    pub id_token: Option<String>,
}

/// The name the provider gives a token in its log and introspection record: the first
/// 16 hex digits of the SHA-256 of its value.
pub fn token_id(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))[..16].to_string()
}

/// An RSA key pair of a service account: the private key (PKCS#8 PEM) signs assertions,
/// the public JWK is registered with [`OidcClient::service_account`].
#[derive(Debug, Clone)]
pub struct ServiceAccountKey {
    pub private_key_pem: String,
    /// The key's id (`kid`), derived from its modulus; assertions carry it.
    pub kid: String,
    pub public_jwk: Value,
}

impl ServiceAccountKey {
    /// Generates a 2048-bit key with `openssl genpkey`.
    pub fn generate() -> Result<ServiceAccountKey> {
        let out = Command::new("openssl")
            .args([
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
            ])
            .stdin(Stdio::null())
            .output()
            .context("running `openssl genpkey`")?;
        if !out.status.success() {
            bail!(
                "openssl genpkey failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Self::from_pem(&String::from_utf8(out.stdout)?)
    }

    /// The key pair of a PEM private key (PKCS#8 or PKCS#1).
    pub fn from_pem(private_key_pem: &str) -> Result<ServiceAccountKey> {
        use rsa::traits::PublicKeyParts;
        let key = parse_private_key(private_key_pem)?;
        let n = key.n().to_bytes_be();
        let kid = key_id(&n);
        let public_jwk = json!({
            "kty": "RSA",
            "alg": "RS256",
            "use": "sig",
            "kid": kid,
            "n": b64url(&n),
            "e": b64url(&key.e().to_bytes_be()),
        });
        Ok(ServiceAccountKey {
            private_key_pem: private_key_pem.into(),
            kid,
            public_jwk,
        })
    }
}

fn parse_private_key(pem: &str) -> Result<rsa::RsaPrivateKey> {
    use rsa::pkcs1::DecodeRsaPrivateKey;
    use rsa::pkcs8::DecodePrivateKey;
    rsa::RsaPrivateKey::from_pkcs8_pem(pem)
        .or_else(|_| rsa::RsaPrivateKey::from_pkcs1_pem(pem))
        .map_err(|e| anyhow!("not an RSA private key in PEM: {e}"))
}

fn key_id(modulus: &[u8]) -> String {
    format!("sa-{}", &hex::encode(Sha256::digest(modulus))[..16])
}

/// Base64url without padding (JWT parts, JWK members).
pub fn b64url(data: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

/// Signs `claims` as a compact JWS with RS256, `kid` derived from the key (as
/// [`ServiceAccountKey`] registers it).
pub fn sign_assertion(private_key_pem: &str, claims: &Value) -> Result<String> {
    use rsa::signature::{SignatureEncoding, Signer};
    use rsa::traits::PublicKeyParts;
    let key = parse_private_key(private_key_pem)?;
    let kid = key_id(&key.n().to_bytes_be());
    let header = json!({ "alg": "RS256", "typ": "JWT", "kid": kid });
    let input = format!(
        "{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    );
    let signer = rsa::pkcs1v15::SigningKey::<Sha256>::new(key);
    let signature = signer.sign(input.as_bytes()).to_vec();
    Ok(format!("{input}.{}", b64url(&signature)))
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// A running provider. Stopped (and its directory removed) on drop.
pub struct OidcProvider {
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    port: u16,
    issuer: String,
    output: Arc<Mutex<String>>,
    http: reqwest::Client,
    // Declared last: removed after the process is gone.
    _dir: tempfile::TempDir,
}

impl std::fmt::Debug for OidcProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcProvider")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

impl OidcProvider {
    /// Starts a provider with `options` and waits (at most 30 s) until it says `ready`.
    ///
    /// Blocking (about half a second): call it before or outside async work. Fails with
    /// node's output if the process exits first. Needs `node` (or `MAILFERRY_NODE`) and
    /// `e2e/oidc/node_modules` (`scripts/install-test-deps.sh`).
    pub fn start(options: OidcOptions) -> Result<OidcProvider> {
        let oidc_dir = workspace_root().join("e2e").join("oidc");
        let script = oidc_dir.join("provider.mjs");
        if !oidc_dir.join("node_modules").join("oidc-provider").is_dir() {
            bail!(
                "{} has no node_modules/oidc-provider: run scripts/install-test-deps.sh",
                oidc_dir.display()
            );
        }
        let dir = tempfile::Builder::new()
            .prefix("mailferry-oidc-")
            .tempdir()
            .context("creating the provider's directory")?;
        let port = free_port();
        let issuer = format!("http://127.0.0.1:{port}");
        let config = json!({
            "port": port,
            "issuer": issuer,
            "access_token_ttl_seconds": options.access_token_ttl.as_secs().max(1),
            "refresh_token_ttl_seconds": options.refresh_token_ttl.as_secs().max(1),
            "clients": options.clients.iter().map(|c| c.0.clone()).collect::<Vec<_>>(),
            "users": options.users,
            "scopes": options.scopes,
            "pkce_required": options.pkce_required,
        });
        let config_path = dir.path().join("config.json");
        std::fs::write(&config_path, serde_json::to_vec_pretty(&config)?)?;

        let node = std::env::var_os("MAILFERRY_NODE").unwrap_or_else(|| "node".into());
        let mut child = Command::new(&node)
            .arg(&script)
            .arg(&config_path)
            .current_dir(&oidc_dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .with_context(|| format!("running {node:?} {}", script.display()))?;
        let stdin = child.stdin.take();
        let output = Arc::new(Mutex::new(String::new()));
        let (ready_tx, ready_rx) = mpsc::channel::<()>();
        let stdout = child.stdout.take().context("provider stdout")?;
        let out = Arc::clone(&output);
        std::thread::spawn(move || {
            let mut ready = Some(ready_tx);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line.trim() == "ready" {
                    if let Some(tx) = ready.take() {
                        let _ = tx.send(());
                    }
                }
                if let Ok(mut o) = out.lock() {
                    o.push_str(&line);
                    o.push('\n');
                }
            }
            // Dropping `ready` unsent tells the waiter the process went away.
        });
        let mut stderr = child.stderr.take().context("provider stderr")?;
        let err = Arc::clone(&output);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stderr.read(&mut buf) {
                if n == 0 {
                    break;
                }
                if let Ok(mut o) = err.lock() {
                    o.push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            }
        });
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .build()?;
        let mut provider = OidcProvider {
            child: Some(child),
            stdin,
            port,
            issuer,
            output,
            http,
            _dir: dir,
        };
        match ready_rx.recv_timeout(Duration::from_secs(30)) {
            Ok(()) => Ok(provider),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = provider.child.as_mut().and_then(|c| {
                    let deadline = Instant::now() + Duration::from_secs(2);
                    loop {
                        match c.try_wait() {
                            Ok(Some(s)) => return Some(s),
                            _ if Instant::now() > deadline => return None,
                            _ => std::thread::sleep(Duration::from_millis(20)),
                        }
                    }
                });
                // Let the stderr reader catch up.
                std::thread::sleep(Duration::from_millis(100));
                bail!(
                    "the OpenID provider exited at start ({status:?}):\n{}",
                    provider.output()
                )
            }
            Err(mpsc::RecvTimeoutError::Timeout) => bail!(
                "the OpenID provider did not say `ready` within 30 s:\n{}",
                provider.output()
            ),
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn issuer(&self) -> String {
        self.issuer.clone()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `ISSUER/.well-known/openid-configuration`.
    pub fn discovery_url(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.issuer)
    }

    /// The token endpoint (also the audience JWT-bearer assertions name).
    pub fn token_endpoint(&self) -> String {
        format!("{}/token", self.issuer)
    }

    pub fn authorization_endpoint(&self) -> String {
        format!("{}/auth", self.issuer)
    }

    pub fn introspection_endpoint(&self) -> String {
        format!("{}/token/introspection", self.issuer)
    }

    /// Everything the provider printed so far (its token and introspection log, warnings).
    pub fn output(&self) -> String {
        self.output.lock().map(|o| o.clone()).unwrap_or_default()
    }

    /// The discovery document.
    pub async fn discovery(&self) -> Result<Value> {
        let resp = self.http.get(self.discovery_url()).send().await?;
        if !resp.status().is_success() {
            bail!("discovery answered {}", resp.status());
        }
        Ok(resp.json().await?)
    }

    /// The HTTP client the kit uses (no proxy, 30 s timeout).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// POSTs `form` to the token endpoint, with HTTP basic client authentication when
    /// `basic` is given, and returns the status and the JSON answer, whatever they are.
    pub async fn token_request(
        &self,
        form: &[(&str, &str)],
        basic: Option<(&str, &str)>,
    ) -> Result<(u16, Value)> {
        let mut req = self.http.post(self.token_endpoint()).form(form);
        if let Some((id, secret)) = basic {
            req = req.basic_auth(id, Some(secret));
        }
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.context("token endpoint answer")?;
        Ok((status, body))
    }

    async fn token(
        &self,
        form: &[(&str, &str)],
        basic: Option<(&str, &str)>,
    ) -> Result<TokenResponse> {
        let (status, body) = self.token_request(form, basic).await?;
        if status != 200 {
            bail!("token endpoint answered {status}: {body}");
        }
        Ok(serde_json::from_value(body)?)
    }

    /// An access token from the client credentials grant (`client_secret_basic`).
    pub async fn client_credentials_token(
        &self,
        client_id: &str,
        secret: &str,
        scope: &str,
    ) -> Result<String> {
        let mut form = vec![("grant_type", "client_credentials")];
        if !scope.is_empty() {
            form.push(("scope", scope));
        }
        Ok(self
            .token(&form, Some((client_id, secret)))
            .await?
            .access_token)
    }

    /// An RFC 7523 assertion by service account `client_id` for user `sub`: audience the
    /// token endpoint, issued now, valid 10 minutes, a random `jti`.
    pub fn jwt_bearer_assertion(
        &self,
        client_id: &str,
        private_key_pem: &str,
        sub: &str,
        scope: &str,
    ) -> Result<String> {
        let now = now_secs();
        let jti = hex::encode(Sha256::digest(
            format!("{client_id}{sub}{:?}", SystemTime::now()).as_bytes(),
        ));
        sign_assertion(
            private_key_pem,
            &json!({
                "iss": client_id,
                "sub": sub,
                "aud": self.token_endpoint(),
                "scope": scope,
                "iat": now,
                "exp": now + 600,
                "jti": &jti[..24],
            }),
        )
    }

    /// Exchanges a freshly signed assertion (see [`jwt_bearer_assertion`](Self::jwt_bearer_assertion))
    /// for an access token for `sub`, Google style (only `grant_type`, `assertion`, `scope`).
    pub async fn jwt_bearer_token(
        &self,
        client_id: &str,
        private_key_pem: &str,
        sub: &str,
        scope: &str,
    ) -> Result<String> {
        let assertion = self.jwt_bearer_assertion(client_id, private_key_pem, sub, scope)?;
        let mut form = vec![("grant_type", JWT_BEARER), ("assertion", &assertion)];
        if !scope.is_empty() {
            form.push(("scope", scope));
        }
        Ok(self.token(&form, None).await?.access_token)
    }

    /// Uses a refresh token (`client_secret_basic`).
    pub async fn refresh(
        &self,
        client_id: &str,
        secret: &str,
        refresh_token: &str,
    ) -> Result<TokenResponse> {
        self.token(
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
            ],
            Some((client_id, secret)),
        )
        .await
    }

    /// Introspects `token` as confidential client `client_id` (HTTP basic).
    pub async fn introspect(&self, client_id: &str, secret: &str, token: &str) -> Result<Value> {
        let resp = self
            .http
            .post(self.introspection_endpoint())
            .basic_auth(client_id, Some(secret))
            .form(&[("token", token)])
            .send()
            .await?;
        if !resp.status().is_success() {
            bail!("introspection answered {}", resp.status());
        }
        Ok(resp.json().await?)
    }

    /// Withdraws `login`'s consent: every grant, code, access and refresh token of the
    /// account is deleted (its tokens introspect as inactive from now on).
    pub async fn revoke_account(&self, login: &str) -> Result<()> {
        let resp = self
            .http
            .post(format!("{}/kit/revoke", self.issuer))
            .query(&[("account", login)])
            .send()
            .await?;
        if !resp.status().is_success() {
            bail!("/kit/revoke answered {}", resp.status());
        }
        Ok(())
    }

    /// Every introspection answered so far, oldest first.
    pub async fn introspections(&self) -> Result<Vec<Introspection>> {
        let resp = self
            .http
            .get(format!("{}/kit/introspections", self.issuer))
            .send()
            .await?;
        if !resp.status().is_success() {
            bail!("/kit/introspections answered {}", resp.status());
        }
        Ok(resp.json().await?)
    }

    /// Settings for a bearer-only Dovecot that introspects as `client_id` (registered
    /// with [`OidcClient::introspector`]), at the endpoint the discovery document names.
    /// The id and secret go into the URL, so they must be URL-safe as they are.
    pub async fn dovecot_oauth2(&self, client_id: &str, secret: &str) -> Result<DovecotOAuth2> {
        let url_safe = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
        };
        if !url_safe(client_id) || !url_safe(secret) {
            bail!("the introspecting client's id and secret must be URL-safe");
        }
        let discovery = self.discovery().await?;
        let endpoint = discovery["introspection_endpoint"]
            .as_str()
            .context("discovery has no introspection_endpoint")?;
        let path = endpoint
            .strip_prefix(&self.issuer)
            .context("introspection endpoint outside the issuer")?;
        Ok(DovecotOAuth2::new(format!(
            "http://{client_id}:{secret}@127.0.0.1:{}{path}",
            self.port
        )))
    }

    /// Stops the provider now (also done on drop). Idempotent.
    pub fn stop(&mut self) {
        // Closing its standard input asks it to exit.
        drop(self.stdin.take());
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = i32::try_from(child.id()).unwrap_or(0);
        // SAFETY: signalling our own child's process group.
        unsafe {
            libc::kill(-pid, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if matches!(child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        // SAFETY: as above.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        self.stop();
    }
}
