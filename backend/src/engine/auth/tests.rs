//! Bearer logins against a scripted IMAP server on 127.0.0.1: what the client sends,
//! byte for byte, and what it makes of the server's answers.

use super::login::Renewal;
use super::sasl::base64_encode;
use super::token::{AccessToken, TokenError, TokenErrorKind, TokenHandle, TokenSource};
use crate::engine::error::{EngineError, Side};
use crate::engine::imap::conn::{Backoff, Conn};
use crate::engine::imap::endpoint::{Auth, Endpoint, Password, Security};
use crate::engine::imap::session::Session;
use crate::engine::limits::Limits;
use base64::Engine as _;
use futures::future::BoxFuture;
use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

const USER: &str = "alice@example.com";

/// How the scripted server behaves.
#[derive(Clone)]
struct Script {
    greeting: &'static str,
    /// What `CAPABILITY` answers (and the tagged OK of a login carries, with `ok_caps`).
    caps: &'static str,
    ok_caps: bool,
    /// JSON sent (base64) as a failure challenge when a token is refused; `None`: a
    /// tagged NO at once (as Microsoft does).
    challenge: Option<&'static str>,
    no_text: &'static str,
}

impl Default for Script {
    fn default() -> Self {
        Script {
            greeting: "* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=XOAUTH2] ready",
            caps: "IMAP4rev1 SASL-IR AUTH=XOAUTH2",
            ok_caps: true,
            challenge: None,
            no_text: "NO AUTHENTICATE failed.",
        }
    }
}

#[derive(Default)]
struct Seen {
    /// Every line the client sent, CRLF removed; `-- connect` at each new connection.
    log: Mutex<Vec<String>>,
    /// Tokens the server accepts.
    good: Mutex<HashSet<String>>,
    logins: AtomicUsize,
    connections: AtomicUsize,
}

impl Seen {
    fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
    fn logins(&self) -> usize {
        self.logins.load(Ordering::SeqCst)
    }
    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

async fn serve(script: Script, good: &[&str]) -> (u16, Arc<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Seen::default());
    seen.good
        .lock()
        .unwrap()
        .extend(good.iter().map(|s| s.to_string()));
    let shared = seen.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            shared.connections.fetch_add(1, Ordering::SeqCst);
            shared.log.lock().unwrap().push("-- connect".into());
            tokio::spawn(connection(tcp, script.clone(), shared.clone()));
        }
    });
    (port, seen)
}

/// The token inside an XOAUTH2 or OAUTHBEARER message, as a server would find it.
fn bearer_of(b64: &str) -> Option<String> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let start = text.find("auth=Bearer ")? + "auth=Bearer ".len();
    let rest = &text[start..];
    Some(rest[..rest.find('\x01')?].to_owned())
}

async fn next_line(
    read: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
    seen: &Seen,
) -> Option<String> {
    let mut line = String::new();
    if read.read_line(&mut line).await.ok()? == 0 {
        return None;
    }
    let line = line.trim_end_matches("\r\n").to_owned();
    seen.log.lock().unwrap().push(line.clone());
    Some(line)
}

