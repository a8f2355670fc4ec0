//! The engine's errors. Each names the side (source or target) and the host it concerns;
//! none carries a password or a message body.

use super::auth::TokenErrorKind;
use super::retry::{classify, CommandKind, Refusal};
use crate::engine::imap::wire::{ParseError, Status};
use std::fmt;

/// Which account an error or a connection concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Source,
    Target,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Source => "source",
            Side::Target => "target",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{side} server {host}: cannot connect: {source}")]
    Connect {
        side: Side,
        host: String,
        source: std::io::Error,
    },
    #[error("{side} server {host}: TLS failed: {message}")]
    Tls {
        side: Side,
        host: String,
        message: String,
    },
    #[error("{side} server {host}: {message}")]
    Config {
        side: Side,
        host: String,
        message: String,
    },
    /// The server refused the login. `words` say why: the server's tagged answer, and for
    /// bearer logins what its failure challenge meant ("the access token has expired or
    /// was revoked", "the token lacks the scope X").
    #[error("{side} server {host}: {} as {user} refused: {words}", login_kind(*.bearer))]
    Login {
        side: Side,
        host: String,
        user: String,
        words: String,
        /// An OAuth 2.0 access token was refused (twice: the second one freshly
        /// refreshed), not a password: the user must sign in to the provider again, or the
        /// application lacks a scope; asking for a new password would not help.
        bearer: bool,
    },
    /// No access token could be had for an OAuth 2.0 login. `kind` says what helps:
    /// `Unavailable` is retried like a lost connection (see [`EngineError::is_connection_failure`]),
    /// `Revoked` needs the user to sign in again, `Misconfigured` the administrator.
    #[error("{side} server {host}: no access token from {provider} ({kind}): {message}")]
    Token {
        side: Side,
        host: String,
        /// The token source's [`super::TokenSource::provider_label`].
        provider: String,
        kind: TokenErrorKind,
        message: String,
    },
    #[error("{side} server {host}: no answer within {seconds} s")]
    Timeout {
        side: Side,
        host: String,
        seconds: u64,
    },
    #[error("{side} server {host}: connection lost: {message}")]
    ConnectionLost {
        side: Side,
        host: String,
        message: String,
    },
    #[error("{side} server {host}: {source}")]
    Protocol {
        side: Side,
        host: String,
        source: ParseError,
    },
    /// The server announced a literal larger than this state of the connection accepts.
    #[error("{side} server {host}: announced a literal of {announced} bytes {context}; at most {limit} bytes are accepted there")]
    LiteralTooLarge {
        side: Side,
        host: String,
        announced: u64,
        limit: u64,
        /// Where it came: `before login`, `in reply to LIST`, `in a message body`.
        context: String,
    },
    /// The server went past a cap on one command (responses, bytes, time): `what` says how.
    #[error("{side} server {host}: {what}")]
    Hostile {
        side: Side,
        host: String,
        what: String,
    },
    /// The server refused a command (tagged NO or BAD).
    #[error("{side} server {host}: {command} refused: {words}")]
    Refused {
        side: Side,
        host: String,
        command: String,
        words: String,
        /// The response code, upper-cased (`TRYCREATE`, `OVERQUOTA`...).
        code: Option<String>,
    },
    /// The job must wait before it goes on: a server asked it to slow down for longer than
    /// the job's patience allows, or a pacing cap of the server's profile (bytes per day,
    /// messages per hour) was reached. The job pauses (it does not fail) and resumes by
    /// itself at `until`.
    #[error("{side} server {host}: {reason}")]
    Paused {
        side: Side,
        host: String,
        /// Plain words for the user: "the server asked to slow down (\"Request is
        /// throttled ...\") since 14:02", "daily upload limit of 450 MB reached".
        reason: String,
        /// The server's own words, when it spoke.
        words: Option<String>,
        /// Seconds since the Unix epoch.
        since: i64,
        until: i64,
    },
    /// A folder opened again after a reconnect has another UIDVALIDITY than when its copy
    /// began: it was deleted and made again meanwhile, and its UIDs name other messages.
    #[error("{side} server {host}: folder {folder} has a new UIDVALIDITY ({now}, was {was}) since the connection was lost (deleted and made again?); its copy stopped here so that nothing is recorded under stale UIDs, and the next run matches it again")]
    UidValidityChanged {
        side: Side,
        host: String,
        folder: String,
        was: u32,
        now: u32,
    },
    #[error("target is over quota: {words}")]
    OverQuota { words: String },
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// The run made no progress for the stall timeout, as often as it may be tried
    /// (see `engine::watchdog`): "no progress for 30 min (last: copying INBOX, 1,204 of
    /// 3,000)".
    #[error("{what}")]
    Stalled { what: String },
    /// The job's lease now belongs to another worker: this one must stop writing.
    #[error("lease lost: another node took this job")]
    LeaseLost,
}

