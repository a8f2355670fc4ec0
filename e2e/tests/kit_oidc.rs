//! Tests of the test kit's OpenID provider (the real oidc-provider on Node.js) and of
//! bearer-only Dovecot servers that check its tokens by introspection.

use std::time::{Duration, Instant};

use base64::Engine as _;
use mailferry_e2e::dovecot::{Dovecot, DovecotOptions};
use mailferry_e2e::imap_client::{connect, ImapConnection};
use mailferry_e2e::oidc::{
    b64url, sign_assertion, token_id, OidcClient, OidcOptions, OidcProvider, OidcUser,
    ServiceAccountKey, JWT_BEARER,
};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const REDIRECT: &str = "http://127.0.0.1:9/callback";

fn jwt_part(jwt: &str, index: usize) -> Value {
    let part = jwt.split('.').nth(index).expect("JWT part");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON")
}

/// Verifies an RS256 JWT against a JWKS, as a relying party would.
fn verify_rs256(jwt: &str, jwks: &Value) {
    use rsa::signature::Verifier;
    let header = jwt_part(jwt, 0);
    assert_eq!(header["alg"], "RS256", "{header}");
    let key = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == header["kid"])
        .expect("signing key in the JWKS");
    let num = |v: &Value| {
        rsa::BigUint::from_bytes_be(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(v.as_str().unwrap())
                .unwrap(),
        )
    };
    let public = rsa::RsaPublicKey::new(num(&key["n"]), num(&key["e"])).unwrap();
    let verifier = rsa::pkcs1v15::VerifyingKey::<Sha256>::new(public);
    let (input, sig) = jwt.rsplit_once('.').unwrap();
    let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(sig)
        .unwrap();
    let sig = rsa::pkcs1v15::Signature::try_from(sig.as_slice()).unwrap();
    verifier
        .verify(input.as_bytes(), &sig)
        .expect("ID token signature verifies");
}