async fn connection(tcp: tokio::net::TcpStream, script: Script, seen: Arc<Seen>) {
    let (read, mut write) = tcp.into_split();
    let mut read = BufReader::new(read);
    macro_rules! send {
        ($($arg:tt)*) => {
            if write.write_all(format!($($arg)*).as_bytes()).await.is_err() {
                return;
            }
        };
    }
    send!("{}\r\n", script.greeting);
    while let Some(line) = next_line(&mut read, &seen).await {
        let mut words = line.splitn(3, ' ');
        let tag = words.next().unwrap_or("").to_owned();
        let verb = words.next().unwrap_or("").to_ascii_uppercase();
        let rest = words.next().unwrap_or("").to_owned();
        match verb.as_str() {
            "CAPABILITY" => send!("* CAPABILITY {}\r\n{tag} OK done\r\n", script.caps),
            "AUTHENTICATE" => {
                let mut parts = rest.splitn(2, ' ');
                let _mechanism = parts.next();
                let response = match parts.next() {
                    Some(ir) => ir.to_owned(),
                    None => {
                        send!("+ \r\n");
                        match next_line(&mut read, &seen).await {
                            Some(r) => r,
                            None => return,
                        }
                    }
                };
                let token = bearer_of(&response);
                let accepted = token
                    .as_ref()
                    .is_some_and(|t| seen.good.lock().unwrap().contains(t));
                if accepted {
                    seen.logins.fetch_add(1, Ordering::SeqCst);
                    if script.ok_caps {
                        send!("{tag} OK [CAPABILITY {}] signed in\r\n", script.caps);
                    } else {
                        send!("{tag} OK signed in\r\n");
                    }
                } else {
                    if let Some(json) = script.challenge {
                        send!("+ {}\r\n", base64_encode(json.as_bytes()));
                        if next_line(&mut read, &seen).await.is_none() {
                            return;
                        }
                    }
                    send!("{tag} {}\r\n", script.no_text);
                }
            }
            "SELECT" | "EXAMINE" => send!(
                "* 2 EXISTS\r\n* OK [UIDVALIDITY 5] v\r\n* OK [UIDNEXT 3] n\r\n{tag} OK [READ-WRITE] done\r\n"
            ),
            "LOGOUT" => {
                send!("* BYE bye\r\n{tag} OK done\r\n");
                return;
            }
            _ => send!("{tag} OK done\r\n"),
        }
    }
}

/// One scripted answer: a token and how long it lives, or an error.
type Answer = Result<(&'static str, Option<Duration>), TokenError>;

/// Hands out scripted tokens and records every call's `force_refresh`.
#[derive(Debug, Default)]
struct Tokens {
    script: Mutex<VecDeque<Answer>>,
    calls: Mutex<Vec<bool>>,
}

impl Tokens {
    fn handle(script: impl IntoIterator<Item = Answer>) -> (TokenHandle, Arc<Tokens>) {
        let tokens = Arc::new(Tokens {
            script: Mutex::new(script.into_iter().collect()),
            calls: Mutex::default(),
        });
        (TokenHandle(tokens.clone()), tokens)
    }
    fn calls(&self) -> Vec<bool> {
        self.calls.lock().unwrap().clone()
    }
}

impl TokenSource for Tokens {
    fn token(&self, force_refresh: bool) -> BoxFuture<'_, Result<AccessToken, TokenError>> {
        self.calls.lock().unwrap().push(force_refresh);
        let next = self.script.lock().unwrap().pop_front();
        Box::pin(async move {
            let (secret, lifetime) =
                next.unwrap_or_else(|| Err(TokenError::Misconfigured("script ran out".into())))?;
            Ok(AccessToken {
                secret: Password::new(secret),
                expires_at: lifetime.map(|d| SystemTime::now() + d),
            })
        })
    }
    fn provider_label(&self) -> &str {
        "Testprovider"
    }
}

fn endpoint(port: u16, tokens: TokenHandle) -> Endpoint {
    Endpoint {
        side: Side::Source,
        host: "127.0.0.1".into(),
        port,
        security: Security::Plain,
        user: USER.into(),
        password: Password::new(""),
        auth: Auth::OAuth2 { tokens },
        ca_file: None,
        timeout: Duration::from_secs(5),
    }
}

fn b64(raw: &[u8]) -> String {
    base64_encode(raw)
}

fn xoauth2(token: &str) -> String {
    b64(format!("user={USER}\x01auth=Bearer {token}\x01\x01").as_bytes())
}

fn oauthbearer(port: u16, token: &str) -> String {
    b64(
        format!("n,a={USER},\x01host=127.0.0.1\x01port={port}\x01auth=Bearer {token}\x01\x01")
            .as_bytes(),
    )
}

/// Neither the token nor its base64 form shows in an error's words or `Debug`.
fn assert_secret_free(e: &EngineError, tokens: &[&str]) {
    let shown = format!("{e} {e:?}");
    for t in tokens {
        assert!(!shown.contains(t), "{t} in {shown}");
        assert!(!shown.contains(&b64(t.as_bytes())), "{shown}");
    }
}

