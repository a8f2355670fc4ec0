//! Where and how to reach one account: host, port, security, user, password, login method.

use crate::engine::error::Side;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// How the connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// TLS from the first byte (`imaps://`, port 993).
    ImplicitTls,
    /// Plain connection upgraded with STARTTLS before login (`imap://`).
    StartTls,
    /// No TLS at all; only when the user explicitly allows it.
    Plain,
}

/// How to log in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// `LOGIN user password` (also covers Dovecot's `user*master` form).
    Login,
    /// `AUTHENTICATE PLAIN`, optionally acting for another user (master/admin login):
    /// the endpoint's user and password are the admin's, `authzid` the mailbox owner.
    Plain { authzid: Option<String> },
    /// OAuth 2.0: SASL OAUTHBEARER (RFC 7628) or XOAUTH2, whichever the server offers,
    /// with a token from `tokens` for the endpoint's user (the mailbox). The endpoint's
    /// password is not used.
    OAuth2 {
        tokens: crate::engine::auth::TokenHandle,
    },
}

/// A password that never shows up in `Debug` output or logs, and is wiped from memory
/// when dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Drop for Password {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

impl Password {
    pub fn new(secret: impl Into<String>) -> Self {
        Password(secret.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

#[derive(Debug, Clone)]
pub struct Endpoint {
    pub side: Side,
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub user: String,
    pub password: Password,
    pub auth: Auth,
    /// Extra trusted CA certificates (PEM), besides the built-in web roots.
    pub ca_file: Option<PathBuf>,
    /// Longest wait for any single network step.
    pub timeout: Duration,
}

impl Endpoint {
    /// `host:port`, as shown in errors.
    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// `user@host:port`, identifying the account (used to find a job again on re-runs).
    pub fn account_key(&self) -> String {
        // The mailbox owner, however we log in: `alice*admin` (Dovecot master user) and
        // the admin acting for `alice` over SASL are both alice, so re-runs find one job.
        let user = match &self.auth {
            Auth::Plain {
                authzid: Some(owner),
            } => owner.as_str(),
            // The token is the mailbox owner's: the user is the owner as given.
            Auth::OAuth2 { .. } => self.user.as_str(),
            _ => self
                .user
                .split_once('*')
                .map(|(owner, _)| owner)
                .filter(|o| !o.is_empty())
                .unwrap_or(&self.user),
        };
        format!("{}@{}", user, self.address())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(user: &str, auth: Auth) -> Endpoint {
        Endpoint {
            side: Side::Source,
            host: "h".into(),
            port: 143,
            security: Security::Plain,
            user: user.into(),
            password: Password::new("p"),
            auth,
            ca_file: None,
            timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn master_logins_identify_the_mailbox_owner() {
        assert_eq!(endpoint("alice", Auth::Login).account_key(), "alice@h:143");
        assert_eq!(
            endpoint("alice*admin", Auth::Login).account_key(),
            "alice@h:143"
        );
        let plain = Auth::Plain {
            authzid: Some("alice".into()),
        };
        assert_eq!(endpoint("admin", plain).account_key(), "alice@h:143");
        assert_eq!(format!("{:?}", Password::new("s3cret")), "Password(***)");
        let oauth = Auth::OAuth2 {
            tokens: crate::engine::TokenHandle::new(crate::engine::StaticToken {
                token: Password::new("t"),
                label: "test".into(),
            }),
        };
        assert_eq!(
            endpoint("alice", oauth.clone()).account_key(),
            "alice@h:143"
        );
        // No master-user form for tokens: a `*` is part of the name.
        assert_eq!(endpoint("a*b", oauth).account_key(), "a*b@h:143");
    }
}
