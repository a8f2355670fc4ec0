//! The login exchanges, driven over a [`Session`] that has greeted (and secured) its
//! server: `LOGIN`, `AUTHENTICATE PLAIN`, and OAuth 2.0 bearer tokens over
//! `AUTHENTICATE OAUTHBEARER` or `AUTHENTICATE XOAUTH2`.
//!
//! Bearer logins ask the endpoint's [`super::TokenSource`] for a token; when the server
//! refuses it, they ask once more with a forced refresh and try again on the same
//! connection (a failed AUTHENTICATE leaves it usable). A token never appears in an
//! error, a log line or `Debug` output.

use super::super::error::{EngineError, Result};
use super::super::retry::{classify, CommandKind, Refusal};
use super::sasl::{self, BearerFailure, Mechanism};
use super::token::{TokenError, TokenHandle};
use crate::engine::imap::endpoint::{Auth, Endpoint};
use crate::engine::imap::session::Session;
use crate::engine::imap::wire::{CommandBuilder, Response, Status, StatusLine};
use std::time::{Duration, SystemTime};
use zeroize::Zeroizing;

/// When a session logged in with an expiring token should be replaced by a new one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Renewal {
    /// When the token stops working, as its source said.
    pub expires_at: SystemTime,
    /// From when on the session is renewed (between commands, by [`crate::engine::imap::conn::Conn`]).
    pub renew_at: SystemTime,
}

impl Renewal {
    /// The most the renewal comes before the expiry.
    pub const MARGIN: Duration = Duration::from_secs(60);

    /// For a token received at `received`: renewed `min(60 s, a quarter of its lifetime)`
    /// before `expires_at`. `None` (never renewed ahead) when the token did not say when
    /// it expires, or was already expired when it came (renewing it would loop).
    pub fn plan(expires_at: Option<SystemTime>, received: SystemTime) -> Option<Renewal> {
        let expires_at = expires_at?;
        let lifetime = expires_at.duration_since(received).ok()?;
        if lifetime.is_zero() {
            return None;
        }
        let margin = Self::MARGIN.min(lifetime / 4);
        Some(Renewal {
            expires_at,
            renew_at: expires_at - margin,
        })
    }

    pub fn due(&self, now: SystemTime) -> bool {
        now >= self.renew_at
    }
}

/// What a successful login leaves behind for the session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoginOutcome {
    /// Bearer logins with an expiring token: when to log in again.
    pub renewal: Option<Renewal>,
    /// The capabilities known are those from before the login (the greeting's, or asked
    /// for the mechanism choice) and the server's OK did not send new ones: ask again.
    pub stale_capabilities: bool,
}

/// Logs in as the endpoint says. `fresh_token`: start a bearer login with a forced
/// refresh (the session replaces one whose token is about to expire).
pub(crate) async fn login(
    session: &mut Session,
    endpoint: &Endpoint,
    fresh_token: bool,
) -> Result<LoginOutcome> {
    match &endpoint.auth {
        Auth::OAuth2 { tokens } => bearer_login(session, endpoint, tokens, fresh_token).await,
        Auth::Login | Auth::Plain { .. } => {
            let done = password_login(session, endpoint).await?;
            if done.status != Status::Ok {
                return Err(password_refused(session, endpoint, &done));
            }
            // Many servers advertise more once logged in (UIDPLUS, MULTIAPPEND, LITERAL+):
            // without a CAPABILITY code in this OK, the pre-login set is stale.
            let had_caps = done.code.as_deref() == Some("CAPABILITY");
            session.take_capability_code(&done);
            Ok(LoginOutcome {
                renewal: None,
                stale_capabilities: !had_caps,
            })
        }
    }
}

/// A refused password login: a server busy or throttling for now is a refusal to wait
/// out (never "wrong password"); anything else is a login error.
fn password_refused(session: &Session, endpoint: &Endpoint, done: &StatusLine) -> EngineError {
    match classify(
        done.status,
        done.code.as_deref(),
        &done.text,
        CommandKind::Login,
    ) {
        Refusal::Transient { .. } => session.refused("LOGIN", done),
        _ => login_refused(endpoint, not_connected_explained(done.words()), false),
    }
}

/// Whether the server said Microsoft's `BAD User is authenticated but not connected`:
/// logged in, yet every command refused (a wrong password or no Exchange licence).
pub(crate) fn says_not_connected(words: &str) -> bool {
    words
        .to_ascii_lowercase()
        .contains("authenticated but not connected")
}

/// Microsoft's `BAD User is authenticated but not connected` in plain words.
pub(crate) fn not_connected_explained(words: String) -> String {
    if says_not_connected(&words) {
        format!("wrong password or the mailbox has no Exchange licence (the server said {words})")
    } else {
        words
    }
}

fn login_refused(endpoint: &Endpoint, words: String, bearer: bool) -> EngineError {
    EngineError::Login {
        side: endpoint.side,
        host: endpoint.address(),
        user: endpoint.user.clone(),
        words,
        bearer,
    }
}

/// `LOGIN` or `AUTHENTICATE PLAIN` (waiting for the `+`): the tagged answer.
async fn password_login(session: &mut Session, endpoint: &Endpoint) -> Result<StatusLine> {
    match &endpoint.auth {
        Auth::Plain { authzid } => {
            let mut message = Zeroizing::new(Vec::new());
            message.extend_from_slice(authzid.as_deref().unwrap_or("").as_bytes());
            message.push(0);
            message.extend_from_slice(endpoint.user.as_bytes());
            message.push(0);
            message.extend_from_slice(endpoint.password.expose().as_bytes());
            let tag = session.write_line(b"AUTHENTICATE PLAIN").await?;
            loop {
                match session.read_response().await? {
                    Response::Continue(_) => {
                        let encoded = Zeroizing::new(sasl::base64_encode(&message));
                        send_line(session, encoded.as_bytes()).await?;
                    }
                    Response::Tagged { tag: t, line } if t == tag => return Ok(line),
                    _ => {}
                }
            }
        }
        _ => {
            let parts = CommandBuilder::new("LOGIN")
                .string(endpoint.user.as_bytes())
                .string(endpoint.password.expose().as_bytes())
                .build();
            Ok(session.run(parts).await?.done)
        }
    }
}