impl EngineError {
    /// The side an error concerns, when it concerns one.
    pub fn side(&self) -> Option<Side> {
        match self {
            EngineError::Connect { side, .. }
            | EngineError::Tls { side, .. }
            | EngineError::Config { side, .. }
            | EngineError::Login { side, .. }
            | EngineError::Token { side, .. }
            | EngineError::Timeout { side, .. }
            | EngineError::ConnectionLost { side, .. }
            | EngineError::Protocol { side, .. }
            | EngineError::LiteralTooLarge { side, .. }
            | EngineError::Hostile { side, .. }
            | EngineError::Refused { side, .. }
            | EngineError::Paused { side, .. }
            | EngineError::UidValidityChanged { side, .. } => Some(*side),
            EngineError::OverQuota { .. } => Some(Side::Target),
            _ => None,
        }
    }

    /// Errors after which a new connection may well succeed. A session that returned
    /// one of these is out of step with its server and must not be used again.
    pub fn is_connection_failure(&self) -> bool {
        matches!(
            self,
            EngineError::Timeout { .. }
                | EngineError::ConnectionLost { .. }
                | EngineError::Connect { .. }
                | EngineError::Protocol { .. }
                | EngineError::LiteralTooLarge { .. }
                | EngineError::Hostile { .. }
                | EngineError::Token {
                    kind: TokenErrorKind::Unavailable,
                    ..
                }
        )
    }

    /// A refusal that passes (throttled, server busy): `Some(suggested wait)`.
    pub fn transient(&self) -> Option<Option<std::time::Duration>> {
        let EngineError::Refused {
            command,
            words,
            code,
            ..
        } = self
        else {
            return None;
        };
        let status = if words.starts_with("BAD") {
            Status::Bad
        } else {
            Status::No
        };
        let kind = match command.as_str() {
            "LOGIN" | "AUTHENTICATE" => CommandKind::Login,
            "APPEND" => CommandKind::Append,
            "SELECT" | "EXAMINE" => CommandKind::Select,
            c if c.contains("FETCH") => CommandKind::Fetch,
            c if c.contains("STORE") => CommandKind::Store,
            _ => CommandKind::Other,
        };
        match classify(status, code.as_deref(), words, kind) {
            Refusal::Transient { suggested } => Some(suggested),
            _ => None,
        }
    }

    /// The server's own words, for refusals.
    pub fn server_words(&self) -> Option<String> {
        match self {
            EngineError::Refused { words, .. } | EngineError::Login { words, .. } => {
                Some(words.clone())
            }
            _ => None,
        }
    }

    /// The server went past one of the engine's caps: trying again at once will most
    /// likely meet the same behaviour, so callers retry such errors at most once.
    pub fn is_hostile(&self) -> bool {
        matches!(
            self,
            EngineError::LiteralTooLarge { .. } | EngineError::Hostile { .. }
        )
    }
}

fn login_kind(bearer: bool) -> &'static str {
    if bearer {
        "sign-in with an access token"
    } else {
        "login"
    }
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;