#[tokio::test]
async fn sasl_ir_login_is_one_line() {
    let (port, seen) = serve(Script::default(), &["ya29good"]).await;
    let (tokens, calls) = Tokens::handle([Ok(("ya29good", None))]);
    let session = Session::connect(&endpoint(port, tokens)).await.unwrap();
    assert_eq!(
        seen.log(),
        vec![
            "-- connect".to_owned(),
            format!("m1 AUTHENTICATE XOAUTH2 {}", xoauth2("ya29good")),
        ]
    );
    assert_eq!(calls.calls(), vec![false]);
    assert_eq!(session.token_expires_at(), None);
    assert!(session.capabilities().has("AUTH=XOAUTH2"));
}

#[tokio::test]
async fn without_sasl_ir_the_response_waits_for_the_continuation_and_oauthbearer_is_preferred() {
    let script = Script {
        greeting: "* OK ready",
        caps: "IMAP4rev1 AUTH=XOAUTH2 AUTH=OAUTHBEARER AUTH=PLAIN",
        ok_caps: false,
        ..Script::default()
    };
    let (port, seen) = serve(script, &["ya29good"]).await;
    let (tokens, _) = Tokens::handle([Ok(("ya29good", Some(Duration::from_secs(3600))))]);
    let session = Session::connect(&endpoint(port, tokens)).await.unwrap();
    assert_eq!(
        seen.log(),
        vec![
            "-- connect".to_owned(),
            // The greeting said nothing: ask before choosing a mechanism...
            "m1 CAPABILITY".to_owned(),
            "m2 AUTHENTICATE OAUTHBEARER".to_owned(),
            oauthbearer(port, "ya29good"),
            // ...and again after, as the OK did not say what logged-in sessions may do.
            "m3 CAPABILITY".to_owned(),
        ]
    );
    let left = session
        .token_expires_at()
        .unwrap()
        .duration_since(SystemTime::now())
        .unwrap();
    assert!(left > Duration::from_secs(3500), "{left:?}");
    assert!(!session.renewal_due(SystemTime::now()));
    assert!(session.renewal_due(SystemTime::now() + Duration::from_secs(3541)));
}