fn query_param(url: &str, name: &str) -> Option<String> {
    let url = reqwest::Url::parse(url).unwrap();
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// A browser-less user agent: cookies kept, redirects followed by hand.
struct Agent {
    http: reqwest::Client,
    base: String,
}

impl Agent {
    fn new(provider: &OidcProvider) -> Agent {
        Agent {
            http: reqwest::Client::builder()
                .no_proxy()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: provider.issuer(),
        }
    }

    fn absolute(&self, location: &str) -> String {
        if location.starts_with("http") {
            location.to_string()
        } else {
            format!("{}{location}", self.base)
        }
    }

    /// GETs `url` and follows redirects on the provider; returns the last response's
    /// status, URL and body, or the first redirect that leaves the provider.
    async fn get(&self, url: &str) -> (u16, String, String) {
        let mut url = url.to_string();
        for _ in 0..10 {
            let resp = self.http.get(&url).send().await.unwrap();
            let status = resp.status().as_u16();
            if let Some(location) = resp.headers().get("location") {
                let next = self.absolute(location.to_str().unwrap());
                if !next.starts_with(&self.base) {
                    return (status, next, String::new());
                }
                url = next;
                continue;
            }
            return (status, url, resp.text().await.unwrap());
        }
        panic!("too many redirects");
    }

    /// POSTs a form and follows the redirects.
    async fn post(&self, url: &str, form: &[(&str, &str)]) -> (u16, String, String) {
        let resp = self
            .http
            .post(self.absolute(url))
            .form(form)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        match resp.headers().get("location") {
            Some(location) => {
                let next = self.absolute(location.to_str().unwrap());
                if next.starts_with(&self.base) {
                    self.get(&next).await
                } else {
                    (status, next, String::new())
                }
            }
            None => (status, url.to_string(), resp.text().await.unwrap()),
        }
    }
}

fn form_action(html: &str, id_hint: &str) -> String {
    // The form holding the button `id_hint` (pages have one form per button).
    let at = html.find(&format!("id=\"{id_hint}\"")).expect("button");
    let start = html[..at].rfind("<form").expect("form");
    let action = &html[start..at];
    let from = action.find("action=\"").unwrap() + 8;
    let to = from + action[from..].find('"').unwrap();
    action[from..to].to_string()
}

#[tokio::test]
async fn provider_serves_discovery_login_consent_code_flow_and_refresh() {
    let provider = OidcProvider::start(OidcOptions {
        clients: vec![
            OidcClient::web("portal", "portal-secret", &[REDIRECT]),
            OidcClient::web("portal-post", "post-secret", &[REDIRECT])
                .with_auth_method("client_secret_post"),
            OidcClient::introspector("dovecot", "dovecot-secret"),
        ],
        users: vec![OidcUser::new("alice", "pw-alice")],
        ..Default::default()
    })
    .unwrap();

    let discovery = provider.discovery().await.unwrap();
    assert_eq!(discovery["issuer"], provider.issuer());
    assert_eq!(discovery["token_endpoint"], provider.token_endpoint());
    assert_eq!(
        discovery["authorization_endpoint"],
        provider.authorization_endpoint()
    );
    assert_eq!(
        discovery["introspection_endpoint"],
        provider.introspection_endpoint()
    );
    assert_eq!(
        discovery["code_challenge_methods_supported"],
        json!(["S256"])
    );
    let grants = discovery["grant_types_supported"].as_array().unwrap();
    for g in [
        "authorization_code",
        "refresh_token",
        "client_credentials",
        JWT_BEARER,
    ] {
        assert!(grants.contains(&json!(g)), "{g} missing: {discovery}");
    }
    let jwks: Value = provider
        .http()
        .get(discovery["jwks_uri"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks["keys"][0]["kty"], "RSA", "{jwks}");
    assert!(jwks["keys"][0].get("d").is_none(), "private key published");

    let mut secrets = Vec::new();
    for (client, secret, post) in [
        ("portal", "portal-secret", false),
        ("portal-post", "post-secret", true),
    ] {
        let agent = Agent::new(&provider);
        let verifier = format!("verifier-{client}-0123456789-0123456789-0123456789");
        let challenge = b64url(&Sha256::digest(verifier.as_bytes()));
        let mut auth_url = reqwest::Url::parse(&provider.authorization_endpoint()).unwrap();
        auth_url
            .query_pairs_mut()
            .append_pair("client_id", client)
            .append_pair("response_type", "code")
            .append_pair("redirect_uri", REDIRECT)
            .append_pair("scope", "openid email profile offline_access")
            .append_pair("prompt", "consent")
            .append_pair("state", "state-123")
            .append_pair("nonce", "nonce-456")
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");

        // The login page: our own form.
        let (status, _, html) = agent.get(auth_url.as_str()).await;
        assert_eq!(status, 200, "{html}");
        for needle in ["name=\"login\"", "name=\"password\"", "id=\"submit\""] {
            assert!(html.contains(needle), "{needle} missing: {html}");
        }
        let login_action = form_action(&html, "submit");

        // A wrong password is refused on the page.
        let (status, _, html) = agent
            .post(&login_action, &[("login", "alice"), ("password", "wrong")])
            .await;
        assert_eq!(status, 401);
        assert!(html.contains("id=\"error\""), "{html}");
        assert!(html.contains("name=\"login\""), "{html}");

        // The right one leads to the consent page.
        let (status, _, html) = agent
            .post(
                &login_action,
                &[("login", "alice"), ("password", "pw-alice")],
            )
            .await;
        assert_eq!(status, 200, "{html}");
        assert!(
            html.contains("id=\"allow\"") && html.contains("id=\"deny\""),
            "{html}"
        );
        assert!(html.contains("offline_access"), "{html}");
        let (_, redirect, _) = agent.post(&form_action(&html, "allow"), &[]).await;
        assert!(redirect.starts_with(REDIRECT), "{redirect}");
        assert_eq!(
            query_param(&redirect, "state").as_deref(),
            Some("state-123")
        );
        assert_eq!(
            query_param(&redirect, "iss").as_deref(),
            Some(provider.issuer().as_str())
        );
        let code = query_param(&redirect, "code").expect("code");

        // Redeem the code with the PKCE verifier.
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier.as_str()),
        ];
        let basic = if post {
            form.push(("client_id", client));
            form.push(("client_secret", secret));
            None
        } else {
            Some((client, secret))
        };
        let (status, tokens) = provider.token_request(&form, basic).await.unwrap();
        assert_eq!(status, 200, "{tokens}");
        let id_token = tokens["id_token"].as_str().expect("id_token");
        verify_rs256(id_token, &jwks);
        let claims = jwt_part(id_token, 1);
        assert_eq!(claims["iss"], provider.issuer());
        assert_eq!(claims["aud"], client);
        assert_eq!(claims["nonce"], "nonce-456");
        assert_eq!(claims["sub"], "alice");
        assert_eq!(claims["email"], "alice@example.test");
        assert_eq!(claims["email_verified"], true);
        assert_eq!(claims["preferred_username"], "alice");
        let refresh = tokens["refresh_token"].as_str().expect("refresh_token");
        let access = tokens["access_token"].as_str().unwrap();
        secrets.extend([code.clone(), access.to_string(), refresh.to_string()]);

        // The refresh token works, for either client authentication method.
        let mut form = vec![("grant_type", "refresh_token"), ("refresh_token", refresh)];
        if post {
            form.push(("client_id", client));
            form.push(("client_secret", secret));
        }
        let (status, again) = provider.token_request(&form, basic).await.unwrap();
        assert_eq!(status, 200, "{again}");
        assert_ne!(again["access_token"].as_str().unwrap(), access);
        // Confidential clients keep their refresh token.
        let (status, third) = provider.token_request(&form, basic).await.unwrap();
        assert_eq!(status, 200, "{third}");

        // A resource server sees access tokens, not refresh tokens; the client sees both.
        let answer = provider
            .introspect(
                "dovecot",
                "dovecot-secret",
                again["access_token"].as_str().unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(answer["active"], true, "{answer}");
        assert_eq!(answer["sub"], "alice", "{answer}");
        let answer = provider
            .introspect("dovecot", "dovecot-secret", refresh)
            .await
            .unwrap();
        assert_eq!(answer["active"], false, "{answer}");
        let answer = provider.introspect(client, secret, refresh).await.unwrap();
        assert_eq!(answer["active"], true, "{answer}");

        // Userinfo answers for the access token.
        let info: Value = provider
            .http()
            .get(discovery["userinfo_endpoint"].as_str().unwrap())
            .bearer_auth(again["access_token"].as_str().unwrap())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(info["sub"], "alice", "{info}");
        assert_eq!(info["email"], "alice@example.test", "{info}");

        // Revocation (RFC 7009) by the client itself: the token is inactive afterwards.
        let access = again["access_token"].as_str().unwrap();
        let mut form = vec![("token", access)];
        let mut req = provider
            .http()
            .post(discovery["revocation_endpoint"].as_str().unwrap());
        if post {
            form.push(("client_id", client));
            form.push(("client_secret", secret));
        } else {
            req = req.basic_auth(client, Some(secret));
        }
        let status = req.form(&form).send().await.unwrap().status();
        assert_eq!(status.as_u16(), 200);
        let answer = provider.introspect(client, secret, access).await.unwrap();
        assert_eq!(answer["active"], false, "{answer}");
    }

    // Deny: the flow ends at the redirect URI with access_denied. A fresh agent signs in
    // again (no session yet).
    let agent = Agent::new(&provider);
    let challenge = b64url(&Sha256::digest(
        b"another-verifier-0123456789-0123456789-01",
    ));
    let auth_url = format!(
        "{}?client_id=portal&response_type=code&redirect_uri={}&scope=openid%20email&state=s2&code_challenge={challenge}&code_challenge_method=S256",
        provider.authorization_endpoint(),
        REDIRECT
    );
    let (_, _, html) = agent.get(&auth_url).await;
    let (_, _, html) = agent
        .post(
            &form_action(&html, "submit"),
            &[("login", "alice"), ("password", "pw-alice")],
        )
        .await;
    let (_, redirect, _) = agent.post(&form_action(&html, "deny"), &[]).await;
    assert!(redirect.starts_with(REDIRECT), "{redirect}");
    assert_eq!(
        query_param(&redirect, "error").as_deref(),
        Some("access_denied")
    );
    assert_eq!(query_param(&redirect, "state").as_deref(), Some("s2"));

    // Without PKCE the authorization request is refused.
    let (_, redirect, _) = agent
        .get(&format!(
            "{}?client_id=portal&response_type=code&redirect_uri={REDIRECT}&scope=openid&state=s3",
            provider.authorization_endpoint()
        ))
        .await;
    assert_eq!(
        query_param(&redirect, "error").as_deref(),
        Some("invalid_request"),
        "{redirect}"
    );

    // The log names tokens but never prints their values.
    let log = provider.output();
    assert!(log.contains("issued access_token"), "{log}");
    for secret in &secrets {
        assert!(
            !log.contains(secret.as_str()),
            "a token value in the log: {log}"
        );
    }

    // Dropping the provider stops it.
    let port = provider.port();
    drop(provider);
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
}

struct Setup {
    provider: OidcProvider,
    dovecot: Dovecot,
    key: ServiceAccountKey,
}

const SA: &str = "migrator-sa";

async fn setup(ttl: Duration) -> Setup {
    let key = ServiceAccountKey::generate().unwrap();
    let started = Instant::now();
    let provider = OidcProvider::start(OidcOptions {
        clients: vec![
            OidcClient::introspector("dovecot", "dovecot-secret"),
            OidcClient::machine("robot", "robot-secret"),
            OidcClient::service_account(SA, &key),
        ],
        users: vec![
            OidcUser::new("alice", "pw-alice"),
            OidcUser::new("bob", "pw-bob"),
        ],
        access_token_ttl: ttl,
        ..Default::default()
    })
    .unwrap();
    eprintln!("provider started in {:?}", started.elapsed());
    let oauth2 = provider
        .dovecot_oauth2("dovecot", "dovecot-secret")
        .await
        .unwrap();
    let dovecot = Dovecot::start(DovecotOptions {
        oauth2: Some(oauth2),
        ..Default::default()
    })
    .unwrap();
    Setup {
        provider,
        dovecot,
        key,
    }
}

async fn xoauth2(d: &Dovecot, user: &str, token: &str) -> anyhow::Result<ImapConnection> {
    connect(&d.account(user, "").with_bearer(token)).await
}

#[tokio::test]
async fn bearer_only_dovecot_accepts_introspected_tokens_until_revoked() {
    let Setup {
        provider,
        dovecot,
        key,
    } = setup(Duration::from_secs(20)).await;

    // Bearer mechanisms only.
    let mut conn = ImapConnection::open(&dovecot.account("alice", "pw-alice"))
        .await
        .unwrap();
    for cap in ["AUTH=XOAUTH2", "AUTH=OAUTHBEARER", "SASL-IR"] {
        assert!(conn.has_capability(cap), "{cap}: {:?}", conn.capabilities());
    }
    assert!(
        !conn.has_capability("AUTH=PLAIN"),
        "{:?}",
        conn.capabilities()
    );
    assert!(conn.login("alice", "pw-alice").await.is_err());
    assert!(conn
        .authenticate_plain("", "alice", "pw-alice")
        .await
        .is_err());

    // Client credentials: a token without a user, which Dovecot does not accept.
    let robot = provider
        .client_credentials_token("robot", "robot-secret", "imap")
        .await
        .unwrap();
    let answer = provider
        .introspect("dovecot", "dovecot-secret", &robot)
        .await
        .unwrap();
    assert_eq!(answer["active"], true, "{answer}");
    assert_eq!(answer["client_id"], "robot", "{answer}");
    assert_eq!(answer["scope"], "imap", "{answer}");
    assert!(answer.get("sub").is_none(), "{answer}");
    assert!(xoauth2(&dovecot, "robot", &robot).await.is_err());

    // JWT-bearer: the service account acts as alice.
    let alice = provider
        .jwt_bearer_token(SA, &key.private_key_pem, "alice", "imap")
        .await
        .unwrap();
    let answer = provider
        .introspect("dovecot", "dovecot-secret", &alice)
        .await
        .unwrap();
    assert_eq!(answer["sub"], "alice", "{answer}");
    assert_eq!(answer["scope"], "imap", "{answer}");
    let mut conn = xoauth2(&dovecot, "alice", &alice).await.unwrap();
    conn.select("INBOX").await.unwrap();
    conn.logout().await;
    let mut conn = ImapConnection::open(&dovecot.account("alice", ""))
        .await
        .unwrap();
    conn.authenticate_oauthbearer("alice", "127.0.0.1", dovecot.imap_port(), &alice)
        .await
        .unwrap();
    conn.select("INBOX").await.unwrap();
    conn.logout().await;
    assert!(dovecot.maildir_of("alice").exists());
    assert!(
        dovecot.log_text().contains("Login: user=<alice>"),
        "{}",
        dovecot.log_text()
    );

    // Bob's token does not open alice's mailbox (but opens bob's).
    let bob = provider
        .jwt_bearer_token(SA, &key.private_key_pem, "bob", "imap")
        .await
        .unwrap();
    let err = xoauth2(&dovecot, "alice", &bob).await.unwrap_err();
    assert!(format!("{err:#}").contains("NO"), "{err:#}");
    let mut conn = ImapConnection::open(&dovecot.account("alice", ""))
        .await
        .unwrap();
    assert!(conn
        .authenticate_oauthbearer("alice", "127.0.0.1", dovecot.imap_port(), &bob)
        .await
        .is_err());
    xoauth2(&dovecot, "bob", &bob).await.unwrap().logout().await;

    // Assertions the provider refuses.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = |aud: &str, sub: &str, iss: &str| json!({"iss": iss, "sub": sub, "aud": aud, "iat": now, "exp": now + 300});
    let other = ServiceAccountKey::generate().unwrap();
    let refused = [
        sign_assertion(
            &key.private_key_pem,
            &claims("http://elsewhere.test/token", "alice", SA),
        )
        .unwrap(),
        sign_assertion(
            &other.private_key_pem,
            &claims(&provider.token_endpoint(), "alice", SA),
        )
        .unwrap(),
        sign_assertion(
            &key.private_key_pem,
            &claims(&provider.token_endpoint(), "mallory", SA),
        )
        .unwrap(),
        sign_assertion(
            &key.private_key_pem,
            &json!({"iss": SA, "sub": "alice", "aud": provider.token_endpoint(),
                    "iat": now - 4000, "exp": now - 400}),
        )
        .unwrap(),
    ];
    for assertion in &refused {
        let (status, body) = provider
            .token_request(
                &[
                    ("grant_type", JWT_BEARER),
                    ("assertion", assertion),
                    ("scope", "imap"),
                ],
                None,
            )
            .await
            .unwrap();
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"], "invalid_grant", "{body}");
    }
    // The issuer as audience is accepted too.
    let assertion = sign_assertion(
        &key.private_key_pem,
        &claims(&provider.issuer(), "alice", SA),
    )
    .unwrap();
    let (status, body) = provider
        .token_request(
            &[
                ("grant_type", JWT_BEARER),
                ("assertion", &assertion),
                ("scope", "imap"),
            ],
            None,
        )
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");

    // Consent withdrawn: alice's token is refused from now on; bob's still works.
    provider.revoke_account("alice").await.unwrap();
    let err = xoauth2(&dovecot, "alice", &alice).await.unwrap_err();
    assert!(format!("{err:#}").contains("NO"), "{err:#}");
    xoauth2(&dovecot, "bob", &bob).await.unwrap().logout().await;

    // Dovecot's introspections were recorded, by token hash.
    let seen = provider.introspections().await.unwrap();
    let by_dovecot: Vec<_> = seen
        .iter()
        .filter(|i| i.client_id.as_deref() == Some("dovecot"))
        .collect();
    let alice_id = token_id(&alice);
    let alice_checks: Vec<_> = by_dovecot
        .iter()
        .filter(|i| i.token_id.as_deref() == Some(alice_id.as_str()))
        .collect();
    assert!(
        alice_checks
            .iter()
            .any(|i| i.active && i.sub.as_deref() == Some("alice")),
        "{seen:?}"
    );
    assert!(!alice_checks.last().unwrap().active, "{seen:?}");
    assert!(seen.windows(2).all(|w| w[0].at_ms <= w[1].at_ms));
    let log = provider.output();
    assert!(!log.contains(&alice), "token value in the provider's log");
    assert!(log.contains(&format!("token_id={alice_id}")), "{log}");
}

#[tokio::test]
async fn expired_token_is_refused_by_dovecot() {
    let Setup {
        provider,
        dovecot,
        key,
    } = setup(Duration::from_secs(3)).await;
    let token = provider
        .jwt_bearer_token(SA, &key.private_key_pem, "alice", "imap")
        .await
        .unwrap();
    xoauth2(&dovecot, "alice", &token)
        .await
        .unwrap()
        .logout()
        .await;
    tokio::time::sleep(Duration::from_millis(4_000)).await;
    let err = xoauth2(&dovecot, "alice", &token).await.unwrap_err();
    assert!(format!("{err:#}").contains("NO"), "{err:#}");
    let seen = provider.introspections().await.unwrap();
    assert!(!seen.last().unwrap().active, "{seen:?}");
}

#[tokio::test]
async fn dovecot_with_a_scope_setting_refuses_tokens_without_that_scope() {
    let key = ServiceAccountKey::generate().unwrap();
    let provider = OidcProvider::start(OidcOptions {
        clients: vec![
            OidcClient::introspector("dovecot", "dovecot-secret"),
            OidcClient::service_account(SA, &key),
        ],
        users: vec![OidcUser::new("alice", "pw-alice")],
        ..Default::default()
    })
    .unwrap();
    let mut oauth2 = provider
        .dovecot_oauth2("dovecot", "dovecot-secret")
        .await
        .unwrap();
    oauth2.scope = Some("imap".into());
    let dovecot = Dovecot::start(DovecotOptions {
        oauth2: Some(oauth2),
        ..Default::default()
    })
    .unwrap();
    let email_only = provider
        .jwt_bearer_token(SA, &key.private_key_pem, "alice", "email")
        .await
        .unwrap();
    let with_imap = provider
        .jwt_bearer_token(SA, &key.private_key_pem, "alice", "email imap")
        .await
        .unwrap();
    assert!(xoauth2(&dovecot, "alice", &email_only).await.is_err());
    assert!(
        dovecot.log_text().contains("not valid for scope 'imap'"),
        "{}",
        dovecot.log_text()
    );
    // A refusal does not slow the next login down (no auth penalty on these servers).
    let started = Instant::now();
    xoauth2(&dovecot, "alice", &with_imap)
        .await
        .unwrap()
        .logout()
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}