fn token_error(endpoint: &Endpoint, tokens: &TokenHandle, e: &TokenError) -> EngineError {
    EngineError::Token {
        side: endpoint.side,
        host: endpoint.address(),
        provider: tokens.provider_label().to_owned(),
        kind: e.kind(),
        message: e.message().to_owned(),
    }
}

async fn bearer_login(
    session: &mut Session,
    endpoint: &Endpoint,
    tokens: &TokenHandle,
    fresh_token: bool,
) -> Result<LoginOutcome> {
    if session.capabilities().is_empty() {
        session.refresh_capabilities().await?;
    }
    let Some(mechanism) = Mechanism::choose(session.capabilities()) else {
        return Err(session.config_error(
            "the server offers neither XOAUTH2 nor OAUTHBEARER, so it cannot be signed in to with an access token",
        ));
    };
    if !sasl::fits_message(&endpoint.user) {
        return Err(session.config_error("the user name is empty or holds control characters"));
    }
    let sasl_ir = session.capabilities().has("SASL-IR");
    let mut force_refresh = fresh_token;
    for attempt in 1..=2 {
        let received = SystemTime::now();
        let token = tokens
            .token(force_refresh)
            .await
            .map_err(|e| token_error(endpoint, tokens, &e))?;
        if !sasl::is_bearer_token(token.secret.expose()) {
            let e = TokenError::Misconfigured(
                "the access token holds characters a bearer token may not (or is empty)".into(),
            );
            return Err(token_error(endpoint, tokens, &e));
        }
        let response = mechanism.initial_response(
            &endpoint.user,
            &endpoint.host,
            endpoint.port,
            token.secret.expose(),
        );
        match authenticate(session, mechanism, &response, sasl_ir).await? {
            Ok(done) => {
                let had_caps = done.code.as_deref() == Some("CAPABILITY");
                session.take_capability_code(&done);
                tracing::debug!(
                    side = %endpoint.side,
                    host = %session.host(),
                    mechanism = mechanism.name(),
                    expires_in_s = token
                        .expires_at
                        .and_then(|t| t.duration_since(SystemTime::now()).ok())
                        .map(|d| d.as_secs()),
                    "signed in with an access token"
                );
                return Ok(LoginOutcome {
                    renewal: Renewal::plan(token.expires_at, received),
                    stale_capabilities: !had_caps,
                });
            }
            Err(words) if attempt == 1 => {
                tracing::debug!(
                    side = %endpoint.side,
                    host = %session.host(),
                    mechanism = mechanism.name(),
                    %words,
                    "the server refused the access token; asking for a new one"
                );
                force_refresh = true;
            }
            Err(words) => return Err(login_refused(endpoint, words, true)),
        }
    }
    unreachable!("the loop returns on its second attempt")
}

/// One `AUTHENTICATE` exchange: `Ok(tagged OK)` or `Err(words)` saying why it was
/// refused (the failure challenge explained, and the server's tagged answer).
async fn authenticate(
    session: &mut Session,
    mechanism: Mechanism,
    response: &str,
    sasl_ir: bool,
) -> Result<std::result::Result<StatusLine, String>> {
    let mut command = Zeroizing::new(format!("AUTHENTICATE {}", mechanism.name()).into_bytes());
    if sasl_ir {
        command.push(b' ');
        command.extend_from_slice(response.as_bytes());
    }
    let tag = session.write_line(&command).await?;
    let mut sent = sasl_ir;
    let mut failure: Option<BearerFailure> = None;
    let mut cancelled = false;
    loop {
        match session.read_response().await? {
            Response::Continue(_) if !sent => {
                sent = true;
                send_line(session, response.as_bytes()).await?;
            }
            Response::Continue(challenge) if failure.is_none() => {
                failure = Some(sasl::explain_failure(&challenge));
                send_line(session, mechanism.failure_ack().as_bytes()).await?;
            }
            Response::Continue(_) if !cancelled => {
                // A challenge after the acknowledgement: cancel the exchange (RFC 9051 6.2.2).
                cancelled = true;
                send_line(session, b"*").await?;
            }
            Response::Continue(_) => {
                return Err(EngineError::Hostile {
                    side: session.side(),
                    host: session.host().to_owned(),
                    what: "kept sending SASL challenges after AUTHENTICATE was cancelled"
                        .to_owned(),
                })
            }
            Response::Tagged { tag: t, line } if t == tag => {
                if line.status == Status::Ok {
                    return Ok(Ok(line));
                }
                if let Refusal::Transient { .. } = classify(
                    line.status,
                    line.code.as_deref(),
                    &line.text,
                    CommandKind::Login,
                ) {
                    // Busy or throttling: the token is fine; wait and log in again.
                    return Err(session.refused("AUTHENTICATE", &line));
                }
                let words = match failure {
                    Some(failure) => format!("{failure} (the server said {})", line.words()),
                    None => line.words(),
                };
                return Ok(Err(words));
            }
            _ => {}
        }
    }
}

async fn send_line(session: &mut Session, data: &[u8]) -> Result<()> {
    let mut line = Zeroizing::new(Vec::with_capacity(data.len() + 2));
    line.extend_from_slice(data);
    line.extend_from_slice(b"\r\n");
    session.write_raw(&line).await?;
    session.flush().await
}
