//! Logging in: passwords (LOGIN, SASL PLAIN) and OAuth 2.0 bearer tokens (SASL XOAUTH2
//! and OAUTHBEARER), and the token sources the latter ask.
//!
//! `login` holds the exchanges with the server (it drives a [`crate::engine::imap::session::Session`]),
//! `sasl` the pure encoders and the reading of a bearer failure, `token` the interface
//! token sources implement.

pub mod login;
pub mod sasl;
pub mod token;

#[cfg(test)]
mod tests;

pub use login::{LoginOutcome, Renewal};
pub use sasl::{BearerFailure, Mechanism};
pub use token::{AccessToken, StaticToken, TokenError, TokenErrorKind, TokenHandle, TokenSource};