#[tokio::test]
async fn microsoft_style_xoauth2_only_refusal_is_retried_once_with_a_forced_refresh() {
    // Microsoft 365: XOAUTH2 only, a plain tagged NO, no failure challenge.
    let script = Script {
        greeting: "* OK The Microsoft Exchange IMAP4 service is ready.",
        caps: "IMAP4 IMAP4rev1 AUTH=PLAIN AUTH=XOAUTH2 SASL-IR UIDPLUS MOVE ID UNSELECT CHILDREN IDLE NAMESPACE LITERAL+",
        ok_caps: false,
        ..Script::default()
    };
    let (port, seen) = serve(script, &[]).await;
    let (tokens, calls) = Tokens::handle([Ok(("ya29stale", None)), Ok(("ya29fresh", None))]);
    let err = Session::connect(&endpoint(port, tokens)).await.unwrap_err();
    let EngineError::Login {
        words,
        bearer,
        user,
        ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert!(*bearer);
    assert_eq!(user, USER);
    assert_eq!(words, "NO AUTHENTICATE failed.");
    assert!(
        err.to_string()
            .contains("sign-in with an access token as alice@example.com refused"),
        "{err}"
    );
    assert!(!err.is_connection_failure());
    assert_eq!(calls.calls(), vec![false, true]);
    assert_eq!(
        seen.log(),
        vec![
            "-- connect".to_owned(),
            "m1 CAPABILITY".to_owned(),
            format!("m2 AUTHENTICATE XOAUTH2 {}", xoauth2("ya29stale")),
            format!("m3 AUTHENTICATE XOAUTH2 {}", xoauth2("ya29fresh")),
        ]
    );
    assert_secret_free(&err, &["ya29stale", "ya29fresh"]);
}

#[tokio::test]
async fn a_refused_token_is_refreshed_once_and_the_second_try_on_the_same_connection_succeeds() {
    let (port, seen) = serve(Script::default(), &["ya29fresh"]).await;
    let (tokens, calls) = Tokens::handle([Ok(("ya29stale", None)), Ok(("ya29fresh", None))]);
    Session::connect(&endpoint(port, tokens)).await.unwrap();
    assert_eq!(calls.calls(), vec![false, true]);
    assert_eq!((seen.connections(), seen.logins()), (1, 1));
    assert_eq!(
        seen.log(),
        vec![
            "-- connect".to_owned(),
            format!("m1 AUTHENTICATE XOAUTH2 {}", xoauth2("ya29stale")),
            format!("m2 AUTHENTICATE XOAUTH2 {}", xoauth2("ya29fresh")),
        ]
    );
}

#[tokio::test]
async fn neither_mechanism_offered_is_a_config_error_without_asking_for_a_token() {
    let script = Script {
        greeting: "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR] ready",
        ..Script::default()
    };
    let (port, seen) = serve(script, &[]).await;
    let (tokens, calls) = Tokens::handle([Ok(("ya29good", None))]);
    let err = Session::connect(&endpoint(port, tokens)).await.unwrap_err();
    assert!(matches!(err, EngineError::Config { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("the server offers neither XOAUTH2 nor OAUTHBEARER"),
        "{err}"
    );
    assert!(calls.calls().is_empty());
    assert_eq!(seen.log(), vec!["-- connect".to_owned()]);
}

#[tokio::test]
async fn oauthbearer_failure_challenge_is_answered_and_explained() {
    // Dovecot: OAUTHBEARER with SASL-IR, a JSON failure challenge, then the tagged NO.
    let script = Script {
        greeting:
            "* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=OAUTHBEARER AUTH=XOAUTH2] Dovecot ready.",
        challenge: Some(r#"{"status":"invalid_token","schemes":"bearer","scope":"mail"}"#),
        no_text: "NO [AUTHENTICATIONFAILED] Authentication failed.",
        ..Script::default()
    };
    let (port, seen) = serve(script, &[]).await;
    let (tokens, calls) = Tokens::handle([Ok(("ya29one", None)), Ok(("ya29two", None))]);
    let err = Session::connect(&endpoint(port, tokens)).await.unwrap_err();
    let EngineError::Login { words, bearer, .. } = &err else {
        panic!("{err:?}")
    };
    assert!(*bearer);
    assert_eq!(
        words,
        "the access token has expired or was revoked (the server said NO [AUTHENTICATIONFAILED] Authentication failed.)"
    );
    assert_eq!(calls.calls(), vec![false, true]);
    assert_eq!(
        seen.log(),
        vec![
            "-- connect".to_owned(),
            format!(
                "m1 AUTHENTICATE OAUTHBEARER {}",
                oauthbearer(port, "ya29one")
            ),
            "AQ==".to_owned(),
            format!(
                "m2 AUTHENTICATE OAUTHBEARER {}",
                oauthbearer(port, "ya29two")
            ),
            "AQ==".to_owned(),
        ]
    );
    assert_secret_free(&err, &["ya29one", "ya29two"]);
}

#[tokio::test]
async fn xoauth2_failure_challenge_gets_an_empty_line_and_names_the_missing_scope() {
    // Gmail without SASL-IR: empty challenge, response, failure challenge, empty line, NO.
    let script = Script {
        greeting: "* OK [CAPABILITY IMAP4rev1 AUTH=XOAUTH2 AUTH=PLAIN] Gimap ready",
        challenge: Some(
            r#"{"status":"400","schemes":"Bearer","scope":"https://mail.google.com/"}"#,
        ),
        no_text: "NO [AUTHENTICATIONFAILED] Invalid credentials (Failure)",
        ..Script::default()
    };
    let (port, seen) = serve(script, &[]).await;
    let (tokens, _) = Tokens::handle([Ok(("ya29one", None)), Ok(("ya29two", None))]);
    let err = Session::connect(&endpoint(port, tokens)).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("the token lacks the scope https://mail.google.com/ (the server said NO [AUTHENTICATIONFAILED] Invalid credentials (Failure))"),
        "{err}"
    );
    assert_eq!(
        seen.log(),
        vec![
            "-- connect".to_owned(),
            "m1 AUTHENTICATE XOAUTH2".to_owned(),
            xoauth2("ya29one"),
            String::new(),
            "m2 AUTHENTICATE XOAUTH2".to_owned(),
            xoauth2("ya29two"),
            String::new(),
        ]
    );
    assert_secret_free(&err, &["ya29one", "ya29two"]);
}

#[tokio::test]
async fn token_source_errors_become_token_errors_and_only_unavailable_is_retried() {
    let backoff = Backoff {
        attempts: 4,
        first_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(20),
    };
    // Unavailable, then a token: Conn backs off and gets its session.
    let (port, seen) = serve(Script::default(), &["ya29good"]).await;
    let (tokens, calls) = Tokens::handle([
        Err(TokenError::Unavailable(
            "the sign-in service answered 503".into(),
        )),
        Ok(("ya29good", None)),
    ]);
    let mut conn = Conn::new(endpoint(port, tokens), backoff, Limits::default());
    conn.session().await.unwrap();
    assert_eq!(calls.calls(), vec![false, false]);
    assert_eq!((seen.connections(), seen.logins()), (2, 1));

    // Revoked: no retry, the error says who and why.
    let (port, seen) = serve(Script::default(), &["ya29good"]).await;
    let (tokens, calls) = Tokens::handle([
        Err(TokenError::Revoked("the refresh token was revoked".into())),
        Ok(("ya29good", None)),
    ]);
    let mut conn = Conn::new(endpoint(port, tokens), backoff, Limits::default());
    let err = conn.session().await.unwrap_err();
    let EngineError::Token { kind, provider, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(
        (*kind, provider.as_str()),
        (TokenErrorKind::Revoked, "Testprovider")
    );
    assert!(!err.is_connection_failure());
    assert!(crate::engine::copy::folder::stops_job(&err));
    assert_eq!(
        err.to_string(),
        "source server 127.0.0.1:".to_owned()
            + &port.to_string()
            + ": no access token from Testprovider (revoked): the refresh token was revoked"
    );
    assert_eq!(calls.calls(), vec![false]);
    assert_eq!(seen.connections(), 1);

    let unavailable = EngineError::Token {
        side: Side::Source,
        host: "h".into(),
        provider: "p".into(),
        kind: TokenErrorKind::Unavailable,
        message: "m".into(),
    };
    assert!(unavailable.is_connection_failure());
    assert!(!crate::engine::copy::folder::stops_job(&unavailable));
}

#[tokio::test]
async fn a_token_that_is_not_a_bearer_token_is_refused_before_sending() {
    let (port, seen) = serve(Script::default(), &[]).await;
    let (tokens, _) = Tokens::handle([Ok(("two words\x01", None))]);
    let err = Session::connect(&endpoint(port, tokens)).await.unwrap_err();
    assert!(
        matches!(
            err,
            EngineError::Token {
                kind: TokenErrorKind::Misconfigured,
                ..
            }
        ),
        "{err:?}"
    );
    assert_secret_free(&err, &["two words"]);
    assert_eq!(seen.log(), vec!["-- connect".to_owned()]);
}

#[tokio::test]
async fn a_conn_renews_before_its_token_expires_and_reselects_the_folder() {
    let (port, seen) = serve(Script::default(), &["ya29first", "ya29second"]).await;
    let (tokens, calls) = Tokens::handle([
        // Lives one second: renewed a quarter of that (250 ms) before it expires.
        Ok(("ya29first", Some(Duration::from_secs(1)))),
        Ok(("ya29second", None)),
    ]);
    let mut conn = Conn::new(
        endpoint(port, tokens),
        Backoff::default(),
        Limits::default(),
    );
    let info = conn.select("INBOX", false).await.unwrap();
    assert_eq!(info.exists, 2);
    conn.session().await.unwrap();
    assert_eq!(seen.logins(), 1, "not yet due");

    tokio::time::sleep(Duration::from_millis(800)).await;
    let session = conn.session().await.unwrap();
    assert_eq!(session.token_expires_at(), None);
    assert_eq!((seen.connections(), seen.logins()), (2, 2));
    assert_eq!(calls.calls(), vec![false, true]);
    let log = seen.log();
    assert_eq!(
        log,
        vec![
            "-- connect".to_owned(),
            format!("m1 AUTHENTICATE XOAUTH2 {}", xoauth2("ya29first")),
            "m2 SELECT \"INBOX\"".to_owned(),
            "m3 LOGOUT".to_owned(),
            "-- connect".to_owned(),
            format!("m1 AUTHENTICATE XOAUTH2 {}", xoauth2("ya29second")),
            "m2 SELECT \"INBOX\"".to_owned(),
        ]
    );
    assert_eq!(conn.mailbox.uidvalidity, 5);
    // A token without an expiry is never renewed ahead.
    conn.session().await.unwrap();
    assert_eq!(seen.connections(), 2);
}

#[test]
fn renewal_margin_is_a_minute_or_a_quarter_of_the_lifetime() {
    let now = SystemTime::now();
    assert_eq!(Renewal::plan(None, now), None);
    let hour = Renewal::plan(Some(now + Duration::from_secs(3600)), now).unwrap();
    assert_eq!(hour.renew_at, now + Duration::from_secs(3540));
    let short = Renewal::plan(Some(now + Duration::from_secs(40)), now).unwrap();
    assert_eq!(short.renew_at, now + Duration::from_secs(30));
    assert!(!short.due(now + Duration::from_secs(29)) && short.due(now + Duration::from_secs(30)));
    // Already expired when it came: renewing would only loop.
    assert_eq!(Renewal::plan(Some(now - Duration::from_secs(1)), now), None);
    assert_eq!(Renewal::plan(Some(now), now), None);
}

#[test]
fn tokens_never_show_in_debug_output() {
    let token = AccessToken {
        secret: Password::new("ya29secret"),
        expires_at: None,
    };
    let (handle, _) = Tokens::handle([]);
    let shown = format!("{token:?} {:?}", endpoint(1, handle));
    assert!(!shown.contains("ya29secret"), "{shown}");
    assert!(shown.contains("TokenHandle(Testprovider)"), "{shown}");
}

#[tokio::test]
async fn password_logins_are_as_before() {
    let (port, seen) = serve(Script::default(), &[]).await;
    let (tokens, _) = Tokens::handle([]);
    let mut ep = endpoint(port, tokens);
    ep.password = Password::new("pw");
    ep.auth = Auth::Login;
    let session = Session::connect(&ep).await.unwrap();
    assert_eq!(session.token_expires_at(), None);
    ep.auth = Auth::Plain {
        authzid: Some("bob".into()),
    };
    // The scripted server refuses every PLAIN: a refused password, not a bearer.
    let err = Session::connect(&ep).await.unwrap_err();
    assert!(
        matches!(err, EngineError::Login { bearer: false, .. }),
        "{err:?}"
    );
    assert!(err
        .to_string()
        .contains("login as alice@example.com refused"));
    assert_eq!(
        seen.log(),
        vec![
            "-- connect".to_owned(),
            format!("m1 LOGIN \"{USER}\" \"pw\""),
            // Its OK named no capabilities: the post-login set is asked for.
            "m2 CAPABILITY".to_owned(),
            "-- connect".to_owned(),
            "m1 AUTHENTICATE PLAIN".to_owned(),
            b64(format!("bob\0{USER}\0pw").as_bytes()),
        ]
    );
}

/// An endpoint whose PLAIN logins the scripted server answers with `no_text`.
async fn plain_refused_with(no_text: &'static str) -> (Endpoint, Arc<Seen>) {
    let script = Script {
        no_text,
        ..Script::default()
    };
    let (port, seen) = serve(script, &[]).await;
    let (tokens, _) = Tokens::handle([]);
    let mut ep = endpoint(port, tokens);
    ep.password = Password::new("pw");
    ep.auth = Auth::Plain { authzid: None };
    (ep, seen)
}

#[tokio::test]
async fn a_login_refused_for_now_is_never_a_wrong_password_and_is_waited_out() {
    let (ep, seen) = plain_refused_with("NO [UNAVAILABLE] Temporary authentication failure").await;
    let err = Session::connect(&ep).await.unwrap_err();
    assert!(
        matches!(err, EngineError::Refused { .. }) && err.transient().is_some(),
        "{err:?}"
    );
    // A connection waits it out, trying again, until its patience is spent: then the
    // run pauses with the server's words (it never says "login refused").
    let waiter = crate::engine::retry::Waiter {
        events: crate::engine::Events::default(),
        policy: crate::engine::retry::RetryPolicy {
            first: Duration::from_millis(20),
            max: Duration::from_millis(40),
            longest_sleep: Duration::from_secs(60),
        },
        patience: Duration::from_millis(300),
    };
    let mut conn = Conn::new(ep, Backoff::default(), Limits::default()).waiting(waiter);
    let err = conn.connect_once().await.unwrap_err();
    let EngineError::Paused { words, .. } = &err else {
        panic!("{err:?}")
    };
    assert!(
        words.as_deref().unwrap_or("").contains("[UNAVAILABLE]"),
        "{err}"
    );
    assert!(
        seen.connections() >= 3,
        "tried again: {}",
        seen.connections()
    );
}

#[tokio::test]
async fn exchange_authenticated_but_not_connected_reads_as_a_password_or_licence_problem() {
    let (ep, _) = plain_refused_with("BAD User is authenticated but not connected.").await;
    let err = Session::connect(&ep).await.unwrap_err();
    assert!(matches!(err, EngineError::Login { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("wrong password or the mailbox has no Exchange licence")
            && text.contains("authenticated but not connected"),
        "{text}"
    );
}

#[tokio::test]
async fn a_server_gone_past_the_quick_reconnects_is_waited_for_until_patience_then_paused() {
    // A port nobody listens on.
    let port = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (tokens, _) = Tokens::handle([]);
    let mut ep = endpoint(port, tokens);
    ep.auth = Auth::Login;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let waiter = crate::engine::retry::Waiter {
        events: crate::engine::Events::new(Some(tx)),
        policy: crate::engine::retry::RetryPolicy {
            first: Duration::from_millis(20),
            max: Duration::from_millis(40),
            longest_sleep: Duration::from_secs(60),
        },
        patience: Duration::from_millis(400),
    };
    let backoff = Backoff {
        attempts: 2,
        first_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(20),
    };
    let mut conn = Conn::new(ep, backoff, Limits::default()).waiting(waiter);
    let started = std::time::Instant::now();
    let err = conn.session().await.unwrap_err();
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
    let EngineError::Paused { reason, .. } = &err else {
        panic!("{err:?}")
    };
    assert!(
        reason.contains("the source server cannot be reached"),
        "{reason}"
    );
    assert!(
        matches!(rx.try_recv(), Ok(crate::engine::Event::Waiting { .. })),
        "the waits were told"
    );
}

#[tokio::test]
async fn a_bearer_login_refused_for_now_keeps_its_token_and_is_no_sign_in_problem() {
    let script = Script {
        no_text: "NO [UNAVAILABLE] Request is throttled. Suggested Backoff Time: 10 milliseconds",
        ..Script::default()
    };
    let (port, _) = serve(script, &[]).await;
    let (tokens, calls) = Tokens::handle([Ok(("ya29first", None))]);
    let err = Session::connect(&endpoint(port, tokens)).await.unwrap_err();
    assert!(
        matches!(err, EngineError::Refused { .. })
            && err.transient().flatten() == Some(Duration::from_millis(10)),
        "{err:?}"
    );
    // No forced refresh: a throttled server says nothing about the token.
    assert_eq!(calls.calls(), vec![false]);
}
